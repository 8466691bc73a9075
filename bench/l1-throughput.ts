/**
 * L1 hit throughput: `get` of a warm key set (Zipf 0.99 over 100k keys, 1M calls, one caller), side by side
 * with lru-cache (plain and awaited), BentoCache (memory only) and cache-manager (memory).
 * Run: npm run bench:l1
 */
import { BentoCache, bentostore } from 'bentocache'
import { memoryDriver } from 'bentocache/drivers/memory'
import { createCache as createCacheManager } from 'cache-manager'
import { LRUCache } from 'lru-cache'
import { createCache } from '../src/index.js'
import { LocalTier } from '../src/local/local-tier.js'
import { compare, formatOps, machineLine, markdownTable, ratio } from './support/harness.js'
import { mulberry32 } from './support/random.js'
import { zipfGenerator } from './support/zipf.js'

const KEYS = 100_000
const CALLS = 1_000_000
const SEED = 42
const SKEW = 0.99

const keys = Array.from({ length: KEYS }, (_, i) => `user:${i}`)
const value = (i: number) => ({ id: i, name: `user ${i}`, active: true })
const next = zipfGenerator(KEYS, SKEW, mulberry32(SEED))
const trace = Array.from({ length: CALLS }, () => keys[next()]!)

const lru = new LRUCache<string, object>({ max: KEYS })
// The same TTL as the coherent-cache contenders (whose entries always expire), for reference.
const lruTtl = new LRUCache<string, object>({ max: KEYS, ttl: 3_600_000 })
const tier = new LocalTier<object>({ maxEntries: KEYS, policy: 'tinylfu', sweepIntervalMs: 0 })
const coherent = createCache({ namespace: 'bench', ttl: '1h', l1: { maxEntries: KEYS } })
const coherentLru = createCache({ namespace: 'bench', ttl: '1h', l1: { maxEntries: KEYS, policy: 'lru' } })
const coherentFrozen = createCache({
  namespace: 'bench',
  ttl: '1h',
  l1: { maxEntries: KEYS, isolation: 'freeze' },
})
// Tags in use: another tag is invalidated every TAG_EVERY gets, so stamps keep rising during the run.
const TAG_EVERY = 10_000
const coherentTags = createCache({ namespace: 'bench', ttl: '1h', l1: { maxEntries: KEYS } })
const bento = new BentoCache({
  default: 'memory',
  stores: { memory: bentostore().useL1Layer(memoryDriver({ maxItems: KEYS * 2 })) },
})
const manager = createCacheManager()

for (let i = 0; i < KEYS; i++) {
  const key = keys[i]!
  lru.set(key, value(i))
  lruTtl.set(key, value(i))
  tier.set(key, value(i), Number.POSITIVE_INFINITY, 1)
  await coherent.set(key, value(i))
  await coherentLru.set(key, value(i))
  await coherentFrozen.set(key, value(i))
  await coherentTags.set(key, value(i))
  await bento.set({ key, value: value(i), ttl: '1h' })
  await manager.set(key, value(i), 3_600_000)
}

let sink = 0
const results = await compare([
  {
    name: 'lru-cache get',
    run() {
      for (let i = 0; i < CALLS; i++) if (lru.get(trace[i]!) !== undefined) sink++
      return CALLS
    },
  },
  {
    name: 'lru-cache get (awaited)',
    async run() {
      for (let i = 0; i < CALLS; i++) if ((await lru.get(trace[i]!)) !== undefined) sink++
      return CALLS
    },
  },
  {
    name: 'lru-cache get (ttl 1h, awaited)',
    async run() {
      for (let i = 0; i < CALLS; i++) if ((await lruTtl.get(trace[i]!)) !== undefined) sink++
      return CALLS
    },
  },
  {
    name: 'coherent-cache L1 tier get (bare)',
    run() {
      for (let i = 0; i < CALLS; i++) if (tier.get(trace[i]!) !== undefined) sink++
      return CALLS
    },
  },
  {
    name: 'coherent-cache get (tinylfu)',
    async run() {
      for (let i = 0; i < CALLS; i++) if ((await coherent.get(trace[i]!)) !== undefined) sink++
      return CALLS
    },
  },
  {
    name: "coherent-cache get (tinylfu, isolation 'freeze')",
    async run() {
      for (let i = 0; i < CALLS; i++) if ((await coherentFrozen.get(trace[i]!)) !== undefined) sink++
      return CALLS
    },
  },
  {
    name: 'coherent-cache get (lru)',
    async run() {
      for (let i = 0; i < CALLS; i++) if ((await coherentLru.get(trace[i]!)) !== undefined) sink++
      return CALLS
    },
  },
  {
    name: `coherent-cache get (tinylfu, a tag invalidated every ${TAG_EVERY.toLocaleString()} gets)`,
    async run() {
      for (let i = 0; i < CALLS; i++) {
        if (i % TAG_EVERY === 0) await coherentTags.invalidateTags([`unrelated:${i}`])
        if ((await coherentTags.get(trace[i]!)) !== undefined) sink++
      }
      return CALLS
    },
  },
  {
    name: 'BentoCache get (memory)',
    async run() {
      const n = CALLS / 10 // an order of magnitude slower: a tenth of the trace keeps the run short
      for (let i = 0; i < n; i++) if ((await bento.get({ key: trace[i]! })) !== undefined) sink++
      return n
    },
  },
  {
    name: 'cache-manager get (memory)',
    async run() {
      const n = CALLS / 10
      for (let i = 0; i < n; i++) if ((await manager.get(trace[i]!)) !== undefined) sink++
      return n
    },
  },
])

const byName = new Map(results.map((r) => [r.name, r.opsPerSec]))
const lruPlain = byName.get('lru-cache get')!
const lruAwaited = byName.get('lru-cache get (awaited)')!
const bentoOps = byName.get('BentoCache get (memory)')!
console.log(`## L1 hit throughput\n`)
console.log(
  `Zipf ${SKEW} over ${KEYS.toLocaleString()} keys, ${CALLS.toLocaleString()} gets per round, one caller, values are small objects (\`{ id, name, active }\`); coherent-cache copies them on every read unless \`l1.isolation: 'freeze'\`. ${machineLine()}. Median of 5 rounds.\n`,
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
await coherent.close()
await coherentLru.close()
await coherentFrozen.close()
await coherentTags.close()
await bento.disconnect()
await manager.disconnect()
