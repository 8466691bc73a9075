import { afterEach, describe, expect, it } from 'vitest'
import {
  type Cache,
  type CacheOptions,
  createCache,
  ManualClock,
  memoryBus,
  memoryStore,
  UnconfirmedReadError,
} from '../src/index.js'
import { CircuitOpenError } from '../src/remote/circuit-breaker.js'
import type { RemoteStore } from '../src/stores/store.js'
import { type FaultyBus, faultyBus, type GatedStore, gatedStore } from './support/faults.js'
import { settle } from './support/nodes.js'

/** Node A writes; node B reads through a store wrapper that counts its calls and a bus that can be cut. */
function twoNodes(options: CacheOptions = {}) {
  const clock = new ManualClock()
  const shared = memoryStore({ clock })
  const bus = memoryBus()
  const bStore: GatedStore = gatedStore(shared)
  const bBus: FaultyBus = faultyBus(bus)
  const base = { namespace: 'strong', clock, circuitBreaker: false as const, ...options }
  const a = createCache({ ...base, l2: shared, bus })
  const b = createCache({ ...base, l2: bStore.store, bus: bBus.bus })
  return { clock, shared, a, b, bStore, bBus, caches: [a, b] }
}

let caches: Cache[] = []
afterEach(async () => {
  await Promise.all(caches.map((cache) => cache.close()))
  caches = []
})

describe("get(key, { consistency: 'strong' })", () => {
  it('returns the new value where a lost invalidation left an old one in L1, which a plain get still serves', async () => {
    const nodes = twoNodes()
    caches = nodes.caches
    const { a, b, bBus } = nodes
    await Promise.all([a.ready(), b.ready()])
    await a.set('user:1', { name: 'old' })
    expect(await b.get('user:1')).toEqual({ name: 'old' }) // now in B's L1
    bBus.cut('nothing')
    await a.set('user:1', { name: 'new' })
    await settle()
    expect(bBus.dropped).toBe(1)
    expect(await b.get('user:1')).toEqual({ name: 'old' }) // the lost message: plain reads are stale
    expect(await b.get('user:1', { consistency: 'strong' })).toEqual({ name: 'new' })
    // ...and the strong read refreshed L1: plain reads have the new value too
    expect(await b.get('user:1')).toEqual({ name: 'new' })
  })

  it('serves a confirmed L1 entry after one head round trip, without reading the value', async () => {
    const nodes = twoNodes()
    caches = nodes.caches
    const { a, b, bStore } = nodes
    await Promise.all([a.ready(), b.ready()])
    await a.set('k', 'v')
    expect(await b.get('k')).toBe('v')
    const gets = bStore.calls.get ?? 0
    for (let i = 0; i < 3; i++) expect(await b.get('k', { consistency: 'strong' })).toBe('v')
    expect(bStore.calls.head).toBe(3)
    expect(bStore.calls.get ?? 0).toBe(gets)
    expect(b.stats().strong).toEqual({ reads: 3, confirmed: 3, unconfirmed: 0 })
  })

  it('does not serve an entry that another node deleted, or invalidated by tag, unheard', async () => {
    const nodes = twoNodes()
    caches = nodes.caches
    const { a, b, bBus } = nodes
    await Promise.all([a.ready(), b.ready()])
    await a.set('deleted', 1)
    await a.set('tagged', 2, { tags: ['t'] })
    await a.set('cleared', 3)
    const ns = a.namespace('child')
    await ns.set('x', 4)
    expect(await b.get('deleted')).toBe(1)
    expect(await b.get('tagged')).toBe(2)
    expect(await b.namespace('child').get('x')).toBe(4)
    bBus.cut('nothing')
    await a.delete('deleted')
    await a.invalidateTags(['t'])
    await ns.clear()
    await settle()
    expect(await b.get('tagged')).toBe(2) // stale, as plain reads go
    expect(await b.get('deleted', { consistency: 'strong' })).toBeUndefined()
    expect(await b.get('tagged', { consistency: 'strong' })).toBeUndefined()
    expect(await b.namespace('child').get('x', { consistency: 'strong' })).toBeUndefined()
    expect(await b.get('cleared', { consistency: 'strong' })).toBe(3)
  })

  it('confirms with L2 even while the bus is down, when a plain read would not use L1 at all', async () => {
    const nodes = twoNodes()
    caches = nodes.caches
    const { a, b, bBus, bStore } = nodes
    await Promise.all([a.ready(), b.ready()])
    await a.set('k', 'v1')
    expect(await b.get('k')).toBe('v1')
    bBus.cut('disconnected')
    expect(b.stats().bus.connected).toBe(false)
    expect(await b.get('k', { consistency: 'strong' })).toBe('v1')
    expect(b.stats().strong.confirmed).toBe(1)
    await a.set('k', 'v2')
    await settle()
    const gets = bStore.calls.get ?? 0
    expect(await b.get('k', { consistency: 'strong' })).toBe('v2')
    expect(bStore.calls.get).toBe(gets + 1)
  })

  it('fails with E_UNCONFIRMED_READ when L2 cannot answer, and answers from L1 within the grace given', async () => {
    const nodes = twoNodes({ ttl: '10s', l1: { ttl: '1m' } })
    caches = nodes.caches
    const { a, b, bStore, clock } = nodes
    await Promise.all([a.ready(), b.ready()])
    await a.set('k', 'v')
    await a.set('graced', 'g', { grace: '1m' })
    expect(await b.get('k')).toBe('v')
    expect(await b.get('graced')).toBe('g')
    const down = new CircuitOpenError('l2 of a test')
    bStore.fail('head', down)
    bStore.fail('get', down)
    const failed = await b.get('k', { consistency: 'strong' }).catch((err: unknown) => err)
    expect(failed).toBeInstanceOf(UnconfirmedReadError)
    expect((failed as UnconfirmedReadError).code).toBe('E_UNCONFIRMED_READ')
    expect((failed as UnconfirmedReadError).cause).toBe(down)
    expect(await b.get('k', { consistency: 'strong', grace: '5s' })).toBe('v')
    // Nothing in L1: still an error without grace, nothing (as a plain read) with it.
    await expect(b.get('absent', { consistency: 'strong' })).rejects.toBeInstanceOf(UnconfirmedReadError)
    expect(await b.get('absent', { consistency: 'strong', grace: '5s' })).toBeUndefined()
    expect(b.stats().strong.unconfirmed).toBe(4)
    // Past its TTL, an L1 entry is served only within the grace given (L1 keeps it for the write's grace).
    clock.advance(12_000)
    expect(await b.get('graced', { consistency: 'strong', grace: '5s' })).toBe('g')
    clock.advance(5_000)
    expect(await b.get('graced', { consistency: 'strong', grace: '5s' })).toBeUndefined()
  })

  it('is a plain read without an L2, and validates its options', async () => {
    const cache = createCache({ namespace: 'strong-l1' })
    caches = [cache]
    await cache.set('k', 1)
    expect(await cache.get('k', { consistency: 'strong' })).toBe(1)
    expect(await cache.get('k', { consistency: 'eventual' })).toBe(1)
    await expect(cache.get('k', { consistency: 'linearizable' as 'strong' })).rejects.toMatchObject({
      code: 'E_INVALID_OPTION',
      option: 'consistency',
    })
    await expect(cache.get('k', { grace: '1s' })).rejects.toMatchObject({ option: 'grace' })
    await expect(cache.get('k', { ttl: '1s' } as never)).rejects.toMatchObject({ option: 'ttl' })
    await expect(cache.get('', { consistency: 'strong' })).rejects.toMatchObject({ code: 'E_INVALID_KEY' })
  })

  it('returns this node’s own write that L2 has not got yet', async () => {
    const clock = new ManualClock()
    const inner: RemoteStore = memoryStore({ clock })
    const gated = gatedStore(inner)
    const cache = createCache({ namespace: 'strong-own', clock, l2: gated.store, circuitBreaker: false })
    caches = [cache]
    gated.fail('setIf', new Error('down'))
    gated.fail('setStamped', new Error('down'))
    await cache.set('k', 'mine')
    gated.fail('setStamped', undefined)
    expect(await cache.get('k', { consistency: 'strong' })).toBe('mine')
  })
})

