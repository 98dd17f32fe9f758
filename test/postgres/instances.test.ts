/**
 * Several ledger instances on one PostgreSQL schema, in this process: each has its
 * own connection pool and group-commit writer, so to the database they are separate
 * settlement processes, and only the database keeps them consistent. (The same with
 * real child processes over HTTP is in `processes.test.ts`.)
 *
 * Live clock or a manual clock (real sleeps, so retry back-offs run): never TestClock.
 */
import { afterAll, beforeAll, expect, it } from "@effect/vitest"
import { Context, Effect, Either, Layer } from "effect"
import type { EscrowId } from "../../src/domain/ids.js"
import { SystemAccount } from "../../src/domain/ids.js"
import * as Usdc from "../../src/domain/Usdc.js"
import { Ledger, type LedgerConfigShape, type LedgerShape } from "../../src/ledger/Ledger.js"
import { migrations } from "../../src/ledger/migrations/index.js"
import { manualClock } from "../ledger/support.js"
import { createDatabase, describePg, sharedSchema, type TestDatabase, withClient } from "./harness.js"

let db: TestDatabase | undefined

/** `n` ledger instances on a fresh shared schema, built concurrently; the schema is dropped afterwards. */
const withInstances = <A, E>(
  n: number,
  f: (ledgers: ReadonlyArray<LedgerShape>, schema: ReturnType<typeof sharedSchema>) => Effect.Effect<A, E>,
  config: Partial<LedgerConfigShape> = {}
) =>
  Effect.gen(function*() {
    const schema = sharedSchema(db!.url)
    yield* Effect.promise(() => schema.create())
    return yield* Effect.gen(function*() {
      const contexts = yield* Effect.all(Array.from({ length: n }, () => Layer.build(schema.instance(config))), {
        concurrency: "unbounded"
      })
      return yield* f(contexts.map((ctx) => Context.get(ctx, Ledger)), schema)
    }).pipe(Effect.scoped, Effect.ensuring(Effect.promise(() => schema.drop())))
  })

const verifyClean = (ledger: LedgerShape) =>
  Effect.map(ledger.verify, (report) => {
    expect(report.violations).toEqual([])
    return report
  })

const outcome = <A, E extends { _tag: string }>(effect: Effect.Effect<A, E>) =>
  Effect.map(Effect.either(effect), (e) => (Either.isRight(e) ? "ok" : e.left._tag))

