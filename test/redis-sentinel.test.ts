/**
 * Redis Sentinel (issue 10): redisStore and redisBus with `{ sentinel: { name, sentinels } }` against real
 * sentinels of our own (a master, a replica, three `redis-server --sentinel`), through the store and bus
 * conformance suites, and through master failovers under load: `SENTINEL FAILOVER`, then the new master
 * killed. Every wait is a poll for a condition with a generous overall timeout.
 */
import util from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Cache, createCache } from '../src/index.js'
import { type RedisSentinelConnectionOptions, redisBus, redisStore } from '../src/redis.js'
import { type BusConformanceOptions, busConformance } from './support/bus-conformance.js'
import { TEST_L2_TIMEOUT, uniqueNamespace } from './support/redis-fleet.js'
import { type SentinelGroup, startSentinels } from './support/sentinel-server.js'
import { eventually, storeConformance } from './support/store-conformance.js'

/** Failovers and recoveries on a loaded 2-core machine: seconds, not milliseconds. */
const FAILOVER_TIMEOUT_MS = 45_000

let group: SentinelGroup
beforeAll(async () => {
  group = await startSentinels()
}, 60_000)
afterAll(async () => {
  await group?.stop()
})

const options = (extra: Partial<RedisSentinelConnectionOptions> = {}): RedisSentinelConnectionOptions => ({
  sentinel: { name: group.name, sentinels: group.sentinels },
  maxReconnectDelay: 200,
  ...extra,
})

describe('redisStore({ sentinel })', () => {
  storeConformance('redisStore({ sentinel })', () => redisStore(options()), {
    reconnects: true,
    stamped: true,
  })

  it('names itself redis-sentinel, and validates its options naming the one at fault', () => {
    expect(redisStore(options()).name).toBe('redis-sentinel')
    expect(redisBus(options()).name).toBe('redis-sentinel')
    const invalid = (given: unknown) => {
      try {
        redisStore(given as RedisSentinelConnectionOptions)
      } catch (error) {
        return (error as { option?: string }).option
      }
      return undefined
    }
    expect(invalid({ sentinel: { sentinels: [{ host: 'h', port: 1 }] } })).toBe('sentinel.name')
    expect(invalid({ sentinel: { name: 'm', sentinels: [] } })).toBe('sentinel.sentinels')
    expect(invalid({ sentinel: { name: 'm', sentinels: [{ host: 'h', port: 0 }] } })).toBe(
      'sentinel.sentinels[0].port',
    )
    expect(invalid({ sentinel: { name: 'm', sentinels: [{ host: 'h', port: 1 }], db: 2 } })).toBe(
      'sentinel.db',
    )
    expect(invalid({ sentinel: { name: 'm', sentinels: [{ host: 'h', port: 1 }] }, url: 'redis://h' })).toBe(
      'sentinel',
    )
    expect(
      invalid({ sentinel: { name: 'm', sentinels: [{ host: 'h', port: 1 }] }, maxCommandRedirections: 3 }),
    ).toBe('maxCommandRedirections')
  })

  it('a master name no sentinel monitors: calls fail within connectTimeout, saying so', async () => {
    // The sentinels answer at once (no such master); connectTimeout leaves a loaded machine time for it.
    const store = redisStore({
      ...options(),
      sentinel: { name: 'nobody', sentinels: group.sentinels },
      connectTimeout: 5000,
    })
    try {
      const error = (await store.get('k').catch((e: unknown) => e)) as Error
      expect(error.message).toContain('cannot reach the Redis Sentinel master nobody')
      expect(util.inspect(error)).toContain('monitors no master named nobody')
    } finally {
      await store.close()
    }
  })
})

/** Drops the subscriber connections on the master (where the subscribers are). */
async function killSubscribers(): Promise<number> {
  return Number(await group.command(await group.master(), ['CLIENT', 'KILL', 'TYPE', 'pubsub']))
}

const busOptions: BusConformanceOptions = {
  killSubscribers,
  // A group of its own whose master restarts in place (down for less than down-after: no failover).
  dedicated: async () => {
    const own = await startSentinels({ name: 'bus', downAfterMs: 5000 })
    return {
      factory: () =>
        redisBus({ sentinel: { name: own.name, sentinels: own.sentinels }, maxReconnectDelay: 200 }),
      restart: async (downMs) => (await own.master()).restart({ downMs }),
      stop: () => own.stop(),
      recoveryMs: 15_000,
    }
  },
}
describe('redisBus({ sentinel })', () => {
  busConformance('redisBus({ sentinel })', () => redisBus(options()), busOptions)
})

