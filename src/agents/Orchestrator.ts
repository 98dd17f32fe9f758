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
import {
  Cause,
  Context,
  Deferred,
  Duration,
  Effect,
  Either,
  ExecutionStrategy,
  Exit,
  Fiber,
  FiberId,
  FiberRef,
  FiberSet,
  Layer,
  Option,
  Schedule,
  Schema,
  Scope,
  Stream
} from "effect"
import { type AgentNotFound, BudgetExceeded, InvalidInput, type LedgerUnavailable } from "../domain/errors.js"
import type { AgentRecord, EscrowRecord, EscrowTerms, WalletBalance } from "../domain/Escrow.js"
import type { EscrowId, MandateId, ReferralCode, WalletAddress } from "../domain/ids.js"
import type { Usdc } from "../domain/Usdc.js"
import { Escrow, type EscrowShape, type ScopedEscrow } from "../escrow/Escrow.js"
import { reconcileUnsettled, settleOnExit } from "../escrow/settlement.js"
import { deadlineTimer, withSpanWhenTraced } from "../observability/spans.js"
import type { CancelError, CreateError, ReleaseError } from "../ledger/Ledger.js"
import { Accounts, type AccountsShape, type FaucetError, type RegisterError } from "./Accounts.js"
import * as Agent from "./Agent.js"
import { type Budget, perTaskCheck, reserve, settle, SpendTracker } from "./Budget.js"
import { AgentCrashed, AgentStopped, InvalidOutput, type RemoteAgentUnavailable, TaskTimedOut } from "./errors.js"

export type { Budget } from "./Budget.js"

// ---------------------------------------------------------------------------
// Bounds (TIGER_STYLE: a limit on everything)

export const Limits = {
  maxConcurrency: 1_024,
  defaultConcurrency: 16,
  maxRetries: 10,
  maxFallbacks: 8,
  /** A task's deadline when the caller gives none: under the ledger's 15-minute default escrow timeout. */
  defaultTimeoutMs: 5 * 60_000,
  maxTimeoutMs: 24 * 60 * 60_000,
  /** The escrow outlives the task's deadline by this much, so settling never races the ledger's expiry. */
  escrowGraceMs: 60_000,
  descriptionChars: 2_000,
  maxPayments: 10_000,
  maxReferralDepth: 32
} as const

/** Restart policies for sub-agents whose `run` dies. A `Schedule` over the crashes: its recurrences are the restarts. */
export const RestartPolicy = {
  /** Up to 3 restarts, 10 ms, 20 ms, 40 ms apart. */
  default: Schedule.exponential("10 millis").pipe(Schedule.intersect(Schedule.recurs(3))) as Schedule.Schedule<unknown, unknown>,
  /** A crash fails the task at once. */
  never: Schedule.stop as Schedule.Schedule<unknown, unknown>,
  /** Up to `maxRestarts` restarts, `backoff` apart (no backoff by default). */
  upTo: (maxRestarts: number, backoff: Duration.DurationInput = Duration.zero): Schedule.Schedule<unknown, unknown> =>
    Schedule.spaced(backoff).pipe(Schedule.intersect(Schedule.recurs(maxRestarts)))
}

// ---------------------------------------------------------------------------
// Public types

export interface SpawnOptions {
  /** The name registered with the ledger; the agent's name by default. */
  readonly name?: string | undefined
  /** Register this wallet (one the sub-agent controls) instead of a fresh one. */
  readonly wallet?: WalletAddress | undefined
  /** Claim the faucet's starting balance for the sub-agent (so it can hire in turn). */
  readonly faucet?: boolean | undefined
  /** Tasks it runs at once; the rest wait. 1..1024, default 16. */
  readonly concurrency?: number | undefined
  /** What to do when its `run` dies; `RestartPolicy.default` unless given. */
  readonly restart?: Schedule.Schedule<unknown, unknown> | undefined
  /** Caps on the sub-agent's own hiring. */
  readonly budget?: Budget | undefined
}

export interface DelegateOptions<I, O, E, R> {
  /** The task's deadline, restarts included; 1..86,400,000, default 300,000 (5 minutes). */
  readonly timeoutMs?: number | undefined
  /** Further attempts on the same sub-agent after a failure, timeout, crash or invalid output; 0..10, default 0. */
  readonly retries?: number | undefined
  /** Spacing of the retries (default: none). */
  readonly retrySchedule?: Schedule.Schedule<unknown, unknown> | undefined
  /** Sub-agents to try in order when the first one (with its retries) fails; at most 8. */
  readonly fallback?: ReadonlyArray<Handle<Agent.Agent<I, O, E, R>>> | undefined
  /** A per-task cap for this call, on top of the orchestrator's. */
  readonly maxPrice?: Usdc | undefined
  /**
   * Whose wallet pays (the caller whose budget this spends); the orchestrator's by
   * default. On the embedded ledger, code in the process may name any wallet. On a
   * settlement service (`AccountsHttp.layerWithEscrow`), the layer must hold the
   * payer's key, or the payer must have given the sub-agent a mandate (`mandateId`).
   */
  readonly payer?: WalletAddress | undefined
  /** Opened (and released) by the sub-agent under this mandate of the payer's, when the payer is not the orchestrator. */
  readonly mandateId?: MandateId | undefined
  /** Recorded on the escrow; `<agent> task` by default. At most 2,000 characters. */
  readonly description?: string | undefined
  /** `fly_region` of the escrow, for per-region earnings; the orchestrator's by default. */
  readonly region?: string | undefined
}

