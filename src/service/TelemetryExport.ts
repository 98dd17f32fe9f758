/**
 * The metrics side of Telemetry.ts, in a module of its own because it is loaded on
 * demand (see there): the Prometheus exporter reading Effect's metrics.
 */
import * as Metrics from "@effect/opentelemetry/Metrics"
import * as Resource from "@effect/opentelemetry/Resource"
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus"
import type { IncomingMessage, ServerResponse } from "node:http"
import { Effect, Layer, type Scope } from "effect"
import type { ServiceConfigShape } from "./ServiceConfig.js"
import { resourceOf } from "./TelemetryResource.js"

export type MetricsHandler = (request: IncomingMessage, response: ServerResponse) => void

/** What every exported metric says about this process (plus `OTEL_RESOURCE_ATTRIBUTES`). */
const resource = (config: ServiceConfigShape) => Resource.layerFromEnv(Resource.configToAttributes(resourceOf(config)))

/** The Prometheus exporter over Effect's metric registry, alive for the scope; its handler answers a scrape. */
export const metrics = (config: ServiceConfigShape): Effect.Effect<MetricsHandler, never, Scope.Scope> =>
  Effect.gen(function*() {
    // The endpoint's server is Telemetry.ts's: this exporter only renders the text.
    const exporter = new PrometheusExporter({ endpoint: config.metricsPath, preventServerStart: true })
    yield* Layer.buildWithScope(Metrics.layer(() => exporter).pipe(Layer.provide(resource(config))), yield* Effect.scope)
    return (request, response) => exporter.getMetricsRequestHandler(request, response)
  })
