/**
 * The dashboard page: one HTML shell, one stylesheet, one script, held as strings
 * so the service serves them from memory (the script's text comes from script.ts).
 * The shell holds no data: everything comes from `/api/dashboard/*` with the key the
 * visitor signs in with.
 *
 * The script is built from TypeScript (./browser/, see script.ts) into plain ES2020
 * with no dependencies; charts are inline SVG built with DOM calls, and every value
 * from the server is set as text, never as HTML.
 */
import { createHash } from "node:crypto"
import { browserScript } from "./script.js"
import { css } from "./style.js"

export { css }

export const script = browserScript()

export const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="no-referrer">
<title>ringmaster · dashboard</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/dashboard/app.css">
<script src="/dashboard/app.js" defer></script>
</head>
<body>
<header class="bar">
  <div class="brand"><span class="logo" aria-hidden="true"></span><span>ringmaster</span><span class="brand-sub">dashboard</span></div>
  <div class="who" id="who" hidden></div>
  <div class="controls" id="controls" hidden>
    <span id="live" class="live" data-state="connecting" title="Live updates">connecting</span>
    <label class="toggle" title="Show every amount to the micro-USDC"><input type="checkbox" id="exact"> exact</label>
    <button id="signout" type="button" class="ghost">Sign out</button>
  </div>
</header>
<main>
  <section id="signin" class="signin" hidden>
    <form id="signin-form" class="card signin-card" novalidate>
      <h1>Sign in</h1>
      <p>Paste an agent's API key to see its wallet, escrows and referrals, or the operator key to see every agent.</p>
      <label for="key">API key</label>
      <input id="key" name="key" type="password" autocomplete="off" spellcheck="false" placeholder="pk_…">
      <button type="submit" id="signin-button">Sign in</button>
      <p id="signin-error" class="error" role="alert"></p>
      <p class="fine">The key stays in this browser tab (session storage) and is sent only in the Authorization header.</p>
    </form>
  </section>

  <section id="app" hidden>
    <p id="banner" class="banner" role="status" hidden></p>
    <div class="kpis" id="kpis"></div>
    <div class="statuses" id="statuses" aria-label="Escrows by status"></div>

    <div class="grid">
      <article class="card span-2" id="chart-card">
        <header class="card-head">
          <h2 id="chart-title">Revenue by region</h2>
          <div class="seg" id="metric" role="group" aria-label="Metric">
            <button type="button" data-metric="revenue" aria-pressed="true">Revenue</button>
            <button type="button" data-metric="spent" aria-pressed="false">Spending</button>
            <button type="button" data-metric="referral" aria-pressed="false">Referrals</button>
          </div>
        </header>
        <div id="chart" class="chart"></div>
        <div id="legend" class="legend"></div>
      </article>

      <article class="card" id="regions-card">
        <header class="card-head"><h2>Regions</h2></header>
        <div class="table-wrap">
          <table id="regions" class="num-table">
            <thead><tr><th>Region</th><th class="n">Escrows</th><th class="n">Revenue</th><th class="n">Spending</th><th class="n opt">Fees</th><th class="n opt">Referrals</th></tr></thead>
            <tbody></tbody>
            <tfoot></tfoot>
          </table>
        </div>
      </article>

      <article class="card" id="network-card">
        <header class="card-head"><h2>Referral network</h2><span class="muted" id="network-earned"></span></header>
        <div id="network" class="tree"></div>
      </article>

      <article class="card span-2" id="audit-card">
        <header class="card-head"><h2>Escrow audit trail</h2><span class="muted" id="audit-range"></span></header>
        <form id="filters" class="filters" novalidate>
          <label>Status
            <select id="f-status" name="status">
              <option value="">any</option><option>pending</option><option>released</option><option>cancelled</option><option>expired</option>
            </select>
          </label>
          <label>Region
            <select id="f-region" name="region"><option value="">any</option></select>
          </label>
          <label class="grow">Counterparty
            <input id="f-counterparty" name="counterparty" placeholder="0x… wallet" spellcheck="false" autocomplete="off">
          </label>
          <div class="filter-buttons">
            <button type="submit" id="f-apply">Filter</button>
            <button type="button" id="f-reset" class="ghost">Reset</button>
          </div>
          <p id="filter-error" class="error" role="alert"></p>
        </form>
        <div class="table-wrap">
          <table id="audit" class="audit">
            <thead><tr><th>Created</th><th>Escrow</th><th>Status</th><th class="opt">Region</th><th class="opt">Payer</th><th class="opt">Payee</th><th class="n">Amount</th></tr></thead>
            <tbody></tbody>
          </table>
        </div>
        <p id="audit-empty" class="empty" hidden>No escrows match.</p>
        <div class="pager">
          <button type="button" id="newer" class="ghost" disabled>‹ Newer</button>
          <span id="page-label" class="muted"></span>
          <button type="button" id="older" class="ghost" disabled>Older ›</button>
        </div>
      </article>
    </div>
  </section>

  <dialog id="detail" aria-labelledby="detail-title">
    <div class="detail-head">
      <h2 id="detail-title">Escrow</h2>
      <button type="button" id="detail-close" class="ghost" aria-label="Close">✕</button>
    </div>
    <div id="detail-body"></div>
  </dialog>
</main>
<noscript><p class="card">The dashboard needs JavaScript.</p></noscript>
</body>
</html>
`

/** A short content hash, for ETags. */
export const digest = (text: string) => createHash("sha256").update(text, "utf8").digest("base64url").slice(0, 22)
