/**
 * How a sub-agent's work is supervised: a `run` that dies is restarted per the
 * sub-agent's restart policy, and each task runs as one of the sub-agent's fibers,
 * so stopping the sub-agent interrupts (and refunds) its tasks.
 */
import { Cause, Effect, Exit, Fiber, FiberSet, Schedule } from "effect"
import type * as Agent from "../Agent.js"
import { AgentCrashed, AgentStopped, TaskTimedOut } from "../errors.js"
import { type Handle, HandleInternals } from "./contract.js"
import type { Deadline } from "./deadline.js"

/** A defect of `run`, on its way to the restart policy. */
class Crash {
  constructor(readonly defect: unknown) {}
}

export const describeDefect = (defect: unknown): string =>
  defect instanceof Error ? defect.message : typeof defect === "string" ? defect : Cause.pretty(Cause.die(defect))

/** Runs `run`, restarting it per the policy when it dies. */
export const supervised = <O, E, R>(
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
export const inHandle = <A, E, R>(
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
