/**
 * The runnable examples, run to completion with their numbers checked against the
 * ledger's rules (1% fee borne by the payee, 15% of each fee to the referrer).
 */
import { describe, expect, it } from "@effect/vitest"
import { LanguageModel } from "@effect/ai"
import { Effect, Layer } from "effect"
import { LanguageModelScript } from "ringmaster"
import * as LlmAgent from "../../examples/llm-agent.js"
import * as LlmOrchestrator from "../../examples/llm-orchestrator.js"
import * as MeteredStreaming from "../../examples/metered-streaming.js"
import * as ResearchCrew from "../../examples/research-crew.js"
import * as OrchestratorExample from "../../examples/orchestrator.js"
import * as ReferralNetwork from "../../examples/referral-network.js"
import { feeOf, shareOf, tempDir, u } from "./support.js"

describe("examples/orchestrator.ts", () => {
  it.scoped("pays three specialists, refunds the rejected draft, and earns 15% of their fees", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("ringmaster-example-")
      const summary = yield* OrchestratorExample.run(dir)
      expect(summary.report).toMatch(/^Market note\. eur-usd: mean [\d.]+, (rising|falling)\. brent crude/)
      const byStatus = (status: string) => summary.payments.filter((p) => p.status === status)
      expect(byStatus("released").map((p) => `${p.payeeName}:${p.released}:${p.fee}`).sort()).toEqual([
        `data-fetcher:${u("0.4")}:${u("0.004")}`,
        `data-fetcher:${u("0.4")}:${u("0.004")}`,
        `reasoner:${u("1.2")}:${u("0.012")}`,
        `writer:${u("0.8")}:${u("0.008")}`
      ])
      expect(byStatus("cancelled").map((p) => `${p.payeeName}:${p.refunded}:${p.fee}`)).toEqual([`writer:${u("0.8")}:0`])
      // 15% of 0.004 + 0.004 + 0.012 + 0.008 = 0.0042 USDC.
      expect(summary.earnings.referralIncome).toBe(u("0.0042"))
      expect(summary.earnings.spending).toBe(u("2.8"))
      expect(summary.earnings.net).toBe(u("0.0042") - u("2.8"))
      expect(summary.balances).toEqual({
        orchestrator: u("10") - u("2.8") + u("0.0042"),
        "data-fetcher": u("0.792"),
        reasoner: u("1.188"),
        writer: u("0.792")
      })
    }))
})

describe("examples/referral-network.ts", () => {
  it.scoped("each level earns 15% of the fees on the escrows of the agents it referred", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("ringmaster-example-")
      const levels = yield* ReferralNetwork.run(dir)
      expect(levels.map((l) => l.name)).toEqual(["platform", "regional-lead", "specialist", "tool"])
      const fee = (gross: bigint) => (gross * 10_000n) / 1_000_000n
      const share = (gross: bigint) => (fee(gross) * 150_000n) / 1_000_000n
      const { jobs, prices } = ReferralNetwork
      const [lead, specialist, tool] = [prices.lead, prices.specialist, prices.tool].map((p) => BigInt(jobs) * p) as [bigint, bigint, bigint]
      const perJob = (p: bigint) => BigInt(jobs) * share(p)
      const [platform, leadLevel, specialistLevel, toolLevel] = levels
      // platform referred the lead: the lead was payee of platform→lead and payer of lead→specialist.
      expect(platform!.earnings.referralIncome).toBe(perJob(prices.lead) + perJob(prices.specialist))
      expect(leadLevel!.earnings.referralIncome).toBe(perJob(prices.specialist) + perJob(prices.tool))
      expect(specialistLevel!.earnings.referralIncome).toBe(perJob(prices.tool))
      expect(toolLevel!.earnings.referralIncome).toBe(0n)
      expect(platform!.earnings.spending).toBe(lead)
      expect(leadLevel!.earnings.revenue).toBe(lead - BigInt(jobs) * fee(prices.lead))
      expect(leadLevel!.earnings.spending).toBe(specialist)
      expect(specialistLevel!.earnings.spending).toBe(tool)
      expect(toolLevel!.earnings.revenue).toBe(tool - BigInt(jobs) * fee(prices.tool))
      expect(levels.every((l) => l.balance === l.funded + l.earnings.net)).toBe(true)
    }))
})

describe("examples/llm-agent.ts", () => {
  it.effect("runs offline on the local model and pays only for the tokens used", () =>
    Effect.gen(function*() {
      const { summary, payment } = yield* LlmAgent.run("Escrow pays for work that arrives. Nothing else.")
      expect(summary).toBe("Escrow pays for work that arrives.")
      expect(payment.released).toBeGreaterThan(0n)
      expect(payment.released + payment.refunded).toBe(u("0.05"))
    }))

  it.effect("the bill is the model's reported usage at the token prices, to the micro-USDC", () =>
    Effect.gen(function*() {
      // A model reporting 1,234 prompt and 321 completion tokens: 1,234 × 1 + 321 × 4 = 2,518 micro-USDC.
      const reporting = Layer.effect(
        LanguageModel.LanguageModel,
        LanguageModel.make({
          generateText: () =>
            Effect.succeed([
              { type: "text" as const, text: "short." },
              { type: "finish" as const, reason: "stop" as const, usage: { inputTokens: 1_234, outputTokens: 321, totalTokens: 1_555 } }
            ]),
          streamText: () => Effect.dieMessage("not used") as never
        })
      )
      const { payment } = yield* LlmAgent.run("anything", reporting)
      expect(payment).toMatchObject({ locked: u("0.05"), released: 2_518n, fee: 25n, refunded: u("0.05") - 2_518n })
    }))
})

