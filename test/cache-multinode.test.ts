import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Bus } from '../src/bus/bus.js'
import { memoryFleet, settle } from './support/nodes.js'

let fleet: ReturnType<typeof memoryFleet>
afterEach(async () => {
  await fleet?.close()
})

describe('several nodes in one process (memoryStore + memoryBus)', () => {
  it('a set, delete, invalidateTags or clear on one node is seen by the others', async () => {
    fleet = memoryFleet(3)
    await fleet.ready()
    const [a, b, c] = fleet.nodes as [
      (typeof fleet.nodes)[0],
      (typeof fleet.nodes)[0],
      (typeof fleet.nodes)[0],
    ]
    await a!.set('user:1', { name: 'Ada' }, { tags: ['users'] })
    // Warm every L1.
    expect(await b!.get('user:1')).toEqual({ name: 'Ada' })
    expect(await c!.get('user:1')).toEqual({ name: 'Ada' })
    expect(await b!.get('user:1')).toEqual({ name: 'Ada' })
    expect(b!.stats().l1.hits).toBe(1)

    await a!.set('user:1', { name: 'Ada Lovelace' }, { tags: ['users'] })
    await settle()
    expect(await b!.get('user:1')).toEqual({ name: 'Ada Lovelace' })
    expect(await c!.get('user:1')).toEqual({ name: 'Ada Lovelace' })

    await b!.delete('user:1')
    await settle()
    expect(await a!.get('user:1')).toBeUndefined()
    expect(await c!.get('user:1')).toBeUndefined()

    await c!.set('user:2', 'Bob', { tags: ['users'] })
    expect(await a!.get('user:2')).toBe('Bob')
    await a!.invalidateTags(['users'])
    await settle()
    expect(await b!.get('user:2')).toBeUndefined()
    expect(await c!.get('user:2')).toBeUndefined()

    await a!.set('x', 1)
    expect(await b!.get('x')).toBe(1)
    await c!.clear()
    await settle()
    expect(await a!.get('x')).toBeUndefined()
    expect(await b!.get('x')).toBeUndefined()
  })

  it('L1-only nodes sharing a bus invalidate each other', async () => {
    fleet = memoryFleet(2, { l2: undefined })
    await fleet.ready()
    const [a, b] = fleet.nodes
    await a!.set('k', 'a')
    await b!.set('k', 'b')
    await settle()
    expect(await a!.get('k')).toBeUndefined()
    expect(await b!.get('k')).toBe('b')
  })

  it('a node ignores its own invalidations (its L1 keeps what it just wrote)', async () => {
    fleet = memoryFleet(2)
    await fleet.ready()
    const [a] = fleet.nodes
    await a!.set('k', 1)
    await settle()
    expect(await a!.get('k')).toBe(1)
    expect(a!.stats().l1.hits).toBe(1)
    expect(a!.stats().bus.received).toBe(0)
  })

  it('a fill that an invalidation overtook is not stored in L1 (no stale fill)', async () => {
    fleet = memoryFleet(2)
    await fleet.ready()
    const [a, b] = fleet.nodes
    await a!.set('k', 'old')
    // B starts a read of L2 that returns 'old', but the reply is held until A's new write and its
    // invalidation have reached B.
    const store = fleet.l2
    const realGet = store.get.bind(store)
    let release!: () => void
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    store.get = async (key) => {
      const result = await realGet(key)
      await held
      return result
    }
    const staleRead = b!.get('k')
    await settle()
    store.get = realGet
    await a!.set('k', 'new')
    await settle()
    release()
    expect(await staleRead).toBe('old') // the read started before the write: 'old' is a fair answer
    expect(b!.stats().staleFillsRefused).toBe(1)
    expect(await b!.get('k')).toBe('new') // but 'old' never landed in B's L1
  })

  it('a loader that finishes after another node wrote the key does not overwrite it', async () => {
    fleet = memoryFleet(2)
    await fleet.ready()
    const [a, b] = fleet.nodes
    let finishLoad!: () => void
    const loading = b!.getOrSet('k', async () => {
      await new Promise<void>((resolve) => {
        finishLoad = resolve
      })
      return 'loaded from a stale database read'
    })
    await settle()
    await a!.set('k', 'written')
    await settle()
    finishLoad()
    expect(await loading).toBe('loaded from a stale database read')
    expect(await b!.get('k')).toBe('written')
    expect(await a!.get('k')).toBe('written')
  })
})

