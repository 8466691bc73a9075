/**
 * L1 hit throughput: `get` of a warm key set (Zipf 0.99 over 100k keys, 1M calls, one caller), side by side
 * with lru-cache (plain and awaited), BentoCache (memory only) and cache-manager (memory); and the same hits
 * through each library's cache-aside call (getOrSet, BentoCache getOrSet, cache-manager wrap). Each contender
 * builds and fills its own cache before each of its rounds and drops it after, so every timed run has
 * only its own entries in memory (and, under --expose-gc, starts on a collected heap).
 * Run: npm run bench:l1
 * With --scale (npm run bench:l1:scale) it prints the scale rows instead: ns per hit from 10k to 10M entries
 * (bench/support/l1-scale.ts).
 */
import diagnosticsChannel from 'node:diagnostics_channel'
import { BentoCache, bentostore } from 'bentocache'
import { memoryDriver } from 'bentocache/drivers/memory'
import { createCache as createCacheManager } from 'cache-manager'
import { LRUCache } from 'lru-cache'
import { createCache } from '../src/index.js'
import { LocalTier } from '../src/local/local-tier.js'
import { mulberry32 } from '../tools/random.js'
import { zipfGenerator } from '../tools/zipf.js'
import { type Contender, compare, formatOps, machineLine, markdownTable, ratio } from './support/harness.js'
import { printScaleTable } from './support/l1-scale.js'
import { writeResults } from './support/results.js'

if (process.argv.includes('--scale')) {
  printScaleTable()
  process.exit(0)
}

const KEYS = 100_000
const CALLS = 1_000_000
const SEED = 42
const SKEW = 0.99

const keys = Array.from({ length: KEYS }, (_, i) => `user:${i}`)
const value = (i: number) => ({ id: i, name: `user ${i}`, active: true })
const next = zipfGenerator(KEYS, SKEW, mulberry32(SEED))
const trace = Array.from({ length: CALLS }, () => keys[next()]!)

// Each contender builds its cache before its round and drops it after (untimed), so no run has another
// contender's 100k entries in memory; the harness collects garbage before every timed run.
const TAG_EVERY = 10_000 // the tags row: another tag is invalidated every TAG_EVERY gets
type CoherentCache = ReturnType<typeof createCache>
const coherentOptions = {
  tinylfu: { namespace: 'bench', ttl: '1h', l1: { maxEntries: KEYS } },
  lru: { namespace: 'bench', ttl: '1h', l1: { maxEntries: KEYS, policy: 'lru' } },
  freeze: { namespace: 'bench', ttl: '1h', l1: { maxEntries: KEYS, isolation: 'freeze' } },
} as const

async function fillCoherent(options: Parameters<typeof createCache>[0]): Promise<CoherentCache> {
  const cache = createCache(options)
  for (let i = 0; i < KEYS; i++) await cache.set(keys[i]!, value(i))
  return cache
}

function fillLru(options: { ttl?: number } = {}): LRUCache<string, object> {
  const cache = new LRUCache<string, object>({ max: KEYS, ...options })
  for (let i = 0; i < KEYS; i++) cache.set(keys[i]!, value(i))
  return cache
}

let lru: LRUCache<string, object> | undefined
let tier: LocalTier<object> | undefined
let coherent: CoherentCache | undefined
let bento: BentoCache<{ memory: ReturnType<typeof bentostore> }> | undefined
let manager: ReturnType<typeof createCacheManager> | undefined

let sink = 0
/** The loader of the cache-aside rows: every key is cached, so it must never run. */
const neverLoads = async (): Promise<object> => {
  throw new Error('a cache-aside row loaded: the key was not cached')
}
const countEvent = () => {
  sink++
}
const results = await compare([
  {
    name: 'lru-cache get',
    prepare() {
      lru = fillLru()
    },
    run() {
      const cache = lru!
      for (let i = 0; i < CALLS; i++) if (cache.get(trace[i]!) !== undefined) sink++
      return CALLS
    },
    release() {
      lru = undefined
    },
  },
  {
    name: 'lru-cache get (awaited)',
    prepare() {
      lru = fillLru()
    },
    async run() {
      const cache = lru!
      for (let i = 0; i < CALLS; i++) if ((await cache.get(trace[i]!)) !== undefined) sink++
      return CALLS
    },
    release() {
      lru = undefined
    },
  },
  {
    // The same TTL as the coherent-cache contenders (whose entries always expire), for reference.
    name: 'lru-cache get (ttl 1h, awaited)',
    prepare() {
      lru = fillLru({ ttl: 3_600_000 })
    },
    async run() {
      const cache = lru!
      for (let i = 0; i < CALLS; i++) if ((await cache.get(trace[i]!)) !== undefined) sink++
      return CALLS
    },
    release() {
      lru = undefined
    },
  },
  {
    name: 'coherent-cache L1 tier get (bare)',
    prepare() {
      tier = new LocalTier<object>({ maxEntries: KEYS, policy: 'tinylfu', sweepIntervalMs: 0 })
      for (let i = 0; i < KEYS; i++) tier.set(keys[i]!, value(i), Number.POSITIVE_INFINITY, 1)
    },
    run() {
      const local = tier!
      for (let i = 0; i < CALLS; i++) if (local.get(trace[i]!) !== undefined) sink++
      return CALLS
    },
    release() {
      tier = undefined
    },
  },
  coherentContender('coherent-cache get (tinylfu)', coherentOptions.tinylfu),
  coherentContender("coherent-cache get (tinylfu, isolation 'freeze')", coherentOptions.freeze),
  coherentContender('coherent-cache get (lru)', coherentOptions.lru),
  {
    // The same as the tinylfu row, with a subscriber on the hit channel: every hit builds and publishes an
    // event. The tinylfu row (nobody subscribed) is what events cost when unused.
    ...coherentContender(
      'coherent-cache get (tinylfu, a diagnostics_channel subscriber on coherent-cache:hit)',
      coherentOptions.tinylfu,
    ),
    async prepare() {
      diagnosticsChannel.subscribe('coherent-cache:hit', countEvent)
      coherent = await fillCoherent(coherentOptions.tinylfu)
    },
    async release() {
      diagnosticsChannel.unsubscribe('coherent-cache:hit', countEvent)
      await coherent?.close()
      coherent = undefined
    },
  },
  {
    name: `coherent-cache get (tinylfu, a tag invalidated every ${TAG_EVERY.toLocaleString()} gets)`,
    async prepare() {
      coherent = await fillCoherent(coherentOptions.tinylfu)
    },
    async run() {
      const cache = coherent!
      for (let i = 0; i < CALLS; i++) {
        if (i % TAG_EVERY === 0) await cache.invalidateTags([`unrelated:${i}`])
        if ((await cache.get(trace[i]!)) !== undefined) sink++
      }
      return CALLS
    },
    async release() {
      await coherent?.close()
      coherent = undefined
    },
  },
  bentoContender('BentoCache get (memory)', async (cache, key) => cache.get({ key })),
  managerContender('cache-manager get (memory)', (cache, key) => cache.get(key)),
  // Cache-aside hits: the same trace through each library's get-or-load call (the loader never runs).
  {
    ...coherentContender('coherent-cache getOrSet (tinylfu)', coherentOptions.tinylfu),
    async run() {
      const cache = coherent!
      for (let i = 0; i < CALLS; i++) if ((await cache.getOrSet(trace[i]!, neverLoads)) !== undefined) sink++
      return CALLS
    },
  },
  bentoContender('BentoCache getOrSet (memory)', (cache, key) =>
    cache.getOrSet({ key, factory: neverLoads, ttl: '1h' }),
  ),
  managerContender('cache-manager wrap (memory)', (cache, key) => cache.wrap(key, neverLoads, 3_600_000)),
])

