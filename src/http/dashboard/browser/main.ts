/**
 * The dashboard's browser script (served as `/dashboard/app.js`, bundled by esbuild
 * from these modules: ../script.ts): wires the page shell (../assets.ts) and signs in
 * with the key kept in this tab.
 *
 * Rules it keeps: the key lives in `sessionStorage` and travels only as
 * `Authorization: Bearer`; server values are set with `textContent` (never parsed
 * as HTML); amounts are decimal strings turned into BigInt micro-USDC for display,
 * never floats (a float is used only for a bar's pixel height). Every amount keeps
 * its exact 6-place value in `data-usdc` and its `title`; the "exact" toggle shows it.
 */
import { applyFilters, closeDetail, newer, older, resetFilters } from "./audit.js"
import { $, all } from "./dom.js"
import { renderChart } from "./overview.js"
import { AuthError, messageOf, request, whenKeyRejected } from "./server.js"
import { showSignIn, signIn, signOut, start } from "./session.js"
import { EXACT_STORAGE, KEY_STORAGE, type Metric, refreshMoney, state } from "./state.js"
import type { Session } from "./types.js"

const boot = (): void => {
  whenKeyRejected(signOut)
  $("signin-form").addEventListener("submit", signIn)
  $("signout").addEventListener("click", () => signOut(""))
  const exact = $<HTMLInputElement>("exact")
  exact.checked = state.exact
  exact.addEventListener("change", () => {
    state.exact = exact.checked
    localStorage.setItem(EXACT_STORAGE, state.exact ? "1" : "0")
    refreshMoney()
  })
  for (const b of all<HTMLButtonElement>("button", $("metric"))) {
    b.addEventListener("click", () => {
      state.metric = b.dataset["metric"] as Metric
      renderChart()
      refreshMoney()
    })
  }
  $("filters").addEventListener("submit", applyFilters)
  $("f-reset").addEventListener("click", resetFilters)
  $("older").addEventListener("click", older)
  $("newer").addEventListener("click", newer)
  $("detail-close").addEventListener("click", closeDetail)
  $("detail").addEventListener("close", () => {
    state.detailId = null
  })
  let resizeTimer: ReturnType<typeof setTimeout> | undefined
  let lastWidth = window.innerWidth
  window.addEventListener("resize", () => {
    if (window.innerWidth === lastWidth) return
    lastWidth = window.innerWidth
    clearTimeout(resizeTimer)
    resizeTimer = setTimeout(() => {
      renderChart()
      refreshMoney()
    }, 150)
  })

  const key = sessionStorage.getItem(KEY_STORAGE)
  if (!key) {
    showSignIn("")
    return
  }
  request<Session>("/api/dashboard/session", key).then((session) => start(key, session), (error: unknown) => {
    if (error instanceof AuthError) {
      sessionStorage.removeItem(KEY_STORAGE)
      showSignIn("Your key is no longer accepted; sign in again.")
    } else showSignIn("Could not reach the service: " + messageOf(error))
  })
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot)
else boot()
