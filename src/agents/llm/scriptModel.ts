/** The `LanguageModel` behind a script (see `LanguageModelScript.ts`), loaded on first use. */
import * as AiError from "@effect/ai/AiError"
import * as LanguageModel from "@effect/ai/LanguageModel"
import type * as Response from "@effect/ai/Response"
import { Effect, Layer, Stream } from "effect"
import type { Reply, ScriptState } from "./LanguageModelScript.js"

/** The next reply, recorded with what the model was shown; tool calls without an id get one unique in the script. */
const nextReply = (state: ScriptState, options: LanguageModel.ProviderOptions, method: string) =>
  Effect.suspend((): Effect.Effect<Reply, AiError.AiError> => {
    const index = state.calls.length
    const turn = state.turns[index]
    if (turn === undefined) {
      return Effect.fail(
        new AiError.UnknownError({
          module: "LanguageModelScript",
          method,
          description: `the script has ${state.turns.length} repl${state.turns.length === 1 ? "y" : "ies"}, and call ${index + 1} was made`
        })
      )
    }
    state.calls.push({ prompt: options.prompt, tools: options.tools.map((tool) => tool.name) })
    const reply = typeof turn === "function" ? turn(options.prompt) : turn
    return Effect.succeed(
      reply.map((part, i) => (part.type === "tool-call" && part.id === "" ? { ...part, id: `call_${index + 1}_${i + 1}` } : part))
    )
  })

/** A reply as a stream: each text part as start, one delta, end; the other parts as they are. */
const streamed = (reply: Reply): ReadonlyArray<Response.StreamPartEncoded> =>
  reply.flatMap((part, i): ReadonlyArray<Response.StreamPartEncoded> =>
    part.type === "text"
      ? [
        { type: "text-start", id: `text_${i}` },
        { type: "text-delta", id: `text_${i}`, delta: part.text },
        { type: "text-end", id: `text_${i}` }
      ]
      : [part as Response.StreamPartEncoded]
  )

export const layer = (state: ScriptState): Layer.Layer<LanguageModel.LanguageModel> =>
  Layer.effect(
    LanguageModel.LanguageModel,
    LanguageModel.make({
      generateText: (options) => Effect.map(nextReply(state, options, "generateText"), (reply) => [...reply]),
      streamText: (options) =>
        Stream.flatMap(Stream.fromEffect(nextReply(state, options, "streamText")), (reply) => Stream.fromIterable(streamed(reply)))
    })
  )
