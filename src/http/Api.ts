/**
 * The escrow REST dialect as one `HttpApi` contract: the settlement server
 * implements it (`handlers.ts`), `EscrowHttp` derives its client from it, and
 * `/openapi.json` and `/docs` are generated from it. Nothing about HTTP is
 * written twice.
 *
 * JSON is snake_case. Amounts come in as a decimal string or a float-noise-free
 * number and go out as 6-place decimal strings; timestamps go out as ISO-8601 UTC
 * with milliseconds. Unknown fields are ignored, wrong types are rejected (400,
 * naming the field).
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import * as OpenApi from "@effect/platform/OpenApi"
import { Context, Either, ParseResult, Schema } from "effect"
import { EscrowStatuses } from "../domain/Escrow.js"
import { AgentId, EscrowId, MandateId, ReferralCode, WalletAddress } from "../domain/ids.js"
import * as Usdc from "../domain/Usdc.js"
import { Limits } from "../domain/limits.js"
import type { Caller } from "../settlement/Caller.js"
import * as Wire from "./errors.js"

// ---------------------------------------------------------------------------
// Field schemas
// ---------------------------------------------------------------------------

/** An amount in a request: decimal string ("1.50") or JSON number; more than 6 places is rejected. */
export const AmountIn = Usdc.FromWire
/** A positive amount in a request. */
export const PositiveAmountIn = Usdc.PositiveFromWire

/** An amount in a response: always a 6-place decimal string. */
export const AmountOut: Schema.Schema<Usdc.Usdc, string> = Schema.transformOrFail(
  Schema.String,
  Schema.typeSchema(Usdc.Micros),
  {
    strict: true,
    decode: (text, _, ast) =>
      Either.mapLeft(Usdc.fromDecimal(text), (e) => new ParseResult.Type(ast, text, e.message)),
    encode: (amount) => ParseResult.succeed(Usdc.format(amount))
  }
).annotations({ identifier: "UsdcAmount", description: "USDC as a 6-place decimal string, e.g. \"1.500000\"", examples: ["1.500000" as never] })

/** A point in time in a response: ISO-8601 UTC with milliseconds; milliseconds since the epoch inside. */
export const Timestamp: Schema.Schema<number, string> = Schema.transformOrFail(Schema.String, Schema.Number, {
  strict: true,
  decode: (text, _, ast) => {
    const ms = Date.parse(text)
    return Number.isFinite(ms) ? ParseResult.succeed(ms) : ParseResult.fail(new ParseResult.Type(ast, text, "expected an ISO-8601 date-time"))
  },
  encode: (ms, _, ast) =>
    Number.isFinite(ms) ? ParseResult.succeed(new Date(ms).toISOString()) : ParseResult.fail(new ParseResult.Type(ast, ms, "not a time"))
}).annotations({ identifier: "Timestamp", description: "ISO-8601 UTC date-time, e.g. \"2025-01-01T12:00:00.000Z\"" })

/** The last second an ISO-8601 timestamp with a 4-digit year can name (9999-12-31T23:59:59Z). */
const MAX_EPOCH_SECONDS = 253_402_300_799

/**
 * A point in time in a request: an ISO-8601 string, or seconds since the epoch (what
 * Python's `time.time()` gives), up to the year 9999: later ones could not be written
 * back out as a date.
 */
export const TimestampIn: Schema.Schema<number, string | number> = Schema.Union(
  Timestamp.pipe(Schema.filter((ms) => ms <= MAX_EPOCH_SECONDS * 1000 || "expected a date-time no later than 9999-12-31T23:59:59Z")),
  Schema.transform(Schema.Number.pipe(Schema.finite(), Schema.positive(), Schema.lessThanOrEqualTo(MAX_EPOCH_SECONDS)), Schema.Number, {
    strict: true,
    decode: (seconds) => Math.round(seconds * 1000),
    encode: (ms) => ms / 1000
  })
).annotations({ description: "ISO-8601 date-time, or seconds since the epoch" })

/** Any JSON object up to 4 KiB; `fly_region` in it tags the escrow with a region. */
export const Metadata = Schema.Record({ key: Schema.String, value: Schema.Unknown }).pipe(
  Schema.filter((value) => {
    const bytes = Buffer.byteLength(JSON.stringify(value) ?? "", "utf8")
    return bytes <= Limits.metadataBytes || `metadata is ${bytes} bytes; at most ${Limits.metadataBytes} are allowed`
  })
).annotations({ identifier: "Metadata", description: "Any JSON object up to 4 KiB" })

