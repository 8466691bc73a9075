import { performance } from 'node:perf_hooks'
import { afterEach, describe, expect, it } from 'vitest'
import { type Cache, createCache } from '../src/index.js'
import { redisBus, redisStore } from '../src/redis.js'
import { mulberry32 } from '../tools/random.js'
import { type RedisServer, startRedis } from '../tools/redis-server.js'
import { uniqueNamespace } from './support/redis-fleet.js'
import { eventually } from './support/store-conformance.js'

// Issue 4: a Redis outage under load. A server of our own goes away while 8 workers hammer two nodes
// with getOrSet over a working set too large for L1, then comes back; the workers keep going.

const L2_TIMEOUT_MS = 100
/** Event-loop noise allowed on top of l2Timeout (8 workers, 2 nodes and their clients share one thread). */
const MARGIN_MS = 50
const KEYS = 1000
const WORKERS = 8

let server: RedisServer | undefined
let frozenPid: number | undefined
let nodes: Cache[] = []
afterEach(async () => {
  if (frozenPid !== undefined) {
    try {
      process.kill(frozenPid, 'SIGCONT')
    } catch {
      // already gone
    }
    frozenPid = undefined
  }
  await Promise.allSettled(nodes.map((node) => node.close()))
  nodes = []
  await server?.stop()
  server = undefined
})

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve))

interface Call {
  node: number
  key: string
  start: number
  end: number
  /**
   * A timer of l2Timeout + MARGIN_MS, started with the call, fired before the call settled. An ordering,
   * not a wall-clock difference: on a loaded machine the call's own l2Timeout timer (started with it, due
   * sooner) is delayed as much as this one, so only a call that waits past its l2Timeout is late.
   */
  late: boolean
  error?: unknown
}

/**
 * Runs the workers for ~1 s, calls `down()`, waits ~2 s, calls `up()`, runs them ~1.5 s more, then checks
 * every guarantee of the outage.
 */
async function outageUnderLoad(
  down: (redis: RedisServer) => Promise<void>,
  up: (redis: RedisServer) => Promise<void>,
) {
  server = await startRedis()
  const namespace = uniqueNamespace('outage')
  for (let i = 0; i < 2; i++) {
    nodes.push(
      createCache({
        namespace,
        l2: redisStore({ url: server.url }),
        bus: redisBus({ url: server.url }),
        l2Timeout: `${L2_TIMEOUT_MS}ms`,
        l1: { maxEntries: 100 },
        grace: '1h',
        ttl: '10m',
      }),
    )
  }
  await Promise.all(nodes.map((node) => node.ready()))

  let loads = 0
  const loader = async (key: string) => {
    loads++
    return { key, load: loads }
  }
  const calls: Call[] = []
  let running = true
  const random = mulberry32(20240601)
  const nextKey = () => `key:${Math.floor(random() * KEYS)}`
  const worker = async (index: number) => {
    const nodeIndex = index % nodes.length
    const node = nodes[nodeIndex]!
    while (running) {
      const key = nextKey()
      const call: Call = { node: nodeIndex, key, start: performance.now(), end: 0, late: false }
      const lateTimer = setTimeout(() => {
        call.late = true
      }, L2_TIMEOUT_MS + MARGIN_MS)
      try {
        const value = await node.getOrSet(key, loader)
        if ((value as { key: string }).key !== key) throw new Error(`wrong value for ${key}`)
      } catch (error) {
        call.error = error
      } finally {
        clearTimeout(lateTimer)
      }
      call.end = performance.now()
      calls.push(call)
      // Answers from L1 settle in microtasks only: let timers and sockets run between calls.
      await yieldToEventLoop()
    }
  }
  const workers = Array.from({ length: WORKERS }, (_, i) => worker(i))

  await sleep(1000)
  const before = nodes.map((node) => node.stats())
  const downFrom = performance.now()
  await down(server)
  await sleep(2000)
  await up(server)
  const upAt = performance.now()
  const atRestart = nodes.map((node) => node.stats())
  await sleep(1500)
  running = false
  await Promise.all(workers)

  // 1. Zero calls threw.
  const failed = calls.filter((call) => call.error !== undefined)
  expect(failed.map((call) => String(call.error)).slice(0, 5)).toEqual([])
  expect(calls.length).toBeGreaterThan(1000)
  expect(before.every((stats) => stats.l2.hits > 0)).toBe(true) // Redis was in use before the outage
  for (let i = 0; i < nodes.length; i++) expect(atRestart[i]!.l2.errors).toBeGreaterThan(before[i]!.l2.errors)

  // 2. While the server was away, no call took longer than l2Timeout (plus event-loop noise).
  const duringOutage = calls.filter((call) => call.end >= downFrom && call.start <= upAt)
  expect(duringOutage.length).toBeGreaterThan(100)
  const slow = duringOutage
    .filter((call) => call.late)
    .map((call) => ({
      node: call.node,
      key: call.key,
      startedAfterOutage: Math.round(call.start - downFrom),
      took: Math.round(call.end - call.start),
    }))
  expect(slow).toEqual([])

  // 3. After the restart the cache uses Redis again: the circuit closes, L2 answers again, and what was
  // queued during the outage goes out.
  await eventually(
    async () => {
      for (let i = 0; i < 20; i++) {
        for (const node of nodes) await node.getOrSet(nextKey(), loader)
      }
      return nodes.every((node, i) => {
        const stats = node.stats()
        return stats.l2.circuit === 'closed' && stats.l2.hits > atRestart[i]!.l2.hits && stats.pending === 0
      })
    },
    15_000,
    'the circuit to close, L2 hits to grow and the pending writes to go out',
  )
  for (let i = 0; i < nodes.length; i++) {
    const stats = nodes[i]!.stats()
    expect(stats.l2.circuitOpened).toBeGreaterThan(before[i]!.l2.circuitOpened) // it did trip
    expect(stats.recovered).toBeGreaterThan(0)
    expect(stats.bus.connected).toBe(true)
  }
}

describe('a Redis outage under load (issue 4)', () => {
  it('killed and started again (empty): no call throws, none waits past l2Timeout, the cache recovers by itself', async () => {
    await outageUnderLoad(
      (redis) => redis.kill('SIGKILL'),
      (redis) => redis.start(),
    )
  })

  it('frozen (SIGSTOP: connections stay open, nothing answers) and resumed: the same holds', async () => {
    await outageUnderLoad(
      async (redis) => {
        frozenPid = redis.pid
        process.kill(redis.pid, 'SIGSTOP')
      },
      async (redis) => {
        process.kill(redis.pid, 'SIGCONT')
        frozenPid = undefined
      },
    )
  })
})
