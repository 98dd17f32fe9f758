/**
 * The dashboard's data API over real HTTP (no browser): who sees what, figures
 * equal to the ledger's to the micro-USDC, filters and pages, the live stream, and
 * the page itself carrying no data. The browser suite (e2e.test.ts) covers the page.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Option, Redacted } from "effect"
import * as http from "node:http"
import * as vm from "node:vm"
import * as Usdc from "../../src/domain/Usdc.js"
import { SystemAccount } from "../../src/domain/ids.js"
import * as Assets from "../../src/http/dashboard/assets.js"
import * as DashboardSettings from "../../src/http/dashboard/DashboardConfig.js"
import { bucketFor, BUCKET_LADDER_MS } from "../../src/ledger/reports/folds.js"
import { MAX_BUCKETS } from "../../src/domain/reports.js"
import { call, createEscrow, ledgerRegions, register, release, type Running, type Scenario, scenario, start } from "./harness.js"

let r: Running
let s: Scenario

beforeAll(async () => {
  r = await start({ maxLiveStreams: 3 })
  s = await scenario(r)
}, 60_000)

afterAll(async () => {
  await r?.close()
})

const get = (route: string, key?: string) => call(r.base, "GET", route, key)

/**
 * A live stream over `node:http` (not `fetch`: undici opens a spare connection after an
 * aborted stream and never uses it, which keeps the server from closing).
 */
const openLive = (key: string) =>
  new Promise<{ readonly status: number; readonly contentType: string; readonly response: http.IncomingMessage; readonly close: () => void }>(
    (resolve, reject) => {
      const request = http.get(`${r.base}/api/dashboard/live`, { headers: { authorization: `Bearer ${key}` }, agent: false }, (response) =>
        resolve({
          status: response.statusCode ?? 0,
          contentType: String(response.headers["content-type"]),
          response,
          close: () => request.destroy()
        }))
      request.on("error", reject)
    }
  )

/** Reads server-sent events until `until` holds or the bound passes; `onFirst` runs after the first `change`. */
const readEvents = async (key: string, until: (events: ReadonlyArray<string>) => boolean, boundMs: number, onFirst?: () => Promise<void>) => {
  const live = await openLive(key)
  expect(live.status).toBe(200)
  expect(live.contentType).toContain("text/event-stream")
  const events: Array<string> = []
  let buffer = ""
  let first: Promise<void> | undefined
  try {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, boundMs)
      live.response.on("data", (chunk: Buffer) => {
        buffer += chunk.toString("utf8")
        let at: number
        while ((at = buffer.indexOf("\n\n")) >= 0) {
          events.push(buffer.slice(0, at))
          buffer = buffer.slice(at + 2)
        }
        if (first === undefined && onFirst !== undefined && events.some((e) => e.startsWith("event: change"))) first = onFirst()
        if (until(events)) {
          clearTimeout(timer)
          resolve()
        }
      })
      live.response.on("end", () => {
        clearTimeout(timer)
        resolve()
      })
    })
    await first
  } finally {
    live.close()
  }
  return events
}

