/**
 * The REST dialect end to end: a real server on a loopback port, plain JSON over
 * fetch. Happy paths assert exact balances; every refusal asserts its status, its
 * error code and field, and that no balance, posting or escrow changed.
 */
import { describe, expect, it } from "@effect/vitest"
import { OpenApi } from "@effect/platform"
import { Effect, TestClock } from "effect"
import * as Usdc from "../../src/domain/Usdc.js"
import { SystemAccount } from "../../src/domain/ids.js"
import { SettlementApi } from "../../src/http/Api.js"
import { agent, available, type Harness, serve, snapshot } from "./harness.js"

const u = Usdc.make

describe("settlement REST API: happy paths", () => {
  it.scoped("every route, with exact balances", () =>
    Effect.gen(function*() {
      const h = yield* serve({ ledger: { region: "test-region" } })
      const { http } = h

      const health = yield* http("GET", "/health")
      expect(health).toMatchObject({ status: 200, body: { ok: true, region: "test-region" } })

      // Registration: a wallet is generated, the key is returned once, unknown fields are ignored.
      const alice = yield* agent(h, "alice", "0", { unknown_field: [1, 2, 3] })
      expect(alice.wallet).toMatch(/^0x[0-9a-f]{40}$/)
      expect(alice.key).toMatch(/^pk_[A-Za-z0-9_-]{43}$/)
      const chosenWallet = "0x" + "AB".repeat(20)
      const bob = yield* agent(h, "bob", "0", { wallet_address: chosenWallet, referral_code: alice.referralCode })
      expect(bob.wallet).toBe(chosenWallet.toLowerCase())
      const carol = yield* agent(h, "carol")

      // Faucet: once, own wallet.
      const claim = yield* http("POST", "/api/faucet/claim", { key: bob.key, body: { wallet_address: bob.wallet, agent_name: "bob" } })
      expect(claim).toMatchObject({ status: 200, body: { credited_usdc: "1.000000", balance_usdc: "1.000000" } })
      yield* h.ledger.deposit(bob.wallet, u("100"))
      const wallet = yield* http("GET", `/api/wallets/${bob.wallet}`, { key: bob.key })
      expect(wallet).toMatchObject({
        status: 200,
        body: { wallet_address: bob.wallet, balance_usdc: "101.000000", locked_usdc: "0.000000" }
      })

      // Create: metadata with a float timestamp and a region; the Idempotency-Key makes a retry safe.
      const createBody = {
        payer_wallet: bob.wallet,
        payee_wallet: carol.wallet,
        amount_usdc: 10,
        description: "translate",
        metadata: { fly_region: "ams", ts: 1_700_000_000.123, nested: { a: [1, "b"] } },
        unknown_field: "ignored"
      }
      const created = yield* http("POST", "/api/escrow/create", {
        key: bob.key,
        body: createBody,
        headers: { "idempotency-key": "order-1" }
      })
      expect(created.status).toBe(201)
      expect(created.body).toMatchObject({
        status: "pending",
        payer_wallet: bob.wallet,
        payee_wallet: carol.wallet,
        amount_usdc: "10.000000",
        fee_usdc: "0.100000",
        net_usdc: "9.900000",
        released_usdc: "0.000000",
        remaining_usdc: "10.000000",
        region: "ams",
        metadata: createBody.metadata,
        idempotency_key: "order-1",
        mandate_id: null,
        settled_at: null
      })
      expect(Date.parse(created.body.expires_at) - Date.parse(created.body.created_at)).toBe(15 * 60_000)
      const id = created.body.escrow_id as string
      expect(yield* http("GET", `/api/wallets/${bob.wallet}`, { key: bob.key })).toMatchObject({
        body: { balance_usdc: "91.000000", locked_usdc: "10.000000" }
      })
      const again = yield* http("POST", "/api/escrow/create", { key: bob.key, body: createBody, headers: { "idempotency-key": "order-1" } })
      expect(again).toMatchObject({ status: 201, body: { escrow_id: id } })
      expect(yield* available(h, bob.wallet)).toBe("91.000000")

      // Get: both parties.
      expect(yield* http("GET", `/api/escrow/${id}`, { key: carol.key })).toMatchObject({ status: 200, body: { escrow_id: id } })

      // Partial release, then the rest: 1% fee on each part, 15% of it to bob's referrer.
      const part = yield* http("POST", "/api/escrow/release", { key: bob.key, body: { escrow_id: id, amount_usdc: "4" } })
      expect(part).toMatchObject({
        status: 200,
        body: { status: "pending", released_usdc: "4.000000", fee_paid_usdc: "0.040000", remaining_usdc: "6.000000", fee_usdc: "0.100000", net_usdc: "9.900000" }
      })
      expect(yield* available(h, carol.wallet)).toBe("3.960000")
      expect(yield* available(h, alice.wallet)).toBe("0.006000")
      const rest = yield* http("POST", "/api/escrow/release", { key: bob.key, body: { escrow_id: id, auto_release: true } })
      expect(rest).toMatchObject({
        status: 200,
        body: { status: "released", released_usdc: "10.000000", fee_paid_usdc: "0.100000", remaining_usdc: "0.000000", net_usdc: "9.900000" }
      })
      expect(rest.body.settled_at).not.toBeNull()
      expect(yield* available(h, carol.wallet)).toBe("9.900000")
      expect(yield* available(h, alice.wallet)).toBe("0.015000")
      expect(Usdc.format(yield* h.ledger.systemBalance(SystemAccount.platformFees))).toBe("0.085000")

      // Cancel by the payee at any time: full refund, no fee. (Ids sort by creation ms: let a millisecond pass.)
      yield* TestClock.adjust("1 millis")
      const second = yield* http("POST", "/api/escrow/create", {
        key: bob.key,
        body: { payer_wallet: bob.wallet, payee_wallet: carol.wallet, amount_usdc: "5.5", description: "second" }
      })
      expect(yield* available(h, bob.wallet)).toBe("85.500000")
      const cancelled = yield* http("POST", "/api/escrow/cancel", { key: carol.key, body: { escrow_id: second.body.escrow_id } })
      expect(cancelled).toMatchObject({
        status: 200,
        body: { status: "cancelled", refunded_usdc: "5.500000", fee_usdc: "0.000000", net_usdc: "0.000000" }
      })
      expect(yield* available(h, bob.wallet)).toBe("91.000000")

      // List: the caller's escrows, filtered and paginated.
      const all = yield* http("GET", "/api/escrows", { key: bob.key })
      expect(all.status).toBe(200)
      expect(all.body.escrows.map((e: any) => e.escrow_id)).toEqual([id, second.body.escrow_id])
      expect(all.body.next_cursor).toBeNull()
      const released = yield* http("GET", "/api/escrows?status=released", { key: carol.key })
      expect(released.body.escrows.map((e: any) => e.escrow_id)).toEqual([id])
      const page1 = yield* http("GET", "/api/escrows?limit=1", { key: bob.key })
      expect(page1.body).toMatchObject({ escrows: [{ escrow_id: id }], next_cursor: id })
      const page2 = yield* http("GET", `/api/escrows?limit=1&cursor=${id}`, { key: bob.key })
      expect(page2.body.escrows.map((e: any) => e.escrow_id)).toEqual([second.body.escrow_id])
      expect((yield* http("GET", "/api/escrows", { key: alice.key })).body).toEqual({ escrows: [], next_cursor: null })

      // Mandate: carol may open escrows against bob's wallet within max and budget; its releases are hers to make.
      const mandate = yield* http("POST", "/api/mandates", {
        key: bob.key,
        body: { payee_wallet: carol.wallet, max_amount_usdc: "2", budget_usdc: 3 }
      })
      expect(mandate).toMatchObject({
        status: 201,
        body: { payer_wallet: bob.wallet, payee_wallet: carol.wallet, max_amount_usdc: "2.000000", budget_usdc: "3.000000", remaining_usdc: "3.000000", revoked: false, expires_at: null }
      })
      const underMandate = yield* http("POST", "/api/escrow/create", {
        key: carol.key,
        body: { payer_wallet: bob.wallet, payee_wallet: carol.wallet, amount_usdc: "2", description: "by mandate" }
      })
      expect(underMandate).toMatchObject({ status: 201, body: { mandate_id: mandate.body.mandate_id, amount_usdc: "2.000000" } })
      expect((yield* h.ledger.getMandate(mandate.body.mandate_id)).remaining).toBe(u("1"))
      expect(yield* http("GET", `/api/wallets/${bob.wallet}`, { key: bob.key })).toMatchObject({
        body: { balance_usdc: "89.000000", locked_usdc: "2.000000" }
      })
      const payeeRelease = yield* http("POST", "/api/escrow/release", { key: carol.key, body: { escrow_id: underMandate.body.escrow_id } })
      expect(payeeRelease).toMatchObject({ status: 200, body: { status: "released" } })
      expect(yield* available(h, carol.wallet)).toBe("11.880000")
      expect(yield* available(h, alice.wallet)).toBe("0.018000")
      const revoked = yield* http("DELETE", `/api/mandates/${mandate.body.mandate_id}`, { key: bob.key })
      expect(revoked).toMatchObject({ status: 200, body: { revoked: true, remaining_usdc: "1.000000" } })

      // Referrals: alice referred bob; her shares by region.
      const referrals = yield* http("GET", "/api/referrals", { key: alice.key })
      expect(referrals).toMatchObject({
        status: 200,
        body: {
          referral_code: alice.referralCode,
          referred_agents: [
            { agent_id: bob.agentId, agent_name: "bob", wallet_address: bob.wallet, referral_code: bob.referralCode, earned_usdc: "0.018000" }
          ],
          earned_usdc: "0.018000",
          by_region: { ams: "0.015000", "test-region": "0.003000" }
        }
      })

      // An agent's public card, for any authenticated agent: carol reads bob's, referred by alice.
      const card = yield* http("GET", `/api/agents/${bob.wallet}`, { key: carol.key })
      expect(card).toMatchObject({
        status: 200,
        body: { agent_id: bob.agentId, agent_name: "bob", wallet_address: bob.wallet, referral_code: bob.referralCode, referrer_wallet: alice.wallet }
      })
      expect(card.body.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
      expect((yield* http("GET", `/api/agents/${alice.wallet}`, { key: carol.key })).body.referrer_wallet).toBeNull()

      // The caller's own card, from its key alone: each key answers with its own agent.
      const bobMe = yield* http("GET", "/api/agents/me", { key: bob.key })
      expect(bobMe.status).toBe(200)
      expect(bobMe.body).toEqual(card.body)
      const carolMe = yield* http("GET", "/api/agents/me", { key: carol.key })
      expect(carolMe).toMatchObject({
        status: 200,
        body: { agent_id: carol.agentId, agent_name: "carol", wallet_address: carol.wallet, referral_code: carol.referralCode, referrer_wallet: null }
      })

      // Activity, the owner's only: alice spent and earned nothing but her referral shares, per region.
      const activity = yield* http("GET", `/api/wallets/${alice.wallet}/activity`, { key: alice.key })
      const zero = { spent_usdc: "0.000000", revenue_usdc: "0.000000", fees_paid_usdc: "0.000000" }
      expect(activity.status).toBe(200)
      expect(activity.body).toEqual({
        wallet_address: alice.wallet,
        ...zero,
        referral_income_usdc: "0.018000",
        by_region: { ams: { ...zero, referral_income_usdc: "0.015000" }, "test-region": { ...zero, referral_income_usdc: "0.003000" } }
      })

      // Key rotation: a new key that works at once.
      const rotated = yield* http("POST", "/api/agents/rotate-key", { key: alice.key })
      expect(rotated.status).toBe(200)
      expect(rotated.body.agent_id).toBe(alice.agentId)
      expect(yield* http("GET", `/api/wallets/${alice.wallet}`, { key: rotated.body.api_key })).toMatchObject({
        status: 200,
        body: { balance_usdc: "0.018000" }
      })

      expect((yield* h.ledger.verify).violations).toEqual([])
    }))

  it.scoped("the payer may cancel once the deadline has passed (TestClock), with a full refund", () =>
    Effect.gen(function*() {
      const h = yield* serve()
      const payer = yield* agent(h, "payer", "20")
      const payee = yield* agent(h, "payee")
      const created = yield* h.http("POST", "/api/escrow/create", {
        key: payer.key,
        body: { payer_wallet: payer.wallet, payee_wallet: payee.wallet, amount_usdc: "7", description: "x", timeout_ms: 60_000 }
      })
      const early = yield* h.http("POST", "/api/escrow/cancel", { key: payer.key, body: { escrow_id: created.body.escrow_id } })
      expect(early).toMatchObject({ status: 403, body: { error: "forbidden", field: "escrow_id" } })
      yield* TestClock.adjust("60 seconds")
      const late = yield* h.http("POST", "/api/escrow/cancel", { key: payer.key, body: { escrow_id: created.body.escrow_id } })
      expect(late).toMatchObject({ status: 200, body: { status: "cancelled", refunded_usdc: "7.000000" } })
      expect(yield* available(h, payer.wallet)).toBe("20.000000")
    }))

  it.scoped("release authorizes alike whether the service opened the escrow (parties remembered) or not (read)", () =>
    Effect.gen(function*() {
      const h = yield* serve()
      const payer = yield* agent(h, "payer", "20")
      const payee = yield* agent(h, "payee")
      const stranger = yield* agent(h, "stranger")
      const terms = { payer: payer.wallet, payee: payee.wallet, amount: u("2"), description: "x" }
      const openedHere = (yield* h.http("POST", "/api/escrow/create", {
        key: payer.key,
        body: { payer_wallet: payer.wallet, payee_wallet: payee.wallet, amount_usdc: "2", description: "x" }
      })).body.escrow_id
      // Opened on the ledger directly, as another instance of the service would: this one never saw it.
      const openedElsewhere = (yield* h.ledger.createEscrow(terms)).id
      const mandate = yield* h.ledger.createMandate({ payer: payer.wallet, payee: payee.wallet, maxAmount: u("5"), budget: u("5") })
      const underMandateElsewhere = (yield* h.ledger.createEscrow({ ...terms, mandateId: mandate.id })).id

      for (const id of [openedHere, openedElsewhere]) {
        const release = (key: string) => h.http("POST", "/api/escrow/release", { key, body: { escrow_id: id } })
        expect(yield* release(stranger.key), id).toMatchObject({
          status: 403,
          body: { error: "forbidden", field: "escrow_id", message: expect.stringContaining("is not yours") }
        })
        expect(yield* release(payee.key), id).toMatchObject({ status: 403, body: { error: "forbidden", field: "escrow_id" } })
        expect((yield* h.ledger.getEscrow(id as never)).status).toBe("pending")
        expect(yield* release(payer.key), id).toMatchObject({ status: 200, body: { status: "released", released_usdc: "2.000000" } })
      }
      // A mandate lets its payee release, nobody else: not a stranger.
      const byStranger = yield* h.http("POST", "/api/escrow/release", { key: stranger.key, body: { escrow_id: underMandateElsewhere } })
      expect(byStranger).toMatchObject({ status: 403, body: { error: "forbidden", message: expect.stringContaining("is not yours") } })
      const byPayee = yield* h.http("POST", "/api/escrow/release", { key: payee.key, body: { escrow_id: underMandateElsewhere } })
      expect(byPayee).toMatchObject({ status: 200, body: { status: "released" } })
      // Three releases of 2 USDC, each net of the 1% fee.
      expect(yield* available(h, payee.wallet)).toBe("5.940000")
      expect(yield* available(h, payer.wallet)).toBe("14.000000")
      expect(yield* available(h, stranger.wallet)).toBe("0.000000")
      expect((yield* h.ledger.verify).violations).toEqual([])
    }))

  it.scoped("payerMayCancelBeforeDeadline lets an orchestrating payer refund early", () =>
    Effect.gen(function*() {
      const h = yield* serve({ settlement: { payerMayCancelBeforeDeadline: true } })
      const payer = yield* agent(h, "payer", "20")
      const payee = yield* agent(h, "payee")
      const created = yield* h.http("POST", "/api/escrow/create", {
        key: payer.key,
        body: { payer_wallet: payer.wallet, payee_wallet: payee.wallet, amount_usdc: "7", description: "x" }
      })
      const cancelled = yield* h.http("POST", "/api/escrow/cancel", { key: payer.key, body: { escrow_id: created.body.escrow_id } })
      expect(cancelled).toMatchObject({ status: 200, body: { status: "cancelled" } })
      expect(yield* available(h, payer.wallet)).toBe("20.000000")
    }))

  it.scoped("publishes /openapi.json and /docs from the contract", () =>
    Effect.gen(function*() {
      const h = yield* serve()
      const spec = yield* h.http("GET", "/openapi.json")
      expect(spec.status).toBe(200)
      expect(Object.keys(spec.body.paths).sort()).toEqual([
        "/api/agents",
        "/api/agents/me",
        "/api/agents/revoke-keys",
        "/api/agents/rotate-key",
        "/api/agents/{address}",
        "/api/escrow/cancel",
        "/api/escrow/create",
        "/api/escrow/release",
        "/api/escrow/{id}",
        "/api/escrows",
        "/api/faucet/claim",
        "/api/mandates",
        "/api/mandates/{id}",
        "/api/payment-tokens",
        "/api/referrals",
        "/api/wallets/{address}",
        "/api/wallets/{address}/activity",
        "/health"
      ])
      const create = spec.body.paths["/api/escrow/create"].post
      expect(Object.keys(create.responses).sort()).toEqual(["201", "400", "401", "402", "403", "404", "409", "413", "415", "429", "500", "503"])
      expect(create.responses["400"].content["application/json"].schema).toEqual({ $ref: "#/components/schemas/BadRequestError" })
      expect(create.parameters.map((p: any) => p.name)).toContain("idempotency-key")
      expect(spec.body.components.schemas["HttpApiDecodeError"]).toBeUndefined()
      expect(spec.body.components.securitySchemes).toMatchObject({ bearer: { type: "http", scheme: "bearer" } })
      // Built on the first request (server.ts), and the document the platform's middlewareOpenApi builds.
      expect(spec.body).toEqual(JSON.parse(JSON.stringify(OpenApi.fromApi(SettlementApi))))
      const docs = yield* h.http("GET", "/docs")
      expect(docs.status).toBe(200)
      expect(docs.headers.get("content-type")).toContain("text/html")
      // HttpApiSwagger's page, loaded on demand: Swagger UI with this API's document embedded.
      expect(docs.body).toContain("SwaggerUIBundle")
      expect(docs.body).toContain(`<title>${spec.body.info.title} Documentation</title>`)
      expect(docs.body).toContain(`"/api/escrow/create"`)
      expect((yield* h.http("GET", "/docs")).body).toBe(docs.body)
    }))
})

/** A world with a pending escrow, a cancelled one, a released one, and a used idempotency key. */
const world = (h: Harness) =>
  Effect.gen(function*() {
    const payer = yield* agent(h, "payer", "50")
    const payee = yield* agent(h, "payee")
    const stranger = yield* agent(h, "stranger", "5")
    const create = (amount: string, key?: string) =>
      h.http("POST", "/api/escrow/create", {
        key: payer.key,
        body: { payer_wallet: payer.wallet, payee_wallet: payee.wallet, amount_usdc: amount, description: "job" },
        headers: key === undefined ? {} : { "idempotency-key": key }
      }).pipe(Effect.map((r) => r.body.escrow_id as string))
    const pending = yield* create("10", "order-1")
    const cancelled = yield* create("1")
    yield* h.http("POST", "/api/escrow/cancel", { key: payee.key, body: { escrow_id: cancelled } })
    const released = yield* create("1")
    yield* h.http("POST", "/api/escrow/release", { key: payer.key, body: { escrow_id: released } })
    yield* h.http("POST", "/api/faucet/claim", { key: payee.key, body: { wallet_address: payee.wallet, agent_name: "payee" } })
    return { payer, payee, stranger, pending, cancelled, released }
  })

describe("settlement REST API: every refusal changes nothing", () => {
  it.scoped("400 401 402 403 404 409 413, each with its code, field and untouched balances", () =>
    Effect.gen(function*() {
      const h = yield* serve()
      const w = yield* world(h)
      const { payer, payee, stranger } = w
      const wallets = [payer.wallet, payee.wallet, stranger.wallet]
      const before = yield* snapshot(h, wallets)
      const escrowBody = (extra: Record<string, unknown> = {}) => ({
        payer_wallet: payer.wallet,
        payee_wallet: payee.wallet,
        amount_usdc: "1",
        description: "job",
        ...extra
      })

      type Case = readonly [label: string, status: number, error: string, field: string | undefined, request: Effect.Effect<any>]
      const cases: ReadonlyArray<Case> = [
        // 400: schema failures name the field; the engine's too.
        ["amount with 7 places", 400, "invalid_request", "amount_usdc", h.http("POST", "/api/escrow/create", { key: payer.key, body: escrowBody({ amount_usdc: "1.0000001" }) })],
        ["float-noise amount", 400, "invalid_request", "amount_usdc", h.http("POST", "/api/escrow/create", { key: payer.key, body: escrowBody({ amount_usdc: 0.0000015 }) })],
        ["amount of the wrong type", 400, "invalid_request", "amount_usdc", h.http("POST", "/api/escrow/create", { key: payer.key, body: escrowBody({ amount_usdc: true }) })],
        ["zero amount", 400, "invalid_request", "amount_usdc", h.http("POST", "/api/escrow/create", { key: payer.key, body: escrowBody({ amount_usdc: "0" }) })],
        ["negative amount", 400, "invalid_request", "amount_usdc", h.http("POST", "/api/escrow/create", { key: payer.key, body: escrowBody({ amount_usdc: "-1" }) })],
        ["missing description", 400, "invalid_request", "description", h.http("POST", "/api/escrow/create", { key: payer.key, body: { payer_wallet: payer.wallet, payee_wallet: payee.wallet, amount_usdc: "1" } })],
        ["malformed wallet", 400, "invalid_request", "payee_wallet", h.http("POST", "/api/escrow/create", { key: payer.key, body: escrowBody({ payee_wallet: "0x1234" }) })],
        ["metadata over 4 KiB", 400, "invalid_request", "metadata", h.http("POST", "/api/escrow/create", { key: payer.key, body: escrowBody({ metadata: { blob: "x".repeat(5000) } }) })],
        ["metadata not an object", 400, "invalid_request", "metadata", h.http("POST", "/api/escrow/create", { key: payer.key, body: escrowBody({ metadata: [1, 2] }) })],
        ["payer is payee", 400, "invalid_input", "payee_wallet", h.http("POST", "/api/escrow/create", { key: payer.key, body: escrowBody({ payee_wallet: payer.wallet }) })],
        ["not JSON", 400, "invalid_json", undefined, h.http("POST", "/api/escrow/create", { key: payer.key, raw: "{\"payer_wallet\": " })],
        ["body not an object", 400, "invalid_request", undefined, h.http("POST", "/api/escrow/create", { key: payer.key, raw: "[1,2]" })],
        ["partial release of zero", 400, "invalid_request", "amount_usdc", h.http("POST", "/api/escrow/release", { key: payer.key, body: { escrow_id: w.pending, amount_usdc: 0 } })],
        ["malformed escrow id", 400, "invalid_request", "id", h.http("GET", "/api/escrow/not-an-id", { key: payer.key })],
        ["list limit out of range", 400, "invalid_request", "limit", h.http("GET", "/api/escrows?limit=0", { key: payer.key })],
        ["faucet without agent_name", 400, "invalid_request", "agent_name", h.http("POST", "/api/faucet/claim", { key: stranger.key, body: { wallet_address: stranger.wallet } })],
        ["mandate budget not positive", 400, "invalid_request", "budget_usdc", h.http("POST", "/api/mandates", { key: payer.key, body: { payee_wallet: payee.wallet, max_amount_usdc: "1", budget_usdc: "0" } })],
        ["mandate expiring in the past", 400, "invalid_input", "expires_at", h.http("POST", "/api/mandates", { key: payer.key, body: { payee_wallet: payee.wallet, max_amount_usdc: "1", budget_usdc: "1", expires_at: "1969-01-01T00:00:00Z" } })],
        ["empty agent name", 400, "invalid_request", "agent_name", h.http("POST", "/api/agents", { body: { agent_name: "" } })],
        // 401
        ["no key", 401, "unauthorized", undefined, h.http("POST", "/api/escrow/create", { body: escrowBody() })],
        ["malformed key", 401, "unauthorized", undefined, h.http("POST", "/api/escrow/create", { key: "pk_nope", body: escrowBody() })],
        ["unknown well-formed key", 401, "unauthorized", undefined, h.http("GET", `/api/wallets/${payer.wallet}`, { key: "pk_" + "A".repeat(43) })],
        ["another scheme", 401, "unauthorized", undefined, h.http("GET", `/api/wallets/${payer.wallet}`, { headers: { authorization: `Basic ${payer.key}` } })],
        // 402
        ["more than available", 402, "insufficient_funds", "amount_usdc", h.http("POST", "/api/escrow/create", { key: payer.key, body: escrowBody({ amount_usdc: "39.000001" }) })],
        // 403
        ["someone else's payer wallet", 403, "forbidden", "payer_wallet", h.http("POST", "/api/escrow/create", { key: stranger.key, body: escrowBody() })],
        ["payee without a mandate", 403, "forbidden", "payer_wallet", h.http("POST", "/api/escrow/create", { key: payee.key, body: escrowBody() })],
        ["faucet for another wallet", 403, "forbidden", "wallet_address", h.http("POST", "/api/faucet/claim", { key: stranger.key, body: { wallet_address: payer.wallet, agent_name: "x" } })],
        ["another's wallet", 403, "forbidden", "wallet_address", h.http("GET", `/api/wallets/${payer.wallet}`, { key: stranger.key })],
        ["another's activity", 403, "forbidden", "address", h.http("GET", `/api/wallets/${payer.wallet}/activity`, { key: stranger.key })],
        ["another's escrow", 403, "forbidden", "escrow_id", h.http("GET", `/api/escrow/${w.pending}`, { key: stranger.key })],
        ["release by a stranger", 403, "forbidden", "escrow_id", h.http("POST", "/api/escrow/release", { key: stranger.key, body: { escrow_id: w.pending } })],
        ["release by the payee (no mandate)", 403, "forbidden", "escrow_id", h.http("POST", "/api/escrow/release", { key: payee.key, body: { escrow_id: w.pending } })],
        ["cancel by the payer before the deadline", 403, "forbidden", "escrow_id", h.http("POST", "/api/escrow/cancel", { key: payer.key, body: { escrow_id: w.pending } })],
        ["cancel by a stranger", 403, "forbidden", "escrow_id", h.http("POST", "/api/escrow/cancel", { key: stranger.key, body: { escrow_id: w.pending } })],
        // 404
        ["unknown escrow", 404, "escrow_not_found", "escrow_id", h.http("GET", "/api/escrow/esc_0000000000000000000000000", { key: payer.key })],
        ["unknown agent", 404, "agent_not_found", undefined, h.http("GET", `/api/agents/0x${"7".repeat(40)}`, { key: payer.key })],
        ["agent card without a key", 401, "unauthorized", undefined, h.http("GET", `/api/agents/${payer.wallet}`)],
        ["own card without a key", 401, "unauthorized", undefined, h.http("GET", "/api/agents/me")],
        ["own card with an unknown key", 401, "unauthorized", undefined, h.http("GET", "/api/agents/me", { key: "pk_" + "A".repeat(43) })],
        ["release of an unknown escrow", 404, "escrow_not_found", "escrow_id", h.http("POST", "/api/escrow/release", { key: payer.key, body: { escrow_id: "esc_0000000000000000000000000" } })],
        ["revoke an unknown mandate", 404, "mandate_not_found", "mandate_id", h.http("DELETE", "/api/mandates/mdt_0000000000000000000000000", { key: payer.key })],
        ["unregistered payee", 404, "agent_not_found", undefined, h.http("POST", "/api/escrow/create", { key: payer.key, body: escrowBody({ payee_wallet: "0x" + "9".repeat(40) }) })],
        ["unknown referral code", 404, "referral_code_not_found", "referral_code", h.http("POST", "/api/agents", { body: { agent_name: "x", referral_code: "ref_doesnotexist" } })],
        ["unknown route", 404, "not_found", undefined, h.http("GET", "/api/nothing", { key: payer.key })],
        ["wrong method", 404, "not_found", undefined, h.http("PUT", "/api/escrow/create", { key: payer.key, body: escrowBody() })],
        // 409
        ["faucet twice", 409, "faucet_already_claimed", "wallet_address", h.http("POST", "/api/faucet/claim", { key: payee.key, body: { wallet_address: payee.wallet, agent_name: "payee" } })],
        ["wallet already registered", 409, "wallet_already_registered", "wallet_address", h.http("POST", "/api/agents", { body: { agent_name: "again", wallet_address: payer.wallet } })],
        ["idempotency key reused with other terms", 409, "idempotency_key_reused", "Idempotency-Key", h.http("POST", "/api/escrow/create", { key: payer.key, body: escrowBody({ amount_usdc: "11" }), headers: { "idempotency-key": "order-1" } })],
        ["idempotency key reused with other metadata", 409, "idempotency_key_reused", "Idempotency-Key", h.http("POST", "/api/escrow/create", { key: payer.key, body: escrowBody({ amount_usdc: "10", metadata: { other: true } }), headers: { "idempotency-key": "order-1" } })],
        ["idempotency key reused with another timeout_ms", 409, "idempotency_key_reused", "Idempotency-Key", h.http("POST", "/api/escrow/create", { key: payer.key, body: escrowBody({ amount_usdc: "10", timeout_ms: 2_592_000_000 }), headers: { "idempotency-key": "order-1" } })],
        ["release after cancel", 409, "escrow_not_pending", "escrow_id", h.http("POST", "/api/escrow/release", { key: payer.key, body: { escrow_id: w.cancelled } })],
        ["cancel after release", 409, "escrow_not_pending", "escrow_id", h.http("POST", "/api/escrow/cancel", { key: payee.key, body: { escrow_id: w.released } })],
        ["partial release beyond what remains", 409, "release_exceeds_remaining", "amount_usdc", h.http("POST", "/api/escrow/release", { key: payer.key, body: { escrow_id: w.pending, amount_usdc: "10.000001" } })],
        // 413
        ["body over 64 KiB", 413, "payload_too_large", undefined, h.http("POST", "/api/escrow/create", { key: payer.key, raw: JSON.stringify(escrowBody({ description: "x".repeat(70_000) })) })]
      ]

      for (const [label, status, error, field, request] of cases) {
        const reply = yield* request
        expect({ label, status: reply.status, error: reply.body?.error, field: reply.body?.field }).toEqual({ label, status, error, field })
        expect(typeof reply.body.message).toBe("string")
        expect(yield* snapshot(h, wallets), label).toEqual(before)
      }

      // The typed facts travel in `details`.
      const poor = yield* h.http("POST", "/api/escrow/create", { key: payer.key, body: escrowBody({ amount_usdc: "100" }) })
      expect(poor.body.details).toEqual({ wallet: payer.wallet, required_usdc: "100.000000", available_usdc: "39.000000" })
      const late = yield* h.http("POST", "/api/escrow/release", { key: payer.key, body: { escrow_id: w.cancelled } })
      expect(late.body.details).toEqual({ escrow_id: w.cancelled, status: "cancelled", attempted: "release" })
      expect((yield* h.ledger.verify).violations).toEqual([])
    }))

  it.scoped("a mandate beyond its maximum, its budget, or revoked → 403 mandate_exceeded / forbidden, nothing locked", () =>
    Effect.gen(function*() {
      const h = yield* serve()
      const payer = yield* agent(h, "payer", "100")
      const payee = yield* agent(h, "payee")
      const mandate = yield* h.http("POST", "/api/mandates", {
        key: payer.key,
        body: { payee_wallet: payee.wallet, max_amount_usdc: "5", budget_usdc: "8" }
      })
      const create = (amount: string) =>
        h.http("POST", "/api/escrow/create", {
          key: payee.key,
          body: { payer_wallet: payer.wallet, payee_wallet: payee.wallet, amount_usdc: amount, description: "m" }
        })
      expect((yield* create("5")).status).toBe(201)
      const before = yield* snapshot(h, [payer.wallet, payee.wallet])
      const overMax = yield* create("5.000001")
      expect(overMax).toMatchObject({ status: 403, body: { error: "mandate_exceeded", details: { mandate_id: mandate.body.mandate_id } } })
      const overBudget = yield* create("3.000001")
      expect(overBudget).toMatchObject({ status: 403, body: { error: "mandate_exceeded" } })
      expect(yield* snapshot(h, [payer.wallet, payee.wallet])).toEqual(before)
      expect((yield* h.ledger.getMandate(mandate.body.mandate_id)).remaining).toBe(u("3"))
      yield* h.http("DELETE", `/api/mandates/${mandate.body.mandate_id}`, { key: payer.key })
      const revoked = yield* create("1")
      expect(revoked).toMatchObject({ status: 403, body: { error: "forbidden", field: "payer_wallet" } })
      // Only the payer may revoke: to anyone else the mandate does not exist.
      expect((yield* h.http("DELETE", `/api/mandates/${mandate.body.mandate_id}`, { key: payee.key })).status).toBe(404)
      expect(yield* snapshot(h, [payer.wallet, payee.wallet])).toEqual(before)
    }))
})