const AgentName = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(Limits.agentNameChars))
const Description = Schema.String.pipe(Schema.maxLength(Limits.descriptionChars))
export const EscrowStatus = Schema.Literal(...(EscrowStatuses as ["pending", "released", "cancelled", "expired"]))

// ---------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------

export const Health = Schema.Struct({ ok: Schema.Literal(true), region: Schema.String })

export const RegisterAgentRequest = Schema.Struct({
  agent_name: AgentName,
  wallet_address: Schema.optional(WalletAddress),
  referral_code: Schema.optional(ReferralCode)
})

export const RegisteredAgent = Schema.Struct({
  agent_id: AgentId,
  wallet_address: WalletAddress,
  /** Shown once; only its hash is stored. */
  api_key: Schema.Redacted(Schema.String),
  referral_code: ReferralCode
}).annotations(HttpApiSchema.annotations({ status: 201 }))

/** An agent's public card: who it is, the code that refers others to it, and who referred it. */
export const AgentCard = Schema.Struct({
  agent_id: AgentId,
  agent_name: Schema.String,
  wallet_address: WalletAddress,
  referral_code: ReferralCode,
  /** The agent whose referral code it registered with; null if none. */
  referrer_wallet: Schema.NullOr(WalletAddress),
  created_at: Timestamp
}).annotations({ identifier: "AgentCard" })

/** Longest grace a rotation may ask for (the configured `KEY_ROTATION_GRACE` may cap it lower). */
export const MAX_ROTATION_GRACE_SECONDS = 30 * 24 * 60 * 60

/** Optional: an empty body (or `null`) takes the configured grace. */
export const RotateKeyRequest = Schema.NullOr(
  Schema.Struct({
    /** How long the agent's older keys keep working, in whole seconds; 0 ends them at once. */
    grace_seconds: Schema.optional(
      Schema.Int.pipe(Schema.between(0, MAX_ROTATION_GRACE_SECONDS)).annotations({
        description: "How long the older keys keep working, in whole seconds: 0 to the configured grace (its default); 0 ends them at once"
      })
    )
  })
).annotations({ identifier: "RotateKeyRequest" })

export const RotatedKey = Schema.Struct({
  agent_id: AgentId,
  api_key: Schema.Redacted(Schema.String),
  /** The key used before keeps working until then. */
  previous_key_expires_at: Timestamp
})

export const RevokedKeys = Schema.Struct({
  agent_id: AgentId,
  /** Keys of the agent that were still live and no longer work. */
  revoked_count: Schema.Int,
  revoked_at: Timestamp
})

export const FaucetClaimRequest = Schema.Struct({
  wallet_address: WalletAddress,
  agent_name: AgentName
})
export const FaucetClaimed = Schema.Struct({ credited_usdc: AmountOut, balance_usdc: AmountOut })

export const Wallet = Schema.Struct({
  wallet_address: WalletAddress,
  /** Available to spend now. */
  balance_usdc: AmountOut,
  /** Held by pending escrows this wallet pays for; not in `balance_usdc`. */
  locked_usdc: AmountOut
})

const ActivityTotals = {
  /** Gross paid out of this wallet's escrows (released parts, as payer). */
  spent_usdc: AmountOut,
  /** Net received as payee, after fees. */
  revenue_usdc: AmountOut,
  /** Fees borne as payee. */
  fees_paid_usdc: AmountOut,
  referral_income_usdc: AmountOut
}

/** Money in and out of one wallet by kind, in total and per region; reconciles with its postings. */
export const Activity = Schema.Struct({
  wallet_address: WalletAddress,
  ...ActivityTotals,
  by_region: Schema.Record({ key: Schema.String, value: Schema.Struct(ActivityTotals) })
}).annotations({ identifier: "Activity" })

export const CreateMandateRequest = Schema.Struct({
  payee_wallet: WalletAddress,
  max_amount_usdc: PositiveAmountIn,
  budget_usdc: PositiveAmountIn,
  expires_at: Schema.optional(TimestampIn),
  /**
   * Extension: the longest timeout an escrow opened under the mandate may have
   * (default: the service's default escrow timeout, 15 minutes; at most its maximum).
   * No escrow under it outlives the mandate's `expires_at` either.
   */
  max_timeout_ms: Schema.optional(Schema.Int.pipe(Schema.positive()))
})

