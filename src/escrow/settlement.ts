/**
 * Settling a scoped escrow when its scope closes: retried with backoff, never
 * silently dropped. A settlement that cannot complete is recorded for
 * reconciliation and logged at error level; `reconcileUnsettled` makes it later
 * (an orchestrator runs it periodically), and the escrow's deadline still refunds
 * it, so nothing stays locked forever.
 */
import { Clock, Context, Effect, Either, Schedule } from "effect"
import type { EscrowId } from "../domain/ids.js"
import { SpanAttribute, SpanName, withSpanWhenTraced } from "../observability/spans.js"
import type { EscrowShape } from "./Escrow.js"

export const defaultSettlementRetry: Schedule.Schedule<unknown, unknown> = Schedule.exponential("50 millis").pipe(
  Schedule.jittered,
  Schedule.intersect(Schedule.recurs(4))
)

/**
 * The retries of a failed settlement wherever the caller names none: the backoff
 * above unless the context holds another. `EscrowTest.layer` puts retries without
 * delays there, so a test on the `TestClock` never waits on a backoff it does not
 * advance; a program may provide its own (`Layer.succeed(Escrow.SettlementRetry, ...)`).
 */
export class SettlementRetry extends Context.Reference<SettlementRetry>()("ringmaster/Escrow/SettlementRetry", {
  defaultValue: (): Schedule.Schedule<unknown, unknown> => defaultSettlementRetry
}) {}

export const settleOnExit = (
  escrow: EscrowShape,
  id: EscrowId,
  intent: "release" | "cancel",
  retry?: Schedule.Schedule<unknown, unknown> | undefined
): Effect.Effect<void> =>
  Effect.suspend(() => {
    // A plain counter: this runs once per settlement, on the hot path, in one fiber.
    let attempts = 0
    const settle = Effect.suspend(() => {
      attempts++
      return intent === "release" ? escrow.release(id) : escrow.cancel(id)
    }).pipe(
      // Settled early inside the scope (a manual cancel, a full release): nothing left to do.
      // But a release that finds the escrow expired is a payment the payee is owed and
      // that only a reconciler can make now: record it, do not drop it.
      Effect.catchTag("EscrowNotPending", (e) =>
        e.status === "pending" || (intent === "release" && e.status === "expired")
          ? Effect.fail(e)
          : Effect.logDebug("escrow already settled", { escrowId: id, status: e.status })
      ),
      Effect.asVoid
    )
    // Only an unavailable ledger or service may answer differently next time. A
    // refusal stays one: an expired escrow (`EscrowExpired`), a caller the service
    // refuses (`Forbidden`), an unknown escrow. Either way it is recorded, so the
    // reconciler tries again later or reports the payment as lost.
    const retryable = (error: { readonly _tag: string }) => error._tag === "LedgerUnavailable"
    return settle.pipe(
      // The first attempt runs bare: a retry schedule's driver costs more than the
      // settlement's own bookkeeping, and almost every settlement succeeds at once.
      // On a failure, the schedule takes over from that failure (replayed once), so the
      // number of tries and the delays between them are exactly the schedule's.
      Effect.catchAll((firstError) => {
        let replay = true
        const again = Effect.suspend(() => (replay ? ((replay = false), Effect.fail(firstError)) : settle))
        // The context is read only here, after a failure: the hot path never pays for it.
        return Effect.flatMap(retry === undefined ? SettlementRetry : Effect.succeed(retry), (schedule) =>
          Effect.retry(again, { schedule, while: retryable }))
      }),
      Effect.catchAll((error) =>
        Effect.gen(function*() {
          const atMs = yield* Clock.currentTimeMillis
          const message = "message" in error ? String(error.message) : String(error)
          yield* Effect.logError("escrow settlement failed; recorded for reconciliation", {
            escrowId: id,
            intent,
            error: message
          })
          yield* escrow.recordUnsettled({ escrowId: id, intent, error: message, attempts, atMs })
        })
      ),
      // No stack capture: this span runs on every settlement, on the hot path.
      withSpanWhenTraced(SpanName.escrowSettle, {
        attributes: { [SpanAttribute.escrowId]: id, [SpanAttribute.intent]: intent },
        captureStackTrace: false
      })
    )
  })

export interface ReconcileReport {
  /** Settled as recorded now, or found settled that way already: marked settled. */
  readonly settled: number
  /** Failed again: left for the next pass. */
  readonly pending: number
  /**
   * Releases that can no longer be made: the escrow was refunded meanwhile (its
   * deadline passed, or it was cancelled), so its payee was not paid for its work.
   * Logged at error level and marked settled: retrying cannot change it.
   */
  readonly lost: ReadonlyArray<EscrowId>
}

/**
 * One pass over the escrows recorded as unsettled (`escrow.unsettled`): each is
 * released or cancelled as its scope asked, and marked settled once that is done
 * or was done already. Repeating either is safe: a full release or a cancel of a
 * settled escrow changes nothing (`EscrowNotPending`).
 */
export const reconcileUnsettled = (escrow: EscrowShape): Effect.Effect<ReconcileReport> =>
  Effect.gen(function*() {
    let settled = 0
    let pending = 0
    const lost: Array<EscrowId> = []
    for (const entry of yield* escrow.unsettled) {
      const id = entry.escrowId
      const outcome = yield* Effect.either(entry.intent === "release" ? escrow.release(id) : escrow.cancel(id))
      if (Either.isLeft(outcome)) {
        const error = outcome.left
        if (error._tag === "EscrowExpired") {
          lost.push(id)
          yield* Effect.logError("an escrow owed to its payee was refunded before its release could be made", {
            escrowId: id,
            status: "expired",
            firstError: entry.error
          })
          yield* escrow.markSettled(id)
          continue
        }
        if (error._tag !== "EscrowNotPending") {
          pending++
          continue
        }
        if (entry.intent === "release" && error.status !== "released") {
          lost.push(id)
          yield* Effect.logError("an escrow owed to its payee was refunded before its release could be made", {
            escrowId: id,
            status: error.status,
            firstError: entry.error
          })
          yield* escrow.markSettled(id)
          continue
        }
      }
      settled++
      yield* escrow.markSettled(id)
    }
    return { settled, pending, lost }
  }).pipe(withSpanWhenTraced(SpanName.escrowReconcile, { captureStackTrace: false }))
