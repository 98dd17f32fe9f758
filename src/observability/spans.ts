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
import { Clock, Context, DefaultServices, Duration, Effect, Exit, Fiber, FiberId, Tracer } from "effect"

const defaultTracer = Context.get(DefaultServices.liveServices, Tracer.Tracer)
const liveClock = Context.get(DefaultServices.liveServices, Clock.Clock)

/** Whether the tracer in place is Effect's default one, which records nothing. */
export const isUntraced: Effect.Effect<boolean> = Effect.map(Effect.tracer, (tracer) => tracer === defaultTracer)

/** `Effect.withSpan`, skipped while the default tracer (which records nothing) is in place. */
export const withSpanWhenTraced = (name: string, options?: Tracer.SpanOptions) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(isUntraced, (untraced) => untraced ? effect : Effect.withSpan(effect, name, options))

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
