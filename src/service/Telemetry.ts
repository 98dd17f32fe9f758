/**
 * What operators watch: Effect `Metric`s exported through OpenTelemetry as
 * Prometheus text on `:METRICS_PORT/metrics` (Fly scrapes it per `[metrics]` in
 * fly.toml), and traces to an OTLP collector when `OTEL_EXPORTER_OTLP_ENDPOINT`
 * is set.
 *
 * The metrics are defined here, once; the escrow decorator, the sweeper and the
 * pipeline update them. Every one carries the `region` label, so Fly's managed
 * Prometheus shows the per-region breakdown across machines.
 */
import { NodeSdk, type Resource } from "@effect/opentelemetry"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus"
import { BatchSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Effect, Layer, Metric, MetricBoundaries } from "effect"
import type { ServiceConfigShape } from "./ServiceConfig.js"

// ---------------------------------------------------------------------------
// The metrics (Prometheus appends `_total` to counters)

export const escrowsCreated = Metric.counter("ringmaster_escrows_created", {
  description: "Escrows this service opened (payer locked funds)",
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
  description: "Escrows opened by this process and not yet settled"
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
export const recovered = Metric.counter("ringmaster_recovered_escrows", {
  description: "Escrows a previous process left open, settled by reconciliation",
  incremental: true
})

// ---------------------------------------------------------------------------
// Export

/**
 * The Prometheus endpoint: the exporter's own `node:http` server, started here so a
 * port that cannot be bound stops start-up instead of being logged and ignored.
 */
const prometheusReader = (config: ServiceConfigShape) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const exporter = new PrometheusExporter({
          port: config.metricsPort,
          host: config.host,
          endpoint: config.metricsPath,
          preventServerStart: true
        })
        await exporter.startServer()
        return exporter
      },
      catch: (cause) => new Error(`metrics endpoint: cannot listen on ${config.host}:${config.metricsPort} (METRICS_PORT): ${String(cause)}`)
    }),
    (exporter) => Effect.promise(() => exporter.stopServer())
  )

/**
 * Metrics on `METRICS_PORT`, and traces to OTLP when configured. The OTLP exporter
 * reads the standard `OTEL_EXPORTER_OTLP_*` variables itself (endpoint, headers).
 */
export const layer = (config: ServiceConfigShape): Layer.Layer<Resource.Resource, Error> =>
  Layer.unwrapScoped(
    Effect.map(prometheusReader(config), (reader) =>
      NodeSdk.layer(() => ({
        resource: {
          serviceName: config.serviceName,
          attributes: { "cloud.region": config.region, ...(config.flyAppName ? { "fly.app": config.flyAppName } : {}) }
        },
        metricReader: reader,
        ...(config.otlpEndpoint === undefined ? {} : { spanProcessor: new BatchSpanProcessor(new OTLPTraceExporter()) })
      })))
  )
