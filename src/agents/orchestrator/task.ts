/**
 * One paid task (`delegate`): the budget reserved, the escrow opened, the work run
 * under the sub-agent's supervision and the task's deadline, the output validated,
 * the escrow released or cancelled; then retries and fallbacks as the caller asked.
 */
import { Effect, Either, Exit, Schedule, Schema } from "effect"
import type { EscrowRecord } from "../../domain/Escrow.js"
import type { Usdc } from "../../domain/Usdc.js"
import { settleOnExit } from "../../escrow/settlement.js"
import { annotateWhenTraced, SpanAttribute, SpanName, withOutcomeSpanWhenTraced } from "../../observability/spans.js"
import * as Agent from "../Agent.js"
import { AgentStopped, ChargeExceedsMaximum, InvalidOutput } from "../errors.js"
import { checkInteger, invalid } from "./checks.js"
import { type DelegateError, type DelegateOptions, type Handle, HandleInternals, Limits, Orchestrator } from "./contract.js"
import { deadlineFor, withinDeadline } from "./deadline.js"
import { checkPlan, type Plan, type TaskContext, termsFor } from "./plan.js"
import { isFallbackable, isRetryable, tagOf } from "./retries.js"
import { inHandle, supervised } from "./supervision.js"

/** One paid attempt at a task on `handle`, in the order of the money rules (see `../Orchestrator.ts`). */
const attempt = <I, O, E, R>(
  ctx: TaskContext,
  handle: Handle<Agent.Agent<I, O, E, R>>,
  input: I,
  plan: Plan
): Effect.Effect<O, E | DelegateError, Exclude<R, Orchestrator>> =>
  Effect.suspend(() => {
    const { config, escrow, reserveBudget } = ctx
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
          // With retries or fallbacks the span shows the last attempt's escrow; each has its own create span.
          yield* annotateWhenTraced(() => ({ [SpanAttribute.escrowId]: lock.id, [SpanAttribute.priceMicros]: amount.toString() }))
          const runOnce = (restarts: number) => {
            const task: Agent.Task = {
              escrowId: lock.id,
              payer: plan.payer,
              self: handle.identity,
              lockedMicros: amount,
              restarts,
              charge: (charged) =>
                pricing._tag === "Metered"
                  ? Effect.suspend(() => {
                    if (usedMicros + charged > amount) {
                      return Effect.fail(
                        new ChargeExceedsMaximum({ agent: handle.name, chargeMicros: charged, chargedMicros: usedMicros, maximumMicros: amount })
                      )
                    }
                    usedMicros += charged
                    return Effect.void
                  })
                  : Effect.dieMessage(`charge() called by ${handle.name}, a fixed-price agent`),
              used: Effect.sync(() => usedMicros as Usdc)
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
            // Within the lock: `charge` refuses what would pass it.
            if (usedMicros > 0n) yield* escrow.release(lock.id, { amount: usedMicros as Usdc })
            paid = usedMicros
          } else {
            paid = amount
          }
          return decoded.right
        })
      // The escrow as a resource, as `Escrow.scoped` gives it, but without a Scope:
      // acquireUseRelease costs a fraction of what a Scope does, on every paid task.
      // A fixed price is released on success; a metered task has released what it
      // used, and the remainder is refunded. Any failure or interruption cancels.
      const work = Effect.acquireUseRelease(
        escrow.create(termsFor(ctx, handle, amount, plan)),
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

/** A task on `handle`, retried and then handed to the fallback sub-agents as `options` ask. */
export const delegate = <I, O, E, R>(
  ctx: TaskContext,
  handle: Handle<Agent.Agent<I, O, E, R>>,
  input: I,
  options: DelegateOptions<I, O, E, R> = {}
): Effect.Effect<O, E | DelegateError, Exclude<R, Orchestrator>> =>
  Effect.suspend(() => {
    const plan = checkPlan(ctx, options)
    if (Either.isLeft(plan)) return Effect.fail(plan.left)
    const retries = options.retries ?? 0
    const retriesOk = checkInteger("retries", retries, 0, Limits.maxRetries)
    if (Either.isLeft(retriesOk)) return Effect.fail(retriesOk.left)
    const fallback = options.fallback ?? []
    if (fallback.length > Limits.maxFallbacks) {
      return Effect.fail(invalid("fallback", `at most ${Limits.maxFallbacks} fallback sub-agents`))
    }
    const withRetries = (h: Handle<Agent.Agent<I, O, E, R>>) => {
      const once = attempt(ctx, h, input, plan.right)
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
  }).pipe(withOutcomeSpanWhenTraced(SpanName.delegate, { attributes: { [SpanAttribute.agent]: handle.name }, captureStackTrace: false }))
