/**
 * Release-vs-cancel races, reusable on any `Ledger` layer (memory, SQLite,
 * PostgreSQL): `registerRaceSuite("SqlLedger", () => layer)`.
 *
 * Each race fires a release and a cancel of the same pending escrow at once; all
 * races run together (`Effect.all`, unbounded concurrency), with the order inside
 * each pair shuffled so both sides win some. Exactly one call may win; the loser
 * gets `EscrowNotPending` naming the winner's state, and the money adds up to the
 * cent over all escrows.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, type Layer } from "effect"
import { type EscrowId, SystemAccount } from "../../src/domain/ids.js"
import type { Usdc } from "../../src/domain/Usdc.js"
import { Ledger } from "../../src/ledger/Ledger.js"
import { mulberry32, snapshot, totalOf } from "./support.js"

export interface RaceReport {
  readonly races: number
  readonly releaseWon: number
  readonly cancelWon: number
}

type Attempt = "release" | "cancel"
interface Outcome {
  readonly escrowId: EscrowId
  readonly op: Attempt
  readonly ok: boolean
  readonly error?: { readonly _tag: string; readonly status?: string; readonly attempted?: string } | undefined
}

/**
 * Runs `races` release-vs-cancel races (plus `duplicateReleases` extra release
 * calls per escrow, to show a repeated release never pays twice) and checks every
 * outcome and every balance. Fails the test (via `expect`) on any discrepancy.
 */
