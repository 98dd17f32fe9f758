/**
 * Errors at the settlement service's edge.
 *
 * The refusals the settlement rules add to the ledger's (`NotAuthorized`,
 * `Unauthenticated`, `RateLimited`, ...) live in src/settlement/errors.ts and are
 * re-exported here. This file holds the wire errors, one schema'd class per HTTP
 * status, whose body is the escrow dialect's `{ "error": "<code>", "message": "...", "field"?: "...", "details"?: {...} }`.
 *
 * `toWire` maps every domain refusal to its wire form (REST handlers, MCP tools);
 * `fromWire` maps a wire body back to the domain class (the HTTP `Escrow` client), so
 * a caller of `EscrowHttp.layer` sees the same typed errors as a caller of the local
 * ledger. `details` carries the facts the domain classes hold (amounts as 6-place
 * strings), which is what makes the round trip lossless.
 */
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import { Either, Schema } from "effect"
import * as Errors from "../domain/errors.js"
import * as Usdc from "../domain/Usdc.js"
import type { SettlementError } from "../settlement/errors.js"

// ---------------------------------------------------------------------------
// Wire errors: one class per status
// ---------------------------------------------------------------------------

const fields = {
  /** Machine-readable code: `insufficient_funds`, `escrow_not_pending`, ... */
  error: Schema.String,
  /** What went wrong, naming the field when one is to blame. */
  message: Schema.String,
  field: Schema.optional(Schema.String),
  /** The facts behind the refusal (amounts as 6-place USDC strings). */
  details: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String }))
}

const wire = <A>(status: number, description: string) => HttpApiSchema.annotations<A>({ status, description })

/**
 * `fields` whose code is none of `codes`: those belong to an error of the same status
 * with a body of its own (the paid routes', below), which a client derived from the
 * contract must be able to tell from this one. It decodes an error by trying the
 * declared errors of its status in turn and takes the first that fits.
 */
const fieldsExcept = (...codes: ReadonlyArray<string>) => ({
  ...fields,
  error: Schema.String.pipe(
    Schema.filter((code) => !codes.includes(code), { message: () => `a code other than ${codes.join(", ")}` })
  )
})

export class BadRequestError extends Schema.Class<BadRequestError>("BadRequestError")(
  fields,
  wire(400, "The request is malformed; `field` names the part to blame")
) {}
export class UnauthorizedError extends Schema.Class<UnauthorizedError>("UnauthorizedError")(
  fields,
  wire(401, "No API key, or an unknown or expired one")
) {}
export class PaymentRequiredError extends Schema.Class<PaymentRequiredError>("PaymentRequiredError")(
  fieldsExcept("payment_required", "payment_token_invalid"),
  wire(402, "The payer's available balance does not cover the amount")
) {}
export class ForbiddenError extends Schema.Class<ForbiddenError>("ForbiddenError")(
  fields,
  wire(403, "Not your wallet or escrow, no mandate, or beyond the mandate")
) {}
export class NotFoundError extends Schema.Class<NotFoundError>("NotFoundError")(
  fieldsExcept("unknown_task"),
  wire(404, "No such escrow, agent, mandate, referral code or route")
) {}
export class ConflictError extends Schema.Class<ConflictError>("ConflictError")(
  fields,
  wire(409, "The state forbids it: already settled, past the deadline, already claimed, already registered, idempotency key reused")
) {}
export class PayloadTooLargeError extends Schema.Class<PayloadTooLargeError>("PayloadTooLargeError")(
  fields,
  wire(413, "The request body exceeds the size limit")
) {}
export class UnsupportedMediaTypeError extends Schema.Class<UnsupportedMediaTypeError>("UnsupportedMediaTypeError")(
  fields,
  wire(415, "The request body is not JSON (`Content-Type: application/json`)")
) {}
export class TooManyRequestsError extends Schema.Class<TooManyRequestsError>("TooManyRequestsError")(
  fields,
  wire(429, "Rate limited; `details.retry_after_ms` says when to retry")
) {}
export class InternalError extends Schema.Class<InternalError>("InternalError")(
  fieldsExcept("task_failed"),
  wire(500, "An unexpected failure; nothing is known to have changed")
) {}
export class ServiceUnavailableError extends Schema.Class<ServiceUnavailableError>("ServiceUnavailableError")(
  fields,
  wire(503, "The ledger's storage is unavailable; the operation may or may not have applied")
) {}

