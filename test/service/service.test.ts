/**
 * The composed service in process: real HTTP on an ephemeral loopback port, the
 * embedded SQLite ledger and journal in a temp dir, the Prometheus endpoint on a
 * free port. Every money assertion is exact, in micro-USDC, before and after.
 */
import { FetchHttpClient, HttpApiClient, HttpClient, HttpClientRequest, OpenApi } from "@effect/platform"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import * as fs from "node:fs"
import { Duration, Effect, Redacted, Schema } from "effect"
import type { EscrowId, WalletAddress } from "../../src/domain/ids.js"
import { SystemAccount } from "../../src/domain/ids.js"
import * as Usdc from "../../src/domain/Usdc.js"
import { PaymentChallengeError, UnknownTaskError } from "../../src/http/errors.js"
import { ServiceApi, ServiceApiRemote } from "../../src/http/ServiceApi.js"
import type { LedgerShape } from "../../src/ledger/Ledger.js"
import { journalFilename } from "../../src/service/Journal.js"
import { identityFilename } from "../../src/service/Identity.js"
import * as Pipeline from "../../src/service/Pipeline.js"
import {
  type Agent,
  eventually,
  fundedPayer,
  type InProcess,
  metricValue,
  mintToken,
  paidRequest,
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
    }),
    Pipeline.task({
      name: "counted",
      input: Schema.Struct({ n: Schema.Number }),
      price: Usdc.make("0.001"),
      run: ({ n }) => Effect.sync(() => ({ n, run: ++countedRuns }))
    })
  ]
})

/** Runs of the "counted" task: a replayed request must not add one. */
let countedRuns = 0

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

  it("/openapi.json and /docs carry /info, /inference and /tasks/{agent} from the contract, with the 402 challenge and its header", async () => {
    const spec = (await request(svc.base, "GET", "/openapi.json")).body
    expect(spec).toEqual(JSON.parse(JSON.stringify(OpenApi.fromApi(ServiceApi))))
    expect(Object.keys(spec.paths["/info"])).toEqual(["get"])
    expect(Object.keys(spec.paths["/inference"])).toEqual(["post"])
    expect(Object.keys(spec.paths["/tasks/{agent}"])).toEqual(["post"])
    // The settlement API is still served beside them.
    expect(Object.keys(spec.paths["/api/escrow/create"])).toEqual(["post"])
    for (const op of [spec.paths["/inference"].post, spec.paths["/tasks/{agent}"].post]) {
      const challenge = op.responses["402"]
      expect(JSON.stringify(challenge.content["application/json"].schema)).toContain("#/components/schemas/PaymentChallengeError")
      expect(challenge.headers["WWW-Authenticate"].schema).toEqual({ type: "string" })
      expect(op.security).toEqual([{ payment: [] }])
      expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(["200", "400", "402", "403", "409", "413", "415", "500", "503", "504"]))
    }
    expect(Object.keys(spec.paths["/tasks/{agent}"].post.responses)).toContain("404")
    expect(spec.paths["/tasks/{agent}"].post.parameters).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: "agent", in: "path" }), expect.objectContaining({ name: "idempotency-key", in: "header" })])
    )
    expect(spec.components.securitySchemes.payment).toMatchObject({ type: "apiKey", name: "Authorization", in: "header" })
    expect(spec.components.schemas.PaymentChallengeError.properties).toHaveProperty("token_endpoint")
    const docs = await fetch(`${svc.base}/docs`)
    expect(docs.status).toBe(200)
    expect(await docs.text()).toContain("/tasks/{agent}")
  })

  it.live("the client derived from the contract reads /info, meets the 402 challenge, and pays with a token: exactly the price", () =>
    Effect.gen(function*() {
      const client = yield* HttpApiClient.make(ServiceApi, { baseUrl: svc.base })
      const info = yield* client.orchestrator.info()
      expect(info).toMatchObject({ wallet_address: orchestrator, region: "iad", settlement: "embedded" })
      expect(info.pricing.inference.minimum_usdc).toBe(micros("0.001"))

      const challenged = yield* Effect.flip(client.orchestrator.inference({ payload: { prompt: "hello" } }))
      expect(challenged).toBeInstanceOf(PaymentChallengeError)
      expect(challenged).toMatchObject({ error: "payment_required", price_usdc: "0.001000", payee_wallet: orchestrator })
      const unknown = yield* Effect.flip(client.orchestrator.task({ path: { agent: "nope" }, payload: { input: {} }, headers: {} }))
      expect(unknown).toBeInstanceOf(UnknownTaskError)
      expect(unknown).toMatchObject({ error: "unknown_task", details: { known: expect.arrayContaining(["summarize", "flaky"]) } })

      const payer = yield* Effect.promise(() => fundedPayer(svc.base))
      const token = yield* Effect.promise(() => mintToken(svc.base, payer, orchestrator, { maxAmount: "0.001" }))
      const paying = yield* HttpApiClient.make(ServiceApi, {
        baseUrl: svc.base,
        transformClient: HttpClient.mapRequest(HttpClientRequest.setHeader("authorization", `Payment ${token}`))
      })
      const orchBefore = yield* ledger.balance(orchestrator)
      const paid = yield* paying.orchestrator.inference({ payload: { payer_wallet: payer.wallet, prompt: "hello" } })
      expect(paid.cost_usdc).toBe(micros("0.001"))
      expect(yield* ledger.getEscrow(paid.escrow_id)).toMatchObject({ status: "released", amount: micros("0.001"), payer: payer.wallet })
      expect(yield* Effect.promise(() => wallet(svc.base, payer))).toEqual({ available: "0.999000", locked: "0.000000" })
      // The payee bears the 1% fee.
      expect((yield* ledger.balance(orchestrator)).available - orchBefore.available).toBe(990n)
    }).pipe(Effect.provide(FetchHttpClient.layer)))
})

