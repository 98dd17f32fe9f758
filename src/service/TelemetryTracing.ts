/**
 * Spans to the OTLP collector that the standard `OTEL_EXPORTER_OTLP_*` variables
 * name; loaded by Telemetry.ts only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
 */
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import type * as Resource from "@effect/opentelemetry/Resource"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import { BatchSpanProcessor } from "@opentelemetry/sdk-trace-base"
import type { Layer } from "effect"
import type { ServiceConfigShape } from "./ServiceConfig.js"
import { resourceOf } from "./TelemetryResource.js"

export const layer = (config: ServiceConfigShape): Layer.Layer<Resource.Resource> =>
  NodeSdk.layer(() => ({ resource: resourceOf(config), spanProcessor: new BatchSpanProcessor(new OTLPTraceExporter()) }))
