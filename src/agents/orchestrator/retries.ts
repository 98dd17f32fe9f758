/** Which failures of a task another attempt, or another sub-agent, may fix. */
/**
 * Errors another attempt on the same sub-agent cannot fix: the caller's input or
 * caps, the payer's funds, the settlement service's refusals, a stopped agent.
 * Everything else (the agent's own errors, timeouts, crashes, invalid output) is
 * retried when the caller asked for retries.
 */
const terminalTags = new Set([
  "BudgetExceeded",
  "InvalidInput",
  "InsufficientFunds",
  "AgentNotFound",
  "IdempotencyConflict",
  "MandateNotFound",
  "MandateExceeded",
  "LedgerUnavailable",
  "Forbidden",
  "EscrowNotFound",
  "EscrowNotPending",
  "EscrowExpired",
  "ReleaseExceedsRemaining",
  "AgentStopped",
  "EscrowRefused"
])
export const tagOf = (e: unknown): string | undefined =>
  typeof e === "object" && e !== null && "_tag" in e && typeof e._tag === "string" ? e._tag : undefined
export const isRetryable = (e: unknown) => !terminalTags.has(tagOf(e) ?? "")
export const isFallbackable = (e: unknown) => isRetryable(e) || tagOf(e) === "AgentStopped" || tagOf(e) === "EscrowRefused"