export const releaseVsCancelRaces = (races: number, options: { seed?: number; duplicateReleases?: number } = {}) =>
  Effect.gen(function*() {
    const ledger = yield* Ledger
    const rng = mulberry32(options.seed ?? 42)
    const duplicates = options.duplicateReleases ?? 0
    const payerRef = yield* ledger.registerAgent({ name: "payer-referrer" })
    const payeeRef = yield* ledger.registerAgent({ name: "payee-referrer" })
    const payer = yield* ledger.registerAgent({ name: "payer", referralCode: payerRef.referralCode })
    const payee = yield* ledger.registerAgent({ name: "payee", referralCode: payeeRef.referralCode })
    const wallets = [payerRef.wallet, payeeRef.wallet, payer.wallet, payee.wallet]

    // Amounts that exercise rounding: 1.000003 .. 97.000291 USDC
    const amounts = Array.from({ length: races }, (_, i) => BigInt((i % 97) + 1) * 1_000_003n)
    const funded = amounts.reduce((a, b) => a + b, 0n)
    yield* ledger.deposit(payer.wallet, funded as Usdc)
    // concurrent, so a group-committing ledger can batch the setup
    const escrows = yield* Effect.forEach(
      amounts,
      (amount, i) => ledger.createEscrow({ payer: payer.wallet, payee: payee.wallet, amount: amount as Usdc, description: `race ${i}` }),
      { concurrency: 64 }
    )
    const before = yield* snapshot(ledger, wallets)
    expect(before.locked[payer.wallet]).toBe(funded)

    const attempt = (escrowId: EscrowId, op: Attempt): Effect.Effect<Outcome> =>
      (op === "release" ? ledger.releaseEscrow(escrowId) : ledger.cancelEscrow(escrowId)).pipe(
        Effect.map((): Outcome => ({ escrowId, op, ok: true })),
        Effect.catchAll((error) => Effect.succeed<Outcome>({ escrowId, op, ok: false, error: error as Outcome["error"] }))
      )
    const calls: Array<Effect.Effect<Outcome>> = []
    for (const escrow of escrows) {
      const ops: Array<Attempt> = ["release", "cancel", ...Array.from({ length: duplicates }, () => "release" as const)]
      // shuffle within the race so either side may go first
      for (let i = ops.length - 1; i > 0; i--) {
        const j = Math.floor(rng() * (i + 1))
        ;[ops[i], ops[j]] = [ops[j]!, ops[i]!]
      }
      for (const op of ops) calls.push(attempt(escrow.id, op))
    }
    const outcomes = yield* Effect.all(calls, { concurrency: "unbounded" })

    const byEscrow = new Map<string, Array<Outcome>>()
    for (const o of outcomes) byEscrow.set(o.escrowId, [...(byEscrow.get(o.escrowId) ?? []), o])
    let releaseWon = 0
    let cancelWon = 0
    let net = 0n
    let platform = 0n
    let share = 0n
    let paidOut = 0n
    const feePpm = BigInt(ledger.config.fees.feePpm)
    const tierPpm = BigInt(ledger.config.fees.referralTiersPpm[0] ?? 0)
    const records = yield* Effect.forEach(escrows, (e) => ledger.getEscrow(e.id), { concurrency: 16 })
    const histories = yield* Effect.forEach(escrows, (e) => ledger.escrowHistory(e.id), { concurrency: 16 })
    // Collected, then asserted once: 1,000 × several `expect`s would dominate the run.
    const problems: Array<string> = []
    const check = (ok: boolean, what: string) => {
      if (!ok && problems.length < 20) problems.push(what)
    }
    for (const [i, escrow] of escrows.entries()) {
      const results = byEscrow.get(escrow.id)!
      const record = records[i]!
      const amount = amounts[i]!
      check(record.status === "released" || record.status === "cancelled", `${escrow.id} ended ${record.status}`)
      const winner: Attempt = record.status === "released" ? "release" : "cancel"
      const wins = results.filter((r) => r.ok)
      if (winner === "release") {
        // the winning release, and any repeated release that came after it, succeed; the cancel loses
        check(wins.length >= 1 && wins.every((r) => r.op === "release"), `${escrow.id} released, winners ${wins.map((r) => r.op)}`)
        releaseWon++
        const fee = (amount * feePpm) / 1_000_000n
        const s = (fee * tierPpm) / 1_000_000n
        net += amount - fee
        share += s
        platform += fee - 2n * s
        paidOut += amount
        check(record.released === amount && record.refunded === 0n && record.feePaid === fee, `${escrow.id} record ${record.released}/${record.refunded}/${record.feePaid}`)
      } else {
        check(wins.length === 1 && wins[0]!.op === "cancel", `${escrow.id} cancelled, winners ${wins.map((r) => r.op)}`)
        cancelWon++
        check(record.released === 0n && record.refunded === amount && record.feePaid === 0n, `${escrow.id} record ${record.released}/${record.refunded}`)
      }
      for (const loser of results.filter((r) => !r.ok)) {
        check(
          loser.error?._tag === "EscrowNotPending" && loser.error.status === record.status && loser.error.attempted === loser.op,
          `${escrow.id} (${record.status}): loser ${loser.op} got ${JSON.stringify(loser.error)}`
        )
      }
      // exactly one transition out of pending in the audit trail
      const statuses = histories[i]!.map((h) => h.toStatus)
      check(statuses.length === 2 && statuses[0] === "pending" && statuses[1] === record.status, `${escrow.id} history ${statuses}`)
    }
    expect(problems).toEqual([])

    const after = yield* snapshot(ledger, wallets)
    expect(after.available[payer.wallet]).toBe(funded - paidOut)
    expect(after.locked[payer.wallet]).toBe(0n)
    expect(after.available[payee.wallet]).toBe(net)
    expect(after.available[payerRef.wallet]).toBe(share)
    expect(after.available[payeeRef.wallet]).toBe(share)
    expect(after.system[SystemAccount.platformFees]).toBe(platform)
    expect(after.system[SystemAccount.escrowHolding]).toBe(0n)
    expect(totalOf(after)).toBe(0n)
    expect(totalOf(after)).toBe(totalOf(before))
    // every race wrote exactly one settling transfer: lock + settle postings only
    expect((yield* ledger.verify).violations).toEqual([])
    return { races, releaseWon, cancelWon } satisfies RaceReport
  })

/** Registers the race tests against a fresh ledger from `make()` per test (live clock: real concurrency for SQL ledgers). */
export const registerRaceSuite = (name: string, make: () => Layer.Layer<Ledger, unknown>) =>
  describe(`release-vs-cancel races: ${name}`, () => {
    it.live("1,000 concurrent races: exactly one winner each, the loser told the winner's state, totals conserved", () =>
      Effect.gen(function*() {
        const report = yield* releaseVsCancelRaces(1_000)
        expect(report.releaseWon + report.cancelWon).toBe(1_000)
        // the shuffled order lets both sides win (the report shows the split)
        expect(report.releaseWon).toBeGreaterThan(0)
        expect(report.cancelWon).toBeGreaterThan(0)
      }).pipe(Effect.provide(make())), 60_000)

    it.live("1,000 races with two extra releases each: a repeated release never pays twice", () =>
      Effect.gen(function*() {
        const report = yield* releaseVsCancelRaces(1_000, { seed: 7, duplicateReleases: 2 })
        expect(report.releaseWon + report.cancelWon).toBe(1_000)
      }).pipe(Effect.provide(make())), 60_000)
  })