/**
 * A BentoCache (memory only) contender: `read` one key per call over a tenth of the trace (an order of
 * magnitude slower than the others: a tenth keeps the run short), on a cache filled before each round.
 */
function bentoContender(
  name: string,
  read: (cache: NonNullable<typeof bento>, key: string) => Promise<unknown>,
): Contender {
  return {
    name,
    async prepare() {
      bento = new BentoCache({
        default: 'memory',
        stores: { memory: bentostore().useL1Layer(memoryDriver({ maxItems: KEYS * 2 })) },
      })
      for (let i = 0; i < KEYS; i++) await bento.set({ key: keys[i]!, value: value(i), ttl: '1h' })
    },
    async run() {
      const cache = bento!
      const n = CALLS / 10
      for (let i = 0; i < n; i++) if ((await read(cache, trace[i]!)) !== undefined) sink++
      return n
    },
    async release() {
      await bento?.disconnect()
      bento = undefined
    },
  }
}

/** A cache-manager (memory) contender, like bentoContender. */
function managerContender(
  name: string,
  read: (cache: NonNullable<typeof manager>, key: string) => Promise<unknown>,
): Contender {
  return {
    name,
    async prepare() {
      manager = createCacheManager()
      for (let i = 0; i < KEYS; i++) await manager.set(keys[i]!, value(i), 3_600_000)
    },
    async run() {
      const cache = manager!
      const n = CALLS / 10
      for (let i = 0; i < n; i++) if ((await read(cache, trace[i]!)) !== undefined) sink++
      return n
    },
    async release() {
      await manager?.disconnect()
      manager = undefined
    },
  }
}

/** A coherent-cache `await get` contender over a cache built with `options` for each round. */
function coherentContender(name: string, options: Parameters<typeof createCache>[0]): Contender {
  return {
    name,
    async prepare() {
      coherent = await fillCoherent(options)
    },
    async run() {
      const cache = coherent!
      for (let i = 0; i < CALLS; i++) if ((await cache.get(trace[i]!)) !== undefined) sink++
      return CALLS
    },
    async release() {
      await coherent?.close()
      coherent = undefined
    },
  }
}

const byName = new Map(results.map((r) => [r.name, r.opsPerSec]))
const lruPlain = byName.get('lru-cache get')!
const lruAwaited = byName.get('lru-cache get (awaited)')!
const bentoOps = byName.get('BentoCache get (memory)')!
console.log(`## L1 hit throughput\n`)
console.log(
  `Zipf ${SKEW} over ${KEYS.toLocaleString()} keys, ${CALLS.toLocaleString()} gets per round, one caller, values are small objects (\`{ id, name, active }\`); coherent-cache copies them on every read unless \`l1.isolation: 'freeze'\`. ${machineLine()}. Median of 5 rounds; each contender builds its own cache before its round, and runs on a collected heap.\n`,
)
console.log(
  markdownTable(
    ['contender', 'gets/s', 'vs lru-cache get', 'vs lru-cache awaited', 'vs BentoCache'],
    results.map((r) => [
      r.name,
      formatOps(r.opsPerSec),
      ratio(r.opsPerSec, lruPlain),
      ratio(r.opsPerSec, lruAwaited),
      ratio(r.opsPerSec, bentoOps),
    ]),
  ),
)
console.log(`\n(checksum ${sink % 7})`)
console.log(`\nResults: ${writeResults('l1', 'lru-cache get (awaited)', results)}`)
