/** The dashboard's stylesheet: light and dark, one column below 900 px, no horizontal scrolling at phone width. */
export const css = String.raw`
:root {
  --bg: #f4f6fa; --panel: #ffffff; --ink: #1b2230; --muted: #6b7485; --line: #e3e7ef; --soft: #eef1f7;
  --accent: #3f6df5; --accent-ink: #ffffff; --good: #1f9d6b; --warn: #d98a1c; --bad: #d64b62; --grey: #8a93a5;
  --radius: 12px; --shadow: 0 1px 2px rgba(20, 30, 60, .06), 0 4px 16px rgba(20, 30, 60, .05);
  --mono: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace;
  color-scheme: light dark;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0f131a; --panel: #171c25; --ink: #e6e9ef; --muted: #98a1b3; --line: #262d3a; --soft: #1e2430;
    --accent: #6c8cff; --shadow: none;
  }
}
* { box-sizing: border-box; }
html, body { margin: 0; padding: 0; }
body {
  background: var(--bg); color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  -webkit-text-size-adjust: 100%;
  overflow-x: hidden;
}
[hidden] { display: none !important; }
button, input, select { font: inherit; color: inherit; }
button {
  border: 1px solid var(--accent); background: var(--accent); color: var(--accent-ink);
  border-radius: 8px; padding: 6px 12px; cursor: pointer;
}
button.ghost { background: transparent; color: var(--ink); border-color: var(--line); }
button:disabled { opacity: .45; cursor: default; }
input, select {
  border: 1px solid var(--line); background: var(--panel); border-radius: 8px; padding: 6px 8px; min-width: 0;
}
code, .mono { font-family: var(--mono); font-size: 12.5px; }
.muted { color: var(--muted); }
.error { color: var(--bad); min-height: 1em; margin: 6px 0 0; }

.bar {
  display: flex; flex-wrap: wrap; align-items: center; gap: 8px 16px;
  padding: 10px 20px; background: var(--panel); border-bottom: 1px solid var(--line);
  position: sticky; top: 0; z-index: 5;
}
.brand { display: flex; align-items: center; gap: 8px; font-weight: 650; font-size: 16px; }
.brand-sub { color: var(--muted); font-weight: 450; }
.logo { width: 18px; height: 18px; border-radius: 50%; border: 4px solid var(--accent); display: inline-block; }
.who { display: flex; align-items: center; gap: 8px; flex-wrap: wrap; min-width: 0; }
.who .badge { background: var(--soft); border-radius: 999px; padding: 2px 10px; font-size: 12.5px; }
.who .badge.operator { background: var(--accent); color: var(--accent-ink); }
.controls { margin-left: auto; display: flex; align-items: center; gap: 10px; }
.toggle { display: inline-flex; align-items: center; gap: 4px; color: var(--muted); cursor: pointer; }
.live { font-size: 12.5px; color: var(--muted); display: inline-flex; align-items: center; gap: 6px; }
.live::before { content: ""; width: 8px; height: 8px; border-radius: 50%; background: var(--grey); }
.live[data-state="live"]::before { background: var(--good); box-shadow: 0 0 0 3px rgba(31, 157, 107, .18); }
.live[data-state="polling"]::before { background: var(--warn); }
.live[data-state="reconnecting"]::before { background: var(--bad); }

main { max-width: 1280px; margin: 0 auto; padding: 16px 20px 40px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: var(--radius); box-shadow: var(--shadow); padding: 16px; min-width: 0; }
.card-head { display: flex; align-items: center; justify-content: space-between; gap: 8px; flex-wrap: wrap; margin-bottom: 10px; }
.card h2 { font-size: 15px; margin: 0; font-weight: 650; }

.signin { display: flex; justify-content: center; padding-top: 8vh; }
.signin-card { width: 100%; max-width: 420px; display: flex; flex-direction: column; gap: 8px; }
.signin-card h1 { margin: 0 0 4px; font-size: 22px; }
.signin-card p { margin: 0; color: var(--muted); }
.signin-card label { font-weight: 600; margin-top: 6px; }
.signin-card input { padding: 10px; font-family: var(--mono); }
.signin-card button { padding: 10px; margin-top: 4px; }
.fine { font-size: 12px; }

.banner { background: #fff4e0; color: #7a4b00; border: 1px solid #f3d9a6; border-radius: 8px; padding: 8px 12px; margin: 0 0 12px; }

.kpis { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px; margin-bottom: 12px; }
.kpi { padding: 14px 16px; }
.kpi .label { color: var(--muted); font-size: 12.5px; text-transform: uppercase; letter-spacing: .04em; }
.kpi .value { font-size: 24px; font-weight: 650; margin-top: 2px; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
.kpi .unit { font-size: 12px; color: var(--muted); margin-left: 4px; font-weight: 500; }
.kpi .sub { color: var(--muted); font-size: 12px; margin-top: 2px; }

.statuses { display: flex; flex-wrap: wrap; gap: 8px; margin-bottom: 12px; }
.pill {
  display: inline-flex; align-items: center; gap: 8px; border-radius: 999px; padding: 4px 12px;
  background: var(--panel); border: 1px solid var(--line); color: var(--ink); cursor: pointer;
}
.pill .count { font-weight: 700; font-variant-numeric: tabular-nums; }
.pill[aria-pressed="true"] { border-color: var(--accent); box-shadow: inset 0 0 0 1px var(--accent); }
.dot { width: 8px; height: 8px; border-radius: 50%; display: inline-block; background: var(--grey); }
.s-pending { background: var(--warn); } .s-released { background: var(--good); }
.s-cancelled { background: var(--bad); } .s-expired { background: var(--grey); }
.status { display: inline-flex; align-items: center; gap: 6px; white-space: nowrap; }

.grid { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 12px; }
.span-2 { grid-column: span 2; }

.seg { display: inline-flex; border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
.seg button { border: 0; border-radius: 0; background: transparent; color: var(--muted); padding: 4px 10px; }
.seg button[aria-pressed="true"] { background: var(--soft); color: var(--ink); font-weight: 600; }
.chart svg { width: 100%; height: auto; display: block; }
.chart .axis { fill: var(--muted); font-size: 11px; }
.chart .grid-line { stroke: var(--line); stroke-width: 1; }
.chart .empty { fill: var(--muted); font-size: 13px; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 16px; margin-top: 8px; }
.legend-item { display: inline-flex; align-items: center; gap: 6px; }
.swatch { width: 10px; height: 10px; border-radius: 3px; display: inline-block; }

.table-wrap { overflow-x: auto; max-width: 100%; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 7px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
.n { text-align: right; }
tfoot td { font-weight: 650; border-bottom: 0; }
.audit tbody tr { cursor: pointer; }
.audit tbody tr:hover, .audit tbody tr:focus { background: var(--soft); outline: none; }
.audit tr.fresh { animation: fresh 2.4s ease-out; }
@keyframes fresh { from { background: rgba(63, 109, 245, .18); } to { background: transparent; } }
.wallet { font-family: var(--mono); font-size: 12.5px; }
.name { font-weight: 600; }
.you { background: var(--soft); border-radius: 6px; padding: 0 6px; font-size: 12px; }
.empty { color: var(--muted); text-align: center; padding: 12px; margin: 0; }

.filters { display: flex; flex-wrap: wrap; gap: 8px 12px; align-items: flex-end; margin-bottom: 8px; }
.filters label { display: flex; flex-direction: column; gap: 2px; font-size: 12px; color: var(--muted); }
.filters .grow { flex: 1 1 220px; }
.filters .grow input { width: 100%; font-family: var(--mono); }
.filter-buttons { display: flex; gap: 6px; }
.filters .error { flex-basis: 100%; margin: 0; }
.pager { display: flex; align-items: center; justify-content: space-between; gap: 8px; margin-top: 10px; }

.tree ul { list-style: none; margin: 0; padding-left: 18px; border-left: 1px dashed var(--line); }
.tree > ul { padding-left: 0; border-left: 0; }
.tree li { margin: 4px 0; }
.node { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 8px; padding: 5px 8px; border-radius: 8px; background: var(--soft); }
.node .earned { margin-left: auto; font-weight: 600; }
.node .for-referrer { color: var(--muted); font-size: 12px; flex-basis: 100%; }
.tree-note { color: var(--muted); font-size: 12px; margin: 6px 0 0; }
.tree summary { cursor: pointer; color: var(--muted); margin-top: 6px; }

dialog { border: 1px solid var(--line); border-radius: var(--radius); padding: 0; width: min(720px, calc(100vw - 24px)); max-height: calc(100vh - 48px); background: var(--panel); color: var(--ink); }
dialog::backdrop { background: rgba(10, 15, 25, .45); }
.detail-head { display: flex; align-items: center; justify-content: space-between; gap: 8px; padding: 12px 16px; border-bottom: 1px solid var(--line); position: sticky; top: 0; background: var(--panel); }
.detail-head h2 { margin: 0; font-size: 15px; overflow-wrap: anywhere; }
#detail-body { padding: 12px 16px 16px; }
.facts { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 4px 14px; margin: 0 0 12px; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; overflow-wrap: anywhere; }
.timeline { list-style: none; margin: 0; padding: 0; }
.timeline li { display: grid; grid-template-columns: 28px minmax(0, 1fr) auto; gap: 2px 10px; padding: 8px 0; border-bottom: 1px solid var(--line); }
.timeline .seq { color: var(--muted); font-variant-numeric: tabular-nums; }
.timeline .when { grid-column: 2 / 4; color: var(--muted); font-size: 12px; }
pre.meta { background: var(--soft); border-radius: 8px; padding: 8px; overflow-x: auto; font-size: 12px; margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; }
h3 { font-size: 13px; margin: 14px 0 6px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }

@media (max-width: 900px) {
  .grid { grid-template-columns: minmax(0, 1fr); }
  .span-2 { grid-column: auto; }
}
@media (max-width: 640px) {
  main { padding: 12px 10px 32px; }
  .bar { padding: 8px 10px; }
  .controls { margin-left: 0; width: 100%; justify-content: space-between; }
  .kpis { grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 8px; }
  .kpi { padding: 10px 12px; }
  .kpi .value { font-size: 18px; }
  .opt, .audit .date-part { display: none; }
  th, td { padding: 6px 5px; }
  .card { padding: 12px; }
}
`
