/**
 * Sub-agent handles as `@effect/ai` tools. A tool's parameters are the sub-agent's
 * input schema (wrapped as `{ input }` when it is not a struct: providers take an
 * object), its success the sub-agent's output schema, and its handler an escrowed
 * `delegate`. Its failure mode is "return": a hire that is refused or fails becomes
 * the tool's error result for the model to read, not a failure of the model call.
 */
import * as Tool from "@effect/ai/Tool"
import * as Toolkit from "@effect/ai/Toolkit"
import { Effect, Schema } from "effect"
import * as Usdc from "../../domain/Usdc.js"
import type { OrchestratorShape } from "../orchestrator/contract.js"
import { HireFailed } from "./errors.js"
import type { AnyTaskHandle, HireTool } from "./LlmAgent.js"

const isStruct = (schema: Schema.Schema<any, any>): boolean =>
  "fields" in schema && typeof schema.fields === "object" && schema.fields !== null

const describe = (handle: AnyTaskHandle): string => {
  const pricing = handle.agent.pricing
  const price = pricing.listPrice === undefined
    ? "a price that depends on the input"
    : `${Usdc.format(pricing.listPrice)} USDC${pricing._tag === "Metered" ? " at most" : ""}`
  return `Hires the agent "${handle.name}" for ${price}, paid through escrow only when its output is valid.`
}

const hireFailed = (agent: string, error: unknown): HireFailed => {
  const tagged = typeof error === "object" && error !== null
  const tag = tagged && "_tag" in error && typeof error._tag === "string" ? error._tag : "Error"
  const message = tagged && "message" in error && typeof error.message === "string" && error.message !== ""
    ? error.message
    : String(error)
  return { agent, error: tag, message }
}

const toolOf = ({ handle, name }: HireTool): Tool.Any => {
  const input = handle.agent.input
  return Tool.make(name, {
    description: describe(handle),
    success: handle.agent.output as Schema.Schema.Any,
    failure: HireFailed,
    failureMode: "return"
  }).setParameters(isStruct(input) ? input as unknown as Tool.AnyStructSchema : Schema.Struct({ input })) as Tool.Any
}

/**
 * The toolkit whose handlers hire through `orchestrator`, each hire within
 * `hireTimeoutMs`. The handlers run in the model call's context, which holds
 * whatever the sub-agents require.
 */
export const hireToolkit = (
  tools: ReadonlyArray<HireTool>,
  orchestrator: OrchestratorShape,
  hireTimeoutMs: number | undefined
): Effect.Effect<Toolkit.WithHandler<Record<string, Tool.Any>>> => {
  const toolkit = Toolkit.make(...tools.map(toolOf)) as unknown as Toolkit.Toolkit<Record<string, Tool.Any>>
  const handlers: Record<string, (params: any) => Effect.Effect<unknown, HireFailed>> = {}
  for (const tool of tools) {
    const wrapped = !isStruct(tool.handle.agent.input)
    handlers[tool.name] = (params) =>
      orchestrator.delegate(tool.handle, wrapped ? params.input : params, { timeoutMs: hireTimeoutMs }).pipe(
        Effect.mapError((error) => hireFailed(tool.handle.name, error))
      ) as Effect.Effect<unknown, HireFailed>
  }
  return Effect.flatMap(
    toolkit.toContext(handlers as never) as Effect.Effect<any>,
    (context) => Effect.provide(toolkit, context) as Effect.Effect<Toolkit.WithHandler<Record<string, Tool.Any>>>
  )
}