describePg("PostgreSQL, several ledger instances on one database", () => {
  beforeAll(async () => {
    db = await createDatabase("instances")
  })
  afterAll(async () => {
    await db?.drop()
  })

  it.live("4 instances starting at once on an empty database: migrated once, treasury funded once", () =>
    withInstances(4, (ledgers, schema) =>
      Effect.gen(function*() {
        const rows = yield* Effect.promise(() =>
          withClient(db!.url, (sql) =>
            Effect.all([
              sql.unsafe<{ n: string }>(`SELECT COUNT(*) AS n FROM "${schema.schema}".effect_sql_migrations`),
              sql.unsafe<{ n: string }>(`SELECT COUNT(*) AS n FROM "${schema.schema}".ledger_meta`),
              sql.unsafe<{ n: string }>(`SELECT COUNT(*) AS n FROM "${schema.schema}".postings WHERE account = 'system:faucet_treasury'`)
            ])
          )
        )
        // Each migration recorded once, the treasury funded once.
        expect(rows.map((r) => Number(r[0]!.n))).toEqual([Object.keys(migrations).length, 1, 1])
        for (const ledger of ledgers) {
          expect(yield* ledger.systemBalance(SystemAccount.faucetTreasury)).toBe(ledger.config.faucetTreasuryInitial)
        }
        yield* verifyClean(ledgers[0]!)
      })), 60_000)

  it.live("200 escrows, each released on one instance and cancelled on the other at once: one winner each, money exact", () =>
    withInstances(2, ([a, b]) =>
      Effect.gen(function*() {
        const payer = yield* a!.registerAgent({ name: "payer" })
        const payee = yield* b!.registerAgent({ name: "payee" })
        const platformBefore = yield* a!.systemBalance(SystemAccount.platformFees)
        const amounts = Array.from({ length: 200 }, (_, i) => BigInt(i + 1) * 1_000_003n)
        const total = amounts.reduce((x, y) => x + y, 0n)
        yield* a!.deposit(payer.wallet, total as Usdc.Usdc)
        const escrows = yield* Effect.forEach(amounts, (amount, i) =>
          (i % 2 === 0 ? a! : b!).createEscrow({ payer: payer.wallet, payee: payee.wallet, amount: amount as Usdc.Usdc, description: "race" }), {
          concurrency: 16
        })
        const results = yield* Effect.forEach(escrows, (escrow, i) => {
          const [releaser, canceller] = i % 2 === 0 ? [a!, b!] : [b!, a!]
          return Effect.all([outcome(releaser.releaseEscrow(escrow.id)), outcome(canceller.cancelEscrow(escrow.id))], {
            concurrency: 2
          })
        }, { concurrency: "unbounded" })
        let paidOut = 0n
        let fees = 0n
        let refunded = 0n
        for (const [i, [release, cancel]] of results.entries()) {
          expect([release, cancel].filter((o) => o === "ok")).toHaveLength(1)
          expect([release, cancel]).toContain("EscrowNotPending")
          const record = yield* b!.getEscrow(escrows[i]!.id)
          expect(record.status).toBe(release === "ok" ? "released" : "cancelled")
          expect((yield* a!.escrowHistory(record.id)).map((e) => e.toStatus)).toEqual(["pending", record.status])
          paidOut += record.released
          fees += record.feePaid
          refunded += record.refunded
        }
        expect(paidOut + refunded).toBe(total)
        expect(paidOut).toBeGreaterThan(0n)
        expect(refunded).toBeGreaterThan(0n)
        expect(yield* a!.balance(payer.wallet)).toMatchObject({ available: refunded, locked: 0n })
        expect(yield* b!.systemBalance(SystemAccount.platformFees)).toBe(platformBefore + fees)
        expect((yield* a!.balance(payee.wallet)).available).toBe(paidOut - fees)
        expect(yield* b!.systemBalance(SystemAccount.escrowHolding)).toBe(0n)
        yield* verifyClean(a!)
      })), 120_000)

  it.live("creates under one mandate from both instances together exceed its budget: exactly the budget is spent", () =>
    withInstances(2, ([a, b]) =>
      Effect.gen(function*() {
        const payer = yield* a!.registerAgent({ name: "payer" })
        const payee = yield* a!.registerAgent({ name: "payee" })
        yield* a!.deposit(payer.wallet, Usdc.make("1000"))
        const mandate = yield* a!.createMandate({
          payer: payer.wallet,
          payee: payee.wallet,
          maxAmount: Usdc.make("1"),
          budget: Usdc.make("10")
        })
        const outcomes = yield* Effect.forEach(Array.from({ length: 40 }, (_, i) => i), (i) =>
          outcome((i % 2 === 0 ? a! : b!).createEscrow({
            payer: payer.wallet,
            payee: payee.wallet,
            amount: Usdc.make("1"),
            description: `under mandate ${i}`,
            mandateId: mandate.id
          })), { concurrency: "unbounded" })
        expect(outcomes.filter((o) => o === "ok")).toHaveLength(10)
        expect(outcomes.filter((o) => o === "MandateExceeded")).toHaveLength(30)
        expect((yield* b!.getMandate(mandate.id)).remaining).toBe(0n)
        expect((yield* b!.balance(payer.wallet)).locked).toBe(Usdc.make("10"))
        yield* verifyClean(b!)
      })), 60_000)

  it.live("every wallet claims the faucet three times across both instances: paid exactly once each", () =>
    withInstances(2, ([a, b]) =>
      Effect.gen(function*() {
        const agents = yield* Effect.forEach(Array.from({ length: 40 }, (_, i) => i), (i) => a!.registerAgent({ name: `agent-${i}` }))
        const treasuryBefore = yield* a!.systemBalance(SystemAccount.faucetTreasury)
        const outcomes = yield* Effect.forEach(agents, (agent) =>
          Effect.all([a!, b!, a!].map((l) => outcome(l.claimFaucet({ wallet: agent.wallet, agentName: agent.name }))), {
            concurrency: "unbounded"
          }), { concurrency: "unbounded" })
        for (const claims of outcomes) {
          expect(claims.filter((o) => o === "ok")).toHaveLength(1)
          expect(claims.filter((o) => o === "FaucetAlreadyClaimed")).toHaveLength(2)
        }
        for (const agent of agents) expect((yield* b!.balance(agent.wallet)).available).toBe(Usdc.make("1"))
        expect(yield* b!.systemBalance(SystemAccount.faucetTreasury)).toBe(treasuryBefore - Usdc.make("40"))
        yield* verifyClean(a!)
      })), 60_000)

  it.live("a new wallet paid from both instances at once keeps both credits (no lost first update)", () =>
    withInstances(2, ([a, b]) =>
      Effect.gen(function*() {
        const payer = yield* a!.registerAgent({ name: "payer" })
        yield* a!.deposit(payer.wallet, Usdc.make("1000"))
        const payees = yield* Effect.forEach(Array.from({ length: 30 }, (_, i) => i), (i) => a!.registerAgent({ name: `payee-${i}` }))
        yield* Effect.forEach(payees, (payee) =>
          Effect.gen(function*() {
            const e1 = yield* a!.createEscrow({ payer: payer.wallet, payee: payee.wallet, amount: Usdc.make("1"), description: "1" })
            const e2 = yield* a!.createEscrow({ payer: payer.wallet, payee: payee.wallet, amount: Usdc.make("1"), description: "2" })
            // The payee has no account row yet: both releases create it.
            yield* Effect.all([a!.releaseEscrow(e1.id), b!.releaseEscrow(e2.id)], { concurrency: 2 })
          }), { concurrency: 4 })
        for (const payee of payees) expect((yield* b!.balance(payee.wallet)).available).toBe(Usdc.make("1.98"))
        yield* verifyClean(a!)
      })), 60_000)

  it.live("three instances sweeping expiry at once: every due escrow expires exactly once, refunded once", () => {
    const clock = manualClock(Date.UTC(2030, 0, 1))
    return withInstances(3, (ledgers) =>
      Effect.gen(function*() {
        const [a] = ledgers
        const payer = yield* a!.registerAgent({ name: "payer" })
        const payee = yield* a!.registerAgent({ name: "payee" })
        yield* a!.deposit(payer.wallet, Usdc.make("1000"))
        const escrows = yield* Effect.forEach(Array.from({ length: 150 }, (_, i) => i), () =>
          a!.createEscrow({ payer: payer.wallet, payee: payee.wallet, amount: Usdc.make("2"), description: "due", timeout: "1 minute" }), {
          concurrency: 16
        })
        const notDue = yield* a!.createEscrow({
          payer: payer.wallet,
          payee: payee.wallet,
          amount: Usdc.make("5"),
          description: "later",
          timeout: "10 minutes"
        })
        yield* clock.advance(61_000)
        // Every instance sweeps twice, all at once, with a limit that forces several rounds.
        const swept = yield* Effect.all(
          [...ledgers, ...ledgers].map((ledger) => ledger.expireDue(100)),
          { concurrency: "unbounded" }
        )
        const rest = yield* a!.expireDue(1_000)
        const expiredIds = [...swept.flat(), ...rest].map((e) => e.id)
        expect(new Set(expiredIds).size).toBe(expiredIds.length) // no escrow reported expired twice
        expect(new Set(expiredIds)).toEqual(new Set(escrows.map((e) => e.id)))
        for (const escrow of escrows) {
          const history = yield* a!.escrowHistory(escrow.id as EscrowId)
          expect(history.map((h) => h.toStatus)).toEqual(["pending", "expired"])
        }
        expect((yield* a!.getEscrow(notDue.id)).status).toBe("pending")
        expect(yield* a!.balance(payer.wallet)).toMatchObject({ available: Usdc.make("995"), locked: Usdc.make("5") })
        yield* verifyClean(a!)
      })).pipe(Effect.withClock(clock.clock))
  }, 60_000)
})
