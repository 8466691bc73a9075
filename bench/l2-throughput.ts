/**
 * L2 hit throughput and latency: `get` of a warm key set (10k keys, uniform, 1 KiB JSON-like values) from
 * one Redis started by the bench, L1 off everywhere, 64 concurrent callers (a closed loop), side by side
 * with the floor (raw node-redis GET of the same 1 KiB as a string), raw ioredis GET, BentoCache with only
 * a Redis L2, and cache-manager over Keyv + @keyv/redis. Same server, same keys, same values. The fair floor
 * for a cache that returns objects is the reference row, GET + JSON.parse: the target is ≥ 0.90× of it.
 * Run: npm run bench:l2
 */
import { createKeyv } from '@keyv/redis'
import { BentoCache, bentostore } from 'bentocache'
import { redisDriver } from 'bentocache/drivers/redis'
import { createCache as createCacheManager } from 'cache-manager'
import { Redis as IORedis } from 'ioredis'
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
  const { url, host, port } = server

  const nodeRedis = createClient({ url })
  cleanups.push(() => nodeRedis.close())
  await nodeRedis.connect()
  const ioredis = new IORedis({ host, port, lazyConnect: true })
  cleanups.push(() => ioredis.quit())
  await ioredis.connect()
  const coherent = createCache({
    namespace: 'bench',
    ttl: '1h',
    l1: false,
    l2: redisStore({ url }),
    bus: redisBus({ url }),
  })
  cleanups.push(() => coherent.close())
  await coherent.ready()
  const bento = new BentoCache({
    default: 'l2',
    stores: { l2: bentostore().useL2Layer(redisDriver({ connection: { host, port } })) },
  })
  cleanups.push(() => bento.disconnect())
  const keyv = createKeyv(url)
  const manager = createCacheManager({ stores: [keyv] })
  cleanups.push(() => manager.disconnect())

  // Fill: every contender reads its own copy of the same 10k values (each in its own format).
  const rawKey = (i: number) => `raw:${i}`
  const coherentKey = (i: number) => `item:${i}`
  const bentoKey = (i: number) => `bento:item:${i}`
  const managerKey = (i: number) => `cm:item:${i}`
  await closedLoop(CALLERS, KEYS, (i) => nodeRedis.set(rawKey(i), strings[i]!))
  await closedLoop(CALLERS, KEYS, (i) => coherent.set(coherentKey(i), records[i]!))
  await closedLoop(CALLERS, KEYS, (i) => bento.set({ key: bentoKey(i), value: records[i]!, ttl: '1h' }))
  await closedLoop(CALLERS, KEYS, (i) => manager.set(managerKey(i), records[i]!, 3_600_000))

  // Every contender reads the same trace of key indexes.
  const contender = (name: string, get: (k: number) => Promise<unknown>) =>
    closedLoopContender(name, { callers: CALLERS, calls: CALLS }, (i) => get(trace[i]!))
  const contenders = [
    contender('raw node-redis GET', (k) => nodeRedis.get(rawKey(k))),
    contender('raw ioredis GET', (k) => ioredis.get(rawKey(k))),
    contender('coherent-cache get (l1: false)', (k) => coherent.get(coherentKey(k))),
    contender('BentoCache get (L2 only)', (k) => bento.get({ key: bentoKey(k) })),
    contender('cache-manager get (Keyv + @keyv/redis)', (k) => manager.get(managerKey(k))),
    // Not a contender: what a get costs at least once the 1 KiB must become an object.
    contender('(reference) raw node-redis GET + JSON.parse', async (k) =>
      JSON.parse((await nodeRedis.get(rawKey(k)))!),
    ),
  ]
  const [floorContender, , coherentContender] = contenders
  const fairFloorContender = contenders[contenders.length - 1]!
  const results = await compare(contenders)
  for (const c of contenders) if (c.misses > 0) throw new Error(`${c.name}: ${c.misses} misses`)

  const byName = new Map(results.map((r) => [r.name, r.opsPerSec]))
  const floor = byName.get(floorContender!.name)!
  const fairFloor = byName.get(fairFloorContender.name)!
  const COHERENT = coherentContender!.name
  console.log(`## L2 hit throughput (L1 off)\n`)
  console.log(
    `Uniform over ${KEYS.toLocaleString()} warm keys, ${VALUE_BYTES} B JSON-like values, ${CALLERS} concurrent callers, ${CALLS.toLocaleString()} gets per round on one local redis-server ${(await nodeRedis.info('server')).match(/redis_version:(\S+)/)?.[1] ?? ''} (loopback). ${machineLine()}; Redis and Node share them. Throughput: median of 5 rounds; latency per call over all 5 rounds.\n`,
  )
  console.log(
    markdownTable(
      ['contender', 'gets/s', 'p50', 'p99', 'vs raw node-redis', 'vs GET + JSON.parse'],
      results.map((r, i) => {
        const [p50, p99] = percentiles(contenders[i]!.latencies, [50, 99])
        return [
          r.name,
          formatOps(r.opsPerSec),
          formatMs(p50!),
          formatMs(p99!),
          ratio(r.opsPerSec, floor),
          ratio(r.opsPerSec, fairFloor),
        ]
      }),
    ),
  )
  console.log(`\nResults: ${writeResults('l2', floorContender!.name, results)}`)
  // The fair floor for a cache that returns objects: GET, then JSON.parse of the same 1 KiB (issue 14).
  const share = byName.get(COHERENT)! / fairFloor
  console.log(
    `\ncoherent-cache reaches ${ratio(byName.get(COHERENT)!, fairFloor)} of raw GET + JSON.parse (target ≥ 0.90×: ${share >= 0.9 ? 'met' : 'NOT met'}) and ${ratio(byName.get(COHERENT)!, floor)} of raw node-redis GET.`,
  )
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {})
  await server?.stop()
}
