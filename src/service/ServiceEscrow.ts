/**
 * The `Escrow` the service hands to its routes and its pipeline: whichever escrow
 * backend is configured (the embedded ledger, or the settlement service over HTTP),
 * decorated with the local journal (crash recovery, audit trail) and the metrics.
 *
 * Every escrow this process opens, the payer's for a request and the
 * orchestrator's for a sub-agent alike, goes through `create` here, so every one is
 * journaled before it exists. With the ledger embedded, the ledger counts escrows
 * (Counters.ts); with a remote settlement service this decorator counts the ones
 * this process opens and settles (`countEscrows`).
 */
import { randomUUID } from "node:crypto"
import { Clock, Duration, Effect, Layer, Metric } from "effect"
import type { EscrowRecord, EscrowStatus } from "../domain/Escrow.js"
import type { EscrowId, WalletAddress } from "../domain/ids.js"
import { Escrow, type EscrowShape } from "../escrow/Escrow.js"
import { counters, countSettled, perKey } from "./Counters.js"
import { Journal, type JournalShape } from "./Journal.js"
import * as Telemetry from "./Telemetry.js"

export interface DecorateOptions {
  /** Region of escrows whose metadata names none. */
  readonly region: string
  /** The ledger's default deadline, for the journal's `deadline_ms` when the terms give no timeout. */
  readonly defaultTimeoutMs: number
  /**
   * Count the escrows this process opens and settles in the escrow metrics: only
   * when nothing below counts them (a remote settlement service). An embedded
   * ledger counts every escrow itself, so counting here too would count twice.
   */
  readonly countEscrows?: boolean | undefined
}

export { counters, countSettled }

/** Keyed by operation and region: tagging a metric per call hashes its key again each time, twice per request. */
const latency = perKey((operationAndRegion) => {
  const [operation, region] = operationAndRegion.split("\u0000") as [string, string]
  return Metric.tagged(Metric.tagged(Telemetry.settlementLatency, "operation", operation), "region", region)
})

const timed = <A, E, R>(operation: string, region: string, effect: Effect.Effect<A, E, R>) =>
  Effect.flatMap(Clock.currentTimeNanos, (start) =>
    effect.pipe(
      Effect.onExit(() =>
        Effect.flatMap(Clock.currentTimeNanos, (end) =>
          Metric.update(latency(`${operation}\u0000${region}`), Number(end - start) / 1e9)))
    ))

const terminal = (status: EscrowStatus): status is "released" | "cancelled" | "expired" => status !== "pending"

export const decorate = (inner: EscrowShape, journal: JournalShape, options: DecorateOptions): EscrowShape => {
  /** Escrows this process opened and has not seen settle: id → the journal row's key. Bounded by what is in flight. */
  const open = new Map<EscrowId, { readonly payer: WalletAddress; readonly key: string; readonly region: string }>()
  const counting = options.countEscrows === true
  const countOpened = (region: string) =>
    counting ? Effect.zipRight(Metric.increment(counters.created(region)), Metric.increment(counters.inFlight(region))) : Effect.void
  /** Counted only for an escrow this process saw open, once: a repeated settle finds it gone. */
  const countClosed = (record: Pick<EscrowRecord, "status" | "region">) =>
    counting ? Effect.zipRight(countSettled(record), Metric.incrementBy(counters.inFlight(record.region), -1)) : Effect.void

  const settled = (record: EscrowRecord) =>
    Effect.suspend(() => {
      if (!terminal(record.status)) return Effect.void
      const tracked = open.get(record.id)
      if (tracked === undefined) return Effect.void
      open.delete(record.id)
      return Effect.zipRight(
        countClosed({ status: record.status, region: tracked.region }),
        Effect.flatMap(Clock.currentTimeMillis, (now) => journal.settle(tracked.payer, tracked.key, record.status as "released", record.id, now))
      )
    })

  /** The escrow is already settled (a race lost to expiry, a repeated settle): close the journal row. */
  const notPending = (id: EscrowId, status: string) =>
    Effect.suspend(() => {
      const tracked = open.get(id)
      if (tracked === undefined || status === "pending") return Effect.void
      open.delete(id)
      const journalStatus = status === "released" || status === "cancelled" || status === "expired" ? status : "cancelled"
      return Effect.zipRight(
        // Settled by someone else (the settlement service's sweeper): gone from this process's in-flight escrows.
        counting ? Metric.incrementBy(counters.inFlight(tracked.region), -1) : Effect.void,
        Effect.flatMap(Clock.currentTimeMillis, (now) => journal.settle(tracked.payer, tracked.key, journalStatus, id, now))
      )
    })

  return {
    create: (terms) =>
      Effect.gen(function*() {
        const key = terms.idempotencyKey ?? `svc_${randomUUID()}`
        const metadata = terms.metadata ?? {}
        const region = typeof metadata["fly_region"] === "string" ? metadata["fly_region"] : options.region
        const timeoutMs = terms.timeout === undefined ? null : Math.ceil(Duration.toMillis(Duration.decode(terms.timeout)))
        const now = yield* Clock.currentTimeMillis
        yield* journal.open({
          payer: terms.payer,
          idempotencyKey: key,
          payee: terms.payee,
          amount: terms.amount,
          description: terms.description,
          metadata,
          mandateId: terms.mandateId ?? null,
          timeoutMs,
          region,
          openedAtMs: now,
          deadlineMs: now + (timeoutMs ?? options.defaultTimeoutMs)
        })
        const record = yield* timed("create", region, inner.create({ ...terms, idempotencyKey: key })).pipe(
          Effect.tapError((error) =>
            // A refusal means it was never created. An outage leaves the row open: recovery finds out.
            error._tag === "LedgerUnavailable"
              ? Effect.void
              : Effect.flatMap(Clock.currentTimeMillis, (at) => journal.settle(terms.payer, key, "refused", null, at))
          )
        )
        if (terminal(record.status)) {
          // An idempotent replay of an escrow that already settled.
          yield* journal.settle(terms.payer, key, record.status, record.id, yield* Clock.currentTimeMillis)
          return record
        }
        if (!open.has(record.id)) {
          open.set(record.id, { payer: terms.payer, key, region: record.region })
          yield* countOpened(record.region)
        }
        return record
      }),
    release: (id, releaseOptions) =>
      timed("release", open.get(id)?.region ?? options.region, inner.release(id, releaseOptions)).pipe(
        Effect.tap(settled),
        Effect.tapErrorTag("EscrowNotPending", (e) => notPending(id, e.status)),
        // Refused past the deadline: the ledger expired the escrow as it refused.
        Effect.tapErrorTag("EscrowExpired", () => notPending(id, "expired"))
      ),
    cancel: (id) =>
      timed("cancel", open.get(id)?.region ?? options.region, inner.cancel(id)).pipe(
        Effect.tap(settled),
        Effect.tapErrorTag("EscrowNotPending", (e) => notPending(id, e.status))
      ),
    get: inner.get,
    recordUnsettled: inner.recordUnsettled,
    unsettled: inner.unsettled,
    markSettled: inner.markSettled
  }
}

/** Decorates the `Escrow` below it. Needs the `Journal`. */
export const layer = (options: DecorateOptions): Layer.Layer<Escrow, never, Escrow | Journal> =>
  Layer.effect(
    Escrow,
    Effect.gen(function*() {
      return decorate(yield* Escrow, yield* Journal, options)
    })
  )
