/**
 * A planner backed by a language model hires a data fetcher, a reasoner and a writer
 * by calling them as tools. Each call is an escrowed task paid from the planner's
 * wallet, within its budget; the writer's empty first draft is refunded and the
 * model, told so by the tool's error result, asks again. The planner's own tokens
 * are billed to the orchestrator that hired it.
 *
 *   npx tsx examples/llm-orchestrator.ts                       # a scripted model, offline
 *   OPENAI_API_KEY=sk-... npx tsx examples/llm-orchestrator.ts # OpenAI (OPENAI_MODEL, default gpt-4o-mini)
 *
 * Only the `LanguageModel` layer changes between the two. In-memory ledger.
 */
import type { LanguageModel } from "@effect/ai"
import { OpenAiClient, OpenAiLanguageModel } from "@effect/ai-openai"
import { FetchHttpClient } from "@effect/platform"
import { Config, Console, Effect, Layer, Option } from "effect"
import { Accounts, Agent, Escrow, LanguageModelScript, Ledger, LedgerSettings, MemoryLedger, Orchestrator, type Payment, Usdc } from "ringmaster"
import { DataFetcher, makeWriter, Reasoner } from "./orchestrator.js"

/** Token prices in micro-USDC: 1 per prompt token, 4 per completion token. */
export const pricing = { microsPerInputToken: 1n, microsPerOutputToken: 4n }

const INSTRUCTIONS = "You write a one-paragraph market note. Hire data-fetcher once per topic, then reasoner on " +
  "all the datasets, then writer on the findings. If a hire fails, read its error and decide: retry, or answer " +
  "without it. Answer with the note only."

export const PROMPT = "Market note on eur-usd and brent crude."

const results = (prompt: Parameters<typeof LanguageModelScript.lastToolResults>[0]) =>
  LanguageModelScript.lastToolResults(prompt).map((r) => r.result as any)

/**
 * What a model might do with the prompt, call by call: the fetches at once, then the
 * reasoner on their datasets, the writer on the findings (again if it fails), the note.
 */
export const script = () => {
  let findings: ReadonlyArray<string> = []
  const write = (usage: LanguageModelScript.TokenUsage) => LanguageModelScript.toolCall("writer", { findings }, usage)
  return LanguageModelScript.make([
    LanguageModelScript.toolCalls([
      { name: "data-fetcher", params: { topic: "eur-usd" } },
      { name: "data-fetcher", params: { topic: "brent crude" } }
    ], { inputTokens: 300, outputTokens: 40 }),
    (prompt) => LanguageModelScript.toolCall("reasoner", { datasets: results(prompt) }, { inputTokens: 420, outputTokens: 30 }),
    (prompt) => {
      findings = results(prompt)[0].findings
      return write({ inputTokens: 500, outputTokens: 25 })
    },
    (prompt) => {
      const [draft] = LanguageModelScript.lastToolResults(prompt)
      return draft?.isFailure === true
        ? write({ inputTokens: 520, outputTokens: 25 })
        : LanguageModelScript.text((draft?.result as { report: string }).report, { inputTokens: 520, outputTokens: 60 })
    },
    (prompt) => LanguageModelScript.text(results(prompt)[0].report, { inputTokens: 560, outputTokens: 60 })
  ])
}

/** OpenAI when `OPENAI_API_KEY` is set, the scripted model otherwise. */
export const modelFromEnv: Effect.Effect<Layer.Layer<LanguageModel.LanguageModel>> = Effect.gen(function*() {
  const key = yield* Effect.orDie(Config.option(Config.redacted("OPENAI_API_KEY")))
  if (Option.isNone(key)) return (yield* script()).layer
  const model = yield* Effect.orDie(Config.withDefault(Config.string("OPENAI_MODEL"), "gpt-4o-mini"))
  return OpenAiLanguageModel.layer({ model }).pipe(
    Layer.provide(OpenAiClient.layer({ apiKey: key.value })),
    Layer.provide(FetchHttpClient.layer)
  )
})

