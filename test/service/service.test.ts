/**
 * The composed service in process: real HTTP on an ephemeral loopback port, the
 * embedded SQLite ledger and journal in a temp dir, the Prometheus endpoint on a
 * free port. Every money assertion is exact, in micro-USDC, before and after.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import * as fs from "node:fs"
import { Duration, Effect, Redacted, Schema } from "effect"
import type { EscrowId, WalletAddress } from "../../src/domain/ids.js"
import { SystemAccount } from "../../src/domain/ids.js"
import * as Usdc from "../../src/domain/Usdc.js"
import type { LedgerShape } from "../../src/ledger/Ledger.js"
import { journalFilename } from "../../src/service/Journal.js"
import { identityFilename } from "../../src/service/Identity.js"
import * as Pipeline from "../../src/service/Pipeline.js"
import {
  type Agent,
  eventually,
  type InProcess,
  metricValue,
  payerWithMandate,
  register,
  request,
  startInProcess,
  wallet
} from "./support.js"

/** A pipeline whose behaviour the prompt chooses: "fail:" fails, "die:" dies, "slow:<ms>" sleeps, else the default. */
const testPipeline = Pipeline.layer({
  inference: (prompt, ctx) => {
    if (prompt.startsWith("fail:")) return Effect.fail(new Error("the model refused"))
    if (prompt.startsWith("die:")) return Effect.die(new Error("the model crashed"))
    if (prompt.startsWith("slow:")) return Effect.as(Effect.sleep(Duration.millis(Number(prompt.slice(5)))), "slow done")
    return Pipeline.deterministicInference(prompt, ctx)
  },
  tasks: [
    ...Pipeline.defaultTasks,
    Pipeline.task({
      name: "flaky",
      input: Schema.Struct({ ok: Schema.Boolean }),
      price: Usdc.make("0.003"),
      run: ({ ok }) => (ok ? Effect.succeed({ ok }) : Effect.fail(new Error("flaky failed")))
    })
  ]
})

const micros = (text: string) => Usdc.make(text)

let svc: InProcess
let ledger: LedgerShape
let orchestrator: WalletAddress
let referrer: Agent

// Every payer here claims the faucet from 127.0.0.1, more than the per-address default
// allows; that limit has its own tests (test/http/faucet-limit.test.ts).
process.env["FAUCET_CLAIMS_PER_ADDRESS_PER_DAY"] = "1000"

const run = <A>(effect: Effect.Effect<A, unknown>) => Effect.runPromise(effect)
const balanceOf = async (w: WalletAddress) => (await run(ledger.balance(w)))
const platformFees = async () => run(ledger.systemBalance(SystemAccount.platformFees))

beforeAll(async () => {
  svc = await startInProcess({ region: "iad", taskTimeoutMs: 1_500 }, { pipeline: testPipeline })
  ledger = svc.ledger!
  const info = await request(svc.base, "GET", "/info")
  orchestrator = info.body.wallet_address
  referrer = await register(svc.base, "referrer")
}, 60_000)

afterAll(async () => {
  await svc?.dispose()
})

