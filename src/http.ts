/**
 * ringmaster/http: the clients of a remote settlement service and of remote agents.
 * `EscrowHttp.layer({ baseUrl, apiKey })` is `Escrow` on the service,
 * `AccountsHttp.layer` / `layerWithEscrow` is `Accounts` (and `Escrow`) on it,
 * `RemoteAgent.remote({ name, url, input, output, price })` hires an agent served by
 * another ringmaster service (and `RemoteAgent.layerServer` serves one). The REST
 * contract is `SettlementApi`; an orchestrator service's, with its paid routes, is
 * `ServiceApi` (`ServiceApiRemote` when its settlement is remote).
 */
export * as EscrowHttp from "./client/EscrowHttp.js"
export type { EscrowHttpOptions } from "./client/EscrowHttp.js"
export * as AccountsHttp from "./client/AccountsHttp.js"
export type { AccountsHttpOptions } from "./client/AccountsHttp.js"
export * as RemoteAgent from "./agents/RemoteAgent.js"
export { AgentApi, AgentNotServed } from "./agents/AgentApi.js"
export { Authorization, CurrentCaller, SettlementApi } from "./http/Api.js"
export type { Caller } from "./settlement/Caller.js"
export { OrchestratorGroup, PaymentAuthorization, PaymentCredential, ServiceApi, ServiceApiRemote } from "./http/ServiceApi.js"
export * as SettlementWire from "./http/errors.js"
export * as SettlementClient from "./client/SettlementClient.js"
/** The set-ups: `Ringmaster.remote({ baseUrl, ... })`, and `memory()` and `test()` as in the core entry. */
export * as Ringmaster from "./client/RingmasterRemote.js"
export { RemoteSetupFailed } from "./client/RingmasterRemote.js"
export type { RemoteOptions as RingmasterRemoteOptions } from "./client/RingmasterRemote.js"
