/**
 * The Escrow contract: one behavioural suite every `Escrow` + `Ledger` layer must
 * pass. Each implementation is one line in the list handed to `escrowContract`:
 *
 *   escrowContract([
 *     ["EscrowTest", (config) => EscrowTest.layer(config)],
 *     ["SqlLedger (SQLite)", (config) => …],
 *   ])
 *
 * Every test asserts balances (payer available/locked, payee, both referrers,
 * platform fees, escrow holding), not just statuses, and ends with `ledger.verify`
 * reporting no violation. Time is the TestClock (`it.effect`), so expiry and the
 * faucet's day are driven by `TestClock.adjust`, never by sleeping.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Clock, Deferred, Duration, Effect, Exit, Fiber, type Layer, Ref, Schedule, type Scope, TestClock } from "effect"
import { LedgerUnavailable } from "../../src/domain/errors.js"
import type { AgentRecord, EscrowTerms } from "../../src/domain/Escrow.js"
import { type EscrowId, type MandateId, newWalletAddress, SystemAccount } from "../../src/domain/ids.js"
import * as Usdc from "../../src/domain/Usdc.js"
import { Escrow, type EscrowShape } from "../../src/escrow/Escrow.js"
import { reconcileUnsettled } from "../../src/escrow/settlement.js"
import * as ExpirySweeper from "../../src/ledger/ExpirySweeper.js"
import { Ledger, type LedgerConfigShape } from "../../src/ledger/Ledger.js"
import { snapshot } from "../ledger/support.js"

/** Builds a fresh Escrow + Ledger (empty state) for one test, with config overrides. */
export type LayerFactory = (config: Partial<LedgerConfigShape>) => Layer.Layer<Escrow | Ledger, unknown>
export type Implementation = readonly [name: string, make: LayerFactory]

type Env = Escrow | Ledger | Scope.Scope

const u = Usdc.make
const fmt = (micros: bigint) => Usdc.format(micros)

/** Runs a test body on a fresh layer and checks the ledger's invariants afterwards. */
const withLedger = (make: LayerFactory, config: Partial<LedgerConfigShape>) =>
<A, E>(body: Effect.Effect<A, E, Env>): Effect.Effect<void, unknown> =>
  Effect.gen(function*() {
    yield* body
    const report = yield* (yield* Ledger).verify
    expect(report.violations).toEqual([])
  }).pipe(Effect.scoped, Effect.provide(make(config)))

interface Parties {
  readonly payer: AgentRecord
  readonly payee: AgentRecord
  /** Referred the payer (absent when `referPayer: false`). */
  readonly payerRef: AgentRecord
  /** Referred the payee (absent when `referPayee: false`). */
  readonly payeeRef: AgentRecord
}

/**
 * Four agents: two referrers, a payer referred by the first and a payee referred
 * by the second (each referral optional), the payer funded with `fund`.
 */
const parties = (options: { fund?: string; referPayer?: boolean; referPayee?: boolean } = {}) =>
  Effect.gen(function*() {
    const ledger = yield* Ledger
    const payerRef = yield* ledger.registerAgent({ name: "payer-referrer" })
    const payeeRef = yield* ledger.registerAgent({ name: "payee-referrer" })
    const payer = yield* ledger.registerAgent({
      name: "payer",
      referralCode: options.referPayer === false ? undefined : payerRef.referralCode
    })
    const payee = yield* ledger.registerAgent({
      name: "payee",
      referralCode: options.referPayee === false ? undefined : payeeRef.referralCode
    })
    const fund = options.fund ?? "1000"
    if (u(fund) > 0n) yield* ledger.deposit(payer.wallet, u(fund))
    return { payer, payee, payerRef, payeeRef } satisfies Parties
  })

/** Every balance a test about these parties cares about, as 6-place strings (readable diffs). */
const view = (p: Parties) =>
  Effect.gen(function*() {
    const ledger = yield* Ledger
    const payer = yield* ledger.balance(p.payer.wallet)
    const payee = yield* ledger.balance(p.payee.wallet)
    return {
      payer: fmt(payer.available),
      payerLocked: fmt(payer.locked),
      payee: fmt(payee.available),
      payeeLocked: fmt(payee.locked),
      payerRef: fmt((yield* ledger.balance(p.payerRef.wallet)).available),
      payeeRef: fmt((yield* ledger.balance(p.payeeRef.wallet)).available),
      platform: fmt(yield* ledger.systemBalance(SystemAccount.platformFees)),
      holding: fmt(yield* ledger.systemBalance(SystemAccount.escrowHolding))
    }
  })

const zeroView = {
  payer: "0.000000",
  payerLocked: "0.000000",
  payee: "0.000000",
  payeeLocked: "0.000000",
  payerRef: "0.000000",
  payeeRef: "0.000000",
  platform: "0.000000",
  holding: "0.000000"
}

const terms = (p: Parties, amount: string, extra: Partial<EscrowTerms> = {}): EscrowTerms => ({
  payer: p.payer.wallet,
  payee: p.payee.wallet,
  amount: u(amount),
  description: "translate 10 pages",
  ...extra
})

/** All wallets of the parties plus every system account, with row counts. */
const everything = (p: Parties) =>
  Effect.flatMap(Ledger, (ledger) => snapshot(ledger, [p.payer.wallet, p.payee.wallet, p.payerRef.wallet, p.payeeRef.wallet]))

/** An Escrow whose release fails (with LedgerUnavailable) the first `times` calls, then delegates. */
const flakyRelease = (base: EscrowShape, times: number) =>
  Effect.map(Ref.make(0), (calls): EscrowShape => ({
    ...base,
    release: (id, options) =>
      Effect.flatMap(Ref.getAndUpdate(calls, (n) => n + 1), (n) =>
        n < times ? Effect.fail(new LedgerUnavailable({ message: `injected failure ${n + 1}` })) : base.release(id, options))
  }))

