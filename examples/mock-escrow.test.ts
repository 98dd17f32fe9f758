/**
 * How you test your own agents without a ledger file or a server: provide
 * `Ringmaster.test()`, an orchestrator on `EscrowTest`, which runs the real fee and
 * referral rules in memory, records every escrow call your code makes, and fails
 * the calls you script (`failNext`). Nothing in it waits on the clock, so these
 * tests run under `it.effect`'s `TestClock` without advancing it.
 *
 *   npx vitest run examples/mock-escrow.test.ts
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { Agent, Escrow, EscrowTest, InsufficientFunds, LedgerUnavailable, Orchestrator, Ringmaster, Usdc } from "ringmaster"

// The agent under test: yours.
const Summarizer = Agent.make({
  name: "summarizer",
  input: Schema.Struct({ text: Schema.String }),
  output: Schema.Struct({ summary: Schema.String }),
  price: Usdc.make("0.25"),
  run: ({ text }) => Effect.succeed({ summary: text.split(".")[0] ?? "" })
})

// An orchestrator funded with 5 USDC over the mock.
const TestWorld = Ringmaster.test({ name: "my-orchestrator", deposit: Usdc.make("5") })

describe("my summarizer, paid through escrow", () => {
  it.effect("locks the price, then releases it when the summary is produced", () =>
    Effect.gen(function*() {
      const escrow = yield* EscrowTest
      const me = yield* Orchestrator.identity
      const summarizer = yield* Orchestrator.spawn(Summarizer)

      const { summary } = yield* Orchestrator.delegate(summarizer, { text: "Rates rose. Markets fell." })
      expect(summary).toBe("Rates rose")

      const calls = yield* escrow.calls
      expect(calls.map((c) => c.op)).toEqual(["create", "release"])
      expect(calls[0]!.args[0]).toMatchObject({ payer: me.wallet, payee: summarizer.wallet, amount: Usdc.make("0.25") })
      // The summarizer nets the price less the 1% fee; I get 15% of that fee back as its referrer.
      expect((yield* escrow.ledger.balance(summarizer.wallet)).available).toBe(Usdc.make("0.2475"))
      expect((yield* escrow.ledger.balance(me.wallet)).available).toBe(Usdc.make("4.750375"))
    }).pipe(Effect.provide(TestWorld)))

  it.effect("a release that fails three times is retried, and the summarizer is paid once", () =>
    Effect.gen(function*() {
      const escrow = yield* EscrowTest
      const summarizer = yield* Orchestrator.spawn(Summarizer)
      yield* escrow.failNext("release", new LedgerUnavailable({ message: "settlement service restarting" }), { times: 3 })

      yield* Orchestrator.delegate(summarizer, { text: "One. Two." })

      const calls = yield* escrow.calls
      expect(calls.map((c) => `${c.op}:${c.outcome._tag}`)).toEqual([
        "create:Success",
        "release:Failure",
        "release:Failure",
        "release:Failure",
        "release:Success"
      ])
      expect((yield* escrow.ledger.balance(summarizer.wallet)).available).toBe(Usdc.make("0.2475"))
      // Nothing was left for reconciliation.
      expect(yield* Effect.flatMap(Escrow, (port) => port.unsettled)).toEqual([])
    }).pipe(Effect.provide(TestWorld)))

  it.effect("a refused lock fails the task before any work, and nothing moves", () =>
    Effect.gen(function*() {
      const escrow = yield* EscrowTest
      const me = yield* Orchestrator.identity
      let ran = false
      const summarizer = yield* Orchestrator.spawn(
        Agent.make({
          name: "watched-summarizer",
          input: Summarizer.input,
          output: Summarizer.output,
          price: Usdc.make("0.25"),
          run: (input, task) =>
            Effect.suspend(() => {
              ran = true
              return Summarizer.run(input, task)
            })
        })
      )
      yield* escrow.failNext("create", new InsufficientFunds({ wallet: me.wallet, requiredMicros: 250_000n, availableMicros: 0n }))

      const error = yield* Effect.flip(Orchestrator.delegate(summarizer, { text: "x" }))

      expect(error._tag).toBe("InsufficientFunds")
      expect(ran).toBe(false)
      expect((yield* escrow.calls).map((c) => `${c.op}:${c.outcome._tag}`)).toEqual(["create:Failure"])
      expect((yield* escrow.ledger.balance(me.wallet)).available).toBe(Usdc.make("5"))
    }).pipe(Effect.provide(TestWorld)))
})