describe("access", () => {
  it("refuses every data route without a key, or with a wrong one (401, no data)", async () => {
    for (const route of ["session", "overview", "network", "escrows", `escrows/${s.partial}`, "watermark", "live"]) {
      const none = await get(`/api/dashboard/${route}`)
      expect(none.status, route).toBe(401)
      expect(Object.keys(none.body).sort()).toEqual(["error", "message"])
      const wrong = await get(`/api/dashboard/${route}`, "pk_" + "A".repeat(43))
      expect(wrong.status, route).toBe(401)
      const almostOperator = await get(`/api/dashboard/${route}`, r.operatorKey.slice(0, -1) + (r.operatorKey.endsWith("0") ? "1" : "0"))
      expect(almostOperator.status, route).toBe(401)
    }
  })

  it("answers are never cached", async () => {
    const response = await fetch(`${r.base}/api/dashboard/overview`, { headers: { authorization: `Bearer ${s.alice.key}` } })
    expect(response.status).toBe(200)
    expect(response.headers.get("cache-control")).toBe("no-store")
  })

  it("knows the operator and each agent", async () => {
    const operator = await get("/api/dashboard/session", r.operatorKey)
    expect(operator.status).toBe(200)
    expect(operator.body).toMatchObject({ scope: "operator", agent: null, region: "local" })
    const alice = await get("/api/dashboard/session", s.alice.key)
    expect(alice.body).toMatchObject({
      scope: "agent",
      agent: { agent_id: s.alice.agentId, wallet_address: s.alice.wallet, referrer_wallet: s.root.wallet, referral_code: s.alice.referralCode }
    })
  })

  it("shows an agent only escrows it is a party to, and refuses another's escrow (403) and its history", async () => {
    const page = await get("/api/dashboard/escrows?limit=100", s.mallory.key)
    expect(page.status).toBe(200)
    expect(page.body.escrows.length).toBe(2)
    expect(page.body.total).toBe(2)
    for (const e of page.body.escrows) expect([e.payer_wallet, e.payee_wallet]).toContain(s.mallory.wallet)
    // Names: an agent sees its own, not its counterparties'.
    for (const e of page.body.escrows) {
      expect(e.payer_wallet === s.mallory.wallet ? e.payer_name : e.payee_name).toBe(s.mallory.name)
      expect(e.payer_wallet === s.mallory.wallet ? e.payee_name : e.payer_name).toBeNull()
    }

    const foreign = await get(`/api/dashboard/escrows/${s.rootToBob}`, s.mallory.key)
    expect(foreign.status).toBe(403)
    expect(JSON.stringify(foreign.body)).not.toContain(s.root.wallet)

    // Filtering on another agent's wallet does not widen the scope.
    const byRoot = await get(`/api/dashboard/escrows?counterparty=${s.root.wallet}`, s.mallory.key)
    expect(byRoot.body).toMatchObject({ escrows: [], total: 0 })

    const own = await get(`/api/dashboard/escrows/${s.partial}`, s.mallory.key)
    expect(own.status).toBe(200)
    expect(own.body.history.map((h: any) => h.kind)).toEqual(["created", "partially_released", "released"])
  })

  it("gives an agent its own figures and its direct referrals only", async () => {
    const overview = (await get("/api/dashboard/overview", s.mallory.key)).body
    const activity = await Effect.runPromise(r.ledger.activity(s.mallory.wallet))
    expect(overview.scope).toBe("agent")
    expect(overview.wallet_address).toBe(s.mallory.wallet)
    expect(overview.platform_fees_usdc).toBeNull()
    expect(overview.totals).toEqual({
      revenue_usdc: Usdc.format(activity.revenue),
      spent_usdc: Usdc.format(activity.spent),
      fees_paid_usdc: Usdc.format(activity.feesPaid),
      referral_income_usdc: Usdc.format(activity.referralIncome)
    })
    expect(overview.status_counts).toEqual({ pending: 0, released: 1, cancelled: 1, expired: 0 })

    const network = (await get("/api/dashboard/network", s.root.key)).body
    expect(network.root_wallet).toBe(s.root.wallet)
    expect(network.agents.map((a: any) => a.wallet_address).sort()).toEqual([s.root.wallet, s.alice.wallet, s.bob.wallet].sort())
    // carol is alice's referral, not root's: root does not see her.
    expect(JSON.stringify(network)).not.toContain(s.carol.wallet)
    const report = await Effect.runPromise(r.ledger.referrals(s.root.wallet))
    expect(network.earned_usdc).toBe(Usdc.format(report.earned))
    for (const referred of report.referred) {
      const node = network.agents.find((a: any) => a.wallet_address === referred.agent.wallet)
      expect(node.earned_for_referrer_usdc).toBe(Usdc.format(referred.earned))
      expect(node.referral_income_usdc).toBeNull()
    }
  })
})

