/** The escrow audit trail (filters, pages) and one escrow's detail with its history. */
import { $, all, clear, el } from "./dom.js"
import { api, AuthError, messageOf } from "./server.js"
import { type Filters, money, PAGE_SIZE, refreshMoney, state, statusEl, timeEl, walletEl } from "./state.js"
import type { AuditPage, EscrowDetail } from "./types.js"

export const auditPath = (): string => {
  const q = ["limit=" + PAGE_SIZE]
  const f = state.filters
  if (f.status) q.push("status=" + encodeURIComponent(f.status))
  if (f.region) q.push("region=" + encodeURIComponent(f.region))
  if (f.counterparty) q.push("counterparty=" + encodeURIComponent(f.counterparty))
  const cursor = state.cursors[state.page]
  if (cursor) q.push("cursor=" + encodeURIComponent(cursor))
  return "/api/dashboard/escrows?" + q.join("&")
}

export const setFilters = (filters: Filters): void => {
  state.filters = filters
  state.cursors = [null]
  state.page = 0
  $<HTMLSelectElement>("f-status").value = filters.status
  $<HTMLSelectElement>("f-region").value = filters.region
  $<HTMLInputElement>("f-counterparty").value = filters.counterparty
  for (const p of all(".pill")) p.setAttribute("aria-pressed", p.dataset["status"] === filters.status ? "true" : "false")
  loadAudit()
}

const loadAudit = (): Promise<void> => {
  const key = state.key
  return api<AuditPage>(auditPath()).then((page) => {
    if (state.key !== key) return
    renderAudit(page)
    refreshMoney()
  }, (error: unknown) => {
    if (!(error instanceof AuthError)) $("filter-error").textContent = messageOf(error)
  })
}

export const applyFilters = (event: Event): void => {
  event.preventDefault()
  const counterparty = $<HTMLInputElement>("f-counterparty").value.trim().toLowerCase()
  if (counterparty && !/^0x[0-9a-f]{40}$/.test(counterparty)) {
    $("filter-error").textContent = "Counterparty: expected a wallet address, 0x followed by 40 hex digits."
    return
  }
  $("filter-error").textContent = ""
  setFilters({ status: $<HTMLSelectElement>("f-status").value, region: $<HTMLSelectElement>("f-region").value, counterparty })
}

export const resetFilters = (): void => {
  $("filter-error").textContent = ""
  setFilters({ status: "", region: "", counterparty: "" })
}

export const renderAudit = (page: AuditPage): void => {
  const previous = state.seen
  const first = state.audit === null
  state.audit = page
  state.seen = {}
  const body = $<HTMLTableElement>("audit").tBodies[0]!
  clear(body)
  for (const e of page.escrows) {
    state.seen[e.escrow_id] = e.version
    body.appendChild(el("tr", {
      tabindex: 0,
      dataset: { escrowId: e.escrow_id, status: e.status, region: e.region },
      className: !first && previous[e.escrow_id] !== e.version ? "fresh" : "",
      on: {
        click: () => openDetail(e.escrow_id),
        keydown: (ev) => {
          if ((ev as KeyboardEvent).key === "Enter") openDetail(e.escrow_id)
        }
      }
    }, [
      el("td", null, timeEl(e.created_at)),
      el("td", null, el("code", { title: e.escrow_id, text: "esc_…" + e.escrow_id.slice(-8) })),
      el("td", null, statusEl(e.status)),
      el("td", { className: "opt", text: e.region }),
      el("td", { className: "opt" }, walletEl(e.payer_wallet, e.payer_name)),
      el("td", { className: "opt" }, walletEl(e.payee_wallet, e.payee_name)),
      el("td", { className: "n" }, money(e.amount_usdc))
    ]))
  }
  $("audit-empty").hidden = page.escrows.length > 0
  const from = state.page * PAGE_SIZE + (page.escrows.length > 0 ? 1 : 0)
  const to = state.page * PAGE_SIZE + page.escrows.length
  $("audit-range").textContent = page.total + " escrow" + (page.total === 1 ? "" : "s")
  $("page-label").textContent = page.escrows.length > 0 ? from + "–" + to + " of " + page.total : ""
  $<HTMLButtonElement>("newer").disabled = state.page === 0
  $<HTMLButtonElement>("older").disabled = page.next_cursor === null
}

