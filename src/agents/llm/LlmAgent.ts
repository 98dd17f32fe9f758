/**
 * LLM agents: a metered agent whose `run` is a language model that hires other
 * agents through tool calls.
 *
 *   const planner = Agent.llm({
 *     name: "planner",
 *     instructions: "Answer with a market note. Hire what you need.",
 *     tools: [fetcher, writer],                      // handles from Orchestrator.spawn
 *     budget: { perTask: Usdc.make("1"), perRun: Usdc.make("2") },
 *     maxPrice: Usdc.make("0.05"),                   // the most its own tokens bill one task
 *     pricing: { microsPerInputToken: 1n, microsPerOutputToken: 4n }
 *   })
 *
 * Each handle is one `@effect/ai` tool: its parameters are the sub-agent's input
 * schema, its result the sub-agent's output, and calling it is an
 * `Orchestrator.delegate` from the LLM agent's own wallet: escrow locked before the
 * work, released on valid output, refunded otherwise. `budget` caps what one task
 * may spend on hires, checked before any lock. A hire that is refused or fails
 * comes back to the model as the tool's error result (`HireFailed`), never as a
 * failure of the task.
 *
 * The model's own usage is billed as `Agent.metered` bills: whoever hires the LLM
 * agent locks `maxPrice`, each model call charges its tokens at `pricing`, and on an
 * answer a partial release pays what was used. A task that ends without an answer
 * (`TurnLimitReached`, `UsageLimitReached`, a model error) is refunded in full.
 *
 * `@effect/ai`'s runtime (its prompt and response schemas) is loaded on the first
 * task, not with this module, so the core entry does not pay for it.
 */
import type * as AiError from "@effect/ai/AiError"
import type * as LanguageModel from "@effect/ai/LanguageModel"
import { Effect, Either, type Layer, Schema } from "effect"
import { InvalidInput } from "../../domain/errors.js"
import * as Agent from "../Agent.js"
import type { Budget } from "../Budget.js"
import { checkBudget } from "../orchestrator/budgets.js"
import { checkInteger } from "../orchestrator/checks.js"
import type { Handle, Orchestrator } from "../orchestrator/contract.js"
import type { TurnLimitReached, UsageLimitReached } from "./errors.js"

export const Limits = {
  /** A task's prompt, in characters. */
  promptChars: 100_000,
  /** The instructions (system prompt), in characters. */
  instructionsChars: 100_000,
  /** Sub-agents one LLM agent may hire: providers cap the tools of a call (OpenAI: 128). */
  maxTools: 64,
  /** Tool names providers accept: letters, digits, `_` and `-`, at most 64. */
  toolNameChars: 64,
  defaultMaxTurns: 8,
  maxTurns: 32
} as const

export const LlmInput = Schema.Struct({
  prompt: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(Limits.promptChars))
})
export type LlmInput = typeof LlmInput.Type

export const LlmOutput = Schema.Struct({ text: Schema.String })
export type LlmOutput = typeof LlmOutput.Type

/** What the model's tokens cost, in micro-USDC per token. */
export interface TokenPricing {
  readonly microsPerInputToken: bigint
  readonly microsPerOutputToken: bigint
}

export type AnyTaskHandle = Handle<Agent.Agent<any, any, any, any>>

/** What hiring the sub-agent behind a handle requires of the caller (its `Orchestrator` is provided by the hire). */
export type HireRequirements<H> = H extends Handle<Agent.Agent<any, any, any, infer R>> ? Exclude<R, Orchestrator> : never

export type LlmError = AiError.AiError | TurnLimitReached | UsageLimitReached | InvalidInput