describe("figures", () => {
  it("operator: per-region totals equal the sum of Ledger.activity over every wallet, to the micro-USDC", async () => {
    const overview = (await get("/api/dashboard/overview", r.operatorKey)).body
    const expected = await ledgerRegions(r, s.all.map((a) => a.wallet))
    expect(Object.keys(expected).sort()).toEqual(["iad", "lhr"])
    const shown = Object.fromEntries(
      overview.by_region.map((row: any) => [row.region, { revenue: row.revenue_usdc, spent: row.spent_usdc, fees: row.fees_paid_usdc, referral: row.referral_income_usdc }])
    )
    expect(shown).toEqual(expected)
    expect(overview.locked_usdc).toBe(Usdc.format(await Effect.runPromise(r.ledger.systemBalance(SystemAccount.escrowHolding))))
    expect(overview.platform_fees_usdc).toBe(Usdc.format(await Effect.runPromise(r.ledger.systemBalance(SystemAccount.platformFees))))
    // Fees = platform share + referral shares, exactly.
    expect(Usdc.make(overview.totals.fees_paid_usdc)).toBe(Usdc.make(overview.platform_fees_usdc) + Usdc.make(overview.totals.referral_income_usdc))
    const escrows = overview.by_region.reduce((n: number, row: any) => n + row.escrows, 0)
    expect(escrows).toBe((await Effect.runPromise(r.ledger.verify)).escrows)
  })

  it("the time series adds up to the totals per region", async () => {
    const overview = (await get("/api/dashboard/overview", r.operatorKey)).body
    const sums: Record<string, { revenue: bigint; spent: bigint; referral: bigint }> = {}
    for (const bucket of overview.series.buckets) {
      for (const p of bucket.regions) {
        const t = (sums[p.region] ??= { revenue: 0n, spent: 0n, referral: 0n })
        t.revenue += Usdc.make(p.revenue_usdc)
        t.spent += Usdc.make(p.spent_usdc)
        t.referral += Usdc.make(p.referral_income_usdc)
      }
    }
    for (const row of overview.by_region) {
      expect(Usdc.format(sums[row.region]!.revenue), row.region).toBe(row.revenue_usdc)
      expect(Usdc.format(sums[row.region]!.spent), row.region).toBe(row.spent_usdc)
      expect(Usdc.format(sums[row.region]!.referral), row.region).toBe(row.referral_income_usdc)
    }
    // The agent's series too (alice earns, spends and is referred).
    const alice = (await get("/api/dashboard/overview", s.alice.key)).body
    let revenue = 0n
    let spent = 0n
    for (const bucket of alice.series.buckets) {
      for (const p of bucket.regions) {
        revenue += Usdc.make(p.revenue_usdc)
        spent += Usdc.make(p.spent_usdc)
      }
    }
    expect(Usdc.format(revenue)).toBe(alice.totals.revenue_usdc)
    expect(Usdc.format(spent)).toBe(alice.totals.spent_usdc)
  })

  it("bucket widths keep any range within MAX_BUCKETS", () => {
    expect(bucketFor(0, 59_000)).toBe(BUCKET_LADDER_MS[0])
    expect(bucketFor(0, 3 * 3_600_000)).toBe(5 * 60_000)
    for (const rangeMs of [1, 60_000, 3_600_000, 86_400_000, 90 * 86_400_000, 20 * 365 * 86_400_000]) {
      const start = 1_700_000_000_123
      const width = bucketFor(start, start + rangeMs)
      expect(Math.floor((start + rangeMs) / width) - Math.floor(start / width) + 1).toBeLessThanOrEqual(MAX_BUCKETS)
    }
  })

  it("operator network: every agent, who referred whom, and what each referrer earned from each", async () => {
    const network = (await get("/api/dashboard/network", r.operatorKey)).body
    expect(network.total_agents).toBe(5)
    expect(network.truncated).toBe(false)
    const byWallet = new Map<string, any>(network.agents.map((a: any) => [a.wallet_address, a]))
    expect(byWallet.get(s.alice.wallet).referrer_wallet).toBe(s.root.wallet)
    expect(byWallet.get(s.carol.wallet).referrer_wallet).toBe(s.alice.wallet)
    expect(byWallet.get(s.mallory.wallet).referrer_wallet).toBeNull()
    let total = 0n
    for (const agent of s.all) {
      const report = await Effect.runPromise(r.ledger.referrals(agent.wallet))
      total += report.earned
      expect(byWallet.get(agent.wallet).referral_income_usdc, agent.name).toBe(Usdc.format(report.earned))
      expect(byWallet.get(agent.wallet).referred_count).toBe(report.referred.length)
      for (const referred of report.referred) {
        expect(byWallet.get(referred.agent.wallet).earned_for_referrer_usdc).toBe(Usdc.format(referred.earned))
      }
    }
    expect(network.earned_usdc).toBe(Usdc.format(total))
    expect(total).toBeGreaterThan(0n)
  })
})