export const Mandate = Schema.Struct({
  mandate_id: MandateId,
  payer_wallet: WalletAddress,
  payee_wallet: WalletAddress,
  max_amount_usdc: AmountOut,
  budget_usdc: AmountOut,
  /** Budget left: the budget less what pending and released escrows under it hold. */
  remaining_usdc: AmountOut,
  expires_at: Schema.NullOr(Timestamp),
  /** The longest timeout of an escrow opened under it; escrows opened before a revocation keep their deadlines. */
  max_timeout_ms: Schema.Int,
  revoked: Schema.Boolean,
  created_at: Timestamp
})

export const CreateEscrowRequest = Schema.Struct({
  payer_wallet: WalletAddress,
  payee_wallet: WalletAddress,
  amount_usdc: PositiveAmountIn,
  description: Description,
  metadata: Schema.optional(Metadata),
  /** Extension: the escrow's deadline in ms from now (default: the service's, 15 minutes). */
  timeout_ms: Schema.optional(Schema.Int.pipe(Schema.positive())),
  /** Extension: the mandate to open it under (default: the payer's newest live mandate for the caller). */
  mandate_id: Schema.optional(MandateId),
  /** The payer's payment token: the caller (its payee) opens the escrow with it instead of a mandate; single use. */
  payment_token: Schema.optional(Schema.Redacted(Schema.String.pipe(Schema.maxLength(128))))
})

export const CreatePaymentTokenRequest = Schema.Struct({
  /** The only wallet that may redeem it. */
  payee_wallet: WalletAddress,
  /** The largest escrow it pays for. */
  max_amount_usdc: PositiveAmountIn,
  /** Lifetime: 300 seconds by default, at most 3600. */
  expires_in_seconds: Schema.optional(Schema.Int.pipe(Schema.positive())),
  /** One of the caller's mandates to the payee: the escrow draws on its budget. */
  mandate_id: Schema.optional(MandateId)
})

export const PaymentToken = Schema.Struct({
  /** Shown once; only its hash is stored. Send it to the payee, e.g. as `Authorization: Payment <token>`. */
  payment_token: Schema.Redacted(Schema.String),
  payer_wallet: WalletAddress,
  payee_wallet: WalletAddress,
  max_amount_usdc: AmountOut,
  mandate_id: Schema.NullOr(MandateId),
  created_at: Timestamp,
  expires_at: Timestamp
}).annotations(HttpApiSchema.annotations({ status: 201 }))

export const IdempotencyHeaders = Schema.Struct({
  "idempotency-key": Schema.optional(
    Schema.String.pipe(Schema.minLength(1), Schema.maxLength(Limits.idempotencyKeyChars)).annotations({
      description: "The caller's own key for this create, kept 24 hours: a retry with the same key and the same body " +
        "returns the same escrow instead of opening another; the same key with a different body is refused " +
        "(409 idempotency_key_reused)"
    })
  )
})

export const ReleaseRequest = Schema.Struct({
  escrow_id: EscrowId,
  /** Accepted for compatibility with the hosted dialect: the release happens now. */
  auto_release: Schema.optional(Schema.Boolean),
  /** Release only this part; the rest stays locked. */
  amount_usdc: Schema.optional(PositiveAmountIn)
})

export const CancelRequest = Schema.Struct({ escrow_id: EscrowId })

export const Escrow = Schema.Struct({
  escrow_id: EscrowId,
  status: EscrowStatus,
  payer_wallet: WalletAddress,
  payee_wallet: WalletAddress,
  /** The full amount locked at creation. */
  amount_usdc: AmountOut,
  /** The fee the payee bears: taken on released parts, plus what full release of the remainder would take. */
  fee_usdc: AmountOut,
  /** What the payee receives: released parts (and, while pending, the remainder) less `fee_usdc`. */
  net_usdc: AmountOut,
  released_usdc: AmountOut,
  fee_paid_usdc: AmountOut,
  refunded_usdc: AmountOut,
  remaining_usdc: AmountOut,
  description: Schema.String,
  metadata: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  region: Schema.String,
  idempotency_key: Schema.NullOr(Schema.String),
  mandate_id: Schema.NullOr(MandateId),
  created_at: Timestamp,
  expires_at: Timestamp,
  settled_at: Schema.NullOr(Timestamp),
  version: Schema.Int
}).annotations({ identifier: "Escrow" })

