import { createClient, createCluster, RESP_TYPES } from 'redis'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { CorruptEntryError, InvalidOptionError } from '../src/errors.js'
import type { NodeRedisClient, NodeRedisCluster } from '../src/redis/connection.js'
import { memoryStore } from '../src/stores/memory-store.js'
import { redisStore } from '../src/stores/redis-store.js'
import type { RemoteStore } from '../src/stores/store.js'
import { freePort, killKeyOwner, type RedisServer, startCluster, startRedis } from '../tools/redis-server.js'
import { gatedStore } from './support/faults.js'
import { settlesAtOnce, settlesBeforeTimer } from './support/order.js'
import { withOwnRedis } from './support/own-redis.js'
import { eventually, type StoreConformanceOptions, storeConformance } from './support/store-conformance.js'

const redisUrl = inject('redisUrl')
const clusterNodes = inject('redisCluster')

/** A client the application owns, passed with `{ client }`: stores must leave it open. */
let appClient: NodeRedisClient | undefined
async function applicationClient(): Promise<NodeRedisClient> {
  if (appClient === undefined) {
    const client = createClient({ url: redisUrl }) as unknown as NodeRedisClient
    client.on('error', () => {})
    await client.connect()
    appClient = client
  }
  return appClient
}
/** The same for a cluster client. */
let appCluster: NodeRedisCluster | undefined
async function applicationCluster(): Promise<NodeRedisCluster> {
  if (appCluster === undefined) {
    const cluster = createCluster({
      rootNodes: [{ socket: clusterNodes[0]! }],
    }) as unknown as NodeRedisCluster
    cluster.on('error', () => {})
    await cluster.connect()
    appCluster = cluster
  }
  return appCluster
}
afterAll(async () => {
  await appClient?.close()
  await appCluster?.close()
})

interface StoreCase {
  name: string
  factory: () => RemoteStore | Promise<RemoteStore>
  options?: StoreConformanceOptions
}

/** A store without leases (a store of a third party may have none): memoryStore's other operations. */
function withoutLeases(): RemoteStore {
  const { acquireLease: _acquire, releaseLease: _release, ...rest } = gatedStore(memoryStore()).store
  return rest
}

const cases: StoreCase[] = [
  { name: 'memoryStore()', factory: () => memoryStore(), options: { stamped: true } },
  { name: 'a store without leases', factory: withoutLeases, options: { leases: false, stamped: true } },
  {
    name: 'redisStore({ url })',
    factory: () => redisStore({ url: redisUrl }),
    options: { reconnects: true, stamped: true },
  },
  {
    name: 'redisStore({ cluster })',
    factory: () => redisStore({ cluster: clusterNodes.slice(0, 1) }),
    options: { reconnects: true },
  },
  {
    name: 'redisStore({ client })',
    factory: async () => redisStore({ client: await applicationClient() }),
    options: {
      reconnects: true,
      stamped: true,
      afterClose: async () => {
        const client = await applicationClient()
        expect(client.isOpen).toBe(true)
        expect(await client.ping()).toBe('PONG')
      },
    },
  },
  {
    name: 'redisStore({ client: cluster })',
    factory: async () => redisStore({ client: await applicationCluster() }),
    options: {
      reconnects: true,
      afterClose: async () => {
        const cluster = await applicationCluster()
        expect(cluster.isOpen).toBe(true)
        expect(await cluster.sendCommand('k', true, ['EXISTS', 'k'])).toBeTypeOf('number')
      },
    },
  },
]

describe.each(cases)('$name', ({ name, factory, options }) => {
  storeConformance(name, factory, options)
})

