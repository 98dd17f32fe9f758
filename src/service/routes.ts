/**
 * The orchestrator's own routes, thin: read the body, call `PaidRequests`, write
 * the response. Served next to the settlement API (embedded) or alone (remote
 * settlement), on the same router either way.
 *
 * - `GET  /info`          who this orchestrator is and what a request costs
 * - `POST /inference`     `{payer_wallet?, prompt}` → `{result, cost_usdc, escrow_id, region}`
 * - `POST /tasks/{agent}` `{payer_wallet?, input}` (+ `Idempotency-Key`) → `{agent, result, cost_usdc, escrow_id, region}`
 * - `GET  /health`        only when the settlement API (which has its own) is not served here
 *
 * The paid routes take the payer's payment token as `Authorization: Payment <token>`.
 * Without one (or with one the settlement service refuses) they answer `402` with
 * `WWW-Authenticate: Payment realm="ringmaster", ...` naming the price, this
 * orchestrator's wallet (the payee to mint the token for) and the settlement service.
 *
 * Errors use the settlement API's shape: `{ "error", "message", "field"? }`.
 */
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Option, Redacted } from "effect"
import * as Usdc from "../domain/Usdc.js"
import { exceedsDepth, tooDeepMessage, unsupportedContentType, unsupportedMediaTypeMessage } from "../http/jsonBody.js"
import { InvalidRequest, type PaidRequestError, toHttp } from "./errors.js"
import { Identity } from "./Identity.js"
import { PaidRequests, type PaidResult } from "./PaidRequests.js"
import { INFERENCE_MICROS_PER_CHAR, MIN_INFERENCE_MICROS, Pipeline } from "./Pipeline.js"
import { ServiceConfig } from "./ServiceConfig.js"

export const paths = {
  health: "/health",
  info: "/info",
  inference: "/inference",
  tasks: "/tasks/:agent"
} as const

const errorResponse = (error: PaidRequestError, settlementUrl: string) => {
  const { body, status } = toHttp(error)
  if (error._tag !== "PaymentChallenge") return HttpServerResponse.unsafeJson(body, { status })
  const tokenEndpoint = `${settlementUrl}/api/payment-tokens`
  const params = [
    `realm="ringmaster"`,
    `method="payment_token"`,
    `amount="${Usdc.format(error.priceMicros)}"`,
    `currency="USDC"`,
    `payee="${error.payee}"`,
    `settlement="${quotable(settlementUrl)}"`,
    `token_endpoint="${quotable(tokenEndpoint)}"`,
    ...(error.refusal === undefined ? [] : [`error="invalid_token"`])
  ]
  return HttpServerResponse.unsafeJson(
    { ...body, settlement_url: settlementUrl, token_endpoint: tokenEndpoint },
    { status, headers: { "www-authenticate": `Payment ${params.join(", ")}` } }
  )
}

/** A header parameter's value: no quotes, backslashes or control characters (the Host header is the client's). */
const quotable = (text: string) => text.replace(/["\\\x00-\x1f\x7f]/g, "")

/** `Authorization: Payment <token>`; any other scheme (or none) is no payment credential. */
const paymentCredential = (request: HttpServerRequest.HttpServerRequest) => {
  const match = /^Payment +(\S{1,256}) *$/i.exec(request.headers["authorization"] ?? "")
  return match === null ? undefined : Redacted.make(match[1]!)
}

const tooLarge = (maxBodyBytes: number) =>
  HttpServerResponse.unsafeJson(
    { error: "payload_too_large", message: `the request body exceeds ${maxBodyBytes} bytes` },
    { status: 413, headers: { connection: "close" } }
  )

const unsupportedMediaType = (contentType: string) =>
  HttpServerResponse.unsafeJson(
    { error: "unsupported_media_type", message: unsupportedMediaTypeMessage(contentType), field: "content-type" },
    { status: 415 }
  )

type Read =
  | { readonly _tag: "TooLarge" }
  | { readonly _tag: "NotJson"; readonly contentType: string }
  | { readonly _tag: "TooDeep" }
  | { readonly _tag: "Invalid" }
  | { readonly _tag: "Body"; readonly body: unknown }

/**
 * The JSON body, bounded in size and depth (jsonBody.ts: checked before parsing); a
 * malformed or too deep one is a 400 naming `body`, one that is not JSON a 415.
 */
const readJson = (maxBodyBytes: number) =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request): Effect.Effect<Read> => {
    const declared = Number(request.headers["content-length"] ?? "0")
    if (Number.isFinite(declared) && declared > maxBodyBytes) return Effect.succeed({ _tag: "TooLarge" as const })
    const contentType = unsupportedContentType(request.method, request.headers)
    if (contentType !== undefined) {
      return Effect.succeed({ _tag: "NotJson" as const, contentType })
    }
    return request.text.pipe(
      HttpIncomingMessage.withMaxBodySize(Option.some(maxBodyBytes)),
      Effect.map((text): Read => {
        if (exceedsDepth(text)) return { _tag: "TooDeep" }
        try {
          return { _tag: "Body" as const, body: text.length === 0 ? undefined : (JSON.parse(text) as unknown) }
        } catch {
          return { _tag: "Invalid" as const }
        }
      }),
      Effect.catchAll(() => Effect.succeed({ _tag: "TooLarge" as const }))
    )
  })

