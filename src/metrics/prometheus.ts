/**
 * `coherent-cache/prometheus`: a prom-client collector for one or more caches. It registers one metric
 * object per catalog entry (catalog.ts) in the registry, and reads every cache's stats() when the
 * registry is scraped: nothing happens per cache operation. The invalidation lag is a Prometheus
 * histogram (`coherent_cache_invalidation_lag_seconds`) built from the caches' own buckets.
 *
 * prom-client is an optional peer dependency: only this entry point loads it.
 */
import client, { type Registry } from 'prom-client'
import type { Cache } from '../cache.js'
import type { CacheStats } from '../stats/stats.js'
import {
  LAG_BUCKETS_S,
  LAG_METRIC,
  type Labels,
  METRICS,
  type MetricDefinition,
  pointsOf,
} from './catalog.js'

export interface PrometheusCollectorOptions {
  /** @default prom-client's global registry */
  registry?: Registry
  /** Replaces the `coherent_cache` prefix of every metric name. */
  prefix?: string
}

interface Sample {
  labels: Labels
  value: number
  metricName?: string
}

/** A prom-client metric object (what Registry.registerMetric takes) whose values are computed on get(). */
interface CollectedMetric {
  name: string
  help: string
  type: 'counter' | 'gauge' | 'histogram'
  aggregator: 'sum'
  get(): Promise<{ name: string; help: string; type: string; aggregator: 'sum'; values: Sample[] }>
  reset(): void
}

/**
 * Registers the metrics of `caches` (a cache or several) in a prom-client registry and returns a
 * function that removes them again. Caches of one process that share a namespace are summed.
 *
 * @example
 * import { register } from 'prom-client'
 * prometheusCollector(cache) // then serve register.metrics() on /metrics
 */
export function prometheusCollector(
  caches: Cache | readonly Cache[],
  options: PrometheusCollectorOptions = {},
): () => void {
  const registry = options.registry ?? client.register
  const list = Array.isArray(caches) ? (caches as readonly Cache[]) : [caches as Cache]
  const prefix = options.prefix ?? 'coherent_cache'
  const snapshots = () => list.map((cache) => cache.stats())
  // The lag is a histogram here (its quantile gauges are for OpenTelemetry, which has no observable histogram).
  const metrics: CollectedMetric[] = METRICS.filter((definition) => definition.name !== LAG_METRIC).map(
    (definition) => metricOf(definition, snapshots, prefix),
  )
  metrics.push(lagHistogram(snapshots, prefix))
  for (const metric of metrics) registry.registerMetric(metric as never)
  return () => {
    for (const metric of metrics) registry.removeSingleMetric(metric.name)
  }
}

/** 'coherent_cache.l1.size' in 'By' → 'coherent_cache_l1_size_bytes'; counters end in '_total'. */
export function prometheusName(
  definition: Pick<MetricDefinition, 'name' | 'unit' | 'kind'>,
  prefix: string,
): string {
  const base = definition.name.replace(/^coherent_cache/, prefix).replaceAll('.', '_')
  const unit = definition.unit === 'By' ? '_bytes' : definition.unit === 's' ? '_seconds' : ''
  return `${base}${unit}${definition.kind === 'counter' ? '_total' : ''}`
}

function metricOf(
  definition: MetricDefinition,
  snapshots: () => CacheStats[],
  prefix: string,
): CollectedMetric {
  const name = prometheusName(definition, prefix)
  const { description: help, kind: type } = definition
  return {
    name,
    help,
    type,
    aggregator: 'sum',
    async get() {
      return { name, help, type, aggregator: 'sum', values: pointsOf(definition, snapshots()) }
    },
    reset() {},
  }
}

function lagHistogram(snapshots: () => CacheStats[], prefix: string): CollectedMetric {
  const name = `${prefix}_invalidation_lag_seconds`
  const help = "From a write on another node (its version's clock reading) to its invalidation arriving here"
  return {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    async get() {
      const byNamespace = new Map<string, { buckets: number[]; count: number; sum: number }>()
      for (const { namespace, bus } of snapshots()) {
        const total = byNamespace.get(namespace) ?? {
          buckets: bus.lag.buckets.map(() => 0),
          count: 0,
          sum: 0,
        }
        bus.lag.buckets.forEach((bucket, i) => {
          total.buckets[i]! += bucket.count
        })
        total.count += bus.lag.count
        total.sum += bus.lag.sum
        byNamespace.set(namespace, total)
      }
      const values: Sample[] = []
      for (const [namespace, { buckets, count, sum }] of byNamespace) {
        buckets.forEach((cumulative, i) => {
          const le = i < LAG_BUCKETS_S.length ? String(LAG_BUCKETS_S[i]) : '+Inf'
          values.push({ metricName: `${name}_bucket`, labels: { namespace, le }, value: cumulative })
        })
        values.push({ metricName: `${name}_sum`, labels: { namespace }, value: sum / 1000 })
        values.push({ metricName: `${name}_count`, labels: { namespace }, value: count })
      }
      return { name, help, type: 'histogram', aggregator: 'sum', values }
    },
    reset() {},
  }
}