describe('redisStore specifics', () => {
  it('names itself after the deployment', () => {
    expect(redisStore({ url: redisUrl }).name).toBe('redis')
    expect(redisStore({ cluster: clusterNodes }).name).toBe('redis-cluster')
  })

  it('stores one string per key: 16 hex digits of version, then the bytes', async () => {
    const store = redisStore({ url: redisUrl })
    const client = await applicationClient()
    const key = `layout:${Date.now()}:${Math.random()}`
    try {
      await store.set(key, Buffer.from([0x00, 0xff]), 0x1234abcd, 60_000)
      const buffers = client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer })
      const raw = await buffers.get(key)
      expect(Buffer.isBuffer(raw)).toBe(true)
      expect(
        (raw as unknown as Buffer).equals(
          Buffer.concat([Buffer.from('000000001234abcd'), Buffer.from([0, 255])]),
        ),
      ).toBe(true)
      const ttl = await client.pTTL(key)
      expect(ttl).toBeGreaterThan(50_000)
      expect(ttl).toBeLessThanOrEqual(60_000)
      // a tombstone: 't' and 15 hex digits, nothing else
      expect(await store.delete(key, 0x1234abcd, 30_000)).toBe(0x1234abce)
      expect(((await buffers.get(key)) as unknown as Buffer).toString('latin1')).toBe('t00000001234abce')
    } finally {
      await client.del(key)
      await store.close()
    }
  })

  it('stores an ordered write as its mark, 15 hex digits of version, 16 of order, then the bytes', async () => {
    const store = redisStore({ url: redisUrl })
    const client = await applicationClient()
    const key = `layout-ordered:${Date.now()}:${Math.random()}`
    try {
      await store.setIf!(key, Buffer.from([0x00, 0xff]), 0x1234abcd, 60_000, {
        order: { domain: 'queue', value: 0xabn },
        tombstoneTtlMs: 60_000,
      })
      const buffers = client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer })
      const raw = (await buffers.get(key)) as unknown as Buffer
      expect(
        raw.equals(Buffer.concat([Buffer.from('q00000001234abcd00000000000000ab'), Buffer.from([0, 255])])),
      ).toBe(true)
      expect(await store.get(key)).toMatchObject({ version: 0x1234abcd })
    } finally {
      await client.del(key)
      await store.close()
    }
  })

  it('reports an entry without a version header as corrupt', async () => {
    const store = redisStore({ url: redisUrl })
    const client = await applicationClient()
    const key = `corrupt:${Date.now()}:${Math.random()}`
    try {
      await client.set(key, 'not versioned')
      await expect(store.get(key)).rejects.toBeInstanceOf(CorruptEntryError)
      // a write heals it
      expect(await store.set(key, Buffer.from('ok'), 1, 60_000)).toBe(1)
      expect((await store.get(key))?.version).toBe(1)
    } finally {
      await client.del(key)
      await store.close()
    }
  })

  it('reads garbage stamps as NaN and bumps them to the proposal; a key of another type is corrupt until written', async () => {
    const store = redisStore({ url: redisUrl })
    const client = await applicationClient()
    const base = `garbage:${Date.now()}:${Math.random()}`
    const now = 1_700_000_000_000 * 4096
    const stamps = ['abc', '-5', '1e300', '12.5', '', '99999999999999999999'].map((text, i) => ({
      key: `${base}:s${i}`,
      text,
    }))
    const hashKey = `${base}:hash`
    try {
      for (const { key, text } of stamps) await client.set(key, text)
      await client.hSet(hashKey, 'f', 'v')
      const read = await store.getStamps(stamps.map((s) => s.key))
      // '' is what a failed write could leave: no digits is garbage too, not 0.
      expect(read.map((n) => Number.isNaN(n))).toEqual([true, true, true, true, true, true])
      expect(
        await store.bumpStamps(
          stamps.map((s) => s.key),
          60_000,
          now,
        ),
      ).toEqual(stamps.map(() => now))
      // MGET reads another type as missing; the bump replaces it.
      expect(await store.getStamps([hashKey])).toEqual([0])
      expect(await store.bumpStamps([hashKey], 60_000, now)).toEqual([now])
      await client.del(hashKey)
      await client.hSet(hashKey, 'f', 'v')
      await expect(store.get(hashKey)).rejects.toBeInstanceOf(CorruptEntryError)
      expect(await store.set(hashKey, Buffer.from('ok'), 3, 60_000)).toBe(3)
      expect((await store.get(hashKey))?.version).toBe(3)
    } finally {
      await client.del([hashKey, ...stamps.map((s) => s.key)])
      await store.close()
    }
  })

  it('reloads its scripts after SCRIPT FLUSH (NOSCRIPT falls back to EVAL)', () =>
    withOwnRedis(
      (server) => redisStore({ url: server.url }),
      async (server, store) => {
        expect(await store.set('k', Buffer.from('a'), 1, 60_000)).toBe(1)
        const admin = createClient({ url: server.url })
        await admin.connect()
        await admin.scriptFlush()
        await admin.close()
        expect(await store.set('k', Buffer.from('b'), 1, 60_000)).toBe(2)
        expect(await store.setIfNewer('k', Buffer.from('c'), 1, 60_000)).toBe(2)
        expect(await store.bumpStamps(['s'], 60_000)).toEqual([1])
        expect(await store.delete('k', 2, 60_000)).toBe(3)
        expect(await store.releaseLease?.('lease', 'token')).toBe(false)
        expect(await store.get('k')).toBeUndefined()
      },
    ))

  it('fails fast while Redis is down and recovers when it is back', () =>
    withOwnRedis(
      (server) => redisStore({ url: server.url, maxReconnectDelay: 200 }),
      async (server, store) => {
        await store.set('k', Buffer.from('v'), 1, 60_000)
        await server.kill('SIGKILL')
        for (let i = 0; i < 3; i++) {
          const started = Date.now()
          await expect(store.get('k')).rejects.toThrow()
          await expect(store.set('k', Buffer.from('w'), 2, 60_000)).rejects.toThrow()
          await expect(store.getStamps(['a', 'b'])).rejects.toThrow()
          expect(Date.now() - started).toBeLessThan(500)
        }
        await server.start()
        // the data died with the server (no persistence), but the store is usable again
        await eventually(() => answers(store), 5000, 'the store to reconnect')
        expect(await store.set('k', Buffer.from('again'), 3, 60_000)).toBe(3)
      },
    ))

  it('fails within connectTimeout when Redis was never reachable, then at once; close() does not hang', async () => {
    const port = await freePort()
    const store = redisStore({ url: `redis://127.0.0.1:${port}`, connectTimeout: 300 })
    // Within connectTimeout: before a timer of twice that, started with the call, fires (an ordering, which
    // a loaded machine delays on both sides alike, not a wall-clock bound).
    const first = store.get('k')
    expect(await settlesBeforeTimer(first, 2 * 300)).toBe(true)
    await expect(first).rejects.toThrow(/cannot reach Redis/)
    // Then at once: the next call fails without waiting for I/O or a timer.
    const again = store.get('k')
    expect(await settlesAtOnce(again)).toBe(true)
    await expect(again).rejects.toThrow(/cannot reach Redis/)
    // close() does not wait for a connect attempt to time out.
    const closing = store.close()
    expect(await settlesBeforeTimer(closing, 300)).toBe(true)
    await closing
  })

  it('connects once Redis comes up after a failed first attempt', () =>
    withOwnRedis(
      (server) => redisStore({ url: server.url, connectTimeout: 200, maxReconnectDelay: 100 }),
      async (server, store) => {
        await server.kill('SIGKILL')
        await expect(store.get('k')).rejects.toThrow()
        await server.start()
        await eventually(() => answers(store), 5000, 'the first connection')
      },
    ))

  it('cluster: fails within connectTimeout when no node answers; close() does not hang', async () => {
    const port = await freePort()
    const store = redisStore({ cluster: [{ host: '127.0.0.1', port }], connectTimeout: 300 })
    const first = store.get('k')
    expect(await settlesBeforeTimer(first, 2 * 300)).toBe(true)
    await expect(first).rejects.toThrow(/cannot reach the Redis Cluster/)
    await store.close()
  })

  it('cluster: reaches the replica that took over from a dead master', async () => {
    const cluster = await startCluster({ masters: 3, replicasPerMaster: 1 })
    const store = redisStore({ cluster: cluster.nodes, maxReconnectDelay: 200 })
    try {
      const key = 'failover'
      expect(await store.set(key, Buffer.from('before'), 1, 60_000)).toBe(1)
      await killKeyOwner(cluster, key)
      await expect(store.get(key)).rejects.toThrow()
      // node-redis alone never rediscovers here (no MOVED from a dead node); the store refreshes the topology
      await eventually(
        () =>
          store.set(key, Buffer.from('after'), 1, 60_000).then(
            () => true,
            () => false,
          ),
        20_000,
        'the replica to take over',
      )
      expect(Buffer.from((await store.get(key))!.bytes).toString()).toBe('after')
    } finally {
      await store.close()
      await cluster.stop()
    }
  })

  it('rejects operations after close()', async () => {
    const store = redisStore({ url: redisUrl })
    await store.get('k')
    await store.close()
    await expect(store.get('k')).rejects.toMatchObject({ code: 'E_CACHE_CLOSED' })
  })

  it('rejects versions and TTLs Redis cannot represent', async () => {
    const store = redisStore({ url: redisUrl })
    try {
      await expect(store.set('k', Buffer.from('x'), 2 ** 53, 1000)).rejects.toBeInstanceOf(RangeError)
      await expect(store.set('k', Buffer.from('x'), -1, 1000)).rejects.toBeInstanceOf(RangeError)
      await expect(store.set('k', Buffer.from('x'), 1.5, 1000)).rejects.toBeInstanceOf(RangeError)
      await expect(store.set('k', Buffer.from('x'), 1, Number.POSITIVE_INFINITY)).rejects.toBeInstanceOf(
        RangeError,
      )
    } finally {
      await store.close()
    }
  })
})

