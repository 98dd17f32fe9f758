/**
 * The hot-path stand-ins for `Effect.withSpan` and `Effect.timeoutFail`: same
 * outcomes as the originals, on the live clock and on TestClock.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, TestClock } from "effect"
import { timeoutFailWithin, withSpanWhenTraced } from "../../src/observability/spans.js"
import { defaultTracer, recordingTracer } from "../support/tracing.js"

describe("timeoutFailWithin", () => {
  it.live("fails with the timeout error when the deadline passes, and interrupts the work", () =>
    Effect.gen(function*() {
      const interrupted = yield* Deferred.make<void>()
      const error = yield* Effect.never.pipe(
        Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined)),
        timeoutFailWithin(20, () => "late" as const),
        Effect.flip
      )
      expect(error).toBe("late")
      expect(yield* Deferred.isDone(interrupted)).toBe(true)
    }))

  it.live("returns the value when the work finishes first, and its timer never fires later", () =>
    Effect.gen(function*() {
      const value = yield* Effect.succeed(42).pipe(timeoutFailWithin(20, () => "late"))
      expect(value).toBe(42)
      yield* Effect.sleep("40 millis")
      // A failure of the work is passed through unchanged.
      expect(yield* Effect.flip(Effect.fail("boom").pipe(timeoutFailWithin(20, () => "late")))).toBe("boom")
    }))

  it.effect("follows TestClock", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.fork(Effect.never.pipe(timeoutFailWithin(1_000, () => "late")))
      yield* TestClock.adjust("999 millis")
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 millis")
      expect(yield* Fiber.await(fiber)).toEqual(Exit.fail("late"))
    }))

  it.live("interrupting the caller interrupts the work and waits for it", () =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      let cleanedUp = false
      const fiber = yield* Effect.fork(
        Deferred.succeed(started, undefined).pipe(
          Effect.zipRight(Effect.never),
          Effect.ensuring(Effect.sleep("10 millis").pipe(Effect.zipRight(Effect.sync(() => (cleanedUp = true))))),
          timeoutFailWithin(10_000, () => "late")
        )
      )
      yield* Deferred.await(started)
      yield* Fiber.interrupt(fiber)
      expect(cleanedUp).toBe(true)
    }))
})

describe("withSpanWhenTraced", () => {
  it.effect("opens the span under a recording tracer, and none under the default tracer", () =>
    Effect.gen(function*() {
      const { names, tracer: recording } = recordingTracer()
      const inner = Effect.map(Effect.option(Effect.currentSpan), (span) => span._tag === "Some" ? span.value.name : null)
      expect(yield* inner.pipe(withSpanWhenTraced("work"), Effect.withTracer(recording))).toBe("work")
      expect(names).toEqual(["work"])
      expect(yield* inner.pipe(withSpanWhenTraced("work"), Effect.withTracer(defaultTracer))).toBeNull()
    }))
})