describe('Sentinel with passwords (data nodes and sentinels)', () => {
  let secured: SentinelGroup | undefined
  afterAll(async () => {
    await secured?.stop()
  })

  it('connects with both passwords, works, and prints neither', async () => {
    secured = await startSentinels({
      name: 'secured',
      password: 'data-s3cret',
      sentinelPassword: 'sentinel-s3cret',
    })
    const conn: RedisSentinelConnectionOptions = {
      sentinel: { name: secured.name, sentinels: secured.sentinels, password: 'sentinel-s3cret' },
      password: 'data-s3cret',
    }
    const namespace = uniqueNamespace('secured')
    // A loaded machine's budget (the default, 100 ms, is a production one): see redis-fleet.ts.
    const make = () =>
      createCache({ namespace, l2: redisStore(conn), bus: redisBus(conn), l2Timeout: TEST_L2_TIMEOUT })
    const [cache, other] = [make(), make()]
    try {
      await Promise.all([cache.ready(), other.ready()])
      await cache.set('k', 'v1')
      expect(await other.get('k')).toBe('v1')
      await cache.set('k', 'v2')
      await eventually(async () => (await other.get('k')) === 'v2', 5000, 'the invalidation')
      const printed = util.inspect(cache, { depth: Number.POSITIVE_INFINITY, showHidden: true })
      expect(printed).not.toContain('data-s3cret')
      expect(printed).not.toContain('sentinel-s3cret')
      // A wrong sentinel password: no sentinel answers, and the error does not print it either.
      const wrong = redisStore({
        ...conn,
        sentinel: { ...conn.sentinel, password: 'wr0ng-pass' },
        connectTimeout: 500,
      })
      const error = await wrong.get('k').catch((e: unknown) => e)
      await wrong.close()
      expect(util.inspect(error, { depth: Number.POSITIVE_INFINITY })).not.toContain('wr0ng-pass')
    } finally {
      await Promise.allSettled([cache.close(), other.close()])
    }
  }, 60_000)
})

describe('master failover during load', () => {
  let writer: Cache | undefined
  let reader: Cache | undefined
  let fresh: Cache | undefined
  afterAll(async () => {
    await Promise.allSettled([writer?.close(), reader?.close(), fresh?.close()])
  })

  it(
    'SENTINEL FAILOVER, then the master killed: no call throws, writes resume on the new master, the bus resubscribes and invalidations flow',
    async () => {
      const namespace = uniqueNamespace('failover')
      // L1 entries live for 10 minutes: only an invalidation (or a bus drop) makes the reader look again.
      const make = () =>
        createCache({
          namespace,
          ttl: '10m',
          l1: { ttl: '10m' },
          l2: redisStore(options()),
          bus: redisBus(options()),
          l2Timeout: '250ms',
        })
      writer = make()
      reader = make()
      await Promise.all([writer.ready(), reader.ready()])
      const w = writer
      const r = reader

      // Load: the writer writes, the reader reads, on 50 keys, until the end of the test.
      const thrown: unknown[] = []
      let stop = false
      let seq = 0
      const load = async (work: () => Promise<unknown>) => {
        while (!stop) {
          try {
            await work()
          } catch (error) {
            thrown.push(error)
          }
          await new Promise((resolve) => setTimeout(resolve, 2))
        }
      }
      const key = () => `k${Math.floor(Math.random() * 50)}`
      const workers = [
        load(() => w.set(key(), `w:${++seq}`)),
        load(() => w.set(key(), `w:${++seq}`)),
        load(() => r.get(key())),
        load(() => r.get(key())),
      ]

      /** The master's data is what a cache that never saw the values reads through Sentinel. */
      const onMaster = async (k: string, value: string) => {
        await fresh?.close()
        fresh = createCache({ namespace, l1: false, l2: redisStore(options()), l2Timeout: TEST_L2_TIMEOUT })
        return (await fresh.get(k)) === value
      }

      try {
        for (const how of ['SENTINEL FAILOVER', 'the master killed'] as const) {
          const old = await group.master()
          const reconnectsBefore = r.stats().bus.reconnects
          const promoted =
            how === 'SENTINEL FAILOVER'
              ? await group.failover(FAILOVER_TIMEOUT_MS)
              : await old.kill('SIGKILL').then(() => group.waitForNewMaster(old, FAILOVER_TIMEOUT_MS))
          expect(promoted.port).not.toBe(old.port)

          // Writes resume on the new master: the writer's queue drains and a new write is read from it.
          const probe = `after ${how}`
          await eventually(
            async () => {
              await w.set('probe', probe)
              return w.stats().pending === 0 && (await onMaster('probe', probe))
            },
            FAILOVER_TIMEOUT_MS,
            `a write to land on the new master (${how})`,
          )
          // The bus resubscribed (on the new master).
          await eventually(
            () => r.stats().bus.connected && r.stats().bus.reconnects > reconnectsBefore,
            FAILOVER_TIMEOUT_MS,
            `the reader's bus to resubscribe (${how})`,
          )
          // Invalidations flow: the reader holds 'flow' in L1, the writer changes it, the reader sees it.
          const flow = `flow-${how}`
          await w.set(flow, 'v1')
          await eventually(async () => (await r.get(flow)) === 'v1', FAILOVER_TIMEOUT_MS, 'the first value')
          const received = r.stats().bus.received
          await w.set(flow, 'v2')
          await eventually(async () => (await r.get(flow)) === 'v2', FAILOVER_TIMEOUT_MS, 'the invalidation')
          expect(r.stats().bus.received).toBeGreaterThan(received)

          // The killed master has no replica to fail over to next time: only the first round needs one.
          if (how === 'SENTINEL FAILOVER') await group.waitForReplicas(1, FAILOVER_TIMEOUT_MS)
        }
      } finally {
        stop = true
        await Promise.all(workers)
      }
      expect(thrown).toEqual([])
      expect(seq).toBeGreaterThan(100)
    },
    4 * FAILOVER_TIMEOUT_MS,
  )
})
