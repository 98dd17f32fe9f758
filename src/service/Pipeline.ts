/**
 * What the orchestrator does for a paid request: the one place to plug in your own
 * agents. The service opens the payer's escrow, runs the task, and releases or
 * cancels; a task only computes its result (and may hire sub-agents, paying them
 * from the orchestrator's wallet through the same `Escrow`).
 *
 *   const MyPipeline = Pipeline.layer({
 *     inference: (prompt, ctx) => callMyModel(prompt),          // POST /inference
 *     tasks: [
 *       Pipeline.task({                                          // POST /tasks/translate
 *         name: "translate",
 *         input: Schema.Struct({ text: Schema.String, to: Schema.String }),
 *         price: (input) => Usdc.unsafeMicros(1_000 + input.text.length * 20),
 *         run: (input, ctx) => translate(input)
 *       })
 *     ]
 *   })
 *   Service.layer({ pipeline: MyPipeline })
 *
 * `/inference` is priced by one published rule (`inferencePrice`), whatever runs it.
 */
import { Context, Effect, Layer, Schema } from "effect"
import type { EscrowId, WalletAddress } from "../domain/ids.js"
import * as Usdc from "../domain/Usdc.js"

/** What a task knows about the request it serves. */
export interface TaskContext {
  readonly payer: WalletAddress
  /** The payer's escrow, pending while the task runs. */
  readonly escrowId: EscrowId
  /** The orchestrator's own wallet (the payee). */
  readonly orchestrator: WalletAddress
  readonly region: string
  /** Bound on the task, after which it is interrupted and the escrow cancelled. */
  readonly timeoutMs: number
}

/** A task as the service runs it: its requirements already provided by the pipeline's layer. */
export interface PaidTask {
  readonly name: string
  readonly description: string
  /** Decodes the request's `input` field. */
  readonly decode: (input: unknown) => Effect.Effect<unknown, { readonly message: string }>
  readonly price: (input: unknown) => Usdc.Usdc
  /** The result, JSON-ready. */
  readonly run: (input: unknown, ctx: TaskContext) => Effect.Effect<unknown, unknown>
  /** A fixed price, for `/info`; undefined when it depends on the input. */
  readonly listPrice: Usdc.Usdc | undefined
}

export interface PipelineShape {
  readonly inference: (prompt: string, ctx: TaskContext) => Effect.Effect<string, unknown>
  readonly tasks: ReadonlyMap<string, PaidTask>
  /** Sub-agents spawned and not stopped, for the `ringmaster_sub_agents` gauge. */
  readonly subAgents: Effect.Effect<number>
}

export class Pipeline extends Context.Tag("ringmaster/service/Pipeline")<Pipeline, PipelineShape>() {}

/** The per-request price the escrow dialect's agents expect, in integers: max(0.001, len(prompt) × 0.00001) USDC = max(1000, len × 10) micro-USDC. */
export const MIN_INFERENCE_MICROS = 1_000n
export const INFERENCE_MICROS_PER_CHAR = 10n

/** `len(prompt)` as Python counts it: code points, not UTF-16 units. */
export const codePoints = (text: string): number => {
  let n = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    // A high surrogate followed by a low one is one code point.
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1)
      if (d >= 0xdc00 && d <= 0xdfff) i++
    }
    n++
  }
  return n
}

export const inferencePrice = (prompt: string): Usdc.Usdc => {
  const byLength = BigInt(codePoints(prompt)) * INFERENCE_MICROS_PER_CHAR
  return Usdc.unsafeMicros(byLength > MIN_INFERENCE_MICROS ? byLength : MIN_INFERENCE_MICROS)
}

/** A task definition with its requirements still open; `layer` provides them. */
export interface TaskDefinition<R> {
  readonly name: string
  readonly build: (context: Context.Context<R>) => PaidTask
}

const TASK_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/

