/**
 * ringmaster/sqlite: the embedded ledger on a SQLite file. `EscrowSqlite.layer({ dataDir })`
 * is `Escrow` (and the `Ledger` and `SettlementJournal`) on it; `SqlLedger` is the
 * ledger itself, for either SQL backend.
 */
export * as EscrowSqlite from "./escrow/EscrowSqlite.js"
export type { EscrowSqliteOptions } from "./escrow/EscrowSqlite.js"
export * as SqlLedger from "./ledger/SqlLedger.js"
export * as LedgerVerify from "./ledger/verify.js"
export * as LedgerExport from "./ledger/export.js"
/** The set-ups: `Ringmaster.local({ dataDir })`, and `memory()` and `test()` as in the core entry. */
export * as Ringmaster from "./agents/RingmasterLocal.js"
export type { LocalOptions } from "./agents/RingmasterLocal.js"
