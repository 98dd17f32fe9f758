/**
 * How a delegated task can end other than with its output. Each one settles the
 * task's escrow by cancelling it (a full refund of what remains); the facts a
 * caller needs to decide on a retry or a fallback travel with the error.
 */
import { Schema } from "effect"
import { format } from "../domain/Usdc.js"

/** The task did not finish within its `timeoutMs`; its escrow was cancelled. */
export class TaskTimedOut extends Schema.TaggedError<TaskTimedOut>()("TaskTimedOut", {
  agent: Schema.String,
  timeoutMs: Schema.Number
}) {
  override get message() {
    return `agent ${this.agent} did not finish within ${this.timeoutMs} ms`
  }
}

/** The sub-agent's `run` died (a defect) and its restart policy gave up. */
export class AgentCrashed extends Schema.TaggedError<AgentCrashed>()("AgentCrashed", {
  agent: Schema.String,
  restarts: Schema.Number,
  defect: Schema.String
}) {
  override get message() {
    return `agent ${this.agent} crashed after ${this.restarts} restart(s): ${this.defect}`
  }
}

/** The sub-agent was stopped (its orchestrator's scope closed, or `handle.stop`): nothing was locked. */
export class AgentStopped extends Schema.TaggedError<AgentStopped>()("AgentStopped", {
  agent: Schema.String
}) {
  override get message() {
    return `agent ${this.agent} is stopped`
  }
}

/**
 * A metered agent's `task.charge` would take its bill past the maximum it declared
 * (and the escrow locked). The charge is refused and not added: the payer is never
 * billed beyond the maximum. Unhandled, it fails the task and the escrow is
 * refunded in full; an agent that handles it is paid what it charged before.
 */
export class ChargeExceedsMaximum extends Schema.TaggedError<ChargeExceedsMaximum>()("ChargeExceedsMaximum", {
  agent: Schema.String,
  chargeMicros: Schema.BigIntFromSelf,
  chargedMicros: Schema.BigIntFromSelf,
  maximumMicros: Schema.BigIntFromSelf
}) {
  override get message() {
    return `agent ${this.agent} charged ${format(this.chargeMicros)} USDC on top of ${format(this.chargedMicros)} USDC, ` +
      `beyond its maximum of ${format(this.maximumMicros)} USDC`
  }
}

/** The sub-agent's output did not decode against its output schema: it is not paid for. */
export class InvalidOutput extends Schema.TaggedError<InvalidOutput>()("InvalidOutput", {
  agent: Schema.String,
  message: Schema.String
}) {}

export const EscrowRefusalReason = Schema.Literal(
  "malformed",
  "not_found",
  "not_pending",
  "wrong_payee",
  "underfunded",
  "expiring",
  "replayed",
  "unverifiable"
)
export type EscrowRefusalReason = typeof EscrowRefusalReason.Type

/**
 * A remote agent refused the escrow it was offered, before doing any work: the id
 * was forged or unknown, already settled, paid someone else, locked less than
 * the agent's price, was about to expire, or was already used for another task;
 * or the settlement service could not confirm it (`unverifiable`: down, or the
 * escrow is not one this agent is a party to).
 */
export class EscrowRefused extends Schema.TaggedError<EscrowRefused>()("EscrowRefused", {
  escrowId: Schema.String,
  reason: EscrowRefusalReason,
  message: Schema.String
}) {}

/** A remote agent could not be reached or answered outside its contract. */
export class RemoteAgentUnavailable extends Schema.TaggedError<RemoteAgentUnavailable>()("RemoteAgentUnavailable", {
  agent: Schema.String,
  url: Schema.String,
  message: Schema.String
}) {}

/** A remote agent's own `run` failed; its error travels as text. */
export class RemoteTaskFailed extends Schema.TaggedError<RemoteTaskFailed>()("RemoteTaskFailed", {
  agent: Schema.String,
  message: Schema.String
}) {}
