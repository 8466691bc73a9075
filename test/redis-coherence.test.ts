import { afterEach, describe, expect, it } from 'vitest'
import type { Cache } from '../src/index.js'
import { type FaultyBus, faultyBus } from './support/faults.js'
import { connection, killPubSub, ports, redisFleet, TOPOLOGIES } from './support/redis-fleet.js'
import { eventually } from './support/store-conformance.js'

let fleet: ReturnType<typeof redisFleet> | undefined
afterEach(async () => {
  await fleet?.close()
  fleet = undefined
})

function three(nodes: Cache[]): [Cache, Cache, Cache] {
  return [nodes[0]!, nodes[1]!, nodes[2]!]
}

describe.each(TOPOLOGIES)('coherence on real Redis (%s)', (topology) => {
  it('a set, delete, invalidateTags or clear on one of three nodes is seen by the others', async () => {
    fleet = redisFleet(3, connection(topology))
    await fleet.ready()
    const [a, b, c] = three(fleet.nodes)
    await a.set('user:1', { name: 'Ada' }, { tags: ['users'] })
    expect(await b.get('user:1')).toEqual({ name: 'Ada' })
    expect(await c.get('user:1')).toEqual({ name: 'Ada' })
    expect(await b.get('user:1')).toEqual({ name: 'Ada' })
    expect(b.stats().l1.hits).toBe(1) // B now serves it from L1

    await a.set('user:1', { name: 'Ada Lovelace' }, { tags: ['users'] })
    await eventually(
      async () => (await b.get<{ name: string }>('user:1'))?.name === 'Ada Lovelace',
      2000,
      'B to see the set',
    )
    await eventually(
      async () => (await c.get<{ name: string }>('user:1'))?.name === 'Ada Lovelace',
      2000,
      'C to see the set',
    )

    await b.delete('user:1')
    await eventually(async () => (await a.get('user:1')) === undefined, 2000, 'A to see the delete')
    await eventually(async () => (await c.get('user:1')) === undefined, 2000, 'C to see the delete')

    await c.set('user:2', 'Bob', { tags: ['users'] })
    expect(await a.get('user:2')).toBe('Bob')
    expect(await b.get('user:2')).toBe('Bob')
    await a.invalidateTags(['users'])
    await eventually(async () => (await b.get('user:2')) === undefined, 2000, 'B to see the tag invalidation')
    expect(await c.get('user:2')).toBeUndefined()

    await a.namespace('carts').set('1', ['apple'])
    expect(await b.namespace('carts').get('1')).toEqual(['apple'])
    await c.namespace('carts').clear()
    await eventually(
      async () => (await b.namespace('carts').get('1')) === undefined,
      2000,
      'B to see the clear',
    )
    expect(await a.namespace('carts').get('1')).toBeUndefined()
  })

  it('read-your-writes and last-writer-wins when two nodes write the same key', async () => {
    fleet = redisFleet(2, connection(topology))
    await fleet.ready()
    const [a, b] = fleet.nodes as [Cache, Cache]
    for (let i = 0; i < 50; i++) {
      await Promise.all([a.set('k', `a${i}`), b.set('k', `b${i}`)])
      // Each writer sees its own write or the other's concurrent one, never an older round.
      expect([`a${i}`, `b${i}`]).toContain(await a.get('k'))
      expect([`a${i}`, `b${i}`]).toContain(await b.get('k'))
    }
    // Once both invalidations are in, the nodes agree.
    await eventually(async () => (await a.get('k')) === (await b.get('k')), 2000, 'the nodes to agree')
  })

  it('no stale fill: a read of L2 that an invalidation overtook is answered but not kept in L1', async () => {
    fleet = redisFleet(2, connection(topology))
    await fleet.ready()
    const [a, b] = fleet.nodes as [Cache, Cache]
    await a.set('k', 'old')
    await b.get('warm-up') // B's connections are open: its next read goes out at once
    // Hold B's next L2 reply until A's newer write and its invalidation have reached B.
    const store = (b as unknown as { rt: { remote: { store: { get: (key: string) => Promise<unknown> } } } })
      .rt.remote.store
    const realGet = store.get.bind(store)
    let release!: () => void
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    let read!: () => void
    const readDone = new Promise<void>((resolve) => {
      read = resolve
    })
    store.get = async (key: string) => {
      const reply = await realGet(key)
      read()
      await held
      return reply
    }
    const staleRead = b.get('k')
    await readDone // B's read of L2 got 'old', and its reply waits
    store.get = realGet
    const received = b.stats().bus.received
    await a.set('k', 'new')
    await eventually(() => b.stats().bus.received > received, 2000, "A's invalidation to reach B")
    release()
    expect(await staleRead).toBe('old')
    expect(b.stats().staleFillsRefused).toBe(1)
    expect(await b.get('k')).toBe('new')
    expect(await b.get('k')).toBe('new')
  })

  it('bus loss: a node whose subscription is killed stops trusting L1, resubscribes by itself and purges', async () => {
    // B's bus is wrapped by the cut harness: the real kill below drops its subscription, and the harness
    // holds B's view at 'disconnected' until the test heals it, so A writes while B is really untrusted
    // (a real loss lasts milliseconds: B could resubscribe and purge before A's write, proving nothing).
    let bBus!: FaultyBus
    fleet = redisFleet(2, connection(topology), {}, (bus, i) => {
      if (i !== 1) return bus
      bBus = faultyBus(bus)
      return bBus.bus
    })
    await fleet.ready()
    const [a, b] = fleet.nodes as [Cache, Cache]
    await a.set('k', 'v1')
    expect(await b.get('k')).toBe('v1')
    expect(await b.get('k')).toBe('v1')
    const hitsBefore = b.stats().l1.hits
    expect(hitsBefore).toBe(1)
    const reconnects = b.stats().bus.reconnects
    bBus.cut('disconnected')
    await killPubSub(ports(topology))
    // While B is cut off, A writes; B must not answer from its L1 copy of v1.
    await eventually(
      () => !b.stats().bus.connected || b.stats().bus.reconnects > reconnects,
      2000,
      'B to notice',
    )
    expect(b.stats().bus.connected).toBe(false)
    await a.set('k', 'v2')
    expect(await b.get('k')).toBe('v2')
    expect(b.stats().l1.hits).toBe(hitsBefore)
    // A writes again; B does not read it while cut (its L1 may hold v2 from the read above).
    await a.set('k', 'v2b')
    expect(b.stats().bus.connected).toBe(false)
    // B's own bus lost the subscription and comes back on its own (the harness only watches it).
    await eventually(
      () => {
        const lost = bBus.innerReports.indexOf('disconnected')
        return lost >= 0 && bBus.innerReports.indexOf('connected', lost) > lost
      },
      10_000,
      "B's bus to resubscribe by itself",
    )
    expect(b.stats().bus.reconnects).toBe(reconnects)
    bBus.heal()
    // B comes back, purges what it may have missed, and uses L1 again.
    await eventually(
      () => b.stats().bus.connected && b.stats().bus.reconnects > reconnects,
      5000,
      'B to resubscribe',
    )
    expect(b.stats().bus.reconnects).toBe(reconnects + 1)
    expect(await b.get('k')).toBe('v2b')
    await a.set('k', 'v3')
    await eventually(async () => (await b.get('k')) === 'v3', 2000, 'invalidations to flow again')
    const hits = b.stats().l1.hits
    expect(await b.get('k')).toBe('v3')
    expect(b.stats().l1.hits).toBe(hits + 1)
  })
})
