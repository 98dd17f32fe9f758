/**
 * Reconciliation of the journal, case by case, on a real SQLite ledger and journal:
 * what a dead process left open is cancelled (refunding the payer) whether or not
 * its escrow got created; rows past their deadline are left to the ledger's expiry;
 * what already settled is recorded as such; this process's own rows in flight are
 * not touched.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Layer } from "effect"
import type { WalletAddress } from "../../src/domain/ids.js"
import * as Usdc from "../../src/domain/Usdc.js"
import { Escrow } from "../../src/escrow/Escrow.js"
import { Ledger } from "../../src/ledger/Ledger.js"
import * as SqlLedger from "../../src/ledger/SqlLedger.js"
import * as Journal from "../../src/service/Journal.js"
import { reconcile } from "../../src/service/Recovery.js"
import { decorate } from "../../src/service/ServiceEscrow.js"
import { tempDir } from "./support.js"

const setup = (dataDir: string) =>
  Effect.gen(function*() {
    const ctx = yield* Layer.build(Escrow.layerFromLedger.pipe(Layer.provideMerge(SqlLedger.layerSqliteWith({ dataDir }))))
    const ledger = Context.get(ctx, Ledger)
    const backend = Context.get(ctx, Escrow)
    const payer = yield* ledger.registerAgent({ name: "payer" })
    const payee = yield* ledger.registerAgent({ name: "orchestrator" })
    yield* ledger.deposit(payer.wallet, Usdc.make("10"))
    return { ledger, backend, payer: payer.wallet, payee: payee.wallet }
  })

const journalOf = (dataDir: string, bootId: string) =>
  Effect.map(Layer.build(Journal.layerSqlite({ dataDir, bootId })), (ctx) => Context.get(ctx, Journal.Journal))

const terms = (payer: WalletAddress, payee: WalletAddress, amount: string) => ({
  payer,
  payee,
  amount: Usdc.make(amount),
  description: "Inference (lhr)",
  metadata: { fly_region: "lhr" },
  timeout: Duration.minutes(2)
})

describe("journal reconciliation", () => {
  it.live("cancels what a dead boot left open, created or not; leaves expired rows to the ledger; keeps its own in-flight rows", () =>
    Effect.scoped(Effect.gen(function*() {
      const dataDir = tempDir()
      const { backend, ledger, payee, payer } = yield* setup(dataDir)
      const dead = yield* journalOf(dataDir, "boot_dead")
      const deadEscrow = decorate(backend, dead, { region: "lhr", defaultTimeoutMs: 900_000 })

      // A: opened and pending when the process died.
      const a = yield* deadEscrow.create(terms(payer, payee, "1"))
      // B: journaled, then the process died before the create reached the ledger.
      yield* dead.open({
        payer,
        idempotencyKey: "svc_never_created",
        payee,
        amount: Usdc.make("2"),
        description: "Inference (lhr)",
        metadata: { fly_region: "lhr" },
        mandateId: null,
        timeoutMs: 120_000,
        region: "lhr",
        openedAtMs: Date.now(),
        deadlineMs: Date.now() + 120_000
      })
      // C: past its deadline: the ledger's expiry owns it.
      yield* dead.open({
        payer,
        idempotencyKey: "svc_past_deadline",
        payee,
        amount: Usdc.make("3"),
        description: "Inference (lhr)",
        metadata: {},
        mandateId: null,
        timeoutMs: 1,
        region: "lhr",
        openedAtMs: Date.now() - 10_000,
        deadlineMs: Date.now() - 5_000
      })
      // D: released by the settlement, but the process died before the row was closed.
      const d = yield* backend.create({ ...terms(payer, payee, "0.5"), idempotencyKey: "svc_released" })
      yield* dead.open({
        payer,
        idempotencyKey: "svc_released",
        payee,
        amount: Usdc.make("0.5"),
        description: "Inference (lhr)",
        metadata: { fly_region: "lhr" },
        mandateId: null,
        timeoutMs: 120_000,
        region: "lhr",
        openedAtMs: Date.now(),
        deadlineMs: Date.now() + 120_000
      })
      yield* backend.release(d.id)

      // The new boot has a request of its own in flight.
      const alive = yield* journalOf(dataDir, "boot_alive")
      const aliveEscrow = decorate(backend, alive, { region: "lhr", defaultTimeoutMs: 900_000 })
      const e = yield* aliveEscrow.create(terms(payer, payee, "0.25"))
      expect(yield* ledger.balance(payer)).toMatchObject({ available: Usdc.make("8.25"), locked: Usdc.make("1.25") })

      const report = yield* reconcile(backend, alive, { includeOwnExpired: true })
      expect(report).toEqual({ cancelled: 2, expired: 1, refused: 0, alreadySettled: 1, stillOpen: 0 })

      expect((yield* ledger.getEscrow(a.id)).status).toBe("cancelled")
      expect((yield* ledger.getEscrow(e.id)).status).toBe("pending")
      // Only the released 0.5 and the in-flight 0.25 left the payer's available balance.
      expect(yield* ledger.balance(payer)).toMatchObject({ available: Usdc.make("9.25"), locked: Usdc.make("0.25") })
      const rows = yield* alive.recent(10)
      const status = Object.fromEntries(rows.map((r) => [r.idempotencyKey, r.status]))
      expect(status["svc_never_created"]).toBe("cancelled")
      expect(status["svc_past_deadline"]).toBe("expired")
      expect(status["svc_released"]).toBe("released")
      expect(rows.find((r) => r.bootId === "boot_alive")?.status).toBe("open")

      // A second pass finds nothing left of the dead boot.
      expect(yield* reconcile(backend, alive, { includeOwnExpired: true })).toEqual({ cancelled: 0, expired: 0, refused: 0, alreadySettled: 0, stillOpen: 0 })
      yield* aliveEscrow.release(e.id)
      expect((yield* alive.listOpen({ limit: 10, otherBootsOnly: false })).length).toBe(0)
      expect((yield* ledger.verify).violations).toEqual([])
    })))
})
