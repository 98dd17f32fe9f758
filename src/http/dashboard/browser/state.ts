/**
 * What the page knows: the key, the viewer's session, the last data shown, the live
 * connection's timers. One mutable record, replaced whole on sign-out so nothing of the
 * previous viewer's data stays.
 */
import { $, el } from "./dom.js"
import { exactText, formatMicros, micros, shortWallet, when } from "./format.js"
import type { AuditPage, Network, Overview, Session, Status } from "./types.js"

export const KEY_STORAGE = "ringmaster.dashboard.key"
export const EXACT_STORAGE = "ringmaster.dashboard.exact"
export const PAGE_SIZE = 20

const PALETTE = ["#3f6df5", "#1f9d6b", "#f0962e", "#d64b62", "#8a63d2", "#17a9c2", "#c4a21b", "#7d8597"]

export type Metric = "revenue" | "spent" | "referral"

export interface Filters {
  readonly status: string
  readonly region: string
  readonly counterparty: string
}

export interface State {
  key: string | null
  session: Session | null
  overview: Overview | null
  network: Network | null
  audit: AuditPage | null
  watermark: string | null
  loading: string | null
  refreshing: boolean
  again: boolean
  metric: Metric
  exact: boolean
  filters: Filters
  cursors: Array<string | null>
  page: number
  detailId: string | null
  seen: Record<string, number>
  liveAbort: AbortController | null
  pollTimer: ReturnType<typeof setInterval> | null
  reconnectTimer: ReturnType<typeof setTimeout> | null
  recheckTimer: ReturnType<typeof setTimeout> | null
  backoffMs: number
  regionColors: Record<string, string>
}

const freshState = (): State => ({
  key: null,
  session: null,
  overview: null,
  network: null,
  audit: null,
  watermark: null,
  loading: null,
  refreshing: false,
  again: false,
  metric: "revenue",
  exact: localStorage.getItem(EXACT_STORAGE) === "1",
  filters: { status: "", region: "", counterparty: "" },
  cursors: [null],
  page: 0,
  detailId: null,
  seen: {},
  liveAbort: null,
  pollTimer: null,
  reconnectTimer: null,
  recheckTimer: null,
  backoffMs: 1000,
  regionColors: {}
})

export let state: State = freshState()

/** A new, empty state (sign-out), keeping the viewer's "exact" choice. */
export const resetState = (): void => {
  const exact = state.exact
  state = freshState()
  state.exact = exact
}

// ---------------------------------------------------------------- small widgets

/** An amount element: formatted text, the exact value in data-usdc and the tooltip. */
export const money = (text: string, className?: string): HTMLSpanElement => {
  const exact = exactText(micros(text))
  return el("span", {
    className: "money" + (className ? " " + className : ""),
    title: exact + " USDC",
    dataset: { usdc: exact },
    text: formatMicros(micros(text), state.exact)
  })
}

export const moneyFromMicros = (value: bigint, className?: string): HTMLSpanElement => money(exactText(value), className)

/** Redraws every amount on the page (after the "exact" toggle or new data). */
export const refreshMoney = (): void => {
  for (const node of Array.from(document.querySelectorAll<HTMLElement>(".money"))) {
    node.textContent = formatMicros(micros(node.dataset["usdc"] ?? "0"), state.exact)
  }
}

export const timeEl = (iso: string | null): HTMLElement => {
  if (!iso) return el("span", { className: "muted", text: "—" })
  const text = when(iso)
  // The date part hides at phone width (the title keeps the full time).
  return el("time", { datetime: iso, title: iso }, [el("span", { className: "date-part", text: text.slice(0, 11) }), text.slice(11)])
}

export const walletEl = (wallet: string, name: string | null): HTMLSpanElement => {
  const own = state.session?.agent?.wallet_address === wallet
  return el("span", { className: "party", dataset: { wallet } }, [
    name ? el("span", { className: "name", text: name }) : null,
    name ? " " : null,
    el("span", { className: "wallet", title: wallet, text: shortWallet(wallet) }),
    own ? el("span", { className: "you", text: "you" }) : null
  ])
}

export const statusEl = (status: Status): HTMLSpanElement =>
  el("span", { className: "status", dataset: { status } }, [el("span", { className: "dot s-" + status }), status])

/** A region's color, the same for the page's whole life (first seen, first color). */
export const colorOf = (region: string): string => {
  if (!state.regionColors[region]) {
    const n = Object.keys(state.regionColors).length
    state.regionColors[region] = PALETTE[n % PALETTE.length]!
  }
  return state.regionColors[region]!
}

export const showBanner = (text: string): void => {
  const b = $("banner")
  b.textContent = text
  b.hidden = !text
}
