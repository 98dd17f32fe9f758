/**
 * What every exported metric and span says about this process, in a file of its
 * own so the lazily loaded exporters (TelemetryExport.ts, TelemetryTracing.ts) and
 * Telemetry.ts, which loads them, share it without importing each other.
 */
import type { ServiceConfigShape } from "./ServiceConfig.js"

/** What every exported metric and span says about this process (OpenTelemetry resource attributes). */
export const resourceOf = (config: ServiceConfigShape) => ({
  serviceName: config.serviceName,
  attributes: { "cloud.region": config.region, ...(config.flyAppName ? { "fly.app": config.flyAppName } : {}) }
})
