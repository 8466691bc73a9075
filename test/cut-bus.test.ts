import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type Cache, type CacheOptions, createCache, memoryBus, memoryStore } from '../src/index.js'
import { redisBus, redisStore } from '../src/redis.js'
import { type RedisServer, startRedis } from '../tools/redis-server.js'
import { type FaultyBus, faultyBus } from './support/faults.js'
import { TEST_L2_TIMEOUT, uniqueNamespace } from './support/redis-fleet.js'

// The bus-loss rule (src/bus/invalidations.ts; guarantee 2), exercised with a cut the test commands: B's
// bus reports 'disconnected' and drops what arrives until heal() reports 'connected' again. A real
// connection drop lasts milliseconds and B may have resubscribed before A wrote; this cut lasts exactly
// as long as the test says, on memoryBus and on a real Redis bus alike. Nothing here sleeps: A's
// invalidations are waited for until B's cut has dropped them (`missed`), then the outcome is asserted.

type Kind = 'memory' | 'redis'

let server: RedisServer | undefined
beforeAll(async () => {
  server = await startRedis()
})
afterAll(async () => {
  await server?.stop()
  server = undefined
})

let opened: Cache[] = []
afterEach(async () => {
  await Promise.allSettled(opened.map((node) => node.close()))
  opened = []
})

/** Two nodes sharing L2 and a bus; B's bus is wrapped by the cut harness. */
async function twoNodes(kind: Kind): Promise<{ a: Cache; b: Cache; bBus: FaultyBus }> {
  // No heartbeats: the only bus traffic is the invalidations the test makes.
  const common: CacheOptions = { fleet: false, circuitBreaker: false }
  let a: Cache
  let bBus: FaultyBus
  let b: Cache
  if (kind === 'memory') {
    const l2 = memoryStore()
    const bus = memoryBus()
    bBus = faultyBus(bus)
    a = createCache({ ...common, namespace: 'cut', l2, bus })
    b = createCache({ ...common, namespace: 'cut', l2, bus: bBus.bus })
  } else {
    const url = server!.url
    const namespace = uniqueNamespace('cut')
    const options: CacheOptions = { ...common, namespace, l2Timeout: TEST_L2_TIMEOUT }
    bBus = faultyBus(redisBus({ url }))
    a = createCache({ ...options, l2: redisStore({ url }), bus: redisBus({ url }) })
    b = createCache({ ...options, l2: redisStore({ url }), bus: bBus.bus })
  }
  opened = [a, b]
  await Promise.all([a.ready(), b.ready()])
  return { a, b, bBus }
}

/** B reads `key` until its L1 answers (an L1 hit counted): B holds `expected` in L1. */
async function heldInL1(b: Cache, key: string, expected: unknown): Promise<void> {
  expect(await b.get(key)).toEqual(expected)
  const hits = b.stats().l1.hits
  expect(await b.get(key)).toEqual(expected)
  expect(b.stats().l1.hits).toBe(hits + 1)
}

describe.each<Kind>(['memory', 'redis'])('a bus cut on command (%s bus)', (kind) => {
  it('while cut, reads go to L2: L1 is not trusted, so a write B missed is seen at once', async () => {
    const { a, b, bBus } = await twoNodes(kind)
    await a.set('k', 'v1')
    await heldInL1(b, 'k', 'v1')
    bBus.cut('disconnected')
    expect(b.stats().bus.connected).toBe(false)
    await bBus.missed(() => a.set('k', 'v2'))
    const hits = b.stats().l1.hits
    expect(await b.get('k')).toBe('v2')
    // And again: what B read while cut does not answer from L1 either.
    await bBus.missed(() => a.set('k', 'v3'))
    expect(await b.get('k')).toBe('v3')
    expect(b.stats().l1.hits).toBe(hits)
    expect(b.stats().bus.connected).toBe(false) // all of it while still cut
    expect(bBus.droppedInvalidations).toBe(2)
  })

  it('a tag invalidation missed while cut still applies after reconnect', async () => {
    const { a, b, bBus } = await twoNodes(kind)
    await a.set('k', 'v1', { tags: ['t'] })
    await a.set('untagged', 'u')
    await heldInL1(b, 'k', 'v1')
    await heldInL1(b, 'untagged', 'u')
    bBus.cut('disconnected')
    await bBus.missed(() => a.invalidateTags(['t']))
    bBus.heal()
    expect(b.stats().bus.connected).toBe(true)
    // The entry is still in L2, written under the old generation of `t`: B must judge it by the new one.
    expect(await b.get('k')).toBeUndefined()
    expect(await b.get('k')).toBeUndefined()
    expect(await b.get('untagged')).toBe('u')
    // Trusted again: a new write under the tag is served, and from L1 once read.
    await a.set('k', 'v2', { tags: ['t'] })
    await heldInL1(b, 'k', 'v2')
  })

  it('a namespace clear missed while cut still applies after reconnect', async () => {
    const { a, b, bBus } = await twoNodes(kind)
    const aUsers = a.namespace('users')
    const bUsers = b.namespace('users')
    await aUsers.set('k', 'v1')
    await a.set('outside', 'o')
    await heldInL1(bUsers, 'k', 'v1')
    await heldInL1(b, 'outside', 'o')
    bBus.cut('disconnected')
    await bBus.missed(() => aUsers.clear())
    bBus.heal()
    expect(b.stats().bus.connected).toBe(true)
    expect(await bUsers.get('k')).toBeUndefined()
    expect(await bUsers.get('k')).toBeUndefined()
    expect(await b.get('outside')).toBe('o')
  })

  it('a key not read during the cut is not served stale after it', async () => {
    const { a, b, bBus } = await twoNodes(kind)
    await a.set('k', 'v1')
    await a.set('other', 'o1')
    await heldInL1(b, 'k', 'v1')
    await heldInL1(b, 'other', 'o1')
    bBus.cut('disconnected')
    await bBus.missed(() => a.set('k', 'v2'))
    expect(await b.get('other')).toBe('o1') // B reads during the cut, but not `k`
    bBus.heal()
    expect(b.stats().bus.connected).toBe(true)
    expect(await b.get('k')).toBe('v2')
    // Back in L1 and trusted: the next read is an L1 hit of the new value.
    await heldInL1(b, 'k', 'v2')
  })
})
