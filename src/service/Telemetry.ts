/**
 * What operators watch: Effect `Metric`s exported through OpenTelemetry as
 * Prometheus text on `:METRICS_PORT/metrics` (Fly scrapes it per `[metrics]` in
 * fly.toml), and traces to an OTLP collector when `OTEL_EXPORTER_OTLP_ENDPOINT`
 * is set.
 *
 * The OpenTelemetry SDK (TelemetryExport.ts, TelemetryTracing.ts) is loaded with
 * a dynamic `import()`: loading it was about a tenth of the cold start, and serving
 * a request does not need it unless traces are exported. So the metrics port is bound at start (a port
 * that cannot be bound still stops start-up), and the exporter behind it is loaded
 * once the service's port is open (`TelemetryExport.startInBackground`) or by the
 * first scrape, whichever comes first; a scrape waits for it. Nothing is lost in
 * between: the metrics live in Effect's registry and are read at each scrape.
 * With OTLP configured the SDK is loaded before start-up goes on, so the first
 * request is traced.
 *
 * The metrics are defined here, once; the ledger's transitions, the escrow
 * decorator (remote settlement), the sweeper, the HTTP responses and the pipeline
 * update them (Counters.ts). Every one carries the `region` label, so Fly's managed
 * Prometheus shows the per-region breakdown across machines. The escrow counters
 * and the in-flight gauge of the service's own region are exported at 0 from
 * start-up, so `rate()` and absence alerts see a series before the first escrow.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import { Context, Effect, Layer, Metric, MetricBoundaries, Runtime, Scope } from "effect"
import type { ServiceConfigShape } from "./ServiceConfig.js"
import type * as TelemetryExport from "./TelemetryExport.js"

// ---------------------------------------------------------------------------
// The metrics (Prometheus appends `_total` to counters)

export const escrowsCreated = Metric.counter("ringmaster_escrows_created", {
  description: "Escrows opened (payer locked funds), by the escrow's region, whichever path opened them",
  incremental: true
})
export const escrowsReleased = Metric.counter("ringmaster_escrows_released", {
  description: "Escrows released to the payee",
  incremental: true
})
export const escrowsCancelled = Metric.counter("ringmaster_escrows_cancelled", {
  description: "Escrows cancelled and refunded to the payer",
  incremental: true
})
export const escrowsExpired = Metric.counter("ringmaster_escrows_expired", {
  description: "Escrows refunded because their deadline passed (sweeper or recovery)",
  incremental: true
})
/** Not incremental: goes up on create, down on settle (an up-down counter, a Prometheus gauge). */
export const escrowsInFlight = Metric.counter("ringmaster_escrows_in_flight", {
  description: "Pending escrows: opened and not yet released, cancelled or expired"
})
export const settlementLatency = Metric.histogram(
  "ringmaster_settlement_latency_seconds",
  MetricBoundaries.exponential({ start: 0.0005, factor: 2, count: 16 }),
  "Time of one settlement call (create, release, cancel) against the ledger or the settlement service"
)
export const referralIncome = Metric.gauge("ringmaster_referral_income_micro_usdc", {
  description: "Referral income earned by the orchestrator's wallet so far (micro-USDC)",
  bigint: true
})
export const subAgents = Metric.gauge("ringmaster_sub_agents", {
  description: "Sub-agents the orchestrator has spawned and not stopped"
})
export const paidRequests = Metric.counter("ringmaster_paid_requests", {
  description: "Paid requests (/inference, /tasks/*) by route and outcome",
  incremental: true
})
export const refusals = Metric.counter("ringmaster_refusals", {
  description: "Requests refused or failed (REST, MCP tools, paid routes), by wire error code (`unauthorized`, `forbidden`, ...)",
  incremental: true
})
export const recovered = Metric.counter("ringmaster_recovered_escrows", {
  description: "Escrows a previous process left open, settled by reconciliation",
  incremental: true
})

// ---------------------------------------------------------------------------
// Export

/** Loads the OpenTelemetry side (metrics exporter; tracing when configured). */
export class Exporter extends Context.Tag("ringmaster/service/TelemetryExporter")<Exporter, {
  /** Loads the exporter now, in the background, if no scrape has yet. */
  readonly startInBackground: Effect.Effect<void>
}>() {}

const loadExport = Effect.promise(() => import("./TelemetryExport.js"))

export { resourceOf } from "./TelemetryResource.js"

/**
 * `METRICS_PORT` with a `node:http` server of our own rather than the exporter's
 * (`preventServerStart`), so the port is bound before the exporter is loaded; once
 * loaded, the exporter answers (`getMetricsRequestHandler`). Other paths are 404, as
 * the exporter's own server answers them.
 */
const metricsServer = (
  config: ServiceConfigShape,
  exporter: Effect.Effect<TelemetryExport.MetricsHandler>
) =>
  Effect.gen(function*() {
    const runPromise = Runtime.runPromise(yield* Effect.runtime<never>())
    const handle = (request: IncomingMessage, response: ServerResponse) => {
      let pathname: string
      try {
        pathname = new URL(request.url ?? "/", "http://metrics").pathname
      } catch {
        response.statusCode = 400
        response.end("Bad Request")
        return
      }
      if (pathname !== config.metricsPath) {
        response.statusCode = 404
        response.end()
        return
      }
      runPromise(exporter).then(
        (handler) => handler(request, response),
        (error) => {
          response.statusCode = 503
          response.end(`# metrics exporter unavailable: ${String(error)}\n`)
        }
      )
    }
    return yield* Effect.acquireRelease(
      Effect.async<ReturnType<typeof createServer>, Error>((resume) => {
        const server = createServer(handle)
        server.once("error", (cause) =>
          resume(Effect.fail(new Error(`metrics endpoint: cannot listen on ${config.host}:${config.metricsPort} (METRICS_PORT): ${String(cause)}`))))
        server.listen({ port: config.metricsPort, host: config.host }, () => resume(Effect.succeed(server)))
      }),
      (server) =>
        Effect.async<void>((resume) => {
          server.close(() => resume(Effect.void))
        })
    )
  })

/**
 * Metrics on `METRICS_PORT`, and traces to OTLP when configured. The OTLP exporter
 * reads the standard `OTEL_EXPORTER_OTLP_*` variables itself (endpoint, headers).
 */
export const layer = (config: ServiceConfigShape): Layer.Layer<Exporter, Error> =>
  Layer.unwrapScoped(
    Effect.gen(function*() {
      const scope: Scope.Scope = yield* Effect.scope
      // Built in this layer's scope, so it shuts down after everything the service composes on top.
      const metrics = yield* Effect.cached(
        Effect.flatMap(loadExport, (module) => module.metrics(config)).pipe(
          Effect.provideService(Scope.Scope, scope),
          Effect.tapErrorCause((cause) => Effect.logError("metrics exporter failed to start", cause))
        )
      )
      yield* metricsServer(config, metrics)
      const exporter = Layer.succeed(Exporter, { startInBackground: Effect.asVoid(Effect.forkIn(Effect.ignore(metrics), scope)) })
      if (config.otlpEndpoint === undefined) return exporter
      const tracing = Effect.promise(() => import("./TelemetryTracing.js"))
      return Layer.merge(exporter, Layer.unwrapEffect(Effect.map(tracing, (module) => module.layer(config))))
    })
  )
