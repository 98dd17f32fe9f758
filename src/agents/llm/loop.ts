/**
 * An LLM agent's task: the model is called with the hire tools until it answers
 * without calling one, each call billed by its tokens, the hires within the
 * task's budget. Loaded on the first task (see `LlmAgent.ts`).
 */
import * as LanguageModel from "@effect/ai/LanguageModel"
import * as Prompt from "@effect/ai/Prompt"
import type * as Response from "@effect/ai/Response"
import { Effect } from "effect"
import type * as Usdc from "../../domain/Usdc.js"
import type * as Agent from "../Agent.js"
import { Orchestrator } from "../orchestrator/contract.js"
import { TurnLimitReached, UsageLimitReached } from "./errors.js"
import type { LlmDefinition, LlmError, LlmInput, LlmOutput, TokenPricing } from "./LlmAgent.js"
import { hireToolkit } from "./toolkit.js"

const costOf = (usage: Response.Usage, pricing: TokenPricing): bigint =>
  BigInt(usage.inputTokens ?? 0) * pricing.microsPerInputToken +
  BigInt(usage.outputTokens ?? 0) * pricing.microsPerOutputToken

/** The model's answer to `input`, hiring through the LLM agent's own orchestrator. */
export const answer = (
  definition: LlmDefinition,
  input: LlmInput,
  task: Agent.Task
): Effect.Effect<LlmOutput, LlmError, Orchestrator | LanguageModel.LanguageModel> =>
  Effect.gen(function*() {
    const orchestrator = yield* Orchestrator
    const toolkit = yield* hireToolkit(definition.tools, orchestrator, definition.hireTimeoutMs)
    let prompt = Prompt.make([
      { role: "system", content: definition.instructions },
      { role: "user", content: input.prompt }
    ])
    for (let turn = 1; turn <= definition.maxTurns; turn++) {
      const used = yield* task.used
      if (used >= task.lockedMicros) {
        return yield* new UsageLimitReached({ agent: definition.name, lockedMicros: task.lockedMicros })
      }
      const response = yield* LanguageModel.generateText({ prompt, toolkit })
      // Billed per call, as reported; what goes past the lock is the agent's loss, never the hirer's.
      const cost = costOf(response.usage, definition.pricing)
      const left = task.lockedMicros - used
      if (cost > 0n) yield* task.charge((cost < left ? cost : left) as Usdc.Usdc)
      prompt = Prompt.merge(prompt, Prompt.fromResponseParts(response.content))
      if (response.toolCalls.length === 0) return { text: response.text }
    }
    return yield* new TurnLimitReached({ agent: definition.name, turns: definition.maxTurns })
  }).pipe(
    (effect) => Effect.flatMap(Orchestrator, (orchestrator) => orchestrator.withBudget(definition.budget)(effect)),
    (effect) => definition.model === undefined ? effect : Effect.provide(effect, definition.model)
  ) as Effect.Effect<LlmOutput, LlmError, Orchestrator | LanguageModel.LanguageModel>
