/**
 * ringmaster: orchestrator agents that spawn, refer, hire and pay sub-agents
 * through escrow, on an exact double-entry ledger.
 *
 * This entry is the core: the domain (amounts, ids, records, errors), the `Escrow`
 * and `Accounts` ports, `EscrowTest`, the in-memory ledger, agents and the
 * orchestrator. It loads no SQL driver, no HTTP stack and no server; those are
 * the other entries: `ringmaster/sqlite`, `ringmaster/postgres`, `ringmaster/http`
 * (clients), `ringmaster/server` and `ringmaster/service`.
 */
export * as Usdc from "./domain/Usdc.js"
export type { Usdc as UsdcAmount } from "./domain/Usdc.js"
export * from "./domain/errors.js"
export * from "./domain/ids.js"
export type * from "./domain/Escrow.js"
export { remaining } from "./domain/Escrow.js"
export * from "./ledger/Ledger.js"
export * as LedgerSettings from "./ledger/LedgerConfig.js"
export * as FeeSchedule from "./domain/FeeSchedule.js"
export * as MemoryLedger from "./ledger/MemoryLedger.js"
export * as ExpirySweeper from "./ledger/ExpirySweeper.js"
export { Escrow } from "./escrow/Escrow.js"
export type { EscrowShape, ScopedEscrow, ScopedOptions } from "./escrow/Escrow.js"
export type { ReconcileReport } from "./escrow/settlement.js"
export { EscrowTest } from "./escrow/EscrowTest.js"
export type { EscrowCall, EscrowOp, EscrowTestShape, FailNextOptions, InjectedError } from "./escrow/EscrowTest.js"
export { SettlementJournal } from "./ledger/SettlementJournal.js"
export type { UnsettledEscrow, UnsettledJournal } from "./ledger/SettlementJournal.js"
export * as Agent from "./agents/AgentNamespace.js"
export * as LanguageModelScript from "./agents/llm/LanguageModelScript.js"
export { HireFailed, TurnLimitReached, UsageLimitReached } from "./agents/llm/errors.js"
export { Limits as OrchestratorLimits, Orchestrator, referralChain, RestartPolicy } from "./agents/Orchestrator.js"
export type {
  Budget,
  DelegateError,
  DelegateOptions,
  Earnings,
  EarningsTotals,
  Handle,
  HandleStatus,
  OrchestratorOptions,
  OrchestratorShape,
  Payment,
  PaymentOutcome,
  SpawnError,
  SpawnOptions,
  StreamOptions
} from "./agents/Orchestrator.js"
export { Accounts } from "./agents/Accounts.js"
/** The one-call set-ups: `Ringmaster.memory()`, `Ringmaster.test()` (`local` is in `ringmaster/sqlite`, `remote` in `ringmaster/http`). */
export * as Ringmaster from "./agents/Ringmaster.js"
export type { MemoryOptions, OrchestratorSettings, SetupError } from "./agents/Ringmaster.js"
export type { AccountsShape } from "./agents/Accounts.js"
export {
  AgentCrashed,
  AgentStopped,
  ChargeExceedsMaximum,
  EscrowRefused,
  InvalidOutput,
  RemoteAgentUnavailable,
  RemoteTaskFailed,
  TaskTimedOut
} from "./agents/errors.js"
