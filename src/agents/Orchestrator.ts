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
  Deferred,
  Duration,
  Effect,
  Either,
  Exit,
  Layer,
  Option,
  Schedule,
  Schema,
  Scope,
  Stream
} from "effect"
import { type AgentNotFound, BudgetExceeded, InvalidInput } from "../domain/errors.js"
import type { AgentRecord, EscrowRecord, EscrowTerms } from "../domain/Escrow.js"
import type { MandateId, WalletAddress } from "../domain/ids.js"
import type { Usdc } from "../domain/Usdc.js"
import { Escrow, type ScopedEscrow } from "../escrow/Escrow.js"
import { settleOnExit } from "../escrow/settlement.js"
import { withSpanWhenTraced } from "../observability/spans.js"
import type { CreateError } from "../ledger/Ledger.js"
import { Accounts, type FaucetError, type RegisterError } from "./Accounts.js"
import * as Agent from "./Agent.js"
import { checkBudget, makeBudgets } from "./orchestrator/budgets.js"
import { checkInteger, invalid } from "./orchestrator/checks.js"
import type { Config, Deps } from "./orchestrator/config.js"
import { deadlineFor, withinDeadline } from "./orchestrator/deadline.js"
import { reconcileForever } from "./orchestrator/reconcile.js"
import { isFallbackable, isRetryable, tagOf } from "./orchestrator/retries.js"
import { type Parent, spawn as spawnSubAgent, spawnOnce } from "./orchestrator/spawn.js"
import { describeDefect, inHandle, supervised } from "./orchestrator/supervision.js"
import { earnings, payments } from "./orchestrator/reports.js"
import { AgentCrashed, AgentStopped, InvalidOutput, TaskTimedOut } from "./errors.js"
import {
  type DelegateError,
  type DelegateOptions,
  type Handle,
  HandleInternals,
  Limits,
  Orchestrator as OrchestratorTag,
  type OrchestratorOptions,
  type OrchestratorShape,
  RestartPolicy,
  type SpawnError,
  type SpawnOptions,
  type StreamOptions
} from "./orchestrator/contract.js"

export type { Budget } from "./Budget.js"
export { Limits, RestartPolicy } from "./orchestrator/contract.js"
export { referralChain } from "./orchestrator/reports.js"
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
  SpawnError,
  SpawnOptions,
  StreamOptions
} from "./orchestrator/contract.js"

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

// ---------------------------------------------------------------------------
// Construction

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
    if (options.reconcileEvery !== "never") yield* reconcileForever(escrow, options.reconcileEvery)
    return yield* build({ accounts, escrow }, identity, scope, {
      budget,
      region: options.region,
      settlementRetry: options.settlementRetry,
      restart: options.restart ?? RestartPolicy.default
    })
  })

const build = (deps: Deps, identity: AgentRecord, scope: Scope.Scope, config: Config): Effect.Effect<OrchestratorShape> =>
  Effect.gen(function*() {
    const { accounts, escrow } = deps
    const { reserveBudget, withBudget, spent } = makeBudgets(identity, config.budget)
    const handles = new Set<Handle<Agent.Any>>()
    const hired = new Map<Agent.Any, Deferred.Deferred<Handle<any>, SpawnError>>()
    let closed = false
    yield* Scope.addFinalizer(scope, Effect.sync(() => (closed = true)))

    // ---- spawn

    const parent: Parent = { deps, identity, scope, config, handles, hired, isClosed: () => closed, build }
    const spawn = <A extends Agent.Any>(agent: A, options?: SpawnOptions): Effect.Effect<Handle<A>, SpawnError> =>
      spawnSubAgent(parent, agent, options)

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

    const hire = <I, O, E, R>(
      agent: Agent.Agent<I, O, E, R>,
      input: I,
      options: DelegateOptions<I, O, E, R> & { readonly spawn?: SpawnOptions | undefined } = {}
    ) => Effect.flatMap(spawnOnce(parent, agent, options.spawn), (handle) => delegate(handle, input, options))

    const shape: OrchestratorShape = {
      identity,
      spawn,
      delegate,
      stream,
      hire,
      withBudget,
      spent,
      balance: accounts.balance(identity.wallet),
      earnings: earnings(accounts, identity),
      payments: (options) => payments(accounts, identity, options),
      handles: Effect.sync(() => [...handles])
    }
    return shape
  })