export type WireError =
  | BadRequestError
  | UnauthorizedError
  | PaymentRequiredError
  | ForbiddenError
  | NotFoundError
  | ConflictError
  | PayloadTooLargeError
  | UnsupportedMediaTypeError
  | TooManyRequestsError
  | InternalError
  | ServiceUnavailableError

/** All wire errors, for `HttpApi.addError`. */
export const wireErrors = [
  BadRequestError,
  UnauthorizedError,
  PaymentRequiredError,
  ForbiddenError,
  NotFoundError,
  ConflictError,
  PayloadTooLargeError,
  UnsupportedMediaTypeError,
  TooManyRequestsError,
  InternalError,
  ServiceUnavailableError
] as const

const statusByClass = new Map<Function, number>([
  [BadRequestError, 400],
  [UnauthorizedError, 401],
  [PaymentRequiredError, 402],
  [ForbiddenError, 403],
  [NotFoundError, 404],
  [ConflictError, 409],
  [PayloadTooLargeError, 413],
  [UnsupportedMediaTypeError, 415],
  [TooManyRequestsError, 429],
  [InternalError, 500],
  [ServiceUnavailableError, 503]
])

export const isWireError = (u: unknown): u is WireError =>
  typeof u === "object" && u !== null && statusByClass.has(u.constructor)

export const statusOf = (error: WireError): number => statusByClass.get(error.constructor)!

/** The JSON body of a wire error (what the edge middleware writes). */
export const bodyOf = (error: WireError) => {
  const body: { error: string; message: string; field?: string; details?: Record<string, string> } = {
    error: error.error,
    message: error.message
  }
  if (error.field !== undefined) body.field = error.field
  if (error.details !== undefined) body.details = error.details as Record<string, string>
  return body
}

type Body = { error: string; message: string; field?: string; details?: Record<string, string> }

const body = (error: string, message: string, field?: string, details?: Record<string, string>): Body => {
  const out: Body = { error, message }
  if (field !== undefined) out.field = field
  if (details !== undefined) out.details = details
  return out
}

const usdc = (micros: bigint) => Usdc.format(micros)

