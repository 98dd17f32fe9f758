/**
 * Why a paid request was refused or failed, with the wire error (and so the HTTP
 * status) each maps to.
 * A refusal (400, 402, 403, 404, 503 before the escrow exists) locks nothing; a
 * failure after the escrow opened (500) has cancelled it: the payer is refunded.
 */
import { Schema } from "effect"
import * as Usdc from "../domain/Usdc.js"
import * as Wire from "../http/errors.js"

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

/** Every refusal but `UnknownTask`, which only `/tasks/{agent}` meets. */
export type InferenceError = Exclude<PaidRequestError, UnknownTask>

/** The wire errors of the paid routes. */
export type PaidRouteRefusal = Wire.WireError | Wire.PaidRouteError

/**
 * A refusal as the contract's wire error (ServiceApi.ts), in the settlement API's
 * `{ error, message, field? }` shape; `settlementUrl` is where a challenged payer
 * mints its token.
 */
export function toWire(error: InferenceError, settlementUrl: string): Exclude<PaidRouteRefusal, Wire.UnknownTaskError>
export function toWire(error: PaidRequestError, settlementUrl: string): PaidRouteRefusal
export function toWire(error: PaidRequestError, settlementUrl: string): PaidRouteRefusal {
  switch (error._tag) {
    case "InvalidRequest":
      return new Wire.BadRequestError({ error: "invalid_request", message: `${error.field}: ${error.message}`, field: error.field })
    case "NoMandate":
      return new Wire.ForbiddenError({ error: "no_mandate", message: error.message, field: "payer_wallet" })
    case "MandateRefused":
      return new Wire.ForbiddenError({ error: "mandate_exceeded", message: error.message, field: "payer_wallet" })
    case "PaymentRequired":
      return new Wire.PaymentRequiredError({ error: "insufficient_funds", message: error.message, field: "payer_wallet" })
    case "PaymentChallenge":
      return new Wire.PaymentChallengeError({
        error: error.refusal === undefined ? "payment_required" : "payment_token_invalid",
        message: error.message,
        price_usdc: Usdc.format(error.priceMicros),
        currency: "USDC",
        payee_wallet: error.payee,
        accepted_methods: ["payment_token"],
        settlement_url: settlementUrl,
        token_endpoint: `${settlementUrl}/api/payment-tokens`
      })
    case "UnknownTask":
      return new Wire.UnknownTaskError({ error: "unknown_task", message: error.message, details: { known: error.known } })
    case "SettlementUnavailable":
      return new Wire.ServiceUnavailableError({ error: "settlement_unavailable", message: error.message })
    case "ShuttingDown":
      return new Wire.ServiceUnavailableError({ error: "shutting_down", message: error.message })
    case "IdempotencyKeyReused":
      return new Wire.ConflictError({
        error: "idempotency_key_reused",
        message: error.message,
        field: "idempotency-key",
        details: { idempotency_key: error.idempotencyKey }
      })
    case "IdempotentReplyUnavailable":
      return new Wire.ConflictError({
        error: "idempotency_reply_unavailable",
        message: error.message,
        field: "idempotency-key",
        details: { idempotency_key: error.idempotencyKey }
      })
    case "TaskFailed": {
      const failure = { message: error.message, escrow_id: error.escrowId, escrow_status: "cancelled" as const }
      return error.timedOut
        ? new Wire.TaskTimedOutError({ error: "task_timed_out", ...failure })
        : new Wire.TaskFailedError({ error: "task_failed", ...failure })
    }
  }
}
