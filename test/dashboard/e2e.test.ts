/**
 * The dashboard in a real browser: Debian's Chromium driven by `playwright-core`
 * (no browser download), against the real server on an ephemeral loopback port
 * with a temp SQLite ledger, filled through the REST API. Every figure read from
 * the page's DOM (`data-usdc`, the exact 6-place value) is compared with the
 * ledger's own.
 *
 * Skipped, saying why, when /usr/bin/chromium is missing (`apt-get install chromium`).
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { Browser, BrowserContext, Page } from "playwright-core"
import type { WalletAddress } from "../../src/domain/ids.js"
import { SystemAccount } from "../../src/domain/ids.js"
import { CHROMIUM, CHROMIUM_ARGS, hasChromium as chromiumInstalled } from "./browser.js"
import * as Usdc from "../../src/domain/Usdc.js"
import {
  call,
  createEscrow,
  ledgerRegions,
  MALLORY_NAME,
  release,
  type Running,
  type Scenario,
  scenario,
  start
} from "./harness.js"

const hasChromium = chromiumInstalled()

// Browser globals, for the callbacks that run in the page (the project compiles without the DOM lib).
declare const document: any
declare const window: any
declare const sessionStorage: any
declare const location: any
declare const getComputedStyle: any
type HTMLElement = any
const WAIT_MS = 10_000

if (!hasChromium) {
  console.warn(`dashboard e2e skipped: ${CHROMIUM} not found (install Debian's package: apt-get install -y chromium)`)
}

describe.skipIf(!hasChromium)("dashboard in Chromium", () => {
  let r: Running
  let s: Scenario
  let browser: Browser
  const contexts: Array<BrowserContext> = []
  // Screenshots of what the tests saw, for a person to look at when one fails.
  const shots = fs.mkdtempSync(path.join(os.tmpdir(), "ringmaster-dashboard-shots-"))

  beforeAll(async () => {
    const { chromium } = await import("playwright-core")
    r = await start()
    s = await scenario(r)
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS })
  }, 90_000)

  afterAll(async () => {
    for (const context of contexts) await context.close().catch(() => undefined)
    await browser?.close()
    await r?.close()
  }, 30_000)

  /** A fresh tab (own sessionStorage) that records every URL it requests and fails on page errors. */
  const open = async (viewport = { width: 1280, height: 900 }) => {
    const context = await browser.newContext({ viewport })
    contexts.push(context)
    const page = await context.newPage()
    const urls: Array<string> = []
    const errors: Array<string> = []
    page.on("request", (request) => urls.push(request.url()))
    page.on("pageerror", (error) => errors.push(error.message))
    page.on("console", (message) => {
      if (message.type() === "error" && !/status of (401|403|429)/.test(message.text())) errors.push(message.text())
    })
    await page.goto(`${r.base}/dashboard`)
    return { page, urls, errors }
  }

  /**
   * One signed-in operator tab shared by the operator tests (a new Chromium tab costs
   * seconds on the 2-core machine); each test sets the filters it needs.
   */
  let operatorTab: Awaited<ReturnType<typeof open>> | undefined
  const operator = async () => {
    if (operatorTab === undefined) {
      operatorTab = await open()
      await signIn(operatorTab.page, r.operatorKey)
    }
    return operatorTab
  }

  const signIn = async (page: Page, key: string) => {
    await page.fill("#key", key)
    await page.click("#signin-button")
    await page.waitForSelector("body[data-loaded='1']", { timeout: WAIT_MS })
  }

  /** The regions table as the page shows it: exact values from `data-usdc`. */
  const shownRegions = (page: Page) =>
    page.$$eval("#regions tbody tr[data-region]", (rows) =>
      Object.fromEntries(rows.map((row) => {
        const cell = (metric: string) => row.querySelector(`[data-metric='${metric}'] .money`)!.dataset["usdc"]
        return [(row as HTMLElement).dataset["region"], { revenue: cell("revenue"), spent: cell("spent"), fees: cell("fees"), referral: cell("referral") }]
      })))

  const kpi = (page: Page, id: string) => page.$eval(`#${id} .money`, (node) => (node as HTMLElement).dataset["usdc"])

  const auditRows = (page: Page) =>
    page.$$eval("#audit tbody tr", (rows) =>
      rows.map((row) => {
        const r = row as HTMLElement
        return {
          id: r.dataset["escrowId"]!,
          status: r.dataset["status"]!,
          region: r.dataset["region"]!,
          parties: [...r.querySelectorAll(".party")].map((p) => p.dataset["wallet"]!)
        }
      }))

  it("shows a sign-in form and no data without a key; a wrong key is refused", async () => {
    const { page, errors } = await open()
    await page.waitForSelector("#signin:not([hidden])")
    expect(await page.isHidden("#app")).toBe(true)
    expect(await page.$$eval("#kpis > *, #audit tbody tr, #network li", (nodes) => nodes.length)).toBe(0)
    const html = await page.content()
    for (const agent of s.all) expect(html).not.toContain(agent.wallet)

    await page.fill("#key", "pk_" + "A".repeat(43))
    await page.click("#signin-button")
    await page.waitForFunction(() => document.getElementById("signin-error")!.textContent!.includes("not accepted"), null, { timeout: WAIT_MS })
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0)
    expect(await page.isHidden("#app")).toBe(true)
    expect(errors).toEqual([])
  })

  it("operator: regional totals equal the ledger's to the micro-USDC; the key never goes in a URL", async () => {
    const { page, urls, errors } = await operator()
    expect(await page.textContent("#who")).toContain("Operator")

    const expected = await ledgerRegions(r, s.all.map((a) => a.wallet))
    expect(await shownRegions(page)).toEqual(expected)
    const sum = (field: "revenue" | "spent" | "fees" | "referral") =>
      Usdc.format(Object.values(expected).reduce((acc, t) => acc + Usdc.make(t[field]), 0n))
    expect(await kpi(page, "kpi-revenue")).toBe(sum("revenue"))
    expect(await kpi(page, "kpi-spent")).toBe(sum("spent"))
    expect(await kpi(page, "kpi-fees")).toBe(sum("fees"))
    expect(await kpi(page, "kpi-referral")).toBe(sum("referral"))
    expect(await kpi(page, "kpi-locked")).toBe(Usdc.format(await Effect.runPromise(r.ledger.systemBalance(SystemAccount.escrowHolding))))
    expect(await kpi(page, "kpi-platform")).toBe(Usdc.format(await Effect.runPromise(r.ledger.systemBalance(SystemAccount.platformFees))))

    // The chart: one colour per region, its legend totals the same figures.
    const legend = await page.$$eval("#legend .legend-item", (items) =>
      Object.fromEntries(items.map((i) => [(i as HTMLElement).dataset["region"], (i.querySelector(".money") as HTMLElement).dataset["usdc"]])))
    expect(legend).toEqual({ iad: expected["iad"]!.revenue, lhr: expected["lhr"]!.revenue })
    const bars = await page.$$eval("#chart rect[data-region]", (rects) => rects.map((rect) => rect.getAttribute("data-region")))
    expect(new Set(bars)).toEqual(new Set(["iad", "lhr"]))

    // Amounts show 2 places; the exact value is in the title, and the toggle shows it.
    const lhrRevenue = "#regions tr[data-region='lhr'] [data-metric='revenue'] .money"
    const exact = expected["lhr"]!.revenue
    expect(await page.getAttribute(lhrRevenue, "title")).toBe(`${exact} USDC`)
    expect(await page.textContent(lhrRevenue)).toMatch(/^[\d,]+\.\d{2}$/)
    await page.check("#exact")
    expect((await page.textContent(lhrRevenue))!.replaceAll(",", "")).toBe(exact)
    await page.uncheck("#exact")

    for (const url of urls) expect(url).not.toContain(r.operatorKey)
    expect(await page.evaluate(() => location.href)).toBe(`${r.base}/dashboard`)
    await page.screenshot({ path: path.join(shots, "operator.png"), fullPage: true })
    expect(errors).toEqual([])
  })

  it("operator: the referral tree shows who referred whom and what each referrer earned", async () => {
    const { page } = await operator()
    const nested = (outer: WalletAddress, inner: WalletAddress) =>
      page.$$eval(`#network li[data-wallet='${outer}'] li[data-wallet='${inner}']`, (nodes) => nodes.length)
    expect(await nested(s.root.wallet, s.alice.wallet)).toBe(1)
    expect(await nested(s.root.wallet, s.bob.wallet)).toBe(1)
    expect(await nested(s.alice.wallet, s.carol.wallet)).toBe(1)
    expect(await nested(s.root.wallet, s.mallory.wallet)).toBe(0)

    const income = (wallet: WalletAddress) =>
      page.$eval(`#network li[data-wallet='${wallet}'] > .node .income`, (node) => (node as HTMLElement).dataset["usdc"])
    const forReferrer = (wallet: WalletAddress) =>
      page.$eval(`#network li[data-wallet='${wallet}'] > .node .for-referrer-amount`, (node) => (node as HTMLElement).dataset["usdc"])
    for (const agent of [s.root, s.alice]) {
      const report = await Effect.runPromise(r.ledger.referrals(agent.wallet))
      expect(await income(agent.wallet)).toBe(Usdc.format(report.earned))
      for (const referred of report.referred) expect(await forReferrer(referred.agent.wallet)).toBe(Usdc.format(referred.earned))
    }
    expect(Usdc.make((await income(s.root.wallet))!)).toBeGreaterThan(0n)

    // A name that is HTML is shown as text, never run.
    const names = await page.$$eval("#network .name", (nodes) => nodes.map((n) => n.textContent))
    expect(names).toContain(MALLORY_NAME)
    expect(await page.evaluate(() => (window as any).__pwned)).toBeUndefined()
    expect(await page.$$eval("#network img", (nodes) => nodes.length)).toBe(0)
  })

  it("filters and pages the audit trail, and opens one escrow's full history", async () => {
    const { page, errors } = await operator()
    const total = (await Effect.runPromise(r.ledger.verify)).escrows
    expect(await page.textContent("#page-label")).toBe(`1–20 of ${total}`)
    const first = await auditRows(page)
    expect(first.length).toBe(20)
    await page.click("#older")
    await page.waitForFunction(() => document.getElementById("page-label")!.textContent!.startsWith("21–"), null, { timeout: WAIT_MS })
    const second = await auditRows(page)
    expect(second.length).toBe(total - 20)
    expect(second.some((row) => first.some((f) => f.id === row.id))).toBe(false)
    await page.click("#newer")
    await page.waitForFunction(() => document.getElementById("page-label")!.textContent!.startsWith("1–"), null, { timeout: WAIT_MS })

    // Status and region.
    const expected = (await Effect.runPromise(r.ledger.listEscrows({ status: "released", region: "lhr", limit: 500 }))).escrows
    await page.selectOption("#f-status", "released")
    await page.selectOption("#f-region", "lhr")
    await page.click("#f-apply")
    await page.waitForFunction((n) => document.getElementById("audit-range")!.textContent === `${n} escrows`, expected.length, { timeout: WAIT_MS })
    const filtered = await auditRows(page)
    expect(filtered.length).toBe(Math.min(20, expected.length))
    for (const row of filtered) expect([row.status, row.region]).toEqual(["released", "lhr"])
    expect(filtered.map((row) => row.id)).toEqual(expected.map((e) => e.id).reverse().slice(0, 20))

    // Counterparty: mallory's two escrows, one of them released in two parts.
    await page.click("#f-reset")
    await page.fill("#f-counterparty", s.mallory.wallet.toUpperCase().replace("0X", "0x"))
    await page.click("#f-apply")
    await page.waitForFunction(() => document.getElementById("audit-range")!.textContent === "2 escrows", null, { timeout: WAIT_MS })
    for (const row of await auditRows(page)) expect(row.parties).toContain(s.mallory.wallet)

    await page.click(`#audit tr[data-escrow-id='${s.partial}']`)
    await page.waitForSelector(`#detail[open] #detail-body[data-escrow-id='${s.partial}'] #history li`, { timeout: WAIT_MS })
    const history = await page.$$eval("#history li", (items) =>
      items.map((li) => ({
        seq: Number((li as HTMLElement).dataset["seq"]),
        kind: (li as HTMLElement).dataset["kind"],
        amount: (li.querySelector(".money") as HTMLElement).dataset["usdc"]
      })))
    const events = await Effect.runPromise(r.ledger.escrowHistory(s.partial))
    expect(history).toEqual(events.map((e) => ({ seq: e.seq, kind: e.kind, amount: Usdc.format(e.amount) })))
    expect(history.map((h) => h.kind)).toEqual(["created", "partially_released", "released"])
    expect(await page.textContent("#detail-body")).toContain("two-part job")
    await page.click("#detail-close")
    expect(await page.isVisible("#detail")).toBe(false)

    // A bad counterparty is refused in the page, naming what is expected.
    await page.fill("#f-counterparty", "0x123")
    await page.click("#f-apply")
    expect(await page.textContent("#filter-error")).toContain("Counterparty")
    await page.click("#f-reset")
    await page.waitForFunction((n) => document.getElementById("page-label")!.textContent === `1–20 of ${n}`, total, { timeout: WAIT_MS })
    expect(errors).toEqual([])
  })

  it("a new escrow appears, and its release moves the regional totals, without a reload", async () => {
    const { page, errors } = await operator()
    await page.waitForSelector("#live[data-state='live']", { timeout: WAIT_MS })
    await page.evaluate(() => ((window as any).__sameDocument = true))

    const id = await createEscrow(r, s.root, s.alice, "3.210001", "lhr", "arrives live")
    await page.waitForSelector(`#audit tr[data-escrow-id='${id}'][data-status='pending']`, { timeout: WAIT_MS })

    await release(r, s.root, id)
    const expected = (await ledgerRegions(r, s.all.map((a) => a.wallet)))["lhr"]!
    await page.waitForFunction(
      (want) => document.querySelector("#regions tr[data-region='lhr'] [data-metric='revenue'] .money")?.dataset["usdc"] === want,
      expected.revenue,
      { timeout: WAIT_MS }
    )
    await page.waitForSelector(`#audit tr[data-escrow-id='${id}'][data-status='released']`, { timeout: WAIT_MS })
    expect((await shownRegions(page))["lhr"]).toEqual(expected)
    expect(await page.evaluate(() => (window as any).__sameDocument)).toBe(true)
    expect(errors).toEqual([])
  })

  it("without a live stream the page polls, and still updates without a reload", async () => {
    const { page, errors } = await open()
    // As behind a proxy that drops streaming responses.
    await page.route("**/api/dashboard/live", (route) => route.abort())
    await signIn(page, s.bob.key)
    await page.waitForSelector("#live[data-state='polling']", { timeout: WAIT_MS })
    const id = await createEscrow(r, s.root, s.bob, "1.000001", "iad", "seen by polling")
    await page.waitForSelector(`#audit tr[data-escrow-id='${id}']`, { timeout: WAIT_MS })
    expect(await page.$eval(`#audit tr[data-escrow-id='${id}'] .money`, (node) => (node as HTMLElement).dataset["usdc"])).toBe("1.000001")
    expect(errors.filter((e) => !e.includes("ERR_FAILED"))).toEqual([])
  })

  it("an agent sees only its own wallet, escrows and referrals, in the page and through the data API", async () => {
    const { page, errors } = await open()
    await signIn(page, s.mallory.key)
    expect(await page.textContent("#who")).toContain(MALLORY_NAME)

    const activity = await Effect.runPromise(r.ledger.activity(s.mallory.wallet))
    const shown = await shownRegions(page)
    for (const [region, t] of Object.entries(activity.byRegion)) {
      expect(shown[region]).toEqual({
        revenue: Usdc.format(t.revenue),
        spent: Usdc.format(t.spent),
        fees: Usdc.format(t.feesPaid),
        referral: Usdc.format(t.referralIncome)
      })
    }
    expect(await kpi(page, "kpi-revenue")).toBe(Usdc.format(activity.revenue))
    expect(await kpi(page, "kpi-available")).toBe(Usdc.format((await Effect.runPromise(r.ledger.balance(s.mallory.wallet))).available))
    expect(await page.$$eval("#kpi-platform", (nodes) => nodes.length)).toBe(0)

    const rows = await auditRows(page)
    expect(rows.length).toBe(2)
    for (const row of rows) expect(row.parties).toContain(s.mallory.wallet)
    expect(await page.$$eval("#network li", (nodes) => nodes.map((n) => (n as HTMLElement).dataset["wallet"]))).toEqual([s.mallory.wallet])

    // Wallets of agents she never dealt with appear nowhere in the page.
    const html = await page.content()
    expect(html).not.toContain(s.root.wallet)
    expect(html).not.toContain(s.carol.wallet)

    // The data API, with her key, from the page: another's escrow is refused, her scope is hers.
    const api = await page.evaluate(async ({ foreign, root }) => {
      const key = sessionStorage.getItem("ringmaster.dashboard.key")!
      const get = async (p: string) => {
        const res = await fetch(p, { headers: { authorization: `Bearer ${key}` } })
        return { status: res.status, body: await res.json() }
      }
      return {
        foreign: await get(`/api/dashboard/escrows/${foreign}`),
        byRoot: await get(`/api/dashboard/escrows?counterparty=${root}`),
        overview: await get("/api/dashboard/overview")
      }
    }, { foreign: s.rootToBob, root: s.root.wallet })
    expect(api.foreign.status).toBe(403)
    expect(JSON.stringify(api.foreign.body)).not.toContain(s.root.wallet)
    expect(api.byRoot.body).toMatchObject({ escrows: [], total: 0 })
    expect(api.overview.body).toMatchObject({ scope: "agent", wallet_address: s.mallory.wallet, platform_fees_usdc: null })

    // Signing out leaves no data behind.
    await page.click("#signout")
    await page.waitForSelector("#signin:not([hidden])")
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0)
    expect(await page.$$eval("#kpis > *, #audit tbody tr, #network li, #regions tbody tr", (nodes) => nodes.length)).toBe(0)
    expect(errors).toEqual([])
  })

  it("an agent's key cannot see the operator's view even through a direct API call", async () => {
    const reply = await call(r.base, "GET", "/api/dashboard/network", s.alice.key)
    expect(reply.status).toBe(200)
    const wallets = reply.body.agents.map((a: any) => a.wallet_address).sort()
    expect(wallets).toEqual([s.alice.wallet, s.carol.wallet].sort())
    expect(JSON.stringify(reply.body)).not.toContain(s.mallory.wallet)
  })

  it("renders at phone width without horizontal overflow", async () => {
    const { page, errors } = await open({ width: 375, height: 812 })
    await signIn(page, r.operatorKey)
    const overflow = () =>
      page.evaluate(() => ({
        document: document.documentElement.scrollWidth,
        body: document.body.scrollWidth,
        viewport: window.innerWidth
      }))
    let size = await overflow()
    expect(size.document).toBeLessThanOrEqual(size.viewport)
    expect(size.body).toBeLessThanOrEqual(size.viewport)
    // Every card fits the viewport.
    const widest = await page.$$eval(".card", (cards) => Math.max(...cards.map((c) => c.getBoundingClientRect().right)))
    expect(widest).toBeLessThanOrEqual(375)
    // Columns hidden at this width are hidden in the header and the rows alike.
    const columns = await page.evaluate(() => {
      const shown = (cells: any) => [...cells].filter((cell: any) => getComputedStyle(cell).display !== "none").length
      return { head: shown(document.querySelectorAll("#audit thead th")), row: shown(document.querySelectorAll("#audit tbody tr:first-child td")) }
    })
    expect(columns.head).toBe(columns.row)
    expect(columns.head).toBeLessThan(7)
    await page.screenshot({ path: path.join(shots, "phone.png"), fullPage: true })

    await page.click(`#audit tbody tr`)
    await page.waitForSelector("#detail[open] #history li", { timeout: WAIT_MS })
    size = await overflow()
    expect(size.document).toBeLessThanOrEqual(size.viewport)
    const dialog = await page.$eval("#detail", (d) => d.getBoundingClientRect().right)
    expect(dialog).toBeLessThanOrEqual(375)
    await page.screenshot({ path: path.join(shots, "phone-escrow.png") })
    expect(errors).toEqual([])
  })
})

if (!hasChromium) {
  describe("dashboard in Chromium", () => {
    it.skip(`skipped: ${CHROMIUM} not found; install Debian's chromium (apt-get install -y chromium)`, () => {})
  })
}