export const EscrowCreated = Escrow.annotations(HttpApiSchema.annotations({ status: 201 }))

export const ListEscrowsParams = Schema.Struct({
  status: Schema.optional(EscrowStatus),
  /** Only escrows tagged with this region (`fly_region`). */
  region: Schema.optional(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(Limits.regionChars))),
  limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, Limits.pageSizeMax))),
  cursor: Schema.optional(EscrowId)
})

export const EscrowPage = Schema.Struct({
  escrows: Schema.Array(Escrow),
  /** Pass as `cursor` for the next page; null on the last page. */
  next_cursor: Schema.NullOr(EscrowId)
})

export const Referrals = Schema.Struct({
  referral_code: ReferralCode,
  referred_agents: Schema.Array(
    Schema.Struct({
      agent_id: AgentId,
      agent_name: Schema.String,
      wallet_address: WalletAddress,
      referral_code: ReferralCode,
      created_at: Timestamp,
      earned_usdc: AmountOut
    })
  ),
  earned_usdc: AmountOut,
  by_region: Schema.Record({ key: Schema.String, value: AmountOut })
})

// ---------------------------------------------------------------------------
// Middleware: who is calling
// ---------------------------------------------------------------------------

/** The `Caller` behind the current request, provided by the authentication middleware below. */
export class CurrentCaller extends Context.Tag("ringmaster/http/CurrentCaller")<CurrentCaller, Caller>() {}

/**
 * `Authorization: Bearer <api_key>`, checked against the stored hash; rate-limited
 * per agent. One scheme only: with several, the platform tries the next on any
 * failure of the first, which would turn a 429 or 503 into a 401.
 */
export class Authorization extends HttpApiMiddleware.Tag<Authorization>()("ringmaster/http/Authorization", {
  failure: Schema.Union(Wire.UnauthorizedError, Wire.TooManyRequestsError, Wire.ServiceUnavailableError),
  provides: CurrentCaller,
  security: {
    bearer: HttpApiSecurity.bearer.pipe(HttpApiSecurity.annotate(OpenApi.Description, "The API key from POST /api/agents"))
  }
}) {}

/** Registrations per client address (the unauthenticated route). */
export class RegistrationLimit extends HttpApiMiddleware.Tag<RegistrationLimit>()("ringmaster/http/RegistrationLimit", {
  failure: Wire.TooManyRequestsError
}) {}

// ---------------------------------------------------------------------------
// Endpoints
// ---------------------------------------------------------------------------

const idParam = HttpApiSchema.param("id", EscrowId)
const mandateIdParam = HttpApiSchema.param("id", MandateId)
const addressParam = HttpApiSchema.param("address", WalletAddress)

export class SystemGroup extends HttpApiGroup.make("system", { topLevel: true })
  .add(HttpApiEndpoint.get("health", "/health").addSuccess(Health))
  .annotate(OpenApi.Description, "Liveness") {}

export class AgentsGroup extends HttpApiGroup.make("agents")
  .add(
    HttpApiEndpoint.post("register", "/api/agents")
      .setPayload(RegisterAgentRequest)
      .addSuccess(RegisteredAgent)
      .middleware(RegistrationLimit)
      .annotate(OpenApi.Description, "Register an agent; the API key is returned once. Rate-limited per client address.")
  )
  .add(
    HttpApiEndpoint.post("rotateKey", "/api/agents/rotate-key")
      .setPayload(RotateKeyRequest)
      .addSuccess(RotatedKey)
      .middleware(Authorization)
      .annotate(
        OpenApi.Description,
        "Issue a new API key; the agent's older keys work for `grace_seconds` (default and maximum: the configured grace), then stop. " +
          "Only the agent's current key may rotate: a key replaced by a rotation is refused with 403 `key_in_grace`."
      )
  )
  .add(
    HttpApiEndpoint.post("revokeKeys", "/api/agents/revoke-keys")
      .addSuccess(RevokedKeys)
      .middleware(Authorization)
      .annotate(
        OpenApi.Description,
        "End every other key of the agent now, their grace included. Only the agent's current key may revoke (else 403 `key_in_grace`)."
      )
  )
  .add(
    HttpApiEndpoint.get("me", "/api/agents/me")
      .addSuccess(AgentCard)
      .middleware(Authorization)
      .annotate(OpenApi.Description, "The caller's own card: which agent and wallet its API key belongs to")
  )
  .add(
    HttpApiEndpoint.get("agent")`/api/agents/${addressParam}`
      .addSuccess(AgentCard)
      .middleware(Authorization)
      .annotate(OpenApi.Description, "An agent's public card, for any authenticated agent")
  )
  .add(
    HttpApiEndpoint.get("referrals", "/api/referrals")
      .addSuccess(Referrals)
      .middleware(Authorization)
      .annotate(OpenApi.Description, "The caller's referral earnings")
  ) {}

