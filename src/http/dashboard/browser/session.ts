/** Signing in and out, and who is signed in. */
import { $, appendAll, clear, el } from "./dom.js"
import { shortWallet } from "./format.js"
import { connectLive, refresh, stopLive } from "./live.js"
import { AuthError, messageOf, request } from "./server.js"
import { KEY_STORAGE, resetState, state } from "./state.js"
import type { Session } from "./types.js"

export const showSignIn = (message: string): void => {
  $("app").hidden = true
  $("who").hidden = true
  $("controls").hidden = true
  $("signin").hidden = false
  $("signin-error").textContent = message
  const key = $<HTMLInputElement>("key")
  key.value = ""
  key.focus()
}

export const signIn = (event: Event): void => {
  event.preventDefault()
  const key = $<HTMLInputElement>("key").value.trim()
  if (!key) {
    $("signin-error").textContent = "Paste an API key."
    return
  }
  const button = $<HTMLButtonElement>("signin-button")
  button.disabled = true
  $("signin-error").textContent = ""
  request<Session>("/api/dashboard/session", key).then((session) => {
    sessionStorage.setItem(KEY_STORAGE, key)
    start(key, session)
  }, (error: unknown) => {
    $("signin-error").textContent = error instanceof AuthError ? "That key was not accepted." : ("Could not sign in: " + messageOf(error))
  }).then(() => {
    button.disabled = false
  })
}

export const signOut = (message: string): void => {
  sessionStorage.removeItem(KEY_STORAGE)
  stopLive()
  const detail = $<HTMLDialogElement>("detail")
  if (detail.open) detail.close()
  // Nothing of the previous viewer's data stays in the page.
  for (const id of ["kpis", "statuses", "chart", "legend", "network", "network-earned", "audit-range", "page-label", "detail-body", "who"]) clear($(id))
  const regions = $<HTMLTableElement>("regions")
  clear(regions.tBodies[0]!)
  if (regions.tFoot) clear(regions.tFoot)
  clear($<HTMLTableElement>("audit").tBodies[0]!)
  resetState()
  showSignIn(message)
}

export const start = (key: string, session: Session): void => {
  state.key = key
  state.session = session
  $("signin").hidden = true
  $("app").hidden = false
  $("controls").hidden = false
  renderWho(session)
  refresh()
  connectLive()
}

const renderWho = (s: Session): void => {
  const who = $("who")
  clear(who)
  if (s.scope === "operator" || s.agent === null) {
    appendAll(who, [el("span", { className: "badge operator", text: "Operator" }), el("span", { className: "muted", text: "all agents · region " + s.region })])
  } else {
    appendAll(who, [
      el("span", { className: "badge", text: "Agent" }),
      el("span", { className: "name", text: s.agent.agent_name }),
      el("span", { className: "wallet", title: s.agent.wallet_address, text: shortWallet(s.agent.wallet_address) })
    ])
  }
  who.hidden = false
}
