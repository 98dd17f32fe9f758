/**
 * Building an orchestrator: its wallet registered (or looked up), funded as asked,
 * its reconciler started, and its operations wired to their modules.
 */
import { type Deferred, Effect, Scope } from "effect"
import type { AgentNotFound, InvalidInput } from "../../domain/errors.js"
import type { AgentRecord } from "../../domain/Escrow.js"
import { Escrow } from "../../escrow/Escrow.js"
import { tracedEscrow } from "../../escrow/traced.js"
import { SpanAttribute, SpanName, withSpanWhenTraced } from "../../observability/spans.js"
import { Accounts, type FaucetError, type RegisterError } from "../Accounts.js"
import type * as Agent from "../Agent.js"
import { checkBudget, makeBudgets } from "./budgets.js"
import { invalid } from "./checks.js"
import type { Config, Deps } from "./config.js"
import {
  type Handle,
  type OrchestratorOptions,
  type OrchestratorShape,
  RestartPolicy,
  type SpawnError,
  type SpawnOptions
} from "./contract.js"
import type { TaskContext } from "./plan.js"
import { reconcileForever } from "./reconcile.js"
import { earnings, payments } from "./reports.js"
import { type Parent, spawn as spawnSubAgent, spawnOnce } from "./spawn.js"
import { stream } from "./stream.js"
import { delegate as delegateTask } from "./task.js"

/** Builds the orchestrator for an agent that owns a wallet; it lives in the current scope. */
export const make = (
  options: OrchestratorOptions
): Effect.Effect<
  OrchestratorShape,
  RegisterError | FaucetError | AgentNotFound | InvalidInput,
  Accounts | Escrow | Scope.Scope
> =>
  Effect.gen(function*() {
    const budget = yield* checkBudget("budget", options.budget)
    const accounts = yield* Accounts
    const escrow = tracedEscrow(yield* Escrow)
    const identity = options.existing === true
      ? yield* (options.wallet === undefined
        ? Effect.fail(invalid("wallet", "an existing orchestrator needs its wallet"))
        : accounts.getAgent(options.wallet))
      : yield* accounts.register({ name: options.name, wallet: options.wallet, referralCode: options.referralCode })
    if (options.faucet === true) yield* accounts.claimFaucet(identity.wallet, identity.name)
    if (options.deposit !== undefined) yield* accounts.deposit(identity.wallet, options.deposit)
    const scope = yield* Effect.scope
    // Sub-agents' orchestrators share this Escrow and its journal: one reconciler, the root's.
    if (options.reconcileEvery !== "never") yield* reconcileForever(escrow, options.reconcileEvery)
    return yield* build({ accounts, escrow }, identity, scope, {
      budget,
      region: options.region,
      settlementRetry: options.settlementRetry,
      restart: options.restart ?? RestartPolicy.default
    })
  })

/** The orchestrator of `identity`, living in `scope`: each operation is its module's function of this orchestrator's state. */
const build = (deps: Deps, identity: AgentRecord, scope: Scope.Scope, config: Config): Effect.Effect<OrchestratorShape> =>
  Effect.gen(function*() {
    const { accounts, escrow } = deps
    const { reserveBudget, withBudget, spent } = makeBudgets(identity, config.budget)
    const handles = new Set<Handle<Agent.Any>>()
    const hired = new Map<Agent.Any, Deferred.Deferred<Handle<any>, SpawnError>>()
    let closed = false
    yield* Scope.addFinalizer(scope, Effect.sync(() => (closed = true)))

    const parent: Parent = { deps, identity, scope, config, handles, hired, isClosed: () => closed, build }
    const task: TaskContext = { identity, escrow, config, reserveBudget }
    const spawn = <A extends Agent.Any>(agent: A, options?: SpawnOptions): Effect.Effect<Handle<A>, SpawnError> =>
      spawnSubAgent(parent, agent, options)
    const delegate: OrchestratorShape["delegate"] = (handle, input, options) => delegateTask(task, handle, input, options)

    const shape: OrchestratorShape = {
      identity,
      spawn,
      delegate,
      stream: (handle, input, options) => stream(task, handle, input, options),
      hire: (agent, input, options = {}) =>
        Effect.flatMap(spawnOnce(parent, agent, options.spawn), (handle) => delegate(handle, input, options)).pipe(
          withSpanWhenTraced(SpanName.hire, { attributes: { [SpanAttribute.agent]: agent.name }, captureStackTrace: false })
        ),
      withBudget,
      spent,
      balance: accounts.balance(identity.wallet),
      earnings: earnings(accounts, identity),
      payments: (options) => payments(accounts, identity, options),
      handles: Effect.sync(() => [...handles])
    }
    return shape
  })