export class WalletsGroup extends HttpApiGroup.make("wallets")
  .add(
    HttpApiEndpoint.post("claimFaucet", "/api/faucet/claim")
      .setPayload(FaucetClaimRequest)
      .addSuccess(FaucetClaimed)
      .annotate(
        OpenApi.Description,
        "Credit the faucet amount, once per wallet; only for the caller's own wallet. At most FAUCET_CLAIMS_PER_ADDRESS_PER_DAY (3) per client address per UTC day."
      )
  )
  .add(
    HttpApiEndpoint.get("balance")`/api/wallets/${addressParam}`
      .addSuccess(Wallet)
      .annotate(OpenApi.Description, "The caller's own wallet: available and locked")
  )
  .add(
    HttpApiEndpoint.get("activity")`/api/wallets/${addressParam}/activity`
      .addSuccess(Activity)
      .annotate(OpenApi.Description, "The caller's own wallet: spent, revenue, fees and referral income, in total and per region")
  )
  .middleware(Authorization) {}

export class MandatesGroup extends HttpApiGroup.make("mandates")
  .add(
    HttpApiEndpoint.post("create", "/api/mandates")
      .setPayload(CreateMandateRequest)
      .addSuccess(Mandate.annotations(HttpApiSchema.annotations({ status: 201 })))
      .annotate(
        OpenApi.Description,
        "Let the payee open escrows against the caller's wallet, within limits: per escrow (`max_amount_usdc`, " +
          "`max_timeout_ms`), in total (`budget_usdc`) and in time (`expires_at`)"
      )
  )
  .add(
    HttpApiEndpoint.del("revoke")`/api/mandates/${mandateIdParam}`
      .addSuccess(Mandate)
      .annotate(OpenApi.Description, "Revoke a mandate the caller granted")
  )
  .middleware(Authorization) {}

export class PaymentTokensGroup extends HttpApiGroup.make("paymentTokens")
  .add(
    HttpApiEndpoint.post("create", "/api/payment-tokens")
      .setPayload(CreatePaymentTokenRequest)
      .addSuccess(PaymentToken)
      .annotate(
        OpenApi.Description,
        "Mint a single-use, short-lived token letting one payee open one escrow of at most `max_amount_usdc` against the caller's wallet"
      )
  )
  .middleware(Authorization) {}

export class EscrowGroup extends HttpApiGroup.make("escrow")
  .add(
    HttpApiEndpoint.post("create", "/api/escrow/create")
      .setPayload(CreateEscrowRequest)
      .setHeaders(IdempotencyHeaders)
      .addSuccess(EscrowCreated)
      .annotate(
        OpenApi.Description,
        "Lock funds: as the payer, as the payee under a live mandate from the payer (its budget is decremented atomically), " +
          "or as the payee redeeming the payer's `payment_token` (single use; 403 `payment_token_invalid` names why one is refused)"
      )
  )
  .add(
    HttpApiEndpoint.post("release", "/api/escrow/release")
      .setPayload(ReleaseRequest)
      .addSuccess(Escrow)
      .annotate(
        OpenApi.Description,
        "Pay out all that remains, or `amount_usdc` of it: the payer, or the payee of an escrow opened under a mandate. " +
          "At or after the escrow's deadline it is refused (409 escrow_expired) and the escrow is refunded to its payer."
      )
  )
  .add(
    HttpApiEndpoint.post("cancel", "/api/escrow/cancel")
      .setPayload(CancelRequest)
      .addSuccess(Escrow)
      .annotate(OpenApi.Description, "Refund what remains: the payee at any time, the payer after the deadline")
  )
  .add(
    HttpApiEndpoint.get("get")`/api/escrow/${idParam}`
      .addSuccess(Escrow)
      .annotate(OpenApi.Description, "One escrow; parties only")
  )
  .add(
    HttpApiEndpoint.get("list", "/api/escrows")
      .setUrlParams(ListEscrowsParams)
      .addSuccess(EscrowPage)
      .annotate(OpenApi.Description, "The caller's escrows (as payer or payee), oldest first, paginated")
  )
  .middleware(Authorization) {}

