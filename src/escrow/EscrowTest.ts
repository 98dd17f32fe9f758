/**
 * `EscrowTest`: a mock `Escrow` for users' test suites. It runs the real rules
 * in memory (fees, referral split, states: the same engine as the embedded ledger),
 * records every call, can be told to fail the next create/release/cancel, and
 * exposes its ledger for assertions on balances.
 *
 *   it.effect("pays the writer", () =>
 *     Effect.gen(function*() {
 *       const test = yield* EscrowTest
 *       ...
 *       expect((yield* test.calls).map((c) => c.op)).toEqual(["create", "release"])
 *     }).pipe(Effect.provide(EscrowTest.layer())))
 */
import { Context, Effect, Layer, Ref } from "effect"
import type { LedgerError, LedgerUnavailable } from "../domain/errors.js"
import type { EscrowRecord } from "../domain/Escrow.js"
import { Ledger, type LedgerConfigShape, type LedgerShape } from "../ledger/Ledger.js"
import * as LedgerConfig from "../ledger/LedgerConfig.js"
import * as MemoryLedger from "../ledger/MemoryLedger.js"
import { Escrow, type EscrowShape } from "./Escrow.js"
import { memoryJournal } from "../ledger/SettlementJournal.js"
import { fromLedger } from "./EscrowLocal.js"

export type EscrowOp = "create" | "release" | "cancel" | "get"

export interface EscrowCall {
  readonly op: EscrowOp
  /** The call's arguments, as given. */
  readonly args: ReadonlyArray<unknown>
  /** How it ended: the record, or the error's tag. */
  readonly outcome: { readonly _tag: "Success"; readonly escrow: EscrowRecord } | { readonly _tag: "Failure"; readonly error: string }
}

export interface EscrowTestShape {
  /** Every call so far, oldest first. */
  readonly calls: Effect.Effect<ReadonlyArray<EscrowCall>>
  /** The next call of `op` fails with `error` and changes nothing. */
  readonly failNext: (op: Exclude<EscrowOp, "get">, error: LedgerError | LedgerUnavailable) => Effect.Effect<void>
  /** The in-memory ledger behind the mock: register agents, fund wallets, read balances, verify. */
  readonly ledger: LedgerShape
  readonly reset: Effect.Effect<void>
}

export class EscrowTest extends Context.Tag("ringmaster/EscrowTest")<EscrowTest, EscrowTestShape>() {
  /** Provides `Escrow`, `EscrowTest` and the in-memory `Ledger` behind them. */
  static readonly layer = (config: Partial<LedgerConfigShape> = {}): Layer.Layer<Escrow | EscrowTest | Ledger> =>
    Layer.effectContext(
      Effect.gen(function*() {
        const ledger = yield* MemoryLedger.make(LedgerConfig.make(config))
        const real = fromLedger(ledger, yield* memoryJournal)
        const calls = yield* Ref.make<ReadonlyArray<EscrowCall>>([])
        const injected = yield* Ref.make<ReadonlyMap<EscrowOp, LedgerError | LedgerUnavailable>>(new Map())

        const recorded = <E>(op: EscrowOp, args: ReadonlyArray<unknown>, run: Effect.Effect<EscrowRecord, E>) =>
          Effect.gen(function*() {
            const failure = yield* Ref.modify(injected, (map) => {
              const next = new Map(map)
              const error = next.get(op)
              next.delete(op)
              return [error, next] as const
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
          failNext: (op, error) => Ref.update(injected, (map) => new Map(map).set(op, error)),
          ledger,
          reset: Effect.zipRight(Ref.set(calls, []), Ref.set(injected, new Map()))
        }
        return Context.make(Escrow, escrow).pipe(Context.add(EscrowTest, test), Context.add(Ledger, ledger))
      })
    )
}
