import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import { Accounts } from "../../src/agents/Accounts.js"
import * as Agent from "../../src/agents/Agent.js"
import { Orchestrator, referralChain } from "../../src/agents/Orchestrator.js"
import { LedgerUnavailable } from "../../src/domain/errors.js"
import * as Usdc from "../../src/domain/Usdc.js"
import { EscrowTest } from "../../src/escrow/EscrowTest.js"
import { Ledger } from "../../src/ledger/Ledger.js"
import { backends, Facts, fetcher, failing, shareOf, Topic, u, world, worldOn } from "./support.js"

/** Prices with odd micro amounts, so every floor in the fee split is exercised. */
const priceOf = (topic: string) => Usdc.unsafeMicros(123_457n + BigInt(topic.length) * 98_765n)

const cheapFetcher = Agent.make({ ...fetcher, name: "cheap-fetcher", price: (input: { topic: string }) => Usdc.unsafeMicros(BigInt(input.topic.length) * 7_777n) })

/** Hires a fetcher (spawned on first use, referred by the reasoner) with its own wallet, then answers. */
const reasoner = Agent.make({
  name: "reasoner",
  input: Topic,
  output: Schema.Struct({ answer: Schema.String }),
  price: ({ topic }) => priceOf(topic),
  run: ({ topic }) =>
    Effect.map(Orchestrator.hire(cheapFetcher, { topic }), ({ facts }) => ({ answer: facts.join("; ") }))
})

const topics = ["rates", "fx", "commodities", "bonds and notes", "a", "equities", "credit spreads"]

for (const backend of backends) {
  describe(`referrals and earnings on ${backend.name}`, () => {
    it.scoped("nested hiring: referral income is 15% of the fees on referred agents' escrows, to the micro-USDC", () =>
      Effect.gen(function*() {
        const accounts = yield* Accounts
        const partner = yield* accounts.register({ name: "partner" })
        const root = yield* Orchestrator.make({ name: "root", referralCode: partner.referralCode, deposit: Usdc.make("100") })
        const r = yield* root.spawn(reasoner, { faucet: true })
        for (const [i, topic] of topics.entries()) {
          yield* root.delegate(r, { topic }, { region: i % 2 === 0 ? "lhr" : "iad" })
        }
        // A failed task pays no fee and no referral share.
        const f = yield* root.spawn(failing)
        yield* Effect.flip(root.delegate(f, { topic: "x" }))

        const sub = r.orchestrator!
        const [fetcherHandle] = yield* sub.handles
        expect(fetcherHandle!.identity.referrer).toBe(r.wallet)
        expect((yield* referralChain(fetcherHandle!.wallet)).map((a) => a.name)).toEqual(["reasoner", "root", "partner"])

        const outer = topics.map((t) => priceOf(t) as bigint)
        const inner = topics.map((t) => BigInt(t.length) * 7_777n)
        const sum = (xs: ReadonlyArray<bigint>) => xs.reduce((a, b) => a + b, 0n)
        const fees = (xs: ReadonlyArray<bigint>) => sum(xs.map((x) => (x * 10_000n) / 1_000_000n))
        const shares = (xs: ReadonlyArray<bigint>) => sum(xs.map(shareOf))

        // root referred the reasoner: a share of the fee on every escrow the reasoner was a party to,
        // as payee (root → reasoner) and as payer (reasoner → fetcher).
        const rootEarnings = yield* root.earnings
        expect(rootEarnings.referralIncome).toBe(shares(outer) + shares(inner))
        expect(rootEarnings.spending).toBe(sum(outer))
        expect(rootEarnings.revenue).toBe(0n)
        expect(rootEarnings.net).toBe(shares(outer) + shares(inner) - sum(outer))
        expect(rootEarnings.referred.map((x) => x.agent.name).sort()).toEqual(["failing", "reasoner"])
        expect(rootEarnings.referred.find((x) => x.agent.name === "reasoner")!.earned).toBe(shares(outer) + shares(inner))

        // The reasoner referred the fetcher, earned its price less the fee, and paid the fetcher.
        const reasonerEarnings = yield* sub.earnings
        expect(reasonerEarnings.referralIncome).toBe(shares(inner))
        expect(reasonerEarnings.revenue).toBe(sum(outer) - fees(outer))
        expect(reasonerEarnings.feesPaid).toBe(fees(outer))
        expect(reasonerEarnings.spending).toBe(sum(inner))

        // The partner referred root, the payer of root → reasoner escrows (its referrer is nobody).
        const partnerReport = yield* accounts.referrals(partner.wallet)
        expect(partnerReport.earned).toBe(shares(outer))

        // Reconciliation: every wallet's balance is its funding plus its net.
        const [rootBalance, reasonerBalance, fetcherBalance] = yield* Effect.forEach(
          [root.identity.wallet, r.wallet, fetcherHandle!.wallet],
          (w) => accounts.balance(w)
        )
        expect(rootBalance!.available).toBe(u("100") + rootEarnings.net)
        expect(reasonerBalance!.available).toBe(u("1") + reasonerEarnings.net)
        expect(fetcherBalance!.available).toBe(sum(inner) - fees(inner))
        expect(rootBalance!.locked + reasonerBalance!.locked).toBe(0n)

        // Per region sums to the total; the sub-orchestrator's escrows carry the ledger's own region.
        const regions = rootEarnings.byRegion
        expect(Object.keys(regions).sort()).toEqual(["iad", "lhr", "local"])
        for (const key of ["referralIncome", "spending", "revenue", "feesPaid", "net"] as const) {
          expect(Object.values(regions).reduce((a, t) => a + t[key], 0n)).toBe(rootEarnings[key])
        }
        expect(regions.lhr!.spending).toBe(sum(outer.filter((_, i) => i % 2 === 0)))
        expect(regions.local!.referralIncome).toBe(shares(inner))

        // Who paid whom.
        const rootPayments = yield* root.payments()
        expect(rootPayments.filter((p) => p.status === "released")).toHaveLength(topics.length)
        expect(new Set(rootPayments.map((p) => `${p.payerName}→${p.payeeName}`))).toEqual(
          new Set(["root→reasoner", "root→failing"])
        )
        const subPayments = yield* sub.payments()
        expect(new Set(subPayments.map((p) => `${p.payerName}→${p.payeeName}`))).toEqual(
          new Set(["root→reasoner", "reasoner→cheap-fetcher"])
        )
        expect((yield* Effect.flatMap(Ledger, (l) => l.verify)).violations).toEqual([])
      }).pipe(Effect.provide(Layer.provideMerge(Accounts.layerFromLedger, backend.layer()))))

    it.effect("earnings reconcile with ledger.activity and ledger.referrals exactly", () =>
      Effect.gen(function*() {
        const orchestrator = yield* Orchestrator
        const ledger = yield* Ledger
        const h = yield* Orchestrator.spawn(reasoner, { faucet: true })
        for (const topic of topics) yield* Orchestrator.delegate(h, { topic })
        const earnings = yield* Orchestrator.earnings
        const activity = yield* ledger.activity(orchestrator.identity.wallet)
        const referrals = yield* ledger.referrals(orchestrator.identity.wallet)
        expect(earnings.referralIncome).toBe(activity.referralIncome)
        expect(earnings.referralIncome).toBe(referrals.earned)
        expect(earnings.spending).toBe(activity.spent)
        expect(earnings.revenue).toBe(activity.revenue)
        expect(earnings.net).toBe(activity.revenue + activity.referralIncome - activity.spent)
        for (const [region, totals] of Object.entries(activity.byRegion)) {
          expect(earnings.byRegion[region]!.referralIncome).toBe(totals.referralIncome)
          expect(referrals.byRegion[region] ?? 0n).toBe(totals.referralIncome)
        }
      }).pipe(Effect.provide(world(backend))))
  })
}