describe("service: health, info, identity", () => {
  it("GET /health answers ok with the region", async () => {
    const reply = await request(svc.base, "GET", "/health")
    expect(reply.status).toBe(200)
    expect(reply.body).toEqual({ ok: true, region: "iad" })
  })

  it("GET /info tells who to grant a mandate to and what a request costs; the identity is persisted", async () => {
    const reply = await request(svc.base, "GET", "/info")
    expect(reply.status).toBe(200)
    expect(reply.body).toMatchObject({ region: "iad", settlement: "embedded" })
    expect(reply.body.agent_id).toMatch(/^agt_/)
    expect(reply.body.wallet_address).toMatch(/^0x[0-9a-f]{40}$/)
    expect(reply.body.referral_code).toMatch(/^ref_/)
    expect(reply.body.pricing.inference).toMatchObject({ minimum_usdc: "0.001000", per_char_usdc: "0.000010" })
    expect(reply.body.pricing.tasks.summarize.price_usdc).toBe("0.002000")
    const agent = await run(ledger.getAgent(orchestrator))
    expect(agent.agentId).toBe(reply.body.agent_id)
    expect(agent.referralCode).toBe(reply.body.referral_code)
    const stored = JSON.parse(fs.readFileSync(identityFilename(svc.dataDir), "utf8"))
    expect(stored.wallet_address).toBe(orchestrator)
  })

  it("the settlement API, its OpenAPI document and MCP share the port", async () => {
    expect((await request(svc.base, "GET", "/openapi.json")).status).toBe(200)
    const mcp = await request(svc.base, "POST", "/mcp", {
      headers: { accept: "application/json, text/event-stream" },
      body: { jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-03-26", capabilities: {}, clientInfo: { name: "t", version: "1" } } }
    })
    expect(mcp.status).toBe(200)
  })
})

describe("POST /inference: per-request billing", () => {
  it("charges max(0.001, len × 0.00001) through an escrow released to the orchestrator, fee and referral exact", async () => {
    const payer = await payerWithMandate(svc.base, orchestrator, { referralCode: referrer.referralCode })
    const prompt = "word ".repeat(200) // 1,000 characters → 0.010000 USDC
    const [orchBefore, feesBefore, refBefore] = [await balanceOf(orchestrator), await platformFees(), await balanceOf(referrer.wallet)]

    const reply = await request(svc.base, "POST", "/inference", { body: { payer_wallet: payer.wallet, prompt } })
    expect(reply.status).toBe(200)
    expect(reply.body.cost_usdc).toBe("0.010000")
    expect(reply.body.region).toBe("iad")
    expect(reply.body.escrow_id).toMatch(/^esc_/)
    expect(typeof reply.body.result).toBe("string")

    // Payer: 1.000000 from the faucet, less exactly the cost; nothing left locked.
    expect(await wallet(svc.base, payer)).toEqual({ available: "0.990000", locked: "0.000000" })
    // Orchestrator (payee) bears the 1% fee: +10,000 − 100.
    expect((await balanceOf(orchestrator)).available - orchBefore.available).toBe(9_900n)
    // The fee: 15% to the payer's referrer, the rest to the platform (the orchestrator has no referrer).
    expect((await balanceOf(referrer.wallet)).available - refBefore.available).toBe(15n)
    expect((await platformFees()) - feesBefore).toBe(85n)

    const escrow = await run(ledger.getEscrow(reply.body.escrow_id as EscrowId))
    expect(escrow).toMatchObject({ status: "released", amount: micros("0.01"), region: "iad", payer: payer.wallet, payee: orchestrator })
    expect(escrow.mandateId).toBe(payer.mandateId)
    const row = new Database(journalFilename(svc.dataDir), { readonly: true })
      .prepare("SELECT status, escrow_id, amount_micros FROM service_escrows WHERE escrow_id = ?")
      .get(reply.body.escrow_id) as any
    expect(row).toMatchObject({ status: "released", amount_micros: 10_000 })
  })

  it("short prompts cost the minimum 0.001; length counts code points", async () => {
    const payer = await payerWithMandate(svc.base, orchestrator)
    const short = await request(svc.base, "POST", "/inference", { body: { payer_wallet: payer.wallet, prompt: "hi" } })
    expect(short.body.cost_usdc).toBe("0.001000")
    const emoji = "😀".repeat(150) // 150 code points (300 UTF-16 units) → 0.001500
    const long = await request(svc.base, "POST", "/inference", { body: { payer_wallet: payer.wallet, prompt: emoji } })
    expect(long.body.cost_usdc).toBe("0.001500")
    expect(await wallet(svc.base, payer)).toEqual({ available: "0.997500", locked: "0.000000" })
  })

  it("400 without payer_wallet or with a bad one, 403 without a mandate, 402 without funds, 403 beyond the mandate: nothing changes", async () => {
    const funded = await payerWithMandate(svc.base, orchestrator, { maxAmount: "0.002" })
    const noMandate = await register(svc.base, "no-mandate")
    await request(svc.base, "POST", "/api/faucet/claim", { key: noMandate.key, body: { wallet_address: noMandate.wallet, agent_name: "x" } })
    const broke = await payerWithMandate(svc.base, orchestrator, { faucet: false })
    const orchBefore = await balanceOf(orchestrator)
    const feesBefore = await platformFees()
    const before = await Promise.all([funded, noMandate, broke].map((a) => wallet(svc.base, a)))
    const mandateBefore = await run(ledger.getMandate(funded.mandateId as any))

    const cases: Array<[unknown, number, string, string | undefined]> = [
      [{ prompt: "hello" }, 400, "invalid_request", "payer_wallet"],
      [{ payer_wallet: "0xnothex", prompt: "hello" }, 400, "invalid_request", "payer_wallet"],
      [{ payer_wallet: funded.wallet, prompt: 42 }, 400, "invalid_request", "prompt"],
      [{ payer_wallet: noMandate.wallet, prompt: "hello" }, 403, "no_mandate", "payer_wallet"],
      [{ payer_wallet: broke.wallet, prompt: "hello" }, 402, "insufficient_funds", "payer_wallet"],
      [{ payer_wallet: funded.wallet, prompt: "x".repeat(1_000) }, 403, "mandate_exceeded", "payer_wallet"]
    ]
    for (const [body, status, error, field] of cases) {
      const reply = await request(svc.base, "POST", "/inference", { body })
      expect({ status: reply.status, error: reply.body.error, field: reply.body.field }).toEqual({ status, error, field })
    }
    const bad = await request(svc.base, "POST", "/inference", { raw: "{not json" })
    expect(bad.status).toBe(400)

    expect(await Promise.all([funded, noMandate, broke].map((a) => wallet(svc.base, a)))).toEqual(before)
    expect(await balanceOf(orchestrator)).toEqual(orchBefore)
    expect(await platformFees()).toBe(feesBefore)
    expect((await run(ledger.getMandate(funded.mandateId as any))).remaining).toBe(mandateBefore.remaining)
    const pending = await run(ledger.listEscrows({ wallet: orchestrator, status: "pending" }))
    expect(pending.escrows).toEqual([])
  })

  it("a revoked mandate stops paying at the next request, its id remembered or not; a new mandate pays at once", async () => {
    const payer = await payerWithMandate(svc.base, orchestrator)
    const body = { payer_wallet: payer.wallet, prompt: "hello" }
    // Two requests: the second uses the mandate id the first looked up.
    for (let i = 0; i < 2; i++) expect((await request(svc.base, "POST", "/inference", { body })).status).toBe(200)
    expect(await wallet(svc.base, payer)).toEqual({ available: "0.998000", locked: "0.000000" })

    const revoked = await request(svc.base, "DELETE", `/api/mandates/${payer.mandateId}`, { key: payer.key })
    expect(revoked.status).toBe(200)
    const refused = await request(svc.base, "POST", "/inference", { body })
    expect({ status: refused.status, error: refused.body.error }).toEqual({ status: 403, error: "no_mandate" })
    expect(await wallet(svc.base, payer)).toEqual({ available: "0.998000", locked: "0.000000" })
    const mandate = await run(ledger.getMandate(payer.mandateId as any))
    expect({ revoked: mandate.revoked, remaining: mandate.remaining }).toEqual({ revoked: true, remaining: micros("0.998") })

    const grant = async () => {
      const granted = await request(svc.base, "POST", "/api/mandates", {
        key: payer.key,
        body: { payee_wallet: orchestrator, max_amount_usdc: "0.5", budget_usdc: "0.5" }
      })
      expect(granted.status).toBe(201)
      return granted.body.mandate_id as string
    }
    const second = await grant()
    const paid = await request(svc.base, "POST", "/inference", { body })
    expect(paid.status).toBe(200)
    expect((await run(ledger.getEscrow(paid.body.escrow_id))).mandateId).toBe(second)

    // Revoked and replaced between two requests, well within the id's refresh period:
    // the create under the remembered (revoked) id is refused, and the lookup finds the new one.
    expect((await request(svc.base, "DELETE", `/api/mandates/${second}`, { key: payer.key })).status).toBe(200)
    const third = await grant()
    const paidAgain = await request(svc.base, "POST", "/inference", { body })
    expect(paidAgain.status).toBe(200)
    expect((await run(ledger.getEscrow(paidAgain.body.escrow_id))).mandateId).toBe(third)
    expect((await run(ledger.getMandate(second as any))).remaining).toBe(micros("0.499"))
    expect((await run(ledger.getMandate(third as any))).remaining).toBe(micros("0.499"))
    expect(await wallet(svc.base, payer)).toEqual({ available: "0.996000", locked: "0.000000" })
  })

  it("an exhausted mandate is refused with nothing charged, its id remembered", async () => {
    const payer = await payerWithMandate(svc.base, orchestrator, { budget: "0.002" })
    const body = { payer_wallet: payer.wallet, prompt: "hello" }
    for (let i = 0; i < 2; i++) expect((await request(svc.base, "POST", "/inference", { body })).status).toBe(200)
    const refused = await request(svc.base, "POST", "/inference", { body })
    expect({ status: refused.status, error: refused.body.error }).toEqual({ status: 403, error: "mandate_exceeded" })
    expect(await wallet(svc.base, payer)).toEqual({ available: "0.998000", locked: "0.000000" })
  })

  it("a failing, dying or timed-out pipeline cancels the escrow: the payer is refunded in full", async () => {
    const payer = await payerWithMandate(svc.base, orchestrator)
    const orchBefore = await balanceOf(orchestrator)
    for (const [prompt, status, error] of [["fail: please", 500, "task_failed"], ["die: please", 500, "task_failed"], ["slow:5000", 504, "task_timed_out"]] as const) {
      const reply = await request(svc.base, "POST", "/inference", { body: { payer_wallet: payer.wallet, prompt } })
      expect({ status: reply.status, error: reply.body.error }).toEqual({ status, error })
      const escrow = await run(ledger.getEscrow(reply.body.escrow_id))
      expect(escrow.status).toBe("cancelled")
      expect(escrow.refunded).toBe(escrow.amount)
    }
    expect(await wallet(svc.base, payer)).toEqual({ available: "1.000000", locked: "0.000000" })
    expect(await balanceOf(orchestrator)).toEqual(orchBefore)
    const mandate = await run(ledger.getMandate(payer.mandateId as any))
    expect(mandate.remaining).toBe(micros("1"))
  })
})

describe("POST /tasks/{agent}: one paid task per event", () => {
  it("runs the task, settles before answering, and charges a repeated event id once", async () => {
    const payer = await payerWithMandate(svc.base, orchestrator)
    const body = { payer_wallet: payer.wallet, input: { text: "Escrow settles first. Then the machine may stop." } }
    const headers = { "idempotency-key": "event-42" }
    const first = await request(svc.base, "POST", "/tasks/summarize", { body, headers })
    expect(first.status).toBe(200)
    expect(first.body).toMatchObject({ agent: "summarize", cost_usdc: "0.002000", region: "iad", result: { summary: "Escrow settles first.", words: 8 } })
    expect((await run(ledger.getEscrow(first.body.escrow_id))).status).toBe("released")
    const again = await request(svc.base, "POST", "/tasks/summarize", { body, headers })
    expect(again.status).toBe(200)
    expect(again.body.escrow_id).toBe(first.body.escrow_id)
    expect(await wallet(svc.base, payer)).toEqual({ available: "0.998000", locked: "0.000000" })
  })

  it("404 for an unknown agent, 400 for a bad input, refund on failure", async () => {
    const payer = await payerWithMandate(svc.base, orchestrator)
    const unknown = await request(svc.base, "POST", "/tasks/nope", { body: { payer_wallet: payer.wallet, input: {} } })
    expect(unknown.status).toBe(404)
    expect(unknown.body.details.known).toContain("summarize")
    const bad = await request(svc.base, "POST", "/tasks/summarize", { body: { payer_wallet: payer.wallet, input: { text: 5 } } })
    expect({ status: bad.status, field: bad.body.field }).toEqual({ status: 400, field: "input" })
    const failed = await request(svc.base, "POST", "/tasks/flaky", { body: { payer_wallet: payer.wallet, input: { ok: false } } })
    expect(failed.status).toBe(500)
    expect((await run(ledger.getEscrow(failed.body.escrow_id))).status).toBe("cancelled")
    const ok = await request(svc.base, "POST", "/tasks/flaky", { body: { payer_wallet: payer.wallet, input: { ok: true } } })
    expect(ok.body.cost_usdc).toBe("0.003000")
    expect(await wallet(svc.base, payer)).toEqual({ available: "0.997000", locked: "0.000000" })
  })
})

describe("metrics", () => {
  it("Prometheus text on METRICS_PORT shows escrows created, released and cancelled by region moving, and latency", async () => {
    const scrape = async () => {
      const response = await fetch(svc.metricsUrl)
      expect(response.status).toBe(200)
      return response.text()
    }
    const before = await scrape()
    const payer = await payerWithMandate(svc.base, orchestrator)
    await request(svc.base, "POST", "/inference", { body: { payer_wallet: payer.wallet, prompt: "ok" } })
    await request(svc.base, "POST", "/inference", { body: { payer_wallet: payer.wallet, prompt: "fail:" } })
    const after = await scrape()
    const delta = (name: string, labels: Record<string, string> = { region: "iad" }) => metricValue(after, name, labels) - metricValue(before, name, labels)
    expect(delta("ringmaster_escrows_created_total")).toBe(2)
    expect(delta("ringmaster_escrows_released_total")).toBe(1)
    expect(delta("ringmaster_escrows_cancelled_total")).toBe(1)
    expect(metricValue(after, "ringmaster_escrows_in_flight", { region: "iad" })).toBe(0)
    expect(delta("ringmaster_settlement_latency_seconds_count", { operation: "create" })).toBeGreaterThanOrEqual(2)
    expect(after).toContain("ringmaster_referral_income_micro_usdc")
    expect(after).toContain("ringmaster_sub_agents")
  })
})

describe("expiry sweeper", () => {
  it("refunds an escrow past its deadline, whoever opened it, and counts it by region", async () => {
    const a = await run(ledger.registerAgent({ name: "sweep-payer" }))
    const b = await run(ledger.registerAgent({ name: "sweep-payee" }))
    await run(ledger.deposit(a.wallet, micros("1")))
    const before = metricValue(await (await fetch(svc.metricsUrl)).text(), "ringmaster_escrows_expired_total", { region: "ams" })
    const escrow = await run(ledger.createEscrow({
      payer: a.wallet,
      payee: b.wallet,
      amount: micros("0.4"),
      description: "left alone",
      metadata: { fly_region: "ams" },
      timeout: Duration.millis(200)
    }))
    await eventually(async () => ((await run(ledger.getEscrow(escrow.id))).status === "expired" ? true : undefined), 20_000, 200)
    expect(await balanceOf(a.wallet)).toMatchObject({ available: micros("1"), locked: 0n })
    const after = metricValue(await (await fetch(svc.metricsUrl)).text(), "ringmaster_escrows_expired_total", { region: "ams" })
    expect(after - before).toBe(1)
  }, 30_000)
})

describe("remote settlement (ESCROW_BASE set)", () => {
  let remote: InProcess
  let agent: Agent
  beforeAll(async () => {
    // The first service is the settlement service here; this orchestrator is one of its agents.
    agent = await register(svc.base, "remote-orchestrator")
    remote = await startInProcess({
      region: "nrt",
      settlement: { _tag: "Remote", baseUrl: svc.base, apiKey: Redacted.make(agent.key), faucetBaseUrl: svc.base },
      agentWallet: agent.wallet
    })
  }, 60_000)
  afterAll(async () => {
    await remote?.dispose()
  })

  it("serves its own /health and /info; the referral code and the faucet come from the settlement service", async () => {
    expect((await request(remote.base, "GET", "/health")).body).toEqual({ ok: true, region: "nrt" })
    expect(remote.ledger).toBeUndefined()
    const info = await eventually(async () => {
      const reply = await request(remote.base, "GET", "/info")
      return reply.body.referral_code === null ? undefined : reply.body
    })
    expect(info).toMatchObject({ wallet_address: agent.wallet, referral_code: agent.referralCode, region: "nrt", settlement: svc.base })
    await eventually(async () => ((await balanceOf(agent.wallet)).available >= micros("1") ? true : undefined))
    expect((await request(remote.base, "POST", "/api/agents", { body: { agent_name: "x" } })).status).toBe(404)
  })

  it("bills through the settlement service with PF_API_KEY: exact balances, 403 and 402 with nothing locked", async () => {
    await eventually(async () => ((await balanceOf(agent.wallet)).available >= micros("1") ? true : undefined))
    const payer = await payerWithMandate(svc.base, agent.wallet)
    const before = await balanceOf(agent.wallet)
    const reply = await request(remote.base, "POST", "/inference", { body: { payer_wallet: payer.wallet, prompt: "p".repeat(500) } })
    expect(reply.status).toBe(200)
    expect(reply.body).toMatchObject({ cost_usdc: "0.005000", region: "nrt" })
    const escrow = await run(ledger.getEscrow(reply.body.escrow_id))
    expect(escrow).toMatchObject({ status: "released", region: "nrt", payee: agent.wallet })
    expect(await wallet(svc.base, payer)).toEqual({ available: "0.995000", locked: "0.000000" })
    expect((await balanceOf(agent.wallet)).available - before.available).toBe(4_950n)

    const stranger = await register(svc.base, "stranger")
    await request(svc.base, "POST", "/api/faucet/claim", { key: stranger.key, body: { wallet_address: stranger.wallet, agent_name: "s" } })
    const broke = await payerWithMandate(svc.base, agent.wallet, { faucet: false })
    const noMandate = await request(remote.base, "POST", "/inference", { body: { payer_wallet: stranger.wallet, prompt: "hi" } })
    expect({ status: noMandate.status, error: noMandate.body.error }).toEqual({ status: 403, error: "no_mandate" })
    const noFunds = await request(remote.base, "POST", "/inference", { body: { payer_wallet: broke.wallet, prompt: "hi" } })
    expect({ status: noFunds.status, error: noFunds.body.error }).toEqual({ status: 402, error: "insufficient_funds" })
    expect(await wallet(svc.base, stranger)).toEqual({ available: "1.000000", locked: "0.000000" })
    expect(await wallet(svc.base, broke)).toEqual({ available: "0.000000", locked: "0.000000" })

    // The local journal keeps the audit trail of what this machine charged.
    const rows = new Database(journalFilename(remote.dataDir), { readonly: true })
      .prepare("SELECT status, region FROM service_escrows WHERE escrow_id = ?")
      .all(reply.body.escrow_id)
    expect(rows).toEqual([{ status: "released", region: "nrt" }])
  })
})
