/**
 * Cache stampede: how many times does the loader of one cold key run when 1,000 callers ask for it at
 * once, on one node and spread over 4 nodes (separate cache instances with their own Redis connections,
 * sharing one Redis)? And how long until every caller has its answer?
 *
 * The loader simulates a 50 ms database query and counts its calls. Contenders: coherent-cache with
 * lock 'local' and lock 'distributed' (Redis L2 + Redis bus), BentoCache (memory L1 + Redis L2 + Redis
 * bus) getOrSet, cache-manager (Keyv on @keyv/redis) wrap(). A second table shows how the waiters of
 * lock 'distributed' learn the value: woken by the holder's bus invalidation, or by polling L2.
 *
 * Every scenario runs REPEATS times with a fresh key, the contenders interleaved. The bench starts its own
 * redis-server (never a Redis already running) and stops it at the end.
 * Run: npm run bench:stampede   (about 20 s)
 */
import KeyvRedis from '@keyv/redis'
import { BentoCache, bentostore } from 'bentocache'
import { memoryDriver } from 'bentocache/drivers/memory'
import { redisBusDriver, redisDriver } from 'bentocache/drivers/redis'
import { createCache as createCacheManager } from 'cache-manager'
import { Keyv } from 'keyv'
import { type Cache, type CacheOptions, createCache, type Duration } from '../src/index.js'
import { redisBus, redisStore } from '../src/redis.js'
import type { RedisServer } from '../tools/redis-server.js'
import {
  formatMs,
  machineLine,
  markdownTable,
  median,
  redisCommandsProcessed,
  sleep,
  spread,
  withRedisServers,
} from './support/harness.js'

const CALLERS = 1_000
const NODES = 4
const LOAD_MS = 50
const REPEATS = 5

interface Value {
  key: string
  rows: number[]
}

type Loader = () => Promise<Value>

interface Node {
  getOrSet(key: string, loader: Loader): Promise<unknown>
}

interface Fleet {
  nodes: Node[]
  /** lock 'distributed' only: how the lease waits ended (bus notification or poll timer). */
  waits?: { notified: number; timer: number }
  close(): Promise<void>
}

interface Contender {
  name: string
  /** Shown in the main table (the rest only in the distributed-lock table). */
  main: boolean
  /** Shown in the distributed-lock table, with its pollInterval and bus. */
  lease?: { pollInterval: Duration; bus: boolean; note: string }
  create(server: RedisServer): Promise<Fleet>
}

interface Run {
  loaderCalls: number
  ms: number
  commands: number
  failures: number
  notified: number
  timer: number
}

// ---- contenders -------------------------------------------------------------------------------------

/**
 * Counts how the lease waits of a lock: 'distributed' cache end. A waiter calls
 * DistributedLease.waitForWrite(rel, ms), which registers it until the holder's invalidation arrives on
 * the bus (wake(rel) wakes every waiter registered for rel) or its poll timer fires after `ms`. Waits
 * woken by wake() are notifications; the others ended on the timer.
 */
function countWaits(cache: Cache, waits: { notified: number; timer: number }): void {
  const lease = (
    cache as unknown as {
      rt: {
        lease: {
          waitForWrite(rel: string, ms: number): Promise<void>
          wake(rel: string): void
          waiting(rel: string): number
        }
      }
    }
  ).rt.lease
  if (typeof lease?.waitForWrite !== 'function' || typeof lease.wake !== 'function') {
    throw new Error('bench/stampede.ts: DistributedLease.waitForWrite/wake changed; update countWaits()')
  }
  const waitForWrite = lease.waitForWrite.bind(lease)
  const wake = lease.wake.bind(lease)
  lease.waitForWrite = (rel, ms) => {
    waits.timer++ // until the bus wakes it (below)
    return waitForWrite(rel, ms)
  }
  lease.wake = (rel) => {
    const woken = lease.waiting(rel)
    waits.notified += woken
    waits.timer -= woken
    wake(rel)
  }
}

function coherent(
  name: string,
  lock: 'local' | 'distributed',
  options: { main: boolean; pollInterval?: Duration; bus?: boolean; note?: string },
): Contender {
  const bus = options.bus ?? true
  return {
    name,
    main: options.main,
    ...(lock === 'distributed' && {
      lease: { pollInterval: options.pollInterval ?? '100ms', bus, note: options.note ?? '' },
    }),
    async create(server) {
      const namespace = `stampede-${Math.random().toString(36).slice(2, 10)}`
      const waits = { notified: 0, timer: 0 }
      const caches = Array.from({ length: NODES }, () => {
        const cacheOptions: CacheOptions = {
          namespace,
          ttl: '10m',
          lock,
          l2: redisStore({ url: server.url }),
          ...(bus && { bus: redisBus({ url: server.url }) }),
          ...(options.pollInterval !== undefined && {
            distributedLock: { pollInterval: options.pollInterval },
          }),
        }
        const cache = createCache(cacheOptions)
        countWaits(cache, waits)
        return cache
      })
      await Promise.all(caches.map((cache) => cache.ready()))
      return {
        nodes: caches.map((cache) => ({ getOrSet: (key, loader) => cache.getOrSet(key, loader) })),
        waits,
        close: async () => {
          await Promise.all(caches.map((cache) => cache.close()))
        },
      }
    },
  }
}

