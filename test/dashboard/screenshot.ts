/**
 * Renders `docs/dashboard.png`: a day of escrows in three regions on the real server
 * (SQLite, REST API, a clock moved back through the day), shown to the operator in
 * headless Chromium.
 *
 *     npx tsx test/dashboard/screenshot.ts [out.png]
 */
import { Clock, Duration, Effect } from "effect"
import * as path from "node:path"
import { chromium } from "playwright-core"
import { CHROMIUM, CHROMIUM_ARGS } from "./browser.js"
import { type Agent, cancel, createEscrow, register, release, start } from "./harness.js"

const out = process.argv[2] ?? path.join(import.meta.dirname, "../../docs/dashboard.png")

/** The real clock, shifted by `offsetMs`. */
let offsetMs = 0
const shifted: Clock.Clock = {
  [Clock.ClockTypeId]: Clock.ClockTypeId,
  unsafeCurrentTimeMillis: () => Date.now() + offsetMs,
  currentTimeMillis: Effect.sync(() => Date.now() + offsetMs),
  unsafeCurrentTimeNanos: () => BigInt(Date.now() + offsetMs) * 1_000_000n,
  currentTimeNanos: Effect.sync(() => BigInt(Date.now() + offsetMs) * 1_000_000n),
  sleep: (duration: Duration.Duration) => Effect.sleep(duration).pipe(Effect.withClock(Clock.make()))
}

/** Deterministic amounts (a small LCG), so the picture is the same on every run. */
let seed = 42
const random = () => {
  seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31
  return seed / 2 ** 31
}
const amount = (lo: number, hi: number) => (lo + random() * (hi - lo)).toFixed(6)

const r = await start({}, shifted)
try {
  const hourMs = 3_600_000
  offsetMs = -26 * hourMs
  const orchestrator = await register(r, "orchestrator", "20000")
  const summarizer = await register(r, "summarizer", "500", orchestrator.referralCode)
  const translator = await register(r, "translator", "500", orchestrator.referralCode)
  const researcher = await register(r, "researcher", "800", orchestrator.referralCode)
  const labeler = await register(r, "vision-labeler", "300", researcher.referralCode)
  const checker = await register(r, "fact-checker", "300", researcher.referralCode)
  const coder = await register(r, "coder", "400")
  const customers = [
    await register(r, "acme-support-bot", "6000"),
    await register(r, "newsroom-agent", "6000", orchestrator.referralCode)
  ]
  const workers: ReadonlyArray<[Agent, string]> = [
    [summarizer, "summarise a filing"],
    [translator, "translate a contract"],
    [researcher, "research a market"],
    [labeler, "label images"],
    [checker, "check facts"],
    [coder, "write a parser"]
  ]
  const regions = ["iad", "lhr", "nrt"]
  const weight = (region: string, hour: number) =>
    // Each region busiest in its own daytime.
    region === "iad" ? 1 + Math.sin(((hour - 8) / 24) * 2 * Math.PI) : region === "lhr" ? 1 + Math.sin(((hour - 3) / 24) * 2 * Math.PI) : 0.6 + Math.sin(((hour + 6) / 24) * 2 * Math.PI) * 0.6

  for (let h = 24; h >= 0; h--) {
    offsetMs = -h * hourMs
    const hour = (new Date(Date.now() + offsetMs).getUTCHours())
    for (const region of regions) {
      const count = Math.round(weight(region, hour) * 1.6)
      for (let i = 0; i < count; i++) {
        const customer = customers[Math.floor(random() * customers.length)]!
        const id = await createEscrow(r, customer, orchestrator, amount(2, 18), region, "inference request")
        await release(r, customer, id)
        const [worker, task] = workers[Math.floor(random() * workers.length)]!
        const sub = await createEscrow(r, orchestrator, worker, amount(0.5, 6), region, task)
        if (random() < 0.08) await cancel(r, worker, sub)
        else if (h > 0 || random() < 0.5) await release(r, orchestrator, sub)
      }
    }
  }
  offsetMs = 0

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS })
  const page = await browser.newPage({ viewport: { width: 1280, height: 1600 }, deviceScaleFactor: 1, colorScheme: "light" })
  await page.goto(`${r.base}/dashboard`)
  await page.fill("#key", r.operatorKey)
  await page.click("#signin-button")
  await page.waitForSelector("body[data-loaded='1']")
  await page.waitForSelector("#live[data-state='live']")
  // The main view down to a few rows of the audit trail, cut between rows.
  const bottom = await page.$eval("#audit tbody tr:nth-child(6)", (row) => row.getBoundingClientRect().bottom)
  await page.screenshot({ path: out, clip: { x: 0, y: 0, width: 1280, height: Math.ceil(bottom) + 1 } })
  await browser.close()
  console.log(`wrote ${out}`)
} finally {
  await r.close()
}