export const escrowContract = (implementations: ReadonlyArray<Implementation>) => {
  for (const [name, make] of implementations) {
    const test = (config: Partial<LedgerConfigShape> = {}) => withLedger(make, config)

    describe(`Escrow contract: ${name}`, () => {
      describe("create", () => {
        it.effect("locks the payer's funds in escrow holding", () =>
          Effect.gen(function*() {
            const escrow = yield* Escrow
            const p = yield* parties({ fund: "100" })
            const created = yield* escrow.create(terms(p, "40"))
            expect(created).toMatchObject({
              payer: p.payer.wallet,
              payee: p.payee.wallet,
              amount: u("40"),
              released: 0n,
              refunded: 0n,
              feePaid: 0n,
              status: "pending",
              settledAtMs: null,
              version: 1
            })
            expect(created.expiresAtMs - created.createdAtMs).toBe(15 * 60_000)
            expect(yield* view(p)).toEqual({ ...zeroView, payer: "60.000000", payerLocked: "40.000000", holding: "40.000000" })
            expect(yield* escrow.get(created.id)).toEqual(created)
          }).pipe(test()))

        it.effect("honours a given timeout", () =>
          Effect.gen(function*() {
            const p = yield* parties({ fund: "10" })
            const created = yield* (yield* Escrow).create(terms(p, "1", { timeout: "90 seconds" }))
            expect(created.expiresAtMs - created.createdAtMs).toBe(90_000)
          }).pipe(test()))

        it.effect("insufficient funds → InsufficientFunds, nothing written", () =>
          Effect.gen(function*() {
            const escrow = yield* Escrow
            const p = yield* parties({ fund: "10" })
            const before = yield* everything(p)
            const error = yield* Effect.flip(escrow.create(terms(p, "10.000001")))
            expect(error).toMatchObject({
              _tag: "InsufficientFunds",
              wallet: p.payer.wallet,
              requiredMicros: 10_000_001n,
              availableMicros: 10_000_000n
            })
            expect(yield* everything(p)).toEqual(before)
            expect((yield* (yield* Ledger).listEscrows({ wallet: p.payer.wallet })).escrows).toEqual([])
            // exactly the balance is fine
            yield* escrow.create(terms(p, "10"))
            expect(yield* view(p)).toEqual({ ...zeroView, payerLocked: "10.000000", holding: "10.000000" })
          }).pipe(test()))

        it.effect("locked funds are not spendable twice", () =>
          Effect.gen(function*() {
            const escrow = yield* Escrow
            const p = yield* parties({ fund: "10" })
            yield* escrow.create(terms(p, "6"))
            const error = yield* Effect.flip(escrow.create(terms(p, "6")))
            expect(error).toMatchObject({ _tag: "InsufficientFunds", availableMicros: u("4"), requiredMicros: u("6") })
            expect(yield* view(p)).toEqual({ ...zeroView, payer: "4.000000", payerLocked: "6.000000", holding: "6.000000" })
          }).pipe(test()))

        it.effect("idempotency: same key and terms → the same escrow, locked once", () =>
          Effect.gen(function*() {
            const escrow = yield* Escrow
            const p = yield* parties({ fund: "100" })
            const first = yield* escrow.create(terms(p, "30", { idempotencyKey: "order-1" }))
            const second = yield* escrow.create(terms(p, "30", { idempotencyKey: "order-1" }))
            expect(second.id).toBe(first.id)
            expect(yield* view(p)).toEqual({ ...zeroView, payer: "70.000000", payerLocked: "30.000000", holding: "30.000000" })
            // a retry after settlement still answers with the escrow and moves nothing
            yield* escrow.release(first.id)
            const afterRelease = yield* view(p)
            const third = yield* escrow.create(terms(p, "30", { idempotencyKey: "order-1" }))
            expect(third).toMatchObject({ id: first.id, status: "released" })
            expect(yield* view(p)).toEqual(afterRelease)
          }).pipe(test()))

        it.effect("idempotency: same key, different request → IdempotencyConflict naming nothing of the first, nothing written", () =>
          Effect.gen(function*() {
            const escrow = yield* Escrow
            const p = yield* parties({ fund: "100" })
            const first = yield* escrow.create(terms(p, "30", { idempotencyKey: "order-1", metadata: { job: 1 }, timeout: "2 minutes" }))
            const before = yield* everything(p)
            const variants: ReadonlyArray<Partial<EscrowTerms>> = [
              { amount: u("31") },
              { description: "something else" },
              { payee: p.payeeRef.wallet },
              { metadata: { job: 2 } },
              { metadata: undefined },
              { timeout: "30 days" },
              { timeout: undefined }
            ]
            for (const variant of variants) {
              const error = yield* Effect.flip(
                escrow.create({ ...terms(p, "30", { idempotencyKey: "order-1", metadata: { job: 1 }, timeout: "2 minutes" }), ...variant })
              )
              expect(error).toMatchObject({ _tag: "IdempotencyConflict", idempotencyKey: "order-1" })
              expect(error).not.toHaveProperty("escrowId")
              expect(error.message).not.toContain(first.id)
            }
            expect(yield* everything(p)).toEqual(before)
            // the same request still gets its answer
            const again = yield* escrow.create(terms(p, "30", { idempotencyKey: "order-1", metadata: { job: 1 }, timeout: "2 minutes" }))
            expect(again.id).toBe(first.id)
            expect(yield* everything(p)).toEqual(before)
          }).pipe(test()))

        it.effect("idempotency under concurrency: one key, many identical creates at once → one escrow, locked once", () =>
          Effect.gen(function*() {
            const escrow = yield* Escrow
            const p = yield* parties({ fund: "100" })
            const created = yield* Effect.all(
              Array.from({ length: 12 }, () => escrow.create(terms(p, "30", { idempotencyKey: "burst" }))),
              { concurrency: "unbounded" }
            )
            expect(new Set(created.map((e) => e.id)).size).toBe(1)
            expect(yield* view(p)).toEqual({ ...zeroView, payer: "70.000000", payerLocked: "30.000000", holding: "30.000000" })
          }).pipe(test()))

        it.effect("idempotency keys are the caller's own: a payee under a mandate neither uses up nor collides with the payer's", () =>
          Effect.gen(function*() {
            const escrow = yield* Escrow
            const ledger = yield* Ledger
            const p = yield* parties({ fund: "100" })
            const mandate = yield* ledger.createMandate({ payer: p.payer.wallet, payee: p.payee.wallet, maxAmount: u("50"), budget: u("50") })
            // the payee goes first, with the key the payer is about to use
            const payees = yield* escrow.create(terms(p, "10", { idempotencyKey: "k", mandateId: mandate.id }))
            const payers = yield* escrow.create(terms(p, "30", { idempotencyKey: "k" }))
            expect(payers.id).not.toBe(payees.id)
            expect(payers).toMatchObject({ amount: u("30"), mandateId: null, idempotencyKey: "k" })
            expect(payees).toMatchObject({ amount: u("10"), mandateId: mandate.id, idempotencyKey: "k" })
            // each replay is answered within its own caller's keys
            expect((yield* escrow.create(terms(p, "30", { idempotencyKey: "k" }))).id).toBe(payers.id)
            expect((yield* escrow.create(terms(p, "10", { idempotencyKey: "k", mandateId: mandate.id }))).id).toBe(payees.id)
            expect(yield* view(p)).toEqual({ ...zeroView, payer: "60.000000", payerLocked: "40.000000", holding: "40.000000" })
          }).pipe(test()))

        it.effect("idempotency keys expire: the sweeper forgets them, and the key is then free for a new request", () =>
          Effect.gen(function*() {
            const escrow = yield* Escrow
            const ledger = yield* Ledger
            const p = yield* parties({ fund: "100" })
            const first = yield* escrow.create(terms(p, "10", { idempotencyKey: "k", timeout: "3 hours" }))
            yield* TestClock.adjust("59 minutes")
            expect(yield* ledger.forgetExpiredKeys()).toBe(0)
            const reused = yield* Effect.flip(escrow.create(terms(p, "20", { idempotencyKey: "k" })))
            expect(reused).toMatchObject({ _tag: "IdempotencyConflict", idempotencyKey: "k" })
            yield* TestClock.adjust("1 minute")
            // past its lifetime the key answers for nothing, swept or not
            const second = yield* escrow.create(terms(p, "20", { idempotencyKey: "k", timeout: "3 hours" }))
            yield* escrow.create(terms(p, "1", { idempotencyKey: "j", timeout: "3 hours" }))
            expect(second.id).not.toBe(first.id)
            expect(yield* view(p)).toEqual({ ...zeroView, payer: "69.000000", payerLocked: "31.000000", holding: "31.000000" })
            expect((yield* escrow.create(terms(p, "20", { idempotencyKey: "k", timeout: "3 hours" }))).id).toBe(second.id)
            yield* TestClock.adjust("1 hour")
            expect(yield* ledger.forgetExpiredKeys(1)).toBe(1)
            // the sweeper forgets the expired key: nothing is left for a second pass
            expect(yield* ExpirySweeper.sweepOnce()).toEqual([])
            expect(yield* ledger.forgetExpiredKeys()).toBe(0)
            const third = yield* escrow.create(terms(p, "20", { idempotencyKey: "k", timeout: "3 hours" }))
            expect(third.id).not.toBe(second.id)
            expect(yield* view(p)).toEqual({ ...zeroView, payer: "49.000000", payerLocked: "51.000000", holding: "51.000000" })
          }).pipe(test({ idempotencyKeyTtl: Duration.hours(1) })))

        it.effect("idempotency keys are scoped to the payer", () =>
          Effect.gen(function*() {
            const escrow = yield* Escrow
            const ledger = yield* Ledger
            const p = yield* parties({ fund: "100" })
            yield* ledger.deposit(p.payerRef.wallet, u("100"))
            const a = yield* escrow.create(terms(p, "30", { idempotencyKey: "k" }))
            const b = yield* escrow.create({ ...terms(p, "30", { idempotencyKey: "k" }), payer: p.payerRef.wallet })
            expect(b.id).not.toBe(a.id)
            expect((yield* ledger.balance(p.payerRef.wallet)).locked).toBe(u("30"))
            expect((yield* ledger.balance(p.payer.wallet)).locked).toBe(u("30"))
            expect(yield* ledger.systemBalance(SystemAccount.escrowHolding)).toBe(u("60"))
          }).pipe(test()))
      })

      describe("release", () => {
        const cases = [
          { label: "both parties referred", referPayer: true, referPayee: true, payerRef: "1.500000", payeeRef: "1.500000", platform: "7.000000" },
          { label: "only the payee referred", referPayer: false, referPayee: true, payerRef: "0.000000", payeeRef: "1.500000", platform: "8.500000" },
          { label: "only the payer referred", referPayer: true, referPayee: false, payerRef: "1.500000", payeeRef: "0.000000", platform: "8.500000" },
          { label: "nobody referred", referPayer: false, referPayee: false, payerRef: "0.000000", payeeRef: "0.000000", platform: "10.000000" }
        ] as const
        for (const c of cases) {
          it.effect(`pays amount − 1% fee, 15% of the fee to each present referrer (${c.label})`, () =>
            Effect.gen(function*() {
              const escrow = yield* Escrow
              const p = yield* parties({ fund: "1000", referPayer: c.referPayer, referPayee: c.referPayee })
              const created = yield* escrow.create(terms(p, "1000"))
              const released = yield* escrow.release(created.id)
              expect(released).toMatchObject({
                status: "released",
                released: u("1000"),
                feePaid: u("10"),
                refunded: 0n,
                version: 2
              })
              expect(released.settledAtMs).not.toBeNull()
              expect(yield* view(p)).toEqual({
                ...zeroView,
                payee: "990.000000",
                payerRef: c.payerRef,
                payeeRef: c.payeeRef,
                platform: c.platform
              })
            }).pipe(test()))
        }

        it.effect("a payee who referred the payer collects the payer-side share too", () =>
          Effect.gen(function*() {
            const ledger = yield* Ledger
            const payee = yield* ledger.registerAgent({ name: "payee" })
            const payer = yield* ledger.registerAgent({ name: "payer", referralCode: payee.referralCode })
            yield* ledger.deposit(payer.wallet, u("1000"))
            const escrow = yield* Escrow
            const created = yield* escrow.create({ payer: payer.wallet, payee: payee.wallet, amount: u("1000"), description: "x" })
            yield* escrow.release(created.id)
            expect((yield* ledger.balance(payee.wallet)).available).toBe(u("991.5"))
            expect(yield* ledger.systemBalance(SystemAccount.platformFees)).toBe(u("8.5"))
            expect((yield* ledger.balance(payer.wallet)).available).toBe(0n)
          }).pipe(test()))

        it.effect("partial release: the fee applies to the part, the rest stays locked, a final release settles the remainder", () =>
          Effect.gen(function*() {
            const escrow = yield* Escrow
            const p = yield* parties({ fund: "1000" })
            const created = yield* escrow.create(terms(p, "1000"))
            const first = yield* escrow.release(created.id, { amount: u("300") })
            expect(first).toMatchObject({ status: "pending", released: u("300"), feePaid: u("3"), settledAtMs: null, version: 2 })
            expect(yield* view(p)).toEqual({
              ...zeroView,
              payerLocked: "700.000000",
              payee: "297.000000",
              payerRef: "0.450000",
              payeeRef: "0.450000",
              platform: "2.100000",
              holding: "700.000000"
            })
            yield* escrow.release(created.id, { amount: u("200") })
            const last = yield* escrow.release(created.id)
            expect(last).toMatchObject({ status: "released", released: u("1000"), feePaid: u("10"), refunded: 0n, version: 4 })
            expect(yield* view(p)).toEqual({
              ...zeroView,
              payee: "990.000000",
              payerRef: "1.500000",
              payeeRef: "1.500000",
              platform: "7.000000"
            })
          }).pipe(test()))

        it.effect("partial release then cancel: the remainder goes back to the payer, no fee on it", () =>
          Effect.gen(function*() {
            const escrow = yield* Escrow
            const p = yield* parties({ fund: "1000" })
            const created = yield* escrow.create(terms(p, "1000"))
            yield* escrow.release(created.id, { amount: u("300") })
            const cancelled = yield* escrow.cancel(created.id)
            expect(cancelled).toMatchObject({ status: "cancelled", released: u("300"), refunded: u("700"), feePaid: u("3") })
            expect(yield* view(p)).toEqual({
              ...zeroView,
              payer: "700.000000",
              payee: "297.000000",
              payerRef: "0.450000",
              payeeRef: "0.450000",
              platform: "2.100000"
            })
          }).pipe(test()))

        it.effect("a partial release of exactly what remains completes the escrow", () =>
          Effect.gen(function*() {
            const escrow = yield* Escrow
            const p = yield* parties({ fund: "10" })
            const created = yield* escrow.create(terms(p, "10"))
            yield* escrow.release(created.id, { amount: u("4") })
            const done = yield* escrow.release(created.id, { amount: u("6") })
            expect(done).toMatchObject({ status: "released", released: u("10"), feePaid: u("0.1") })
            expect(yield* view(p)).toMatchObject({ payee: "9.900000", payerLocked: "0.000000", holding: "0.000000" })
          }).pipe(test()))

        it.effect("releasing more than remains → ReleaseExceedsRemaining, nothing moves", () =>
          Effect.gen(function*() {
            const escrow = yield* Escrow
            const p = yield* parties({ fund: "10" })
            const created = yield* escrow.create(terms(p, "10"))
            yield* escrow.release(created.id, { amount: u("4") })
            const before = yield* everything(p)
            const error = yield* Effect.flip(escrow.release(created.id, { amount: u("6.000001") }))
            expect(error).toMatchObject({
              _tag: "ReleaseExceedsRemaining",
              escrowId: created.id,
              requestedMicros: 6_000_001n,
              remainingMicros: u("6")
            })
            expect(yield* everything(p)).toEqual(before)
          }).pipe(test()))

        it.effect("repeating a release of a released escrow returns the record and moves no money", () =>
          Effect.gen(function*() {
            const escrow = yield* Escrow
            const p = yield* parties({ fund: "100" })
            const created = yield* escrow.create(terms(p, "100"))
            const released = yield* escrow.release(created.id)
            const before = yield* everything(p)
            const again = yield* escrow.release(created.id)
            expect(again).toEqual(released)
            expect(yield* everything(p)).toEqual(before)
            // a partial amount on a released escrow is refused, naming the state
            const error = yield* Effect.flip(escrow.release(created.id, { amount: u("1") }))
            expect(error).toMatchObject({ _tag: "EscrowNotPending", escrowId: created.id, status: "released" })
            expect(yield* everything(p)).toEqual(before)
          }).pipe(test()))
      })

      describe("cancel", () => {
        it.effect("refunds in full, no fee", () =>
          Effect.gen(function*() {
            const escrow = yield* Escrow
            const p = yield* parties({ fund: "100" })
            const created = yield* escrow.create(terms(p, "100"))
            const cancelled = yield* escrow.cancel(created.id)
            expect(cancelled).toMatchObject({ status: "cancelled", refunded: u("100"), released: 0n, feePaid: 0n, version: 2 })
            expect(cancelled.settledAtMs).not.toBeNull()
            expect(yield* view(p)).toEqual({ ...zeroView, payer: "100.000000" })
          }).pipe(test()))

        it.effect("repeating a cancel returns the record and moves no money", () =>
          Effect.gen(function*() {
            const escrow = yield* Escrow
            const p = yield* parties({ fund: "100" })
            const created = yield* escrow.create(terms(p, "100"))
            const cancelled = yield* escrow.cancel(created.id)
            const before = yield* everything(p)
            expect(yield* escrow.cancel(created.id)).toEqual(cancelled)
            expect(yield* everything(p)).toEqual(before)
          }).pipe(test()))

        it.effect("release after cancel → EscrowNotPending naming the state, nothing moves", () =>
          Effect.gen(function*() {
            const escrow = yield* Escrow
            const p = yield* parties({ fund: "100" })
            const created = yield* escrow.create(terms(p, "100"))
            yield* escrow.cancel(created.id)
            const before = yield* everything(p)
            const error = yield* Effect.flip(escrow.release(created.id))
            expect(error).toMatchObject({ _tag: "EscrowNotPending", escrowId: created.id, status: "cancelled", attempted: "release" })
            expect(error.message).toContain("cancelled")
            expect(yield* everything(p)).toEqual(before)
            expect(yield* view(p)).toEqual({ ...zeroView, payer: "100.000000" })
          }).pipe(test()))

        it.effect("cancel after release → EscrowNotPending naming the state, nothing moves", () =>
          Effect.gen(function*() {
            const escrow = yield* Escrow
            const p = yield* parties({ fund: "100" })
            const created = yield* escrow.create(terms(p, "100"))
            yield* escrow.release(created.id)
            const before = yield* everything(p)
            const error = yield* Effect.flip(escrow.cancel(created.id))
            expect(error).toMatchObject({ _tag: "EscrowNotPending", escrowId: created.id, status: "released", attempted: "cancel" })
            expect(yield* everything(p)).toEqual(before)
          }).pipe(test()))
      })

      describe("expiry", () => {
        it.effect("a release at or after the deadline → EscrowExpired, the payer refunded in the same step, before any sweep", () =>
          Effect.gen(function*() {
            const escrow = yield* Escrow
            const ledger = yield* Ledger
            const p = yield* parties({ fund: "100" })
            const whole = yield* escrow.create(terms(p, "60", { timeout: "1 minute" }))
            const part = yield* escrow.create(terms(p, "30", { timeout: "1 minute" }))
            yield* escrow.release(part.id, { amount: u("10") })
            yield* TestClock.adjust("1 minute")
            const before = yield* view(p)
            expect(before).toMatchObject({ payer: "10.000000", payerLocked: "80.000000", payee: "9.900000" })
            const error = yield* Effect.flip(escrow.release(whole.id))
            expect(error).toMatchObject({ _tag: "EscrowExpired", escrowId: whole.id, expiresAtMs: whole.expiresAtMs })
            const partial = yield* Effect.flip(escrow.release(part.id, { amount: u("5") }))
            expect(partial).toMatchObject({ _tag: "EscrowExpired", escrowId: part.id, expiresAtMs: part.expiresAtMs })
            // nothing more to the payee; what was locked is the payer's again
            expect(yield* view(p)).toEqual({ ...before, payer: "90.000000", payerLocked: "0.000000", holding: "0.000000" })
            expect(yield* ledger.getEscrow(whole.id)).toMatchObject({ status: "expired", refunded: u("60"), released: 0n })
            expect(yield* ledger.getEscrow(part.id)).toMatchObject({ status: "expired", refunded: u("20"), released: u("10") })
            expect(yield* ledger.expireDue()).toEqual([])
            const again = yield* Effect.flip(escrow.release(whole.id))
            expect(again).toMatchObject({ _tag: "EscrowNotPending", status: "expired", attempted: "release" })
            expect(yield* view(p)).toEqual({ ...before, payer: "90.000000", payerLocked: "0.000000", holding: "0.000000" })
          }).pipe(test()))

        it.effect("expireDue refunds an escrow once its deadline passes, not before", () =>
          Effect.gen(function*() {
            const escrow = yield* Escrow
            const ledger = yield* Ledger
            const p = yield* parties({ fund: "100" })
            const created = yield* escrow.create(terms(p, "60", { timeout: "1 minute" }))
            yield* TestClock.adjust("59 seconds")
            expect(yield* ledger.expireDue()).toEqual([])
            expect(yield* view(p)).toMatchObject({ payer: "40.000000", payerLocked: "60.000000", holding: "60.000000" })
            yield* TestClock.adjust("1 second")
            const expired = yield* ledger.expireDue()
            expect(expired.map((e) => [e.id, e.status, e.refunded])).toEqual([[created.id, "expired", u("60")]])
            expect(yield* view(p)).toEqual({ ...zeroView, payer: "100.000000" })
            expect(yield* ledger.expireDue()).toEqual([])
            // an expired escrow can be neither released nor cancelled
            const release = yield* Effect.flip(escrow.release(created.id))
            expect(release).toMatchObject({ _tag: "EscrowNotPending", status: "expired", attempted: "release" })
            const cancel = yield* Effect.flip(escrow.cancel(created.id))
            expect(cancel).toMatchObject({ _tag: "EscrowNotPending", status: "expired", attempted: "cancel" })
            expect(yield* view(p)).toEqual({ ...zeroView, payer: "100.000000" })
          }).pipe(test()))

        it.effect("the default timeout comes from the config; a partial release expires with only the remainder refunded", () =>
          Effect.gen(function*() {
            const escrow = yield* Escrow
            const ledger = yield* Ledger
            const p = yield* parties({ fund: "1000" })
            const created = yield* escrow.create(terms(p, "1000"))
            yield* escrow.release(created.id, { amount: u("100") })
            yield* TestClock.adjust("4 minutes")
            expect(yield* ledger.expireDue()).toEqual([])
            yield* TestClock.adjust("1 minute")
            const [expired] = yield* ledger.expireDue()
            expect(expired).toMatchObject({ id: created.id, status: "expired", released: u("100"), refunded: u("900") })
            expect(yield* view(p)).toEqual({
              ...zeroView,
              payer: "900.000000",
              payee: "99.000000",
              payerRef: "0.150000",
              payeeRef: "0.150000",
              platform: "0.700000"
            })
          }).pipe(test({ defaultEscrowTimeout: Duration.minutes(5) })))

        it.effect("expireDue honours its limit, earliest deadline first", () =>
          Effect.gen(function*() {
            const escrow = yield* Escrow
            const ledger = yield* Ledger
            const p = yield* parties({ fund: "100" })
            const late = yield* escrow.create(terms(p, "1", { timeout: "3 minutes" }))
            const early = yield* escrow.create(terms(p, "2", { timeout: "1 minute" }))
            const middle = yield* escrow.create(terms(p, "3", { timeout: "2 minutes" }))
            yield* TestClock.adjust("10 minutes")
            expect((yield* ledger.expireDue(2)).map((e) => e.id)).toEqual([early.id, middle.id])
            expect(yield* view(p)).toMatchObject({ payer: "99.000000", payerLocked: "1.000000", holding: "1.000000" })
            expect((yield* ledger.expireDue(2)).map((e) => e.id)).toEqual([late.id])
            expect(yield* view(p)).toEqual({ ...zeroView, payer: "100.000000" })
          }).pipe(test()))
      })

      describe("mandates", () => {
        const mandateSetup = (budget: string, maxAmount: string, expiresAtMs?: number) =>
          Effect.gen(function*() {
            const p = yield* parties({ fund: "100" })
            const mandate = yield* (yield* Ledger).createMandate({
              payer: p.payer.wallet,
              payee: p.payee.wallet,
              maxAmount: u(maxAmount),
              budget: u(budget),
              expiresAtMs
            })
            expect(mandate).toMatchObject({ remaining: u(budget), budget: u(budget), maxAmount: u(maxAmount), revoked: false })
            return { p, mandate }
          })
        const under = (p: Parties, mandateId: MandateId, amount: string) => terms(p, amount, { mandateId })

        it.effect("a create under a mandate decrements its budget; exceeding it → MandateExceeded with nothing locked", () =>
          Effect.gen(function*() {
            const escrow = yield* Escrow
            const ledger = yield* Ledger
            const { p, mandate } = yield* mandateSetup("25", "10")
            yield* escrow.create(under(p, mandate.id, "10"))
            yield* escrow.create(under(p, mandate.id, "10"))
            expect((yield* ledger.getMandate(mandate.id)).remaining).toBe(u("5"))
            const before = yield* everything(p)
            const overBudget = yield* Effect.flip(escrow.create(under(p, mandate.id, "6")))
            expect(overBudget).toMatchObject({ _tag: "MandateExceeded", mandateId: mandate.id })
            expect(overBudget.message).toMatch(/remaining budget/)
            const overMax = yield* Effect.flip(escrow.create(under(p, mandate.id, "10.000001")))
            expect(overMax).toMatchObject({ _tag: "MandateExceeded", mandateId: mandate.id })
            expect(overMax.message).toMatch(/per-escrow maximum/)
            expect(yield* everything(p)).toEqual(before)
            expect((yield* ledger.getMandate(mandate.id)).remaining).toBe(u("5"))
            yield* escrow.create(under(p, mandate.id, "5"))
            expect((yield* ledger.getMandate(mandate.id)).remaining).toBe(0n)
            expect(yield* view(p)).toMatchObject({ payer: "75.000000", payerLocked: "25.000000", holding: "25.000000" })
          }).pipe(test()))

        it.effect("the budget holds under concurrent creates", () =>
          Effect.gen(function*() {
            const escrow = yield* Escrow
            const ledger = yield* Ledger
            const { p, mandate } = yield* mandateSetup("25", "10")
            const results = yield* Effect.all(
              Array.from({ length: 20 }, () => Effect.either(escrow.create(under(p, mandate.id, "10")))),
              { concurrency: "unbounded" }
            )
            const ok = results.filter((r) => r._tag === "Right")
            expect(ok).toHaveLength(2)
            for (const r of results) if (r._tag === "Left") expect(r.left._tag).toBe("MandateExceeded")
            expect((yield* ledger.getMandate(mandate.id)).remaining).toBe(u("5"))
            expect(yield* view(p)).toMatchObject({ payer: "80.000000", payerLocked: "20.000000", holding: "20.000000" })
          }).pipe(test()))

        it.effect("cancel and expiry return the unreleased part to the budget; a release consumes it", () =>
          Effect.gen(function*() {
            const escrow = yield* Escrow
            const ledger = yield* Ledger
            const { p, mandate } = yield* mandateSetup("30", "10")
            const a = yield* escrow.create(under(p, mandate.id, "10"))
            const b = yield* escrow.create({ ...under(p, mandate.id, "10"), timeout: "1 minute" })
            const c = yield* escrow.create(under(p, mandate.id, "10"))
            expect((yield* ledger.getMandate(mandate.id)).remaining).toBe(0n)
            yield* escrow.release(a.id, { amount: u("4") })
            yield* escrow.cancel(a.id)
            expect((yield* ledger.getMandate(mandate.id)).remaining).toBe(u("6"))
            yield* TestClock.adjust("1 minute")
            expect((yield* ledger.expireDue()).map((e) => e.id)).toEqual([b.id])
            expect((yield* ledger.getMandate(mandate.id)).remaining).toBe(u("16"))
            yield* escrow.release(c.id)
            expect((yield* ledger.getMandate(mandate.id)).remaining).toBe(u("16"))
            expect(yield* view(p)).toEqual({
              ...zeroView,
              payer: "86.000000",
              payee: "13.860000",
              payerRef: "0.021000",
              payeeRef: "0.021000",
              platform: "0.098000"
            })
          }).pipe(test()))

        it.effect("a mandate's max_timeout_ms defaults to the ledger's escrow timeout and is bounded by its maximum", () =>
          Effect.gen(function*() {
            const ledger = yield* Ledger
            const p = yield* parties({ fund: "100" })
            const grant = { payer: p.payer.wallet, payee: p.payee.wallet, maxAmount: u("10"), budget: u("30") }
            expect((yield* ledger.createMandate(grant)).maxTimeoutMs).toBe(300_000)
            expect((yield* ledger.createMandate({ ...grant, maxTimeoutMs: 86_400_000 })).maxTimeoutMs).toBe(86_400_000)
            for (const maxTimeoutMs of [0, 86_400_001, 1.5]) {
              const error = yield* Effect.flip(ledger.createMandate({ ...grant, maxTimeoutMs }))
              expect(error).toMatchObject({ _tag: "InvalidInput", field: "max_timeout_ms" })
            }
          }).pipe(test({ defaultEscrowTimeout: Duration.minutes(5), maxEscrowTimeout: Duration.days(1) })))

        it.effect("an escrow under a mandate outlives neither its max_timeout_ms nor the mandate; a refusal moves nothing", () =>
          Effect.gen(function*() {
            const escrow = yield* Escrow
            const ledger = yield* Ledger
            const p = yield* parties({ fund: "100" })
            const mandate = yield* ledger.createMandate({
              payer: p.payer.wallet,
              payee: p.payee.wallet,
              maxAmount: u("10"),
              budget: u("30"),
              maxTimeoutMs: 600_000,
              expiresAtMs: (yield* Clock.currentTimeMillis) + 3_600_000
            })
            const before = yield* everything(p)
            const tooLong = yield* Effect.flip(escrow.create({ ...under(p, mandate.id, "5"), timeout: "30 days" }))
            expect(tooLong).toMatchObject({ _tag: "InvalidInput", field: "timeout_ms" })
            expect(tooLong.message).toContain(`600000 ms max_timeout_ms of mandate ${mandate.id}`)
            expect(yield* everything(p)).toEqual(before)
            const bounded = yield* escrow.create({ ...under(p, mandate.id, "5"), timeout: "10 minutes" })
            expect(bounded.expiresAtMs - bounded.createdAtMs).toBe(600_000)
            // without a timeout, the ledger's default (15 minutes) is shortened to fit
            const defaulted = yield* escrow.create(under(p, mandate.id, "5"))
            expect(defaulted.expiresAtMs - defaulted.createdAtMs).toBe(600_000)
            yield* TestClock.adjust("55 minutes")
            // the mandate ends in 5 minutes: no escrow under it may end later
            const beforeLate = yield* everything(p)
            const outlives = yield* Effect.flip(escrow.create({ ...under(p, mandate.id, "5"), timeout: "6 minutes" }))
            expect(outlives).toMatchObject({ _tag: "InvalidInput", field: "timeout_ms" })
            expect(outlives.message).toMatch(/outlive/)
            expect(yield* everything(p)).toEqual(beforeLate)
            const clamped = yield* escrow.create(under(p, mandate.id, "5"))
            expect(clamped.expiresAtMs).toBe(mandate.expiresAtMs)
          }).pipe(test()))

        it.effect("after a revocation, an escrow opened under the mandate keeps its bounded deadline: the sweeper refunds the payer then", () =>
          Effect.gen(function*() {
            const escrow = yield* Escrow
            const ledger = yield* Ledger
            const p = yield* parties({ fund: "100" })
            const mandate = yield* ledger.createMandate({
              payer: p.payer.wallet,
              payee: p.payee.wallet,
              maxAmount: u("10"),
              budget: u("30"),
              maxTimeoutMs: 600_000
            })
            // the payee cannot make the payer wait 30 days
            const before = yield* everything(p)
            expect(yield* Effect.flip(escrow.create({ ...under(p, mandate.id, "10"), timeout: "30 days" }))).toMatchObject({
              _tag: "InvalidInput",
              field: "timeout_ms"
            })
            expect(yield* everything(p)).toEqual(before)
            const opened = yield* escrow.create(under(p, mandate.id, "10"))
            yield* ledger.revokeMandate(mandate.id, p.payer.wallet)
            expect(yield* view(p)).toEqual({ ...zeroView, payer: "90.000000", payerLocked: "10.000000", holding: "10.000000" })
            yield* TestClock.adjust("9 minutes")
            expect(yield* ExpirySweeper.sweepOnce()).toEqual([])
            expect(yield* view(p)).toEqual({ ...zeroView, payer: "90.000000", payerLocked: "10.000000", holding: "10.000000" })
            yield* TestClock.adjust("1 minute")
            const swept = yield* ExpirySweeper.sweepOnce()
            expect(swept.map((e) => [e.id, e.status, e.refunded])).toEqual([[opened.id, "expired", u("10")]])
            expect(yield* view(p)).toEqual({ ...zeroView, payer: "100.000000" })
            const late = yield* Effect.flip(escrow.release(opened.id))
            expect(late).toMatchObject({ _tag: "EscrowNotPending", status: "expired" })
            expect(yield* view(p)).toEqual({ ...zeroView, payer: "100.000000" })
          }).pipe(test()))

        it.effect("a revoked mandate refuses; only its payer may revoke", () =>
          Effect.gen(function*() {
            const escrow = yield* Escrow
            const ledger = yield* Ledger
            const { p, mandate } = yield* mandateSetup("30", "10")
            const notYours = yield* Effect.flip(ledger.revokeMandate(mandate.id, p.payee.wallet))
            expect(notYours).toMatchObject({ _tag: "MandateNotFound", mandateId: mandate.id })
            expect(yield* ledger.findLiveMandate(p.payer.wallet, p.payee.wallet)).toMatchObject({ id: mandate.id })
            const revoked = yield* ledger.revokeMandate(mandate.id, p.payer.wallet)
            expect(revoked.revoked).toBe(true)
            expect(yield* ledger.findLiveMandate(p.payer.wallet, p.payee.wallet)).toBeNull()
            const before = yield* everything(p)
            const error = yield* Effect.flip(escrow.create(under(p, mandate.id, "1")))
            expect(error).toMatchObject({ _tag: "MandateExceeded", mandateId: mandate.id })
            expect(error.message).toMatch(/revoked/)
            expect(yield* everything(p)).toEqual(before)
            expect(yield* view(p)).toEqual({ ...zeroView, payer: "100.000000" })
          }).pipe(test()))

        it.effect("an expired mandate refuses", () =>
          Effect.gen(function*() {
            const escrow = yield* Escrow
            const ledger = yield* Ledger
            const { p, mandate } = yield* mandateSetup("30", "10", 60_000)
            yield* escrow.create(under(p, mandate.id, "1"))
            yield* TestClock.adjust("1 minute")
            expect(yield* ledger.findLiveMandate(p.payer.wallet, p.payee.wallet)).toBeNull()
            const before = yield* everything(p)
            const error = yield* Effect.flip(escrow.create(under(p, mandate.id, "1")))
            expect(error).toMatchObject({ _tag: "MandateExceeded", mandateId: mandate.id })
            expect(error.message).toMatch(/expired/)
            expect(yield* everything(p)).toEqual(before)
          }).pipe(test()))

        it.effect("a mandate covers only its payer and payee; an unknown mandate → MandateNotFound", () =>
          Effect.gen(function*() {
            const escrow = yield* Escrow
            const { p, mandate } = yield* mandateSetup("30", "10")
            const before = yield* everything(p)
            const wrongPayee = yield* Effect.flip(escrow.create({ ...under(p, mandate.id, "1"), payee: p.payeeRef.wallet }))
            expect(wrongPayee).toMatchObject({ _tag: "MandateExceeded", mandateId: mandate.id })
            const unknown = "mdt_0000000000000000000000000000" as MandateId
            const missing = yield* Effect.flip(escrow.create(under(p, unknown, "1")))
            expect(missing).toMatchObject({ _tag: "MandateNotFound", mandateId: unknown })
            expect(yield* everything(p)).toEqual(before)
          }).pipe(test()))
      })

      describe("faucet", () => {
        it.effect("pays 1 USDC once per wallet from the treasury", () =>
          Effect.gen(function*() {
            const ledger = yield* Ledger
            const agent = yield* ledger.registerAgent({ name: "newcomer" })
            const treasury = yield* ledger.systemBalance(SystemAccount.faucetTreasury)
            const claim = yield* ledger.claimFaucet({ wallet: agent.wallet, agentName: "newcomer" })
            expect(claim).toMatchObject({ wallet: agent.wallet, credited: u("1"), balance: u("1") })
            expect((yield* ledger.balance(agent.wallet)).available).toBe(u("1"))
            expect(yield* ledger.systemBalance(SystemAccount.faucetTreasury)).toBe(treasury - u("1"))
            const before = yield* snapshot(ledger, [agent.wallet])
            const again = yield* Effect.flip(ledger.claimFaucet({ wallet: agent.wallet, agentName: "newcomer" }))
            expect(again).toMatchObject({ _tag: "FaucetAlreadyClaimed", wallet: agent.wallet })
            expect(yield* snapshot(ledger, [agent.wallet])).toEqual(before)
          }).pipe(test()))

        it.effect("an unregistered wallet cannot claim", () =>
          Effect.gen(function*() {
            const ledger = yield* Ledger
            const stranger = newWalletAddress()
            const before = yield* snapshot(ledger, [stranger])
            const error = yield* Effect.flip(ledger.claimFaucet({ wallet: stranger, agentName: "x" }))
            expect(error).toMatchObject({ _tag: "AgentNotFound", wallet: stranger })
            expect(yield* snapshot(ledger, [stranger])).toEqual(before)
          }).pipe(test()))

        it.effect("an empty treasury → FaucetTreasuryEmpty, nothing moves", () =>
          Effect.gen(function*() {
            const ledger = yield* Ledger
            expect(yield* ledger.systemBalance(SystemAccount.faucetTreasury)).toBe(u("1.5"))
            expect(yield* ledger.systemBalance(SystemAccount.external)).toBe(-u("1.5"))
            const a = yield* ledger.registerAgent({ name: "a" })
            const b = yield* ledger.registerAgent({ name: "b" })
            yield* ledger.claimFaucet({ wallet: a.wallet, agentName: "a" })
            const before = yield* snapshot(ledger, [a.wallet, b.wallet])
            const error = yield* Effect.flip(ledger.claimFaucet({ wallet: b.wallet, agentName: "b" }))
            expect(error).toMatchObject({ _tag: "FaucetTreasuryEmpty", requiredMicros: u("1"), availableMicros: u("0.5") })
            expect(yield* snapshot(ledger, [a.wallet, b.wallet])).toEqual(before)
            // the refused wallet has not used up its one claim
            expect(yield* ledger.systemBalance(SystemAccount.faucetTreasury)).toBe(u("0.5"))
          }).pipe(test({ faucetTreasuryInitial: u("1.5") })))

        it.effect("a daily cap across all wallets, reset the next UTC day", () =>
          Effect.gen(function*() {
            const ledger = yield* Ledger
            const agents: Array<AgentRecord> = []
            for (const name of ["a", "b", "c"]) agents.push(yield* ledger.registerAgent({ name }))
            const wallets = agents.map((a) => a.wallet)
            yield* ledger.claimFaucet({ wallet: wallets[0]!, agentName: "a" })
            yield* ledger.claimFaucet({ wallet: wallets[1]!, agentName: "b" })
            const before = yield* snapshot(ledger, wallets)
            const error = yield* Effect.flip(ledger.claimFaucet({ wallet: wallets[2]!, agentName: "c" }))
            expect(error).toMatchObject({ _tag: "FaucetDailyCapReached", cap: 2, day: "1970-01-01" })
            expect(yield* snapshot(ledger, wallets)).toEqual(before)
            yield* TestClock.adjust("1 day")
            const claim = yield* ledger.claimFaucet({ wallet: wallets[2]!, agentName: "c" })
            expect(claim.credited).toBe(u("0.25"))
            expect((yield* ledger.balance(wallets[2]!)).available).toBe(u("0.25"))
            expect(yield* ledger.systemBalance(SystemAccount.faucetTreasury)).toBe(u("100") - u("0.75"))
          }).pipe(test({ faucetDailyCap: 2, faucetClaimAmount: u("0.25"), faucetTreasuryInitial: u("100") })))
      })

      describe("referrals", () => {
        it.effect("an unknown code → ReferralCodeNotFound, nobody registered", () =>
          Effect.gen(function*() {
            const ledger = yield* Ledger
            const wallet = newWalletAddress()
            const error = yield* Effect.flip(
              ledger.registerAgent({ name: "x", wallet, referralCode: "ref_doesnotexist" as never })
            )
            expect(error).toMatchObject({ _tag: "ReferralCodeNotFound", referralCode: "ref_doesnotexist" })
            const missing = yield* Effect.flip(ledger.getAgent(wallet))
            expect(missing).toMatchObject({ _tag: "AgentNotFound", wallet })
          }).pipe(test()))

        it.effect("each agent gets its own code and remembers its referrer; a wallet registers once", () =>
          Effect.gen(function*() {
            const ledger = yield* Ledger
            const a = yield* ledger.registerAgent({ name: "a" })
            const b = yield* ledger.registerAgent({ name: "b", referralCode: a.referralCode })
            expect(a.referralCode).not.toBe(b.referralCode)
            expect(a.referrer).toBeNull()
            expect(b.referrer).toBe(a.wallet)
            expect(yield* ledger.getAgent(b.wallet)).toEqual(b)
            const again = yield* Effect.flip(ledger.registerAgent({ name: "b2", wallet: b.wallet }))
            expect(again).toMatchObject({ _tag: "WalletAlreadyRegistered", wallet: b.wallet })
          }).pipe(test()))

        it.effect("the report gives earnings per referred agent and per region (metadata.fly_region)", () =>
          Effect.gen(function*() {
            const ledger = yield* Ledger
            const escrow = yield* Escrow
            const r = yield* ledger.registerAgent({ name: "referrer" })
            const payer = yield* ledger.registerAgent({ name: "payer", referralCode: r.referralCode })
            const payee = yield* ledger.registerAgent({ name: "payee", referralCode: r.referralCode })
            const other = yield* ledger.registerAgent({ name: "other" })
            yield* ledger.deposit(payer.wallet, u("2000"))
            const pay = (amount: string, metadata?: Record<string, unknown>) =>
              Effect.flatMap(
                escrow.create({ payer: payer.wallet, payee: payee.wallet, amount: u(amount), description: "job", metadata }),
                (e) => escrow.release(e.id)
              )
            const lhr = yield* pay("1000", { fly_region: "lhr" })
            const iad = yield* pay("200", { fly_region: "iad" })
            const home = yield* pay("100")
            expect([lhr.region, iad.region, home.region]).toEqual(["lhr", "iad", "ams"])
            // a payment that involves none of r's referred agents
            yield* ledger.deposit(other.wallet, u("100"))
            const unrelated = yield* escrow.create({ payer: other.wallet, payee: payee.wallet, amount: u("100"), description: "x", metadata: { fly_region: "syd" } })
            yield* escrow.release(unrelated.id)

            // lhr: fee 10 → 1.5 per side; iad: fee 2 → 0.3 per side; ams: fee 1 → 0.15 per side; syd: payee side 0.15
            const report = yield* ledger.referrals(r.wallet)
            expect(report.agent.wallet).toBe(r.wallet)
            expect(fmt(report.earned)).toBe("4.050000")
            expect(Object.fromEntries(Object.entries(report.byRegion).map(([k, v]) => [k, fmt(v)]))).toEqual({
              lhr: "3.000000",
              iad: "0.600000",
              ams: "0.300000",
              syd: "0.150000"
            })
            const perAgent = Object.fromEntries(report.referred.map((x) => [x.agent.name, fmt(x.earned)]))
            expect(perAgent).toEqual({ payer: "1.950000", payee: "2.100000" })
            expect((yield* ledger.balance(r.wallet)).available).toBe(u("4.05"))
            const none = yield* ledger.referrals(other.wallet)
            expect(none).toMatchObject({ earned: 0n, referred: [], byRegion: {} })
            const unknown = yield* Effect.flip(ledger.referrals(newWalletAddress()))
            expect(unknown._tag).toBe("AgentNotFound")
          }).pipe(test({ region: "ams" })))

        it.effect("multi-level tiers [15%, 5%] pay the grandparent too", () =>
          Effect.gen(function*() {
            const ledger = yield* Ledger
            const escrow = yield* Escrow
            const grandparent = yield* ledger.registerAgent({ name: "grandparent" })
            const parent = yield* ledger.registerAgent({ name: "parent", referralCode: grandparent.referralCode })
            const payer = yield* ledger.registerAgent({ name: "payer", referralCode: parent.referralCode })
            const payee = yield* ledger.registerAgent({ name: "payee", referralCode: grandparent.referralCode })
            yield* ledger.deposit(payer.wallet, u("1000"))
            const created = yield* escrow.create({ payer: payer.wallet, payee: payee.wallet, amount: u("1000"), description: "x" })
            yield* escrow.release(created.id)
            // payer side: parent 15% (1.5), grandparent 5% (0.5); payee side: grandparent 15% (1.5), no level 2
            expect((yield* ledger.balance(parent.wallet)).available).toBe(u("1.5"))
            expect((yield* ledger.balance(grandparent.wallet)).available).toBe(u("2"))
            expect((yield* ledger.balance(payee.wallet)).available).toBe(u("990"))
            expect(yield* ledger.systemBalance(SystemAccount.platformFees)).toBe(u("6.5"))
            expect((yield* ledger.referrals(grandparent.wallet)).earned).toBe(u("2"))
            expect((yield* ledger.referrals(parent.wallet)).earned).toBe(u("1.5"))
          }).pipe(test({ fees: { feePpm: 10_000, referralTiersPpm: [150_000, 50_000] } })))
      })

      describe("audit trail", () => {
        it.effect("escrowHistory lists each transition with region and time", () =>
          Effect.gen(function*() {
            const ledger = yield* Ledger
            const escrow = yield* Escrow
            const p = yield* parties({ fund: "100" })
            const created = yield* escrow.create(terms(p, "100", { metadata: { fly_region: "fra" } }))
            yield* TestClock.adjust("5 seconds")
            yield* escrow.release(created.id, { amount: u("30") })
            yield* TestClock.adjust("5 seconds")
            yield* escrow.cancel(created.id)
            const history = yield* ledger.escrowHistory(created.id)
            const start = created.createdAtMs
            expect(history.map((h) => ({ ...h, atMs: h.atMs - start }))).toEqual([
              { escrowId: created.id, seq: 1, kind: "created", fromStatus: null, toStatus: "pending", amount: u("100"), region: "fra", atMs: 0 },
              { escrowId: created.id, seq: 2, kind: "partially_released", fromStatus: "pending", toStatus: "pending", amount: u("30"), region: "fra", atMs: 5_000 },
              { escrowId: created.id, seq: 3, kind: "cancelled", fromStatus: "pending", toStatus: "cancelled", amount: u("70"), region: "fra", atMs: 10_000 }
            ])
            // a refused call adds nothing to the trail
            yield* Effect.flip(escrow.release(created.id))
            expect(yield* ledger.escrowHistory(created.id)).toHaveLength(3)
            expect(yield* view(p)).toMatchObject({ payer: "70.000000", payee: "29.700000", holding: "0.000000" })
          }).pipe(test()))

        it.effect("release and expiry appear in the trail", () =>
          Effect.gen(function*() {
            const ledger = yield* Ledger
            const escrow = yield* Escrow
            const p = yield* parties({ fund: "100" })
            const a = yield* escrow.create(terms(p, "10"))
            const b = yield* escrow.create(terms(p, "10", { timeout: "1 minute" }))
            yield* escrow.release(a.id)
            yield* TestClock.adjust("1 minute")
            yield* ledger.expireDue()
            expect((yield* ledger.escrowHistory(a.id)).map((h) => [h.kind, h.toStatus, h.region])).toEqual([
              ["created", "pending", "local"],
              ["released", "released", "local"]
            ])
            const bHistory = yield* ledger.escrowHistory(b.id)
            expect(bHistory.map((h) => [h.kind, h.toStatus, h.amount])).toEqual([
              ["created", "pending", u("10")],
              ["expired", "expired", u("10")]
            ])
            expect(bHistory[1]!.atMs - bHistory[0]!.atMs).toBe(60_000)
          }).pipe(test()))
      })

      describe("Escrow.scoped", () => {
        const noRetry = { settlementRetry: Schedule.recurs(2) }

        it.effect("success → released", () =>
          Effect.gen(function*() {
            const p = yield* parties({ fund: "1000" })
            const result = yield* Escrow.use(terms(p, "1000"), (held) =>
              Effect.gen(function*() {
                expect((yield* held.get).status).toBe("pending")
                expect(yield* view(p)).toMatchObject({ payerLocked: "1000.000000", holding: "1000.000000" })
                return "done"
              }))
            expect(result).toBe("done")
            expect(yield* view(p)).toEqual({
              ...zeroView,
              payee: "990.000000",
              payerRef: "1.500000",
              payeeRef: "1.500000",
              platform: "7.000000"
            })
            expect(yield* (yield* Escrow).unsettled).toEqual([])
          }).pipe(test()))

        it.effect("failure → cancelled with a full refund, the error propagates", () =>
          Effect.gen(function*() {
            const p = yield* parties({ fund: "1000" })
            const ids = yield* Ref.make<Array<EscrowId>>([])
            const exit = yield* Effect.exit(
              Escrow.use(terms(p, "1000"), (held) => Effect.zipRight(Ref.update(ids, (a) => [...a, held.id]), Effect.fail("work failed" as const)))
            )
            expect(exit).toEqual(Exit.fail("work failed"))
            const [id] = yield* Ref.get(ids)
            expect((yield* (yield* Escrow).get(id!)).status).toBe("cancelled")
            expect(yield* view(p)).toEqual({ ...zeroView, payer: "1000.000000" })
          }).pipe(test()))

        it.effect("defect → cancelled with a full refund", () =>
          Effect.gen(function*() {
            const p = yield* parties({ fund: "1000" })
            const exit = yield* Effect.exit(Escrow.use(terms(p, "1000"), () => Effect.die(new Error("boom"))))
            expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
            expect(yield* view(p)).toEqual({ ...zeroView, payer: "1000.000000" })
            const [only] = (yield* (yield* Ledger).listEscrows({ wallet: p.payer.wallet })).escrows
            expect(only).toMatchObject({ status: "cancelled", refunded: u("1000") })
          }).pipe(test()))

        it.effect("interruption → cancelled with a full refund", () =>
          Effect.gen(function*() {
            const p = yield* parties({ fund: "1000" })
            const started = yield* Deferred.make<EscrowId>()
            const fiber = yield* Effect.fork(
              Escrow.use(terms(p, "1000"), (held) => Effect.zipRight(Deferred.succeed(started, held.id), Effect.never))
            )
            const id = yield* Deferred.await(started)
            expect(yield* view(p)).toMatchObject({ payerLocked: "1000.000000" })
            yield* Fiber.interrupt(fiber)
            expect((yield* (yield* Escrow).get(id)).status).toBe("cancelled")
            expect(yield* view(p)).toEqual({ ...zeroView, payer: "1000.000000" })
          }).pipe(test()))

        it.effect("a partial release inside the scope, then failure: the rest is refunded", () =>
          Effect.gen(function*() {
            const p = yield* parties({ fund: "1000" })
            yield* Effect.exit(
              Escrow.use(terms(p, "1000"), (held) => Effect.zipRight(held.release(u("100")), Effect.fail("second batch failed")))
            )
            expect(yield* view(p)).toEqual({
              ...zeroView,
              payer: "900.000000",
              payee: "99.000000",
              payerRef: "0.150000",
              payeeRef: "0.150000",
              platform: "0.700000"
            })
          }).pipe(test()))

        it.effect("usage pricing: pay what was used, then success releases the remainder", () =>
          Effect.gen(function*() {
            const p = yield* parties({ fund: "1000" })
            yield* Escrow.use(terms(p, "1000"), (held) =>
              Effect.gen(function*() {
                yield* held.release(u("250"))
                yield* held.release(u("250"))
              }))
            expect(yield* view(p)).toEqual({
              ...zeroView,
              payee: "990.000000",
              payerRef: "1.500000",
              payeeRef: "1.500000",
              platform: "7.000000"
            })
          }).pipe(test()))

        it.effect("settled early inside the scope: the finalizer moves nothing and records nothing", () =>
          Effect.gen(function*() {
            const escrow = yield* Escrow
            const p = yield* parties({ fund: "1000" })
            // cancelled early, scope succeeds: stays cancelled
            yield* Escrow.use(terms(p, "400"), (held) => held.cancel)
            // released early, scope fails: stays released (the payee was paid)
            yield* Effect.exit(Escrow.use(terms(p, "100"), (held) => Effect.zipRight(held.release(), Effect.fail("late"))))
            expect(yield* view(p)).toEqual({
              ...zeroView,
              payer: "900.000000",
              payee: "99.000000",
              payerRef: "0.150000",
              payeeRef: "0.150000",
              platform: "0.700000"
            })
            expect(yield* escrow.unsettled).toEqual([])
          }).pipe(test()))

        it.effect("a settlement that keeps failing is recorded in `unsettled`, not dropped; expiry still refunds", () =>
          Effect.gen(function*() {
            const base = yield* Escrow
            const ledger = yield* Ledger
            const p = yield* parties({ fund: "1000" })
            const failing = yield* flakyRelease(base, Number.MAX_SAFE_INTEGER)
            const ids = yield* Ref.make<Array<EscrowId>>([])
            yield* Escrow.use(terms(p, "1000", { timeout: "1 minute" }), (held) => Ref.update(ids, (a) => [...a, held.id]), noRetry).pipe(
              Effect.provideService(Escrow, failing)
            )
            const [id] = yield* Ref.get(ids)
            const unsettled = yield* base.unsettled
            expect(unsettled).toHaveLength(1)
            expect(unsettled[0]).toMatchObject({ escrowId: id, intent: "release", attempts: 3 })
            expect(unsettled[0]!.error).toContain("injected failure")
            // nothing moved: still locked, waiting for reconciliation or expiry
            expect(yield* view(p)).toEqual({ ...zeroView, payerLocked: "1000.000000", holding: "1000.000000" })
            // a reconciler can settle it and clear the entry
            yield* base.release(id!)
            yield* base.markSettled(id!)
            expect(yield* base.unsettled).toEqual([])
            expect(yield* view(p)).toMatchObject({ payee: "990.000000", holding: "0.000000" })
            // and if nobody reconciles, the deadline refunds
            const failingAgain = yield* flakyRelease(base, Number.MAX_SAFE_INTEGER)
            yield* ledger.deposit(p.payer.wallet, u("50"))
            yield* Escrow.use(terms(p, "50", { timeout: "1 minute" }), () => Effect.void, noRetry).pipe(
              Effect.provideService(Escrow, failingAgain)
            )
            expect(yield* base.unsettled).toHaveLength(1)
            expect(yield* view(p)).toMatchObject({ payer: "0.000000", payerLocked: "50.000000" })
            yield* TestClock.adjust("1 minute")
            expect(yield* ledger.expireDue()).toHaveLength(1)
            expect(yield* view(p)).toMatchObject({ payer: "50.000000", payerLocked: "0.000000", holding: "0.000000" })
          }).pipe(test()))

        it.effect("the default retry schedule rides out transient failures (TestClock drives the backoff)", () =>
          Effect.gen(function*() {
            const base = yield* Escrow
            const p = yield* parties({ fund: "1000" })
            const flaky = yield* flakyRelease(base, 3)
            const fiber = yield* Effect.fork(
              Escrow.use(terms(p, "1000"), () => Effect.void).pipe(Effect.provideService(Escrow, flaky))
            )
            yield* TestClock.adjust("1 minute")
            yield* Fiber.join(fiber)
            expect(yield* base.unsettled).toEqual([])
            expect(yield* view(p)).toMatchObject({ payee: "990.000000", payerLocked: "0.000000", holding: "0.000000" })
          }).pipe(test()))

        it.effect("a scope that outlives its deadline: the payer is refunded, nothing is paid twice", () =>
          Effect.gen(function*() {
            const ledger = yield* Ledger
            const p = yield* parties({ fund: "100" })
            yield* Escrow.use(terms(p, "100", { timeout: "1 minute" }), () =>
              Effect.gen(function*() {
                yield* TestClock.adjust("1 minute")
                expect(yield* ledger.expireDue()).toHaveLength(1)
              }), noRetry)
            expect(yield* view(p)).toEqual({ ...zeroView, payer: "100.000000" })
          }).pipe(test()))

        // The work succeeded but the deadline refunded the payer first: the finalizer's
        // release meets `EscrowNotPending(expired)`, a payment the payee is owed, so it
        // must be recorded for reconciliation rather than dropped.
        it.effect("a successful scope whose escrow expired first records the missed release in `unsettled`", () =>
          Effect.gen(function*() {
            const ledger = yield* Ledger
            const escrow = yield* Escrow
            const p = yield* parties({ fund: "100" })
            yield* Escrow.use(terms(p, "100", { timeout: "1 minute" }), () =>
              Effect.gen(function*() {
                yield* TestClock.adjust("1 minute")
                yield* ledger.expireDue()
              }), noRetry)
            expect(yield* escrow.unsettled).toMatchObject([{ intent: "release" }])
          }).pipe(test()))

        it.effect("a successful scope past its deadline, before any sweep: the release is refused once, not retried; the payer keeps the money", () =>
          Effect.gen(function*() {
            const base = yield* Escrow
            const p = yield* parties({ fund: "100" })
            let releases = 0
            const counting: EscrowShape = {
              ...base,
              release: (id, options) => Effect.suspend(() => (releases++, base.release(id, options)))
            }
            // The default retry schedule: a retried release would wait on the TestClock, never adjusted here.
            const created = yield* Escrow.use(terms(p, "100", { timeout: "1 minute" }), (held) =>
              Effect.as(TestClock.adjust("1 minute"), held.created)).pipe(Effect.provideService(Escrow, counting))
            expect(releases).toBe(1)
            expect(yield* view(p)).toEqual({ ...zeroView, payer: "100.000000" })
            expect(yield* base.unsettled).toMatchObject([{ escrowId: created.id, intent: "release" }])
            const report = yield* reconcileUnsettled(base)
            expect(report).toEqual({ settled: 0, pending: 0, lost: [created.id] })
            expect(yield* base.unsettled).toEqual([])
            expect(yield* view(p)).toEqual({ ...zeroView, payer: "100.000000" })
          }).pipe(test()))

        it.effect("a create that fails leaves nothing to settle", () =>
          Effect.gen(function*() {
            const p = yield* parties({ fund: "10" })
            const before = yield* everything(p)
            const error = yield* Effect.flip(Escrow.use(terms(p, "11"), () => Effect.succeed("never runs")))
            expect(error).toMatchObject({ _tag: "InsufficientFunds" })
            expect(yield* everything(p)).toEqual(before)
            expect(yield* (yield* Escrow).unsettled).toEqual([])
          }).pipe(test()))
      })
    })
  }
}

/** Exposed so other suites can reuse the party fixture and its balance view. */
export const fixtures = { parties, view, zeroView, terms, everything }
export type { Parties }
