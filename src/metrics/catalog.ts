/**
 * The metrics every exporter publishes, defined once: a name, a description, a unit, an instrument kind,
 * and how to read its points from a stats() snapshot. The OpenTelemetry and Prometheus exporters
 * (otel.ts, prometheus.ts) both read this list when they are collected or scraped: nothing is recorded
 * or pushed per cache operation.
 *
 * Cardinality is bounded: every point is labelled by the cache's namespace and at most one small,
 * closed set (tier, outcome, operation, reason, direction, target, state, quantile). Keys, tags and
 * namespace paths below the root never appear.
 *
 * Names follow OpenTelemetry's guidelines (a library namespace, dotted, singular units in braces or UCUM;
 * durations in seconds); the Prometheus names are derived from them (dots to underscores, unit suffixes,
 * `_total` for counters).
 */
import { LAG_BUCKETS_MS } from '../stats/lag.js'
import type { CacheStats } from '../stats/stats.js'

export type Labels = Record<string, string>

export interface Point {
  labels: Labels
  value: number
}

export interface MetricDefinition {
  /** OpenTelemetry name, e.g. 'coherent_cache.requests'. */
  name: string
  description: string
  /** UCUM unit: '{request}', 'By', 's', '1'. */
  unit: string
  /** counter: monotonic; gauge: a current value. */
  kind: 'counter' | 'gauge'
  /** Its points for one cache (the namespace label is added by the exporter). */
  read: (stats: CacheStats) => Point[]
}

const point = (value: number, labels: Labels = {}): Point => ({ labels, value })
const CIRCUIT_STATES = ['closed', 'open', 'half-open'] as const

