/**
 * A usage-priced agent backed by a language model through `@effect/ai`: the
 * orchestrator locks the agent's maximum, the agent charges for the tokens the
 * model reports, and a partial release pays exactly that; the rest is refunded.
 *
 *   npx tsx examples/llm-agent.ts                       # a deterministic local model, offline
 *   OPENAI_API_KEY=sk-... npx tsx examples/llm-agent.ts # OpenAI (OPENAI_MODEL, default gpt-4o-mini)
 *
 * Only the `LanguageModel` layer changes between the two; the agent and the
 * money rules are the same. In-memory ledger; nothing else touches the network.
 */
import { LanguageModel } from "@effect/ai"
import { OpenAiClient, OpenAiLanguageModel } from "@effect/ai-openai"
import { FetchHttpClient } from "@effect/platform"
import { Config, Console, Effect, Layer, Option, Schema } from "effect"
import { Accounts, Agent, Escrow, LedgerSettings, MemoryLedger, Orchestrator, Usdc } from "ringmaster"

/** Token prices in micro-USDC: 1 per prompt token, 4 per completion token. */
export const MICROS_PER_INPUT_TOKEN = 1n
export const MICROS_PER_OUTPUT_TOKEN = 4n

export const Summarizer = Agent.metered({
  name: "llm-summarizer",
  input: Schema.Struct({ text: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(20_000)) }),
  output: Schema.Struct({ summary: Schema.String }),
  // Locked up front; what the tokens cost is paid, the rest refunded.
  maxPrice: Usdc.make("0.05"),
  run: ({ text }, task) =>
    Effect.gen(function*() {
      const response = yield* LanguageModel.generateText({ prompt: `Summarize in one sentence:\n\n${text}` })
      const inputTokens = BigInt(response.usage.inputTokens ?? 0)
      const outputTokens = BigInt(response.usage.outputTokens ?? 0)
      yield* task.charge(Usdc.unsafeMicros(inputTokens * MICROS_PER_INPUT_TOKEN + outputTokens * MICROS_PER_OUTPUT_TOKEN))
      return { summary: response.text.trim() }
    })
})

/**
 * A stand-in model for offline runs and tests: it answers with the first sentence
 * and counts one token per word, like a (very) small model would bill.
 */
export const LocalModel = Layer.effect(
  LanguageModel.LanguageModel,
  LanguageModel.make({
    generateText: (options) =>
      Effect.sync(() => {
        const prompt = JSON.stringify(options.prompt.content)
        const body = prompt.split("\\n\\n").slice(1).join(" ").replace(/["\]}]+$/g, "")
        const answer = (body.split(".")[0] ?? "").trim() + "."
        const words = (s: string) => s.split(/\s+/).filter((w) => w.length > 0).length
        return [
          { type: "text" as const, text: answer },
          {
            type: "finish" as const,
            reason: "stop" as const,
            usage: { inputTokens: words(prompt), outputTokens: words(answer), totalTokens: words(prompt) + words(answer) }
          }
        ]
      }),
    streamText: () => Effect.dieMessage("the local model does not stream") as never
  })
)

/** OpenAI when `OPENAI_API_KEY` is set, the local model otherwise. */
export const ModelFromEnv = Layer.unwrapEffect(
  Effect.map(Config.option(Config.redacted("OPENAI_API_KEY")), (key) =>
    Option.isNone(key)
      ? LocalModel
      : Layer.unwrapEffect(
        Effect.map(Config.withDefault(Config.string("OPENAI_MODEL"), "gpt-4o-mini"), (model) =>
          OpenAiLanguageModel.layer({ model }).pipe(
            Layer.provide(OpenAiClient.layer({ apiKey: key.value })),
            Layer.provide(FetchHttpClient.layer)
          ))
      ))
)

export const summarize = (text: string) =>
  Effect.gen(function*() {
    const orchestrator = yield* Orchestrator
    const handle = yield* Orchestrator.spawn(Summarizer)
    const { summary } = yield* Orchestrator.delegate(handle, { text }, { timeoutMs: 60_000 })
    const [payment] = yield* orchestrator.payments()
    return { summary, payment: payment! }
  })

export const run = (text: string, model: Layer.Layer<LanguageModel.LanguageModel, unknown> = LocalModel) =>
  summarize(text).pipe(
    Effect.provide(
      Orchestrator.layer({ name: "orchestrator", deposit: Usdc.make("1") }).pipe(
        Layer.provideMerge(Accounts.layerFromLedger),
        Layer.provideMerge(Escrow.layerFromLedger),
        Layer.provideMerge(MemoryLedger.layer),
        Layer.provide(LedgerSettings.layer()),
        Layer.provideMerge(model)
      )
    )
  )

const TEXT = "Escrow lets an orchestrator pay a sub-agent only for work that arrives. " +
  "Funds are locked before the task starts and released when the output checks out."

export const main = Effect.gen(function*() {
  const { summary, payment } = yield* run(TEXT, ModelFromEnv)
  yield* Console.log(`summary: ${summary}`)
  yield* Console.log(
    `locked ${Usdc.format(payment.locked)}, paid ${Usdc.format(payment.released)} (fee ${Usdc.format(payment.fee)}), refunded ${Usdc.format(payment.refunded)}`
  )
})

if (import.meta.url === `file://${process.argv[1]}`) Effect.runPromise(main).catch((e) => {
  console.error(e)
  process.exit(1)
})