export type StreamOptions = Omit<DelegateOptions<never, never, never, never>, "retries" | "retrySchedule" | "fallback">

export interface HandleStatus {
  readonly state: "running" | "stopped"
  readonly inFlight: number
  readonly completed: number
  readonly failed: number
  /** Crashes of `run` (defects). */
  readonly crashes: number
  /** Restarts the policy granted. */
  readonly restarts: number
}

const HandleInternals: unique symbol = Symbol.for("ringmaster/Orchestrator/HandleInternals")

interface HandleState {
  stopped: boolean
  inFlight: number
  completed: number
  failed: number
  crashes: number
  restarts: number
}

interface Internals {
  readonly fibers: FiberSet.FiberSet<any, any>
  readonly semaphore: Effect.Semaphore
  readonly stoppedSignal: Deferred.Deferred<never, AgentStopped>
  readonly restart: Schedule.Schedule<unknown, unknown>
  readonly state: HandleState
  readonly scope: Scope.CloseableScope
}

/** A spawned sub-agent: its identity, its status, and what the orchestrator needs to hire it. */
export interface Handle<A extends Agent.Any> {
  readonly agent: A
  /** Agent id, wallet, its own referral code, and its referrer (the orchestrator that spawned it). */
  readonly identity: AgentRecord
  readonly name: string
  readonly wallet: WalletAddress
  readonly status: Effect.Effect<HandleStatus>
  /** Stops it: running tasks are interrupted (and refunded), further delegations fail with `AgentStopped`. */
  readonly stop: Effect.Effect<void>
  /** The orchestrator the sub-agent hires with (its own wallet); `undefined` for a remote agent. */
  readonly orchestrator: OrchestratorShape | undefined
  readonly [HandleInternals]: Internals
}

export type SpawnError = RegisterError | FaucetError | AgentStopped | AgentNotFound | RemoteAgentUnavailable | InvalidInput

export type DelegateError =
  | BudgetExceeded
  | InvalidInput
  | CreateError
  | ReleaseError
  | CancelError
  | TaskTimedOut
  | AgentCrashed
  | AgentStopped
  | InvalidOutput

export interface EarningsTotals {
  /** The share of fees paid on escrows its referred agents (and it) were parties to. */
  readonly referralIncome: Usdc
  /** Gross paid out of its escrows as payer. */
  readonly spending: Usdc
  /** Net received as payee, after fees. */
  readonly revenue: Usdc
  /** Fees borne as payee. */
  readonly feesPaid: Usdc
  /** revenue + referralIncome − spending (negative when it spent more than it made). */
  readonly net: bigint
}

export interface Earnings extends EarningsTotals {
  readonly agent: AgentRecord
  readonly byRegion: Readonly<Record<string, EarningsTotals>>
  /** The agents it referred and what each earned it. */
  readonly referred: ReadonlyArray<{ readonly agent: AgentRecord; readonly earned: Usdc }>
}

/** One escrow between two wallets, as the ledger recorded it. */
export interface Payment {
  readonly escrowId: EscrowId
  readonly payer: WalletAddress
  readonly payerName: string
  readonly payee: WalletAddress
  readonly payeeName: string
  readonly locked: Usdc
  /** Paid out (gross, fee included). */
  readonly released: Usdc
  readonly fee: Usdc
  readonly refunded: Usdc
  readonly status: string
  readonly description: string
  readonly region: string
  readonly createdAtMs: number
}

export interface OrchestratorShape {
  readonly identity: AgentRecord
  readonly spawn: <A extends Agent.Any>(agent: A, options?: SpawnOptions) => Effect.Effect<Handle<A>, SpawnError>
  /** Runs one paid task on a sub-agent (see the money rules above). */
  readonly delegate: <I, O, E, R>(
    handle: Handle<Agent.Agent<I, O, E, R>>,
    input: I,
    options?: DelegateOptions<I, O, E, R>
  ) => Effect.Effect<O, E | DelegateError, Exclude<R, Orchestrator>>
  /** A streaming task: each batch is paid as it is delivered; stopping early refunds the rest. */
  readonly stream: <I, O, E, R>(
    handle: Handle<Agent.StreamingAgent<I, O, E, R>>,
    input: I,
    options?: StreamOptions
  ) => Stream.Stream<O, E | DelegateError, Exclude<R, Orchestrator>>
  /** Spawns the agent on first use (once per orchestrator) and delegates to it. */
  readonly hire: <I, O, E, R>(
    agent: Agent.Agent<I, O, E, R>,
    input: I,
    options?: DelegateOptions<I, O, E, R> & { readonly spawn?: SpawnOptions | undefined }
  ) => Effect.Effect<O, E | DelegateError | SpawnError, Exclude<R, Orchestrator>>
  /** Runs `effect` as one run with its own caps (on top of the orchestrator's). */
  readonly withBudget: (budget: Budget) => <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | InvalidInput, R>
  /** Against the orchestrator's lifetime caps: paid so far, and locked by running tasks. */
  readonly spent: Effect.Effect<{ readonly paidMicros: bigint; readonly lockedMicros: bigint }>
  readonly balance: Effect.Effect<WalletBalance, LedgerUnavailable>
  /** Referral income, spending, revenue and net, in total and per region: read from the ledger. */
  readonly earnings: Effect.Effect<Earnings, AgentNotFound | LedgerUnavailable>
  /** Escrows its wallet paid or was paid by, oldest first (at most `limit`, default 1,000, max 10,000). */
  readonly payments: (options?: { readonly limit?: number }) => Effect.Effect<ReadonlyArray<Payment>, LedgerUnavailable>
  /** The sub-agents it spawned and has not stopped. */
  readonly handles: Effect.Effect<ReadonlyArray<Handle<Agent.Any>>>
}

