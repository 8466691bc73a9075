import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { InvalidOptionError } from '../src/errors.js'
import { memoryStore } from '../src/stores/memory-store.js'
import { redisStore } from '../src/stores/redis-store.js'
import { shardedStore } from '../src/stores/sharded-store.js'
import type { RemoteStore } from '../src/stores/store.js'
import { type RedisServer, startRedis } from '../tools/redis-server.js'
import { storeConformance } from './support/store-conformance.js'

let servers: RedisServer[] = []
beforeAll(async () => {
  servers = await Promise.all([startRedis(), startRedis(), startRedis()])
})
afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()))
})

// The conformance cases are not about timeouts: the default memberTimeout (500 ms) timed out a healthy
// member once on a loaded machine.
const MEMBER_TIMEOUT = '5s'

const overRedis = (options: Parameters<typeof shardedStore>[1] = {}) =>
  shardedStore(
    servers.map((server, i) => ({ name: `redis-${i}`, store: redisStore({ url: server.url }) })),
    { memberTimeout: MEMBER_TIMEOUT, ...options },
  )

const cases: { name: string; factory: () => RemoteStore }[] = [
  {
    name: 'shardedStore over 3 memoryStores',
    factory: () => shardedStore(['a', 'b', 'c'].map((name) => ({ name, store: memoryStore() }))),
  },
  { name: 'shardedStore over 3 redis-servers', factory: () => overRedis() },
  {
    name: 'shardedStore over 3 redis-servers, failover: false',
    factory: () => overRedis({ failover: false }),
  },
  {
    name: 'shardedStore over weighted redis-servers and a memoryStore',
    factory: () =>
      shardedStore(
        [
          { name: 'r0', store: redisStore({ url: servers[0]!.url }), weight: 2 },
          { name: 'r1', store: redisStore({ url: servers[1]!.url }) },
          { name: 'mem', store: memoryStore(), weight: 0.5 },
        ],
        { prefix: `weighted-${Date.now()}`, memberTimeout: MEMBER_TIMEOUT },
      ),
  },
]

describe.each(cases)('$name', ({ name, factory }) => {
  storeConformance(name, factory)
})

describe('shardedStore', () => {
  it('spreads keys over its members and says it guards them itself', async () => {
    const members = ['a', 'b', 'c'].map((name) => ({ name, store: memoryStore() }))
    const store = shardedStore(members)
    expect(store.guardsMembers).toBe(true)
    for (let i = 0; i < 300; i++) await store.set(`k${i}`, new Uint8Array([i & 255]), 1, 60_000)
    // each member holds about a third of the keys, under the generation they were written in
    const held = await Promise.all(
      members.map(async ({ store: member }) => {
        let n = 0
        for (let i = 0; i < 300; i++) if ((await member.get(`0|k${i}`)) !== undefined) n++
        return n
      }),
    )
    expect(held.reduce((a, b) => a + b)).toBe(300)
    for (const n of held) expect(n).toBeGreaterThan(60)
    expect(store.status().map((s) => [s.name, s.state, s.generation])).toEqual([
      ['a', 'in', 0],
      ['b', 'in', 0],
      ['c', 'in', 0],
    ])
    await store.close()
  })

  it('keeps every stamp on every member and reads the highest', async () => {
    const members = ['a', 'b', 'c'].map((name) => ({ name, store: memoryStore() }))
    const store = shardedStore(members)
    expect(await store.bumpStamps(['t:x', 't:y'], 60_000)).toEqual([1, 1])
    for (const { store: member } of members) {
      expect((await member.get('s|t:x'))?.version).toBe(1)
      expect((await member.get('s|t:y'))?.version).toBe(1)
    }
    // a member that missed bumps (it was away) is outvoted
    await members[0]!.store.set('s|t:x', new Uint8Array(0), 4, 60_000)
    expect(await store.getStamps(['t:x', 't:y', 't:z'])).toEqual([4, 1, 0])
    expect(await store.bumpStamps(['t:x'], 60_000)).toEqual([5])
    await store.close()
  })

  it('raises every stamp above all earlier values when a member comes back without its data', async () => {
    // member b's server, which can restart empty
    let b = memoryStore()
    const restartable = new Proxy({} as RemoteStore, {
      get: (_, property) => {
        const value = (b as unknown as Record<string | symbol, unknown>)[property]
        return typeof value === 'function' ? value.bind(b) : value
      },
    })
    const members = [
      { name: 'a', store: memoryStore() },
      { name: 'b', store: restartable },
      { name: 'c', store: memoryStore() },
    ]
    const store = shardedStore(members)
    expect(await store.bumpStamps(['t:x', 't:x', 't:x'], 60_000)).toEqual([1, 2, 3])
    expect(await store.getStamps(['t:x', 't:never'])).toEqual([3, 0])
    b = memoryStore()
    const after = await store.getStamps(['t:x', 't:never'])
    expect(after[0]).toBeGreaterThan(3)
    expect(after[1]).toBeGreaterThan(3)
    // another node, which never saw b before, neither raises again nor reads lower
    const other = shardedStore(members)
    expect(await other.getStamps(['t:x', 't:never'])).toEqual(after)
    expect(await store.getStamps(['t:x'])).toEqual([after[0]])
    await Promise.all([store.close(), other.close()])
  })

  it('does not take a fleet starting up for a member that lost its data', async () => {
    const members = ['a', 'b', 'c'].map((name) => ({ name, store: memoryStore() }))
    const nodes = Array.from({ length: 8 }, () => shardedStore(members))
    const reads = await Promise.all(nodes.map((node) => node.getStamps(['t:x', 't:y'])))
    expect(reads).toEqual(nodes.map(() => [0, 0]))
    expect(await nodes[0]!.bumpStamps(['t:x'], 60_000)).toEqual([1])
    expect(await Promise.all(nodes.map((node) => node.getStamps(['t:x'])))).toEqual(nodes.map(() => [1]))
    await Promise.all(nodes.map((node) => node.close()))
  })

  it('validates its options', () => {
    const invalid = (run: () => unknown, option: string) => {
      try {
        run()
      } catch (error) {
        expect(error).toBeInstanceOf(InvalidOptionError)
        expect((error as InvalidOptionError).option).toBe(option)
        return
      }
      throw new Error(`expected ${option} to be rejected`)
    }
    const member = (name: string) => ({ name, store: memoryStore() })
    invalid(() => shardedStore([]), 'members')
    invalid(() => shardedStore([{ name: 'a' } as never]), 'members[0]')
    invalid(() => shardedStore([member('a'), member('a')]), 'members[1].name')
    invalid(() => shardedStore([member('a'), { ...member('b'), weight: -1 }]), 'members[1].weight')
    invalid(() => shardedStore([member('a')], { memberTimeout: 0 }), 'memberTimeout')
    invalid(() => shardedStore([member('a')], { viewTtl: 'soon' as never }), 'viewTtl')
    invalid(
      () => shardedStore([member('a')], { circuitBreaker: { failureThreshold: 0 } }),
      'circuitBreaker.failureThreshold',
    )
    invalid(() => shardedStore([member('a')], { vnodes: 0 }), 'vnodes')
    invalid(() => shardedStore([member('a')], { failover: 'yes' as never }), 'failover')
  })
})
