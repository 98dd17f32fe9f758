/**
 * The set-ups of `ringmaster/sqlite`: `memory()` and `test()`, and `local({ dataDir })`,
 * an orchestrator on the embedded SQLite ledger. Apart from `./Ringmaster.ts` so that
 * the core entry never loads the SQLite driver.
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import { Layer } from "effect"
import type { Escrow } from "../escrow/Escrow.js"
import * as EscrowSqlite from "../escrow/EscrowSqlite.js"
import type { Ledger } from "../ledger/Ledger.js"
import type { SettlementJournal } from "../ledger/SettlementJournal.js"
import { Accounts } from "./Accounts.js"
import type { Orchestrator } from "./Orchestrator.js"
import { type LocalLedgerSettings, type OrchestratorSettings, orchestratorOver, type SetupError } from "./Ringmaster.js"

export * from "./Ringmaster.js"

export interface LocalOptions extends LocalLedgerSettings {
  /** The directory of the ledger file (`ledger.db`), created if missing. */
  readonly dataDir: string
  /** `FULL` (default) fsyncs every commit; `NORMAL` is faster and may lose the last commits on power loss. */
  readonly synchronous?: "FULL" | "NORMAL" | undefined
}

/**
 * An orchestrator on the SQLite ledger in `dataDir`: `Orchestrator`, `Accounts`,
 * `Escrow`, the `Ledger` and its `SettlementJournal` (settlements to reconcile
 * survive a restart). Each start registers the orchestrator anew unless given its
 * `wallet` with `existing: true`.
 */
export const local = (
  options: LocalOptions & OrchestratorSettings
): Layer.Layer<Orchestrator | Accounts | Escrow | Ledger | SettlementJournal | SqlClient, SetupError> => {
  const { dataDir, synchronous, ledger, ...orchestrator } = options
  const ports = Accounts.layerFromLedger.pipe(Layer.provideMerge(EscrowSqlite.layer({ dataDir, synchronous, ledger })))
  return orchestratorOver(orchestrator, ports)
}