export const older = (): void => {
  if (!state.audit || state.audit.next_cursor === null) return
  state.cursors[state.page + 1] = state.audit.next_cursor
  state.page += 1
  loadAudit()
}

export const newer = (): void => {
  if (state.page === 0) return
  state.page -= 1
  loadAudit()
}

// ---------------------------------------------------------------- one escrow

const openDetail = (id: string): void => {
  state.detailId = id
  const dialog = $<HTMLDialogElement>("detail")
  $("detail-title").textContent = "Escrow " + id
  clear($("detail-body"))
  $("detail-body").appendChild(el("p", { className: "muted", text: "Loading…" }))
  if (!dialog.open) dialog.showModal()
  api<EscrowDetail>("/api/dashboard/escrows/" + encodeURIComponent(id)).then((detail) => {
    if (state.detailId === id) {
      renderDetail(detail)
      refreshMoney()
    }
  }, (error: unknown) => {
    if (state.detailId !== id) return
    clear($("detail-body"))
    $("detail-body").appendChild(el("p", { className: "error", text: messageOf(error) }))
  })
}

export const renderDetail = (d: EscrowDetail): void => {
  const e = d.escrow
  const body = $("detail-body")
  clear(body)
  body.dataset["escrowId"] = e.escrow_id
  const facts: ReadonlyArray<readonly [string, Node | string]> = [
    ["Status", statusEl(e.status)],
    ["Payer", walletEl(e.payer_wallet, d.payer_name)],
    ["Payee", walletEl(e.payee_wallet, d.payee_name)],
    ["Amount", money(e.amount_usdc)],
    ["Released", money(e.released_usdc)],
    ["Fee paid", money(e.fee_paid_usdc)],
    ["Refunded", money(e.refunded_usdc)],
    ["Still locked", money(e.remaining_usdc)],
    ["Net to payee", money(e.net_usdc)],
    ["Region", e.region],
    ["Created", timeEl(e.created_at)],
    ["Expires", timeEl(e.expires_at)],
    ["Settled", timeEl(e.settled_at)],
    ["Mandate", e.mandate_id || "—"],
    ["Idempotency key", e.idempotency_key || "—"],
    ["Description", e.description || "—"]
  ]
  const dl = el("dl", { className: "facts" })
  for (const [term, value] of facts) {
    dl.appendChild(el("dt", { text: term }))
    dl.appendChild(el("dd", null, value))
  }
  body.appendChild(dl)
  body.appendChild(el("h3", { text: "History" }))
  body.appendChild(el("ol", { className: "timeline", id: "history" }, d.history.map((h) =>
    el("li", { dataset: { seq: h.seq, kind: h.kind } }, [
      el("span", { className: "seq", text: "#" + h.seq }),
      el("span", null, [el("strong", { text: h.kind.replace("_", " ") }), " ", el("span", { className: "muted", text: (h.from_status || "new") + " → " + h.to_status })]),
      el("span", { className: "n" }, money(h.amount_usdc)),
      el("span", { className: "when" }, [timeEl(h.at), " · " + h.region])
    ])
  )))
  if (Object.keys(e.metadata).length > 0) {
    body.appendChild(el("h3", { text: "Metadata" }))
    body.appendChild(el("pre", { className: "meta", text: JSON.stringify(e.metadata, null, 2) }))
  }
}

export const closeDetail = (): void => {
  state.detailId = null
  const dialog = $<HTMLDialogElement>("detail")
  if (dialog.open) dialog.close()
}
