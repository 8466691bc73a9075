/**
 * Local tier `get` throughput per policy vs lru-cache's plain `get`: Zipf 0.99 over 100k keys,
 * 1M gets per round, every key warm (all hits). Median of 5 interleaved rounds.
 * Run: npx tsx bench/local-get.ts [policy...]   (default: all four policies)
 */
import { LRUCache } from 'lru-cache'
import { LocalTier } from '../src/local/local-tier.js'
import type { EvictionPolicy } from '../src/local/types.js'
import { type Contender, compare, formatOps, machineLine, markdownTable, ratio } from './support/harness.js'
import { mulberry32 } from './support/random.js'
import { zipfGenerator } from './support/zipf.js'

const KEYS = 100_000
const CALLS = 1_000_000
const SEED = 42
const SKEW = 0.99
const ALL: EvictionPolicy[] = ['tinylfu', 'lru', 'lfu', 'fifo']
const policies = process.argv.length > 2 ? (process.argv.slice(2) as EvictionPolicy[]) : ALL

const keys = Array.from({ length: KEYS }, (_, i) => `user:${i}`)
const value = (i: number) => ({ id: i, name: `user ${i}`, active: true })
const next = zipfGenerator(KEYS, SKEW, mulberry32(SEED))
const trace = Array.from({ length: CALLS }, () => keys[next()]!)

const lru = new LRUCache<string, object>({ max: KEYS })
for (let i = 0; i < KEYS; i++) lru.set(keys[i]!, value(i))
let sink = 0
const contenders: Contender[] = [
  {
    name: 'lru-cache get',
    run() {
      for (let i = 0; i < CALLS; i++) if (lru.get(trace[i]!) !== undefined) sink++
      return CALLS
    },
  },
]
for (const policy of policies) {
  const tier = new LocalTier<object>({ maxEntries: KEYS, policy, sweepIntervalMs: 0 })
  for (let i = 0; i < KEYS; i++) tier.set(keys[i]!, value(i), Number.POSITIVE_INFINITY)
  contenders.push({
    name: `LocalTier get (${policy})`,
    run() {
      for (let i = 0; i < CALLS; i++) if (tier.get(trace[i]!) !== undefined) sink++
      return CALLS
    },
  })
}

const results = await compare(contenders)
const base = results[0]!.opsPerSec
console.log(`Zipf ${SKEW} over ${KEYS} keys, ${CALLS} warm gets per round. ${machineLine()}.\n`)
console.log(
  markdownTable(
    ['contender', 'gets/s', 'vs lru-cache get'],
    results.map((r) => [r.name, formatOps(r.opsPerSec), ratio(r.opsPerSec, base)]),
  ),
)
console.log(`\n(checksum ${sink % 7})`)
