/**
 * Keeping the page current: a full reload (`refresh`) whenever the server's watermark
 * moves, learnt from server-sent events, or by polling while the stream is down.
 */
import { auditPath, renderAudit, renderDetail } from "./audit.js"
import { $ } from "./dom.js"
import { renderNetwork } from "./network.js"
import { renderOverview } from "./overview.js"
import { api, AuthError, keyRejected, messageOf } from "./server.js"
import { refreshMoney, showBanner, state } from "./state.js"
import type { AuditPage, EscrowDetail, Network, Overview, Watermark } from "./types.js"

/**
 * Reloads everything. The watermark is read first: anything that changes after it
 * moves the server's watermark past it, so a later event triggers another refresh.
 */
export const refresh = (): Promise<void> => {
  if (!state.key) return Promise.resolve()
  if (state.refreshing) {
    state.again = true
    return Promise.resolve()
  }
  state.refreshing = true
  const key = state.key
  return api<Watermark>("/api/dashboard/watermark").then((w) => {
    state.loading = w.watermark
    const detailId = state.detailId
    return Promise.all([
      api<Overview>("/api/dashboard/overview"),
      api<Network>("/api/dashboard/network"),
      api<AuditPage>(auditPath()),
      detailId ? api<EscrowDetail>("/api/dashboard/escrows/" + encodeURIComponent(detailId)).catch(() => null) : null
    ]).then(([overview, network, audit, detail]) => {
      if (state.key !== key) return
      state.watermark = w.watermark
      renderOverview(overview)
      renderNetwork(network)
      renderAudit(audit)
      if (detail && state.detailId === detail.escrow.escrow_id) renderDetail(detail)
      refreshMoney()
      // The operator's figures may lag the watermark a little (the server recomputes
      // them at most every recheck_ms): ask again once they may have caught up.
      if (overview.watermark !== w.watermark) scheduleRecheck()
      showBanner("")
      document.body.dataset["loaded"] = "1"
    })
  }).catch((error: unknown) => {
    if (state.key === key && !(error instanceof AuthError)) showBanner("Could not load the dashboard: " + messageOf(error))
  }).then(() => {
    if (state.key !== key) return
    state.refreshing = false
    state.loading = null
    if (state.again) {
      state.again = false
      refresh()
    }
  })
}

const scheduleRecheck = (): void => {
  const session = state.session
  if (state.recheckTimer || !session) return
  state.recheckTimer = setTimeout(() => {
    state.recheckTimer = null
    refresh()
  }, session.live.recheck_ms)
}

const onWatermark = (watermark: string): void => {
  if (watermark === state.watermark || watermark === state.loading) return
  if (state.refreshing) state.again = true
  else refresh()
}

type LiveMode = "connecting" | "live" | "polling" | "reconnecting"

const setLive = (mode: LiveMode): void => {
  const node = $("live")
  node.dataset["state"] = mode
  node.textContent = mode
}

export const stopLive = (): void => {
  if (state.liveAbort) state.liveAbort.abort()
  state.liveAbort = null
  stopPolling()
  if (state.reconnectTimer) clearTimeout(state.reconnectTimer)
  state.reconnectTimer = null
  if (state.recheckTimer) clearTimeout(state.recheckTimer)
  state.recheckTimer = null
}

const startPolling = (): void => {
  const session = state.session
  if (state.pollTimer || !session) return
  setLive("polling")
  state.pollTimer = setInterval(() => {
    api<Watermark>("/api/dashboard/watermark").then((w) => onWatermark(w.watermark), () => {})
  }, session.live.poll_interval_ms)
}

const stopPolling = (): void => {
  if (state.pollTimer) clearInterval(state.pollTimer)
  state.pollTimer = null
}

const scheduleReconnect = (delayMs: number): void => {
  if (state.reconnectTimer || !state.key) return
  state.reconnectTimer = setTimeout(() => {
    state.reconnectTimer = null
    connectLive()
  }, delayMs)
}

const onEvent = (block: string): void => {
  let event = "message"
  let data = ""
  for (const line of block.split("\n")) {
    if (line.indexOf("event:") === 0) event = line.slice(6).trim()
    else if (line.indexOf("data:") === 0) data += line.slice(5).trim()
  }
  if (event === "change") {
    try {
      onWatermark((JSON.parse(data) as Watermark).watermark)
    } catch {
      // A malformed event is ignored.
    }
  }
}

/** Server-sent events over fetch: EventSource cannot send the Authorization header. */
export const connectLive = (): void => {
  if (!state.key) return
  if (state.liveAbort) state.liveAbort.abort()
  const abort = new AbortController()
  state.liveAbort = abort
  const key = state.key
  fetch("/api/dashboard/live", { headers: { authorization: "Bearer " + key, accept: "text/event-stream" }, cache: "no-store", signal: abort.signal })
    .then((res) => {
      if (res.status === 401) {
        keyRejected("Your key is no longer accepted; sign in again.")
        return
      }
      if (!res.ok || !res.body) throw new Error("live stream refused: HTTP " + res.status)
      stopPolling()
      setLive("live")
      state.backoffMs = 1000
      const reader = res.body.getReader()
      const decoder = new TextDecoder()
      let buffer = ""
      const pump = (): Promise<void> =>
        reader.read().then((chunk) => {
          if (chunk.done) return
          buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n/g, "\n")
          let at: number
          while ((at = buffer.indexOf("\n\n")) >= 0) {
            onEvent(buffer.slice(0, at))
            buffer = buffer.slice(at + 2)
          }
          return pump()
        })
      return pump().then(() => {
        // The server ends streams after a while: reconnect at once.
        if (state.key === key && state.liveAbort === abort) scheduleReconnect(100)
      })
    })
    .catch(() => {
      if (abort.signal.aborted || state.key !== key) return
      startPolling()
      if (state.pollTimer) setLive("polling")
      else setLive("reconnecting")
      const delay = state.backoffMs
      state.backoffMs = Math.min(state.backoffMs * 2, 30000)
      scheduleReconnect(delay)
    })
}
