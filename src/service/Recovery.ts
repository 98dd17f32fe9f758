/**
 * Crash recovery and housekeeping.
 *
 * At start, before the port opens, every journal row a previous process left
 * `open` is reconciled; then the same runs every `SWEEP_INTERVAL` for rows of dead
 * boots and rows of this boot whose deadline has passed:
 * - past its deadline: the ledger refunds (or has refunded) it by expiry; the row
 *   is closed as `expired` without touching the escrow;
 * - otherwise the create is replayed with the row's idempotency key and terms, the
 *   same request as first sent (a key answers only for its own request). An
 *   escrow that exists comes back as it is (keys are idempotent) and, if still
 *   pending, is cancelled: its request died with the process, nobody got a result,
 *   so nobody pays. A replay that is refused (no funds, mandate gone) means the
 *   escrow never existed; a replay that created it just now is cancelled the same
 *   way, so the payer ends where it started either way;
 * - the settlement service unreachable: the row stays open for the next sweep.
 *
 * With the embedded ledger the sweeper also expires every escrow past its deadline
 * (`ExpirySweeper.sweepOnce`), whoever opened it, and refreshes the referral-income
 * and sub-agent gauges. Settled journal rows older than `AUDIT_RETENTION_DAYS` are
 * pruned hourly. The embedded ledger counts the escrows it expires or cancels here
 * (Counters.ts); with a remote settlement service a cancel of a recovered escrow is
 * counted here.
 */
import { Clock, Duration, Effect, Layer, Metric, Option, Schedule } from "effect"
import type { EscrowShape } from "../escrow/Escrow.js"
import * as ExpirySweeper from "../ledger/ExpirySweeper.js"
import { Ledger } from "../ledger/Ledger.js"
import { countSettled } from "./Counters.js"
import { Identity } from "./Identity.js"
import { Journal, type JournalEntry, type JournalShape } from "./Journal.js"
import { Pipeline } from "./Pipeline.js"
import { ServiceConfig } from "./ServiceConfig.js"
import * as Telemetry from "./Telemetry.js"

/** Rows reconciled per pass at most; the next pass takes the rest. */
export const RECONCILE_BATCH = 500

export interface ReconcileReport {
  readonly cancelled: number
  readonly expired: number
  readonly refused: number
  readonly alreadySettled: number
  readonly stillOpen: number
}

const reconcileRow = (backend: EscrowShape, journal: JournalShape, row: JournalEntry, nowMs: number, countEscrows: boolean) =>
  Effect.gen(function*() {
    const close = (status: "released" | "cancelled" | "expired" | "refused", escrowId: JournalEntry["escrowId"]) =>
      journal.settle(row.payer, row.idempotencyKey, status, escrowId, nowMs)
    if (row.deadlineMs <= nowMs) {
      yield* close("expired", row.escrowId)
      return "expired" as const
    }
    const replay = yield* backend.create({
      payer: row.payer,
      payee: row.payee,
      amount: row.amount,
      description: row.description,
      metadata: row.metadata,
      mandateId: row.mandateId ?? undefined,
      idempotencyKey: row.idempotencyKey,
      // The timeout as first sent: an idempotency key is bound to the whole request, so
      // only the same request finds the escrow it created. One created only now is
      // cancelled at once below, so its later deadline holds nothing.
      timeout: row.timeoutMs === null ? undefined : Duration.millis(row.timeoutMs)
    }).pipe(Effect.either)
    if (replay._tag === "Left") {
      if (replay.left._tag === "LedgerUnavailable") return "stillOpen" as const
      yield* close("refused", null)
      return "refused" as const
    }
    const record = replay.right
    if (record.status !== "pending") {
      yield* close(record.status, record.id)
      return "alreadySettled" as const
    }
    const cancelled = yield* backend.cancel(record.id).pipe(Effect.either)
    if (cancelled._tag === "Left") {
      if (cancelled.left._tag === "EscrowNotPending") {
        const status = cancelled.left.status
        yield* close(status === "released" || status === "expired" ? status : "cancelled", record.id)
        return "alreadySettled" as const
      }
      return "stillOpen" as const
    }
    yield* close("cancelled", record.id)
    if (countEscrows) yield* countSettled(cancelled.right)
    yield* Metric.increment(Metric.tagged(Telemetry.recovered, "region", cancelled.right.region))
    yield* Effect.logWarning("recovered an escrow a previous process left open: cancelled, payer refunded", {
      escrow_id: record.id,
      payer: record.payer,
      amount_micros: record.amount.toString()
    })
    return "cancelled" as const
  })

