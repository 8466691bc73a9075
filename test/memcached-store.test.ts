import memjs from 'memjs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ManualClock } from '../src/clock.js'
import { InvalidOptionError } from '../src/errors.js'
import { type Cache, createCache, memoryBus } from '../src/index.js'
import { KeyNames, ROOT_STAMP, tagStamp } from '../src/keys.js'
import { memcachedStore } from '../src/memcached.js'
import { shardedStore } from '../src/stores/sharded-store.js'
import type { RemoteStore } from '../src/stores/store.js'
import { type MemcachedServer, startMemcached } from '../tools/memcached-server.js'
import { deferred } from './support/deferred.js'
import { faultyBus } from './support/faults.js'
import { settle } from './support/nodes.js'
import { TEST_L2_TIMEOUT, uniqueNamespace } from './support/redis-fleet.js'
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
  // Not about timeouts: memjs's default 0.5 s failed a conformance case once on a loaded machine.
  appClient ??= memjs.Client.create(`127.0.0.1:${servers[0]!.port}`, {
    timeout: 5,
    logger: { log: () => {} },
  })
  return appClient
}

const cases: { name: string; factory: () => RemoteStore; afterClose?: () => Promise<void> }[] = [
  { name: 'memcachedStore({ url })', factory: () => memcachedStore({ url: servers[0]!.url, timeout: '5s' }) },
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
        servers.map((server, i) => ({
          name: `mc-${i}`,
          store: memcachedStore({ url: server.url, timeout: '5s' }),
        })),
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

/**
 * memcached may evict any item under memory pressure, stamps and tombstones included (the README, "Shared
 * tier (L2) and bus"). What each loss does is pinned here, on a memcached of the tests' own: an eviction
 * of one item is a `delete` of it from outside the cache, and losing everything is `flush_all`.
 */
describe('memcachedStore: what losing stamps and tombstones does', () => {
  let own: MemcachedServer
  let raw: memjs.Client
  const open: Cache[] = []
  beforeAll(async () => {
    own = await startMemcached()
    raw = memjs.Client.create(`127.0.0.1:${own.port}`, { logger: { log: () => {} } })
  })
  afterAll(async () => {
    await Promise.allSettled(open.map((cache) => cache.close()))
    raw?.close()
    await own?.stop()
  })

  /** A node: a cache on its own memjs connection to the shared memcached, on the shared bus. */
  function node(namespace: string, bus: ReturnType<typeof memoryBus> | ReturnType<typeof faultyBus>['bus']) {
    const cache = createCache({
      namespace,
      l2: memcachedStore({ url: own.url }),
      bus,
      // Not about timeouts: a healthy memcached on a loaded machine must not open the breaker.
      l2Timeout: TEST_L2_TIMEOUT,
    })
    open.push(cache)
    return cache
  }

  /** Drops one item, as an eviction would. */
  const evict = async (key: string) => expect(await raw.delete(key)).toBe(true)

  it('a lost tag stamp: a node that knows it restores it; until then a node that does not serves what the invalidation removed', async () => {
    const namespace = uniqueNamespace('mc-stamp-lost')
    const bus = memoryBus()
    const [a, b] = [node(namespace, bus), node(namespace, bus)]
    await Promise.all([a.ready(), b.ready()])
    await a.set('k', 'before', { tags: ['t'] })
    expect(await b.get('k')).toBe('before')
    await a.invalidateTags(['t'])
    await settle()
    expect(await a.get('k')).toBeUndefined()
    expect(await b.get('k')).toBeUndefined()

    // The stamp is evicted; the entry written before the invalidation is still in memcached.
    await evict(new KeyNames(namespace).stamp(tagStamp('t')))
    // A node that never learned the stamp reads it as 0: the old entry looks current to it (the
    // documented weakening).
    const late = node(namespace, bus)
    await late.ready()
    expect(await late.get('k')).toBe('before')
    // The nodes that know it still refuse the entry, and the first that reads the stamp from memcached
    // (a set with the tag does) restores it: from then on no node serves the old entry.
    expect(await a.get('k')).toBeUndefined()
    expect(await b.get('k')).toBeUndefined()
    await a.set('other', 1, { tags: ['t'] })
    expect(a.stats().l2.stampsRestored).toBe(1)
    const later = node(namespace, bus)
    await later.ready()
    expect(await later.get('k')).toBeUndefined()
    expect(await later.get('other')).toBe(1)

    // invalidateTags still works on every node after the loss.
    expect(await b.get('other')).toBe(1)
    await b.invalidateTags(['t'])
    await settle()
    for (const cache of [a, b, later]) expect(await cache.get('other')).toBeUndefined()
  })

  it('a lost namespace stamp: clear() raises it above every generation handed out before, so entries written before it stay invalid', async () => {
    const namespace = uniqueNamespace('mc-clear-lost')
    const bus = memoryBus()
    const [a, b] = [node(namespace, bus), node(namespace, bus)]
    await Promise.all([a.ready(), b.ready()])
    await a.clear()
    await a.set('k', 'before')
    expect(await b.get('k')).toBe('before')
    await evict(new KeyNames(namespace).stamp(ROOT_STAMP))
    // A clear() after the loss: memcached's stamp starts again from 0, yet the new generation is a
    // version-clock reading, above the one 'before' was written under.
    await b.clear()
    await settle()
    expect(await a.get('k')).toBeUndefined()
    expect(await b.get('k')).toBeUndefined()
    const late = node(namespace, bus)
    await late.ready()
    expect(await late.get('k')).toBeUndefined()
    await a.set('k', 'after')
    expect(await late.get('k')).toBe('after')
  })

  it('after flush_all (every stamp and entry gone), invalidateTags and clear work on both nodes', async () => {
    const namespace = uniqueNamespace('mc-flush')
    const bus = memoryBus()
    const [a, b] = [node(namespace, bus), node(namespace, bus)]
    await Promise.all([a.ready(), b.ready()])
    await a.set('tagged', 'v1', { tags: ['t'] })
    await a.invalidateTags(['t'])
    await a.clear()
    await a.set('tagged', 'v2', { tags: ['t'] })
    await a.set('plain', 'p')
    expect(await b.get('tagged')).toBe('v2')
    expect(await b.get('plain')).toBe('p')

    await raw.flush()
    // L1 copies outlive the flush on both nodes.
    expect(await b.get('tagged')).toBe('v2')
    await b.invalidateTags(['t'])
    await settle()
    expect(await a.get('tagged')).toBeUndefined()
    expect(await b.get('tagged')).toBeUndefined()
    expect(await a.get('plain')).toBe('p')
    await b.clear()
    await settle()
    expect(await a.get('plain')).toBeUndefined()
    expect(await b.get('plain')).toBeUndefined()
    // And the fleet works on: a write after both is seen by the other node.
    await a.set('tagged', 'v3', { tags: ['t'] })
    expect(await b.get('tagged')).toBe('v3')
  })

  it('a lost tombstone lets a load that began before the delete store its older value, where a kept one refuses it', async () => {
    for (const lose of [false, true]) {
      const namespace = uniqueNamespace(lose ? 'mc-tomb-lost' : 'mc-tomb-kept')
      const shared = memoryBus()
      // B does not hear of the delete before its load ends (a slow bus, or a message it lost).
      const slow = faultyBus(shared)
      const a = node(namespace, shared)
      const b = node(namespace, slow.bus)
      await Promise.all([a.ready(), b.ready()])
      // B's load begins (its version is taken before the loader runs), reads the row as it was, and is
      // held up. Waiting for the loader itself, not for a few milliseconds: on a loaded machine B's first
      // read of memcached could take longer, and A's delete would then come before B's version.
      const release = deferred<void>()
      const loaderStarted = deferred<void>()
      const loading = b.getOrSet('k', async () => {
        loaderStarted.resolve()
        await release.promise
        return 'row v1'
      })
      await loaderStarted.promise
      // Meanwhile A updates the row and deletes the cached copy: a tombstone with a higher version.
      slow.cut('nothing')
      await a.delete('k')
      if (lose) await evict(new KeyNames(namespace).entry('k'))
      release.resolve()
      expect(await loading).toBe('row v1') // its caller gets what it loaded, either way
      // What a node that reads memcached afterwards gets: nothing while the tombstone is there; the
      // older row once it is lost (until its TTL, or the next write of the key).
      const late = node(namespace, shared)
      await late.ready()
      expect(await late.get('k'), lose ? 'tombstone lost' : 'tombstone kept').toBe(
        lose ? 'row v1' : undefined,
      )
      // The next write of the key orders after both, whatever was lost.
      await a.set('k', 'row v2')
      await settle()
      expect(await late.get('k')).toBe('row v2')
    }
  })
})