export interface OrchestratorOptions {
  readonly name: string
  /** Use this wallet: registered now, or looked up when `existing` is true. */
  readonly wallet?: WalletAddress | undefined
  /** The wallet is already registered (a restart, or an agent provisioned elsewhere). */
  readonly existing?: boolean | undefined
  /** The referral code of whoever brought this orchestrator in. */
  readonly referralCode?: ReferralCode | undefined
  /** Claim the faucet's starting balance at start. */
  readonly faucet?: boolean | undefined
  /** Fund the wallet from outside at start (tests and demos). */
  readonly deposit?: Usdc | undefined
  /** Caps for its whole lifetime (one run). */
  readonly budget?: Budget | undefined
  /** `fly_region` of the escrows it opens. */
  readonly region?: string | undefined
  /** Retries of a failed settlement when a task's scope closes (see `Escrow.scoped`). */
  readonly settlementRetry?: Schedule.Schedule<unknown, unknown> | undefined
  /** Default restart policy for its sub-agents. */
  readonly restart?: Schedule.Schedule<unknown, unknown> | undefined
  /**
   * How often it retries the settlements its tasks could not make (`escrow.unsettled`:
   * a release or a cancel that failed all its retries), for as long as it lives;
   * default 30 seconds, `"never"` to leave them to another reconciler.
   */
  readonly reconcileEvery?: Duration.DurationInput | "never" | undefined
}

export class Orchestrator extends Context.Tag("ringmaster/Orchestrator")<Orchestrator, OrchestratorShape>() {
  /** Builds an orchestrator in the current scope (see `make`). */
  static readonly make = (options: OrchestratorOptions) => make(options)

  /** An orchestrator with its own wallet, living as long as the layer. */
  static readonly layer = (options: OrchestratorOptions) => Layer.scoped(Orchestrator, make(options))

  static readonly spawn = <A extends Agent.Any>(agent: A, options?: SpawnOptions) =>
    Effect.flatMap(Orchestrator, (o) => o.spawn(agent, options))

  static readonly delegate = <I, O, E, R>(
    handle: Handle<Agent.Agent<I, O, E, R>>,
    input: I,
    options?: DelegateOptions<I, O, E, R>
  ) => Effect.flatMap(Orchestrator, (o) => o.delegate(handle, input, options))

  static readonly stream = <I, O, E, R>(
    handle: Handle<Agent.StreamingAgent<I, O, E, R>>,
    input: I,
    options?: StreamOptions
  ) => Stream.unwrap(Effect.map(Orchestrator, (o) => o.stream(handle, input, options)))

  static readonly hire = <I, O, E, R>(
    agent: Agent.Agent<I, O, E, R>,
    input: I,
    options?: DelegateOptions<I, O, E, R> & { readonly spawn?: SpawnOptions | undefined }
  ) => Effect.flatMap(Orchestrator, (o) => o.hire(agent, input, options))

  static readonly earnings = Effect.flatMap(Orchestrator, (o) => o.earnings)
  static readonly payments = (options?: { readonly limit?: number }) => Effect.flatMap(Orchestrator, (o) => o.payments(options))
  static readonly identity = Effect.map(Orchestrator, (o) => o.identity)
}

// ---------------------------------------------------------------------------
// Construction

interface Deps {
  readonly accounts: AccountsShape
  readonly escrow: EscrowShape
}

interface Config {
  readonly budget: Budget
  readonly region: string | undefined
  readonly settlementRetry: Schedule.Schedule<unknown, unknown> | undefined
  readonly restart: Schedule.Schedule<unknown, unknown>
}

/** Run caps set by `withBudget`, per orchestrator wallet: a sub-agent's hiring is not charged to its parent's run. */
const RunBudgets = FiberRef.unsafeMake<ReadonlyMap<WalletAddress, { readonly perTask: bigint | undefined; readonly tracker: SpendTracker }>>(
  new Map()
)

const invalid = (field: string, message: string) => new InvalidInput({ field, message })

const checkBudget = (field: string, budget: Budget | undefined): Either.Either<Budget, InvalidInput> => {
  for (const key of ["perTask", "perRun"] as const) {
    const value = budget?.[key]
    if (value !== undefined && value < 0n) return Either.left(invalid(`${field}.${key}`, "must not be negative"))
  }
  return Either.right(budget ?? {})
}