/**
 * One pass over the open rows: other boots' always, this boot's once past their
 * deadline. `countEscrows`: count the cancels in the escrow metrics, when the
 * backend is a remote settlement service (an embedded ledger counts them itself).
 */
export const reconcile = (
  backend: EscrowShape,
  journal: JournalShape,
  options: { readonly includeOwnExpired: boolean; readonly countEscrows?: boolean | undefined }
) =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const rows = (yield* journal.listOpen({ limit: RECONCILE_BATCH, otherBootsOnly: !options.includeOwnExpired })).filter(
      (row) => row.bootId !== journal.bootId || row.deadlineMs <= now
    )
    const report = { cancelled: 0, expired: 0, refused: 0, alreadySettled: 0, stillOpen: 0 }
    for (const row of rows) {
      const outcome = yield* reconcileRow(backend, journal, row, now, options.countEscrows === true).pipe(
        Effect.catchAllDefect((defect) =>
          Effect.as(Effect.logError("reconciling a journal row failed", { key: row.idempotencyKey, defect: String(defect) }), "stillOpen" as const)
        )
      )
      report[outcome]++
    }
    if (rows.length > 0) yield* Effect.logInfo("journal reconciled", report)
    return report satisfies ReconcileReport
  })

/**
 * Reconciles at build time (so the port opens only after the previous process's
 * escrows are settled), then keeps sweeping in the background. `backend` is the
 * undecorated escrow: a replay is not a new escrow of this process.
 */
export const layer = (backend: EscrowShape): Layer.Layer<never, never, Journal | ServiceConfig | Identity | Pipeline> =>
  Layer.scopedDiscard(
    Effect.gen(function*() {
      const journal = yield* Journal
      const config = yield* ServiceConfig
      const identity = yield* Identity
      const pipeline = yield* Pipeline
      const ledger = Option.getOrUndefined(yield* Effect.serviceOption(Ledger))

      // Escrows of a dead process past their deadline: expire them in the ledger first, so the rows close on the truth.
      if (ledger !== undefined) yield* expireDue(ledger)
      const countEscrows = ledger === undefined
      yield* reconcile(backend, journal, { includeOwnExpired: false, countEscrows })

      let lastPruneMs = 0
      const sweep = Effect.gen(function*() {
        if (ledger !== undefined) {
          yield* expireDue(ledger)
          const report = yield* ledger.referrals(identity.wallet).pipe(Effect.option)
          if (Option.isSome(report)) yield* Metric.set(Telemetry.referralIncome, report.value.earned)
        }
        yield* reconcile(backend, journal, { includeOwnExpired: true, countEscrows })
        yield* Metric.set(Telemetry.subAgents, yield* pipeline.subAgents)
        const now = yield* Clock.currentTimeMillis
        if (now - lastPruneMs > 3_600_000) {
          lastPruneMs = now
          const pruned = yield* journal.prune(now - config.auditRetentionDays * 86_400_000)
          if (pruned > 0) yield* Effect.logInfo("audit trail pruned", { rows: pruned, retentionDays: config.auditRetentionDays })
        }
      })
      yield* sweep.pipe(
        Effect.catchAllCause((cause) => Effect.logWarning("sweep failed; the next one runs as scheduled", cause)),
        Effect.repeat(Schedule.spaced(Duration.millis(config.sweepIntervalMs))),
        Effect.forkScoped
      )
    })
  )

/** The ledger counts what it expires (Counters.ts). */
const expireDue = (ledger: Ledger["Type"]) =>
  ExpirySweeper.sweepOnce().pipe(
    Effect.provideService(Ledger, ledger),
    Effect.catchAll((e) => Effect.logWarning("expiry sweep failed", { error: e.message }))
  )