describe("audit trail", () => {
  it("filters by status, region and counterparty, newest first, counting all matches", async () => {
    const page = (await get("/api/dashboard/escrows?status=released&region=lhr&limit=100", r.operatorKey)).body
    const expected = (await Effect.runPromise(r.ledger.listEscrows({ status: "released", region: "lhr", limit: 500 }))).escrows
    expect(page.total).toBe(expected.length)
    expect(page.escrows.map((e: any) => e.escrow_id)).toEqual(expected.map((e) => e.id).reverse())
    for (const e of page.escrows) expect([e.status, e.region]).toEqual(["released", "lhr"])

    const carol = (await get(`/api/dashboard/escrows?counterparty=${s.carol.wallet}`, r.operatorKey)).body
    expect(carol.total).toBe(2)
    for (const e of carol.escrows) expect([e.payer_wallet, e.payee_wallet]).toContain(s.carol.wallet)
    expect(carol.escrows.map((e: any) => e.payee_name)).toEqual(["carol", "carol"])
  })

  it("pages without gaps or repeats", async () => {
    const seen: Array<string> = []
    let cursor: string | null = null
    let pages = 0
    let total = 0
    do {
      const page: any = (await get(`/api/dashboard/escrows?limit=7${cursor ? `&cursor=${cursor}` : ""}`, r.operatorKey)).body
      total = page.total
      seen.push(...page.escrows.map((e: any) => e.escrow_id))
      cursor = page.next_cursor
      pages++
    } while (cursor !== null && pages < 20)
    expect(seen.length).toBe(total)
    expect(new Set(seen).size).toBe(total)
    expect([...seen]).toEqual([...seen].sort().reverse())
  })

  it("rejects bad filters with 400 naming the field", async () => {
    for (const [query, field] of [["status=paid", "status"], ["counterparty=0x12", "counterparty"], ["limit=0", "limit"], ["limit=101", "limit"], ["cursor=abc", "cursor"]]) {
      const reply = await get(`/api/dashboard/escrows?${query}`, r.operatorKey)
      expect(reply.status, query).toBe(400)
      expect(reply.body.field, query).toBe(field)
    }
  })
})

describe("live updates", () => {
  it("a stream reports a change when an escrow in the viewer's scope moves, and not for others' escrows", async () => {
    let created = ""
    const events = await readEvents(
      s.carol.key,
      (events) => events.filter((e) => e.startsWith("event: change")).length >= 2,
      8_000,
      async () => {
        // Not carol's: her stream must stay quiet for this one...
        await release(r, s.root, await createEscrow(r, s.root, s.bob, "0.5", "iad"))
        await new Promise((resolve) => setTimeout(resolve, 700))
        // ...and report this one.
        created = await createEscrow(r, s.alice, s.carol, "0.75", "lhr")
      }
    )
    const changes = events.filter((e) => e.startsWith("event: change"))
    expect(events[0]).toMatch(/^retry: \d+/)
    expect(changes.length).toBe(2)
    const watermark = JSON.parse(changes[1]!.split("data: ")[1]!).watermark
    expect((await get("/api/dashboard/watermark", s.carol.key)).body.watermark).toBe(watermark)
    expect(created).not.toBe("")
  })

  it("bounds the streams open at once (429, then the page polls) and frees a slot when a client leaves", async () => {
    const open = await Promise.all([openLive(r.operatorKey), openLive(r.operatorKey), openLive(r.operatorKey)])
    try {
      expect(open.map((live) => live.status)).toEqual([200, 200, 200])
      const refused = await get("/api/dashboard/live", r.operatorKey)
      expect(refused.status).toBe(429)
      expect(refused.body.error).toBe("too_many_live_streams")
      open[0]!.close()
      // The server notices the closed connection and frees the slot: poll with a bound.
      let status = 429
      for (let i = 0; i < 50 && status === 429; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100))
        const probe = await openLive(r.operatorKey)
        status = probe.status
        probe.close()
      }
      expect(status).toBe(200)
    } finally {
      for (const live of open) live.close()
    }
  })
})

