/**
 * A scripted `LanguageModel` for tests and offline runs: it replays a sequence of
 * replies, one per model call, and records what it was shown. A reply is a list of
 * response parts, or a function of the prompt so far (to react to tool results).
 *
 *   const script = yield* LanguageModelScript.make([
 *     LanguageModelScript.toolCall("fetcher", { topic: "rates" }, { inputTokens: 120, outputTokens: 15 }),
 *     (prompt) => LanguageModelScript.lastToolResults(prompt)[0]?.isFailure
 *       ? LanguageModelScript.text("No data: nothing to report.")
 *       : LanguageModelScript.text("Rates rose.")
 *   ])
 *   ... Effect.provide(script.layer) ...
 *   const calls = yield* script.calls   // the prompt and tools of each call
 *
 * A call past the last reply fails with an `AiError` (`UnknownError`) naming it.
 * The model behind `layer` is loaded on first build (see `LlmAgent.ts`).
 */
import type * as LanguageModel from "@effect/ai/LanguageModel"
import type * as Prompt from "@effect/ai/Prompt"
import type * as Response from "@effect/ai/Response"
import { Effect, Layer } from "effect"

export type Reply = ReadonlyArray<Response.PartEncoded>

/** One model call's reply: fixed, or made from the prompt the model is shown. */
export type Turn = Reply | ((prompt: Prompt.Prompt) => Reply)

/** Tokens a reply reports, which is what an LLM agent bills; none unless given. */
export interface TokenUsage {
  readonly inputTokens: number
  readonly outputTokens: number
}

/** What the model was shown at one call. */
export interface ScriptCall {
  readonly prompt: Prompt.Prompt
  /** The tools it was offered, by name. */
  readonly tools: ReadonlyArray<string>
}

export interface Script {
  /** The scripted model. Every build of it replays the same script, one reply per call. */
  readonly layer: Layer.Layer<LanguageModel.LanguageModel>
  /** Each call so far, oldest first. */
  readonly calls: Effect.Effect<ReadonlyArray<ScriptCall>>
}

/** A script's progress; the model is a view of it. */
export interface ScriptState {
  readonly turns: ReadonlyArray<Turn>
  readonly calls: Array<ScriptCall>
}

const finish = (reason: "stop" | "tool-calls", usage: TokenUsage | undefined): Response.FinishPartEncoded => {
  const { inputTokens, outputTokens } = usage ?? { inputTokens: 0, outputTokens: 0 }
  return { type: "finish", reason, usage: { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens } }
}

/** A reply that answers with `text`. */
export const text = (text: string, usage?: TokenUsage): Reply => [{ type: "text", text }, finish("stop", usage)]

/** A reply that calls tools; their results go back to the model on the next call. Ids are filled in per call. */
export const toolCalls = (
  calls: ReadonlyArray<{ readonly name: string; readonly params: unknown }>,
  usage?: TokenUsage
): Reply => [
  ...calls.map(({ name, params }): Response.ToolCallPartEncoded => ({ type: "tool-call", id: "", name, params })),
  finish("tool-calls", usage)
]

/** A reply that calls one tool. */
export const toolCall = (name: string, params: unknown, usage?: TokenUsage): Reply => toolCalls([{ name, params }], usage)

export interface ToolResult {
  readonly name: string
  /** The result as the model receives it (encoded). */
  readonly result: unknown
  /** True when the tool returned its error result (a refused or failed hire). */
  readonly isFailure: boolean
}

/** The tool results of the prompt's last message, when it is one of tool results. */
export const lastToolResults = (prompt: Prompt.Prompt): ReadonlyArray<ToolResult> => {
  const last = prompt.content[prompt.content.length - 1]
  if (last === undefined || last.role !== "tool") return []
  return last.content.map((part) => ({ name: part.name, result: part.result, isFailure: part.isFailure }))
}

const model = Effect.promise(() => import("./scriptModel.js"))

/** A script of `turns`, and its model. */
export const make = (turns: ReadonlyArray<Turn>): Effect.Effect<Script> =>
  Effect.sync(() => {
    const state: ScriptState = { turns, calls: [] }
    return {
      layer: Layer.unwrapEffect(Effect.map(model, (module) => module.layer(state))),
      calls: Effect.sync(() => [...state.calls])
    }
  })

/** The scripted model alone: each build replays `turns` from the first. */
export const layer = (turns: ReadonlyArray<Turn>): Layer.Layer<LanguageModel.LanguageModel> =>
  Layer.unwrapEffect(Effect.map(make(turns), (script) => script.layer))
