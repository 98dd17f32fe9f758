/**
 * How an LLM agent's task can end without an answer. Either one fails the task,
 * so the escrow its hirer locked is refunded; the hires it made on the way were
 * paid, each by its own escrow.
 */
import { Schema } from "effect"

/** The model still asked for tools after `maxTurns` calls. */
export class TurnLimitReached extends Schema.TaggedError<TurnLimitReached>()("TurnLimitReached", {
  agent: Schema.String,
  turns: Schema.Number
}) {
  override get message() {
    return `agent ${this.agent} had no answer from its model after ${this.turns} turn(s)`
  }
}

/** The model's usage reached what the hirer locked (`maxPrice`) before it answered. */
export class UsageLimitReached extends Schema.TaggedError<UsageLimitReached>()("UsageLimitReached", {
  agent: Schema.String,
  lockedMicros: Schema.BigIntFromSelf
}) {
  override get message() {
    return `agent ${this.agent} used all ${this.lockedMicros} micro-USDC of model usage its hirer locked, without an answer`
  }
}

/**
 * What the model receives when a hire is refused (over budget, bad input, no funds)
 * or fails (an error, a timeout, an invalid output: refunded): the tool's error
 * result, so it can try another agent or answer without it.
 */
export const HireFailed = Schema.Struct({
  agent: Schema.String,
  /** The error's tag: `BudgetExceeded`, `InsufficientFunds`, `TaskTimedOut`, ... */
  error: Schema.String,
  message: Schema.String
})
export type HireFailed = typeof HireFailed.Type
