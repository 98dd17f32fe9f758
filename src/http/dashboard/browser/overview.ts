/** The overview: totals, escrow counts by status, the regions table and the chart over time. */
import { setFilters } from "./audit.js"
import { $, all, appendAll, clear, el, svg } from "./dom.js"
import { bucketLabel, exactText, micros, niceStep, shortAmount, when } from "./format.js"
import { colorOf, type Metric, money, moneyFromMicros, state } from "./state.js"
import type { Overview, SeriesPoint, Status } from "./types.js"

const METRICS: Readonly<Record<Metric, { readonly title: string; readonly field: keyof Omit<SeriesPoint, "region"> }>> = {
  revenue: { title: "Revenue by region", field: "revenue_usdc" },
  spent: { title: "Spending by region", field: "spent_usdc" },
  referral: { title: "Referral income by region", field: "referral_income_usdc" }
}

const STATUSES: ReadonlyArray<Status> = ["pending", "released", "cancelled", "expired"]

const kpi = (label: string, amountText: string | null, sub: string, id: string): HTMLDivElement =>
  el("div", { className: "card kpi", id }, [
    el("div", { className: "label", text: label }),
    el("div", { className: "value" }, [money(amountText ?? "0"), el("span", { className: "unit", text: "USDC" })]),
    sub ? el("div", { className: "sub", text: sub }) : null
  ])

export const renderOverview = (o: Overview): void => {
  state.overview = o
  const operator = o.scope === "operator"
  const kpis = $("kpis")
  clear(kpis)
  appendAll(kpis, [
    kpi("Revenue", o.totals.revenue_usdc, operator ? "net paid to payees" : "net received as payee", "kpi-revenue"),
    kpi("Spending", o.totals.spent_usdc, operator ? "gross released by payers" : "gross released as payer", "kpi-spent"),
    kpi("Fees paid", o.totals.fees_paid_usdc, "borne by payees", "kpi-fees"),
    kpi("Referral income", o.totals.referral_income_usdc, operator ? "paid to referrers" : "from agents you referred", "kpi-referral"),
    kpi("Locked", o.locked_usdc, "in pending escrows", "kpi-locked"),
    operator
      ? kpi("Platform fees", o.platform_fees_usdc, "kept after referral shares", "kpi-platform")
      : kpi("Available", o.available_usdc, "spendable balance", "kpi-available")
  ])

  const statuses = $("statuses")
  clear(statuses)
  for (const s of STATUSES) {
    statuses.appendChild(el("button", {
      type: "button",
      className: "pill",
      "aria-pressed": state.filters.status === s ? "true" : "false",
      dataset: { status: s },
      title: "Show " + s + " escrows",
      on: {
        click: () => setFilters({ status: state.filters.status === s ? "" : s, region: state.filters.region, counterparty: state.filters.counterparty })
      }
    }, [el("span", { className: "dot s-" + s }), s, el("span", { className: "count", text: String(o.status_counts[s]) })]))
  }

  for (const r of o.by_region) colorOf(r.region)
  renderRegions(o)
  renderChart()
  renderRegionOptions(o)
}

const renderRegions = (o: Overview): void => {
  const table = $<HTMLTableElement>("regions")
  const body = table.tBodies[0]!
  const foot = table.tFoot!
  clear(body)
  clear(foot)
  if (o.by_region.length === 0) {
    body.appendChild(el("tr", null, el("td", { colspan: 6, className: "empty", text: "No escrows yet." })))
    return
  }
  const total = { escrows: 0, revenue: 0n, spent: 0n, fees: 0n, referral: 0n }
  for (const r of o.by_region) {
    total.escrows += r.escrows
    total.revenue += micros(r.revenue_usdc)
    total.spent += micros(r.spent_usdc)
    total.fees += micros(r.fees_paid_usdc)
    total.referral += micros(r.referral_income_usdc)
    const swatch = el("span", { className: "swatch" })
    swatch.style.background = colorOf(r.region)
    body.appendChild(el("tr", { dataset: { region: r.region } }, [
      el("td", null, [swatch, " ", r.region]),
      el("td", { className: "n", text: String(r.escrows) }),
      el("td", { className: "n", dataset: { metric: "revenue" } }, money(r.revenue_usdc)),
      el("td", { className: "n", dataset: { metric: "spent" } }, money(r.spent_usdc)),
      el("td", { className: "n opt", dataset: { metric: "fees" } }, money(r.fees_paid_usdc)),
      el("td", { className: "n opt", dataset: { metric: "referral" } }, money(r.referral_income_usdc))
    ]))
  }
  foot.appendChild(el("tr", null, [
    el("td", { text: "All regions" }),
    el("td", { className: "n", text: String(total.escrows) }),
    el("td", { className: "n" }, moneyFromMicros(total.revenue)),
    el("td", { className: "n" }, moneyFromMicros(total.spent)),
    el("td", { className: "n opt" }, moneyFromMicros(total.fees)),
    el("td", { className: "n opt" }, moneyFromMicros(total.referral))
  ]))
}

