import memjs from 'memjs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ManualClock } from '../src/clock.js'
import { InvalidOptionError } from '../src/errors.js'
import { memcachedStore } from '../src/memcached.js'
import { shardedStore } from '../src/stores/sharded-store.js'
import type { RemoteStore } from '../src/stores/store.js'
import { type MemcachedServer, startMemcached } from '../tools/memcached-server.js'
import { eventually, storeConformance } from './support/store-conformance.js'

let servers: MemcachedServer[] = []
let appClient: memjs.Client | undefined
beforeAll(async () => {
  servers = await Promise.all([startMemcached(), startMemcached(), startMemcached()])
})
afterAll(async () => {
  appClient?.close()
  await Promise.all(servers.map((server) => server.stop()))
})

function applicationClient(): memjs.Client {
  appClient ??= memjs.Client.create(`127.0.0.1:${servers[0]!.port}`, { logger: { log: () => {} } })
  return appClient
}

const cases: { name: string; factory: () => RemoteStore; afterClose?: () => Promise<void> }[] = [
  { name: 'memcachedStore({ url })', factory: () => memcachedStore({ url: servers[0]!.url }) },
  {
    name: 'memcachedStore({ client })',
    factory: () => memcachedStore({ client: applicationClient() }),
    afterClose: async () => {
      // the application's client still works
      await applicationClient().set('still-open', 'yes', {})
      expect((await applicationClient().get('still-open')).value?.toString()).toBe('yes')
    },
  },
  {
    name: 'shardedStore over 3 memcached servers',
    factory: () =>
      shardedStore(
        servers.map((server, i) => ({ name: `mc-${i}`, store: memcachedStore({ url: server.url }) })),
      ),
  },
]

describe.each(cases)('$name', ({ name, factory, afterClose }) => {
  storeConformance(name, factory, { afterClose })
})

describe('memcachedStore specifics', () => {
  it('stores keys memcached cannot take under their hash, distinct from each other', async () => {
    const store = memcachedStore({ url: servers[1]!.url })
    try {
      const keys = [
        'a key with spaces',
        'x'.repeat(1024),
        `${'x'.repeat(1023)}y`,
        'tab\tkey',
        '~tilde',
        'é'.repeat(150),
      ]
      for (const [i, key] of keys.entries())
        expect(await store.set(key, Buffer.from(`v${i}`), i + 1, 60_000)).toBe(i + 1)
      for (const [i, key] of keys.entries()) {
        const entry = await store.get(key)
        expect(entry?.version).toBe(i + 1)
        expect(Buffer.from(entry!.bytes).toString()).toBe(`v${i}`)
      }
    } finally {
      await store.close()
    }
  })

  it('orders concurrent writes of one key from separate clients by compare-and-swap', async () => {
    const stores = [0, 1, 2, 3].map(() => memcachedStore({ url: servers[2]!.url }))
    try {
      const key = `contended:${Date.now()}`
      const versions = await Promise.all(
        Array.from({ length: 40 }, (_, i) => stores[i % 4]!.set(key, Buffer.from(`w${i}`), 1, 60_000)),
      )
      // every write got its own version: 1..40, none lost
      expect([...versions].sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1))
      expect((await stores[0]!.get(key))?.version).toBe(40)
      const bumps = await Promise.all(
        Array.from({ length: 40 }, (_, i) => stores[i % 4]!.bumpStamps([`${key}:stamp`], 60_000)),
      )
      expect(bumps.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1))
    } finally {
      await Promise.all(stores.map((store) => store.close()))
    }
  })

  it('keeps expiry by the writing node’s clock, to the millisecond (memcached counts whole seconds)', async () => {
    const clock = new ManualClock(Date.now())
    const writer = memcachedStore({ url: servers[0]!.url, clock })
    const later = new ManualClock(clock.now() + 250)
    const reader = memcachedStore({ url: servers[0]!.url, clock: later })
    try {
      const key = `clock:${Date.now()}`
      await writer.set(key, Buffer.from('x'), 1, 300)
      expect((await reader.get(key))?.version).toBe(1)
      later.advance(50) // 300 ms after the write by the writer's clock
      expect(await reader.get(key)).toBeUndefined()
      // expired, it no longer orders writes
      expect(await reader.set(key, Buffer.from('y'), 0, 60_000)).toBe(0)
    } finally {
      await writer.close()
      await reader.close()
    }
  })

  it('fails fast while memcached is down and works again once it is back (empty)', async () => {
    const own = await startMemcached()
    const store = memcachedStore({ url: own.url, timeout: 200 })
    try {
      await store.set('k', Buffer.from('v'), 1, 60_000)
      await own.kill('SIGKILL')
      await expect(store.get('k')).rejects.toThrow()
      await own.start()
      await eventually(
        () =>
          store.get('k').then(
            (entry) => entry === undefined,
            () => false,
          ),
        5_000,
        'memcached to answer again',
      )
    } finally {
      await store.close()
      await own.stop()
    }
  })

  it('rejects versions and TTLs it cannot store, and validates its options', async () => {
    const store = memcachedStore({ url: servers[0]!.url })
    await expect(store.set('k', Buffer.from('x'), 2 ** 53, 1000)).rejects.toBeInstanceOf(RangeError)
    await expect(store.delete('k', -1, 1000)).rejects.toBeInstanceOf(RangeError)
    await expect(store.set('k', Buffer.from('x'), 1, Number.POSITIVE_INFINITY)).rejects.toBeInstanceOf(
      RangeError,
    )
    await store.close()
    await expect(store.get('k')).rejects.toMatchObject({ code: 'E_CACHE_CLOSED' })
    const invalid = (options: unknown, option: string) => {
      try {
        memcachedStore(options as never)
      } catch (error) {
        expect(error).toBeInstanceOf(InvalidOptionError)
        expect((error as InvalidOptionError).option).toBe(option)
        return
      }
      throw new Error(`expected ${JSON.stringify(options)} to be rejected`)
    }
    invalid(undefined, 'options')
    invalid({}, 'url')
    invalid({ url: 'redis://127.0.0.1:6379' }, 'url')
    invalid({ url: 'not a url' }, 'url')
    invalid({ client: {} }, 'client')
    invalid({ url: servers[0]!.url, timeout: 0 }, 'timeout')
  })
})
