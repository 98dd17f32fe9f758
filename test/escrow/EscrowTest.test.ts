/**
 * What `EscrowTest` adds to the contract: call recording, `failNext`, `reset`, and
 * its ledger exposed for assertions. (Its money semantics are covered by the
 * contract suite in `contract.test.ts`.)
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import { EscrowNotFound, InsufficientFunds, LedgerUnavailable } from "../../src/domain/errors.js"
import type { EscrowId } from "../../src/domain/ids.js"
import { SystemAccount } from "../../src/domain/ids.js"
import * as Usdc from "../../src/domain/Usdc.js"
import { Escrow } from "../../src/escrow/Escrow.js"
import { EscrowTest } from "../../src/escrow/EscrowTest.js"
import { snapshot } from "../ledger/support.js"

const u = Usdc.make

const setup = Effect.gen(function*() {
  const { ledger } = yield* EscrowTest
  const payer = yield* ledger.registerAgent({ name: "payer" })
  const payee = yield* ledger.registerAgent({ name: "payee" })
  yield* ledger.deposit(payer.wallet, u("100"))
  const terms = { payer: payer.wallet, payee: payee.wallet, amount: u("10"), description: "job" }
  const all = snapshot(ledger, [payer.wallet, payee.wallet])
  return { ledger, payer, payee, terms, all }
})

const verified = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    yield* self
    expect((yield* (yield* EscrowTest).ledger.verify).violations).toEqual([])
  })

describe("EscrowTest", () => {
  it.effect("records every call with its arguments and outcome", () =>
    verified(Effect.gen(function*() {
      const test = yield* EscrowTest
      const escrow = yield* Escrow
      const { terms } = yield* setup
      const created = yield* escrow.create(terms)
      yield* escrow.release(created.id, { amount: u("4") })
      yield* escrow.get(created.id)
      yield* escrow.cancel(created.id)
      yield* Effect.flip(escrow.release(created.id))
      const calls = yield* test.calls
      expect(calls.map((c) => [c.op, c.outcome._tag])).toEqual([
        ["create", "Success"],
        ["release", "Success"],
        ["get", "Success"],
        ["cancel", "Success"],
        ["release", "Failure"]
      ])
      expect(calls[0]!.args).toEqual([terms])
      expect(calls[1]!.args).toEqual([created.id, { amount: u("4") }])
      expect(calls[4]!.outcome).toEqual({ _tag: "Failure", error: "EscrowNotPending" })
      const last = calls[3]!.outcome
      expect(last._tag === "Success" && last.escrow.status).toBe("cancelled")
    })).pipe(Effect.provide(EscrowTest.layer()))
  )

  it.effect("failNext makes the next call of that op fail, once, and change nothing", () =>
    verified(Effect.gen(function*() {
      const test = yield* EscrowTest
      const escrow = yield* Escrow
      const { terms, all } = yield* setup
      const before = yield* all
      yield* test.failNext("create", new InsufficientFunds({ wallet: terms.payer, requiredMicros: 1n, availableMicros: 0n }))
      const error = yield* Effect.flip(escrow.create(terms))
      expect(error._tag).toBe("InsufficientFunds")
      expect(yield* all).toEqual(before)
      // only once
      const created = yield* escrow.create(terms)
      yield* test.failNext("release", new LedgerUnavailable({ message: "disk full" }))
      yield* test.failNext("cancel", new EscrowNotFound({ escrowId: created.id }))
      const afterCreate = yield* all
      expect(yield* Effect.flip(escrow.release(created.id))).toMatchObject({ _tag: "LedgerUnavailable", message: "disk full" })
      expect(yield* Effect.flip(escrow.cancel(created.id))).toMatchObject({ _tag: "EscrowNotFound" })
      expect(yield* all).toEqual(afterCreate)
      expect((yield* escrow.get(created.id)).status).toBe("pending")
      yield* escrow.release(created.id)
      expect((yield* test.ledger.balance(terms.payee)).available).toBe(u("9.9"))
      expect((yield* test.calls).map((c) => c.outcome._tag)).toEqual(["Failure", "Success", "Failure", "Failure", "Success", "Success"])
    })).pipe(Effect.provide(EscrowTest.layer()))
  )

  it.effect("failNext queues failures in order: several per op, `times` repeating one", () =>
    verified(Effect.gen(function*() {
      const test = yield* EscrowTest
      const escrow = yield* Escrow
      const { terms, all } = yield* setup
      const created = yield* escrow.create(terms)
      yield* test.failNext("release", new LedgerUnavailable({ message: "first" }))
      yield* test.failNext("release", new LedgerUnavailable({ message: "again" }), { times: 2 })
      const before = yield* all
      const messages: Array<string> = []
      for (let i = 0; i < 3; i++) messages.push((yield* Effect.flip(escrow.release(created.id))).message)
      expect(messages).toEqual(["first", "again", "again"])
      expect(yield* all).toEqual(before)
      // The queue is per op: a cancel was never scripted to fail, and the fourth release runs.
      yield* escrow.release(created.id)
      expect((yield* test.ledger.balance(terms.payee)).available).toBe(u("9.9"))
    })).pipe(Effect.provide(EscrowTest.layer()))
  )

  it.effect("failNext refuses a count that is not 1..1,000, and a queue past 1,000", () =>
    Effect.gen(function*() {
      const test = yield* EscrowTest
      const down = new LedgerUnavailable({ message: "down" })
      for (const times of [0, -1, 1.5, 1_001]) {
        expect(yield* Effect.flip(test.failNext("create", down, { times }))).toMatchObject({ _tag: "InvalidInput", field: "times" })
      }
      yield* test.failNext("create", down, { times: 1_000 })
      const full = yield* Effect.flip(test.failNext("create", down))
      expect(full.message).toMatch(/1000 failures of create are queued already/)
    }).pipe(Effect.provide(EscrowTest.layer()))
  )

  it.effect("with three failed releases and the default retry, Escrow.use settles under the TestClock without waiting", () =>
    verified(Effect.gen(function*() {
      const test = yield* EscrowTest
      const { terms, ledger } = yield* setup
      yield* test.failNext("release", new LedgerUnavailable({ message: "restarting" }), { times: 3 })
      yield* Escrow.use(terms, () => Effect.void)
      expect((yield* test.calls).map((c) => `${c.op}:${c.outcome._tag}`)).toEqual([
        "create:Success",
        "release:Failure",
        "release:Failure",
        "release:Failure",
        "release:Success"
      ])
      expect((yield* ledger.balance(terms.payee)).available).toBe(u("9.9"))
      expect(yield* (yield* Escrow).unsettled).toEqual([])
    })).pipe(Effect.provide(EscrowTest.layer()))
  )

  it.effect("failNext on release inside Escrow.scoped: the finalizer's retry settles it", () =>
    verified(Effect.gen(function*() {
      const test = yield* EscrowTest
      const { terms, ledger } = yield* setup
      yield* test.failNext("release", new LedgerUnavailable({ message: "blip" }))
      yield* Escrow.use(terms, () => Effect.void, { settlementRetry: Schedule.recurs(1) })
      expect((yield* test.calls).map((c) => [c.op, c.outcome._tag])).toEqual([
        ["create", "Success"],
        ["release", "Failure"],
        ["release", "Success"]
      ])
      expect((yield* ledger.balance(terms.payee)).available).toBe(u("9.9"))
      expect(yield* (yield* Escrow).unsettled).toEqual([])
    })).pipe(Effect.provide(EscrowTest.layer()))
  )

  it.effect("failNext on release with no retries: recorded as unsettled, funds stay locked", () =>
    verified(Effect.gen(function*() {
      const test = yield* EscrowTest
      const { terms, ledger } = yield* setup
      yield* test.failNext("release", new LedgerUnavailable({ message: "down" }))
      let id: EscrowId | undefined
      yield* Escrow.use(terms, (held) => Effect.sync(() => (id = held.id)), { settlementRetry: Schedule.recurs(0) })
      expect(yield* (yield* Escrow).unsettled).toMatchObject([{ escrowId: id, intent: "release", attempts: 1, error: "down" }])
      expect(yield* ledger.balance(terms.payer)).toMatchObject({ available: u("90"), locked: u("10") })
      expect(yield* ledger.systemBalance(SystemAccount.escrowHolding)).toBe(u("10"))
    })).pipe(Effect.provide(EscrowTest.layer()))
  )

  it.effect("reset clears the recorded calls and pending failures, not the ledger", () =>
    verified(Effect.gen(function*() {
      const test = yield* EscrowTest
      const escrow = yield* Escrow
      const { terms, ledger } = yield* setup
      yield* escrow.create(terms)
      yield* test.failNext("create", new LedgerUnavailable({ message: "x" }))
      yield* test.reset
      expect(yield* test.calls).toEqual([])
      yield* escrow.create(terms)
      expect((yield* ledger.balance(terms.payer)).locked).toBe(u("20"))
    })).pipe(Effect.provide(EscrowTest.layer()))
  )

  it.effect("takes ledger config: fee and referral tiers", () =>
    verified(Effect.gen(function*() {
      const escrow = yield* Escrow
      const { terms, ledger } = yield* setup
      const created = yield* escrow.create(terms)
      yield* escrow.release(created.id)
      expect((yield* ledger.balance(terms.payee)).available).toBe(u("9.5"))
      expect(yield* ledger.systemBalance(SystemAccount.platformFees)).toBe(u("0.5"))
    })).pipe(Effect.provide(EscrowTest.layer({ fees: { feePpm: 50_000, referralTiersPpm: [] } })))
  )
})
