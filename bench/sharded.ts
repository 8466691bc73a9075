/**
 * L2 hit throughput of shardedStore: coherent-cache `get` with L1 off, 64 concurrent callers, 1 KiB
 * JSON-like values over 10k warm keys (the workload of bench:l2), with shardedStore over 1 and over 3
 * redis-servers, beside raw node-redis GETs to the same servers (over 3 servers: one client per server,
 * each key always to the same server) and, over 1 server, coherent-cache on a plain redisStore. All
 * servers run for the whole bench and the contenders' rounds interleave, so the ratios come from one run.
 * Run: npm run bench:sharded
 */
import { createClient } from 'redis'
import { createCache } from '../src/index.js'
import { redisBus, redisStore } from '../src/redis.js'
import { shardedStore } from '../src/stores/sharded-store.js'
import { startRedis } from '../tools/redis-server.js'
import {
  type Contender,
  closedLoop,
  closedLoopContender,
  compare,
  formatMs,
  formatOps,
  type LatencyContender,
  machineLine,
  markdownTable,
  percentiles,
  ratio,
} from './support/harness.js'
import { CALLERS, CALLS, KEYS, records, strings, trace, VALUE_BYTES } from './support/l2-workload.js'

const servers = await Promise.all([startRedis(), startRedis(), startRedis(), startRedis()])
const cleanups: (() => Promise<unknown>)[] = []
try {
  const [bus, ...data] = servers
  const setups: { label: string; urls: string[] }[] = [
    { label: '1 server', urls: [data[0]!.url] },
    { label: '3 servers', urls: data.map((s) => s.url) },
  ]
  const rows: { setup: string; contenders: LatencyContender[] }[] = []
  const options = { callers: CALLERS, calls: CALLS }
  for (const { label, urls } of setups) {
    const clients = await Promise.all(
      urls.map(async (url) => {
        const client = createClient({ url })
        await client.connect()
        cleanups.push(() => client.close())
        return client
      }),
    )
    const sharded = createCache({
      namespace: `bench-${urls.length}`,
      ttl: '1h',
      l1: false,
      l2: shardedStore(urls.map((url, i) => ({ name: `redis-${i}`, store: redisStore({ url }) }))),
      bus: redisBus({ url: bus.url }),
    })
    cleanups.push(() => sharded.close())
    await sharded.ready()
    await closedLoop(CALLERS, KEYS, (i) => clients[i % clients.length]!.set(`raw:${i}`, strings[i]!))
    await closedLoop(CALLERS, KEYS, (i) => sharded.set(`item:${i}`, records[i]!))
    const contenders = [
      closedLoopContender(`${label}: raw node-redis GET`, options, (i) => {
        const key = trace[i]!
        return clients[key % clients.length]!.get(`raw:${key}`)
      }),
      closedLoopContender(`${label}: coherent-cache get, shardedStore`, options, (i) =>
        sharded.get(`item:${trace[i]!}`),
      ),
    ]
    if (urls.length === 1) {
      const plain = createCache({
        namespace: 'bench-plain',
        ttl: '1h',
        l1: false,
        l2: redisStore({ url: urls[0]! }),
        bus: redisBus({ url: bus.url }),
      })
      cleanups.push(() => plain.close())
      await plain.ready()
      await closedLoop(CALLERS, KEYS, (i) => plain.set(`item:${i}`, records[i]!))
      contenders.push(
        closedLoopContender(`${label}: coherent-cache get, redisStore`, options, (i) =>
          plain.get(`item:${trace[i]!}`),
        ),
      )
    }
    rows.push({ setup: label, contenders })
  }

  const all: Contender[] = rows.flatMap((row) => row.contenders)
  const results = new Map((await compare(all)).map((r) => [r.name, r.opsPerSec]))
  for (const c of rows.flatMap((row) => row.contenders)) {
    if (c.misses > 0) throw new Error(`${c.name}: ${c.misses} misses`)
  }

  console.log('## L2 hit throughput of shardedStore (L1 off)\n')
  console.log(
    `Uniform over ${KEYS.toLocaleString()} warm keys, ${VALUE_BYTES} B JSON-like values, ${CALLERS} concurrent callers, ${CALLS.toLocaleString()} gets per round; redis-servers on loopback, all running throughout, contenders interleaved. ${machineLine()}; every redis-server and Node share them. Throughput: median of 5 rounds; latency per call over all 5 rounds.\n`,
  )
  const table: (string | number)[][] = []
  for (const row of rows) {
    const rawOps = results.get(row.contenders[0]!.name)!
    for (const c of row.contenders) {
      const ops = results.get(c.name)!
      const [p50, p99] = percentiles(c.latencies, [50, 99])
      table.push([c.name, formatOps(ops), formatMs(p50!), formatMs(p99!), ratio(ops, rawOps)])
    }
  }
  console.log(markdownTable(['contender', 'gets/s', 'p50', 'p99', 'vs raw (same servers)'], table))
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {})
  await Promise.allSettled(servers.map((server) => server.stop()))
}
