/**
 * The orchestrator runtime: an agent that owns a wallet spawns sub-agents (each
 * registered as referred by it), hires them through escrow-scoped tasks, and
 * reports what it earned and spent.
 *
 *   const program = Effect.gen(function*() {
 *     const fetcher = yield* Orchestrator.spawn(DataFetcher, { faucet: true })
 *     const data = yield* Orchestrator.delegate(fetcher, { topic: "rates" }, { timeoutMs: 5_000 })
 *     return yield* Orchestrator.earnings
 *   })
 *
 * The money rules, in order, for every task:
 * 1. the input is validated and the price computed (a bad one changes nothing);
 * 2. the per-task and per-run caps are checked and the lock is reserved against
 *    them (`BudgetExceeded`: nothing locked);
 * 3. the escrow is opened before the work starts and held as `Escrow.use` holds it;
 * 4. the work runs, restarted per the sub-agent's policy if it dies, bounded by
 *    `timeoutMs`;
 * 5. the output is validated against the output schema: released if it passes,
 *    cancelled (full refund) on any failure, timeout or interruption.
 *
 * Sub-agents live in the orchestrator's scope: closing it interrupts their tasks
 * (refunding them) and stops them. Each sub-agent gets an orchestrator for its own
 * wallet, so its `run` can hire further agents (`Orchestrator.hire`): referral
 * chains and who paid whom end up in the ledger, queried by `payments` and
 * `earnings`.
 */
import { Layer } from "effect"
import { Orchestrator as OrchestratorTag, type OrchestratorOptions } from "./orchestrator/contract.js"
import { make } from "./orchestrator/make.js"

export type { Budget } from "./Budget.js"
export { Limits, RestartPolicy } from "./orchestrator/contract.js"
export type {
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
} from "./orchestrator/contract.js"
export { make } from "./orchestrator/make.js"
export { referralChain } from "./orchestrator/reports.js"

/**
 * The Orchestrator Tag (its accessors: `Orchestrator.spawn`, `delegate`, `stream`,
 * `hire`, `earnings`, `payments`, `identity`), with its constructors attached:
 * `Orchestrator.make` builds one in the current scope, `Orchestrator.layer` gives one
 * with its own wallet, living as long as the layer.
 */
export const Orchestrator = Object.assign(OrchestratorTag, {
  /** Builds an orchestrator in the current scope (see `make`). */
  make: (options: OrchestratorOptions) => make(options),
  /** An orchestrator with its own wallet, living as long as the layer. */
  layer: (options: OrchestratorOptions) => Layer.scoped(OrchestratorTag, make(options))
})
export type Orchestrator = OrchestratorTag
