import { afterEach, describe, expect, it } from 'vitest'
import { type Cache, createCache, memoryStore } from '../src/index.js'
import { deferred } from './support/deferred.js'

let cache: Cache
afterEach(async () => {
  await cache?.close()
})

describe.each([
  ['L1 only', () => ({})],
  ['L1 + L2', () => ({ l2: memoryStore() })],
])('single flight (%s)', (_name, tiers) => {
  it('1,000 concurrent callers of a cold key cause exactly one loader call', async () => {
    cache = createCache({ namespace: 'sf', ...tiers() })
    let calls = 0
    const gate = deferred<void>()
    const loader = async () => {
      calls++
      await gate.promise
      return { answer: 42 }
    }
    const callers = Array.from({ length: 1000 }, () => cache.getOrSet('cold', loader))
    gate.resolve()
    const values = await Promise.all(callers)
    expect(calls).toBe(1)
    expect(values.every((v) => v.answer === 42)).toBe(true)
    // Every caller got its own copy.
    expect(new Set(values).size).toBe(1000)
    expect(cache.stats().loads).toMatchObject({ calls: 1, errors: 0, coalesced: 999 })
  })

  it('a loader error reaches every waiter and is not cached', async () => {
    cache = createCache({ namespace: 'sf', ...tiers() })
    let calls = 0
    const gate = deferred<void>()
    const failing = async () => {
      calls++
      await gate.promise
      throw new Error('db down')
    }
    const callers = Array.from({ length: 50 }, () => cache.getOrSet('k', failing))
    gate.resolve()
    const results = await Promise.allSettled(callers)
    expect(calls).toBe(1)
    for (const result of results) {
      expect(result.status).toBe('rejected')
      expect((result as PromiseRejectedResult).reason.message).toBe('db down')
    }
    expect(await cache.get('k')).toBeUndefined()
    expect(await cache.getOrSet('k', async () => 'recovered')).toBe('recovered')
    expect(cache.stats().loads.errors).toBe(1)
  })

  it('different keys load independently', async () => {
    cache = createCache({ namespace: 'sf', ...tiers() })
    const seen: string[] = []
    await Promise.all(
      ['a', 'b', 'c', 'a', 'b'].map((key) =>
        cache.getOrSet(key, async (k) => {
          seen.push(k)
          return k
        }),
      ),
    )
    expect(seen.sort()).toEqual(['a', 'b', 'c'])
  })
})

describe('shared L2 reads', () => {
  /** A memoryStore whose get() calls are counted and can be held until released. */
  function countingStore() {
    const store = memoryStore()
    const realGet = store.get.bind(store)
    // `held`: replies that reached the hold and waited there.
    const state = { gets: 0, hold: undefined as Promise<void> | undefined, held: 0, fail: false }
    store.get = async (key: string) => {
      state.gets++
      const reply = await realGet(key)
      const hold = state.hold
      if (hold !== undefined) {
        state.held++
        await hold
      }
      if (state.fail) throw new Error('L2 read failed')
      return reply
    }
    return { store, state }
  }

  it('1,000 concurrent callers of a cold key ask L2 once, and the loader once', async () => {
    const { store, state } = countingStore()
    cache = createCache({ namespace: 'sf', l2: store })
    const gate = deferred<void>()
    state.hold = gate.promise
    let calls = 0
    const callers = Array.from({ length: 1000 }, () =>
      cache.getOrSet('cold', async () => {
        calls++
        return 'loaded'
      }),
    )
    gate.resolve()
    expect(await Promise.all(callers)).toEqual(Array(1000).fill('loaded'))
    expect(calls).toBe(1)
    expect(state.gets).toBe(1)
    expect(cache.stats().l2.sharedReads).toBe(999)
  })

  /** A cache without L1 over a countingStore holding k = `value`, whose next L2 replies wait for `gate`. */
  async function heldCache(value: string) {
    const { store, state } = countingStore()
    cache = createCache({ namespace: 'sf', l1: false, l2: store })
    await cache.set('k', value)
    const gate = deferred<void>()
    state.hold = gate.promise
    return { state, gate }
  }

  it("a read that began before this node's own write is not shared with reads after it (read-your-writes)", async () => {
    const { state, gate } = await heldCache('old')
    const early = cache.get('k') // reads 'old' from L2, then waits
    await expect.poll(() => state.held).toBe(1) // its reply is held
    state.hold = undefined
    await cache.set('k', 'new')
    expect(await cache.get('k')).toBe('new')
    gate.resolve()
    expect(await early).toBe('old')
    expect(cache.stats().l2.sharedReads).toBe(0)
  })

  it('a read while another one of the same key is in flight joins it', async () => {
    const { state, gate } = await heldCache('v')
    const reads = [cache.get('k'), cache.get('k'), cache.get('other')]
    gate.resolve()
    expect(await Promise.all(reads)).toEqual(['v', 'v', undefined])
    expect(state.gets).toBe(2)
    expect(cache.stats().l2.sharedReads).toBe(1)
  })

  it('a shared read that fails fails for every caller that joined it, and is not shared afterwards', async () => {
    const { state, gate } = await heldCache('v')
    state.fail = true
    const reads = [cache.get('k'), cache.get('k'), cache.get('k')]
    gate.resolve()
    // get() degrades: an L2 error is a miss for each caller (no stale value to fall back on here).
    expect(await Promise.all(reads)).toEqual([undefined, undefined, undefined])
    expect(state.gets).toBe(1)
    expect(cache.stats().l2).toMatchObject({ sharedReads: 2, errors: 3 })
    state.fail = false
    expect(await cache.get('k')).toBe('v')
    expect(state.gets).toBe(2)
  })
})