describe("examples/llm-orchestrator.ts", () => {
  it.effect("offline, the scripted planner hires each specialist by tool call, retries the refunded draft, and bills its tokens", () =>
    Effect.gen(function*() {
      const script = yield* LlmOrchestrator.script()
      const summary = yield* LlmOrchestrator.run(script.layer)
      expect(summary.report).toMatch(/^Market note\. eur-usd: mean [\d.]+, (rising|falling)\. brent crude/)
      // 300 + 420 + 500 + 520 + 560 prompt tokens, 40 + 30 + 25 + 25 + 60 completion tokens at 4 each.
      const tokens = 2_300n + 4n * 180n
      const fee = (gross: bigint) => (gross * 10_000n) / 1_000_000n
      // Sorted: under TestClock every escrow is created at the same millisecond.
      expect(summary.payments.map((p) => `${p.payerName}→${p.payeeName} ${p.locked} ${p.released} ${p.refunded} ${p.outcome._tag}`).sort()).toEqual([
        `orchestrator→planner ${u("0.05")} ${tokens} ${u("0.05") - tokens} PartlyPaid`,
        `planner→data-fetcher ${u("0.4")} ${u("0.4")} 0 Paid`,
        `planner→data-fetcher ${u("0.4")} ${u("0.4")} 0 Paid`,
        `planner→reasoner ${u("1.2")} ${u("1.2")} 0 Paid`,
        `planner→writer ${u("0.8")} 0 ${u("0.8")} Refunded`,
        `planner→writer ${u("0.8")} ${u("0.8")} 0 Paid`
      ].sort())
      const hires = u("0.4") * 2n + u("1.2") + u("0.8")
      expect(summary.balances).toMatchObject({
        planner: u("5") - hires + tokens - fee(tokens),
        "data-fetcher": 2n * (u("0.4") - fee(u("0.4"))),
        reasoner: u("1.2") - fee(u("1.2")),
        writer: u("0.8") - fee(u("0.8"))
      })
      expect(summary.ledgerViolations).toBe(0)
      // The model saw the writer's refusal of the empty draft as a tool error.
      const calls = yield* script.calls
      expect(calls).toHaveLength(5)
      expect(LanguageModelScript.lastToolResults(calls[3]!.prompt)[0]).toMatchObject({ name: "writer", isFailure: true, result: { error: "InvalidOutput" } })
    }))
})

describe("examples/research-crew.ts", () => {
  it.effect("hires within the run's budget: the writer is refused before any lock, the summarizer writes instead", () =>
    Effect.gen(function*() {
      const report = yield* Effect.provide(ResearchCrew.research, ResearchCrew.crew)
      const { prices, topics } = ResearchCrew
      expect(report.brief).toBe(topics.map((t) => `${t} is moving (2 sources)`).join("; "))
      // 3 searches (1.20) and the analysis (0.90) spent 2.10 of 3: the writer's 1.00 would pass the cap.
      expect(report.refused).toMatchObject({ _tag: "BudgetExceeded", limitMicros: u("3"), spentMicros: u("2.1"), requestedMicros: u("1") })
      expect(report.payments.map((p) => p.payeeName)).not.toContain("writer")
      const paid = [prices.searcher, prices.searcher, prices.searcher, prices.analyst, prices.summarizer] as ReadonlyArray<bigint>
      expect(report.payments.map((p) => p.released).sort()).toEqual([...paid].sort())
      const spent = paid.reduce((a, b) => a + b, 0n)
      expect(report.spentMicros).toBe(spent)
      // The lead referred each of its crew: 15% of every fee they paid comes back.
      expect(report.balanceMicros).toBe(u("5") - spent + paid.reduce((a, p) => a + shareOf(p), 0n))
    }))
})

describe("examples/metered-streaming.ts", () => {
  it.scoped("pays the transcriber per word and the feed per delivered quote; the rest of each lock is refunded", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("ringmaster-example-")
      const bill = yield* MeteredStreaming.run(dir)
      expect(bill.text).toBe("escrow pays for work that arrives and nothing else")
      expect(bill.quotes.map((q) => q.priceCents)).toEqual([10_007, 10_014, 10_021, 10_028])
      const byPayee = new Map(bill.payments.map((p) => [p.payeeName, p]))
      const words = 9n * MeteredStreaming.PER_WORD // nine words
      expect(byPayee.get("transcriber")).toMatchObject({
        locked: MeteredStreaming.TRANSCRIBE_MAX,
        released: words,
        fee: feeOf(words),
        refunded: MeteredStreaming.TRANSCRIBE_MAX - words
      })
      const quotes = 4n * MeteredStreaming.PER_QUOTE
      expect(byPayee.get("quote-feed")).toMatchObject({
        locked: MeteredStreaming.FEED_MAX,
        released: quotes,
        refunded: MeteredStreaming.FEED_MAX - quotes
      })
    }))
})