export const METRICS: readonly MetricDefinition[] = [
  {
    name: 'coherent_cache.requests',
    description: 'Reads answered or missed by a tier (degraded_hit: from L1 while L2 could not be asked)',
    unit: '{request}',
    kind: 'counter',
    read: ({ l1, l2 }) => [
      point(l1.hits, { tier: 'l1', outcome: 'hit' }),
      point(l1.misses, { tier: 'l1', outcome: 'miss' }),
      point(l1.degradedHits, { tier: 'l1', outcome: 'degraded_hit' }),
      point(l2.hits, { tier: 'l2', outcome: 'hit' }),
      point(l2.misses, { tier: 'l2', outcome: 'miss' }),
    ],
  },
  {
    name: 'coherent_cache.l1.entries',
    description: 'Entries held in L1',
    unit: '{entry}',
    kind: 'gauge',
    read: ({ l1 }) => [point(l1.size)],
  },
  {
    name: 'coherent_cache.l1.size',
    description: 'Bytes of encoded values held in L1',
    unit: 'By',
    kind: 'gauge',
    read: ({ l1 }) => [point(l1.bytes)],
  },
  {
    name: 'coherent_cache.l1.evictions',
    description: 'L1 entries removed to stay within bounds (size) or because they expired',
    unit: '{entry}',
    kind: 'counter',
    read: ({ l1 }) => [
      point(l1.evictions.size, { reason: 'size' }),
      point(l1.evictions.expired, { reason: 'expired' }),
    ],
  },
  {
    name: 'coherent_cache.writes',
    description: 'Writes made on this node',
    unit: '{operation}',
    kind: 'counter',
    read: ({ writes }) => [
      point(writes.sets, { operation: 'set' }),
      point(writes.deletes, { operation: 'delete' }),
      point(writes.tagInvalidations, { operation: 'invalidate_tag' }),
      point(writes.clears, { operation: 'clear' }),
    ],
  },
  {
    name: 'coherent_cache.loads',
    description: "Loader calls, by outcome; coalesced: callers that shared another caller's load",
    unit: '{load}',
    kind: 'counter',
    read: ({ loads }) => [
      point(loads.calls - loads.errors, { outcome: 'success' }),
      point(loads.errors, { outcome: 'error' }),
      point(loads.coalesced, { outcome: 'coalesced' }),
      point(loads.refreshes, { outcome: 'refresh' }),
    ],
  },
  {
    name: 'coherent_cache.leases',
    description: "lock: 'distributed': leases this node won, and waits for another node's load",
    unit: '{lease}',
    kind: 'counter',
    read: ({ loads }) => [
      point(loads.leasesAcquired, { outcome: 'acquired' }),
      point(loads.leaseWaits, { outcome: 'waited' }),
    ],
  },
  {
    name: 'coherent_cache.stale_served',
    description: 'Stale values served within grace (refreshing, fail-safe, or L2 unavailable)',
    unit: '{request}',
    kind: 'counter',
    read: (stats) => [point(stats.staleServed)],
  },
  {
    name: 'coherent_cache.stale_fills_refused',
    description: 'Fills of L1 refused because an invalidation overtook them',
    unit: '{fill}',
    kind: 'counter',
    read: (stats) => [point(stats.staleFillsRefused)],
  },
  {
    name: 'coherent_cache.l2.errors',
    description:
      'L2 calls that failed or timed out (error), and answers that could not be accepted (corrupt)',
    unit: '{call}',
    kind: 'counter',
    read: ({ l2 }) => [point(l2.errors, { kind: 'error' }), point(l2.corrupt, { kind: 'corrupt' })],
  },
  {
    name: 'coherent_cache.l2.shared_reads',
    description: "Reads that joined another caller's L2 read of the same key",
    unit: '{read}',
    kind: 'counter',
    read: ({ l2 }) => [point(l2.sharedReads)],
  },
  {
    name: 'coherent_cache.circuit.state',
    description: 'Circuit breaker state: 1 for the current state of each target',
    unit: '1',
    kind: 'gauge',
    read: ({ l2, bus }) =>
      (['l2', 'bus'] as const).flatMap((target) =>
        CIRCUIT_STATES.map((state) =>
          point((target === 'l2' ? l2.circuit : bus.circuit) === state ? 1 : 0, { target, state }),
        ),
      ),
  },
  {
    name: 'coherent_cache.circuit.opened',
    description: 'How many times the L2 circuit breaker opened',
    unit: '{event}',
    kind: 'counter',
    read: ({ l2 }) => [point(l2.circuitOpened, { target: 'l2' })],
  },
  {
    name: 'coherent_cache.bus.messages',
    description:
      'Bus messages by direction (dropped: corrupt; unknown: newer kinds; rejected: items with impossible numbers)',
    unit: '{message}',
    kind: 'counter',
    read: ({ bus }) => [
      point(bus.published, { direction: 'published' }),
      point(bus.publishErrors, { direction: 'publish_error' }),
      point(bus.received, { direction: 'received' }),
      point(bus.dropped, { direction: 'dropped' }),
      point(bus.unknown, { direction: 'unknown' }),
      point(bus.rejected, { direction: 'rejected' }),
    ],
  },
  {
    name: 'coherent_cache.bus.connected',
    description: 'Whether the bus subscription is live (1) or not (0)',
    unit: '1',
    kind: 'gauge',
    read: ({ bus }) => [point(bus.connected ? 1 : 0)],
  },
  {
    name: 'coherent_cache.bus.reconnects',
    description: 'Times the bus subscription came back (or was made)',
    unit: '{event}',
    kind: 'counter',
    read: ({ bus }) => [point(bus.reconnects)],
  },
  {
    name: 'coherent_cache.invalidation.lag',
    description:
      "From a write on another node (its version's clock reading) to its invalidation arriving here",
    unit: 's',
    kind: 'gauge',
    read: ({ bus }) => [
      point(bus.lag.p50 / 1000, { quantile: '0.5' }),
      point(bus.lag.p99 / 1000, { quantile: '0.99' }),
      point(bus.lag.max / 1000, { quantile: '1' }),
    ],
  },
  {
    name: 'coherent_cache.outage.pending',
    description: 'Writes and invalidations waiting for Redis (the outage queue)',
    unit: '{write}',
    kind: 'gauge',
    read: (stats) => [point(stats.pending)],
  },
  {
    name: 'coherent_cache.outage.recovered',
    description: 'Queued writes that went through on a retry (or were found superseded)',
    unit: '{write}',
    kind: 'counter',
    read: (stats) => [point(stats.recovered)],
  },
  {
    name: 'coherent_cache.outage.dropped',
    description: 'Queued writes replaced by one clear() past maxPendingWrites',
    unit: '{write}',
    kind: 'counter',
    read: (stats) => [point(stats.pendingDropped)],
  },
]

/**
 * The points of `definition` over several caches, each labelled with its namespace; caches of one process
 * that share a namespace (several nodes in one process) are summed, so that no label set repeats.
 */
export function pointsOf(definition: MetricDefinition, stats: readonly CacheStats[]): Point[] {
  const summed = new Map<string, Point>()
  for (const snapshot of stats) {
    for (const point of definition.read(snapshot)) {
      const labels = { namespace: snapshot.namespace, ...point.labels }
      const id = JSON.stringify(labels)
      const existing = summed.get(id)
      if (existing === undefined) summed.set(id, { labels, value: point.value })
      else existing.value += point.value
    }
  }
  return [...summed.values()]
}

/** The name of the invalidation lag (quantile gauges here; a histogram where the exporter can take one). */
export const LAG_METRIC = 'coherent_cache.invalidation.lag'

/** The invalidation-lag histogram's bucket bounds, in seconds (for exporters that take histograms). */
export const LAG_BUCKETS_S: readonly number[] = LAG_BUCKETS_MS.map((ms) => ms / 1000)