export interface Summary {
  readonly report: string
  /** Every escrow the planner was party to: its hire, and its hires. */
  readonly payments: ReadonlyArray<Payment>
  readonly balances: Readonly<Record<string, bigint>>
  readonly ledgerViolations: number
}

export const job = (model: Layer.Layer<LanguageModel.LanguageModel>) =>
  Effect.gen(function*() {
    const orchestrator = yield* Orchestrator
    const accounts = yield* Accounts
    const fetcher = yield* Orchestrator.spawn(DataFetcher)
    const reasoner = yield* Orchestrator.spawn(Reasoner)
    const writer = yield* Orchestrator.spawn(makeWriter())
    const planner = yield* Orchestrator.spawn(Agent.llm({
      name: "planner",
      instructions: INSTRUCTIONS,
      tools: [fetcher, reasoner, writer],
      // At most 1.50 a hire and 4 in all per task: checked before anything is locked.
      budget: { perTask: Usdc.make("1.50"), perRun: Usdc.make("4") },
      maxPrice: Usdc.make("0.05"),
      pricing,
      hireTimeoutMs: 30_000
    }))
    // The planner pays its hires from its own wallet.
    yield* accounts.deposit(planner.wallet, Usdc.make("5"))

    const { text } = yield* Orchestrator.delegate(planner, { prompt: PROMPT }, { timeoutMs: 120_000 }).pipe(Effect.provide(model))

    const balances: Record<string, bigint> = {}
    for (const who of [orchestrator.identity, planner.identity, fetcher.identity, reasoner.identity, writer.identity]) {
      balances[who.name] = (yield* accounts.balance(who.wallet)).available
    }
    const report = yield* Effect.flatMap(Ledger, (ledger) => ledger.verify)
    return {
      report: text,
      payments: yield* planner.orchestrator!.payments(),
      balances,
      ledgerViolations: report.violations.length
    } satisfies Summary
  })

const usdc = (micros: bigint) => Usdc.format(micros).padStart(10)

export const print = (summary: Summary) =>
  Effect.gen(function*() {
    yield* Console.log(`\nReport: ${summary.report}\n`)
    yield* Console.log("Who paid whom (escrows, oldest first)")
    yield* Console.log("  payer         → payee          locked     paid       fee        refunded   outcome")
    for (const p of summary.payments) {
      yield* Console.log(
        `  ${p.payerName.padEnd(13)} → ${p.payeeName.padEnd(13)} ${usdc(p.locked)} ${usdc(p.released)} ${usdc(p.fee)} ${usdc(p.refunded)}   ${p.outcome._tag}`
      )
    }
    yield* Console.log("\nBalances")
    for (const [name, available] of Object.entries(summary.balances)) yield* Console.log(`  ${name.padEnd(13)} ${usdc(available)}`)
    yield* Console.log(`\nLedger check: ${summary.ledgerViolations === 0 ? "balanced" : `${summary.ledgerViolations} violation(s)`}`)
  })

/** The whole example on an in-memory ledger: the orchestrator starts with 10 USDC. */
export const run = (model: Layer.Layer<LanguageModel.LanguageModel>) =>
  job(model).pipe(
    Effect.provide(
      Orchestrator.layer({ name: "orchestrator", deposit: Usdc.make("10") }).pipe(
        Layer.provideMerge(Accounts.layerFromLedger),
        Layer.provideMerge(Escrow.layerFromLedger),
        Layer.provideMerge(MemoryLedger.layer),
        Layer.provide(LedgerSettings.layer())
      )
    )
  )

export const main = Effect.flatMap(modelFromEnv, (model) => Effect.tap(run(model), print))

if (import.meta.url === `file://${process.argv[1]}`) Effect.runPromise(main).catch((e) => {
  console.error(e)
  process.exit(1)
})