describe("getOrSet(key, loader, { consistency: 'strong' })", () => {
  it('calls no loader for a confirmed value, and loads when L2 holds nothing newer than nothing', async () => {
    const nodes = twoNodes()
    caches = nodes.caches
    const { a, b, bBus } = nodes
    await Promise.all([a.ready(), b.ready()])
    let loads = 0
    const loader = async () => `loaded ${++loads}`
    expect(await b.getOrSet('k', loader, { consistency: 'strong' })).toBe('loaded 1')
    expect(await b.getOrSet('k', loader, { consistency: 'strong' })).toBe('loaded 1')
    expect(loads).toBe(1)
    bBus.cut('nothing')
    await a.set('k', 'written by A')
    await settle()
    expect(await b.getOrSet('k', loader)).toBe('loaded 1') // plain: the lost message
    expect(await b.getOrSet('k', loader, { consistency: 'strong' })).toBe('written by A')
    await a.delete('k')
    expect(await b.getOrSet('k', loader, { consistency: 'strong' })).toBe('loaded 2')
  })

  it('fails without grace when L2 cannot answer; with grace, answers from L1 or the loader', async () => {
    const nodes = twoNodes()
    caches = nodes.caches
    const { a, b, bStore } = nodes
    await Promise.all([a.ready(), b.ready()])
    await a.set('k', 'cached')
    expect(await b.get('k')).toBe('cached')
    const down = new Error('connection refused')
    for (const op of ['head', 'get', 'getStamps', 'set', 'setIfNewer'] as const) bStore.fail(op, down)
    const loader = async () => 'loaded'
    await expect(b.getOrSet('k', loader, { consistency: 'strong' })).rejects.toBeInstanceOf(
      UnconfirmedReadError,
    )
    expect(await b.getOrSet('k', loader, { consistency: 'strong', grace: '1s' })).toBe('cached')
    expect(await b.getOrSet('other', loader, { consistency: 'strong', grace: '1s' })).toBe('loaded')
  })

  it('applies to get() with the cache’s loader (read-through)', async () => {
    const clock = new ManualClock()
    const l2 = memoryStore({ clock })
    const bus = memoryBus()
    const a = createCache({ namespace: 'strong-rt', clock, l2, bus })
    const bBus = faultyBus(bus)
    let loads = 0
    const b = createCache({
      namespace: 'strong-rt',
      clock,
      l2,
      bus: bBus.bus,
      loader: async () => `db ${++loads}`,
    })
    caches = [a, b]
    await Promise.all([a.ready(), b.ready()])
    expect(await b.get('k', { consistency: 'strong' })).toBe('db 1')
    bBus.cut('nothing')
    await a.set('k', 'from A')
    expect(await b.get('k')).toBe('db 1')
    expect(await b.get('k', { consistency: 'strong' })).toBe('from A')
  })
})