describe('redisStore options', () => {
  const invalid = (options: unknown, option: string) => {
    try {
      redisStore(options as never)
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidOptionError)
      expect((error as InvalidOptionError).code).toBe('E_INVALID_OPTION')
      expect((error as InvalidOptionError).option).toBe(option)
      return
    }
    throw new Error(`expected ${JSON.stringify(options)} to be rejected`)
  }

  it('names the offending option', () => {
    invalid(undefined, 'options')
    invalid({}, 'url')
    invalid({ url: 42 }, 'url')
    invalid({ url: 'http://localhost:6379' }, 'url')
    invalid({ url: 'not a url' }, 'url')
    invalid({ url: 'redis://localhost:6379/abc' }, 'url')
    invalid({ url: redisUrl, cluster: clusterNodes }, 'cluster')
    invalid({ cluster: [] }, 'cluster')
    invalid({ cluster: [{ host: '', port: 1 }] }, 'cluster[0].host')
    invalid(
      {
        cluster: [
          { host: 'a', port: 1 },
          { host: 'b', port: 70000 },
        ],
      },
      'cluster[1].port',
    )
    invalid({ cluster: clusterNodes, maxCommandRedirections: -1 }, 'maxCommandRedirections')
    invalid({ client: {} }, 'client')
    invalid({ url: redisUrl, connectTimeout: 0 }, 'connectTimeout')
    invalid({ url: redisUrl, maxReconnectDelay: Number.NaN }, 'maxReconnectDelay')
    invalid({ url: redisUrl, socket: 'tls' }, 'socket')
    invalid({ url: redisUrl, nodeAddressMap: {} }, 'nodeAddressMap')
    invalid({ cluster: clusterNodes, password: 42 }, 'password')
    invalid({ client: createClient(), password: 'x' }, 'password')
  })

  it('accepts TLS and ACL through the URL and socket/username/password for a cluster', () => {
    expect(redisStore({ url: 'rediss://user:secret@redis.example:6380/2' }).name).toBe('redis')
    expect(
      redisStore({
        cluster: [{ host: 'redis.example', port: 7000 }],
        username: 'user',
        password: 'secret',
        socket: { tls: true, rejectUnauthorized: false },
      }).name,
    ).toBe('redis-cluster')
  })

  it('authenticates with ACL credentials from the URL', async () => {
    let server: RedisServer | undefined
    let store: RemoteStore | undefined
    try {
      server = await startRedis({
        args: ['--user', 'cache', 'on', '>s3cret', '~*', '&*', '+@all', '--user', 'default', 'off'],
      })
      store = redisStore({ url: `redis://cache:s3cret@127.0.0.1:${server.port}` })
      expect(await store.set('k', Buffer.from('v'), 1, 60_000)).toBe(1)
      expect((await store.get('k'))?.version).toBe(1)
      const denied = redisStore({ url: `redis://cache:wrong@127.0.0.1:${server.port}`, connectTimeout: 300 })
      await expect(denied.get('k')).rejects.toThrow()
      await denied.close()
    } finally {
      await store?.close()
      await server?.stop()
    }
  })
})

/** Whether the store answers a read now. */
function answers(store: RemoteStore): Promise<boolean> {
  return store.get('k').then(
    () => true,
    () => false,
  )
}
