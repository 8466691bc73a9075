/** `coherent-cache/otel`: metrics through OpenTelemetry (optional peer dependency @opentelemetry/api). */
export { type OpenTelemetryMetricsOptions, openTelemetryMetrics } from './metrics/otel.js'