const checkInteger = (field: string, value: number, min: number, max: number) =>
  Number.isInteger(value) && value >= min && value <= max
    ? Either.void
    : Either.left(invalid(field, `must be an integer from ${min} to ${max}, got ${value}`))

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
    const escrow = yield* Escrow
    const identity = options.existing === true
      ? yield* (options.wallet === undefined
        ? Effect.fail(invalid("wallet", "an existing orchestrator needs its wallet"))
        : accounts.getAgent(options.wallet))
      : yield* accounts.register({ name: options.name, wallet: options.wallet, referralCode: options.referralCode })
    if (options.faucet === true) yield* accounts.claimFaucet(identity.wallet, identity.name)
    if (options.deposit !== undefined) yield* accounts.deposit(identity.wallet, options.deposit)
    const scope = yield* Effect.scope
    // Sub-agents' orchestrators share this Escrow and its journal: one reconciler, the root's.
    if (options.reconcileEvery !== "never") {
      yield* reconcileUnsettled(escrow).pipe(
        // A pass that dies (its journal unreadable, say) must not end the reconciler.
        Effect.catchAllCause((cause) => Effect.logError("reconciling unsettled escrows failed; retrying on the next pass", cause)),
        Effect.delay(options.reconcileEvery ?? "30 seconds"),
        Effect.forever,
        Effect.forkScoped
      )
    }
    return yield* build({ accounts, escrow }, identity, scope, {
      budget,
      region: options.region,
      settlementRetry: options.settlementRetry,
      restart: options.restart ?? RestartPolicy.default
    })
  })

/** A defect of `run`, on its way to the restart policy. */
class Crash {
  constructor(readonly defect: unknown) {}
}

const describeDefect = (defect: unknown): string =>
  defect instanceof Error ? defect.message : typeof defect === "string" ? defect : Cause.pretty(Cause.die(defect))

/**
 * Errors another attempt on the same sub-agent cannot fix: the caller's input or
 * caps, the payer's funds, the settlement service's refusals, a stopped agent.
 * Everything else (the agent's own errors, timeouts, crashes, invalid output) is
 * retried when the caller asked for retries.
 */
const terminalTags = new Set([
  "BudgetExceeded",
  "InvalidInput",
  "InsufficientFunds",
  "AgentNotFound",
  "IdempotencyConflict",
  "MandateNotFound",
  "MandateExceeded",
  "LedgerUnavailable",
  "EscrowNotFound",
  "EscrowNotPending",
  "EscrowExpired",
  "ReleaseExceedsRemaining",
  "AgentStopped",
  "EscrowRefused"
])
const tagOf = (e: unknown): string | undefined =>
  typeof e === "object" && e !== null && "_tag" in e && typeof e._tag === "string" ? e._tag : undefined
const isRetryable = (e: unknown) => !terminalTags.has(tagOf(e) ?? "")
const isFallbackable = (e: unknown) => isRetryable(e) || tagOf(e) === "AgentStopped" || tagOf(e) === "EscrowRefused"

