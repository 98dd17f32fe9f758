/**
 * One-call set-ups: each is a single layer with everything an orchestrator program
 * needs, so a program is `Effect.provide(program, Ringmaster.memory())`.
 *
 *   Ringmaster.memory()   Orchestrator, Accounts, Escrow and Ledger, in process memory
 *   Ringmaster.test()     the same on `EscrowTest`: calls recorded, failures scripted,
 *                         no delay anywhere a `TestClock` would have to be advanced
 *
 * The set-ups that load a driver live beside their entries, so this module (in the
 * core entry) loads neither SQLite nor HTTP: `Ringmaster.local({ dataDir })` is in
 * `ringmaster/sqlite` (`./RingmasterLocal.ts`), `Ringmaster.remote({ baseUrl })` in
 * `ringmaster/http` (`../client/RingmasterRemote.ts`). Each of those entries exports
 * a `Ringmaster` holding these two set-ups as well as its own.
 */
import { Layer } from "effect"
import type { AgentNotFound, InvalidInput } from "../domain/errors.js"
import { Escrow } from "../escrow/Escrow.js"
import { EscrowTest } from "../escrow/EscrowTest.js"
import type { SettlementRetry } from "../escrow/settlement.js"
import type { Ledger, LedgerConfigShape } from "../ledger/Ledger.js"
import * as LedgerConfig from "../ledger/LedgerConfig.js"
import * as MemoryLedger from "../ledger/MemoryLedger.js"
import { Accounts, type FaucetError, type RegisterError } from "./Accounts.js"
import { Orchestrator, type OrchestratorOptions, RestartPolicy } from "./Orchestrator.js"

/** The orchestrator's options, its name defaulting to `"orchestrator"`. */
export type OrchestratorSettings = Omit<OrchestratorOptions, "name"> & {
  /** The name its wallet is registered under; default `"orchestrator"`. */
  readonly name?: string | undefined
}

export interface LocalLedgerSettings {
  /** The ledger's rules: fee, referral tiers, escrow timeouts, faucet; the defaults otherwise (1% fee, 15% referral). */
  readonly ledger?: Partial<LedgerConfigShape> | undefined
}

export type MemoryOptions = OrchestratorSettings & LocalLedgerSettings

/** What starting an orchestrator can fail with: its registration, its faucet, the wallet it names, a bad option. */
export type SetupError = RegisterError | FaucetError | AgentNotFound | InvalidInput

/** The orchestrator as a layer over whatever provides `Accounts` and `Escrow`, both kept in the output. */
export const orchestratorOver = <ROut, E, RIn>(
  options: OrchestratorSettings,
  ports: Layer.Layer<ROut | Accounts | Escrow, E, RIn>
): Layer.Layer<Orchestrator | ROut | Accounts | Escrow, E | SetupError, RIn> =>
  Orchestrator.layer({ ...options, name: options.name ?? "orchestrator" }).pipe(Layer.provideMerge(ports))

/**
 * An orchestrator on a ledger in process memory: `Orchestrator`, `Accounts`,
 * `Escrow` and the `Ledger` (for balances and reports). Nothing survives the process.
 */
export const memory = (
  options: MemoryOptions = {}
): Layer.Layer<Orchestrator | Accounts | Escrow | Ledger, SetupError> => {
  const { ledger, ...orchestrator } = options
  const ports = Layer.merge(Escrow.layerFromLedger, Accounts.layerFromLedger).pipe(
    Layer.provideMerge(MemoryLedger.layer),
    Layer.provide(LedgerConfig.layer(ledger))
  )
  return orchestratorOver(orchestrator, ports)
}

/**
 * `memory()` on `EscrowTest`, for test suites under `it.effect` (the `TestClock`):
 * `yield* EscrowTest` gives the recorded calls, `failNext(op, error, { times })` and
 * the ledger. Nothing waits on the clock: settlements and a crashed sub-agent's
 * restarts are retried at once (the orchestrator's `restart` and `settlementRetry`
 * options still apply when given).
 */
export const test = (
  options: MemoryOptions = {}
): Layer.Layer<Orchestrator | Accounts | Escrow | EscrowTest | Ledger | SettlementRetry, SetupError> => {
  const { ledger, ...orchestrator } = options
  const ports = Accounts.layerFromLedger.pipe(Layer.provideMerge(EscrowTest.layer(ledger)))
  return orchestratorOver({ ...orchestrator, restart: orchestrator.restart ?? noDelayRestarts }, ports)
}

/** As many restarts as `RestartPolicy.default`, none of them waiting. */
const noDelayRestarts = RestartPolicy.upTo(3)
