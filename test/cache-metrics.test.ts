import diagnosticsChannel from 'node:diagnostics_channel'
import { afterEach, describe, expect, it } from 'vitest'
import { encodeHeartbeat, encodeMessage, MAX_HEARTBEAT_BYTES } from '../src/bus/wire.js'
import { type Cache, createCache, ManualClock, memoryBus } from '../src/index.js'
import { memoryFleet, settle } from './support/nodes.js'

let fleet: ReturnType<typeof memoryFleet> | undefined
const others: Cache[] = []
afterEach(async () => {
  await fleet?.close()
  fleet = undefined
  await Promise.all(others.splice(0).map((cache) => cache.close()))
})

describe('stats(): what was missing', () => {
  it('counts sets, deletes, tag invalidations, clears and background refreshes', async () => {
    fleet = memoryFleet(1)
    const [a] = fleet.nodes
    await a!.set('k', 1)
    await a!.set('j', 2)
    await a!.deleteMany(['k', 'j', 'x'])
    await a!.invalidateTags(['t', 'u'])
    await a!.clear()
    await a!.namespace('child').clear()
    expect(a!.stats().writes).toEqual({ sets: 2, deletes: 3, tagInvalidations: 2, clears: 2 })
    await a!.getOrSet('r', async () => 'v', { ttl: 1_000, refreshAhead: 0.5 })
    fleet.clock.advance(600)
    await a!.getOrSet('r', async () => 'v2', { ttl: 1_000, refreshAhead: 0.5 })
    expect(a!.stats().loads.refreshes).toBe(1)
  })

  it("measures invalidation lag from the writer's version to its arrival", async () => {
    fleet = memoryFleet(2)
    await fleet.ready()
    const [, b] = fleet.nodes
    expect(b!.stats().bus.lag).toMatchObject({ count: 0, p50: 0, p99: 0, max: 0, sum: 0 })
    const writtenAgo = (ms: number) => (fleet!.clock.now() - ms) * 4096 // a version is the writer's ms × 4096
    const origin = Buffer.alloc(8, 7)
    await fleet.bus.publish(
      'coherent:fleet',
      encodeMessage({ kind: 1, origin, names: ['k'], numbers: [writtenAgo(7)] }),
    )
    await fleet.bus.publish(
      'coherent:fleet',
      encodeMessage({ kind: 2, origin, names: ['t:x'], numbers: [writtenAgo(3)] }),
    )
    await fleet.bus.publish(
      'coherent:fleet',
      encodeMessage({ kind: 1, origin, names: ['j'], numbers: [writtenAgo(-50)] }),
    )
    await settle()
    // Three arrivals: 7 ms, 3 ms, and a writer whose clock is ahead (counted as 0).
    const lag = b!.stats().bus.lag
    expect(lag).toMatchObject({ count: 3, p50: 5, p99: 7, max: 7, sum: 10 }) // p50: the 3 ms sample's bucket, (2, 5]
    expect(lag.buckets.slice(0, 4)).toEqual([
      { le: 1, count: 1 },
      { le: 2, count: 1 },
      { le: 5, count: 2 },
      { le: 10, count: 3 },
    ])
    expect(lag.buckets.at(-1)).toEqual({ le: Number.POSITIVE_INFINITY, count: 3 })
  })

  it('counts answers from L1 that L2 could not vouch for as degraded hits, not as misses only', async () => {
    const inner = memoryBus()
    let report: ((status: 'connected' | 'disconnected') => void) | undefined
    const bus = {
      ...inner,
      name: 'cuttable',
      subscribe: (channel: string, onMessage: (m: Uint8Array) => void, onStatus: typeof report & {}) => {
        report = onStatus
        return inner.subscribe(channel, onMessage, onStatus)
      },
      publish: inner.publish.bind(inner),
      close: inner.close.bind(inner),
    }
    const cache = createCache({ bus })
    others.push(cache)
    await cache.ready()
    await cache.set('k', 'v')
    report!('disconnected') // no L2 to ask, and the bus may have lost invalidations
    expect(await cache.get('k')).toBe('v') // degradation beats failure (guarantee 5)
    expect(cache.stats().l1).toMatchObject({ hits: 0, degradedHits: 1 })
  })
})

