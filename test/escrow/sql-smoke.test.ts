import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Escrow, Ledger, Usdc } from "../../src/index.js"
import { EscrowSqlite } from "../../src/sqlite.js"

describe("sql smoke", () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "rm-smoke-"))
  it.effect("scoped escrow on SQLite", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger
      const payer = yield* ledger.registerAgent({ name: "payer" })
      const payee = yield* ledger.registerAgent({ name: "payee", referralCode: payer.referralCode })
      yield* ledger.deposit(payer.wallet, Usdc.make("1000"))
      yield* Escrow.use({ payer: payer.wallet, payee: payee.wallet, amount: Usdc.make("1000"), description: "x" }, () => Effect.void)
      expect((yield* ledger.balance(payee.wallet)).available).toBe(Usdc.make("990"))
      expect((yield* ledger.balance(payer.wallet)).available).toBe(Usdc.make("1.5"))
      const r = yield* Effect.exit(Escrow.use({ payer: payer.wallet, payee: payee.wallet, amount: Usdc.make("1"), description: "x" }, () => Effect.fail("boom")))
      expect(r._tag).toBe("Failure")
      expect((yield* ledger.balance(payer.wallet)).available).toBe(Usdc.make("1.5"))
      const report = yield* ledger.verify
      expect(report.violations).toEqual([])
      expect(report.escrows).toBe(2)
    }).pipe(Effect.provide(EscrowSqlite.layer({ dataDir }))))
})
