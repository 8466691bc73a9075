import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics'
import { Registry } from 'prom-client'
import { afterEach, describe, expect, it } from 'vitest'
import { encodeMessage } from '../src/bus/wire.js'
import { openTelemetryMetrics } from '../src/otel.js'
import { prometheusCollector } from '../src/prometheus.js'
import { memoryFleet, settle } from './support/nodes.js'

let fleet: ReturnType<typeof memoryFleet> | undefined
afterEach(async () => {
  await fleet?.close()
  fleet = undefined
})

/** Two nodes, some traffic: hits, misses, writes, a load, and an invalidation 7 ms late. */
async function traffic() {
  fleet = memoryFleet(2)
  await fleet.ready()
  const [a, b] = fleet.nodes
  await a!.set('user:1', { name: 'Ada' })
  await a!.get('user:1') // L1 hit
  await a!.get('nobody') // miss
  await a!.getOrSet('loaded', async () => 'v')
  await a!.delete('user:1')
  await a!.invalidateTags(['t'])
  const origin = Buffer.alloc(8, 9)
  const version = (fleet.clock.now() - 7) * 4096
  await fleet.bus.publish(
    'coherent:fleet',
    encodeMessage({ kind: 1, origin, names: ['x'], numbers: [version] }),
  )
  await settle()
  return { a: a!, b: b! }
}

describe('Prometheus collector', () => {
  it('a scrape reads stats() of every cache: counters, gauges and the lag histogram, labelled by namespace only', async () => {
    const { a, b } = await traffic()
    const registry = new Registry()
    const remove = prometheusCollector([a, b], { registry })
    const text = await registry.metrics()
    expect(text).toContain('# TYPE coherent_cache_requests_total counter')
    expect(text).toContain('coherent_cache_requests_total{namespace="fleet",tier="l1",outcome="hit"} 1')
    expect(text).toMatch(/coherent_cache_writes_total\{namespace="fleet",operation="set"\} 1\n/)
    expect(text).toMatch(/coherent_cache_writes_total\{namespace="fleet",operation="delete"\} 1\n/)
    expect(text).toContain('coherent_cache_l1_size_bytes{namespace="fleet"}')
    // Two caches of one namespace in this process: summed (both closed).
    expect(text).toContain('coherent_cache_circuit_state{namespace="fleet",target="l2",state="closed"} 2')
    expect(text).toContain('# TYPE coherent_cache_invalidation_lag_seconds histogram')
    const bucket = (le: string) => {
      const line = text
        .split('\n')
        .find((l) =>
          l.startsWith(`coherent_cache_invalidation_lag_seconds_bucket{namespace="fleet",le="${le}"}`),
        )
      return Number(line?.split(' ').at(-1))
    }
    // Both nodes heard the message 7 ms late; B also heard A's own writes at once (lag 0).
    expect(bucket('0.01') - bucket('0.005')).toBe(2)
    expect(bucket('+Inf')).toBe(a.stats().bus.lag.count + b.stats().bus.lag.count)
    // Bounded cardinality: no key, tag or node id appears anywhere.
    for (const secret of ['user:1', 'nobody', 'loaded', '"t"', 'x"']) expect(text).not.toContain(secret)
    // Read when scraped, not pushed: new traffic shows up in the next scrape.
    const l1Misses = (scrape: string) =>
      Number(
        /coherent_cache_requests_total\{namespace="fleet",tier="l1",outcome="miss"\} (\d+)/.exec(scrape)?.[1],
      )
    const before = l1Misses(text)
    await a.get('again')
    expect(l1Misses(await registry.metrics())).toBe(before + 1)
    remove()
    expect((await registry.metrics()).trim()).toBe('')
  })
})

describe('OpenTelemetry metrics', () => {
  it('an in-memory reader collects the observable instruments with bounded attributes', async () => {
    const { a } = await traffic()
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 })
    const provider = new MeterProvider({ readers: [reader] })
    const stop = openTelemetryMetrics(a, { meterProvider: provider })
    try {
      await reader.forceFlush()
      const all = exporter.getMetrics().flatMap((r) => r.scopeMetrics.flatMap((s) => s.metrics))
      const byName = new Map(all.map((m) => [m.descriptor.name, m]))
      expect(byName.get('coherent_cache.requests')?.descriptor.unit).toBe('{request}')
      const requests = byName.get('coherent_cache.requests')!.dataPoints
      expect(requests).toContainEqual(
        expect.objectContaining({
          attributes: {
            'coherent_cache.namespace': 'fleet',
            'coherent_cache.tier': 'l1',
            'coherent_cache.outcome': 'hit',
          },
          value: 1,
        }),
      )
      const lag = byName.get('coherent_cache.invalidation.lag')!
      expect(lag.descriptor.unit).toBe('s')
      expect(lag.dataPoints).toContainEqual(
        expect.objectContaining({
          attributes: expect.objectContaining({ 'coherent_cache.quantile': '1' }),
          value: 0.007,
        }),
      )
      for (const metric of all) {
        for (const point of metric.dataPoints) {
          expect(Object.keys(point.attributes).length).toBeLessThanOrEqual(3)
          expect(point.attributes['coherent_cache.namespace']).toBe('fleet')
        }
      }
    } finally {
      stop()
      await provider.shutdown()
    }
  })
})
