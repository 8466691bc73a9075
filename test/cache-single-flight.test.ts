import { afterEach, describe, expect, it } from 'vitest'
import { type Cache, createCache, memoryStore } from '../src/index.js'

let cache: Cache
afterEach(async () => {
  await cache?.close()
})

function deferred<T>() {
  let resolve!: (value: T) => void
  let reject!: (err: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

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