describe('a bus that accepts messages but never answers', () => {
  it('bounds the announcement by l2Timeout: writes resolve, loads are not held, the message is retried', async () => {
    const { createCache, memoryBus, memoryStore } = await import('../src/index.js')
    const { bus, faults } = faultyBus(memoryBus())
    faults.publish = 'hang'
    const cache = createCache({ namespace: 'hang', l2: memoryStore(), bus, l2Timeout: '50ms' })
    try {
      await cache.ready()
      const started = Date.now()
      await cache.set('k', 1)
      expect(Date.now() - started).toBeLessThan(1000)
      expect(cache.stats().bus.publishErrors).toBe(1)
      expect(cache.stats().pending).toBe(1)

      // A load's single flight is released once its (unannounced) write is done.
      let calls = 0
      const loader = async () => ++calls
      expect(await cache.getOrSet('loaded', loader)).toBe(1)
      await cache.delete('loaded')
      expect(await cache.getOrSet('loaded', loader)).toBe(2)

      faults.publish = undefined
      await vi.waitFor(() => expect(cache.stats().pending).toBe(0), { timeout: 5000 })
    } finally {
      await cache.close()
    }
  })
})

describe('maxPendingWrites: a long outage does not fill memory with queued writes', () => {
  it('past the bound, the queued writes become one clear(): nobody serves what they replaced', async () => {
    const { createCache, memoryBus, memoryStore } = await import('../src/index.js')
    const store = memoryStore()
    let down = false
    // A's view of the shared store: unreachable while `down` (B's is not).
    const flaky = new Proxy(store, {
      get(target, name, receiver) {
        const member = Reflect.get(target, name, receiver)
        if (typeof member !== 'function' || name === 'close') return member
        return (...args: unknown[]) =>
          down ? Promise.reject(new Error('unreachable')) : member.apply(target, args)
      },
    })
    const bus = memoryBus()
    const a = createCache({ namespace: 'bound', l2: flaky, bus, maxPendingWrites: 3, circuitBreaker: false })
    const b = createCache({ namespace: 'bound', l2: store, bus })
    try {
      await Promise.all([a.ready(), b.ready()])
      const keys = ['k0', 'k1', 'k2', 'k3', 'k4']
      for (const key of keys) await a.set(key, 'old')
      for (const key of keys) expect(await b.get(key)).toBe('old') // B holds them in L1

      down = true
      for (const key of keys) await a.set(key, 'new')
      // The 4th queued write overflowed: all 4 dropped, replaced by one clear; the 5th came after it.
      expect(a.stats().pendingDropped).toBe(4)
      expect(a.stats().pending).toBe(2)
      expect(await a.get('k0')).toBeUndefined() // not 'old': the clear is in effect here already
      expect(await a.get('k4')).toBe('new') // written after the clear: A still reads its own write

      down = false
      await vi.waitFor(() => expect(a.stats().pending).toBe(0), { timeout: 5000 })
      // The clear reached L2 and B: what A's dropped writes replaced is served by no node.
      for (const key of ['k0', 'k1', 'k2', 'k3']) {
        expect(await b.get(key)).toBeUndefined()
        expect(await a.get(key)).toBeUndefined()
      }
      expect(await b.get('k4')).toBe('new')
      expect(await a.get('k4')).toBe('new')
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })

  it('without L2 (nodes sharing only a bus), the overflow announces one clear when the bus is back', async () => {
    const { createCache, memoryBus } = await import('../src/index.js')
    const inner = memoryBus()
    const { bus: flakyBus, faults } = faultyBus(inner)
    const a = createCache({
      namespace: 'bound-bus',
      bus: flakyBus,
      maxPendingWrites: 2,
      circuitBreaker: false,
    })
    const b = createCache({ namespace: 'bound-bus', bus: inner })
    try {
      await Promise.all([a.ready(), b.ready()])
      await b.set('k', 'b-local')
      faults.publish = 'reject'
      for (const key of ['x', 'y', 'z']) await a.set(key, 1) // 3 unannounced writes: overflow
      expect(a.stats().pendingDropped).toBe(3)
      expect(a.stats().pending).toBe(1)
      faults.publish = undefined
      await vi.waitFor(() => expect(a.stats().pending).toBe(0), { timeout: 5000 })
      expect(await b.get('k')).toBeUndefined() // B's L1 was cleared by the announced clear
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })

  it('rejects a bound that is not a positive integer', async () => {
    const { createCache } = await import('../src/index.js')
    for (const bad of [0, -1, 1.5, Number.NaN, '10']) {
      expect(() => createCache({ maxPendingWrites: bad as number })).toThrow(
        expect.objectContaining({ code: 'E_INVALID_OPTION' }),
      )
    }
  })
})

/** Wraps a bus so that a test can make its publish fail ('reject') or never answer ('hang'). */
function faultyBus(inner: Bus): { bus: Bus; faults: { publish: 'reject' | 'hang' | undefined } } {
  const faults: { publish: 'reject' | 'hang' | undefined } = { publish: undefined }
  const bus: Bus = {
    name: 'faulty',
    subscribe: (channel, onMessage, onStatus) => inner.subscribe(channel, onMessage, onStatus),
    publish: (channel, message) => {
      if (faults.publish === 'hang') return new Promise<void>(() => {})
      if (faults.publish === 'reject') return Promise.reject(new Error('unreachable'))
      return inner.publish(channel, message)
    },
    close: () => inner.close(),
  }
  return { bus, faults }
}
