import { afterEach, describe, expect, it } from 'vitest'
import { type Cache, createCache, ManualClock, memoryBus, memoryStore } from '../src/index.js'
import { faultyBus, gatedStore } from './support/faults.js'

// Guarantee 1 against reads that race this node's own writes: a read that began while a write was on
// its way to L2 may read the older value, and its reply may arrive after the write resolved. It must
// then not enter L1, or the node's next read would return it.

const caches: Cache[] = []
afterEach(async () => {
  await Promise.all(caches.splice(0).map((cache) => cache.close()))
})

/**
 * Node A (its L2 calls can be held) and node B on one memoryStore and bus; B has written k = 'old'.
 * `omit`: operations A's store lacks (setStamped: A's sets read the stamps first, then write with set).
 */
async function twoNodes(omit: 'setStamped'[] = []) {
  const clock = new ManualClock()
  const l2 = memoryStore({ clock })
  const gated = gatedStore(l2, { omit })
  const bus = memoryBus()
  const a = createCache({ namespace: 'ryw', clock, l2: gated.store, bus })
  const b = createCache({ namespace: 'ryw', clock, l2, bus })
  caches.push(a, b)
  await Promise.all([a.ready(), b.ready()])
  await b.set('k', 'old')
  return { a, gated }
}

describe('read-your-writes against a read that raced the write', () => {
  it.each([
    {
      store: 'reads stamps as it writes (setStamped)',
      omit: [] as 'setStamped'[],
      write: 'setStamped' as const,
    },
    { store: 'reads stamps first, then writes (set)', omit: ['setStamped' as const], write: 'set' as const },
  ])(
    'set, on a store that $store: a read that began after the write did and read L2 before it landed does not fill L1',
    async ({ omit, write }) => {
      const { a, gated } = await twoNodes(omit)
      const writeGate = gated.gate(write, 'before')
      const writing = a.set('k', 'new')
      await writeGate.reached
      // A tag invalidation while the write is under way voids fills in flight, the write's own L1 store
      // included: afterwards L1 holds nothing of k to compare a late fill with.
      await a.invalidateTags(['unrelated'])
      const readGate = gated.gate('get', 'after')
      const reading = a.get('k')
      await readGate.reached // it read 'old' from L2; its reply waits
      writeGate.release()
      await writing
      readGate.release()
      expect(await reading).toBe('old') // it was concurrent with the write: either value is right
      expect(await a.get('k')).toBe('new')
      expect(await a.get('k')).toBe('new')
    },
  )

  it('delete: a read that began during the delete and read L2 before it landed does not fill L1', async () => {
    const { a, gated } = await twoNodes()
    const deleteGate = gated.gate('delete', 'before')
    const deleting = a.delete('k')
    await deleteGate.reached
    const readGate = gated.gate('get', 'after')
    const reading = a.get('k')
    await readGate.reached
    deleteGate.release()
    await deleting
    readGate.release()
    expect(await reading).toBe('old')
    expect(await a.get('k')).toBeUndefined()
    expect(await a.get('k')).toBeUndefined()
  })
})

describe('read-your-writes across a tag invalidation that could not reach L2', () => {
  it("a node's write made after its own queued invalidation survives that invalidation's retry", async () => {
    const clock = new ManualClock()
    const l2 = memoryStore({ clock })
    const gated = gatedStore(l2)
    const bus = memoryBus()
    const a = createCache({ namespace: 'ryw-tags', clock, l2: gated.store, bus, circuitBreaker: false })
    const b = createCache({ namespace: 'ryw-tags', clock, l2, bus })
    caches.push(a, b)
    await Promise.all([a.ready(), b.ready()])
    await b.set('old', 'x', { tags: ['t'] })
    gated.fail('bumpStamps', new Error('down'))
    await a.invalidateTags(['t']) // queued, and in effect on A at once
    expect(await a.get('old')).toBeUndefined()
    gated.fail('bumpStamps', undefined)
    clock.advance(5)
    await b.invalidateTags(['t']) // another node bumps past A's proposal meanwhile
    await a.set('k', 'mine', { tags: ['t'] }) // reaches L2 before A's queued invalidation
    const outage = (a as unknown as { rt: { outage: { retry(): Promise<void>; size: number } } }).rt.outage
    await outage.retry()
    expect(outage.size).toBe(0)
    expect(await a.get('k')).toBe('mine')
    expect(await b.get('k')).toBe('mine')
    expect(await a.get('old')).toBeUndefined()
    expect(await b.get('old')).toBeUndefined()
  })

  it("an invalidation that began after a write resolved removes it, however the nodes' clocks number them", async () => {
    // Time stands still, so both nodes number their versions and generations within one millisecond, where
    // A's counter has run ahead of B's. B has not heard of A's write yet (its delivery is lost).
    const clock = new ManualClock()
    const l2 = memoryStore({ clock })
    const bus = memoryBus()
    const lossy = faultyBus(bus)
    const a = createCache({ namespace: 'ryw-clocks', clock, l2, bus })
    const b = createCache({ namespace: 'ryw-clocks', clock, l2, bus: lossy.bus })
    caches.push(a, b)
    await Promise.all([a.ready(), b.ready()])
    for (let i = 0; i < 10; i++) await a.set(`warm${i}`, i)
    lossy.cut('nothing')
    await a.set('k', 'v', { tags: ['t'] })
    lossy.heal()
    await b.invalidateTags(['t'])
    expect(await b.get('k')).toBeUndefined()
    expect(await a.get('k')).toBeUndefined()
  })
})
