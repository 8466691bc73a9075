/**
 * L2 hit throughput on Redis Cluster: coherent-cache `get` with L1 off (redisStore and redisBus on the
 * cluster), 64 concurrent callers, 1 KiB JSON-like values over 10k warm keys, on a cluster of 1 shard and
 * one of 3 shards (masters only), each beside the floor: node-redis' cluster client GET of the same 1 KiB
 * as a string. Both clusters run for the whole bench, so the four contenders' rounds interleave and the
 * ratios come from one run.
 * Run: npm run bench:cluster
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { createCluster } from 'redis'
import { createCache } from '../src/index.js'
import { redisBus, redisStore } from '../src/redis.js'
import {
  freePort,
  type RedisNodeAddress,
  redisCommand,
  startCluster,
  startRedis,
} from '../tools/redis-server.js'
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

interface Topology {
  name: string
  nodes: RedisNodeAddress[]
  stop(): Promise<void>
}

/**
 * A Redis Cluster of one master holding all 16384 slots. startCluster() builds clusters with
 * `redis-cli --cluster create`, which refuses fewer than 3 masters (and so does startCluster); a single
 * node that assigns itself every slot is a valid cluster all the same. It is still asked first, in case
 * it learns to build one.
 */
async function startOneShard(): Promise<Topology> {
  const name = '1 shard (1 master)'
  try {
    const cluster = await startCluster({ masters: 1, replicasPerMaster: 0 })
    return { name, nodes: cluster.nodes, stop: () => cluster.stop() }
  } catch (error) {
    if (!String(error).includes('at least 3 masters')) throw error
  }
  const busPort = await freePort()
  const server = await startRedis({
    args: ['--cluster-enabled', 'yes', '--cluster-port', String(busPort), '--cluster-node-timeout', '2000'],
  })
  try {
    await redisCommand(server.port, ['CLUSTER', 'ADDSLOTSRANGE', '0', '16383'])
    const deadline = Date.now() + 30_000
    while (!String(await redisCommand(server.port, ['CLUSTER', 'INFO'])).includes('cluster_state:ok')) {
      if (Date.now() > deadline) throw new Error('the 1-shard cluster did not reach cluster_state:ok in time')
      await sleep(25)
    }
  } catch (error) {
    await server.stop()
    throw error
  }
  return { name, nodes: [{ host: server.host, port: server.port }], stop: () => server.stop() }
}

async function startThreeShards(): Promise<Topology> {
  const cluster = await startCluster({ masters: 3, replicasPerMaster: 0 })
  return { name: '3 shards (3 masters)', nodes: cluster.nodes, stop: () => cluster.stop() }
}

const topologies: Topology[] = []
const cleanups: (() => Promise<unknown>)[] = []
try {
  const started = await Promise.allSettled([startOneShard(), startThreeShards()])
  for (const result of started) if (result.status === 'fulfilled') topologies.push(result.value)
  for (const result of started) if (result.status === 'rejected') throw result.reason

  const rows: { topology: string; raw: LatencyContender; coherent: LatencyContender }[] = []
  for (const topology of topologies) {
    const { nodes } = topology
    const raw = createCluster({ rootNodes: nodes.map(({ host, port }) => ({ socket: { host, port } })) })
    cleanups.push(() => raw.close())
    await raw.connect()
    const coherent = createCache({
      namespace: 'bench',
      ttl: '1h',
      l1: false,
      l2: redisStore({ cluster: nodes }),
      bus: redisBus({ cluster: nodes }),
    })
    cleanups.push(() => coherent.close())
    await coherent.ready()
    await closedLoop(CALLERS, KEYS, (i) => raw.set(`raw:${i}`, strings[i]!))
    await closedLoop(CALLERS, KEYS, (i) => coherent.set(`item:${i}`, records[i]!))
    const options = { callers: CALLERS, calls: CALLS }
    rows.push({
      topology: topology.name,
      raw: closedLoopContender(`${topology.name}: raw node-redis cluster GET`, options, (i) =>
        raw.get(`raw:${trace[i]!}`),
      ),
      coherent: closedLoopContender(`${topology.name}: coherent-cache get`, options, (i) =>
        coherent.get(`item:${trace[i]!}`),
      ),
    })
  }

  const contenders: Contender[] = rows.flatMap((row) => [row.raw, row.coherent])
  const results = new Map((await compare(contenders)).map((r) => [r.name, r.opsPerSec]))
  for (const row of rows) {
    for (const c of [row.raw, row.coherent])
      if (c.misses > 0) throw new Error(`${c.name}: ${c.misses} misses`)
  }

  console.log(`## L2 hit throughput on Redis Cluster (L1 off)\n`)
  console.log(
    `Uniform over ${KEYS.toLocaleString()} warm keys, ${VALUE_BYTES} B JSON-like values, ${CALLERS} concurrent callers, ${CALLS.toLocaleString()} gets per round; local clusters of masters only (loopback), both running throughout, contenders interleaved. ${machineLine()}; every redis-server and Node share them. Throughput: median of 5 rounds; latency per call over all 5 rounds.\n`,
  )
  const table: (string | number)[][] = []
  for (const row of rows) {
    const rawOps = results.get(row.raw.name)!
    for (const [label, c] of [
      ['raw node-redis cluster GET', row.raw],
      ['coherent-cache get', row.coherent],
    ] as const) {
      const ops = results.get(c.name)!
      const [p50, p99] = percentiles(c.latencies, [50, 99])
      table.push([row.topology, label, formatOps(ops), formatMs(p50!), formatMs(p99!), ratio(ops, rawOps)])
    }
  }
  console.log(
    markdownTable(['topology', 'contender', 'gets/s', 'p50', 'p99', 'vs raw (same topology)'], table),
  )
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {})
  await Promise.allSettled(topologies.map((topology) => topology.stop()))
}
