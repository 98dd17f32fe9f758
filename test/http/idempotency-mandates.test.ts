/**
 * Over REST: an idempotency key is the caller's own and bound to the request it was
 * sent with; a mandate bounds how long its payee can hold the payer's money; a
 * release after the deadline is refused and refunds the payer. Every refusal leaves
 * the balances as they were (or, for the late release, as the refund leaves them).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import { agent, available, type Harness, serve, snapshot, type TestAgent } from "./harness.js"

const createAs = (h: Harness, caller: TestAgent, body: Record<string, unknown>, key?: string) =>
  h.http("POST", "/api/escrow/create", { key: caller.key, body, headers: key === undefined ? {} : { "idempotency-key": key } })

describe("settlement REST API: idempotency keys", () => {
  it.scoped("same key and body → the same escrow; a different body → 409 idempotency_key_reused naming nothing of the first", () =>
    Effect.gen(function*() {
      const h = yield* serve()
      const payer = yield* agent(h, "payer", "100")
      const payee = yield* agent(h, "payee")
      const body = { payer_wallet: payer.wallet, payee_wallet: payee.wallet, amount_usdc: "10", description: "job", metadata: { order: 1 }, timeout_ms: 60_000 }
      const first = yield* createAs(h, payer, body, "order-1")
      expect(first).toMatchObject({ status: 201, body: { idempotency_key: "order-1", metadata: { order: 1 } } })
      const id = first.body.escrow_id as string
      // the same request, its members in another order: the same answer
      const reordered = { timeout_ms: 60_000, metadata: { order: 1 }, description: "job", amount_usdc: 10, payee_wallet: payee.wallet, payer_wallet: payer.wallet }
      expect(yield* createAs(h, payer, reordered, "order-1")).toMatchObject({ status: 201, body: { escrow_id: id } })
      const before = yield* snapshot(h, [payer.wallet, payee.wallet])
      expect(before[`${payer.wallet}.available`]).toBe("90.000000")
      for (const changed of [{ metadata: { order: 2 } }, { metadata: undefined }, { timeout_ms: 2_592_000_000 }, { timeout_ms: undefined }, { description: "other" }]) {
        const reply = yield* createAs(h, payer, { ...body, ...changed }, "order-1")
        expect(reply.status).toBe(409)
        expect(reply.body).toMatchObject({ error: "idempotency_key_reused", field: "Idempotency-Key", details: { idempotency_key: "order-1" } })
        expect(JSON.stringify(reply.body)).not.toContain(id)
        expect(yield* snapshot(h, [payer.wallet, payee.wallet])).toEqual(before)
      }
    }))

  it.scoped("a payee holding a mandate neither uses up nor collides with the payer's keys", () =>
    Effect.gen(function*() {
      const h = yield* serve()
      const payer = yield* agent(h, "payer", "100")
      const payee = yield* agent(h, "payee")
      const granted = yield* h.http("POST", "/api/mandates", {
        key: payer.key,
        body: { payee_wallet: payee.wallet, max_amount_usdc: "20", budget_usdc: "50" }
      })
      expect(granted.status).toBe(201)
      const body = { payer_wallet: payer.wallet, payee_wallet: payee.wallet, amount_usdc: "10", description: "job" }
      // the payee takes the key first
      const payees = yield* createAs(h, payee, body, "k")
      expect(payees).toMatchObject({ status: 201, body: { mandate_id: granted.body.mandate_id, idempotency_key: "k" } })
      const payers = yield* createAs(h, payer, { ...body, amount_usdc: "30" }, "k")
      expect(payers).toMatchObject({ status: 201, body: { mandate_id: null, amount_usdc: "30.000000", idempotency_key: "k" } })
      expect(payers.body.escrow_id).not.toBe(payees.body.escrow_id)
      expect(yield* createAs(h, payer, { ...body, amount_usdc: "30" }, "k")).toMatchObject({ status: 201, body: { escrow_id: payers.body.escrow_id } })
      expect(yield* createAs(h, payee, body, "k")).toMatchObject({ status: 201, body: { escrow_id: payees.body.escrow_id } })
      expect(yield* available(h, payer.wallet)).toBe("60.000000")
    }))
})

describe("settlement REST API: mandates bound their escrows' timeouts", () => {
  it.scoped("max_timeout_ms: given, defaulted, bounded; a payee's create beyond it → 400 timeout_ms, nothing moves", () =>
    Effect.gen(function*() {
      const h = yield* serve()
      const payer = yield* agent(h, "payer", "100")
      const payee = yield* agent(h, "payee")
      const grant = (extra: Record<string, unknown>) =>
        h.http("POST", "/api/mandates", { key: payer.key, body: { payee_wallet: payee.wallet, max_amount_usdc: "10", budget_usdc: "30", ...extra } })
      expect(yield* grant({})).toMatchObject({ status: 201, body: { max_timeout_ms: 900_000 } })
      const tooLong = yield* grant({ max_timeout_ms: 2_592_000_001 })
      expect(tooLong).toMatchObject({ status: 400, body: { error: "invalid_input", field: "max_timeout_ms" } })
      const mandate = yield* grant({ max_timeout_ms: 600_000 })
      expect(mandate).toMatchObject({ status: 201, body: { max_timeout_ms: 600_000 } })
      const before = yield* snapshot(h, [payer.wallet, payee.wallet])
      const body = { payer_wallet: payer.wallet, payee_wallet: payee.wallet, amount_usdc: "10", description: "job", mandate_id: mandate.body.mandate_id }
      const refused = yield* createAs(h, payee, { ...body, timeout_ms: 2_592_000_000 })
      expect(refused).toMatchObject({ status: 400, body: { error: "invalid_input", field: "timeout_ms" } })
      expect(refused.body.message).toContain("600000 ms max_timeout_ms")
      expect(yield* snapshot(h, [payer.wallet, payee.wallet])).toEqual(before)
      const opened = yield* createAs(h, payee, body)
      expect(opened.status).toBe(201)
      expect(Date.parse(opened.body.expires_at) - Date.parse(opened.body.created_at)).toBe(600_000)
      // revoked: the escrow keeps its bounded deadline, after which the payer may cancel it
      expect(yield* h.http("DELETE", `/api/mandates/${mandate.body.mandate_id}`, { key: payer.key })).toMatchObject({
        status: 200,
        body: { revoked: true, max_timeout_ms: 600_000 }
      })
      yield* TestClock.adjust("10 minutes")
      const cancelled = yield* h.http("POST", "/api/escrow/cancel", { key: payer.key, body: { escrow_id: opened.body.escrow_id } })
      expect(cancelled).toMatchObject({ status: 200, body: { status: "cancelled", refunded_usdc: "10.000000" } })
      expect(yield* available(h, payer.wallet)).toBe("100.000000")
    }))
})

describe("settlement REST API: release after the deadline", () => {
  it.scoped("409 escrow_expired naming the escrow and its deadline; the payer is refunded at once, the payee gets nothing", () =>
    Effect.gen(function*() {
      const h = yield* serve()
      const payer = yield* agent(h, "payer", "100")
      const payee = yield* agent(h, "payee")
      const created = yield* createAs(h, payer, { payer_wallet: payer.wallet, payee_wallet: payee.wallet, amount_usdc: "40", description: "job", timeout_ms: 60_000 })
      const id = created.body.escrow_id as string
      yield* TestClock.adjust("1 minute")
      expect(yield* available(h, payer.wallet)).toBe("60.000000")
      const late = yield* h.http("POST", "/api/escrow/release", { key: payer.key, body: { escrow_id: id } })
      expect(late).toMatchObject({
        status: 409,
        body: { error: "escrow_expired", field: "escrow_id", details: { escrow_id: id, expires_at: created.body.expires_at } }
      })
      expect(yield* available(h, payer.wallet)).toBe("100.000000")
      expect(yield* available(h, payee.wallet)).toBe("0.000000")
      expect(yield* h.http("GET", `/api/escrow/${id}`, { key: payer.key })).toMatchObject({ body: { status: "expired", refunded_usdc: "40.000000" } })
    }))
})
