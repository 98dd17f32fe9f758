/**
 * Streaming tasks: the stream's maximum is reserved and locked up front, each batch
 * is validated and paid as it is delivered (pulled only as the consumer asks), the
 * deadline covers the whole stream, and what was not paid is refunded at its end.
 */
import { Cause, Duration, Effect, Either, Option, Schema, type Scope, Stream } from "effect"
import type { EscrowTerms } from "../../domain/Escrow.js"
import type { Usdc } from "../../domain/Usdc.js"
import type { CreateError, ScopedEscrow } from "../../escrow/Escrow.js"
import { settleOnExit } from "../../escrow/settlement.js"
import { annotateWhenTraced, SpanAttribute, SpanName, streamWithSpanWhenTraced } from "../../observability/spans.js"
import * as Agent from "../Agent.js"
import { AgentCrashed, AgentStopped, ChargeExceedsMaximum, InvalidOutput, TaskTimedOut } from "../errors.js"
import { type DelegateError, type Handle, HandleInternals, Orchestrator, type StreamOptions } from "./contract.js"
import { checkPlan, type TaskContext, termsFor } from "./plan.js"
import { describeDefect } from "./supervision.js"

/** Locks `terms` for a metered or streamed task: whatever was not paid by partial releases is refunded when the scope closes. */
const lockRemainderRefunded = (
  { config, escrow }: TaskContext,
  terms: EscrowTerms
): Effect.Effect<ScopedEscrow, CreateError, Scope.Scope> =>
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

/** A streaming task on `handle`: each batch is paid as it is delivered; stopping early refunds the rest. */
export const stream = <I, O, E, R>(
  ctx: TaskContext,
  handle: Handle<Agent.StreamingAgent<I, O, E, R>>,
  input: I,
  options: StreamOptions = {}
): Stream.Stream<O, E | DelegateError, Exclude<R, Orchestrator>> =>
  Stream.unwrapScoped(
    Effect.gen(function*() {
      const { reserveBudget } = ctx
      const internals = handle[HandleInternals]
      const agent = handle.agent
      const plan = yield* checkPlan(ctx, options)
      if (internals.state.stopped) return yield* new AgentStopped({ agent: handle.name })
      const valid = yield* Agent.validateInput(agent.input, input)
      const maxPrice = yield* Agent.checkPrice("maxPrice", agent.maxPrice(valid))
      let paid = 0n
      // Reserved and its end registered in one uninterruptible step.
      yield* Effect.acquireRelease(reserveBudget(maxPrice, plan.maxPrice), (endReservation) => Effect.sync(() => endReservation(paid)))
      // Hold a permit for the stream's life: a streaming task is one task.
      yield* Effect.acquireRelease(internals.semaphore.take(1), () => internals.semaphore.release(1))
      const lock = yield* lockRemainderRefunded(ctx, termsFor(ctx, handle, maxPrice, plan))
      yield* annotateWhenTraced(() => ({ [SpanAttribute.escrowId]: lock.id, [SpanAttribute.priceMicros]: maxPrice.toString() }))
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
            return yield* new ChargeExceedsMaximum({ agent: handle.name, chargeMicros: price, chargedMicros: paid, maximumMicros: maxPrice })
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
  ).pipe(
    streamWithSpanWhenTraced(SpanName.stream, { attributes: { [SpanAttribute.agent]: handle.name }, captureStackTrace: false })
  ) as Stream.Stream<O, E | DelegateError, Exclude<R, Orchestrator>>
