/**
 * The orchestrator service's own routes as part of the `HttpApi` contract, beside the
 * settlement API: `/openapi.json`, `/docs` and a client derived with `HttpApiClient`
 * all come from here, and the service (src/service/routes.ts) implements them.
 *
 * - `GET  /info`          who this orchestrator is and what a request costs
 * - `POST /inference`     `{payer_wallet?, prompt}` → `{result, cost_usdc, escrow_id, region}`
 * - `POST /tasks/{agent}` `{payer_wallet?, input}` (+ `Idempotency-Key`) → `{agent, result, cost_usdc, escrow_id, region}`
 *
 * The paid routes take the payer's payment token as `Authorization: Payment <token>`.
 * Without one (or with one the settlement service refuses) they answer `402
 * PaymentChallengeError` with `WWW-Authenticate: Payment realm="ringmaster", ...`
 * naming the price, the payee to mint the token for and where to mint it; the edge
 * writes that header from the error (`challengeHeader` in errors.ts), since no error
 * schema can carry a header.
 *
 * Two contracts, one per settlement mode: `ServiceApi` (the settlement API embedded
 * on the same port) and `ServiceApiRemote` (settlement elsewhere: only `/health` and
 * these routes). Both carry the same errors, so one implementation serves either.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import * as OpenApi from "@effect/platform/OpenApi"
import { Context, type Redacted, Schema } from "effect"
import { AgentId, EscrowId, ReferralCode, WalletAddress } from "../domain/ids.js"
import { AmountOut, publishedSpec, SettlementApi, SystemGroup } from "./Api.js"
import * as Wire from "./errors.js"

// ---------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------

const TaskListing = Schema.Struct({
  description: Schema.String,
  price_usdc: Schema.String.annotations({
    description: "A 6-place USDC amount, or \"depends on input\" for a task priced by its input"
  })
})

export const Pricing = Schema.Struct({
  currency: Schema.Literal("USDC"),
  inference: Schema.Struct({
    formula: Schema.String,
    minimum_usdc: AmountOut,
    per_char_usdc: AmountOut
  }),
  tasks: Schema.Record({ key: Schema.String, value: TaskListing }),
  /** Borne by the payee (this orchestrator); the payer pays exactly `cost_usdc`. */
  escrow_fee_rate: Schema.String,
  referral_rates: Schema.Array(Schema.String)
})

export const OrchestratorInfo = Schema.Struct({
  /** Null until the settlement service has registered this orchestrator. */
  agent_id: Schema.NullOr(AgentId),
  agent_name: Schema.String,
  /** The payee to mint payment tokens (and grant mandates) for. */
  wallet_address: WalletAddress,
  referral_code: Schema.NullOr(ReferralCode),
  region: Schema.String,
  /** "embedded", or the settlement service's URL. */
  settlement: Schema.String,
  pricing: Pricing
}).annotations({ identifier: "OrchestratorInfo" })

const PayerWallet = Schema.optional(
  Schema.NullOr(WalletAddress).annotations({
    description: "The payer; with a payment token it must be the token's payer. Required when settlement is remote."
  })
)

/**
 * What the service accepts. The body is read and judged by the service's own rules
 * (400 naming the field), which these schemas describe for the documents and clients.
 */
export const InferenceRequest = Schema.Struct({
  payer_wallet: PayerWallet,
  prompt: Schema.String.annotations({
    description: "Priced max(0.001, length × 0.00001) USDC, length in Unicode code points; at most MAX_PROMPT_CHARS"
  })
}).annotations({ identifier: "InferenceRequest" })

export const TaskRequest = Schema.Struct({
  payer_wallet: PayerWallet,
  input: Schema.Unknown.annotations({ description: "The task's input, in the task's own schema" })
}).annotations({ identifier: "TaskRequest" })

const paidFields = {
  result: Schema.Unknown,
  /** What the payer paid: the escrow released to this orchestrator. */
  cost_usdc: AmountOut,
  escrow_id: EscrowId,
  region: Schema.String
}

export const InferenceReply = Schema.Struct(paidFields).annotations({ identifier: "InferenceReply" })
export const TaskReply = Schema.Struct({ agent: Schema.String, ...paidFields }).annotations({ identifier: "TaskReply" })

export const TaskHeaders = Schema.Struct({
  "idempotency-key": Schema.optional(
    Schema.String.annotations({
      description: "The event's id, 1-128 printable ASCII characters: the same request with the same key and payment " +
        "token is run and charged once and answered with the same reply; with another request it is refused " +
        "(409 idempotency_key_reused)"
    })
  )
})

// ---------------------------------------------------------------------------
// Middleware: the payment credential
// ---------------------------------------------------------------------------

/** The payer's payment token from `Authorization: Payment <token>`; `undefined` when the request carries none. */
export class PaymentCredential extends Context.Tag("ringmaster/http/PaymentCredential")<
  PaymentCredential,
  Redacted.Redacted<string> | undefined
>() {}