/**
 * The whole contract. Every endpoint may answer with any of the wire errors; the
 * edge middleware (`edge.ts`) writes them, including schema decode failures, which
 * it turns into `400 {"error":"invalid_request","field":...}` instead of the
 * platform's default shape.
 */
export class SettlementApi extends HttpApi.make("settlement")
  .add(SystemGroup)
  .add(AgentsGroup)
  .add(WalletsGroup)
  .add(MandatesGroup)
  .add(PaymentTokensGroup)
  .add(EscrowGroup)
  .addError(Wire.BadRequestError)
  .addError(Wire.UnauthorizedError)
  .addError(Wire.PaymentRequiredError)
  .addError(Wire.ForbiddenError)
  .addError(Wire.NotFoundError)
  .addError(Wire.ConflictError)
  .addError(Wire.PayloadTooLargeError)
  .addError(Wire.UnsupportedMediaTypeError)
  .addError(Wire.TooManyRequestsError)
  .addError(Wire.InternalError)
  .addError(Wire.ServiceUnavailableError)
  .annotate(OpenApi.Title, "ringmaster settlement service")
  .annotate(OpenApi.Version, "1")
  .annotate(
    OpenApi.Description,
    "Escrow between agents: micro-USDC amounts, 1% fee borne by the payee, 15% of each fee to each party's referrer. " +
      "Errors are `{ \"error\": code, \"message\": text, \"field\"?: name, \"details\"?: facts }`."
  )
  .annotate(OpenApi.Transform, (spec) => publishedSpec(spec)) {}

/** What the published document corrects in the generated one; every contract built on these errors applies it. */
export const publishedSpec = (spec: Record<string, any>): Record<string, any> => optionalNullableBodies(dropPlatformDecodeError(spec))

/**
 * A payload that may be `null` may also be left out (an empty body reads as `null`),
 * as `rotate-key`'s is: the published spec says so, or generated clients would send one.
 */
function optionalNullableBodies(spec: Record<string, any>): Record<string, any> {
  for (const path of Object.values(spec.paths ?? {}) as Array<Record<string, any>>) {
    for (const op of Object.values(path)) {
      const anyOf = op?.requestBody?.content?.["application/json"]?.schema?.anyOf
      if (Array.isArray(anyOf) && anyOf.some((s: any) => s?.type === "null")) op.requestBody.required = false
    }
  }
  return spec
}

/**
 * `HttpApi.make` declares the platform's `HttpApiDecodeError` for every endpoint;
 * this service never sends it (the edge middleware answers `BadRequestError`), so
 * the published spec leaves it out.
 */
function dropPlatformDecodeError(spec: Record<string, any>): Record<string, any> {
  const isDecodeError = (s: unknown) =>
    typeof s === "object" && s !== null && (s as any).$ref === "#/components/schemas/HttpApiDecodeError"
  for (const path of Object.values(spec.paths ?? {}) as Array<Record<string, any>>) {
    for (const op of Object.values(path)) {
      const badRequest = op?.responses?.["400"]
      if (badRequest !== undefined) badRequest.description = "The request is malformed; `field` names the part to blame"
      const content = badRequest?.content?.["application/json"]
      const anyOf = content?.schema?.anyOf
      if (Array.isArray(anyOf)) {
        const kept = anyOf.filter((s: unknown) => !isDecodeError(s))
        content.schema = kept.length === 1 ? kept[0] : { ...content.schema, anyOf: kept }
      }
    }
  }
  const schemas = spec.components?.schemas
  if (schemas) {
    delete schemas["HttpApiDecodeError"]
    delete schemas["Issue"]
    delete schemas["PropertyKey"]
  }
  return spec
}
