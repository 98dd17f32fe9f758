/**
 * Why a paid request was refused or failed, with the HTTP status each maps to.
 * A refusal (400, 402, 403, 404, 503 before the escrow exists) locks nothing; a
 * failure after the escrow opened (500) has cancelled it: the payer is refunded.
 */
import { Schema } from "effect"
import * as Usdc from "../domain/Usdc.js"

/** 400: the body is malformed; `field` names what was wrong. */
export class InvalidRequest extends Schema.TaggedError<InvalidRequest>()("InvalidRequest", {
  field: Schema.String,
  message: Schema.String
}) {}

/** 403: the payer has granted this orchestrator no live mandate. */
export class NoMandate extends Schema.TaggedError<NoMandate>()("NoMandate", {
  payer: Schema.String,
  payee: Schema.String
}) {
  override get message() {
    return `no live mandate from ${this.payer} lets this orchestrator (${this.payee}) charge it: grant one with POST /api/mandates`
  }
}

/** 403: the mandate exists but does not cover this charge (per-escrow maximum, budget, expiry, revoked). */
export class MandateRefused extends Schema.TaggedError<MandateRefused>()("MandateRefused", {
  message: Schema.String
}) {}

/** 402: the payer's available balance does not cover the price. Says nothing of what the balance is. */
export class PaymentRequired extends Schema.TaggedError<PaymentRequired>()("PaymentRequired", {
  message: Schema.String,
  requiredMicros: Schema.BigIntFromSelf
}) {}

/**
 * 402 with a challenge: the request carries no payment credential
 * (`Authorization: Payment <token>`), or the settlement service refused the one it
 * carries (`refusal` says why). The route adds where to mint a token.
 */
export class PaymentChallenge extends Schema.TaggedError<PaymentChallenge>()("PaymentChallenge", {
  priceMicros: Schema.BigIntFromSelf,
  payee: Schema.String,
  refusal: Schema.optional(Schema.String)
}) {
  override get message() {
    const price = `${Usdc.format(this.priceMicros)} USDC`
    return this.refusal === undefined
      ? `this request costs ${price}: mint a payment token for payee ${this.payee} (POST /api/payment-tokens on the settlement service, with the payer's API key) and retry with \`Authorization: Payment <token>\``
      : `${this.refusal}; this request costs ${price}: mint a new payment token for payee ${this.payee} and retry`
  }
}

/** 404: `/tasks/{agent}` names no task this service runs. */
export class UnknownTask extends Schema.TaggedError<UnknownTask>()("UnknownTask", {
  name: Schema.String,
  known: Schema.Array(Schema.String)
}) {
  override get message() {
    return `no task named ${JSON.stringify(this.name)}; this service runs: ${this.known.join(", ") || "none"}`
  }
}

/** 503: the ledger or the settlement service could not be reached; nothing was charged. */
export class SettlementUnavailable extends Schema.TaggedError<SettlementUnavailable>()("SettlementUnavailable", {
  message: Schema.String
}) {}

/** 503: the service is draining for a shutdown; retry on another machine. */
export class ShuttingDown extends Schema.TaggedError<ShuttingDown>()("ShuttingDown", {}) {
  override get message() {
    return "this machine is shutting down; retry the request"
  }
}

/** 500/504: the task failed or timed out after its escrow opened; the escrow was cancelled (full refund). */
export class TaskFailed extends Schema.TaggedError<TaskFailed>()("TaskFailed", {
  escrowId: Schema.String,
  timedOut: Schema.Boolean,
  message: Schema.String
}) {}

/** 409: the idempotency key was used before, by this payer on this task, with a different request; nothing was run or charged. */
export class IdempotencyKeyReused extends Schema.TaggedError<IdempotencyKeyReused>()("IdempotencyKeyReused", {
  idempotencyKey: Schema.String
}) {
  override get message() {
    return `idempotency key ${this.idempotencyKey} was already used with a different request; send a new key for a new request`
  }
}

/** 409: the same request with the same key is still running, or was settled without its reply being held here; nothing was run or charged again. */
export class IdempotentReplyUnavailable extends Schema.TaggedError<IdempotentReplyUnavailable>()("IdempotentReplyUnavailable", {
  idempotencyKey: Schema.String,
  message: Schema.String
}) {}

export type PaidRequestError =
  | InvalidRequest
  | NoMandate
  | MandateRefused
  | PaymentRequired
  | PaymentChallenge
  | UnknownTask
  | SettlementUnavailable
  | ShuttingDown
  | TaskFailed
  | IdempotencyKeyReused
  | IdempotentReplyUnavailable

/** Status and wire code, in the same `{ error, message, field? }` shape as the settlement API. */
export const toHttp = (error: PaidRequestError): { readonly status: number; readonly body: Record<string, unknown> } => {
  switch (error._tag) {
    case "InvalidRequest":
      return { status: 400, body: { error: "invalid_request", message: `${error.field}: ${error.message}`, field: error.field } }
    case "NoMandate":
      return { status: 403, body: { error: "no_mandate", message: error.message, field: "payer_wallet" } }
    case "MandateRefused":
      return { status: 403, body: { error: "mandate_exceeded", message: error.message, field: "payer_wallet" } }
    case "PaymentRequired":
      return { status: 402, body: { error: "insufficient_funds", message: error.message, field: "payer_wallet" } }
    case "PaymentChallenge":
      return {
        status: 402,
        body: {
          error: error.refusal === undefined ? "payment_required" : "payment_token_invalid",
          message: error.message,
          price_usdc: Usdc.format(error.priceMicros),
          currency: "USDC",
          payee_wallet: error.payee,
          accepted_methods: ["payment_token"]
        }
      }
    case "UnknownTask":
      return { status: 404, body: { error: "unknown_task", message: error.message, details: { known: error.known } } }
    case "SettlementUnavailable":
      return { status: 503, body: { error: "settlement_unavailable", message: error.message } }
    case "ShuttingDown":
      return { status: 503, body: { error: "shutting_down", message: error.message } }
    case "IdempotencyKeyReused":
      return {
        status: 409,
        body: { error: "idempotency_key_reused", message: error.message, field: "idempotency-key", details: { idempotency_key: error.idempotencyKey } }
      }
    case "IdempotentReplyUnavailable":
      return {
        status: 409,
        body: { error: "idempotency_reply_unavailable", message: error.message, field: "idempotency-key", details: { idempotency_key: error.idempotencyKey } }
      }
    case "TaskFailed":
      return {
        status: error.timedOut ? 504 : 500,
        body: {
          error: error.timedOut ? "task_timed_out" : "task_failed",
          message: error.message,
          escrow_id: error.escrowId,
          escrow_status: "cancelled"
        }
      }
  }
}
