/**
 * Payment tokens on PostgreSQL, the SQL the SQLite tests cannot exercise: the
 * claim is a conditional UPDATE ... RETURNING on a shared server, the maximum is a
 * BIGINT sent as text and read back as a string, and concurrent redemptions over a
 * pool of connections open exactly one escrow.
 */
import { afterAll, beforeAll, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as Usdc from "../../src/domain/Usdc.js"
import { PaymentTokens } from "../../src/settlement/PaymentTokens.js"
import { Ledger } from "../../src/ledger/Ledger.js"
import { createDatabase, describePg, pgLedgerLayer, type TestDatabase } from "./harness.js"

let db: TestDatabase

describePg("PostgreSQL: payment tokens", () => {
  beforeAll(async () => {
    db = await createDatabase("tokens")
  }, 30_000)
  afterAll(async () => {
    await db?.drop()
  })

  it.live("of 16 concurrent redemptions exactly one opens an escrow; refusals and an un-claimed token change nothing", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger
      const tokens = yield* PaymentTokens
      const payer = yield* ledger.registerAgent({ name: "payer" })
      const payee = yield* ledger.registerAgent({ name: "payee" })
      yield* ledger.deposit(payer.wallet, Usdc.make("2"))
      // Above 2^31 micro-USDC: the maximum must survive the BIGINT round trip exactly.
      const minted = yield* tokens.mint({ payer: payer.wallet, payee: payee.wallet, maxAmount: Usdc.make("5000.000001") })
      const terms = { description: "job", payee: payee.wallet }
      const redeem = (amount: string, key?: string) =>
        tokens.redeem(minted.token, { payee: payee.wallet, amount: Usdc.make(amount), idempotencyKey: key }, (grant) =>
          ledger.createEscrow({ ...terms, payer: grant.payer, amount: Usdc.make(amount), idempotencyKey: key }))

      const overMax = yield* Effect.flip(redeem("5000.000002"))
      expect(overMax).toMatchObject({ _tag: "PaymentTokenInvalid", reason: "over_max" })
      // The ledger refuses (2 USDC available): the token is un-claimed and pays later.
      const poor = yield* Effect.flip(redeem("3"))
      expect(poor._tag).toBe("InsufficientFunds")
      expect((yield* ledger.balance(payer.wallet)).locked).toBe(0n)

      const results = yield* Effect.all(
        Array.from({ length: 16 }, (_, i) => Effect.either(redeem("1", `race-${i}`))),
        { concurrency: "unbounded" }
      )
      const won = results.filter((r) => r._tag === "Right")
      expect(won).toHaveLength(1)
      expect(results.filter((r) => r._tag === "Left" && (r.left as any).reason === "redeemed")).toHaveLength(15)
      expect(yield* ledger.balance(payer.wallet)).toMatchObject({ available: Usdc.make("1"), locked: Usdc.make("1") })
    }).pipe(Effect.provide(Layer.provideMerge(PaymentTokens.layerSql(), pgLedgerLayer(db.url))), Effect.scoped), 60_000)
})
