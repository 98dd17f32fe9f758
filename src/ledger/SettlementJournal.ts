/**
 * The settlement journal port: where the settlements a scope could not complete
 * are kept until reconciled. The SQL ledger keeps them durably in its own
 * database (in the same transactions as its postings); the memory journal holds
 * them for an in-process ledger.
 */
import { Context, Effect, Ref } from "effect"
import type { EscrowId } from "../domain/ids.js"

/** A settlement the scope could not complete; kept durably until reconciled. */
export interface UnsettledEscrow {
  readonly escrowId: EscrowId
  /** What the scope's exit asked for. */
  readonly intent: "release" | "cancel"
  readonly error: string
  readonly attempts: number
  readonly atMs: number
}

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
