/**
 * `EscrowTest`: a mock `Escrow` for users' test suites. It runs the real rules
 * in memory (fees, referral split, states: the same engine as the embedded ledger),
 * records every call, can be told to fail the next calls of create/release/cancel
 * (a queue per operation, so "fail three times, then succeed" is one line), and
 * exposes its ledger for assertions on balances. Settlements are retried without
 * delays (`Escrow.SettlementRetry`), so a test on the `TestClock` never waits on a
 * backoff it does not advance.
 *
 *   it.effect("pays the writer", () =>
 *     Effect.gen(function*() {
 *       const test = yield* EscrowTest
 *       ...
 *       expect((yield* test.calls).map((c) => c.op)).toEqual(["create", "release"])
 *     }).pipe(Effect.provide(EscrowTest.layer())))
 */
import { Context, Effect, Layer, Ref, Schedule } from "effect"
import { type Forbidden, InvalidInput, type LedgerError, type LedgerUnavailable } from "../domain/errors.js"
import type { EscrowRecord } from "../domain/Escrow.js"
import { Ledger, type LedgerConfigShape, type LedgerShape } from "../ledger/Ledger.js"
import * as LedgerConfig from "../ledger/LedgerConfig.js"
import * as MemoryLedger from "../ledger/MemoryLedger.js"
import { Escrow, type EscrowShape } from "./Escrow.js"
import { memoryJournal } from "../ledger/SettlementJournal.js"
import { fromLedger } from "./EscrowLocal.js"
import { SettlementRetry } from "./settlement.js"

export type EscrowOp = "create" | "release" | "cancel" | "get"

export interface EscrowCall {
  readonly op: EscrowOp
  /** The call's arguments, as given. */
  readonly args: ReadonlyArray<unknown>
  /** How it ended: the record, or the error's tag. */
  readonly outcome: { readonly _tag: "Success"; readonly escrow: EscrowRecord } | { readonly _tag: "Failure"; readonly error: string }
}

/** What the real ports can fail with: a ledger refusal, an outage, or a settlement service saying no. */
export type InjectedError = LedgerError | LedgerUnavailable | Forbidden

/** Failures waiting per operation, at most: a script longer than this is a mistake, not a test. */
export const MAX_QUEUED_FAILURES = 1_000

export interface FailNextOptions {
  /** How many of the next calls fail with this error; 1..1,000, default 1. */
  readonly times?: number | undefined
}

export interface EscrowTestShape {
  /** Every call so far, oldest first. */
  readonly calls: Effect.Effect<ReadonlyArray<EscrowCall>>
  /**
   * Queues `error` for the next `times` calls of `op` (default 1): each fails with it
   * and changes nothing. Failures queued by earlier calls come first, so
   * `failNext("release", a); failNext("release", b, { times: 2 })` fails the next
   * three releases with a, b, b; the fourth runs.
   */
  readonly failNext: (
    op: Exclude<EscrowOp, "get">,
    error: InjectedError,
    options?: FailNextOptions
  ) => Effect.Effect<void, InvalidInput>
  /** The in-memory ledger behind the mock: register agents, fund wallets, read balances, verify. */
  readonly ledger: LedgerShape
  readonly reset: Effect.Effect<void>
}

/** As many tries as the default settlement retry, without its backoff. */
const noDelayRetry: Schedule.Schedule<unknown, unknown> = Schedule.recurs(4)

export class EscrowTest extends Context.Tag("ringmaster/EscrowTest")<EscrowTest, EscrowTestShape>() {
  /**
   * Provides `Escrow`, `EscrowTest` and the in-memory `Ledger` behind them, and
   * settlement retries without delays (5 tries, as the default, none of them waiting).
   */
  static readonly layer = (config: Partial<LedgerConfigShape> = {}): Layer.Layer<Escrow | EscrowTest | Ledger | SettlementRetry> =>
    Layer.effectContext(
      Effect.gen(function*() {
        const ledger = yield* MemoryLedger.make(LedgerConfig.make(config))
        const real = fromLedger(ledger, yield* memoryJournal)
        const calls = yield* Ref.make<ReadonlyArray<EscrowCall>>([])
        const injected = yield* Ref.make<ReadonlyMap<EscrowOp, ReadonlyArray<InjectedError>>>(new Map())

        const recorded = <E>(op: EscrowOp, args: ReadonlyArray<unknown>, run: Effect.Effect<EscrowRecord, E>) =>
          Effect.gen(function*() {
            const failure = yield* Ref.modify(injected, (map): readonly [InjectedError | undefined, ReadonlyMap<EscrowOp, ReadonlyArray<InjectedError>>] => {
              const [first, ...rest] = map.get(op) ?? []
              if (first === undefined) return [undefined, map]
              return [first, new Map(map).set(op, rest)]
            })
            const result = failure === undefined ? yield* Effect.either(run) : ({ _tag: "Left", left: failure } as const)
            const outcome: EscrowCall["outcome"] = result._tag === "Right"
              ? { _tag: "Success", escrow: result.right }
              : { _tag: "Failure", error: (result.left as { _tag?: string })._tag ?? String(result.left) }
            yield* Ref.update(calls, (all) => [...all, { op, args, outcome }])
            return yield* (result._tag === "Right" ? Effect.succeed(result.right) : Effect.fail(result.left as E))
          })

        const escrow: EscrowShape = {
          ...real,
          create: (terms) => recorded("create", [terms], real.create(terms)),
          release: (id, options) => recorded("release", options === undefined ? [id] : [id, options], real.release(id, options)),
          cancel: (id) => recorded("cancel", [id], real.cancel(id)),
          get: (id) => recorded("get", [id], real.get(id))
        }
        const test: EscrowTestShape = {
          calls: Ref.get(calls),
          failNext: (op, error, options = {}) => {
            const times = options.times ?? 1
            if (!Number.isInteger(times) || times < 1 || times > MAX_QUEUED_FAILURES) {
              return Effect.fail(new InvalidInput({ field: "times", message: `expected an integer from 1 to ${MAX_QUEUED_FAILURES}, got ${times}` }))
            }
            return Ref.modify(injected, (map): readonly [Effect.Effect<void, InvalidInput>, ReadonlyMap<EscrowOp, ReadonlyArray<InjectedError>>] => {
              const queued = map.get(op) ?? []
              if (queued.length + times > MAX_QUEUED_FAILURES) {
                return [
                  Effect.fail(new InvalidInput({
                    field: "times",
                    message: `${queued.length} failures of ${op} are queued already; at most ${MAX_QUEUED_FAILURES} may wait`
                  })),
                  map
                ]
              }
              return [Effect.void, new Map(map).set(op, [...queued, ...Array.from({ length: times }, () => error)])]
            }).pipe(Effect.flatten)
          },
          ledger,
          reset: Effect.zipRight(Ref.set(calls, []), Ref.set(injected, new Map()))
        }
        return Context.make(Escrow, escrow).pipe(
          Context.add(EscrowTest, test),
          Context.add(Ledger, ledger),
          Context.add(SettlementRetry, noDelayRetry)
        )
      })
    )
}