describe('diagnostics_channel events', () => {
  const names = ['hit', 'miss', 'set', 'delete', 'invalidation', 'load', 'stale'] as const
  type Name = (typeof names)[number]

  function listen() {
    const events: { name: Name; message: Record<string, unknown> }[] = []
    const handlers = names.map((name) => {
      const handler = (message: unknown) => events.push({ name, message: message as Record<string, unknown> })
      diagnosticsChannel.subscribe(`coherent-cache:${name}`, handler)
      return () => diagnosticsChannel.unsubscribe(`coherent-cache:${name}`, handler)
    })
    const stop = () => {
      for (const off of handlers) off()
    }
    return { events, stop }
  }

  it('publishes hit, miss, set, delete, invalidation, load and stale events with their fields', async () => {
    fleet = memoryFleet(2, { grace: '1h', loaderTimeout: { soft: 0 } })
    await fleet.ready()
    const [a, b] = fleet.nodes
    const { events, stop } = listen()
    try {
      await a!.namespace('users').set('1', 'Ada')
      expect(await a!.namespace('users').get('1')).toBe('Ada') // L1 hit
      expect(await b!.get('nothing')).toBeUndefined() // miss
      await settle()
      expect(await b!.namespace('users').get('1')).toBe('Ada') // L2 hit on B
      await a!.delete('gone')
      await a!.getOrSet('loaded', async () => 'v', { ttl: 10 })
      fleet.clock.advance(20)
      const failing = async () => {
        throw new Error('db down')
      }
      await a!.getOrSet('loaded', failing) // stale within grace while the loader runs (soft timeout 0)
      await settle()
      await a!.getOrSet('loaded', failing) // the loader failed just now: not called again (fail-safe)
      const of = (name: Name) => events.filter((e) => e.name === name).map((e) => e.message)
      expect(of('set')).toContainEqual(
        expect.objectContaining({ namespace: 'fleet', path: 'users', key: '1', queued: false }),
      )
      expect(of('hit')).toContainEqual({ namespace: 'fleet', path: 'users', key: '1', tier: 'l1' })
      expect(of('hit')).toContainEqual({ namespace: 'fleet', path: 'users', key: '1', tier: 'l2' })
      expect(of('miss')).toContainEqual({ namespace: 'fleet', path: '', key: 'nothing' })
      expect(of('delete')).toContainEqual({ namespace: 'fleet', path: '', key: 'gone' })
      expect(of('load')).toContainEqual(expect.objectContaining({ key: 'loaded', outcome: 'value' }))
      expect(of('load')).toContainEqual(expect.objectContaining({ key: 'loaded', outcome: 'error' }))
      expect(of('stale')).toContainEqual(expect.objectContaining({ key: 'loaded', reason: 'grace' }))
      expect(of('stale')).toContainEqual(expect.objectContaining({ key: 'loaded', reason: 'fail-safe' }))
      expect(of('invalidation')).toContainEqual(
        expect.objectContaining({
          namespace: 'fleet',
          kind: 'keys',
          names: [{ path: 'users', key: '1' }],
          lagMs: 0,
        }),
      )
    } finally {
      stop()
    }
  })

  it('builds nothing when nobody listens: operations do not touch the channels', async () => {
    fleet = memoryFleet(1)
    const [a] = fleet.nodes
    const channel = diagnosticsChannel.channel('coherent-cache:hit')
    expect(channel.hasSubscribers).toBe(false)
    const publish = channel.publish.bind(channel)
    let published = 0
    channel.publish = (message) => {
      published++
      publish(message)
    }
    try {
      await a!.set('k', 1)
      for (let i = 0; i < 10; i++) await a!.get('k')
      expect(published).toBe(0)
    } finally {
      channel.publish = publish
    }
  })
})

