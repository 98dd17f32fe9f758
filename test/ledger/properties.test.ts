/**
 * Property tests: random sequences of register / deposit / claim / create (with
 * idempotency keys and mandates) / release (full and partial) / cancel / expire
 * (TestClock) / mandate ops across many agents, run on each ledger through the
 * `Ledger` interface and checked against the model after EVERY step (see
 * `model.ts`): conservation (Σ all accounts = 0), no negative wallet, stored
 * balances = Σ postings (`verify`), and for every release payee net + platform +
 * referral shares == the amount released, on the ledger's own balance deltas.
 */
import { Duration, Effect, TestContext } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import * as Usdc from "../../src/domain/Usdc.js"
import { Ledger, type LedgerConfigShape } from "../../src/ledger/Ledger.js"
import { ledgerImplementations } from "./implementations.js"
import { opArbitrary, type Op, type RunOptions, runOps, runRandomOps, type RunSummary } from "./model.js"
import { manualClock } from "./support.js"

/** Configs that make every refusal reachable: a small treasury, a low daily cap, varied fees and tiers. */
const configArbitrary: fc.Arbitrary<Partial<LedgerConfigShape>> = fc.record({
  fees: fc.record({
    feePpm: fc.constantFrom(0, 10_000, 25_000, 333_333, 1_000_000),
    referralTiersPpm: fc.constantFrom([], [150_000], [150_000, 50_000], [500_000], [100_000, 100_000, 100_000])
  }),
  faucetClaimAmount: fc.constantFrom(Usdc.make("1"), Usdc.make("0.000001"), Usdc.make("250")),
  faucetTreasuryInitial: fc.constantFrom(Usdc.make("0"), Usdc.make("3"), Usdc.make("1000000")),
  faucetDailyCap: fc.constantFrom(0, 2, 1_000),
  defaultEscrowTimeout: fc.constantFrom(Duration.minutes(15), Duration.seconds(30)),
  maxEscrowTimeout: fc.constantFrom(Duration.days(30), Duration.minutes(30))
})

