/** A task's deadline: a timer that interrupts the task's fiber unless its run finished first. */
import { Effect, FiberId } from "effect"
import { deadlineTimer } from "../../observability/spans.js"

/**
 * A task's deadline, covering its run (restarts included) but not the escrow's
 * create and settle. Not `Effect.timeoutFail`: that races two more forked fibers
 * and merges the winner's FiberRefs back, a large share of a paid delegate's CPU
 * (bench:delegate). The task already runs in its own fiber (see
 * `inHandle`), so a timer (`deadlineTimer`: TestClock-aware) interrupts it
 * instead, unless the run finished first.
 */
export interface Deadline {
  readonly timeoutMs: number
  expired: boolean
}
export const deadlineFor = (timeoutMs: number): Deadline => ({ timeoutMs, expired: false })
export const withinDeadline = <A, E, R>(deadline: Deadline, run: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
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