describe('cache.fleet(): the fleet view from heartbeats', () => {
  it('every node sees every live node; a node that stops reporting drops out after the timeout', async () => {
    fleet = memoryFleet(3, { fleet: { interval: '20ms', timeout: '1m' } })
    await fleet.ready()
    const [a, b, c] = fleet.nodes
    await a!.set('k', 1)
    await expect.poll(() => a!.fleet().length).toBe(3)
    const view = a!.fleet()
    expect(view[0]).toMatchObject({ self: true, ageMs: 0, version: '0.1.0', bus: { connected: true } })
    expect(new Set(view.map((r) => r.nodeId)).size).toBe(3)
    expect(view.find((r) => r.self)!.l2).toMatchObject({ errors: 0 })
    await c!.close()
    fleet.clock.advance(61_000)
    await expect.poll(() => b!.fleet().length).toBe(2)
    expect(b!.fleet().map((r) => r.nodeId)).toEqual(expect.arrayContaining([a!.fleet()[0]!.nodeId]))
  })

  it('without a bus or with fleet: false, it reports this node only, or nothing', async () => {
    const alone = createCache({})
    const off = createCache({ bus: memoryBus(), fleet: false })
    others.push(alone, off)
    expect(alone.fleet()).toHaveLength(1)
    expect(off.fleet()).toEqual([])
  })

  it('drops and counts heartbeats that are not reports, and remembers at most 1,024 nodes', async () => {
    const bus = memoryBus()
    const clock = new ManualClock()
    const node = createCache({ namespace: 'hb', bus, clock, fleet: { interval: '1h' } })
    others.push(node)
    await node.ready()
    const origin = (i: number) => Buffer.from(i.toString(16).padStart(16, '0'), 'hex')
    const valid = (i: number) => ({
      nodeId: origin(i).toString('hex'),
      name: `n${i}`,
      version: '9.9.9',
      uptimeMs: 1,
      bus: { connected: true, reconnects: 0, lagP50Ms: 0, lagP99Ms: 0 },
      l1: { hits: 1, misses: 1, hitRate: 0.5, size: 1 },
      l2: { hits: 0, misses: 0, hitRate: 0, errors: 0, circuit: 'closed' },
      loads: { calls: 0, errors: 0, coalesced: 0 },
      staleServed: 0,
      pending: 0,
    })
    const bad = [
      'not json',
      JSON.stringify({ ...valid(1), nodeId: 'someone else' }),
      JSON.stringify({ ...valid(1), uptimeMs: -1 }),
      JSON.stringify({ ...valid(1), l1: { ...valid(1).l1, hitRate: 2 } }),
      JSON.stringify({ ...valid(1), bus: 'up' }),
      JSON.stringify([1, 2, 3]),
    ]
    for (const body of bad) await bus.publish('coherent:hb', encodeHeartbeat(origin(1), body))
    await bus.publish('coherent:hb', encodeHeartbeat(origin(1), 'x'.repeat(MAX_HEARTBEAT_BYTES + 1)))
    await settle()
    expect(node.stats().bus.dropped).toBe(bad.length + 1)
    expect(node.fleet()).toHaveLength(1)
    for (let i = 1; i <= 2_000; i++)
      await bus.publish('coherent:hb', encodeHeartbeat(origin(i), JSON.stringify(valid(i))))
    await settle()
    const view = node.fleet()
    expect(view).toHaveLength(1 + 1024)
    expect(view.some((r) => r.name === 'n2000')).toBe(true)
    expect(view.some((r) => r.name === 'n1')).toBe(false)
    expect(node.stats().bus.received).toBe(0) // heartbeats are not invalidations
  })
})
