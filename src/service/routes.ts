/**
 * The orchestrator's routes of the contract (src/http/ServiceApi.ts), thin: read the
 * body, call `PaidRequests`, answer its result or its refusal as the contract's wire
 * error (`toWire`). One implementation for both contracts: `ServiceApi` (settlement
 * embedded, served beside the settlement API's handlers) and `ServiceApiRemote`
 * (settlement elsewhere, with this service's own `/health`).
 *
 * The paid routes read their body themselves rather than through the contract's
 * payload schema: `PaidRequests` judges it by the service's rules (400 naming the
 * field, a per-task input schema, the configured prompt limit), which the schema
 * only describes. The edge (src/http/edge.ts) has already refused a body too large,
 * nested too deep or not JSON by its `Content-Type`.
 */
import type * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { Effect, Layer } from "effect"
import * as Usdc from "../domain/Usdc.js"
import { PaymentAuthorizationLive } from "../http/payment.js"
import { type OrchestratorGroup, PaymentCredential, ServiceApi, ServiceApiRemote } from "../http/ServiceApi.js"
import { InvalidRequest, toWire } from "./errors.js"
import { Identity } from "./Identity.js"
import { PaidRequests, type PaidResult } from "./PaidRequests.js"
import { INFERENCE_MICROS_PER_CHAR, MIN_INFERENCE_MICROS, Pipeline } from "./Pipeline.js"
import { ServiceConfig } from "./ServiceConfig.js"

type ErrorOf<Api> = Api extends HttpApi.HttpApi<infer _Id, infer _Groups, infer E, infer _R> ? E : never

/** The same for both contracts: they declare the same errors. */
type Handlers = HttpApiBuilder.Handlers.FromGroup<ErrorOf<typeof ServiceApi>, never, typeof OrchestratorGroup>

/**
 * The body as JSON; empty is `undefined` (`PaidRequests` names what is missing). A
 * failure to read it (over the size limit) is the edge's to answer, as for every route.
 */
const jsonBody = (request: HttpServerRequest.HttpServerRequest): Effect.Effect<unknown, InvalidRequest> =>
  Effect.flatMap(Effect.orDie(request.text), (text) => {
    if (text.length === 0) return Effect.succeed(undefined)
    try {
      return Effect.succeed(JSON.parse(text) as unknown)
    } catch {
      return Effect.fail(new InvalidRequest({ field: "body", message: "not valid JSON" }))
    }
  })

const paidReply = (r: PaidResult) => ({ result: r.result, cost_usdc: r.cost, escrow_id: r.escrowId, region: r.region })

const orchestratorHandlers = (handlers: Handlers) =>
  Effect.gen(function*() {
    const config = yield* ServiceConfig
    const paid = yield* PaidRequests
    const identity = yield* Identity
    const pipeline = yield* Pipeline
    const fees = config.ledger.fees
    const pricing = {
      currency: "USDC" as const,
      inference: {
        formula: "max(0.001, len(prompt) × 0.00001) USDC, len in Unicode code points",
        minimum_usdc: Usdc.unsafeMicros(MIN_INFERENCE_MICROS),
        per_char_usdc: Usdc.unsafeMicros(INFERENCE_MICROS_PER_CHAR)
      },
      tasks: Object.fromEntries(
        [...pipeline.tasks.values()].map((t) => [t.name, { description: t.description, price_usdc: t.listPrice === undefined ? "depends on input" : Usdc.format(t.listPrice) }])
      ),
      // Borne by the payee (this orchestrator); the payer pays exactly `cost_usdc`.
      escrow_fee_rate: (fees.feePpm / 1_000_000).toString(),
      referral_rates: fees.referralTiersPpm.map((ppm) => (ppm / 1_000_000).toString())
    }
    const settlement = config.settlement._tag === "Embedded" ? "embedded" : config.settlement.baseUrl
    /** Where a payer mints its token: the remote settlement service, or this server when it serves the settlement API. */
    const settlementUrl = (request: HttpServerRequest.HttpServerRequest): string => {
      if (config.settlement._tag === "Remote") return config.settlement.baseUrl
      const proto = request.headers["x-forwarded-proto"]?.split(",")[0]?.trim() === "https" ? "https" : "http"
      return `${proto}://${request.headers["host"] ?? `${config.host}:${config.port}`}`
    }

    return handlers
      .handle("info", () =>
        Effect.map(identity.current, (me) => ({
          agent_id: me.agentId,
          agent_name: me.name,
          wallet_address: me.wallet,
          referral_code: me.referralCode,
          region: config.region,
          settlement,
          pricing
        })))
      .handleRaw("inference", ({ request }) =>
        Effect.flatMap(PaymentCredential, (credential) =>
          Effect.flatMap(jsonBody(request), (body) => paid.inference(body, credential)).pipe(
            Effect.map(paidReply),
            Effect.mapError((error) => toWire(error, settlementUrl(request)))
          )))
      .handleRaw("task", ({ headers, path, request }) =>
        Effect.flatMap(PaymentCredential, (credential) =>
          Effect.flatMap(jsonBody(request), (body) => paid.task(path.agent, body, headers["idempotency-key"], credential)).pipe(
            Effect.map((r) => ({ agent: path.agent, ...paidReply(r) })),
            Effect.mapError((error) => toWire(error, settlementUrl(request)))
          )))
  })

/** The orchestrator's routes beside the settlement API's (`ServiceApi`). */
export const layerEmbedded = HttpApiBuilder.group(ServiceApi, "orchestrator", orchestratorHandlers).pipe(
  Layer.provide(PaymentAuthorizationLive)
)

/** The orchestrator's routes and its own `/health` (`ServiceApiRemote`). */
export const layerRemote = Layer.merge(
  HttpApiBuilder.group(ServiceApiRemote, "orchestrator", orchestratorHandlers),
  HttpApiBuilder.group(ServiceApiRemote, "system", (handlers) =>
    Effect.map(ServiceConfig, (config) => {
      const health = { ok: true as const, region: config.region }
      return handlers.handle("health", () => Effect.succeed(health))
    }))
).pipe(Layer.provide(PaymentAuthorizationLive))
