/**
 * Spawning sub-agents: each is registered as referred by the orchestrator that
 * spawns it (a remote one is looked up instead), gets its own orchestrator for its
 * wallet, and lives in a scope forked from its parent's: closing it interrupts and
 * refunds its tasks.
 */
import { Deferred, Effect, ExecutionStrategy, Exit, FiberId, FiberSet, Scope } from "effect"
import type { AgentRecord } from "../../domain/Escrow.js"
import type * as Agent from "../Agent.js"
import { AgentStopped } from "../errors.js"
import { checkBudget } from "./budgets.js"
import { checkInteger } from "./checks.js"
import type { Config, Deps } from "./config.js"
import {
  type Handle,
  HandleInternals,
  type HandleState,
  Limits,
  type OrchestratorShape,
  type SpawnError,
  type SpawnOptions
} from "./contract.js"

/** The orchestrator that spawns: what registering and supervising its sub-agents needs. */
export interface Parent {
  readonly deps: Deps
  readonly identity: AgentRecord
  /** Each sub-agent lives in a scope forked from this one. */
  readonly scope: Scope.Scope
  readonly config: Config
  /** Its sub-agents that have not stopped; a sub-agent removes itself when it stops. */
  readonly handles: Set<Handle<Agent.Any>>
  /** The sub-agents `hire` spawned, per agent definition; a failed spawn is forgotten, so the next hire tries again. */
  readonly hired: Map<Agent.Any, Deferred.Deferred<Handle<any>, SpawnError>>
  /** True once the parent's scope has closed: it spawns no more. */
  readonly isClosed: () => boolean
  /** Builds a sub-agent's own orchestrator (passed in: building one builds a parent in turn). */
  readonly build: (deps: Deps, identity: AgentRecord, scope: Scope.Scope, config: Config) => Effect.Effect<OrchestratorShape>
}

/** Registers `agent` as referred by `parent` and starts it. */
export const spawn = <A extends Agent.Any>(
  parent: Parent,
  agent: A,
  options: SpawnOptions = {}
): Effect.Effect<Handle<A>, SpawnError> =>
  Effect.gen(function*() {
    const { build, config, deps, handles, identity, scope } = parent
    const { accounts } = deps
    if (parent.isClosed()) return yield* new AgentStopped({ agent: identity.name })
    const concurrency = options.concurrency ?? Limits.defaultConcurrency
    yield* checkInteger("concurrency", concurrency, 1, Limits.maxConcurrency)
    const subBudget = yield* checkBudget("budget", options.budget)
    const record = agent.remote !== undefined
      ? yield* agent.remote.describe
      : yield* accounts.register({ name: options.name ?? agent.name, wallet: options.wallet, referralCode: identity.referralCode })
    if (options.faucet === true) yield* accounts.claimFaucet(record.wallet, record.name)

    const handleScope = yield* Scope.fork(scope, ExecutionStrategy.sequential)
    const fibers = yield* Scope.extend(FiberSet.make<any, any>(), handleScope)
    const semaphore = yield* Effect.makeSemaphore(concurrency)
    const stoppedSignal = yield* Deferred.make<never, AgentStopped>()
    const state: HandleState = { stopped: false, inFlight: 0, completed: 0, failed: 0, crashes: 0, restarts: 0 }
    const sub = agent.remote !== undefined ? undefined : yield* build(deps, record, handleScope, {
      budget: subBudget,
      region: config.region,
      settlementRetry: config.settlementRetry,
      restart: config.restart
    })
    const handle: Handle<A> = {
      agent,
      identity: record,
      name: record.name,
      wallet: record.wallet,
      orchestrator: sub,
      status: Effect.sync(() => ({
        state: state.stopped ? "stopped" : "running",
        inFlight: state.inFlight,
        completed: state.completed,
        failed: state.failed,
        crashes: state.crashes,
        restarts: state.restarts
      })),
      stop: Scope.close(handleScope, Exit.void),
      [HandleInternals]: {
        fibers,
        semaphore,
        stoppedSignal,
        restart: options.restart ?? config.restart,
        state,
        scope: handleScope
      }
    }
    // Added after the fiber set, so it runs first on close: mark stopped, then interrupt the tasks.
    yield* Scope.addFinalizer(
      handleScope,
      Effect.suspend(() => {
        state.stopped = true
        handles.delete(handle)
        return Deferred.fail(stoppedSignal, new AgentStopped({ agent: record.name }))
      })
    )
    handles.add(handle)
    yield* Effect.logDebug("spawned sub-agent", { agent: record.name, wallet: record.wallet, referrer: record.referrer })
    return handle
  })

/** Spawns `agent` on its first hire by `parent`; later hires share that sub-agent. */
export const spawnOnce = <A extends Agent.Any>(
  parent: Parent,
  agent: A,
  options: SpawnOptions | undefined
): Effect.Effect<Handle<A>, SpawnError> =>
  Effect.suspend(() => {
    const { hired } = parent
    const existing = hired.get(agent)
    if (existing !== undefined) return Deferred.await(existing)
    const deferred = Deferred.unsafeMake<Handle<any>, SpawnError>(FiberId.none)
    hired.set(agent, deferred)
    return spawn(parent, agent, options).pipe(
      Effect.onExit((exit) => {
        if (Exit.isFailure(exit)) hired.delete(agent)
        return Deferred.done(deferred, exit)
      })
    )
  })