describe("operator views under load", () => {
  it("are recomputed at most once per operatorRefreshMs, and say how far behind they are", async () => {
    const slow = await start({ operatorRefreshMs: 60_000 })
    try {
      const payer = await register(slow, "payer", "100")
      const payee = await register(slow, "payee")
      await release(slow, payer, await createEscrow(slow, payer, payee, "10", "iad"))
      const first = (await call(slow.base, "GET", "/api/dashboard/overview", slow.operatorKey)).body
      expect(first.totals.spent_usdc).toBe("10.000000")
      expect((await call(slow.base, "GET", "/api/dashboard/watermark", slow.operatorKey)).body.watermark).toBe(first.watermark)

      await release(slow, payer, await createEscrow(slow, payer, payee, "5", "lhr"))
      const cached = (await call(slow.base, "GET", "/api/dashboard/overview", slow.operatorKey)).body
      // Within the interval: the same answer, and its watermark shows it is behind.
      expect(cached).toEqual(first)
      const now = (await call(slow.base, "GET", "/api/dashboard/watermark", slow.operatorKey)).body.watermark
      expect(now).not.toBe(first.watermark)
      // An agent's own views are never held back.
      const own = (await call(slow.base, "GET", "/api/dashboard/overview", payer.key)).body
      expect(own.totals.spent_usdc).toBe("15.000000")
    } finally {
      await slow.close()
    }
  })
})

describe("the page", () => {
  it("serves the shell, script and stylesheet with a strict CSP and no data in them", async () => {
    for (const route of ["/dashboard", "/dashboard/", "/dashboard/app.js", "/dashboard/app.css"]) {
      const response = await fetch(r.base + route)
      expect(response.status, route).toBe(200)
      expect(response.headers.get("content-security-policy")).toContain("script-src 'self'")
      const text = await response.text()
      for (const agent of s.all) expect(text).not.toContain(agent.wallet)
      const etag = response.headers.get("etag")!
      expect((await fetch(r.base + route, { headers: { "if-none-match": etag } })).status).toBe(304)
    }
    const page = await (await fetch(r.base + "/dashboard")).text()
    expect(page).toContain('id="signin-form"')
    expect(page).not.toMatch(/<script>(?!<\/script>)/)
  })

  it("the script parses as JavaScript", () => {
    expect(() => new vm.Script(Assets.script, { filename: "app.js" })).not.toThrow()
  })

  it("is where GET / sends a person who opens the port", async () => {
    const response = await fetch(r.base + "/", { redirect: "manual" })
    expect({ status: response.status, location: response.headers.get("location") }).toEqual({ status: 302, location: "/dashboard" })
  })

  it("publishes the data API's OpenAPI document", async () => {
    const spec = (await get("/api/dashboard/openapi.json")).body
    expect(Object.keys(spec.paths).sort()).toEqual([
      "/api/dashboard/escrows",
      "/api/dashboard/escrows/{id}",
      "/api/dashboard/live",
      "/api/dashboard/network",
      "/api/dashboard/overview",
      "/api/dashboard/session",
      "/api/dashboard/watermark"
    ])
  })
})

describe("config", () => {
  it("refuses a short operator key at start-up, naming the variable", () => {
    expect(() => DashboardSettings.make({ operatorApiKey: Option.some(Redacted.make("short")) })).toThrow(/OPERATOR_API_KEY must be at least 32/)
  })
})
