/**
 * The distributed lease (lock: 'distributed') through the cache API, on the embedded store and bus, with
 * fake timers for its waits: the poll arithmetic, what a waiter does past waitTimeout, when the lease is
 * released, and what it does when L2 cannot be asked (issue 16, found by mutation testing).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  type Cache,
  type CacheOptions,
  createCache,
  ManualClock,
  memoryBus,
  memoryStore,
  type RemoteStore,
} from '../../src/index.js'
import type { CacheRuntime } from '../../src/runtime.js'
import { DistributedLease } from '../../src/stampede/lease.js'
import { deferred } from '../support/deferred.js'

const caches: Cache[] = []
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
})
afterEach(async () => {
  vi.useRealTimers()
  await Promise.all(caches.splice(0).map((cache) => cache.close()))
})

function fleet(
  lock: CacheOptions['distributedLock'],
  l2Wrap: (store: RemoteStore) => RemoteStore = (s) => s,
) {
  const clock = new ManualClock()
  const l2 = memoryStore({ clock })
  const bus = memoryBus()
  const node = (options: Partial<CacheOptions> = {}) => {
    const cache = createCache({
      namespace: 'fleet',
      clock,
      l2,
      bus,
      fleet: false,
      lock: 'distributed',
      distributedLock: lock,
      ...options,
    })
    caches.push(cache)
    return cache
  }
  return {
    clock,
    l2,
    bus,
    node,
    wrapped: (options: Partial<CacheOptions> = {}) => node({ l2: l2Wrap(l2), ...options }),
  }
}

/** Lets promise callbacks run without moving the fake time. */
const flush = () => vi.advanceTimersByTimeAsync(0)

/** A node holding the lease of `key` with a load that finishes when `finish` is called. */
async function holder(cache: Cache, key: string) {
  const load = deferred<string>()
  const answer = cache.getOrSet(key, () => load.promise)
  await flush()
  expect(cache.stats().loads.leasesAcquired).toBe(1)
  return { answer, finish: load.resolve, fail: load.reject }
}

describe('DistributedLease waits', () => {
  it('polls every pollInterval and waits the last poll only for what is left of waitTimeout', async () => {
    const { node } = fleet({ pollInterval: '100ms', waitTimeout: '250ms', leaseTtl: '1h' })
    const a = node()
    const b = node()
    const held = await holder(a, 'k')
    const loader = vi.fn(async () => 'from b')
    const waiter = b.getOrSet('k', loader)
    await vi.advanceTimersByTimeAsync(249)
    expect(loader).not.toHaveBeenCalled()
    await vi.advanceTimersByTimeAsync(1)
    expect(loader).toHaveBeenCalledTimes(1)
    expect(await waiter).toBe('from b')
    // One wait counted for the caller, not one per poll.
    expect(b.stats().loads.leaseWaits).toBe(1)
    expect(b.stats().loads.leasesAcquired).toBe(0)
    held.finish('from a')
    expect(await held.answer).toBe('from a')
  })

  it('a waiter that the bus did not tell finds the holder value by polling L2', async () => {
    const { node } = fleet({ pollInterval: '100ms', waitTimeout: '10s', leaseTtl: '1h' })
    const a = node({ bus: memoryBus() }) // a's invalidation never reaches b
    const b = node()
    const held = await holder(a, 'k')
    const loader = vi.fn(async () => 'from b')
    const waiter = b.getOrSet('k', loader)
    await flush()
    held.finish('from a')
    expect(await held.answer).toBe('from a')
    await vi.advanceTimersByTimeAsync(100)
    expect(await waiter).toBe('from a')
    expect(loader).not.toHaveBeenCalled()
  })

  it('a waiter woken by the bus reads the value at once, before its poll is due', async () => {
    const { node } = fleet({ pollInterval: '1h', waitTimeout: '2h', leaseTtl: '1h' })
    const a = node()
    const b = node()
    const held = await holder(a, 'k')
    let answered: string | undefined
    const waiter = b
      .getOrSet('k', async () => 'from b')
      .then((value) => {
        answered = value
        return value
      })
    await flush()
    held.finish('from a')
    await held.answer
    await flush()
    expect(answered).toBe('from a')
    expect(await waiter).toBe('from a')
  })
})

