/**
 * `Escrow` on an in-process `Ledger`: the embedded engine. Settlements a scope could
 * not complete go to the `SettlementJournal`: durable in the ledger's database for
 * the SQL ledger, in memory otherwise.
 */
import { Context, Effect, Ref } from "effect"
import type { LedgerShape } from "../ledger/Ledger.js"
import type { EscrowShape, UnsettledEscrow } from "./Escrow.js"

export interface UnsettledJournal {
  readonly record: (entry: UnsettledEscrow) => Effect.Effect<void>
  readonly list: Effect.Effect<ReadonlyArray<UnsettledEscrow>>
  readonly markSettled: (id: string) => Effect.Effect<void>
}

export class SettlementJournal extends Context.Tag("ringmaster/SettlementJournal")<SettlementJournal, UnsettledJournal>() {}

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