const build = (deps: Deps, identity: AgentRecord, scope: Scope.Scope, config: Config): Effect.Effect<OrchestratorShape> =>
  Effect.gen(function*() {
    const { accounts, escrow } = deps
    const lifetime = new SpendTracker("per-run", config.budget.perRun)
    const handles = new Set<Handle<Agent.Any>>()
    const hired = new Map<Agent.Any, Deferred.Deferred<Handle<any>, SpawnError>>()
    let closed = false
    yield* Scope.addFinalizer(scope, Effect.sync(() => (closed = true)))

    // ---- spawn

    const spawn = <A extends Agent.Any>(agent: A, options: SpawnOptions = {}): Effect.Effect<Handle<A>, SpawnError> =>
      Effect.gen(function*() {
        if (closed) return yield* new AgentStopped({ agent: identity.name })
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

    // ---- budgets

    const trackersFor = (runs: ReadonlyMap<WalletAddress, { perTask: bigint | undefined; tracker: SpendTracker }>) => {
      const run = runs.get(identity.wallet)
      return {
        trackers: run === undefined ? [lifetime] : [lifetime, run.tracker],
        perTask: minCap(config.budget.perTask, run?.perTask)
      }
    }

    /** Checks the caps and reserves `amount`; the returned function ends the reservation with what was paid. */
    const reserveBudget = (amount: Usdc, maxPrice: Usdc | undefined) =>
      Effect.flatMap(FiberRef.get(RunBudgets), (runs) => {
        const { perTask, trackers } = trackersFor(runs)
        const taskCheck = perTaskCheck(minCap(perTask, maxPrice), amount)
        if (Either.isLeft(taskCheck)) return Effect.fail(taskCheck.left)
        const reserved = reserve(trackers, amount)
        if (Either.isLeft(reserved)) return Effect.fail(reserved.left)
        return Effect.succeed((paid: bigint) => settle(trackers, amount, paid))
      })

    const withBudget = (budget: Budget) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.flatMap(checkBudget("budget", budget), (valid: Budget) =>
        Effect.locallyWith(effect, RunBudgets, (runs) =>
          new Map(runs).set(identity.wallet, {
            perTask: valid.perTask,
            tracker: new SpendTracker("per-run", valid.perRun)
          })))

    // ---- one task

    interface Plan {
      readonly timeoutMs: number
      readonly payer: WalletAddress
      readonly mandateId: MandateId | undefined
      readonly description: string | undefined
      readonly region: string | undefined
      readonly maxPrice: Usdc | undefined
    }

    const checkPlan = (options: DelegateOptions<any, any, any, any> | StreamOptions): Either.Either<Plan, InvalidInput> => {
      const timeoutMs = options.timeoutMs ?? Limits.defaultTimeoutMs
      const timeout = checkInteger("timeoutMs", timeoutMs, 1, Limits.maxTimeoutMs)
      if (Either.isLeft(timeout)) return Either.left(timeout.left)
      if (options.description !== undefined && options.description.length > Limits.descriptionChars) {
        return Either.left(invalid("description", `at most ${Limits.descriptionChars} characters`))
      }
      if (options.region !== undefined && (options.region.length === 0 || options.region.length > 64)) {
        return Either.left(invalid("region", "must be 1-64 characters"))
      }
      if (options.maxPrice !== undefined && options.maxPrice < 0n) return Either.left(invalid("maxPrice", "must not be negative"))
      return Either.right({
        timeoutMs,
        payer: options.payer ?? identity.wallet,
        mandateId: options.mandateId,
        description: options.description,
        region: options.region ?? config.region,
        maxPrice: options.maxPrice
      })
    }

    const termsFor = (handle: Handle<Agent.Any>, amount: Usdc, plan: Plan): EscrowTerms => ({
      payer: plan.payer,
      payee: handle.wallet,
      amount,
      description: plan.description ?? `${handle.name} task`,
      metadata: plan.region === undefined
        ? { agent: handle.name, orchestrator: identity.name }
        : { agent: handle.name, orchestrator: identity.name, fly_region: plan.region },
      timeout: Duration.millis(plan.timeoutMs + Limits.escrowGraceMs),
      mandateId: plan.mandateId
    })

    /** Locks `terms` for a metered or streamed task: whatever was not paid by partial releases is refunded when the scope closes. */
    const lockRemainderRefunded = (terms: EscrowTerms): Effect.Effect<ScopedEscrow, CreateError, Scope.Scope> =>
      Effect.map(
        Effect.acquireRelease(escrow.create(terms), (created) => settleOnExit(escrow, created.id, "cancel", config.settlementRetry)),
        (created) => ({
          id: created.id,
          created,
          release: (amount) => escrow.release(created.id, { amount }),
          cancel: escrow.cancel(created.id),
          get: escrow.get(created.id)
        })
      )

    /** Runs `run`, restarting it per the policy when it dies. */
    const supervised = <O, E, R>(
      handle: Handle<Agent.Any>,
      run: (restarts: number) => Effect.Effect<O, E, R>
    ): Effect.Effect<O, E | AgentCrashed, R> => {
      const internals = handle[HandleInternals]
      let restarts = 0
      const once = Effect.suspend(() => run(restarts)).pipe(
        Effect.catchAllDefect((defect) => {
          internals.state.crashes++
          return Effect.zipRight(
            Effect.logWarning("sub-agent crashed", { agent: handle.name, restarts, defect: describeDefect(defect) }),
            Effect.fail(new Crash(defect))
          )
        })
      )
      const policy = internals.restart.pipe(
        Schedule.whileInput((e: E | Crash) => e instanceof Crash),
        Schedule.onDecision((_, decision) =>
          Effect.sync(() => {
            if (decision._tag === "Continue") {
              restarts++
              internals.state.restarts++
            }
          })
        )
      )
      // The policy's schedule is only built after a first crash: the common path pays nothing for it.
      const isCrash = (e: unknown): e is Crash => e instanceof Crash
      return Effect.catchIf(once, isCrash, (first) => {
        let replayed = false
        const again = Effect.suspend(() => (replayed ? once : ((replayed = true), Effect.fail(first))))
        return Effect.retry(again, policy)
      }).pipe(
        Effect.catchIf(isCrash, (crash) =>
          Effect.fail(new AgentCrashed({ agent: handle.name, restarts, defect: describeDefect(crash.defect) })))
      ) as Effect.Effect<O, E | AgentCrashed, R>
    }

    /**
     * Runs `task` as one of the handle's fibers, so stopping the handle interrupts
     * it; a caller that is interrupted interrupts it too, and waits for its escrow
     * to be cancelled. A task interrupted by its own deadline (see `deadlineFor`)
     * fails with `TaskTimedOut`.
     */
    const inHandle = <A, E, R>(
      handle: Handle<Agent.Any>,
      task: Effect.Effect<A, E, R>,
      deadline: Deadline
    ): Effect.Effect<A, E | AgentStopped | TaskTimedOut, R> => {
      const internals = handle[HandleInternals]
      return Effect.uninterruptibleMask((restore) =>
        // Forked interruptible: the mask is only for wiring the caller's interruption to the task.
        Effect.flatMap(FiberSet.run(internals.fibers, Effect.interruptible(task)), (fiber) =>
          restore(Fiber.await(fiber)).pipe(
            Effect.onInterrupt(() => Fiber.interrupt(fiber)),
            Effect.flatMap((exit): Effect.Effect<A, E | AgentStopped | TaskTimedOut> =>
              !Exit.isInterrupted(exit)
                ? exit
                : deadline.expired
                ? Effect.fail(new TaskTimedOut({ agent: handle.name, timeoutMs: deadline.timeoutMs }))
                : Effect.fail(new AgentStopped({ agent: handle.name }))
            )
          )
        )
      )
    }

    /**
     * A task's deadline, covering its run (restarts included) but not the escrow's
     * create and settle. Not `Effect.timeoutFail`: that races two more forked fibers
     * and merges the winner's FiberRefs back, which measured ~350 µs of CPU per task,
     * a third of a paid delegate's cost. The task already runs in its own fiber (see
     * `inHandle`), so a timer (`deadlineTimer`: TestClock-aware) interrupts it
     * instead, unless the run finished first.
     */
    interface Deadline {
      readonly timeoutMs: number
      expired: boolean
    }
    const deadlineFor = (timeoutMs: number): Deadline => ({ timeoutMs, expired: false })
    const withinDeadline = <A, E, R>(deadline: Deadline, run: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
      Effect.withFiberRuntime((taskFiber) => {
        let finished = false
        const expire = () => {
          if (finished) return
          deadline.expired = true
          taskFiber.unsafeInterruptAsFork(FiberId.none)
        }
        return Effect.flatMap(deadlineTimer(deadline.timeoutMs, expire), (timer) =>
          Effect.ensuring(run, Effect.sync(() => {
            finished = true
            timer.cancel()
          })))
      })

    const attempt = <I, O, E, R>(
      handle: Handle<Agent.Agent<I, O, E, R>>,
      input: I,
      plan: Plan
    ): Effect.Effect<O, E | DelegateError, Exclude<R, Orchestrator>> =>
      Effect.suspend(() => {
        const internals = handle[HandleInternals]
        const agent = handle.agent
        if (internals.state.stopped) return Effect.fail(new AgentStopped({ agent: handle.name }))
        const valid = Agent.validateInput(agent.input, input)
        if (Either.isLeft(valid)) return Effect.fail(valid.left)
        const pricing = agent.pricing
        const price = Agent.checkPrice(
          pricing._tag === "Fixed" ? "price" : "maxPrice",
          pricing._tag === "Fixed" ? pricing.price(valid.right) : pricing.maxPrice(valid.right)
        )
        if (Either.isLeft(price)) return Effect.fail(price.left)
        const amount = price.right
        const sub = handle.orchestrator

        let paid = 0n
        // The budget's reservation as a resource: acquired uninterruptibly, so an
        // interruption can never land between reserving and the release that ends it.
        const reservation = Effect.tap(reserveBudget(amount, plan.maxPrice), () => Effect.sync(() => internals.state.inFlight++))
        const endOf = (endReservation: (paid: bigint) => void, exit: Exit.Exit<unknown, unknown>) =>
          Effect.sync(() => {
            internals.state.inFlight--
            if (Exit.isSuccess(exit)) internals.state.completed++
            else internals.state.failed++
            // A failed or interrupted task paid nothing: its escrow was cancelled.
            endReservation(Exit.isSuccess(exit) ? paid : 0n)
          })
        return Effect.acquireUseRelease(reservation, () => {
          const deadline = deadlineFor(plan.timeoutMs)
          let usedMicros = 0n
          const use = (lock: EscrowRecord) =>
            Effect.gen(function*() {
              const runOnce = (restarts: number) => {
                const task: Agent.Task = {
                  escrowId: lock.id,
                  payer: plan.payer,
                  self: handle.identity,
                  lockedMicros: amount,
                  restarts,
                  charge: (charged) =>
                    pricing._tag === "Metered"
                      ? Effect.sync(() => {
                        if (charged > 0n) usedMicros += charged
                      })
                      : Effect.dieMessage(`charge() called by ${handle.name}, a fixed-price agent`),
                  used: Effect.sync(() => (usedMicros < amount ? usedMicros : amount) as Usdc)
                }
                const running = agent.run(valid.right, task)
                return sub === undefined ? running : Effect.provideService(running, Orchestrator, sub)
              }
              const output = yield* withinDeadline(deadline, supervised(handle, runOnce))
              const decoded = Schema.validateEither(agent.output)(output)
              if (Either.isLeft(decoded)) {
                return yield* new InvalidOutput({ agent: handle.name, message: Agent.describeOutputError(decoded.left) })
              }
              if (pricing._tag === "Metered") {
                const bill = usedMicros < amount ? usedMicros : amount
                if (bill > 0n) yield* escrow.release(lock.id, { amount: bill as Usdc })
                paid = bill
              } else {
                paid = amount
              }
              return decoded.right
            })
          // The escrow as a resource, as `Escrow.scoped` gives it, but without a Scope:
          // acquireUseRelease costs ~6 µs where a Scope costs ~40 µs, on every paid task.
          // A fixed price is released on success; a metered task has released what it
          // used, and the remainder is refunded. Any failure or interruption cancels.
          const work = Effect.acquireUseRelease(
            escrow.create(termsFor(handle, amount, plan)),
            use,
            (lock, exit) =>
              settleOnExit(
                escrow,
                lock.id,
                pricing._tag === "Fixed" && Exit.isSuccess(exit) ? "release" : "cancel",
                config.settlementRetry
              )
          )

          return internals.semaphore.withPermits(1)(inHandle(handle, work, deadline))
        }, endOf)
      }) as Effect.Effect<O, E | DelegateError, Exclude<R, Orchestrator>>

    const delegate = <I, O, E, R>(
      handle: Handle<Agent.Agent<I, O, E, R>>,
      input: I,
      options: DelegateOptions<I, O, E, R> = {}
    ): Effect.Effect<O, E | DelegateError, Exclude<R, Orchestrator>> =>
      Effect.suspend(() => {
        const plan = checkPlan(options)
        if (Either.isLeft(plan)) return Effect.fail(plan.left)
        const retries = options.retries ?? 0
        const retriesOk = checkInteger("retries", retries, 0, Limits.maxRetries)
        if (Either.isLeft(retriesOk)) return Effect.fail(retriesOk.left)
        const fallback = options.fallback ?? []
        if (fallback.length > Limits.maxFallbacks) {
          return Effect.fail(invalid("fallback", `at most ${Limits.maxFallbacks} fallback sub-agents`))
        }
        const withRetries = (h: Handle<Agent.Agent<I, O, E, R>>) => {
          const once = attempt(h, input, plan.right)
          if (retries === 0) return once
          const base = (options.retrySchedule ?? Schedule.forever) as Schedule.Schedule<unknown, unknown>
          return Effect.retry(
            once,
            base.pipe(Schedule.intersect(Schedule.recurs(retries)), Schedule.whileInput((e: unknown) => isRetryable(e)))
          )
        }
        let result = withRetries(handle)
        for (const next of fallback) {
          result = Effect.catchIf(result, isFallbackable, (error) =>
            Effect.zipRight(
              Effect.logInfo("falling back to another sub-agent", { from: handle.name, to: next.name, error: tagOf(error) }),
              withRetries(next)
            ))
        }
        return result
      }).pipe(withSpanWhenTraced("Orchestrator.delegate", { attributes: { "agent.name": handle.name }, captureStackTrace: false }))

    // ---- streams

    const stream = <I, O, E, R>(
      handle: Handle<Agent.StreamingAgent<I, O, E, R>>,
      input: I,
      options: StreamOptions = {}
    ): Stream.Stream<O, E | DelegateError, Exclude<R, Orchestrator>> =>
      Stream.unwrapScoped(
        Effect.gen(function*() {
          const internals = handle[HandleInternals]
          const agent = handle.agent
          const plan = yield* checkPlan(options)
          if (internals.state.stopped) return yield* new AgentStopped({ agent: handle.name })
          const valid = yield* Agent.validateInput(agent.input, input)
          const maxPrice = yield* Agent.checkPrice("maxPrice", agent.maxPrice(valid))
          let paid = 0n
          // Reserved and its end registered in one uninterruptible step.
          yield* Effect.acquireRelease(reserveBudget(maxPrice, plan.maxPrice), (endReservation) => Effect.sync(() => endReservation(paid)))
          // Hold a permit for the stream's life: a streaming task is one task.
          yield* Effect.acquireRelease(internals.semaphore.take(1), () => internals.semaphore.release(1))
          const lock = yield* lockRemainderRefunded(termsFor(handle, maxPrice, plan))
          const task: Agent.Task = {
            escrowId: lock.id,
            payer: plan.payer,
            self: handle.identity,
            lockedMicros: maxPrice,
            restarts: 0,
            charge: () => Effect.dieMessage(`charge() called by ${handle.name}, a streaming agent: batches are priced by pricePerBatch`),
            used: Effect.sync(() => paid as Usdc)
          }
          const deliver = (batch: O) =>
            Effect.gen(function*() {
              const decoded = Schema.validateEither(agent.output)(batch)
              if (Either.isLeft(decoded)) {
                return yield* new InvalidOutput({ agent: handle.name, message: Agent.describeOutputError(decoded.left) })
              }
              const price = yield* Agent.checkPrice("pricePerBatch", agent.pricePerBatch(decoded.right))
              if (paid + price > maxPrice) {
                return yield* new BudgetExceeded({
                  cap: "stream",
                  limitMicros: maxPrice,
                  spentMicros: paid,
                  requestedMicros: price
                })
              }
              yield* lock.release(price)
              paid += price
              return decoded.right
            })
          const source = agent.run(valid, task)
          const provided = handle.orchestrator === undefined
            ? source
            : Stream.provideService(source, Orchestrator, handle.orchestrator)
          // The deadline covers the whole stream, as a delegate's covers its run: the
          // escrow (deadline + its margin) then always outlives the last partial release.
          const deadline = Effect.zipRight(
            Effect.sleep(Duration.millis(plan.timeoutMs)),
            Effect.fail(new TaskTimedOut({ agent: handle.name, timeoutMs: plan.timeoutMs }))
          )
          return provided.pipe(
            // Not restarted: a restart would deliver, and charge for, batches again.
            Stream.catchAllCause((cause): Stream.Stream<O, E | AgentCrashed> => {
              const defect = Cause.dieOption(cause)
              return Option.isSome(defect)
                ? Stream.fail(new AgentCrashed({ agent: handle.name, restarts: 0, defect: describeDefect(defect.value) }))
                : Stream.failCause(cause)
            }),
            // On the agent's side of `deliver`: the deadline stops the pulling, never a
            // batch between its payment and its delivery to the consumer.
            Stream.interruptWhen(deadline),
            Stream.mapEffect(deliver),
            Stream.interruptWhenDeferred(internals.stoppedSignal)
          )
        })
      ) as Stream.Stream<O, E | DelegateError, Exclude<R, Orchestrator>>

    // ---- hire: spawn once, then delegate

    const spawnOnce = <A extends Agent.Any>(agent: A, options: SpawnOptions | undefined): Effect.Effect<Handle<A>, SpawnError> =>
      Effect.suspend(() => {
        const existing = hired.get(agent)
        if (existing !== undefined) return Deferred.await(existing)
        const deferred = Deferred.unsafeMake<Handle<any>, SpawnError>(FiberId.none)
        hired.set(agent, deferred)
        return spawn(agent, options).pipe(
          Effect.onExit((exit) => {
            if (Exit.isFailure(exit)) hired.delete(agent)
            return Deferred.done(deferred, exit)
          })
        )
      })

    const hire = <I, O, E, R>(
      agent: Agent.Agent<I, O, E, R>,
      input: I,
      options: DelegateOptions<I, O, E, R> & { readonly spawn?: SpawnOptions | undefined } = {}
    ) => Effect.flatMap(spawnOnce(agent, options.spawn), (handle) => delegate(handle, input, options))

    // ---- reports

    const earnings = Effect.gen(function*() {
      const [activity, referrals] = yield* Effect.all([accounts.activity(identity.wallet), accounts.referrals(identity.wallet)])
      const totals = (t: { spent: Usdc; revenue: Usdc; feesPaid: Usdc; referralIncome: Usdc }): EarningsTotals => ({
        referralIncome: t.referralIncome,
        spending: t.spent,
        revenue: t.revenue,
        feesPaid: t.feesPaid,
        net: t.revenue + t.referralIncome - t.spent
      })
      const byRegion: Record<string, EarningsTotals> = {}
      for (const [region, t] of Object.entries(activity.byRegion)) byRegion[region] = totals(t)
      return {
        agent: referrals.agent,
        ...totals(activity),
        byRegion,
        referred: referrals.referred.map((r) => ({ agent: r.agent, earned: r.earned }))
      } satisfies Earnings
    })

    const payments = (options: { readonly limit?: number } = {}) =>
      Effect.gen(function*() {
        const limit = Math.min(Math.max(Math.trunc(options.limit ?? 1_000), 1), Limits.maxPayments)
        const names = new Map<string, string>([[identity.wallet, identity.name]])
        const nameOf = (wallet: WalletAddress) =>
          names.has(wallet)
            ? Effect.succeed(names.get(wallet)!)
            : accounts.getAgent(wallet).pipe(
              Effect.map((a) => a.name),
              Effect.catchTag("AgentNotFound", () => Effect.succeed(wallet as string)),
              Effect.tap((name) => Effect.sync(() => names.set(wallet, name)))
            )
        const out: Array<Payment> = []
        let cursor: EscrowId | undefined
        while (out.length < limit) {
          const page = yield* accounts.escrows({ wallet: identity.wallet, limit: Math.min(500, limit - out.length), cursor })
          for (const e of page.escrows) {
            out.push({
              escrowId: e.id,
              payer: e.payer,
              payerName: yield* nameOf(e.payer),
              payee: e.payee,
              payeeName: yield* nameOf(e.payee),
              locked: e.amount,
              released: e.released,
              fee: e.feePaid,
              refunded: e.refunded,
              status: e.status,
              description: e.description,
              region: e.region,
              createdAtMs: e.createdAtMs
            })
          }
          if (page.nextCursor === null || page.escrows.length === 0) break
          cursor = page.nextCursor
        }
        return out
      })

    const shape: OrchestratorShape = {
      identity,
      spawn,
      delegate,
      stream,
      hire,
      withBudget,
      spent: Effect.sync(() => ({ paidMicros: lifetime.committed, lockedMicros: lifetime.reserved })),
      balance: accounts.balance(identity.wallet),
      earnings,
      payments,
      handles: Effect.sync(() => [...handles])
    }
    return shape
  })

const minCap = (a: bigint | undefined, b: bigint | undefined): bigint | undefined =>
  a === undefined ? b : b === undefined ? a : a < b ? a : b

/**
 * The referral chain above a wallet, nearest first: who referred it, who referred
 * them, … (at most 32 levels).
 */
export const referralChain = (
  wallet: WalletAddress
): Effect.Effect<ReadonlyArray<AgentRecord>, AgentNotFound | LedgerUnavailable, Accounts> =>
  Effect.gen(function*() {
    const accounts = yield* Accounts
    const chain: Array<AgentRecord> = []
    let current = yield* accounts.getAgent(wallet)
    while (current.referrer !== null && chain.length < Limits.maxReferralDepth) {
      current = yield* accounts.getAgent(current.referrer)
      chain.push(current)
    }
    return chain
  })