describe("POST /inference: per-request billing", () => {
  it("charges max(0.001, len × 0.00001) through an escrow released to the orchestrator, fee and referral exact", async () => {
    const payer = await fundedPayer(svc.base, "payer", referrer.referralCode)
    const prompt = "word ".repeat(200) // 1,000 characters → 0.010000 USDC
    const [orchBefore, feesBefore, refBefore] = [await balanceOf(orchestrator), await platformFees(), await balanceOf(referrer.wallet)]

    const reply = await paidRequest(svc.base, svc.base, payer, "/inference", { payer_wallet: payer.wallet, prompt })
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
    expect(escrow.mandateId).toBeNull()
    const row = new Database(journalFilename(svc.dataDir), { readonly: true })
      .prepare("SELECT status, escrow_id, amount_micros FROM service_escrows WHERE escrow_id = ?")
      .get(reply.body.escrow_id) as any
    expect(row).toMatchObject({ status: "released", amount_micros: 10_000 })
  })

  it("short prompts cost the minimum 0.001; length counts code points", async () => {
    const payer = await fundedPayer(svc.base)
    const short = await paidRequest(svc.base, svc.base, payer, "/inference", { prompt: "hi" })
    expect(short.body.cost_usdc).toBe("0.001000")
    const emoji = "😀".repeat(150) // 150 code points (300 UTF-16 units) → 0.001500
    const long = await paidRequest(svc.base, svc.base, payer, "/inference", { payer_wallet: payer.wallet, prompt: emoji })
    expect(long.body.cost_usdc).toBe("0.001500")
    expect(await wallet(svc.base, payer)).toEqual({ available: "0.997500", locked: "0.000000" })
  })

  it("400 for a bad body, 402 without funds (no balance disclosed), 403 beyond the token's mandate: nothing changes", async () => {
    const funded = await payerWithMandate(svc.base, orchestrator, { maxAmount: "0.002" })
    const broke = await payerWithMandate(svc.base, orchestrator, { faucet: false })
    const orchBefore = await balanceOf(orchestrator)
    const feesBefore = await platformFees()
    const before = await Promise.all([funded, broke].map((a) => wallet(svc.base, a)))
    const mandateBefore = await run(ledger.getMandate(funded.mandateId as any))
    const paying = async (payer: Agent, options: { readonly mandateId?: string } = {}) =>
      `Payment ${await mintToken(svc.base, payer, orchestrator, { maxAmount: "0.01", ...options })}`

    const cases: Array<[unknown, string | undefined, number, string, string | undefined]> = [
      [{ payer_wallet: "0xnothex", prompt: "hello" }, await paying(funded), 400, "invalid_request", "payer_wallet"],
      [{ payer_wallet: funded.wallet, prompt: 42 }, await paying(funded), 400, "invalid_request", "prompt"],
      [{ payer_wallet: broke.wallet, prompt: "hello" }, await paying(broke), 402, "insufficient_funds", "payer_wallet"],
      [{ prompt: "x".repeat(1_000) }, await paying(funded, { mandateId: funded.mandateId }), 403, "mandate_exceeded", "payer_wallet"]
    ]
    for (const [body, authorization, status, error, field] of cases) {
      const reply = await request(svc.base, "POST", "/inference", { body, headers: authorization === undefined ? {} : { authorization } })
      expect({ status: reply.status, error: reply.body.error, field: reply.body.field }).toEqual({ status, error, field })
      if (status === 402) {
        expect(reply.body.message).toBe("the payer's available balance does not cover the price of 0.001000 USDC")
        expect(JSON.stringify(reply.body)).not.toMatch(/available_usdc|0\.000000/)
      }
    }
    const bad = await request(svc.base, "POST", "/inference", { raw: "{not json" })
    expect(bad.status).toBe(400)

    expect(await Promise.all([funded, broke].map((a) => wallet(svc.base, a)))).toEqual(before)
    expect(await balanceOf(orchestrator)).toEqual(orchBefore)
    expect(await platformFees()).toBe(feesBefore)
    expect((await run(ledger.getMandate(funded.mandateId as any))).remaining).toBe(mandateBefore.remaining)
    const pending = await run(ledger.listEscrows({ wallet: orchestrator, status: "pending" }))
    expect(pending.escrows).toEqual([])
  })

  it("a token naming a mandate draws on its budget; a revoked or exhausted mandate refuses it with nothing charged", async () => {
    const payer = await payerWithMandate(svc.base, orchestrator, { budget: "0.002" })
    const body = { payer_wallet: payer.wallet, prompt: "hello" }
    for (let i = 0; i < 2; i++) {
      expect((await paidRequest(svc.base, svc.base, payer, "/inference", body, { mandateId: payer.mandateId })).status).toBe(200)
    }
    expect((await run(ledger.getMandate(payer.mandateId as any))).remaining).toBe(0n)
    const exhausted = await paidRequest(svc.base, svc.base, payer, "/inference", body, { mandateId: payer.mandateId })
    expect({ status: exhausted.status, error: exhausted.body.error }).toEqual({ status: 403, error: "mandate_exceeded" })
    expect(await wallet(svc.base, payer)).toEqual({ available: "0.998000", locked: "0.000000" })

    const granted = await request(svc.base, "POST", "/api/mandates", {
      key: payer.key,
      body: { payee_wallet: orchestrator, max_amount_usdc: "0.5", budget_usdc: "0.5" }
    })
    const token = await mintToken(svc.base, payer, orchestrator, { maxAmount: "0.001", mandateId: granted.body.mandate_id })
    expect((await request(svc.base, "DELETE", `/api/mandates/${granted.body.mandate_id}`, { key: payer.key })).status).toBe(200)
    const revoked = await request(svc.base, "POST", "/inference", { body, headers: { authorization: `Payment ${token}` } })
    expect({ status: revoked.status, error: revoked.body.error }).toEqual({ status: 403, error: "mandate_exceeded" })
    expect(revoked.body.message).toContain("revoked")
    expect(await wallet(svc.base, payer)).toEqual({ available: "0.998000", locked: "0.000000" })
  })

  it("a failing, dying or timed-out pipeline cancels the escrow: the payer is refunded in full", async () => {
    const payer = await payerWithMandate(svc.base, orchestrator)
    const orchBefore = await balanceOf(orchestrator)
    for (const [prompt, status, error] of [["fail: please", 500, "task_failed"], ["die: please", 500, "task_failed"], ["slow:5000", 504, "task_timed_out"]] as const) {
      const reply = await paidRequest(svc.base, svc.base, payer, "/inference", { payer_wallet: payer.wallet, prompt }, { mandateId: payer.mandateId })
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

describe("paid routes: a wallet address is no credential", () => {
  it("30 anonymous requests naming a victim's wallet are each a 402 challenge; the victim's money and mandate do not move", async () => {
    const victim = await payerWithMandate(svc.base, orchestrator, { budget: "1" })
    const before = { victim: await wallet(svc.base, victim), orchestrator: await balanceOf(orchestrator), fees: await platformFees() }
    const mandateBefore = await run(ledger.getMandate(victim.mandateId as any))
    for (let i = 0; i < 30; i++) {
      const [path, body] = i % 2 === 0
        ? ["/inference", { payer_wallet: victim.wallet, prompt: "spend it" }]
        : ["/tasks/summarize", { payer_wallet: victim.wallet, input: { text: "Spend it. Now." } }]
      // A bearer key (the victim's own, even) is not a payment credential either.
      const headers = i === 29 ? { authorization: `Bearer ${victim.key}` } : {}
      const reply = await request(svc.base, "POST", path as string, { body, headers })
      expect(reply.status).toBe(402)
      expect(reply.body).toMatchObject({
        error: "payment_required",
        price_usdc: path === "/inference" ? "0.001000" : "0.002000",
        currency: "USDC",
        payee_wallet: orchestrator,
        settlement_url: svc.base,
        token_endpoint: `${svc.base}/api/payment-tokens`,
        accepted_methods: ["payment_token"]
      })
      const challenge = reply.headers.get("www-authenticate") ?? ""
      expect(challenge).toMatch(/^Payment realm="ringmaster", /)
      expect(challenge).toContain(`payee="${orchestrator}"`)
      expect(challenge).toContain(`amount="${reply.body.price_usdc}"`)
      expect(challenge).toContain(`token_endpoint="${svc.base}/api/payment-tokens"`)
      // Nothing about any balance.
      expect(JSON.stringify(reply.body)).not.toMatch(/balance|available|1\.000000/)
    }
    expect(await wallet(svc.base, victim)).toEqual(before.victim)
    expect(await balanceOf(orchestrator)).toEqual(before.orchestrator)
    expect(await platformFees()).toBe(before.fees)
    expect((await run(ledger.getMandate(victim.mandateId as any))).remaining).toBe(mandateBefore.remaining)
  })

  it("the token flow pays exactly the price; a reused, expired, wrong-payee, over-max or other payer's token is refused with nothing charged", async () => {
    const payer = await fundedPayer(svc.base)
    const other = await fundedPayer(svc.base, "other")
    const body = { payer_wallet: payer.wallet, prompt: "hello" }
    const pay = (token: string, b: unknown = body) => request(svc.base, "POST", "/inference", { body: b, headers: { authorization: `Payment ${token}` } })

    const token = await mintToken(svc.base, payer, orchestrator, { maxAmount: "0.001" })
    const orchBefore = await balanceOf(orchestrator)
    const paid = await pay(token)
    expect(paid).toMatchObject({ status: 200, body: { cost_usdc: "0.001000" } })
    expect(await wallet(svc.base, payer)).toEqual({ available: "0.999000", locked: "0.000000" })
    expect((await balanceOf(orchestrator)).available - orchBefore.available).toBe(990n)

    const shortLived = await mintToken(svc.base, payer, orchestrator, { maxAmount: "0.001", expiresInSeconds: 1 })
    const forAnother = await mintToken(svc.base, payer, other.wallet, { maxAmount: "0.001" })
    const tooSmall = await mintToken(svc.base, payer, orchestrator, { maxAmount: "0.000999" })
    const othersToken = await mintToken(svc.base, other, orchestrator, { maxAmount: "0.001" })
    // The token's deadline is in whole seconds: past it, nothing depends on timing.
    await new Promise((resolve) => setTimeout(resolve, 1_100))
    const before = { payer: await wallet(svc.base, payer), other: await wallet(svc.base, other), orchestrator: await balanceOf(orchestrator) }
    const cases: Array<[string, unknown, string]> = [
      [token, body, "already redeemed"],
      [shortLived, body, "expired"],
      [forAnother, body, `payment token is for payee ${other.wallet}`],
      [tooSmall, body, "exceeds the payment token's maximum of 0.000999 USDC"],
      [othersToken, body, `payment token was minted by ${other.wallet}, not by payer_wallet ${payer.wallet}`],
      ["ptk_not-a-token", body, "payment token unknown"]
    ]
    for (const [credential, b, why] of cases) {
      const reply = await pay(credential, b)
      expect({ status: reply.status, error: reply.body.error }).toEqual({ status: 402, error: "payment_token_invalid" })
      expect(reply.body.message).toContain(why)
      expect(reply.body).toMatchObject({ price_usdc: "0.001000", payee_wallet: orchestrator })
      expect(reply.headers.get("www-authenticate")).toContain(`error="invalid_token"`)
      expect(JSON.stringify(reply.body)).not.toContain(credential)
    }
    expect({ payer: await wallet(svc.base, payer), other: await wallet(svc.base, other), orchestrator: await balanceOf(orchestrator) }).toEqual(before)
    // The other payer's own token pays when it names no other payer.
    expect((await pay(othersToken, { prompt: "hello" })).status).toBe(200)
    expect(await wallet(svc.base, other)).toEqual({ available: "0.999000", locked: "0.000000" })
  })
})

describe("POST /tasks/{agent}: one paid task per event", () => {
  it("runs the task, settles before answering, and charges a repeated event id once", async () => {
    const payer = await fundedPayer(svc.base)
    const body = { payer_wallet: payer.wallet, input: { text: "Escrow settles first. Then the machine may stop." } }
    // The event's retry resends the same request, credential included.
    const headers = { "idempotency-key": "event-42", authorization: `Payment ${await mintToken(svc.base, payer, orchestrator, { maxAmount: "0.002" })}` }
    const first = await request(svc.base, "POST", "/tasks/summarize", { body, headers })
    expect(first.status).toBe(200)
    expect(first.body).toMatchObject({ agent: "summarize", cost_usdc: "0.002000", region: "iad", result: { summary: "Escrow settles first.", words: 8 } })
    expect((await run(ledger.getEscrow(first.body.escrow_id))).status).toBe("released")
    const again = await request(svc.base, "POST", "/tasks/summarize", { body, headers })
    expect(again.status).toBe(200)
    expect(again.body.escrow_id).toBe(first.body.escrow_id)
    expect(await wallet(svc.base, payer)).toEqual({ available: "0.998000", locked: "0.000000" })
  })

  it("a repeated event id: the same input gets the stored reply, run and charged once; another input → 409, nothing runs", async () => {
    const payer = await fundedPayer(svc.base)
    // One credential throughout: a stored reply goes only to whoever presents the credential it was paid with.
    const headers = { "idempotency-key": "event-77", authorization: `Payment ${await mintToken(svc.base, payer, orchestrator, { maxAmount: "0.001" })}` }
    const send = (n: number) => request(svc.base, "POST", "/tasks/counted", { body: { payer_wallet: payer.wallet, input: { n } }, headers })
    const runsBefore = countedRuns
    const first = await send(1)
    expect(first).toMatchObject({ status: 200, body: { cost_usdc: "0.001000", result: { n: 1 } } })
    expect(countedRuns).toBe(runsBefore + 1)
    const charged = await wallet(svc.base, payer)
    expect(charged).toEqual({ available: "0.999000", locked: "0.000000" })
    const escrow = await run(ledger.getEscrow(first.body.escrow_id))
    expect(escrow).toMatchObject({ status: "released", metadata: { request_sha256: expect.stringMatching(/^[0-9a-f]{64}$/) } })
    // the same price, another input: refused, naming nothing of the first request
    const other = await send(2)
    expect(other).toMatchObject({ status: 409, body: { error: "idempotency_key_reused", field: "idempotency-key", details: { idempotency_key: "event-77" } } })
    expect(JSON.stringify(other.body)).not.toContain(first.body.escrow_id)
    expect(countedRuns).toBe(runsBefore + 1)
    expect(await wallet(svc.base, payer)).toEqual(charged)
    const again = await send(1)
    expect(again).toMatchObject({ status: 200, body: first.body })
    expect(countedRuns).toBe(runsBefore + 1)
    expect(await wallet(svc.base, payer)).toEqual(charged)
    expect(await run(ledger.getEscrow(first.body.escrow_id))).toEqual(escrow)
  })

  it("404 for an unknown agent, 400 for a bad input, refund on failure", async () => {
    const payer = await fundedPayer(svc.base)
    const unknown = await request(svc.base, "POST", "/tasks/nope", { body: { payer_wallet: payer.wallet, input: {} } })
    expect(unknown.status).toBe(404)
    expect(unknown.body.details.known).toContain("summarize")
    const bad = await request(svc.base, "POST", "/tasks/summarize", { body: { payer_wallet: payer.wallet, input: { text: 5 } } })
    expect({ status: bad.status, field: bad.body.field }).toEqual({ status: 400, field: "input" })
    const failed = await paidRequest(svc.base, svc.base, payer, "/tasks/flaky", { payer_wallet: payer.wallet, input: { ok: false } })
    expect(failed.status).toBe(500)
    expect((await run(ledger.getEscrow(failed.body.escrow_id))).status).toBe("cancelled")
    const ok = await paidRequest(svc.base, svc.base, payer, "/tasks/flaky", { payer_wallet: payer.wallet, input: { ok: true } })
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
    const payer = await fundedPayer(svc.base)
    await paidRequest(svc.base, svc.base, payer, "/inference", { payer_wallet: payer.wallet, prompt: "ok" })
    await paidRequest(svc.base, svc.base, payer, "/inference", { payer_wallet: payer.wallet, prompt: "fail:" })
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

  it("GET / sends a person to the dashboard where there is one, and lists the routes where there is none", async () => {
    const embedded = await fetch(`${svc.base}/`, { redirect: "manual" })
    expect({ status: embedded.status, location: embedded.headers.get("location") }).toEqual({ status: 302, location: "/dashboard" })
    const page = await fetch(`${svc.base}/`)
    expect(page.headers.get("content-type")).toMatch(/^text\/html/)
    expect(await page.text()).toContain("<title>ringmaster · dashboard</title>")

    const index = await fetch(`${remote.base}/`, { redirect: "manual" })
    expect(index.status).toBe(200)
    expect(index.headers.get("content-type")).toMatch(/^text\/plain/)
    const text = await index.text()
    for (const route of ["GET   /health ", "GET   /info ", "POST  /inference ", "POST  /tasks/{agent} "]) expect(text).toContain(route)
    expect(text).toContain(`Prometheus metrics: port ${remote.config.metricsPort}, /metrics`)
    expect((await fetch(`${remote.base}/dashboard`)).status).toBe(404)
  })

  it("/openapi.json and /docs list this service's own routes and none of the settlement API's; the derived client reads /info", async () => {
    const spec = (await request(remote.base, "GET", "/openapi.json")).body
    expect(spec).toEqual(JSON.parse(JSON.stringify(OpenApi.fromApi(ServiceApiRemote))))
    expect(Object.fromEntries(Object.entries(spec.paths).map(([path, ops]) => [path, Object.keys(ops as object)]))).toEqual({
      "/health": ["get"],
      "/info": ["get"],
      "/inference": ["post"],
      "/tasks/{agent}": ["post"]
    })
    expect(spec.paths["/inference"].post.responses["402"].headers).toHaveProperty("WWW-Authenticate")
    expect((await fetch(`${remote.base}/docs`)).status).toBe(200)
    const info = await Effect.runPromise(
      Effect.flatMap(HttpApiClient.make(ServiceApiRemote, { baseUrl: remote.base }), (client) => client.orchestrator.info()).pipe(
        Effect.provide(FetchHttpClient.layer)
      )
    )
    expect(info).toMatchObject({ wallet_address: agent.wallet, region: "nrt", settlement: svc.base })
  })

  it("bills through the settlement service with PF_API_KEY, redeeming the payer's token there: exact balances; refusals lock nothing", async () => {
    await eventually(async () => ((await balanceOf(agent.wallet)).available >= micros("1") ? true : undefined))
    const payer = await fundedPayer(svc.base)
    const before = await balanceOf(agent.wallet)
    const anonymous = await request(remote.base, "POST", "/inference", { body: { payer_wallet: payer.wallet, prompt: "p".repeat(500) } })
    expect(anonymous).toMatchObject({
      status: 402,
      body: { error: "payment_required", price_usdc: "0.005000", payee_wallet: agent.wallet, settlement_url: svc.base }
    })
    expect(anonymous.headers.get("www-authenticate")).toContain(`settlement="${svc.base}"`)
    const reply = await paidRequest(remote.base, svc.base, payer, "/inference", { payer_wallet: payer.wallet, prompt: "p".repeat(500) })
    expect(reply.status).toBe(200)
    expect(reply.body).toMatchObject({ cost_usdc: "0.005000", region: "nrt" })
    const escrow = await run(ledger.getEscrow(reply.body.escrow_id))
    expect(escrow).toMatchObject({ status: "released", region: "nrt", payee: agent.wallet })
    expect(await wallet(svc.base, payer)).toEqual({ available: "0.995000", locked: "0.000000" })
    expect((await balanceOf(agent.wallet)).available - before.available).toBe(4_950n)

    const stranger = await fundedPayer(svc.base, "stranger")
    const broke = await register(svc.base, "broke")
    // A token for another payee, and one already spent, are refused by the settlement service.
    const elsewhere = await mintToken(svc.base, stranger, orchestrator, { maxAmount: "0.001" })
    const wrongPayee = await request(remote.base, "POST", "/inference", {
      body: { payer_wallet: stranger.wallet, prompt: "hi" },
      headers: { authorization: `Payment ${elsewhere}` }
    })
    expect(wrongPayee).toMatchObject({ status: 402, body: { error: "payment_token_invalid", payee_wallet: agent.wallet } })
    expect(wrongPayee.body.message).toContain(`payment token is for payee ${orchestrator}`)
    const spent = await mintToken(svc.base, stranger, agent.wallet, { maxAmount: "0.001" })
    const once = { body: { payer_wallet: stranger.wallet, prompt: "hi" }, headers: { authorization: `Payment ${spent}` } }
    expect((await request(remote.base, "POST", "/inference", once)).status).toBe(200)
    const reused = await request(remote.base, "POST", "/inference", once)
    expect(reused).toMatchObject({ status: 402, body: { error: "payment_token_invalid" } })
    expect(reused.body.message).toContain("already redeemed")
    const noFunds = await paidRequest(remote.base, svc.base, broke, "/inference", { payer_wallet: broke.wallet, prompt: "hi" })
    expect({ status: noFunds.status, error: noFunds.body.error }).toEqual({ status: 402, error: "insufficient_funds" })
    expect(JSON.stringify(noFunds.body)).not.toContain("available_usdc")
    expect(await wallet(svc.base, stranger)).toEqual({ available: "0.999000", locked: "0.000000" })
    expect(await wallet(svc.base, broke)).toEqual({ available: "0.000000", locked: "0.000000" })

    // The local journal keeps the audit trail of what this machine charged.
    const rows = new Database(journalFilename(remote.dataDir), { readonly: true })
      .prepare("SELECT status, region FROM service_escrows WHERE escrow_id = ?")
      .all(reply.body.escrow_id)
    expect(rows).toEqual([{ status: "released", region: "nrt" }])
  })
})
