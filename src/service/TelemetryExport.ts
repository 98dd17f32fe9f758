/**
 * The OpenTelemetry side of Telemetry.ts, in a module of its own because it is
 * loaded on demand (see there): the Prometheus exporter reading Effect's metrics,
 * and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, tracing to OTLP.
 */
import * as Metrics from "@effect/opentelemetry/Metrics"
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import * as Resource from "@effect/opentelemetry/Resource"
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus"
import type { IncomingMessage, ServerResponse } from "node:http"
import { Effect, Layer, type Scope } from "effect"
import type { ServiceConfigShape } from "./ServiceConfig.js"

export type MetricsHandler = (request: IncomingMessage, response: ServerResponse) => void

/** What every exported metric and span says about this process (plus `OTEL_RESOURCE_ATTRIBUTES`). */
const resource = (config: ServiceConfigShape) =>
  Resource.layerFromEnv(Resource.configToAttributes({
    serviceName: config.serviceName,
    attributes: { "cloud.region": config.region, ...(config.flyAppName ? { "fly.app": config.flyAppName } : {}) }
  }))

/** The Prometheus exporter over Effect's metric registry, alive for the scope; its handler answers a scrape. */
export const metrics = (config: ServiceConfigShape): Effect.Effect<MetricsHandler, never, Scope.Scope> =>
  Effect.gen(function*() {
    // The endpoint's server is Telemetry.ts's: this exporter only renders the text.
    const exporter = new PrometheusExporter({ endpoint: config.metricsPath, preventServerStart: true })
    yield* Layer.buildWithScope(Metrics.layer(() => exporter).pipe(Layer.provide(resource(config))), yield* Effect.scope)
    return (request, response) => exporter.getMetricsRequestHandler(request, response)
  })

/** Spans to the OTLP collector that the standard `OTEL_EXPORTER_OTLP_*` variables name. */
export const layerTracing = (config: ServiceConfigShape): Layer.Layer<Resource.Resource> =>
  Layer.unwrapEffect(
    Effect.promise(async () => {
      const [{ OTLPTraceExporter }, { BatchSpanProcessor }] = await Promise.all([
        import("@opentelemetry/exporter-trace-otlp-http"),
        import("@opentelemetry/sdk-trace-base")
      ])
      return NodeSdk.layer(() => ({
        resource: {
          serviceName: config.serviceName,
          attributes: { "cloud.region": config.region, ...(config.flyAppName ? { "fly.app": config.flyAppName } : {}) }
        },
        spanProcessor: new BatchSpanProcessor(new OTLPTraceExporter())
      }))
    })
  )