describe('DistributedLease past waitTimeout', () => {
  const options = { pollInterval: '100ms', waitTimeout: '200ms', leaseTtl: '1h' } as const
  const patient = { loaderTimeout: { soft: '1h' } } as const

  async function withStaleValue(onTimeout: 'load' | 'stale') {
    const f = fleet({ ...options, onTimeout })
    const a = f.node()
    const b = f.node()
    await b.set('k', 'old', { ttl: '1s', grace: '1h' })
    f.clock.advance(2000)
    const load = deferred<string>()
    const held = a.getOrSet('k', () => load.promise, patient)
    await flush()
    const loader = vi.fn(async () => 'from b')
    const waiter = b.getOrSet('k', loader, patient)
    await vi.advanceTimersByTimeAsync(200)
    const answer = await waiter
    load.resolve('from a')
    await held
    return { answer, loader }
  }

  it("onTimeout: 'stale' serves the waiter's stale value instead of loading", async () => {
    const { answer, loader } = await withStaleValue('stale')
    expect(answer).toBe('old')
    expect(loader).not.toHaveBeenCalled()
  })

  it("onTimeout: 'load' loads although the waiter has a stale value", async () => {
    const { answer, loader } = await withStaleValue('load')
    expect(answer).toBe('from b')
    expect(loader).toHaveBeenCalledTimes(1)
  })

  it("onTimeout: 'stale' with nothing stale to serve loads", async () => {
    const f = fleet({ ...options, onTimeout: 'stale' })
    const a = f.node()
    const b = f.node()
    const held = await holder(a, 'k')
    const waiter = b.getOrSet('k', async () => 'from b')
    await vi.advanceTimersByTimeAsync(200)
    expect(await waiter).toBe('from b')
    held.finish('from a')
    await held.answer
  })
})

describe('DistributedLease release', () => {
  it('the holder releases the lease once its value has landed', async () => {
    const f = fleet({ leaseTtl: '1h' })
    const a = f.node()
    expect(await a.getOrSet('k', async () => 'v')).toBe('v')
    await flush()
    expect(await f.l2.acquireLease!('fleet#lease:k', 'probe', 1000)).toBe(true)
  })

  it('a holder whose loader fails releases the lease: the next node loads at once', async () => {
    const f = fleet({ leaseTtl: '1h', pollInterval: '1h', waitTimeout: '2h' })
    const a = f.node()
    const b = f.node()
    await expect(a.getOrSet('k', () => Promise.reject(new Error('down')))).rejects.toThrow('down')
    await flush()
    expect(await b.getOrSet('k', async () => 'from b')).toBe('from b')
    expect(b.stats().loads.leasesAcquired).toBe(1)
    expect(b.stats().loads.leaseWaits).toBe(0)
  })

  it('a node that gets the lease after the previous holder wrote serves that value instead of loading', async () => {
    let writer: Cache | undefined
    const f = fleet({ leaseTtl: '1h' }, (store) => ({
      ...bound(store),
      // Between this node's L2 miss and its lease, another node writes the key.
      acquireLease: async (key, token, ttl) => {
        await writer?.set('k', 'written meanwhile')
        return store.acquireLease!(key, token, ttl)
      },
    }))
    writer = f.node({ bus: memoryBus() })
    const b = f.wrapped()
    const loader = vi.fn(async () => 'from b')
    expect(await b.getOrSet('k', loader)).toBe('written meanwhile')
    expect(loader).not.toHaveBeenCalled()
    expect(b.stats().loads.leasesAcquired).toBe(1)
  })
})

describe('DistributedLease without L2', () => {
  it('loads by itself when the lease cannot be asked for, and counts the L2 error', async () => {
    const f = fleet({ leaseTtl: '1h' }, (store) => ({
      ...bound(store),
      acquireLease: () => Promise.reject(new Error('unreachable')),
    }))
    const b = f.wrapped()
    const errors = b.stats().l2.errors
    expect(await b.getOrSet('k', async () => 'alone')).toBe('alone')
    expect(b.stats().l2.errors).toBeGreaterThan(errors)
    expect(b.stats().loads.leasesAcquired).toBe(0)
  })
})

describe('DistributedLease.waitForWrite', () => {
  const lease = () => new DistributedLease(undefined as unknown as CacheRuntime)

  it('resolves after ms, or at once when woken; waiting() counts pending waits per key', async () => {
    const l = lease()
    let first = false
    let second = false
    void l.waitForWrite('k', 100).then(() => {
      first = true
    })
    void l.waitForWrite('k', 1000).then(() => {
      second = true
    })
    void l.waitForWrite('other', 1000)
    expect(l.waiting('k')).toBe(2)
    await vi.advanceTimersByTimeAsync(100)
    expect(first).toBe(true)
    expect(second).toBe(false)
    expect(l.waiting('k')).toBe(1)
    // The wait left after the first timed out is still woken.
    l.wake('k')
    await flush()
    expect(second).toBe(true)
    expect(l.waiting('k')).toBe(0)
    expect(l.waiting('other')).toBe(1)
    l.wake('nobody') // no waiters: nothing happens
    expect(l.waiting('other')).toBe(1)
    l.wake('other')
    expect(vi.getTimerCount()).toBe(0)
  })
})

/** The store's methods bound to it, so that a spread copy can override some. */
function bound(store: RemoteStore): RemoteStore {
  const copy: Record<string, unknown> = { name: store.name }
  const proto = Object.getPrototypeOf(store) as object
  for (const key of Object.getOwnPropertyNames(proto)) {
    const value = (store as unknown as Record<string, unknown>)[key]
    if (key !== 'constructor' && typeof value === 'function') copy[key] = value.bind(store)
  }
  for (const [key, value] of Object.entries(store)) if (!(key in copy)) copy[key] = value
  return copy as unknown as RemoteStore
}
