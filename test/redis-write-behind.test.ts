import { afterAll, describe, expect, inject, it } from 'vitest'
import { type Cache, createCache, type WriteBehindItem } from '../src/index.js'
import { KeyNames } from '../src/keys.js'
import { type RedisConnectionOptions, redisBus, redisStore } from '../src/redis.js'
import { redisCommand, startRedis } from '../tools/redis-server.js'
import { deferred } from './support/deferred.js'
import { TEST_L2_TIMEOUT, uniqueNamespace } from './support/redis-fleet.js'

const redisUrl = inject('redisUrl')
const clusterNodes = inject('redisCluster')

const caches: Cache[] = []
afterAll(async () => {
  await Promise.all(caches.map((cache) => cache.close()))
})

function node(
  connection: RedisConnectionOptions,
  namespace: string,
  write: (batch: WriteBehindItem[]) => unknown,
) {
  const cache = createCache({
    namespace,
    l2: redisStore(connection),
    bus: redisBus(connection),
    // Not about timeouts: on a loaded machine the default 100 ms opened the breaker of a healthy Redis,
    // and writeBehind then refused writes (E_QUEUE_UNAVAILABLE).
    l2Timeout: TEST_L2_TIMEOUT,
    writeBehind: { write, flushInterval: '10ms', partitions: 16 },
  })
  caches.push(cache)
  return cache
}

describe('write-behind on Redis', () => {
  it('spreads the queue over the shards of a Cluster', async () => {
    const namespace = uniqueNamespace('wb-spread')
    const gate = deferred<void>()
    const cache = node({ cluster: clusterNodes.slice(0, 1) }, namespace, () => gate.promise)
    await Promise.all(Array.from({ length: 200 }, (_, i) => cache.writeBehind(`key:${i}`, i)))
    const port = clusterNodes[0]!.port
    const slots = (await redisCommand(port, ['CLUSTER', 'SLOTS'])) as [number, number, [string, number]][]
    const keys = new KeyNames(namespace)
    const owners = new Set<number>()
    for (let p = 0; p < 16; p++) {
      const stream = keys.writeBehind(p).stream
      const slot = Number(await redisCommand(port, ['CLUSTER', 'KEYSLOT', stream]))
      const owner = slots.find(([from, to]) => from <= slot && slot <= to)![2][1]
      if (Number(await redisCommand(owner, ['XLEN', stream])) > 0) owners.add(owner)
    }
    expect(owners.size).toBeGreaterThanOrEqual(2)
    gate.resolve()
    await cache.flush()
    expect(cache.stats().writeBehind).toMatchObject({ accepted: 200, written: 200, durable: true })
  })

  it('two nodes writing the same keys: the database and every cache end with the value last accepted', async () => {
    for (const connection of [
      { url: redisUrl },
      { cluster: clusterNodes.slice(0, 1) },
    ] as RedisConnectionOptions[]) {
      const namespace = uniqueNamespace('wb-agree')
      const db = new Map<string, number>()
      const history = new Map<string, number[]>()
      const write = async (batch: WriteBehindItem[]) => {
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 4))
        for (const item of batch) {
          db.set(item.key, item.value as number)
          history.set(item.key, [...(history.get(item.key) ?? []), item.version])
        }
      }
      const [a, b] = [node(connection, namespace, write), node(connection, namespace, write)]
      await Promise.all([a.ready(), b.ready()])
      // Both nodes write every key at once, many times; which write is last is up to the queue.
      await Promise.all(
        Array.from({ length: 20 }, async (_, k) => {
          for (let i = 0; i < 10; i++)
            await Promise.all([a.writeBehind(`k${k}`, 2 * i), b.writeBehind(`k${k}`, 2 * i + 1)])
        }),
      )
      await Promise.all([a.flush(), b.flush()])
      for (let k = 0; k < 20; k++) {
        const key = `k${k}`
        const versions = history.get(key)!
        expect(versions, key).toEqual([...versions].sort((x, y) => x - y))
        expect(await a.get(key, { consistency: 'strong' }), key).toBe(db.get(key))
        expect(await b.get(key, { consistency: 'strong' }), key).toBe(db.get(key))
      }
    }
  })

  it('dead-letters a write that keeps failing, and re-drives it once the database takes it', async () => {
    const namespace = uniqueNamespace('wb-dead')
    let broken = true
    const written: unknown[] = []
    const cache = createCache({
      namespace,
      l2: redisStore({ url: redisUrl }),
      l2Timeout: TEST_L2_TIMEOUT,
      writeBehind: {
        write: async (batch) => {
          if (broken) return batch.filter((item) => item.key === 'poison') // the rest goes through
          written.push(...batch.map((item) => [item.key, item.value, item.attempt]))
        },
        flushInterval: '5ms',
        maxRetries: 2,
        retryDelay: { initial: '1ms', max: '4ms' },
      },
    })
    caches.push(cache)
    await cache.writeBehind('poison', { n: 1 })
    await cache.writeBehind('fine', { n: 2 })
    await cache.flush()
    expect(cache.stats().writeBehind).toMatchObject({ written: 1, retries: 2, deadLettered: 1 })
    const letters = await cache.deadLetters()
    expect(letters).toEqual([
      expect.objectContaining({ key: 'poison', namespace: '', value: { n: 1 }, attempts: 3 }),
    ])
    broken = false
    expect(await cache.redriveDeadLetters()).toBe(1)
    await cache.flush()
    expect(written).toEqual([['poison', { n: 1 }, 1]])
    expect(await cache.deadLetters()).toEqual([])
  })

  it('rejects a write it cannot queue, and shows it nowhere', async () => {
    const server = await startRedis()
    const namespace = uniqueNamespace('wb-down')
    const cache = createCache({
      namespace,
      l2: redisStore({ url: server.url }),
      l2Timeout: '200ms',
      writeBehind: { write: async () => {}, closeTimeout: '100ms' },
    })
    try {
      await cache.set('k', 'before')
      await server.kill('SIGKILL')
      await expect(cache.writeBehind('k', 'after')).rejects.toMatchObject({
        code: expect.stringMatching(/^E_/),
      })
      expect(cache.stats().writeBehind.accepted).toBe(0)
      expect(await cache.get('k', { consistency: 'strong', grace: '1m' })).toBe('before')
    } finally {
      await cache.close()
      await server.stop()
    }
  })
})
