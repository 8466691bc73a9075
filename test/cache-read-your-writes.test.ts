import { afterEach, describe, expect, it } from 'vitest'
import { type Cache, createCache, ManualClock, memoryBus, memoryStore } from '../src/index.js'
import { gatedStore } from './support/faults.js'

// Guarantee 1 against reads that race this node's own writes: a read that began while a write was on
// its way to L2 may read the older value, and its reply may arrive after the write resolved. It must
// then not enter L1, or the node's next read would return it.

const caches: Cache[] = []
afterEach(async () => {
  await Promise.all(caches.splice(0).map((cache) => cache.close()))
})

/** Node A (its L2 calls can be held) and node B on one memoryStore and bus; B has written k = 'old'. */
async function twoNodes() {
  const clock = new ManualClock()
  const l2 = memoryStore({ clock })
  const gated = gatedStore(l2)
  const bus = memoryBus()
  const a = createCache({ namespace: 'ryw', clock, l2: gated.store, bus })
  const b = createCache({ namespace: 'ryw', clock, l2, bus })
  caches.push(a, b)
  await Promise.all([a.ready(), b.ready()])
  await b.set('k', 'old')
  return { a, gated }
}

describe('read-your-writes against a read that raced the write', () => {
  it('set: a read that began after the write did and read L2 before it landed does not fill L1', async () => {
    const { a, gated } = await twoNodes()
    const writeGate = gated.gate('set', 'before')
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
  })

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