/** A domain refusal as the wire error the escrow dialect expects. */
export const toWire = (error: SettlementError | Errors.InvalidAmount): WireError => {
  switch (error._tag) {
    case "InvalidInput":
      return new BadRequestError(body("invalid_input", `${error.field}: ${error.message}`, error.field))
    case "InvalidAmount":
      return new BadRequestError(body("invalid_amount", error.message, "amount_usdc", { input: error.input }))
    case "ReferralCycle":
      return new BadRequestError(
        body("referral_cycle", error.message, "referral_code", { wallet: error.wallet, referral_code: error.referralCode })
      )
    case "Unauthenticated":
      return new UnauthorizedError(body("unauthorized", error.message))
    case "InsufficientFunds":
      return new PaymentRequiredError(
        body("insufficient_funds", error.message, "amount_usdc", {
          wallet: error.wallet,
          required_usdc: usdc(error.requiredMicros),
          available_usdc: usdc(error.availableMicros)
        })
      )
    case "PayerCannotCover":
      return new PaymentRequiredError(
        body("insufficient_funds", error.message, "amount_usdc", { wallet: error.wallet, required_usdc: usdc(error.requiredMicros) })
      )
    case "BudgetExceeded":
      return new PaymentRequiredError(
        body("budget_exceeded", error.message, "amount_usdc", {
          cap: error.cap,
          limit_usdc: usdc(error.limitMicros),
          spent_usdc: usdc(error.spentMicros),
          requested_usdc: usdc(error.requestedMicros)
        })
      )
    case "NotAuthorized":
      return new ForbiddenError(body("forbidden", error.message, error.field))
    case "KeyInGrace":
      return new ForbiddenError(
        body("key_in_grace", error.message, "Authorization", {
          agent_id: error.agentId,
          expires_at: new Date(error.expiresAtMs).toISOString()
        })
      )
    case "PaymentTokenInvalid":
      return new ForbiddenError(body("payment_token_invalid", error.message, "payment_token", { reason: error.reason }))
    case "MandateExceeded":
      return new ForbiddenError(
        body("mandate_exceeded", error.message, "amount_usdc", { mandate_id: error.mandateId, reason: error.reason })
      )
    case "AgentNotFound":
      return new NotFoundError(body("agent_not_found", error.message, undefined, { wallet: error.wallet }))
    case "EscrowNotFound":
      return new NotFoundError(body("escrow_not_found", error.message, "escrow_id", { escrow_id: error.escrowId }))
    case "MandateNotFound":
      return new NotFoundError(body("mandate_not_found", error.message, "mandate_id", { mandate_id: error.mandateId }))
    case "ReferralCodeNotFound":
      return new NotFoundError(
        body("referral_code_not_found", error.message, "referral_code", { referral_code: error.referralCode })
      )
    case "WalletAlreadyRegistered":
      return new ConflictError(body("wallet_already_registered", error.message, "wallet_address", { wallet: error.wallet }))
    case "EscrowNotPending":
      return new ConflictError(
        body("escrow_not_pending", error.message, "escrow_id", {
          escrow_id: error.escrowId,
          status: error.status,
          attempted: error.attempted
        })
      )
    case "ReleaseExceedsRemaining":
      return new ConflictError(
        body("release_exceeds_remaining", error.message, "amount_usdc", {
          escrow_id: error.escrowId,
          requested_usdc: usdc(error.requestedMicros),
          remaining_usdc: usdc(error.remainingMicros)
        })
      )
    case "IdempotencyConflict":
      return new ConflictError(
        body("idempotency_key_reused", error.message, "Idempotency-Key", { idempotency_key: error.idempotencyKey })
      )
    case "EscrowExpired":
      return new ConflictError(
        body("escrow_expired", error.message, "escrow_id", {
          escrow_id: error.escrowId,
          expires_at: new Date(error.expiresAtMs).toISOString()
        })
      )
    case "FaucetAlreadyClaimed":
      return new ConflictError(body("faucet_already_claimed", error.message, "wallet_address", { wallet: error.wallet }))
    case "FaucetTreasuryEmpty":
      return new ConflictError(
        body("faucet_treasury_empty", error.message, undefined, {
          required_usdc: usdc(error.requiredMicros),
          available_usdc: usdc(error.availableMicros)
        })
      )
    case "FaucetDailyCapReached":
      return new TooManyRequestsError(
        body("faucet_daily_cap_reached", error.message, undefined, { day: error.day, cap: String(error.cap) })
      )
    case "RateLimited":
      return new TooManyRequestsError(
        body("rate_limited", error.message, undefined, { limit: error.limit, retry_after_ms: String(error.retryAfterMs) })
      )
    case "LedgerUnavailable":
      // The storage's own message may carry internals (paths, SQL); it is logged, not sent.
      return new ServiceUnavailableError(
        body("ledger_unavailable", "the ledger is unavailable; the operation may or may not have applied, retry it")
      )
  }
}

// ---------------------------------------------------------------------------
// Wire errors of the orchestrator's paid routes (ServiceApi.ts): bodies with more
// than a code, a message and string facts
// ---------------------------------------------------------------------------

