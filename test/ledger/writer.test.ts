/**
 * The SQL ledger's group-commit writer: its bounded queue applies backpressure rather
 * than dropping or failing commands, closing the ledger commits what is queued and
 * refuses what comes after, and the agent rows it remembers never hide a newer one.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { newWalletAddress } from "../../src/domain/ids.js"
import * as Usdc from "../../src/domain/Usdc.js"
import { Ledger } from "../../src/ledger/Ledger.js"
import * as SqlLedger from "../../src/ledger/SqlLedger.js"

const freshDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "ringmaster-writer-"))

describe("SqlLedger writer", () => {
  it.live("more concurrent commands than the queue holds all commit, exactly once", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger
      const agent = yield* ledger.registerAgent({ name: "many-deposits" })
      // Above the queue's 16,384 slots: the surplus waits for room instead of failing.
      const count = 20_000
      yield* Effect.forEach(Array.from({ length: count }), () => ledger.deposit(agent.wallet, Usdc.make("0.000001")), {
        concurrency: "unbounded",
        discard: true
      })
      const balance = yield* ledger.balance(agent.wallet)
      expect(balance.available).toBe(Usdc.make("0.02"))
      expect((yield* ledger.verify).violations).toEqual([])
    }).pipe(Effect.provide(SqlLedger.layerSqliteWith({ dataDir: freshDir(), synchronous: "NORMAL" }))), 60_000)

  it.live("closing the ledger commits the queued commands and refuses later ones", () =>
    Effect.gen(function*() {
      const dataDir = freshDir()
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(SqlLedger.layerSqliteWith({ dataDir }), scope)
      const ledger = context.unsafeMap.get(Ledger.key) as Ledger["Type"]
      const agent = yield* ledger.registerAgent({ name: "closing" })
      // Each deposit on its own fiber; one yield lets all 500 run up to their submit.
      const deposits = yield* Effect.forEach(Array.from({ length: 500 }), () => Effect.fork(ledger.deposit(agent.wallet, Usdc.make("1"))))
      yield* Effect.yieldNow()
      yield* Scope.close(scope, Exit.void)
      const refused = yield* Effect.either(ledger.deposit(agent.wallet, Usdc.make("1")))
      expect(refused._tag === "Left" && refused.left._tag).toBe("LedgerUnavailable")

      // The queued commands were committed before the writer stopped: reopen the file and count.
      const outcomes = yield* Effect.forEach(deposits, (fiber) => Effect.exit(fiber.await.pipe(Effect.flatten)))
      expect(outcomes.filter(Exit.isSuccess)).toHaveLength(500)
      const reopened = yield* Effect.gen(function*() {
        const l = yield* Ledger
        return (yield* l.balance(agent.wallet)).available
      }).pipe(Effect.provide(SqlLedger.layerSqliteWith({ dataDir })))
      expect(reopened).toBe(Usdc.make("500"))
    }), 60_000)

  it.live("a wallet not found is not remembered: an agent another process registers later is found", () =>
    Effect.gen(function*() {
      const dataDir = freshDir()
      const ledgerOf = (scope: Scope.Scope) =>
        Effect.map(Layer.buildWithScope(SqlLedger.layerSqliteWith({ dataDir }), scope), (ctx) => Context.get(ctx, Ledger))
      const scope = yield* Scope.make()
      const [a, b] = [yield* ledgerOf(scope), yield* ledgerOf(scope)]
      const payer = yield* a.registerAgent({ name: "payer" })
      yield* a.deposit(payer.wallet, Usdc.make("10"))
      const later = newWalletAddress()
      const terms = { payer: payer.wallet, payee: later, amount: Usdc.make("1"), description: "to a newcomer" }
      const refused = yield* Effect.flip(a.createEscrow(terms))
      expect(refused._tag).toBe("AgentNotFound")
      yield* b.registerAgent({ name: "newcomer", wallet: later })
      const created = yield* a.createEscrow(terms)
      expect(created.payee).toBe(later)
      expect((yield* a.balance(payer.wallet)).locked).toBe(Usdc.make("1"))
      yield* Scope.close(scope, Exit.void)
    }), 60_000)
})
