/**
 * The `Agent` namespace of the public API: the definitions of `Agent.ts`, and
 * `Agent.llm`, which builds on `Agent.metered` and so lives apart, in `llm/`.
 */
export * from "./Agent.js"
export {
  type AnyTaskHandle,
  type LlmError,
  LlmInput,
  type LlmOptions,
  LlmOutput,
  Limits as LlmLimits,
  llm,
  type TokenPricing,
  toolName
} from "./llm/LlmAgent.js"
