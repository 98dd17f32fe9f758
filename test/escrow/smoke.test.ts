import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Escrow, EscrowTest, Usdc } from "../../src/index.js"

describe("smoke", () => {
  it.effect("scoped escrow releases on success", () =>
    Effect.gen(function*() {
      const { ledger } = yield* EscrowTest
      const payer = yield* ledger.registerAgent({ name: "payer" })
      const payee = yield* ledger.registerAgent({ name: "payee", referralCode: payer.referralCode })
      yield* ledger.deposit(payer.wallet, Usdc.make("1000"))
      yield* Escrow.use({ payer: payer.wallet, payee: payee.wallet, amount: Usdc.make("1000"), description: "x" }, () => Effect.void)
      expect((yield* ledger.balance(payee.wallet)).available).toBe(Usdc.make("990"))
      expect((yield* ledger.balance(payer.wallet)).available).toBe(Usdc.make("1.5"))
      expect((yield* ledger.verify).violations).toEqual([])
    }).pipe(Effect.provide(EscrowTest.layer())))
})