describe("the escrow calls a delegation makes (EscrowTest)", () => {
  it.effect("create then release on success; create then cancel on failure; nothing on a budget refusal", () =>
    Effect.gen(function*() {
      const test = yield* EscrowTest
      const good = yield* Orchestrator.spawn(fetcher)
      const bad = yield* Orchestrator.spawn(Agent.make({ ...failing, name: "bad", price: Usdc.make("1") }))
      yield* Orchestrator.delegate(good, { topic: "x" })
      yield* Effect.flip(Orchestrator.delegate(bad, { topic: "x" }))
      yield* Effect.flip(Orchestrator.delegate(good, { topic: "x" }, { maxPrice: Usdc.make("1") }))
      const calls = yield* test.calls
      expect(calls.map((c) => `${c.op}:${c.outcome._tag}`)).toEqual([
        "create:Success",
        "release:Success",
        "create:Success",
        "cancel:Success"
      ])
      const created = calls[0]!.outcome
      expect(created._tag === "Success" && created.escrow).toMatchObject({
        payee: good.wallet,
        amount: u("2.5"),
        description: "fetcher task",
        metadata: { agent: "fetcher", orchestrator: "orchestrator" }
      })
    }).pipe(Effect.provide(worldOn(EscrowTest.layer()))))

  it.effect("a create the settlement refuses runs no work and changes nothing", () =>
    Effect.gen(function*() {
      const test = yield* EscrowTest
      const orchestrator = yield* Orchestrator
      let ran = 0
      const counted = Agent.make({
        name: "counted",
        input: Topic,
        output: Facts,
        price: Usdc.make("1"),
        run: (input, task) =>
          Effect.suspend(() => {
            ran++
            return fetcher.run(input, task)
          })
      })
      const h = yield* Orchestrator.spawn(counted)
      yield* test.failNext("create", new LedgerUnavailable({ message: "settlement down" }))
      const error = yield* Effect.flip(Orchestrator.delegate(h, { topic: "x" }))
      expect(error._tag).toBe("LedgerUnavailable")
      expect(ran).toBe(0)
      expect(yield* orchestrator.spent).toEqual({ paidMicros: 0n, lockedMicros: 0n })
      expect((yield* test.ledger.balance(orchestrator.identity.wallet)).available).toBe(u("100"))
    }).pipe(Effect.provide(worldOn(EscrowTest.layer()))))
})
