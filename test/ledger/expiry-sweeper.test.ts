import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, TestClock } from "effect"
import * as Usdc from "../../src/domain/Usdc.js"
import * as ExpirySweeper from "../../src/ledger/ExpirySweeper.js"
import { Ledger } from "../../src/ledger/Ledger.js"
import * as LedgerConfig from "../../src/ledger/LedgerConfig.js"
import * as MemoryLedger from "../../src/ledger/MemoryLedger.js"

const ledgerLayer = MemoryLedger.layer.pipe(Layer.provide(LedgerConfig.layer()))

describe("ExpirySweeper", () => {
  it.scoped("refunds an escrow once its deadline has passed, without anyone calling cancel", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger
      const payer = yield* ledger.registerAgent({ name: "payer" })
      const payee = yield* ledger.registerAgent({ name: "payee" })
      yield* ledger.deposit(payer.wallet, Usdc.make("5"))
      const escrow = yield* ledger.createEscrow({
        payer: payer.wallet,
        payee: payee.wallet,
        amount: Usdc.make("2"),
        description: "never settled",
        timeout: "1 minute"
      })
      yield* Layer.build(ExpirySweeper.layer({ interval: "10 seconds" }))
      yield* TestClock.adjust("50 seconds")
      expect((yield* ledger.getEscrow(escrow.id)).status).toBe("pending")
      expect((yield* ledger.balance(payer.wallet)).available).toBe(Usdc.make("3"))
      yield* TestClock.adjust("20 seconds")
      expect((yield* ledger.getEscrow(escrow.id)).status).toBe("expired")
      expect(yield* ledger.balance(payer.wallet)).toEqual({ wallet: payer.wallet, available: Usdc.make("5"), locked: 0n })
      expect((yield* ledger.balance(payee.wallet)).available).toBe(0n)
      expect((yield* ledger.verify).violations).toEqual([])
    }).pipe(Effect.provide(ledgerLayer)))
})
