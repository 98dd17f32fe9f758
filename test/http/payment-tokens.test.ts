/**
 * Payment tokens over the real REST API, on both stores (memory, SQLite): minted by
 * the payer, redeemed once by the named payee at escrow create, refused when reused,
 * expired (TestClock), for another payee, over the maximum or for another payer, and
 * every refusal changes no balance. SQLite keeps only the token's hash, and of many
 * concurrent redemptions exactly one opens an escrow.
 */
import { SqlClient } from "@effect/sql"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, TestClock } from "effect"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Server from "../../src/http/server.js"
import { MAX_MICROS } from "../../src/domain/Usdc.js"
import createPaymentTokensTable from "../../src/ledger/migrations/0006_payment_tokens.js"
import { make as sqlStore } from "../../src/settlement/sql/PaymentTokenStore.js"
import { agent, type Harness, http, serve, snapshot, type TestAgent } from "./harness.js"

const mint = (h: Harness, payer: TestAgent, body: Record<string, unknown>) =>
  h.http("POST", "/api/payment-tokens", { key: payer.key, body })

const redeem = (h: Harness, payee: TestAgent, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
  h.http("POST", "/api/escrow/create", { key: payee.key, body: { description: "inference", ...body }, headers })

const parties = (h: Harness) =>
  Effect.gen(function*() {
    const payer = yield* agent(h, "payer", "10")
    const payee = yield* agent(h, "payee")
    const stranger = yield* agent(h, "stranger", "10")
    return { payer, payee, stranger, all: [payer.wallet, payee.wallet, stranger.wallet] }
  })

for (const sqlite of [false, true]) {
  describe(`payment tokens (${sqlite ? "SQLite" : "memory"})`, () => {
    it.scoped("the payer mints, the payee redeems once: exactly the amount is locked; a reuse is refused and changes nothing", () =>
      Effect.gen(function*() {
        const h = yield* serve({ sqlite })
        const { payer, payee, all } = yield* parties(h)
        const minted = yield* mint(h, payer, { payee_wallet: payee.wallet, max_amount_usdc: "0.5" })
        expect(minted.status).toBe(201)
        expect(minted.body).toMatchObject({
          payer_wallet: payer.wallet,
          payee_wallet: payee.wallet,
          max_amount_usdc: "0.500000",
          mandate_id: null
        })
        expect(Date.parse(minted.body.expires_at) - Date.parse(minted.body.created_at)).toBe(300_000)
        const token = minted.body.payment_token as string
        expect(token).toMatch(/^ptk_[A-Za-z0-9_-]{43}$/)

        const created = yield* redeem(h, payee, { payer_wallet: payer.wallet, payee_wallet: payee.wallet, amount_usdc: "0.25", payment_token: token })
        expect(created.status).toBe(201)
        expect(created.body).toMatchObject({ status: "pending", payer_wallet: payer.wallet, payee_wallet: payee.wallet, amount_usdc: "0.250000" })
        expect(JSON.stringify(created.body)).not.toContain(token)
        const payerBalance = yield* h.ledger.balance(payer.wallet)
        expect(payerBalance.available).toBe(9_750_000n)
        expect(payerBalance.locked).toBe(250_000n)
        expect(JSON.stringify(created.body)).not.toContain(token)

        // The payer authorized the payment up front: its payee may release it, as under a mandate.
        expect(created.body.metadata).toEqual({ paid_with_token: true })
        const released = yield* h.http("POST", "/api/escrow/release", { key: payee.key, body: { escrow_id: created.body.escrow_id } })
        expect(released).toMatchObject({ status: 200, body: { status: "released" } })
        // Only the service marks an escrow as paid with a token.
        const forged = yield* h.http("POST", "/api/escrow/create", {
          key: payer.key,
          body: { payer_wallet: payer.wallet, payee_wallet: payee.wallet, amount_usdc: "0.1", description: "x", metadata: { paid_with_token: true } }
        })
        expect(forged).toMatchObject({ status: 403, body: { field: "metadata" } })

        const before = yield* snapshot(h, all)
        const reused = yield* redeem(h, payee, { payer_wallet: payer.wallet, payee_wallet: payee.wallet, amount_usdc: "0.25", payment_token: token })
        expect(reused).toMatchObject({ status: 403, body: { error: "payment_token_invalid", field: "payment_token", details: { reason: "redeemed" } } })
        expect(reused.body.message).toContain("already redeemed")
        expect(JSON.stringify(reused.body)).not.toContain(token)
        expect(yield* snapshot(h, all)).toEqual(before)
      }))

    it.scoped("a token for another payee, over its maximum, for another payer, or unknown is refused and stays usable", () =>
      Effect.gen(function*() {
        const h = yield* serve({ sqlite })
        const { payer, payee, stranger, all } = yield* parties(h)
        const token = (yield* mint(h, payer, { payee_wallet: payee.wallet, max_amount_usdc: "0.5" })).body.payment_token as string
        const before = yield* snapshot(h, all)
        const terms = { payer_wallet: payer.wallet, payee_wallet: payee.wallet, amount_usdc: "0.5", payment_token: token }

        const wrongPayee = yield* redeem(h, stranger, { ...terms, payee_wallet: stranger.wallet })
        expect(wrongPayee).toMatchObject({ status: 403, body: { error: "payment_token_invalid", details: { reason: "wrong_payee" } } })
        const elsewhere = yield* redeem(h, payee, { ...terms, payee_wallet: stranger.wallet })
        expect(elsewhere).toMatchObject({ status: 403, body: { error: "forbidden", field: "payee_wallet" } })
        const overMax = yield* redeem(h, payee, { ...terms, amount_usdc: "0.500001" })
        expect(overMax).toMatchObject({ status: 403, body: { error: "payment_token_invalid", details: { reason: "over_max" } } })
        expect(overMax.body.message).toContain("0.500001 USDC exceeds the payment token's maximum of 0.500000 USDC")
        const wrongPayer = yield* redeem(h, payee, { ...terms, payer_wallet: stranger.wallet })
        expect(wrongPayer).toMatchObject({ status: 403, body: { error: "payment_token_invalid", details: { reason: "wrong_payer" } } })
        const unknown = yield* redeem(h, payee, { ...terms, payment_token: "ptk_" + "A".repeat(43) })
        expect(unknown).toMatchObject({ status: 403, body: { error: "payment_token_invalid", details: { reason: "unknown" } } })
        expect(yield* snapshot(h, all)).toEqual(before)

        // None of the refusals spent it.
        expect((yield* redeem(h, payee, terms)).status).toBe(201)
      }))

    it.scoped("a token expires after 5 minutes by default (TestClock); expires_in_seconds is bounded", () =>
      Effect.gen(function*() {
        const h = yield* serve({ sqlite })
        const { payer, payee, all } = yield* parties(h)
        const token = (yield* mint(h, payer, { payee_wallet: payee.wallet, max_amount_usdc: "1" })).body.payment_token as string
        yield* TestClock.adjust("5 minutes")
        const before = yield* snapshot(h, all)
        const expired = yield* redeem(h, payee, { payer_wallet: payer.wallet, payee_wallet: payee.wallet, amount_usdc: "1", payment_token: token })
        expect(expired).toMatchObject({ status: 403, body: { error: "payment_token_invalid", details: { reason: "expired" } } })
        expect(yield* snapshot(h, all)).toEqual(before)

        for (const seconds of [0, 3601, 1.5]) {
          const refused = yield* mint(h, payer, { payee_wallet: payee.wallet, max_amount_usdc: "1", expires_in_seconds: seconds })
          expect(refused).toMatchObject({ status: 400, body: { field: "expires_in_seconds" } })
        }
        const long = yield* mint(h, payer, { payee_wallet: payee.wallet, max_amount_usdc: "1", expires_in_seconds: 3600 })
        expect(Date.parse(long.body.expires_at) - Date.parse(long.body.created_at)).toBe(3_600_000)
        const self = yield* mint(h, payer, { payee_wallet: payer.wallet, max_amount_usdc: "1" })
        expect(self).toMatchObject({ status: 400, body: { field: "payee_wallet" } })
        const anonymous = yield* h.http("POST", "/api/payment-tokens", { body: { payee_wallet: payee.wallet, max_amount_usdc: "1" } })
        expect(anonymous.status).toBe(401)
      }))

    it.scoped("a create the ledger refuses (no funds) leaves the token usable; a retry with the claim's idempotency key returns the same escrow", () =>
      Effect.gen(function*() {
        const h = yield* serve({ sqlite })
        const payer = yield* agent(h, "poor", "0.1")
        const payee = yield* agent(h, "payee")
        const token = (yield* mint(h, payer, { payee_wallet: payee.wallet, max_amount_usdc: "1" })).body.payment_token as string
        const terms = { payer_wallet: payer.wallet, payee_wallet: payee.wallet, amount_usdc: "1", payment_token: token }
        const poor = yield* redeem(h, payee, terms, { "idempotency-key": "k1" })
        expect(poor).toMatchObject({ status: 402, body: { error: "insufficient_funds", details: { required_usdc: "1.000000" } } })
        // The payee learns the shortfall, never the payer's balance (0.100000 here).
        expect(poor.body.details).not.toHaveProperty("available_usdc")
        expect(JSON.stringify(poor.body)).not.toContain("0.100000")
        yield* h.ledger.deposit(payer.wallet, 1_000_000n as never)
        const paid = yield* redeem(h, payee, terms, { "idempotency-key": "k1" })
        expect(paid.status).toBe(201)
        const retried = yield* redeem(h, payee, terms, { "idempotency-key": "k1" })
        expect(retried.status).toBe(201)
        expect(retried.body.escrow_id).toBe(paid.body.escrow_id)
        const other = yield* redeem(h, payee, terms, { "idempotency-key": "k2" })
        expect(other).toMatchObject({ status: 403, body: { details: { reason: "redeemed" } } })
        expect((yield* h.ledger.balance(payer.wallet)).locked).toBe(1_000_000n)
      }))

    it.scoped("a token naming the payer's mandate draws on that mandate's budget; another's mandate cannot be named", () =>
      Effect.gen(function*() {
        const h = yield* serve({ sqlite })
        const { payer, payee, stranger } = yield* parties(h)
        const mandate = yield* h.http("POST", "/api/mandates", {
          key: payer.key,
          body: { payee_wallet: payee.wallet, max_amount_usdc: "1", budget_usdc: "2" }
        })
        const mandateId = mandate.body.mandate_id as string
        const minted = yield* mint(h, payer, { payee_wallet: payee.wallet, max_amount_usdc: "1", mandate_id: mandateId })
        expect(minted).toMatchObject({ status: 201, body: { mandate_id: mandateId } })
        const created = yield* redeem(h, payee, {
          payer_wallet: payer.wallet,
          payee_wallet: payee.wallet,
          amount_usdc: "0.75",
          payment_token: minted.body.payment_token
        })
        expect(created).toMatchObject({ status: 201, body: { mandate_id: mandateId } })
        const revoked = yield* h.http("DELETE", `/api/mandates/${mandateId}`, { key: payer.key })
        expect(revoked.body.remaining_usdc).toBe("1.250000")

        const notTheirs = yield* mint(h, stranger, { payee_wallet: payee.wallet, max_amount_usdc: "1", mandate_id: mandateId })
        expect(notTheirs).toMatchObject({ status: 403, body: { field: "mandate_id" } })
      }))
  })
}

describe("payment tokens (SQLite storage)", () => {
  it.live("a token for the largest amount the ledger allows keeps it exactly through SQLite", () =>
    Effect.gen(function*() {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ringmaster-tokens-"))
      const found = yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* createPaymentTokensTable
        const store = sqlStore(sql)
        const row = {
          tokenHash: "ab".repeat(32),
          payer: "0x" + "11".repeat(20),
          payee: "0x" + "22".repeat(20),
          maxAmount: MAX_MICROS,
          mandateId: null,
          createdAtMs: 1,
          expiresAtMs: 2,
          redeemedAtMs: null,
          redeemedIdempotencyKey: null
        } as Parameters<typeof store.insert>[0]
        yield* store.insert(row)
        return yield* store.findByHash(row.tokenHash)
      }).pipe(Effect.provide(SqliteClient.layer({ filename: path.join(dataDir, "ledger.db") })))
      expect(found?.maxAmount).toBe(MAX_MICROS)
    }))

  it.live("only the SHA-256 of a token is stored, and of 12 concurrent redemptions exactly one opens an escrow", () =>
    Effect.gen(function*() {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ringmaster-tokens-"))
      const context = yield* Layer.build(
        Server.layerSqlite({ dataDir, synchronous: "NORMAL", settlement: { port: 0, host: "127.0.0.1", agentRequestsPerSecond: 1000 } })
      )
      const base = yield* Effect.provide(Server.baseUrl, context)
      const { Ledger } = yield* Effect.promise(() => import("../../src/ledger/Ledger.js"))
      const h: Harness = { base, ledger: yield* Effect.provide(Ledger, context), http: http(base) }
      const { payer, payee, all } = yield* parties(h)
      const token = (yield* mint(h, payer, { payee_wallet: payee.wallet, max_amount_usdc: "1" })).body.payment_token as string

      const rows = yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql<Record<string, unknown>>`SELECT * FROM payment_tokens`).pipe(
        Effect.provide(SqliteClient.layer({ filename: path.join(dataDir, "ledger.db") }))
      )
      expect(rows).toHaveLength(1)
      expect(rows[0]!["token_hash"]).toBe(createHash("sha256").update(token).digest("hex"))
      expect(JSON.stringify(rows, (_k, v) => (typeof v === "bigint" ? v.toString() : v))).not.toContain(token.slice(4))

      const before = yield* snapshot(h, all)
      const replies = yield* Effect.all(
        Array.from({ length: 12 }, (_, i) =>
          redeem(h, payee, { payer_wallet: payer.wallet, payee_wallet: payee.wallet, amount_usdc: "1", payment_token: token }, { "idempotency-key": `race-${i}` })),
        { concurrency: "unbounded" }
      )
      expect(replies.filter((r) => r.status === 201)).toHaveLength(1)
      expect(replies.filter((r) => r.status === 403 && r.body.details?.reason === "redeemed")).toHaveLength(11)
      const after = yield* snapshot(h, all)
      expect(after[`${payer.wallet}.locked`]).toBe("1.000000")
      expect(Number(after["escrows"])).toBe(Number(before["escrows"]) + 1)
    }).pipe(Effect.scoped))
})