export class PaymentChallengeError extends Schema.Class<PaymentChallengeError>("PaymentChallengeError")(
  {
    /** `payment_required` without a payment token, `payment_token_invalid` when the settlement service refused it. */
    error: Schema.Literal("payment_required", "payment_token_invalid"),
    message: Schema.String,
    price_usdc: Schema.String,
    currency: Schema.Literal("USDC"),
    /** The wallet to mint the payment token for: this orchestrator's. */
    payee_wallet: Schema.String,
    accepted_methods: Schema.Array(Schema.Literal("payment_token")),
    /** Where the payer mints a token with its API key. */
    settlement_url: Schema.String,
    token_endpoint: Schema.String
  },
  wire(402, "No payment token, or one the settlement service refused; `WWW-Authenticate: Payment ...` names the same terms")
) {}

export class UnknownTaskError extends Schema.Class<UnknownTaskError>("UnknownTaskError")(
  {
    error: Schema.Literal("unknown_task"),
    message: Schema.String,
    details: Schema.Struct({ known: Schema.Array(Schema.String) })
  },
  wire(404, "No task of that name runs here; `details.known` lists those that do")
) {}

const taskFailure = {
  message: Schema.String,
  escrow_id: Schema.String,
  /** The escrow opened for the request was cancelled: the payer is refunded in full. */
  escrow_status: Schema.Literal("cancelled")
}

export class TaskFailedError extends Schema.Class<TaskFailedError>("TaskFailedError")(
  { error: Schema.Literal("task_failed"), ...taskFailure },
  wire(500, "The task failed after its escrow opened; the escrow was cancelled (full refund)")
) {}

export class TaskTimedOutError extends Schema.Class<TaskTimedOutError>("TaskTimedOutError")(
  { error: Schema.Literal("task_timed_out"), ...taskFailure },
  wire(504, "The task did not finish within TASK_TIMEOUT; the escrow was cancelled (full refund)")
) {}

export type PaidRouteError = PaymentChallengeError | UnknownTaskError | TaskFailedError | TaskTimedOutError

const PaidRouteError = Schema.Union(PaymentChallengeError, UnknownTaskError, TaskFailedError, TaskTimedOutError)

export const isPaidRouteError = Schema.is(PaidRouteError)

export const paidRouteStatusOf = (error: PaidRouteError): number =>
  error instanceof PaymentChallengeError ? 402 : error instanceof UnknownTaskError ? 404 : error instanceof TaskFailedError ? 500 : 504

/** The JSON body of a paid route's error (what the edge middleware writes). */
export const paidRouteBodyOf: (error: PaidRouteError) => unknown = Schema.encodeSync(PaidRouteError)