const renderRegionOptions = (o: Overview): void => {
  const select = $<HTMLSelectElement>("f-region")
  const current = state.filters.region
  clear(select)
  select.appendChild(el("option", { value: "", text: "any" }))
  const names = o.by_region.map((r) => r.region)
  if (current && names.indexOf(current) < 0) names.push(current)
  for (const name of names) select.appendChild(el("option", { value: name, text: name }))
  select.value = current
}

interface Stack {
  readonly t: number
  readonly parts: ReadonlyArray<{ readonly region: string; readonly value: bigint }>
  readonly sum: bigint
}

/** The chart of the chosen metric per region over time: stacked bars, drawn as inline SVG. */
export const renderChart = (): void => {
  const o = state.overview
  if (!o) return
  const metric = METRICS[state.metric]
  $("chart-title").textContent = metric.title + " over time"
  for (const b of all<HTMLButtonElement>("button", $("metric"))) {
    b.setAttribute("aria-pressed", b.dataset["metric"] === state.metric ? "true" : "false")
  }
  const chart = $("chart")
  const legend = $("legend")
  clear(chart)
  clear(legend)

  // Drawn at the container's own width so labels keep their size on a phone.
  const W = Math.max(280, Math.min(1400, Math.round(chart.clientWidth || 720)))
  const H = W < 520 ? 190 : 250
  const left = 48, right = 8, top = 12, bottom = 28
  const root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": metric.title + " over time" })
  chart.appendChild(root)

  const step = o.series.bucket_ms
  const byStart: Record<number, Overview["series"]["buckets"][number]> = {}
  for (const b of o.series.buckets) byStart[new Date(b.start).getTime()] = b
  const starts = Object.keys(byStart).map(Number).sort((a, b) => a - b)
  const regions = o.by_region.map((r) => r.region)
  const totals: Record<string, bigint> = {}
  for (const r of regions) totals[r] = 0n

  if (starts.length === 0) {
    root.appendChild(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", "class": "empty" }, "No money has moved yet."))
  } else {
    const first = starts[0]!, last = starts[starts.length - 1]!
    const columns: Array<number> = []
    for (let t = first; t <= last && columns.length < 120; t += step) columns.push(t)
    const stacks: Array<Stack> = columns.map((t) => {
      const b = byStart[t]
      const parts: Array<{ region: string; value: bigint }> = []
      let sum = 0n
      if (b) {
        for (const p of b.regions) {
          const v = micros(p[metric.field])
          if (v > 0n) {
            parts.push({ region: p.region, value: v })
            sum += v
          }
          totals[p.region] = (totals[p.region] ?? 0n) + v
        }
      }
      return { t, parts, sum }
    })
    let max = 0n
    for (const s of stacks) if (s.sum > max) max = s.sum
    const unit = niceStep(max > 0n ? max : 1000000n)
    let lines = Number((max + unit - 1n) / unit)
    if (lines < 1) lines = 1
    const top2 = unit * BigInt(lines)
    const plotH = H - top - bottom, plotW = W - left - right
    const y = (v: bigint) => top + plotH - plotH * Number(v * 10000n / top2) / 10000
    for (let i = 0; i <= lines; i++) {
      const v = unit * BigInt(i)
      root.appendChild(svg("line", { x1: left, x2: W - right, y1: y(v), y2: y(v), "class": "grid-line" }))
      root.appendChild(svg("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end", "class": "axis" }, shortAmount(v)))
    }
    const slot = plotW / columns.length
    const barW = Math.max(2, Math.min(44, slot * 0.7))
    const labelEvery = Math.max(1, Math.ceil(columns.length / Math.max(2, Math.floor(plotW / 70))))
    stacks.forEach((s, i) => {
      const x = left + slot * i + (slot - barW) / 2
      let base = 0n
      for (const p of s.parts) {
        const y1 = y(base + p.value), y0 = y(base)
        root.appendChild(svg("rect", {
          x,
          y: y1,
          width: barW,
          height: Math.max(1, y0 - y1),
          rx: 2,
          fill: colorOf(p.region),
          "data-region": p.region,
          "data-usdc": exactText(p.value)
        }, svg("title", null, p.region + " · " + when(new Date(s.t).toISOString()) + " UTC · " + exactText(p.value) + " USDC")))
        base += p.value
      }
      if (i % labelEvery === 0) {
        root.appendChild(svg("text", { x: left + slot * i + slot / 2, y: H - 8, "text-anchor": "middle", "class": "axis" }, bucketLabel(s.t, step)))
      }
    })
  }
  for (const r of regions) {
    const swatch = el("span", { className: "swatch" })
    swatch.style.background = colorOf(r)
    legend.appendChild(el("span", { className: "legend-item", dataset: { region: r } }, [swatch, r, " ", moneyFromMicros(totals[r] ?? 0n)]))
  }
}
