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
import { Escrow as EscrowTag } from "./escrow/Escrow.js"
import * as EscrowHttp from "./escrow/EscrowHttp.js"
import { reconcileUnsettled } from "./escrow/settlement.js"
/**
 * The Escrow port (`Escrow.scoped`, `Escrow.use`, `Escrow.layerLocal`, ...), with the
 * remote layers attached here: `Escrow.layerHttp({ baseUrl, apiKey })` and
 * `Escrow.layerHttpConfig` (`ESCROW_BASE`, `PF_API_KEY`), and `Escrow.reconcileUnsettled`.
 * They live in their own modules,
 * which imports the Tag, so attaching them in the Tag's module would be an import cycle.
 */
export const Escrow = Object.assign(EscrowTag, {
  layerHttp: EscrowHttp.layer,
  layerHttpConfig: EscrowHttp.layerConfig,
  reconcileUnsettled
})
export type Escrow = EscrowTag
export * as EscrowHttp from "./escrow/EscrowHttp.js"
export type { EscrowShape, ScopedEscrow, ScopedOptions, UnsettledEscrow } from "./escrow/Escrow.js"
export type { ReconcileReport } from "./escrow/settlement.js"
export { EscrowTest } from "./escrow/EscrowTest.js"
export type { EscrowCall, EscrowOp, EscrowTestShape } from "./escrow/EscrowTest.js"
export * as SqlLedger from "./ledger/SqlLedger.js"
export * as ExpirySweeper from "./ledger/ExpirySweeper.js"
export { SettlementJournal } from "./escrow/EscrowLocal.js"
export type { UnsettledJournal } from "./escrow/EscrowLocal.js"
export { Authorization, CurrentCaller, SettlementApi } from "./http/Api.js"
export type { Caller } from "./http/Api.js"
export * as SettlementWire from "./http/errors.js"
export { Settlement } from "./http/Settlement.js"
export type { CreateEscrowInput, SettlementShape } from "./http/Settlement.js"
export { SettlementConfig } from "./http/SettlementConfig.js"
export * as SettlementSettings from "./http/SettlementConfig.js"
export { ApiKeys } from "./http/ApiKeys.js"
export * as SettlementServer from "./http/server.js"
export * as Mcp from "./http/mcp/Mcp.js"
export { SettlementToolkit } from "./http/mcp/SettlementTools.js"
export { McpCredential } from "./http/mcp/McpCredential.js"
export * as Service from "./service/Service.js"
export * as ServiceSettings from "./service/ServiceConfig.js"
export { ServiceConfig } from "./service/ServiceConfig.js"
export * as Pipeline from "./service/Pipeline.js"
export { runMain } from "./service/Launch.js"
export { Identity } from "./service/Identity.js"
export { Journal } from "./service/Journal.js"
export * as Postgres from "./ledger/Postgres.js"
export * as LedgerBackend from "./ledger/Backend.js"
export * as LedgerVerify from "./ledger/verify.js"
export * as LedgerExport from "./ledger/export.js"
export * as Agent from "./agents/Agent.js"
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
  SpawnError,
  SpawnOptions,
  StreamOptions
} from "./agents/Orchestrator.js"
import { Accounts as AccountsTag } from "./agents/Accounts.js"
import * as AccountsHttp from "./agents/AccountsHttp.js"
/**
 * The Accounts port (`Accounts.layerFromLedger`), with its remote layers attached here
 * for the same reason as Escrow's: `Accounts.layerHttp({ baseUrl, apiKey })` and
 * `Accounts.layerHttpConfig` (`ESCROW_BASE`, `PF_API_KEY`), and
 * `Accounts.layerHttpWithEscrow` / `layerHttpWithEscrowConfig`: Accounts and Escrow on
 * one pool, sharing the keys of the sub-agents registered (what an orchestrator wants).
 */
export const Accounts = Object.assign(AccountsTag, {
  layerHttp: AccountsHttp.layer,
  layerHttpConfig: AccountsHttp.layerConfig,
  layerHttpWithEscrow: AccountsHttp.layerWithEscrow,
  layerHttpWithEscrowConfig: AccountsHttp.layerWithEscrowConfig
})
export type Accounts = AccountsTag
export * as AccountsHttp from "./agents/AccountsHttp.js"
export type { AccountsShape } from "./agents/Accounts.js"
export * as RemoteAgent from "./agents/RemoteAgent.js"
export { AgentApi, AgentNotServed } from "./agents/AgentApi.js"
export {
  AgentCrashed,
  AgentStopped,
  EscrowRefused,
  InvalidOutput,
  RemoteAgentUnavailable,
  RemoteTaskFailed,
  TaskTimedOut
} from "./agents/errors.js"
export * as DashboardHttp from "./http/dashboard/http.js"
export { DashboardConfig } from "./http/dashboard/DashboardConfig.js"
export { DashboardApi } from "./http/dashboard/Api.js"
