/**
 * The orchestrator's own routes, thin: read the body, call `PaidRequests`, write
 * the response. Served next to the settlement API (embedded) or alone (remote
 * settlement), on the same router either way.
 *
 * - `GET  /info`          who this orchestrator is and what a request costs
 * - `POST /inference`     `{payer_wallet, prompt}` → `{result, cost_usdc, escrow_id, region}`
 * - `POST /tasks/{agent}` `{payer_wallet, input}` (+ `Idempotency-Key`) → `{agent, result, cost_usdc, escrow_id, region}`
 * - `GET  /health`        only when the settlement API (which has its own) is not served here
 *
 * Errors use the settlement API's shape: `{ "error", "message", "field"? }`.
 */
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Option } from "effect"
import * as Usdc from "../domain/Usdc.js"
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

const errorResponse = (error: PaidRequestError) => {
  const { body, status } = toHttp(error)
  return HttpServerResponse.unsafeJson(body, { status })
}

const tooLarge = (maxBodyBytes: number) =>
  HttpServerResponse.unsafeJson(
    { error: "payload_too_large", message: `the request body exceeds ${maxBodyBytes} bytes` },
    { status: 413, headers: { connection: "close" } }
  )

/** The JSON body, bounded; a malformed one is a 400 naming `body`. */
const readJson = (maxBodyBytes: number) =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
    const declared = Number(request.headers["content-length"] ?? "0")
    if (Number.isFinite(declared) && declared > maxBodyBytes) return Effect.succeed({ _tag: "TooLarge" as const })
    return request.text.pipe(
      HttpIncomingMessage.withMaxBodySize(Option.some(maxBodyBytes)),
      Effect.map((text) => {
        try {
          return { _tag: "Body" as const, body: text.length === 0 ? undefined : (JSON.parse(text) as unknown) }
        } catch {
          return { _tag: "Invalid" as const }
        }
      }),
      Effect.catchAll(() => Effect.succeed({ _tag: "TooLarge" as const }))
    )
  })

const respond = (paid: Effect.Effect<PaidResult, PaidRequestError>, extra: Record<string, unknown> = {}) =>
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
    Effect.catchAll((error) => Effect.succeed(errorResponse(error)))
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

    const body = readJson(config.maxBodyBytes)
    const withBody = (handle: (body: unknown) => Effect.Effect<HttpServerResponse.HttpServerResponse>) =>
      Effect.flatMap(body, (read) =>
        read._tag === "TooLarge"
          ? Effect.succeed(tooLarge(config.maxBodyBytes))
          : read._tag === "Invalid"
          ? Effect.succeed(errorResponse(new InvalidRequest({ field: "body", message: "not valid JSON" })))
          : handle(read.body))

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
      HttpRouter.post(paths.inference, withBody((b) => respond(paid.inference(b)))),
      HttpRouter.post(
        paths.tasks,
        Effect.gen(function*() {
          const params = yield* HttpRouter.params
          const request = yield* HttpServerRequest.HttpServerRequest
          const agent = params["agent"] ?? ""
          const key = request.headers["idempotency-key"]
          return yield* withBody((b) => respond(paid.task(agent, b, key), { agent }))
        })
      )
    )
    if (options.withHealth) {
      router = router.pipe(HttpRouter.get(paths.health, Effect.succeed(HttpServerResponse.unsafeJson(health))))
    }
    return router
  })
