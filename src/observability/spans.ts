/**
 * Spans and timers on hot paths, made as cheap as what observes them allows.
 *
 * Effect's default tracer keeps spans nowhere, yet each `Effect.withSpan` still
 * builds one and threads it through the context, a cost that shows on paths that run
 * per paid task (docs/performance.md). With the default tracer in place those spans are skipped;
 * with a real one (the service's OpenTelemetry layer, or `Layer.setTracer`) they
 * are opened. Likewise timers: with the live Clock a deadline is a plain
 * timer; with another Clock (TestClock) it sleeps on that Clock, so tests still
 * control time.
 */
import { Cause, Clock, Context, DefaultServices, Duration, Effect, Exit, Fiber, FiberId, Option, Stream, Tracer } from "effect"

/**
 * The spans ringmaster opens, by name: one namespace, so a trace backend can filter
 * on `ringmaster.*`. Amounts are attributes in micro-USDC, as decimal strings
 * (OpenTelemetry attributes have no bigint).
 */
export const SpanName = {
  /** One paid task (`Orchestrator.delegate`), its retries and fallbacks included. */
  delegate: "ringmaster.delegate",
  /** `Orchestrator.hire`: the spawn on first use, then the delegate. */
  hire: "ringmaster.hire",
  /** A streaming task, from its lock to its last paid batch. */
  stream: "ringmaster.stream",
  escrowCreate: "ringmaster.escrow.create",
  escrowRelease: "ringmaster.escrow.release",
  escrowCancel: "ringmaster.escrow.cancel",
  /** Settling an escrow when the task that held it ends: its release or cancel, retried. */
  escrowSettle: "ringmaster.escrow.settle",
  escrowReconcile: "ringmaster.escrow.reconcile",
  /** One transaction of the SQL ledger's group commit: the commands it decides together. */
  ledgerBatch: "ringmaster.ledger.batch",
  /** The service's `POST /inference`: challenge, escrow, work and settlement. */
  paidInference: "ringmaster.paid.inference",
  /** The service's `POST /tasks/{name}`, likewise. */
  paidTask: "ringmaster.paid.task"
} as const

export const SpanAttribute = {
  agent: "ringmaster.agent.name",
  escrowId: "ringmaster.escrow.id",
  payer: "ringmaster.escrow.payer",
  payee: "ringmaster.escrow.payee",
  /** What a task locks: its price, or the maximum of a metered or streamed task. */
  priceMicros: "ringmaster.price.micros",
  /** What one release pays (absent: whatever remains). */
  amountMicros: "ringmaster.amount.micros",
  /** Settlement intent of `ringmaster.escrow.settle`: release or cancel. */
  intent: "ringmaster.escrow.intent",
  /** How a task ended: `paid`, or the tag of the error that refunded it (`interrupted`, `defect`). */
  outcome: "ringmaster.outcome"
} as const

const defaultTracer = Context.get(DefaultServices.liveServices, Tracer.Tracer)
const liveClock = Context.get(DefaultServices.liveServices, Clock.Clock)

/** Whether the tracer in place is Effect's default one, which records nothing. */
export const isUntraced: Effect.Effect<boolean> = Effect.map(Effect.tracer, (tracer) => tracer === defaultTracer)

/** `Effect.withSpan`, skipped while the default tracer (which records nothing) is in place. */
export const withSpanWhenTraced = (name: string, options?: Tracer.SpanOptions) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(isUntraced, (untraced) => untraced ? effect : Effect.withSpan(effect, name, options))

/** `Stream.withSpan`, skipped while the default tracer is in place. */
export const streamWithSpanWhenTraced = (name: string, options?: Tracer.SpanOptions) =>
<A, E, R>(stream: Stream.Stream<A, E, R>): Stream.Stream<A, E, R> =>
  Stream.unwrap(Effect.map(isUntraced, (untraced) => untraced ? stream : Stream.withSpan(stream, name, options)))

/** Sets attributes on the current span, when a tracer records them (a no-op otherwise). */
export const annotateWhenTraced = (attributes: () => Record<string, unknown>): Effect.Effect<void> =>
  Effect.flatMap(isUntraced, (untraced) => untraced ? Effect.void : Effect.annotateCurrentSpan(attributes()))

/** The `ringmaster.outcome` of an exit: `paid` on success, else what ended it. */
export const outcomeOf = (exit: Exit.Exit<unknown, unknown>): string => {
  if (Exit.isSuccess(exit)) return "paid"
  if (Cause.isInterruptedOnly(exit.cause)) return "interrupted"
  const failure = Cause.failureOption(exit.cause)
  if (Option.isNone(failure)) return "defect"
  const error = failure.value
  return typeof error === "object" && error !== null && "_tag" in error && typeof error._tag === "string" ? error._tag : "failed"
}

/** `withSpanWhenTraced`, with `ringmaster.outcome` set on the span from how `effect` ended (see `outcomeOf`). */
export const withOutcomeSpanWhenTraced = (name: string, options?: Tracer.SpanOptions) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(isUntraced, (untraced) =>
    untraced ? effect : Effect.withSpan(
      Effect.onExit(effect, (exit) => Effect.annotateCurrentSpan(SpanAttribute.outcome, outcomeOf(exit))),
      name,
      options
    ))

/**
 * Calls `onExpire` after `millis` unless the returned `cancel` ran first. On the
 * live Clock a `setTimeout`; on any other Clock a daemon fiber sleeping on it.
 */
export const deadlineTimer = (millis: number, onExpire: () => void): Effect.Effect<{ readonly cancel: () => void }> =>
  Effect.clockWith((clock) => {
    if (clock === liveClock) {
      const timer = setTimeout(onExpire, millis)
      return Effect.succeed({ cancel: () => clearTimeout(timer) })
    }
    return Effect.map(
      Effect.forkDaemon(Effect.zipRight(clock.sleep(Duration.millis(millis)), Effect.sync(onExpire))),
      (fiber) => ({ cancel: () => fiber.unsafeInterruptAsFork(FiberId.none) })
    )
  })

/**
 * `Effect.timeoutFail` for hot paths: `effect` runs in one child fiber that a
 * `deadlineTimer` interrupts, where `timeoutFail` races two forked fibers and merges
 * the winner's FiberRefs back, several times the cost. The child's FiberRef
 * changes (log annotations, say) stay in the child. Interrupting the caller
 * interrupts the child and waits for it.
 */
export const timeoutFailWithin = <E1>(millis: number, onTimeout: () => E1) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | E1, R> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.flatMap(Effect.fork(restore(effect)), (child) => {
      let expired = false
      return Effect.flatMap(
        deadlineTimer(millis, () => {
          expired = true
          child.unsafeInterruptAsFork(FiberId.none)
        }),
        (timer) =>
          restore(Fiber.await(child)).pipe(
            Effect.onInterrupt(() => Fiber.interrupt(child)),
            Effect.ensuring(Effect.sync(timer.cancel)),
            Effect.flatMap((exit): Effect.Effect<A, E | E1> =>
              expired && Exit.isInterrupted(exit) ? Effect.fail(onTimeout()) : exit
            )
          )
      )
    })
  )
