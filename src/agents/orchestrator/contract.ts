/**
 * The orchestrator's contract: its bounds, its public types, and the Tag with its
 * accessors. The Tag's layers are attached in `../Orchestrator.ts`, beside the
 * implementation they build (the implementation provides this Tag to sub-agents,
 * so attaching them here would be an import cycle).
 */
import { Context, type Deferred, Duration, Effect, type FiberSet, Schedule, type Scope, Stream } from "effect"
import type { AgentNotFound, BudgetExceeded, InvalidInput } from "../../domain/errors.js"
import type { AgentRecord, EscrowStatus, WalletBalance } from "../../domain/Escrow.js"
import type { EscrowId, MandateId, ReferralCode, WalletAddress } from "../../domain/ids.js"
import type { Usdc } from "../../domain/Usdc.js"
import type { CancelError, CreateError, ReleaseError } from "../../escrow/Escrow.js"
import type { FaucetError, ReadError, RegisterError } from "../Accounts.js"
import type * as Agent from "../Agent.js"
import type { Budget } from "../Budget.js"
import type { AgentCrashed, AgentStopped, ChargeExceedsMaximum, InvalidOutput, RemoteAgentUnavailable, TaskTimedOut } from "../errors.js"
import { Limits as InputLimits } from "../../domain/limits.js"

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
  descriptionChars: InputLimits.descriptionChars,
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

/**
 * What the orchestrator keeps about a running sub-agent, behind a symbol so callers
 * see only `status` and `stop`: its task fibers, its concurrency, its restart policy.
 */
export const HandleInternals: unique symbol = Symbol.for("ringmaster/Orchestrator/HandleInternals")

export interface HandleState {
  stopped: boolean
  inFlight: number
  completed: number
  failed: number
  crashes: number
  restarts: number
}

export interface Internals {
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
  | ChargeExceedsMaximum
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

/**
 * What a payment came to, with its amounts (gross, fee included):
 * - `Paid`: the whole lock was released (a fixed price, or a metered task that used its maximum);
 * - `PartlyPaid`: part was released and the rest refunded (a metered or streamed task that
 *   used less than its maximum, or a stream stopped early);
 * - `Refunded`: nothing was paid (a failed task, a cancel, an expiry);
 * - `Pending`: still locked, with what partial releases paid so far.
 */
export type PaymentOutcome =
  | { readonly _tag: "Paid"; readonly paid: Usdc }
  | { readonly _tag: "PartlyPaid"; readonly paid: Usdc; readonly refunded: Usdc }
  | { readonly _tag: "Refunded"; readonly refunded: Usdc }
  | { readonly _tag: "Pending"; readonly paid: Usdc; readonly locked: Usdc }

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
  /** What the payment came to; a successful metered task that refunded its unused remainder is `PartlyPaid`. */
  readonly outcome: PaymentOutcome
  /** The escrow's own state: a partly paid escrow is `cancelled` there, since its remainder was refunded. */
  readonly status: EscrowStatus
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
  readonly balance: Effect.Effect<WalletBalance, ReadError>
  /** Referral income, spending, revenue and net, in total and per region: read from the ledger. */
  readonly earnings: Effect.Effect<Earnings, AgentNotFound | ReadError>
  /** Escrows its wallet paid or was paid by, oldest first (at most `limit`, default 1,000, max 10,000). */
  readonly payments: (options?: { readonly limit?: number }) => Effect.Effect<ReadonlyArray<Payment>, ReadError>
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
