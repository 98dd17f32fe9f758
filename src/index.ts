/**
 * ringmaster: orchestrator agents that spawn, refer, hire and pay sub-agents
 * through escrow, on an exact double-entry ledger.
 */
export * as Usdc from "./domain/Usdc.js"
export type { Usdc as UsdcAmount } from "./domain/Usdc.js"
export * from "./domain/errors.js"
export * from "./domain/ids.js"
export type * from "./domain/Escrow.js"
export { remaining } from "./domain/Escrow.js"
export * from "./ledger/Ledger.js"
export * as LedgerSettings from "./ledger/LedgerConfig.js"
export * as FeeSchedule from "./ledger/FeeSchedule.js"
export * as MemoryLedger from "./ledger/MemoryLedger.js"
export { Escrow } from "./escrow/Escrow.js"
export type { EscrowShape, ScopedEscrow, ScopedOptions, UnsettledEscrow } from "./escrow/Escrow.js"
export { EscrowTest } from "./escrow/EscrowTest.js"
export type { EscrowCall, EscrowOp, EscrowTestShape } from "./escrow/EscrowTest.js"
export * as SqlLedger from "./ledger/SqlLedger.js"
export * as ExpirySweeper from "./ledger/ExpirySweeper.js"
export { SettlementJournal } from "./escrow/EscrowLocal.js"
export type { UnsettledJournal } from "./escrow/EscrowLocal.js"