const respond = (paid: Effect.Effect<PaidResult, PaidRequestError>, settlementUrl: string, extra: Record<string, unknown> = {}) =>
  paid.pipe(
    Effect.map((r) =>
      HttpServerResponse.unsafeJson({
        ...extra,
        result: r.result,
        cost_usdc: Usdc.format(r.cost),
        escrow_id: r.escrowId,
        region: r.region
      })
    ),
    Effect.catchAll((error) => Effect.succeed(errorResponse(error, settlementUrl)))
  )

/** The routes, needing the service's parts from the context. */
export const make = (options: { readonly withHealth: boolean }) =>
  Effect.gen(function*() {
    const config = yield* ServiceConfig
    const paid = yield* PaidRequests
    const identity = yield* Identity
    const pipeline = yield* Pipeline
    const fees = config.ledger.fees
    const pricing = {
      currency: "USDC",
      inference: {
        formula: "max(0.001, len(prompt) × 0.00001) USDC, len in Unicode code points",
        minimum_usdc: Usdc.format(MIN_INFERENCE_MICROS),
        per_char_usdc: Usdc.format(INFERENCE_MICROS_PER_CHAR)
      },
      tasks: Object.fromEntries(
        [...pipeline.tasks.values()].map((t) => [t.name, { description: t.description, price_usdc: t.listPrice === undefined ? "depends on input" : Usdc.format(t.listPrice) }])
      ),
      // Borne by the payee (this orchestrator); the payer pays exactly `cost_usdc`.
      escrow_fee_rate: (fees.feePpm / 1_000_000).toString(),
      referral_rates: fees.referralTiersPpm.map((ppm) => (ppm / 1_000_000).toString())
    }
    const health = { ok: true as const, region: config.region }
    /** Where a payer mints its token: the remote settlement service, or this server when it serves the settlement API. */
    const settlementUrl = (request: HttpServerRequest.HttpServerRequest): string => {
      if (config.settlement._tag === "Remote") return config.settlement.baseUrl
      const proto = request.headers["x-forwarded-proto"]?.split(",")[0]?.trim() === "https" ? "https" : "http"
      return `${proto}://${request.headers["host"] ?? `${config.host}:${config.port}`}`
    }

    const body = readJson(config.maxBodyBytes)
    const withBody = (handle: (body: unknown) => Effect.Effect<HttpServerResponse.HttpServerResponse>) =>
      Effect.flatMap(body, (read) => {
        switch (read._tag) {
          case "TooLarge":
            return Effect.succeed(tooLarge(config.maxBodyBytes))
          case "NotJson":
            return Effect.succeed(unsupportedMediaType(read.contentType))
          case "TooDeep":
            return Effect.succeed(HttpServerResponse.unsafeJson({ error: "invalid_request", message: tooDeepMessage, field: "body" }, { status: 400 }))
          case "Invalid":
            return Effect.succeed(errorResponse(new InvalidRequest({ field: "body", message: "not valid JSON" }), ""))
          case "Body":
            return handle(read.body)
        }
      })

    let router = HttpRouter.empty.pipe(
      HttpRouter.get(
        paths.info,
        Effect.map(identity.current, (me) =>
          HttpServerResponse.unsafeJson({
            agent_id: me.agentId,
            agent_name: me.name,
            wallet_address: me.wallet,
            referral_code: me.referralCode,
            region: config.region,
            settlement: config.settlement._tag === "Embedded" ? "embedded" : config.settlement.baseUrl,
            pricing
          }))
      ),
      HttpRouter.post(
        paths.inference,
        Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
          withBody((b) => respond(paid.inference(b, paymentCredential(request)), settlementUrl(request))))
      ),
      HttpRouter.post(
        paths.tasks,
        Effect.gen(function*() {
          const params = yield* HttpRouter.params
          const request = yield* HttpServerRequest.HttpServerRequest
          const agent = params["agent"] ?? ""
          const key = request.headers["idempotency-key"]
          return yield* withBody((b) => respond(paid.task(agent, b, key, paymentCredential(request)), settlementUrl(request), { agent }))
        })
      )
    )
    if (options.withHealth) {
      router = router.pipe(HttpRouter.get(paths.health, Effect.succeed(HttpServerResponse.unsafeJson(health))))
    }
    return router
  })
