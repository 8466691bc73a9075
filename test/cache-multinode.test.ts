import { afterEach, describe, expect, it, vi } from 'vitest'
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
    const inner = memoryBus()
    let hang = true
    const bus = {
      name: 'hanging',
      subscribe: inner.subscribe.bind(inner),
      publish: (channel: string, message: Uint8Array) =>
        hang ? new Promise<void>(() => {}) : inner.publish(channel, message),
      close: () => inner.close(),
    }
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

      hang = false
      await vi.waitFor(() => expect(cache.stats().pending).toBe(0), { timeout: 5000 })
    } finally {
      await cache.close()
    }
  })
})