const bento: Contender = {
  name: 'BentoCache (memory L1 + Redis L2 + Redis bus)',
  main: true,
  async create(server) {
    const connection = { host: server.host, port: server.port }
    const instances = Array.from(
      { length: NODES },
      () =>
        new BentoCache({
          default: 'cache',
          prefix: 'stampede-bento',
          stores: {
            cache: bentostore()
              .useL1Layer(memoryDriver({ maxItems: 10_000 }))
              .useL2Layer(redisDriver({ connection }))
              .useBus(redisBusDriver({ connection })),
          },
        }),
    )
    return {
      nodes: instances.map((instance) => ({
        getOrSet: (key, loader) => instance.getOrSet({ key, factory: loader, ttl: '10m' }),
      })),
      close: async () => {
        await Promise.all(instances.map((instance) => instance.disconnect()))
      },
    }
  },
}

const cacheManager: Contender = {
  name: 'cache-manager (Keyv on @keyv/redis)',
  main: true,
  async create(server) {
    const instances = Array.from({ length: NODES }, () => {
      const store = new Keyv({ store: new KeyvRedis(server.url), namespace: 'stampede-cm' })
      store.on('error', () => {})
      return createCacheManager({ stores: [store] })
    })
    return {
      nodes: instances.map((instance) => ({
        getOrSet: (key, loader) => instance.wrap(key, loader, 600_000),
      })),
      close: async () => {
        await Promise.all(instances.map((instance) => instance.disconnect()))
      },
    }
  },
}

const contenders: Contender[] = [
  coherent("coherent-cache, lock 'local'", 'local', { main: true }),
  coherent("coherent-cache, lock 'distributed'", 'distributed', {
    main: true,
    note: 'default: bus notification, 100 ms poll as fallback',
  }),
  bento,
  cacheManager,
  coherent("coherent-cache, lock 'distributed', pollInterval '200ms'", 'distributed', {
    main: false,
    pollInterval: '200ms',
    note: 'notification-bound: a poll could only answer at 200 ms',
  }),
  coherent("coherent-cache, lock 'distributed', pollInterval '5ms'", 'distributed', {
    main: false,
    pollInterval: '5ms',
    note: 'polling-bound: the 5 ms poll mostly finds the value before the notification arrives',
  }),
  coherent("coherent-cache, lock 'distributed', pollInterval '200ms', no bus", 'distributed', {
    main: false,
    pollInterval: '200ms',
    bus: false,
    note: 'polling-bound: nothing can wake the waiters before 200 ms',
  }),
  coherent("coherent-cache, lock 'distributed', pollInterval '5ms', no bus", 'distributed', {
    main: false,
    pollInterval: '5ms',
    bus: false,
    note: 'polling-bound, every 5 ms',
  }),
]

// ---- one stampede ---------------------------------------------------------------------------------

async function stampede(server: RedisServer, fleet: Fleet, nodeCount: number, key: string): Promise<Run> {
  let loaderCalls = 0
  const loader: Loader = async () => {
    loaderCalls++
    await sleep(LOAD_MS)
    return { key, rows: [1, 2, 3] }
  }
  const waitsBefore = { ...(fleet.waits ?? { notified: 0, timer: 0 }) }
  const commandsBefore = await redisCommandsProcessed(server.port)
  const started = performance.now()
  const calls: Promise<unknown>[] = []
  for (let i = 0; i < CALLERS; i++) calls.push(fleet.nodes[i % nodeCount]!.getOrSet(key, loader))
  const outcomes = await Promise.allSettled(calls)
  const ms = performance.now() - started
  const failures = outcomes.filter(
    (outcome) => outcome.status === 'rejected' || (outcome.value as Value | undefined)?.key !== key,
  ).length
  // Let the releases and publishes of this run reach Redis before counting its commands.
  await sleep(20)
  const commands = (await redisCommandsProcessed(server.port)) - commandsBefore
  const waits = fleet.waits ?? { notified: 0, timer: 0 }
  return {
    loaderCalls,
    ms,
    commands,
    failures,
    notified: waits.notified - waitsBefore.notified,
    timer: waits.timer - waitsBefore.timer,
  }
}

