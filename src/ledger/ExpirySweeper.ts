/**
 * Refunds escrows past their deadline, periodically, so no funds stay locked forever
 * even when nobody calls release or cancel; forgets idempotency keys past their
 * lifetime, so their table stays bounded. Safe to run in several instances at once:
 * expiry is a guarded transition (an escrow that is no longer pending is skipped).
 */
import { Duration, Effect, Layer, Schedule } from "effect"
import { Ledger } from "./Ledger.js"

export interface SweeperOptions {
  /** Time between sweeps; default 5 seconds. */
  readonly interval?: Duration.DurationInput | undefined
  /** Escrows expired per sweep at most; the next sweep takes the rest. Default 1,000. */
  readonly batchLimit?: number | undefined
}

/** One sweep: expires what is due and forgets expired idempotency keys, logs how many. */
export const sweepOnce = (batchLimit = 1_000) =>
  Effect.flatMap(Ledger, (ledger) =>
    ledger.expireDue(batchLimit).pipe(
      Effect.tap((expired) =>
        expired.length > 0
          ? Effect.logInfo("expired escrows refunded", { count: expired.length, escrowIds: expired.slice(0, 20).map((e) => e.id) })
          : Effect.void
      ),
      // Keys go after the escrows: a failure to forget them must not hold a refund back.
      Effect.tap(() =>
        Effect.tap(ledger.forgetExpiredKeys(batchLimit * 10), (forgotten) =>
          forgotten > 0 ? Effect.logDebug("expired idempotency keys forgotten", { count: forgotten }) : Effect.void)
      )
    ))

/** A background fiber in the layer's scope. A failed sweep is logged and the next one runs. */
export const layer = (options: SweeperOptions = {}): Layer.Layer<never, never, Ledger> =>
  Layer.scopedDiscard(
    sweepOnce(options.batchLimit).pipe(
      Effect.catchAllCause((cause) => Effect.logWarning("expiry sweep failed", cause)),
      Effect.repeat(Schedule.spaced(Duration.decode(options.interval ?? Duration.seconds(5)))),
      Effect.forkScoped
    )
  )
