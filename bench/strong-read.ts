/**
 * What a strong read costs: `get(key, { consistency: 'strong' })` of keys held in L1 (confirmed by one
 * head round trip: GETRANGE 0 15 and the entry's stamps, pipelined), side by side with a plain `get` L1
 * hit (the anchor it gives up) and a plain L2 read (`l1: false`: what it saves, a GET of the whole
 * value and its decoding), and the raw round trips underneath (node-redis GETRANGE and GET). One Redis
 * started by the bench, 10k keys of 1 KiB JSON-like values, uniform reads, 64 concurrent callers.
 * Run: npm run bench:strong
 */
import { createClient } from 'redis'
import { createCache } from '../src/index.js'
import { redisBus, redisStore } from '../src/redis.js'
import { type RedisServer, startRedis } from '../tools/redis-server.js'
import {
  closedLoop,
  closedLoopContender,
  compare,
  formatMs,
  formatOps,
  machineLine,
  markdownTable,
  percentiles,
  ratio,
} from './support/harness.js'
import { CALLERS, CALLS, KEYS, records, strings, trace, VALUE_BYTES } from './support/l2-workload.js'
import { writeResults } from './support/results.js'

let server: RedisServer | undefined
const cleanups: (() => Promise<unknown>)[] = []
try {
  server = await startRedis()
  const { url } = server
  const raw = createClient({ url })
  cleanups.push(() => raw.close())
  await raw.connect()
  const withL1 = createCache({
    namespace: 'bench-strong',
    ttl: '1h',
    l1: { maxEntries: 2 * KEYS, ttl: '1h' },
    l2: redisStore({ url }),
    bus: redisBus({ url }),
  })
  const l2Only = createCache({
    namespace: 'bench-strong',
    ttl: '1h',
    l1: false,
    l2: redisStore({ url }),
    bus: redisBus({ url }),
  })
  cleanups.push(
    () => withL1.close(),
    () => l2Only.close(),
  )
  await Promise.all([withL1.ready(), l2Only.ready()])
  const key = (i: number) => `item:${i}`
  const rawKey = (i: number) => `raw:${i}`
  await closedLoop(CALLERS, KEYS, (i) => withL1.set(key(i), records[i]!))
  await closedLoop(CALLERS, KEYS, (i) => raw.set(rawKey(i), strings[i]!))
  // Warm L1 (the writes already put every key there; read once more to be sure).
  await closedLoop(CALLERS, KEYS, (i) => withL1.get(key(i)))

  const contender = (name: string, get: (k: number) => Promise<unknown>) =>
    closedLoopContender(name, { callers: CALLERS, calls: CALLS }, (i) => get(trace[i]!))
  const strong = contender("coherent-cache get, consistency: 'strong' (L1 confirmed)", (k) =>
    withL1.get(key(k), { consistency: 'strong' }),
  )
  const contenders = [
    contender('coherent-cache get, L1 hit', (k) => withL1.get(key(k))),
    strong,
    contender('coherent-cache get, L2 read (l1: false)', (k) => l2Only.get(key(k))),
    contender('raw node-redis GETRANGE 0 15 (the check alone)', (k) => raw.getRange(rawKey(k), 0, 15)),
    contender('raw node-redis GET (1 KiB)', (k) => raw.get(rawKey(k))),
  ]
  const results = await compare(contenders, { rounds: 5, warmup: 1 })
  const l2 = results.find((r) => r.name.includes('L2 read'))!
  const rows = results.map((result, i) => {
    const [p50, p99] = percentiles(contenders[i]!.latencies, [50, 99])
    return [
      result.name,
      formatOps(result.opsPerSec),
      ratio(result.opsPerSec, l2.opsPerSec),
      formatMs(p50!),
      formatMs(p99!),
    ]
  })
  const strongStats = withL1.stats().strong
  console.log(
    `Strong read cost: ${KEYS.toLocaleString()} keys of ${VALUE_BYTES} B, uniform, ${CALLERS} callers, ${CALLS.toLocaleString()} gets per round; ${machineLine()}\n`,
  )
  console.log(markdownTable(['contender', 'throughput', 'vs L2 read', 'p50', 'p99'], rows))
  console.log(
    `\nStrong reads confirmed from L1: ${strongStats.confirmed.toLocaleString()} of ${strongStats.reads.toLocaleString()}; misses: ${strong.misses}`,
  )
  writeResults('strong-read', l2.name, results)
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {})
  await server?.stop()
}
