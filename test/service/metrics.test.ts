/**
 * What `/metrics` shows of escrows and refusals, scraped from the real Prometheus
 * port of a service started in process (embedded SQLite ledger, real HTTP port):
 * every escrow counted once, with its region, whichever path opened and settled
 * it (REST, MCP, a paid route, the sweeper); the series of the service's region at
 * 0 from start-up; refusals by wire code. Escrows of the REST and sweeper cases
 * name a region of their own (`metadata.fly_region`), so their counts are exact;
 * the others are in the service's region and are compared before and after.
 * With a remote settlement service (the standalone server, which counts nothing
 * itself), the service counts the escrows it opens through its HTTP client.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { Effect, Exit, Redacted, Scope } from "effect"
import type { WalletAddress } from "../../src/domain/ids.js"
import { call, connect, startService } from "../mcp/harness.js"
import { type Agent, eventually, type InProcess, metricValue, paidRequest, payerWithMandate, register, request, startInProcess, wallet } from "./support.js"

const REGION = "fra"

let svc: InProcess
let orchestrator: WalletAddress
let payer: Agent
let payee: Agent
const clients: Array<Client> = []

const scrape = async () => {
  const response = await fetch(svc.metricsUrl)
  expect(response.status).toBe(200)
  return response.text()
}

/** The escrow series of one region. */
const escrows = (text: string, region: string) => ({
  created: metricValue(text, "ringmaster_escrows_created_total", { region }),
  released: metricValue(text, "ringmaster_escrows_released_total", { region }),
  cancelled: metricValue(text, "ringmaster_escrows_cancelled_total", { region }),
  expired: metricValue(text, "ringmaster_escrows_expired_total", { region }),
  inFlight: metricValue(text, "ringmaster_escrows_in_flight", { region })
})

const refusals = (text: string, code: string) => metricValue(text, "ringmaster_refusals_total", { code, region: REGION })

const createOverRest = async (by: Agent, body: Record<string, unknown>) => {
  const reply = await request(svc.base, "POST", "/api/escrow/create", {
    key: by.key,
    body: { payer_wallet: payer.wallet, payee_wallet: payee.wallet, description: "metrics", ...body }
  })
  expect(reply.status).toBe(201)
  return reply.body.escrow_id as string
}

/** The first scrape, before any request. */
let fresh: string

beforeAll(async () => {
  svc = await startInProcess({ region: REGION, sweepIntervalMs: 100 })
  fresh = await scrape()
  orchestrator = (await request(svc.base, "GET", "/info")).body.wallet_address
  payer = await register(svc.base, "metrics-payer")
  payee = await register(svc.base, "metrics-payee")
  const claim = await request(svc.base, "POST", "/api/faucet/claim", { key: payer.key, body: { wallet_address: payer.wallet, agent_name: "payer" } })
  expect(claim.status).toBe(200)
}, 60_000)

afterAll(async () => {
  for (const client of clients) await client.close()
  await svc?.dispose()
})

