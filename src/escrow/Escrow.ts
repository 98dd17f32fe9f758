/**
 * The Escrow port: what agents and services use to lock, pay and refund. Its layers
 * are `Escrow.layerFromLedger` (over any `Ledger`), `EscrowTest.layer` (in memory, with
 * call recording and failure injection), `EscrowSqlite.layer` (the embedded SQLite
 * ledger, from `ringmaster/sqlite`) and `EscrowHttp.layer` (a remote settlement
 * service, from `ringmaster/http`). They live in those entries' modules so that
 * importing the port loads no SQL driver and no HTTP stack.
 *
 * `Escrow.scoped` makes an escrow a scoped resource: acquiring it locks the funds,
 * and closing the scope settles them: released on success, cancelled (full refund
 * of what remains) on failure, defect or interruption. Under a tracer each create,
 * release and cancel it makes is a `ringmaster.escrow.*` span (`traced.ts`).
 */
import { Context, Effect, Exit, Layer, Option, type Schedule, Scope } from "effect"
import type { EscrowNotFound, Forbidden, LedgerUnavailable } from "../domain/errors.js"
import type { EscrowRecord, EscrowTerms, ReleaseOptions } from "../domain/Escrow.js"
import type { EscrowId } from "../domain/ids.js"
import type { Usdc } from "../domain/Usdc.js"
import type * as LedgerErrors from "../ledger/Ledger.js"
import { Ledger } from "../ledger/Ledger.js"
import { memoryJournal, SettlementJournal, type UnsettledEscrow } from "../ledger/SettlementJournal.js"
import { fromLedger } from "./EscrowLocal.js"
import { reconcileUnsettled, settleOnExit, SettlementRetry } from "./settlement.js"
import { tracedEscrow } from "./traced.js"

/**
 * The port's errors: the ledger's refusals, plus `Forbidden` when a remote
 * settlement service refused the caller (an in-process ledger never does).
 */
export type CreateError = LedgerErrors.CreateError | Forbidden
export type ReleaseError = LedgerErrors.ReleaseError | Forbidden
export type CancelError = LedgerErrors.CancelError | Forbidden
export type GetError = EscrowNotFound | Forbidden | LedgerUnavailable

export interface EscrowShape {
  readonly create: (terms: EscrowTerms) => Effect.Effect<EscrowRecord, CreateError>
  readonly release: (id: EscrowId, options?: ReleaseOptions) => Effect.Effect<EscrowRecord, ReleaseError>
  readonly cancel: (id: EscrowId) => Effect.Effect<EscrowRecord, CancelError>
  readonly get: (id: EscrowId) => Effect.Effect<EscrowRecord, GetError>
  /** Durably notes a settlement that failed after retries, for reconciliation. */
  readonly recordUnsettled: (entry: UnsettledEscrow) => Effect.Effect<void>
  /** Settlements still waiting for reconciliation. */
  readonly unsettled: Effect.Effect<ReadonlyArray<UnsettledEscrow>>
  /** Marks a recorded settlement as done (after a reconciler settled the escrow). */
  readonly markSettled: (id: EscrowId) => Effect.Effect<void>
}

/** An escrow held by a scope. `release`/`cancel` settle early; the scope settles whatever remains. */
export interface ScopedEscrow {
  readonly id: EscrowId
  /** The record as created. */
  readonly created: EscrowRecord
  /** Pays a part now (a delivered batch, the usage so far); the rest stays locked. */
  readonly release: (amount?: Usdc) => Effect.Effect<EscrowRecord, ReleaseError>
  /** Refunds what remains now; the scope then has nothing left to settle. */
  readonly cancel: Effect.Effect<EscrowRecord, CancelError>
  readonly get: Effect.Effect<EscrowRecord, GetError>
}

export interface ScopedOptions {
  /**
   * Retries of a failed settlement in the finalizer; default: `Escrow.SettlementRetry`
   * from the context, which is 5 tries, jittered exponential from 50 ms, unless provided.
   */
  readonly settlementRetry?: Schedule.Schedule<unknown, unknown> | undefined
}

export class Escrow extends Context.Tag("ringmaster/Escrow")<Escrow, EscrowShape>() {
  /**
   * The escrow as a scoped resource: created (funds locked) when acquired; on scope
   * exit, released if the scope succeeded, cancelled if it failed, died or was
   * interrupted. A settlement that still fails after retries is recorded with
   * `recordUnsettled` and logged; the escrow's deadline refunds it regardless.
   */
  static readonly scoped = (
    terms: EscrowTerms,
    options: ScopedOptions = {}
  ): Effect.Effect<ScopedEscrow, CreateError, Escrow | Scope.Scope> =>
    Effect.flatMap(Escrow, (port) => {
      const escrow = tracedEscrow(port)
      return Effect.acquireRelease(escrow.create(terms), settleByExit(escrow, options)).pipe(
        Effect.map((created) => heldEscrow(escrow, created))
      )
    })

  /** `Escrow` over whatever `Ledger` is provided (journaling to `SettlementJournal` when one is). */
  static readonly layerFromLedger: Layer.Layer<Escrow, never, Ledger> = Layer.effect(
    Escrow,
    Effect.gen(function*() {
      const journal = yield* Effect.serviceOption(SettlementJournal)
      return fromLedger(yield* Ledger, Option.isSome(journal) ? journal.value : yield* memoryJournal)
    })
  )

  /** The settlement retries used where `ScopedOptions.settlementRetry` names none (see `SettlementRetry`). */
  static readonly SettlementRetry = SettlementRetry

  /** Settles what `recordUnsettled` kept: each escrow released or cancelled as its scope asked. */
  static readonly reconcileUnsettled = reconcileUnsettled

  /**
   * Runs `use` with a held escrow: paid if `use` succeeds, refunded otherwise; the
   * same settlement as `scoped`, without a Scope (acquireUseRelease is several times
   * cheaper, and this runs once per paid call).
   */
  static readonly use = <A, E, R>(
    terms: EscrowTerms,
    use: (escrow: ScopedEscrow) => Effect.Effect<A, E, R>,
    options: ScopedOptions = {}
  ): Effect.Effect<A, E | CreateError, Escrow | Exclude<R, Scope.Scope>> =>
    Effect.flatMap(Escrow, (port) => {
      const escrow = tracedEscrow(port)
      return Effect.acquireUseRelease(
        escrow.create(terms),
        (created) => use(heldEscrow(escrow, created)) as Effect.Effect<A, E, Exclude<R, Scope.Scope>>,
        settleByExit(escrow, options)
      )
    })
}

/** Released if what held the escrow succeeded, cancelled otherwise. */
const settleByExit = (escrow: EscrowShape, options: ScopedOptions) => (created: EscrowRecord, exit: Exit.Exit<unknown, unknown>) =>
  settleOnExit(escrow, created.id, Exit.isSuccess(exit) ? "release" : "cancel", options.settlementRetry)

const heldEscrow = (escrow: EscrowShape, created: EscrowRecord): ScopedEscrow => ({
  id: created.id,
  created,
  release: (amount) => escrow.release(created.id, { amount }),
  cancel: escrow.cancel(created.id),
  get: escrow.get(created.id)
})