/**
 * Reads `Authorization: Payment <token>`. It never refuses: a request without a
 * credential is answered with the 402 challenge by the route, which knows the price.
 */
export class PaymentAuthorization extends HttpApiMiddleware.Tag<PaymentAuthorization>()("ringmaster/http/PaymentAuthorization", {
  provides: PaymentCredential,
  security: {
    payment: HttpApiSecurity.apiKey({ key: "Authorization", in: "header" }).pipe(
      HttpApiSecurity.annotate(
        OpenApi.Description,
        "`Payment <token>`: a payment token the payer minted for this orchestrator's wallet (POST /api/payment-tokens " +
          "on the settlement service); single use"
      )
    )
  }
}) {}

// ---------------------------------------------------------------------------
// Endpoints
// ---------------------------------------------------------------------------

const agentParam = HttpApiSchema.param("agent", Schema.String)

export class OrchestratorGroup extends HttpApiGroup.make("orchestrator")
  .add(
    HttpApiEndpoint.get("info", "/info")
      .addSuccess(OrchestratorInfo)
      .annotate(OpenApi.Summary, "this orchestrator: agent id, wallet, referral code, region, prices")
      .annotate(OpenApi.Description, "Who to mint payment tokens for, and what each request costs")
  )
  .add(
    HttpApiEndpoint.post("inference", "/inference")
      .setPayload(InferenceRequest)
      .addSuccess(InferenceReply)
      .addError(Wire.PaymentChallengeError)
      .addError(Wire.TaskFailedError)
      .addError(Wire.TaskTimedOutError)
      .middleware(PaymentAuthorization)
      .annotate(OpenApi.Summary, "a paid inference: {\"payer_wallet\", \"prompt\"}, paid with the payer's payment token")
      .annotate(
        OpenApi.Description,
        "Opens an escrow payer → orchestrator for the price by redeeming the payment token, runs the inference, and " +
          "settles before answering: released on success, cancelled (full refund) on failure or timeout. " +
          "Without a payment token, or with one refused: 402 with the challenge."
      )
  )
  .add(
    HttpApiEndpoint.post("task")`/tasks/${agentParam}`
      .setPayload(TaskRequest)
      .setHeaders(TaskHeaders)
      .addSuccess(TaskReply)
      .addError(Wire.PaymentChallengeError)
      .addError(Wire.UnknownTaskError)
      .addError(Wire.TaskFailedError)
      .addError(Wire.TaskTimedOutError)
      .middleware(PaymentAuthorization)
      .annotate(OpenApi.Summary, "a paid task for one of the pipeline's agents")
      .annotate(
        OpenApi.Description,
        "As /inference, priced by the task (GET /info lists them); an `Idempotency-Key` makes a repeated event run and " +
          "charge once."
      )
  ) {}

/**
 * The 402 challenge's header, which no schema carries: the published document names
 * it on every route that sends it, and says which 402 is which.
 */
const documentChallenge = (spec: Record<string, any>): Record<string, any> => {
  for (const path of Object.values(spec.paths ?? {}) as Array<Record<string, any>>) {
    for (const op of Object.values(path)) {
      const paymentRequired = op?.responses?.["402"]
      if (paymentRequired === undefined || !JSON.stringify(paymentRequired).includes("PaymentChallengeError")) continue
      paymentRequired.description = "No payment token, or one the settlement service refused (`PaymentChallengeError`, with " +
        "`WWW-Authenticate`); or the payer's available balance does not cover the price (`PaymentRequiredError`)"
      paymentRequired.headers = {
        "WWW-Authenticate": {
          description: "With `PaymentChallengeError`: `Payment realm=\"ringmaster\", method=\"payment_token\", amount, " +
            "currency, payee, settlement, token_endpoint` (and `error=\"invalid_token\"` when a token was refused)",
          schema: { type: "string" }
        }
      }
    }
  }
  return spec
}

const description = "A ringmaster orchestrator: paid inference and tasks, each held in escrow until it is answered. " +
  "Errors are `{ \"error\": code, \"message\": text, \"field\"?: name, \"details\"?: facts }`."

/** With the settlement API embedded on the same port (`ESCROW_BASE` unset). */
export class ServiceApi extends SettlementApi
  .add(OrchestratorGroup)
  .annotate(OpenApi.Title, "ringmaster orchestrator service")
  .annotate(OpenApi.Description, `${description} The settlement API is served beside it.`)
  .annotate(OpenApi.Transform, (spec) => documentChallenge(publishedSpec(spec))) {}

/** With a remote settlement service (`ESCROW_BASE` set): liveness and the orchestrator's routes. */
export class ServiceApiRemote extends HttpApi.make("serviceRemote")
  .add(SystemGroup)
  .add(OrchestratorGroup)
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
  .annotate(OpenApi.Title, "ringmaster orchestrator service")
  .annotate(OpenApi.Version, "1")
  .annotate(OpenApi.Description, `${description} Settlement is a remote service.`)
  .annotate(OpenApi.Transform, (spec) => documentChallenge(publishedSpec(spec))) {}
