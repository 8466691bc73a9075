/**
 * `coherent-cache/otel`: the caches' metrics through the OpenTelemetry metrics API. Every catalog entry
 * (catalog.ts) is an observable instrument, and one batch callback reads each cache's stats() when the
 * SDK collects: nothing is recorded per cache operation. The invalidation lag is a gauge per quantile
 * (p50, p99, max): the API has no observable histogram.
 *
 * @opentelemetry/api is an optional peer dependency: only this entry point loads it.
 */
import { type Meter, type MeterProvider, metrics, type Observable } from '@opentelemetry/api'
import type { Cache } from '../cache.js'
import { VERSION } from '../version.js'
import { METRICS, pointsOf } from './catalog.js'

export interface OpenTelemetryMetricsOptions {
  /** The meter to create instruments on. @default meterProvider.getMeter('coherent-cache', version) */
  meter?: Meter
  /** @default the global meter provider */
  meterProvider?: MeterProvider
}

/**
 * Publishes the metrics of `caches` (a cache or several) through OpenTelemetry; returns a function that
 * stops observing them. Attributes: `coherent_cache.namespace`, and per metric one of tier, outcome,
 * operation, reason, kind, direction, target, state, quantile (each prefixed `coherent_cache.`).
 *
 * @example
 * openTelemetryMetrics(cache) // with an SDK MeterProvider registered globally
 */
export function openTelemetryMetrics(
  caches: Cache | readonly Cache[],
  options: OpenTelemetryMetricsOptions = {},
): () => void {
  const list = Array.isArray(caches) ? (caches as readonly Cache[]) : [caches as Cache]
  const meter = options.meter ?? (options.meterProvider ?? metrics).getMeter('coherent-cache', VERSION)
  const instruments = METRICS.map((definition) => {
    const settings = { description: definition.description, unit: definition.unit }
    const instrument: Observable =
      definition.kind === 'counter'
        ? meter.createObservableCounter(definition.name, settings)
        : meter.createObservableGauge(definition.name, settings)
    return { definition, instrument }
  })
  const callback = (observer: {
    observe(instrument: Observable, value: number, attributes?: Record<string, string>): void
  }) => {
    const stats = list.map((cache) => cache.stats())
    for (const { definition, instrument } of instruments) {
      for (const point of pointsOf(definition, stats)) {
        const attributes: Record<string, string> = {}
        for (const [name, value] of Object.entries(point.labels)) attributes[`coherent_cache.${name}`] = value
        observer.observe(instrument, point.value, attributes)
      }
    }
  }
  const observables = instruments.map(({ instrument }) => instrument)
  meter.addBatchObservableCallback(callback, observables)
  return () => meter.removeBatchObservableCallback(callback, observables)
}
