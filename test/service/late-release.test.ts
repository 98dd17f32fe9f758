/**
 * A release the ledger refuses past the deadline (`EscrowExpired`) closes the
 * service's journal row as expired at once, on a real SQLite ledger and journal:
 * the payer is refunded in that step, and nothing stays open for recovery.
 */
import { expect, it } from "@effect/vitest"
import { Context, Effect, Layer, TestClock } from "effect"
import * as Usdc from "../../src/domain/Usdc.js"
import { Escrow } from "../../src/escrow/Escrow.js"
import { Ledger } from "../../src/ledger/Ledger.js"
import * as SqlLedger from "../../src/ledger/SqlLedger.js"
import * as Journal from "../../src/service/Journal.js"
import { decorate } from "../../src/service/ServiceEscrow.js"
import { tempDir } from "./support.js"

it.scoped("a release refused past the deadline closes the journal row as expired; the payer has its money back", () =>
  Effect.gen(function*() {
    const dataDir = tempDir()
    const ctx = yield* Layer.build(Escrow.layerFromLedger.pipe(Layer.provideMerge(SqlLedger.layerSqliteWith({ dataDir }))))
    const ledger = Context.get(ctx, Ledger)
    const journal = Context.get(yield* Layer.build(Journal.layerSqlite({ dataDir, bootId: "boot_live" })), Journal.Journal)
    const escrow = decorate(Context.get(ctx, Escrow), journal, { region: "lhr", defaultTimeoutMs: 900_000 })
    const payer = yield* ledger.registerAgent({ name: "payer" })
    const payee = yield* ledger.registerAgent({ name: "orchestrator" })
    yield* ledger.deposit(payer.wallet, Usdc.make("10"))
    const created = yield* escrow.create({
      payer: payer.wallet,
      payee: payee.wallet,
      amount: Usdc.make("4"),
      description: "Inference (lhr)",
      idempotencyKey: "svc_late",
      timeout: "1 minute"
    })
    yield* TestClock.adjust("1 minute")
    const error = yield* Effect.flip(escrow.release(created.id))
    expect(error).toMatchObject({ _tag: "EscrowExpired", escrowId: created.id })
    expect(yield* ledger.balance(payer.wallet)).toEqual({ wallet: payer.wallet, available: Usdc.make("10"), locked: 0n })
    expect(yield* ledger.balance(payee.wallet)).toMatchObject({ available: 0n })
    const [row] = yield* journal.recent(1)
    expect(row).toMatchObject({ idempotencyKey: "svc_late", status: "expired", escrowId: created.id })
    expect(yield* journal.listOpen({ limit: 10, otherBootsOnly: false })).toEqual([])
  }))
