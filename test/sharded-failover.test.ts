/**
 * shardedStore over real redis-server processes: a member killed or frozen is ejected by its own
 * breaker, its keys are served by the next member meanwhile, and it is re-admitted once it answers.
 * The re-entry rule: whatever a member held before it was ejected is never served again.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, inject, it } from 'vitest'
import { type Cache, createCache } from '../src/index.js'
import { redisBus, redisStore } from '../src/redis.js'
import { HashRing } from '../src/ring/hash-ring.js'
import { type ShardedStore, type ShardedStoreOptions, shardedStore } from '../src/stores/sharded-store.js'
import { type RedisServer, redisCommand, startRedis } from '../tools/redis-server.js'
import { uniqueNamespace } from './support/redis-fleet.js'
import { eventually } from './support/store-conformance.js'

const NAMES = ['m0', 'm1', 'm2']
const L2_TIMEOUT_MS = 2_000
/** Short enough for a test, long enough for a loaded 2-core machine. */
const FAST: ShardedStoreOptions = {
  memberTimeout: 500,
  viewTtl: 1_000,
  healthCheckInterval: 100,
  readmitAfter: 300,
  circuitBreaker: { failureThreshold: 2, openDuration: 200 },
}

let servers: RedisServer[] = []
const caches: Cache[] = []
afterEach(async () => {
  await Promise.allSettled(caches.splice(0).map((cache) => cache.close()))
  for (const server of servers) if (server.running) process.kill(server.pid, 'SIGCONT')
  await Promise.allSettled(servers.map((server) => server.stop()))
  servers = []
})

function node(namespace: string, options: { l1?: false } = {}): { cache: Cache; store: ShardedStore } {
  const store = shardedStore(
    servers.map((server, i) => ({
      name: NAMES[i]!,
      store: redisStore({ url: server.url, maxReconnectDelay: 100 }),
    })),
    FAST,
  )
  const cache = createCache({
    namespace,
    l2: store,
    bus: redisBus({ url: inject('redisUrl') }),
    l2Timeout: L2_TIMEOUT_MS,
    ttl: '10m',
    ...options,
  })
  caches.push(cache)
  return { cache, store }
}

/** Keys of `namespace` whose home on the ring is `member`. */
function keysOf(namespace: string, member: string, count: number): string[] {
  const ring = new HashRing(NAMES)
  const keys: string[] = []
  for (let i = 0; keys.length < count; i++) if (ring.get(`${namespace}:k${i}`) === member) keys.push(`k${i}`)
  return keys
}

const settled = (store: ShardedStore, name: string, state: 'in' | 'out') => () =>
  store.status().some((s) => s.name === name && s.state === state && !s.switching)

/** Runs `call`; fails if it throws or if a timer of l2Timeout started with it fires first. */
async function withinL2Timeout<T>(call: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), L2_TIMEOUT_MS)
  })
  const result = await Promise.race([call().then((value) => ({ value })), late])
  clearTimeout(timer)
  if (result === 'late') throw new Error(`a call took longer than l2Timeout (${L2_TIMEOUT_MS} ms)`)
  return result.value
}