describe("escrow metrics", () => {
  it("a fresh service exports its region's escrow counters and in-flight gauge at 0", async () => {
    for (const name of ["created", "released", "cancelled", "expired"]) {
      expect(fresh).toMatch(new RegExp(`^ringmaster_escrows_${name}_total\\{[^}]*region="${REGION}"[^}]*\\} 0$`, "m"))
    }
    expect(fresh).toMatch(new RegExp(`^ringmaster_escrows_in_flight\\{[^}]*region="${REGION}"[^}]*\\} 0$`, "m"))
    // Registering agents and claiming the faucet open no escrow.
    expect(escrows(await scrape(), REGION)).toEqual({ created: 0, released: 0, cancelled: 0, expired: 0, inFlight: 0 })
  })

  it("an escrow created and released over REST is counted once in its region; a repeated release counts nothing", async () => {
    const before = await wallet(svc.base, payer)
    const id = await createOverRest(payer, { amount_usdc: "0.25", metadata: { fly_region: "waw" } })
    expect(escrows(await scrape(), "waw")).toEqual({ created: 1, released: 0, cancelled: 0, expired: 0, inFlight: 1 })
    for (let i = 0; i < 2; i++) {
      const release = await request(svc.base, "POST", "/api/escrow/release", { key: payer.key, body: { escrow_id: id } })
      expect({ status: release.status, escrowStatus: release.body.status }).toEqual({ status: 200, escrowStatus: "released" })
    }
    expect(escrows(await scrape(), "waw")).toEqual({ created: 1, released: 1, cancelled: 0, expired: 0, inFlight: 0 })
    expect(await wallet(svc.base, payer)).toEqual({ available: "0.750000", locked: "0.000000" })
    expect(before).toEqual({ available: "1.000000", locked: "0.000000" })
  })

  it("an escrow created and cancelled over MCP (official SDK client) is counted once, in the service's region", async () => {
    const asPayer = await connect(svc.base, payer.key)
    const asPayee = await connect(svc.base, payee.key)
    clients.push(asPayer, asPayee)
    const before = escrows(await scrape(), REGION)
    const created = await call(asPayer, "create_escrow", {
      payer_wallet: payer.wallet,
      payee_wallet: payee.wallet,
      amount_usdc: "0.1",
      description: "over MCP"
    })
    expect(created.isError).toBe(false)
    expect(created.structured.region).toBe(REGION)
    const id = created.structured.escrow_id
    const mid = escrows(await scrape(), REGION)
    expect({ created: mid.created - before.created, inFlight: mid.inFlight - before.inFlight }).toEqual({ created: 1, inFlight: 1 })
    for (let i = 0; i < 2; i++) {
      const cancelled = await call(asPayee, "cancel_escrow", { escrow_id: id })
      expect({ isError: cancelled.isError, status: cancelled.structured.status }).toEqual({ isError: false, status: "cancelled" })
    }
    const after = escrows(await scrape(), REGION)
    expect({
      created: after.created - before.created,
      released: after.released - before.released,
      cancelled: after.cancelled - before.cancelled,
      expired: after.expired - before.expired,
      inFlight: after.inFlight - before.inFlight
    }).toEqual({ created: 1, released: 0, cancelled: 1, expired: 0, inFlight: 0 })
    expect(await wallet(svc.base, payer)).toEqual({ available: "0.750000", locked: "0.000000" })
  })

  it("an escrow the sweeper expires is counted once as expired, in its region", async () => {
    const id = await createOverRest(payer, { amount_usdc: "0.05", metadata: { fly_region: "syd" }, timeout_ms: 150 })
    await eventually(async () => {
      const reply = await request(svc.base, "GET", `/api/escrow/${id}`, { key: payer.key })
      return reply.body.status === "expired" ? true : undefined
    }, 20_000, 100)
    expect(escrows(await scrape(), "syd")).toEqual({ created: 1, released: 0, cancelled: 0, expired: 1, inFlight: 0 })
    expect(await wallet(svc.base, payer)).toEqual({ available: "0.750000", locked: "0.000000" })
  }, 30_000)

  it("a paid route's escrow is counted once, not once by the route and once by the ledger", async () => {
    const client = await payerWithMandate(svc.base, orchestrator)
    const before = escrows(await scrape(), REGION)
    const reply = await paidRequest(svc.base, svc.base, client, "/inference", { prompt: "count me" })
    expect(reply.status).toBe(200)
    expect(reply.body.region).toBe(REGION)
    const after = escrows(await scrape(), REGION)
    expect({
      created: after.created - before.created,
      released: after.released - before.released,
      cancelled: after.cancelled - before.cancelled,
      inFlight: after.inFlight - before.inFlight
    }).toEqual({ created: 1, released: 1, cancelled: 0, inFlight: 0 })
    expect(await wallet(svc.base, client)).toEqual({ available: "0.999000", locked: "0.000000" })
  })
})

