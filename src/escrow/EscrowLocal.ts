/**
 * `Escrow` on an in-process `Ledger`: the embedded engine. Settlements a scope could
 * not complete go to the `SettlementJournal`: durable in the ledger's database for
 * the SQL ledger, in memory otherwise.
 */
import type { LedgerShape } from "../ledger/Ledger.js"
import type { UnsettledJournal } from "../ledger/SettlementJournal.js"
import type { EscrowShape } from "./Escrow.js"

export const fromLedger = (ledger: LedgerShape, journal: UnsettledJournal): EscrowShape => ({
  create: ledger.createEscrow,
  release: ledger.releaseEscrow,
  cancel: ledger.cancelEscrow,
  get: ledger.getEscrow,
  recordUnsettled: journal.record,
  unsettled: journal.list,
  markSettled: journal.markSettled
})