describe('shardedStore failover', () => {
  it('keeps getOrSet answering while a member is killed, and re-admits it when it returns', async () => {
    servers = await Promise.all(NAMES.map(() => startRedis()))
    const namespace = uniqueNamespace('failover')
    const { cache, store } = node(namespace, { l1: false })
    await cache.ready()
    const keys = Array.from({ length: 60 }, (_, i) => `k${i}`)
    let loads = 0
    const load = (key: string) => async () => {
      loads++
      return `value of ${key}`
    }
    const round = async () => {
      for (const key of keys)
        expect(await withinL2Timeout(() => cache.getOrSet(key, load(key)))).toBe(`value of ${key}`)
    }
    await round()
    expect(loads).toBe(60)
    await round()
    expect(loads).toBe(60) // all from L2

    await servers[0]!.kill('SIGKILL')
    // Calls go on answering while the breaker opens, the member is ejected and its keys move.
    while (!settled(store, 'm0', 'out')()) await round()
    const ejected = store.status()[0]!
    expect(ejected).toMatchObject({ state: 'out', generation: 1 })
    expect(ejected.circuitOpened).toBeGreaterThan(0)
    // Its keys now live on the other members (loads that could not be stored while it was being ejected
    // are served from this node's outage queue until their retry lands).
    const onOthers = async () => {
      const names = await Promise.all(
        servers.slice(1).map((server) => redisCommand(server.port, ['KEYS', '1/*'])),
      )
      return (names as string[][]).flat().length
    }
    await eventually(async () => (await onOthers()) > 0, 10_000, 'm0 keys on the other members')
    await round()

    await servers[0]!.start()
    while (!settled(store, 'm0', 'in')()) await round()
    expect(store.status()[0]).toMatchObject({ state: 'in', generation: 2 })
    // m0 serves its keys again, under their new names.
    await eventually(
      async () => {
        await round()
        const names = (await redisCommand(servers[0]!.port, ['KEYS', `2|${namespace}:*`])) as string[]
        return names.length > 0
      },
      10_000,
      'm0 to hold its keys again',
    )
    expect(loads).toBeGreaterThan(60)
  }, 60_000)

  it('never serves what a member held before it was ejected, on any node, even one started later', async () => {
    servers = await Promise.all(NAMES.map(() => startRedis()))
    const namespace = uniqueNamespace('reentry')
    const [key] = keysOf(namespace, 'm0', 1) as [string]
    const writer = node(namespace)
    const reader = node(namespace, { l1: false })
    await Promise.all([writer.cache.ready(), reader.cache.ready()])
    await writer.cache.set(key, 1)
    // A read that missed memberTimeout on a loaded machine is retried: this is the starting state, not the test.
    await eventually(async () => (await reader.cache.get(key)) === 1, 10_000, 'the reader to read 1')

    // Reads from here on: none may return 1 once 2 has been written elsewhere.
    const reads: { value: unknown; afterTwo: boolean }[] = []
    let twoWritten = false
    let reading = true
    const readers: Promise<void>[] = []
    const readLoop = (cache: Cache) =>
      readers.push(
        (async () => {
          while (reading) {
            const afterTwo = twoWritten
            reads.push({ value: await withinL2Timeout(() => cache.get(key)), afterTwo })
            await sleep(5)
          }
        })(),
      )
    readLoop(reader.cache)

    // Freeze m0: it keeps `0|<key>` = 1 in memory, and answers nothing.
    process.kill(servers[0]!.pid, 'SIGSTOP')
    await eventually(
      async () => {
        await writer.cache.get(key) // traffic for the breaker to judge
        return settled(writer.store, 'm0', 'out')()
      },
      20_000,
      'm0 to be ejected',
    )
    await eventually(() => settled(reader.store, 'm0', 'out')(), 20_000, 'the reader to route around m0')
    await writer.cache.set(key, 2)
    await eventually(async () => (await reader.cache.get(key)) === 2, 10_000, 'the reader to see 2')
    twoWritten = true

    // m0 comes back with 1 still in memory; a node started now must not see it either.
    process.kill(servers[0]!.pid, 'SIGCONT')
    const late = node(namespace, { l1: false })
    await late.cache.ready()
    readLoop(late.cache)
    await eventually(
      () => [writer, reader, late].every(({ store }) => settled(store, 'm0', 'in')()),
      20_000,
      'm0 to be re-admitted everywhere',
    )
    const later = node(namespace, { l1: false })
    readLoop(later.cache)
    await sleep(300)
    reading = false
    await Promise.all(readers)

    // The value is still on m0 under its old name: only the rule keeps it out.
    expect(await redisCommand(servers[0]!.port, ['EXISTS', `0|${namespace}:${key}`])).toBe(1)
    expect(writer.store.status()[0]).toMatchObject({ state: 'in', generation: 2 })
    expect(reads.filter((read) => read.afterTwo).length).toBeGreaterThan(10)
    expect(reads.filter((read) => read.afterTwo && read.value === 1)).toEqual([])
    // After re-admission the key is a miss (m0's generation 2 is empty), and getOrSet loads it.
    expect(await later.cache.getOrSet(key, async () => 'loaded')).toBe('loaded')
    expect(await writer.cache.get(key)).not.toBe(1)
  }, 90_000)
})