describe("refusal metrics", () => {
  it("counts 401, 403 and 409 over REST, MCP and the paid routes by their wire code, once each; a refusal moves no money", async () => {
    const codes = ["unauthorized", "forbidden", "escrow_not_pending", "payment_required"] as const
    const read = async () => {
      const text = await scrape()
      return Object.fromEntries(codes.map((code) => [code, refusals(text, code)])) as Record<(typeof codes)[number], number>
    }
    const id = await createOverRest(payer, { amount_usdc: "0.01" })
    expect((await request(svc.base, "POST", "/api/escrow/cancel", { key: payee.key, body: { escrow_id: id } })).status).toBe(200)
    const balances = await wallet(svc.base, payer)
    const before = await read()

    // REST: a bad key (401), someone else's wallet (403), a release of a cancelled escrow (409).
    const badKey = await request(svc.base, "GET", `/api/wallets/${payer.wallet}`, { key: "rm_not_a_key" })
    expect({ status: badKey.status, error: badKey.body.error }).toEqual({ status: 401, error: "unauthorized" })
    const notYours = await request(svc.base, "GET", `/api/wallets/${payer.wallet}`, { key: payee.key })
    expect({ status: notYours.status, error: notYours.body.error }).toEqual({ status: 403, error: "forbidden" })
    const settled = await request(svc.base, "POST", "/api/escrow/release", { key: payer.key, body: { escrow_id: id } })
    expect({ status: settled.status, error: settled.body.error }).toEqual({ status: 409, error: "escrow_not_pending" })
    expect(await read()).toEqual({
      unauthorized: before.unauthorized + 1,
      forbidden: before.forbidden + 1,
      escrow_not_pending: before.escrow_not_pending + 1,
      payment_required: before.payment_required
    })

    // MCP: the refusal is a tool error inside a 200 answer.
    const stranger = await connect(svc.base, "rm_not_a_key")
    clients.push(stranger)
    const refused = await call(stranger, "get_balance", { wallet_address: payer.wallet })
    expect({ isError: refused.isError, error: refused.structured.error }).toEqual({ isError: true, error: "unauthorized" })
    // A paid route: a request naming the payer's wallet but carrying no payment credential (402).
    const unpaid = await request(svc.base, "POST", "/inference", { body: { payer_wallet: payer.wallet, prompt: "hi" } })
    expect({ status: unpaid.status, error: unpaid.body.error }).toEqual({ status: 402, error: "payment_required" })

    expect(await read()).toEqual({
      unauthorized: before.unauthorized + 2,
      forbidden: before.forbidden + 1,
      escrow_not_pending: before.escrow_not_pending + 1,
      payment_required: before.payment_required + 1
    })
    expect(await wallet(svc.base, payer)).toEqual(balances)
  })
})

describe("remote settlement (ESCROW_BASE set)", () => {
  const scope = Effect.runSync(Scope.make())
  let settlementBase: string
  let remote: InProcess
  let agent: Agent

  beforeAll(async () => {
    settlementBase = (await Effect.runPromise(Scope.extend(startService, scope))).base
    agent = await register(settlementBase, "remote-orchestrator")
    remote = await startInProcess({
      region: "hkg",
      settlement: { _tag: "Remote", baseUrl: settlementBase, apiKey: Redacted.make(agent.key), faucetBaseUrl: settlementBase },
      agentWallet: agent.wallet
    })
  }, 60_000)

  afterAll(async () => {
    await remote?.dispose()
    await Effect.runPromise(Scope.close(scope, Exit.void))
  })

  it("a paid route's escrow, opened through the HTTP client, is counted once by this service in its region", async () => {
    const read = async () => escrows(await (await fetch(remote.metricsUrl)).text(), "hkg")
    expect(await read()).toEqual({ created: 0, released: 0, cancelled: 0, expired: 0, inFlight: 0 })
    await eventually(async () => ((await request(remote.base, "GET", "/info")).body.referral_code === null ? undefined : true))
    const client = await payerWithMandate(settlementBase, agent.wallet)
    const paid = await paidRequest(remote.base, settlementBase, client, "/inference", { payer_wallet: client.wallet, prompt: "remote" })
    expect(paid.status).toBe(200)
    const failed = await request(remote.base, "POST", "/tasks/nope", { body: { payer_wallet: client.wallet, input: {} } })
    expect(failed.status).toBe(404)
    expect(await read()).toEqual({ created: 1, released: 1, cancelled: 0, expired: 0, inFlight: 0 })
    expect(await wallet(settlementBase, client)).toEqual({ available: "0.999000", locked: "0.000000" })
  })
})
