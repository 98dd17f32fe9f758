/**
 * Spending caps, checked and reserved before an escrow is opened, so a task that
 * would break a cap fails with `BudgetExceeded` and nothing is locked.
 *
 * A reservation holds the task's whole lock (its price, or its maximum) while the
 * task runs; when the task ends it is converted into what was actually paid, and
 * the rest is returned to the cap. Concurrent tasks therefore cannot overshoot a
 * cap between them.
 */
import { Either } from "effect"
import { BudgetExceeded } from "../domain/errors.js"
import type { Usdc } from "../domain/Usdc.js"

export interface Budget {
  /** The most one task may lock. */
  readonly perTask?: Usdc | undefined
  /** The most a run may spend in total (paid plus currently locked). */
  readonly perRun?: Usdc | undefined
}

/** A running total against one cap. Mutated only inside `Effect.sync`, so each step is atomic. */
export class SpendTracker {
  /** Paid out of this cap so far. */
  committed = 0n
  /** Locked by tasks still running. */
  reserved = 0n
  constructor(readonly cap: string, readonly limit: bigint | undefined) {}

  get spent(): bigint {
    return this.committed + this.reserved
  }
}

export const perTaskCheck = (limit: bigint | undefined, requested: bigint): Either.Either<void, BudgetExceeded> =>
  limit !== undefined && requested > limit
    ? Either.left(new BudgetExceeded({ cap: "per-task", limitMicros: limit, spentMicros: 0n, requestedMicros: requested }))
    : Either.void

/** Reserves `amount` on every tracker, or on none if any would exceed its limit. */
export const reserve = (trackers: ReadonlyArray<SpendTracker>, amount: bigint): Either.Either<void, BudgetExceeded> => {
  for (const tracker of trackers) {
    if (tracker.limit !== undefined && tracker.spent + amount > tracker.limit) {
      return Either.left(
        new BudgetExceeded({ cap: tracker.cap, limitMicros: tracker.limit, spentMicros: tracker.spent, requestedMicros: amount })
      )
    }
  }
  for (const tracker of trackers) tracker.reserved += amount
  return Either.void
}

/** Ends a reservation: `paid` of it is spent, the rest returns to the cap. */
export const settle = (trackers: ReadonlyArray<SpendTracker>, reserved: bigint, paid: bigint): void => {
  for (const tracker of trackers) {
    tracker.reserved -= reserved
    tracker.committed += paid
  }
}