export interface LlmOptions<Tools extends ReadonlyArray<AnyTaskHandle>, EM, RM> {
  readonly name: string
  /** The system prompt of every task. */
  readonly instructions: string
  /** The sub-agents the model may hire: one tool each, named by `toolName(handle.name)`. */
  readonly tools: Tools
  /** Caps on one task's hires: `perTask` on each, `perRun` on all of them together. */
  readonly budget?: Budget | undefined
  /** The most the model's usage may bill one task (locked by whoever hires this agent). */
  readonly maxPrice: Agent.Price<LlmInput>
  readonly pricing: TokenPricing
  /** The model; the `LanguageModel` the hirer provides when omitted. */
  readonly model?: Layer.Layer<LanguageModel.LanguageModel, EM, RM> | undefined
  /** Model calls per task, 1..32; default 8. */
  readonly maxTurns?: number | undefined
  /** Each hire's deadline; the orchestrator's default (5 minutes) when omitted. */
  readonly hireTimeoutMs?: number | undefined
}

/** One sub-agent as the model sees it. */
export interface HireTool {
  readonly name: string
  readonly handle: AnyTaskHandle
}

/** An LLM agent's settings, checked. */
export interface LlmDefinition {
  readonly name: string
  readonly instructions: string
  readonly tools: ReadonlyArray<HireTool>
  readonly budget: Budget
  readonly pricing: TokenPricing
  readonly maxTurns: number
  readonly hireTimeoutMs: number | undefined
  readonly model: Layer.Layer<LanguageModel.LanguageModel, any, any> | undefined
}

/** The tool name of an agent: characters providers refuse become `_`, cut at 64. */
export const toolName = (agentName: string): string =>
  agentName.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, Limits.toolNameChars)

const orThrow = <A>(either: Either.Either<A, InvalidInput>): A => {
  if (Either.isLeft(either)) throw either.left
  return either.right
}

const check = (options: LlmOptions<ReadonlyArray<AnyTaskHandle>, unknown, unknown>): LlmDefinition => {
  if (options.instructions.length > Limits.instructionsChars) {
    throw new InvalidInput({ field: "instructions", message: `at most ${Limits.instructionsChars} characters` })
  }
  if (options.tools.length > Limits.maxTools) {
    throw new InvalidInput({ field: "tools", message: `at most ${Limits.maxTools} sub-agents` })
  }
  const tools = options.tools.map((handle) => ({ name: toolName(handle.name), handle }))
  const names = new Set<string>()
  for (const tool of tools) {
    if (names.has(tool.name)) {
      throw new InvalidInput({ field: "tools", message: `two sub-agents share the tool name ${tool.name}` })
    }
    names.add(tool.name)
  }
  for (const [field, value] of Object.entries(options.pricing)) {
    if (typeof value !== "bigint" || value < 0n) {
      throw new InvalidInput({ field: `pricing.${field}`, message: "must be a bigint of micro-USDC, not negative" })
    }
  }
  const maxTurns = options.maxTurns ?? Limits.defaultMaxTurns
  orThrow(checkInteger("maxTurns", maxTurns, 1, Limits.maxTurns))
  return {
    name: options.name,
    instructions: options.instructions,
    tools,
    budget: orThrow(checkBudget("budget", options.budget)),
    pricing: options.pricing,
    maxTurns,
    hireTimeoutMs: options.hireTimeoutMs,
    model: options.model
  }
}

const loop = Effect.promise(() => import("./loop.js"))

/**
 * An LLM agent that hires the sub-agents behind `tools`. Bad constant arguments
 * (two tools with one name, a negative budget) throw `InvalidInput` at definition time.
 */
export const llm = <const Tools extends ReadonlyArray<AnyTaskHandle>, EM = never, RM = LanguageModel.LanguageModel>(
  options: LlmOptions<Tools, EM, RM>
): Agent.Agent<LlmInput, LlmOutput, LlmError | EM, Orchestrator | RM | HireRequirements<Tools[number]>> => {
  const definition = check(options)
  return Agent.metered({
    name: options.name,
    input: LlmInput,
    output: LlmOutput,
    maxPrice: options.maxPrice,
    run: (input, task) => Effect.flatMap(loop, (module) => module.answer(definition, input, task))
  }) as Agent.Agent<LlmInput, LlmOutput, LlmError | EM, Orchestrator | RM | HireRequirements<Tools[number]>>
}
