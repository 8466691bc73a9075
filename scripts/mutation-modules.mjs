/**
 * The modules that carry the cache's guarantees, as mutation testing sees them: for each, the source
 * files Stryker mutates and the test files that exercise them. Only fast in-memory test files are listed
 * (no Redis, no PostgreSQL), so one module's run takes minutes. Read by stryker.config.mjs,
 * vitest.mutation.config.ts and scripts/mutation.mjs.
 */
export const modules = {
  breaker: {
    what: 'circuit breaker and timeouts',
    mutate: ['src/remote/circuit-breaker.ts', 'src/timeouts.ts'],
    tests: [
      'test/circuit-breaker.test.ts',
      'test/unit/circuit-breaker.test.ts',
      'test/unit/remote-tier.test.ts',
      'test/unit/timeouts.test.ts',
    ],
  },
  lease: {
    what: 'single flight and the lease',
    mutate: ['src/stampede/single-flight.ts', 'src/stampede/lease.ts'],
    tests: [
      'test/unit/single-flight.test.ts',
      'test/unit/lease.test.ts',
      'test/cache-single-flight.test.ts',
      'test/cache-distributed-lock.test.ts',
    ],
  },
  bus: {
    what: 'the bus handler and its wire format',
    mutate: ['src/bus/invalidations.ts', 'src/bus/wire.ts'],
    tests: [
      'test/unit/wire.test.ts',
      'test/unit/invalidations.test.ts',
      'test/unit/outage-queue.test.ts',
      'test/cache-multinode.test.ts',
      'test/cache-metrics.test.ts',
    ],
  },
  coherence: {
    what: 'versions, fill tokens, stamps',
    mutate: ['src/coherence/coherence.ts', 'src/coherence/hlc.ts', 'src/coherence/stamps.ts'],
    tests: [
      'test/unit/coherence.test.ts',
      'test/unit/version.test.ts',
      'test/unit/stamps.test.ts',
      'test/cache-multinode.test.ts',
      'test/cache-read-your-writes.test.ts',
    ],
  },
  'outage-queue': {
    what: 'the outage queue',
    mutate: ['src/write/outage-queue.ts', 'src/write/unsent-writes.ts'],
    tests: [
      'test/unit/outage-queue.test.ts',
      'test/unit/unsent-writes.test.ts',
      'test/cache-multinode.test.ts',
    ],
  },
  policies: {
    what: 'the L1 policies',
    mutate: ['src/local/policies/*.ts', 'src/local/frequency-sketch.ts'],
    tests: [
      'test/local-fifo.test.ts',
      'test/local-lru.test.ts',
      'test/local-lfu.test.ts',
      'test/local-tinylfu.test.ts',
      'test/local-tinylfu-adaptive.test.ts',
      'test/local-sketch.test.ts',
      'test/unit/policies.test.ts',
    ],
  },
}

/** The module named by MUTATION_MODULE (set by scripts/mutation.mjs). */
export function selectedModule() {
  const name = process.env.MUTATION_MODULE
  const module = name ? modules[name] : undefined
  if (!module) {
    throw new Error(
      `MUTATION_MODULE must be one of ${Object.keys(modules).join(', ')}; run npm run test:mutation`,
    )
  }
  return { name, ...module }
}
