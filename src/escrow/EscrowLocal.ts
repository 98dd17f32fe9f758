/**
 * `Escrow` on an in-process `Ledger`: the embedded engine. Unsettled scope exits are
 * journaled in memory here; `SqlLedger` provides a durable journal for the SQL
 * backends (see `layerLocal`).
 */
import { Effect, Layer, Ref } from "effect"
import { Ledger, type LedgerShape } from "../ledger/Ledger.js"
import { Escrow, type EscrowShape, type UnsettledEscrow } from "./Escrow.js"

export interface UnsettledJournal {
  readonly record: (entry: UnsettledEscrow) => Effect.Effect<void>
  readonly list: Effect.Effect<ReadonlyArray<UnsettledEscrow>>
  readonly markSettled: (id: string) => Effect.Effect<void>
}

export const memoryJournal: Effect.Effect<UnsettledJournal> = Effect.map(
  Ref.make<ReadonlyArray<UnsettledEscrow>>([]),
  (ref) => ({
    record: (entry) => Ref.update(ref, (all) => [...all.filter((e) => e.escrowId !== entry.escrowId), entry]),
    list: Ref.get(ref),
    markSettled: (id) => Ref.update(ref, (all) => all.filter((e) => e.escrowId !== id))
  })
)

export const fromLedger = (ledger: LedgerShape, journal: UnsettledJournal): EscrowShape => ({
  create: ledger.createEscrow,
  release: ledger.releaseEscrow,
  cancel: ledger.cancelEscrow,
  get: ledger.getEscrow,
  recordUnsettled: journal.record,
  unsettled: journal.list,
  markSettled: journal.markSettled
})

/** `Escrow` over whatever `Ledger` is provided, with an in-memory unsettled journal. */
export const layerFromLedger: Layer.Layer<Escrow, never, Ledger> = Layer.effect(
  Escrow,
  Effect.gen(function*() {
    return fromLedger(yield* Ledger, yield* memoryJournal)
  })
)