export const task = <I, IE, O, E, R = never>(definition: {
  /** The path segment: `/tasks/<name>`; lower-case letters, digits, `-`, `_`. */
  readonly name: string
  readonly description?: string | undefined
  readonly input: Schema.Schema<I, IE>
  readonly price: Usdc.Usdc | ((input: I) => Usdc.Usdc)
  readonly run: (input: I, ctx: TaskContext) => Effect.Effect<O, E, R>
}): TaskDefinition<R> => {
  if (!TASK_NAME.test(definition.name)) throw new Error(`task name ${JSON.stringify(definition.name)} must match ${TASK_NAME}`)
  const decodeInput = Schema.decodeUnknown(definition.input, { errors: "first", onExcessProperty: "ignore" })
  return {
    name: definition.name,
    build: (context) => ({
      name: definition.name,
      description: definition.description ?? definition.name,
      decode: (input) => Effect.mapError(decodeInput(input), (e) => ({ message: e.message })),
      price: (input) => (typeof definition.price === "function" ? definition.price(input as I) : definition.price),
      run: (input, ctx) => Effect.provide(definition.run(input as I, ctx), context),
      listPrice: typeof definition.price === "function" ? undefined : definition.price
    })
  }
}

/** A pipeline from functions; what they need (`R`) is taken from the layer's context. */
export const layer = <R = never>(options: {
  readonly inference: (prompt: string, ctx: TaskContext) => Effect.Effect<string, unknown, R>
  readonly tasks?: ReadonlyArray<TaskDefinition<R>> | undefined
  readonly subAgents?: Effect.Effect<number, never, R> | undefined
}): Layer.Layer<Pipeline, never, R> =>
  Layer.effect(
    Pipeline,
    Effect.map(Effect.context<R>(), (context): PipelineShape => {
      const tasks = new Map<string, PaidTask>()
      for (const definition of options.tasks ?? []) {
        if (tasks.has(definition.name)) throw new Error(`two tasks are named ${definition.name}`)
        tasks.set(definition.name, definition.build(context))
      }
      return {
        inference: (prompt, ctx) => Effect.provide(options.inference(prompt, ctx), context),
        tasks,
        subAgents: options.subAgents === undefined ? Effect.succeed(0) : Effect.provide(options.subAgents, context)
      }
    })
  )

// ---------------------------------------------------------------------------
// The default: deterministic, offline, no key needed. Three in-process stages after
// a microservice mesh of agents (fetch → reason → write).

const words = (text: string) => text.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? []

const keywordsOf = (text: string, limit: number) => {
  const counts = new Map<string, number>()
  for (const word of words(text)) if (word.length > 3) counts.set(word, (counts.get(word) ?? 0) + 1)
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, limit).map(([w]) => w)
}

/** fetch → reason → write, deterministic: the same prompt always gives the same result. */
export const deterministicInference = (prompt: string, ctx: TaskContext): Effect.Effect<string> =>
  Effect.sync(() => {
    const fetched = words(prompt)
    const keywords = keywordsOf(prompt, 3)
    const kind = prompt.trim().endsWith("?") ? "question" : "statement"
    return `[${ctx.region}] ${kind} of ${fetched.length} words` + (keywords.length > 0 ? `; key terms: ${keywords.join(", ")}` : "")
  })

const Text = Schema.Struct({ text: Schema.String.pipe(Schema.maxLength(32_000)) })

export const defaultTasks: ReadonlyArray<TaskDefinition<never>> = [
  task({
    name: "summarize",
    description: "The first sentence and the word count of `text`",
    input: Text,
    price: Usdc.make("0.002"),
    run: ({ text }) =>
      Effect.sync(() => ({
        summary: (text.split(/(?<=[.!?])\s/)[0] ?? "").slice(0, 280),
        words: words(text).length
      }))
  }),
  task({
    name: "keywords",
    description: "The five most frequent words longer than three letters in `text`",
    input: Text,
    price: Usdc.make("0.001"),
    run: ({ text }) => Effect.sync(() => ({ keywords: keywordsOf(text, 5) }))
  })
]

/** The pipeline `npm start` runs when none is given. */
export const layerDefault: Layer.Layer<Pipeline> = layer({ inference: deterministicInference, tasks: defaultTasks })
