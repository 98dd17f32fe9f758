/**
 * What updates the escrow and refusal metrics (Telemetry.ts).
 *
 * Escrows are counted where their transitions are decided exactly once:
 * - settlement embedded: the ledger tells each committed transition
 *   (`EscrowTransitions`, src/ledger/Transitions.ts), so an escrow opened over REST,
 *   MCP, a paid route or by the orchestrator, and one released, cancelled, expired
 *   by the sweeper or settled by recovery, is counted once, with the escrow's
 *   region; a repeated release or cancel and an idempotent replay of a create are
 *   no transitions and count nothing;
 * - settlement remote (`ESCROW_BASE`): this process sees only the escrows it opens
 *   itself, through the HTTP client; the decorated `Escrow` (ServiceEscrow.ts)
 *   counts those.
 *
 * Tagging a metric hashes its key again on every update, so the tagged
 * copies are made once per region (per code) and kept.
 */
import { Effect, Layer, Metric, MetricLabel } from "effect"
import type { EscrowEvent, EscrowRecord } from "../domain/Escrow.js"
import { Refusals } from "../http/Refusals.js"
import type { LedgerShape } from "../ledger/Ledger.js"
import { EscrowTransitions, type EscrowTransitionsShape } from "../ledger/Transitions.js"
import * as Telemetry from "./Telemetry.js"

/** Copies made once per key. */
export const perKey = <T>(make: (key: string) => T) => {
  const cache = new Map<string, T>()
  return (key: string): T => {
    let value = cache.get(key)
    if (value === undefined) {
      value = make(key)
      cache.set(key, value)
    }
    return value
  }
}

export const counters = {
  created: perKey((r) => Metric.tagged(Telemetry.escrowsCreated, "region", r)),
  released: perKey((r) => Metric.tagged(Telemetry.escrowsReleased, "region", r)),
  cancelled: perKey((r) => Metric.tagged(Telemetry.escrowsCancelled, "region", r)),
  expired: perKey((r) => Metric.tagged(Telemetry.escrowsExpired, "region", r)),
  inFlight: perKey((r) => Metric.tagged(Telemetry.escrowsInFlight, "region", r))
}

/** A settled escrow's terminal status, counted (the in-flight gauge is the caller's). */
export const countSettled = (record: Pick<EscrowRecord, "status" | "region">) =>
  record.status === "released"
    ? Metric.increment(counters.released(record.region))
    : record.status === "cancelled"
    ? Metric.increment(counters.cancelled(record.region))
    : record.status === "expired"
    ? Metric.increment(counters.expired(record.region))
    : Effect.void

const countEvent = (event: EscrowEvent): Effect.Effect<void> => {
  switch (event.kind) {
    case "created":
      return Effect.zipRight(Metric.increment(counters.created(event.region)), Metric.increment(counters.inFlight(event.region)))
    case "released":
    case "cancelled":
    case "expired":
      return Effect.zipRight(countSettled({ status: event.kind, region: event.region }), Metric.incrementBy(counters.inFlight(event.region), -1))
    case "partially_released":
      // Still pending: a part paid is no settlement.
      return Effect.void
  }
}

/** Counts a ledger's committed transitions. */
export const transitions: EscrowTransitionsShape = {
  committed: (events) => Effect.forEach(events, countEvent, { discard: true })
}

/** Provide to the ledger's layer: its transitions are then counted. */
export const layerTransitions: Layer.Layer<EscrowTransitions> = Layer.succeed(EscrowTransitions, transitions)

/**
 * The escrow counters and the in-flight gauge of `region`, exported at 0 from now
 * on: a metric enters the registry the exporter reads when it is first read or
 * updated, and a series Prometheus has never seen makes `rate()` and absence alerts
 * misfire.
 */
export const exportZero = (region: string): Effect.Effect<void> =>
  Effect.forEach(
    [counters.created, counters.released, counters.cancelled, counters.expired, counters.inFlight],
    (counter) => Metric.value(counter(region)),
    { discard: true }
  )

/** Pending escrows read at start at most (pages of 500); beyond it, the gauge starts short and says so. */
const MAX_PENDING_PAGES = 200

/**
 * Sets the in-flight gauge to the escrows pending in the ledger, by region, before
 * anything else transitions them (at start, before recovery and the port): from
 * then on the ledger's transitions keep it. With several processes on one
 * PostgreSQL ledger, each gauge is that process's view (pending at its start plus
 * its own transitions since): read it per instance, not summed.
 */
export const countPendingAtStart = (ledger: LedgerShape): Effect.Effect<void> =>
  Effect.gen(function*() {
    const byRegion = new Map<string, number>()
    let cursor: EscrowRecord["id"] | undefined
    let pages = 0
    do {
      const page = yield* ledger.listEscrows({ status: "pending", limit: 500, cursor })
      for (const escrow of page.escrows) byRegion.set(escrow.region, (byRegion.get(escrow.region) ?? 0) + 1)
      cursor = page.nextCursor ?? undefined
      pages++
    } while (cursor !== undefined && pages < MAX_PENDING_PAGES)
    if (cursor !== undefined) {
      yield* Effect.logWarning("more pending escrows than read at start: the in-flight gauge starts short", {
        read: pages * 500
      })
    }
    for (const [region, count] of byRegion) yield* Metric.incrementBy(counters.inFlight(region), count)
  }).pipe(Effect.catchAll((e) => Effect.logWarning("pending escrows could not be read at start: the in-flight gauge starts at 0", { error: e.message })))

// ---------------------------------------------------------------------------
// Refusals

/** Distinct codes counted at most; wire codes are a fixed set, this guards the label's cardinality anyway. */
const MAX_CODES = 64
const CODE = /^[a-z][a-z0-9_]{0,63}$/

/** `Refusals` on `ringmaster_refusals_total{code, region}`, with this service's region. */
export const layerRefusals = (region: string): Layer.Layer<Refusals> =>
  Layer.sync(Refusals, () => {
    const make = (code: string) =>
      Metric.taggedWithLabels(Telemetry.refusals, [MetricLabel.make("code", code), MetricLabel.make("region", region)])
    const byCode = new Map<string, ReturnType<typeof make>>()
    const counterOf = (code: string) => {
      const known = byCode.get(code)
      if (known !== undefined) return known
      const label = CODE.test(code) && byCode.size < MAX_CODES ? code : "other"
      const counter = byCode.get(label) ?? make(label)
      byCode.set(label, counter)
      return counter
    }
    return { count: (code) => Metric.increment(counterOf(code)) }
  })