/** `4` when every run agrees, else every run's count: `4, 4, 3, 4, 4`. */
function counts(values: number[]): string {
  return values.every((value) => value === values[0]) ? String(values[0]) : values.join(', ')
}

// ---- main -----------------------------------------------------------------------------------------

const scenarios = [
  { name: '1 node × 1,000', nodes: 1 },
  { name: `${NODES} nodes × ${CALLERS / NODES}`, nodes: NODES },
]

await withRedisServers(1, async ([server]) => {
  const fleets = new Map<Contender, Fleet>()
  try {
    for (const contender of contenders) {
      const fleet = await contender.create(server!)
      fleets.set(contender, fleet)
      // Open every connection before measuring.
      await Promise.all(
        fleet.nodes.map((node, i) => node.getOrSet(`warmup:${i}`, async () => ({ key: '', rows: [] }))),
      )
    }
    await sleep(200)
    const runs = new Map<string, Run[]>()
    for (let repeat = 0; repeat < REPEATS; repeat++) {
      for (const [contender, fleet] of fleets) {
        for (const scenario of scenarios) {
          const key = `product:${contenders.indexOf(contender)}:${scenario.nodes}:${repeat}`
          const run = await stampede(server!, fleet, scenario.nodes, key)
          const id = `${contender.name}|${scenario.nodes}`
          runs.set(id, [...(runs.get(id) ?? []), run])
          await sleep(50)
        }
      }
    }
    const of = (contender: Contender, nodes: number) => runs.get(`${contender.name}|${nodes}`)!
    const failed = [...runs.values()].flat().reduce((sum, run) => sum + run.failures, 0)

    console.log('## Cache stampede\n')
    console.log(
      `${CALLERS.toLocaleString()} concurrent \`getOrSet\` calls of one cold key, on 1 node and spread over ${NODES} nodes (separate cache instances, each with its own Redis connections, one shared Redis); the loader takes ${LOAD_MS} ms and counts its calls. ${REPEATS} runs per scenario, each with a fresh key: loader calls of every run, time until the last caller had its answer as median (min–max); Redis commands: all commands one run sent, median. ${machineLine()}.\n`,
    )
    console.log(
      markdownTable(
        [
          'contender',
          'loader calls (1 node × 1,000)',
          `loader calls (${NODES} nodes × ${CALLERS / NODES})`,
          'all answered (1 node × 1,000)',
          `all answered (${NODES} nodes × ${CALLERS / NODES})`,
          `Redis commands (${NODES} nodes × ${CALLERS / NODES})`,
        ],
        contenders
          .filter((contender) => contender.main)
          .map((contender) => [
            contender.name,
            counts(of(contender, 1).map((run) => run.loaderCalls)),
            counts(of(contender, NODES).map((run) => run.loaderCalls)),
            spread(of(contender, 1).map((run) => run.ms)),
            spread(of(contender, NODES).map((run) => run.ms)),
            String(median(of(contender, NODES).map((run) => run.commands))),
          ]),
      ),
    )

    console.log(`\n### How the waiters of lock 'distributed' learn the value (${scenarios[1]!.name})\n`)
    console.log(
      `One node holds the lease and loads (${LOAD_MS} ms); the waiters on the other ${NODES - 1} nodes wait up to \`pollInterval\` at a time, and each wait ends either when the holder's bus invalidation arrives (notification) or when the poll timer fires (then they re-read L2 and retry the lease). Redis commands: all commands of one run, median.\n`,
    )
    console.log(
      markdownTable(
        [
          'pollInterval',
          'bus',
          'loader calls',
          'all answered',
          'waits ended by notification',
          'waits ended by poll timer',
          'Redis commands',
          'note',
        ],
        contenders
          .filter((contender) => contender.lease !== undefined)
          .map((contender) => {
            const lease = contender.lease!
            const list = of(contender, NODES)
            return [
              `'${lease.pollInterval}'`,
              lease.bus ? 'yes' : 'no',
              counts(list.map((run) => run.loaderCalls)),
              spread(list.map((run) => run.ms)),
              counts(list.map((run) => run.notified)),
              counts(list.map((run) => run.timer)),
              String(median(list.map((run) => run.commands))),
              lease.note,
            ]
          }),
      ),
    )
    if (failed > 0) console.log(`\n**${failed} callers failed or got a wrong value.**`)
    const distributed = of(contenders[1]!, NODES)
    const target = distributed.every((run) => run.loaderCalls === 1)
    console.log(
      `\nTarget: lock 'distributed' = 1 loader call for ${NODES} nodes: ${target ? 'met' : 'missed'} (${counts(distributed.map((run) => run.loaderCalls))}; all answered in ${formatMs(median(distributed.map((run) => run.ms)))}).`,
    )
  } finally {
    await Promise.allSettled([...fleets.values()].map((fleet) => fleet.close()))
  }
})