for (const [name, make, scale] of ledgerImplementations) {
  const totals = { sequences: 0, ops: 0, releasedMicros: 0n, outcomes: {} as Record<string, number> }
  const tally = (summary: RunSummary) => {
    totals.sequences++
    totals.ops += summary.steps
    totals.releasedMicros += summary.releasedMicros
    for (const [k, v] of Object.entries(summary.outcomes)) totals.outcomes[k] = (totals.outcomes[k] ?? 0) + v
  }
  const part = scale?.propertyScale ?? 1
  const n = (full: number, least: number) => Math.max(least, Math.round(full * part))
  const fastCheckRuns = n(1_500, 10)
  const seededRuns = n(1_000, 5)
  const longRuns = n(3, 1)
  const longOps = part < 1 ? 300 : 1_500
  const testClockRuns = part < 1 ? 1 : 2
  const testClockOps = part < 1 ? 100 : 300

  /**
   * A fresh ledger of this implementation for one sequence, its time moved by a
   * manual clock (the model's `expire` step advances it). TestClock does the same
   * job but waits on real timers in every `adjust`, ~100x slower per sequence.
   */
  const onFreshLedger = <A, E>(
    config: Partial<LedgerConfigShape>,
    f: (ledger: Ledger["Type"], clock: Pick<RunOptions, "advance">) => Effect.Effect<A, E>
  ) => {
    const clock = manualClock()
    return Effect.runPromise(
      Effect.flatMap(Ledger, (ledger) => f(ledger, { advance: clock.advance })).pipe(
        Effect.provide(make(config)),
        Effect.scoped,
        Effect.withClock(clock.clock)
      ) as Effect.Effect<A, unknown>
    )
  }
  /** The same under the real TestClock (the model's default `advance`), for the long runs. */
  const onFreshLedgerTestClock = <A, E>(config: Partial<LedgerConfigShape>, f: (ledger: Ledger["Type"]) => Effect.Effect<A, E>) =>
    Effect.runPromise(
      // TestContext outside the ledger's layer, so fibers the layer forks (a SQL writer) read the TestClock too
      Effect.flatMap(Ledger, f).pipe(Effect.provide(make(config)), Effect.scoped, Effect.provide(TestContext.TestContext)) as Effect.Effect<A, unknown>
    )

  describe(`ledger properties: ${name}`, () => {
    it(`fast-check: ${fastCheckRuns} shrinkable sequences of up to 50 ops, invariants after every step`, async () => {
      await fc.assert(
        fc.asyncProperty(configArbitrary, fc.array(opArbitrary, { minLength: 1, maxLength: 50 }), async (config, ops: Array<Op>) => {
          const summary = await onFreshLedger(config, (ledger, clock) => runOps(ledger, ops, clock))
          tally(summary)
          expect(summary.steps).toBe(ops.length)
        }),
        { numRuns: fastCheckRuns }
      )
    }, 120_000)

    it(`seeded: ${seededRuns} sequences of 30 ops under the default config`, async () => {
      for (let seed = 1; seed <= seededRuns; seed++) {
        tally(await onFreshLedger({}, (ledger, clock) => runRandomOps(ledger, seed, 30, clock)))
      }
    }, 60_000)

    it(`seeded: ${longRuns} long sequences of ${longOps} ops (escrows pile up, mandates run dry, days roll over)`, async () => {
      for (let seed = 10_001; seed <= 10_000 + longRuns; seed++) {
        const summary = await onFreshLedger(
          { faucetTreasuryInitial: Usdc.make("10"), faucetDailyCap: 3, fees: { feePpm: 10_000, referralTiersPpm: [150_000, 50_000] } },
          (ledger, clock) => runRandomOps(ledger, seed, longOps, { maxAgents: 16, ...clock })
        )
        tally(summary)
        expect(summary.steps).toBe(longOps)
        expect(summary.releasedMicros).toBeGreaterThan(0n)
      }
    }, 60_000)

    it(`seeded under TestClock: ${testClockRuns} sequences of ${testClockOps} ops, time moved by TestClock.adjust`, async () => {
      for (let seed = 20_001; seed <= 20_000 + testClockRuns; seed++) {
        const summary = await onFreshLedgerTestClock({}, (ledger) => runRandomOps(ledger, seed, testClockOps))
        tally(summary)
        if (part === 1) expect(summary.outcomes["expire:ok"] ?? 0).toBeGreaterThan(0)
      }
    }, 60_000)

    it.runIf(part === 1)("the runs reached every kind of outcome that matters", () => {
      // printed so the figures can go in the README; asserted so a generator change cannot silently stop exercising a rule
      console.log(`[${name}] ${totals.sequences} sequences, ${totals.ops} ops, ${Usdc.format(totals.releasedMicros)} USDC released`)
      console.log(JSON.stringify(Object.fromEntries(Object.entries(totals.outcomes).sort())))
      expect(totals.sequences).toBeGreaterThanOrEqual(2_500)
      for (
        const key of [
          "register:ok",
          "register:WalletAlreadyRegistered",
          "register:ReferralCodeNotFound",
          "deposit:ok",
          "deposit:InvalidInput",
          "claim:ok",
          "claim:FaucetAlreadyClaimed",
          "claim:FaucetDailyCapReached",
          "claim:FaucetTreasuryEmpty",
          "create:ok",
          "create:IdempotencyConflict",
          "create:InsufficientFunds",
          "create:MandateExceeded",
          "create:InvalidInput",
          "retry:idempotent",
          "release:ok",
          "release:repeat",
          "release:EscrowNotPending",
          "release:ReleaseExceedsRemaining",
          "release:EscrowExpired",
          "release:InvalidInput",
          "cancel:ok",
          "cancel:repeat",
          "cancel:EscrowNotPending",
          "expire:ok",
          "mandate:ok",
          "revoke:ok",
          "revoke:MandateNotFound"
        ]
      ) {
        expect(totals.outcomes[key] ?? 0, key).toBeGreaterThan(0)
      }
    })
  })
}