/** A header parameter's value: no quotes, backslashes or control characters (the URL carries the client's Host header). */
const quotable = (text: string) => text.replace(/["\\\x00-\x1f\x7f]/g, "")

/** `WWW-Authenticate` for a challenge: the terms of its body, as RFC 9110 auth-params. */
export const challengeHeader = (error: PaymentChallengeError): string => {
  const params = [
    `realm="ringmaster"`,
    `method="payment_token"`,
    `amount="${error.price_usdc}"`,
    `currency="${error.currency}"`,
    `payee="${error.payee_wallet}"`,
    `settlement="${quotable(error.settlement_url)}"`,
    `token_endpoint="${quotable(error.token_endpoint)}"`,
    ...(error.error === "payment_token_invalid" ? [`error="invalid_token"`] : [])
  ]
  return `Payment ${params.join(", ")}`
}

// ---------------------------------------------------------------------------
// Back from the wire (the HTTP Escrow client)
// ---------------------------------------------------------------------------

const micros = (text: string | undefined): bigint => {
  if (text === undefined) return 0n
  const parsed = Usdc.fromDecimal(text)
  return Either.isRight(parsed) ? parsed.right : 0n
}

/**
 * The domain error a wire error stands for. A 401 or 403 the domain has no other
 * class for is `Forbidden` (`operation` names what was refused): a refusal no retry
 * changes. The rest (413, 429, 5xx, unknown codes) become `LedgerUnavailable`
 * naming the status and code: to a caller of the `Escrow` port they mean "the
 * settlement service did not do it".
 */
export const fromWire = (error: WireError, operation = "the request"): Errors.LedgerError | Errors.Forbidden | Errors.LedgerUnavailable => {
  const d = error.details ?? {}
  switch (error.error) {
    case "invalid_input":
      return new Errors.InvalidInput({ field: error.field ?? "request", message: stripField(error) })
    case "invalid_request":
    case "invalid_json":
      return new Errors.InvalidInput({ field: error.field ?? "request", message: error.message })
    case "invalid_amount":
      return new Errors.InvalidAmount({ input: d["input"] ?? "", message: error.message })
    case "referral_cycle":
      return new Errors.ReferralCycle({ wallet: d["wallet"] ?? "", referralCode: d["referral_code"] ?? "" })
    case "insufficient_funds":
      return new Errors.InsufficientFunds({
        wallet: d["wallet"] ?? "",
        requiredMicros: micros(d["required_usdc"]),
        availableMicros: micros(d["available_usdc"])
      })
    case "mandate_exceeded":
      return new Errors.MandateExceeded({ mandateId: d["mandate_id"] ?? "", reason: d["reason"] ?? error.message })
    case "agent_not_found":
      return new Errors.AgentNotFound({ wallet: d["wallet"] ?? "" })
    case "escrow_not_found":
      return new Errors.EscrowNotFound({ escrowId: d["escrow_id"] ?? "" })
    case "mandate_not_found":
      return new Errors.MandateNotFound({ mandateId: d["mandate_id"] ?? "" })
    case "referral_code_not_found":
      return new Errors.ReferralCodeNotFound({ referralCode: d["referral_code"] ?? "" })
    case "wallet_already_registered":
      return new Errors.WalletAlreadyRegistered({ wallet: d["wallet"] ?? "" })
    case "escrow_not_pending":
      return new Errors.EscrowNotPending({
        escrowId: d["escrow_id"] ?? "",
        status: d["status"] ?? "unknown",
        attempted: d["attempted"] ?? "unknown"
      })
    case "release_exceeds_remaining":
      return new Errors.ReleaseExceedsRemaining({
        escrowId: d["escrow_id"] ?? "",
        requestedMicros: micros(d["requested_usdc"]),
        remainingMicros: micros(d["remaining_usdc"])
      })
    case "idempotency_key_reused":
      return new Errors.IdempotencyConflict({ idempotencyKey: d["idempotency_key"] ?? "" })
    case "escrow_expired": {
      const expiresAtMs = Date.parse(d["expires_at"] ?? "")
      return new Errors.EscrowExpired({ escrowId: d["escrow_id"] ?? "", expiresAtMs: Number.isFinite(expiresAtMs) ? expiresAtMs : 0 })
    }
    case "faucet_already_claimed":
      return new Errors.FaucetAlreadyClaimed({ wallet: d["wallet"] ?? "" })
    case "faucet_treasury_empty":
      return new Errors.FaucetTreasuryEmpty({
        requiredMicros: micros(d["required_usdc"]),
        availableMicros: micros(d["available_usdc"])
      })
    case "faucet_daily_cap_reached":
      return new Errors.FaucetDailyCapReached({ day: d["day"] ?? "", cap: Number(d["cap"] ?? 0) })
    default: {
      const status = statusOf(error)
      if (status === 401 || status === 403) return new Errors.Forbidden({ operation, code: error.error, reason: error.message })
      return new Errors.LedgerUnavailable({
        message: `settlement service refused the request: ${status} ${error.error}: ${error.message}`
      })
    }
  }
}

/** `toWire` prefixes invalid-input messages with the field; the domain class keeps them apart. */
const stripField = (error: WireError) =>
  error.field !== undefined && error.message.startsWith(`${error.field}: `)
    ? error.message.slice(error.field.length + 2)
    : error.message
