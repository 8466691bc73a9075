import diagnosticsChannel from 'node:diagnostics_channel'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { type Cache, type CacheOptions, createCache, memoryStore } from '../src/index.js'

// Fake timers drive both the clock (Date.now) and the loader timeouts (setTimeout), so every
// scenario below is deterministic and instant.
const clock = { now: () => Date.now() }
let cache: Cache
beforeEach(() => {
  vi.useFakeTimers({ now: 1_700_000_000_000 })
})
afterEach(async () => {
  vi.useRealTimers()
  await cache?.close()
})

function make(options: CacheOptions = {}) {
  cache = createCache({ namespace: 'fresh', clock, l2: memoryStore({ clock }), ...options })
  return cache
}

/** A loader whose calls are counted and whose answers are released by the test. */
function controlledLoader() {
  const pending: { resolve: (v: string) => void; reject: (e: Error) => void }[] = []
  const loader = vi.fn(
    () =>
      new Promise<string>((resolve, reject) => {
        pending.push({ resolve, reject })
      }),
  )
  return { loader, pending }
}

describe('grace (stale-while-revalidate)', () => {
  it('serves the expired value to every caller while exactly one background refresh runs', async () => {
    make({ ttl: '10s', grace: '1h' })
    await cache.set('k', 'v1')
    vi.advanceTimersByTime(11_000)
    const { loader, pending } = controlledLoader()
    const answers = await Promise.all(Array.from({ length: 20 }, () => cache.getOrSet('k', loader)))
    expect(answers.every((a) => a === 'v1')).toBe(true)
    expect(loader).toHaveBeenCalledTimes(1)
    expect(cache.stats().staleServed).toBe(20)
    pending[0]!.resolve('v2')
    await vi.advanceTimersByTimeAsync(0)
    expect(await cache.getOrSet('k', loader)).toBe('v2')
    expect(loader).toHaveBeenCalledTimes(1)
  })

  it('past grace the value is gone and callers wait for the loader', async () => {
    make({ ttl: '10s', grace: '5s' })
    await cache.set('k', 'v1')
    vi.advanceTimersByTime(15_000)
    expect(await cache.get('k')).toBeUndefined()
    expect(await cache.getOrSet('k', async () => 'v2')).toBe('v2')
  })

  it('plain get() does not serve a stale value while L2 answers', async () => {
    make({ ttl: '10s', grace: '1h' })
    await cache.set('k', 'v1')
    vi.advanceTimersByTime(11_000)
    expect(await cache.get('k')).toBeUndefined()
  })
})

describe('refreshAhead', () => {
  it('a request after that fraction of the TTL triggers one background refresh and gets the current value', async () => {
    make({ ttl: '10s' })
    const { loader, pending } = controlledLoader()
    const first = cache.getOrSet('k', loader, { refreshAhead: 0.8 })
    await vi.advanceTimersByTimeAsync(0)
    pending[0]!.resolve('v1')
    expect(await first).toBe('v1')
    vi.advanceTimersByTime(7_999)
    expect(await cache.getOrSet('k', loader, { refreshAhead: 0.8 })).toBe('v1')
    expect(loader).toHaveBeenCalledTimes(1)
    vi.advanceTimersByTime(1)
    expect(await cache.getOrSet('k', loader, { refreshAhead: 0.8 })).toBe('v1')
    expect(await cache.getOrSet('k', loader, { refreshAhead: 0.8 })).toBe('v1')
    expect(loader).toHaveBeenCalledTimes(2)
    pending[1]!.resolve('v2')
    await vi.advanceTimersByTimeAsync(0)
    expect(await cache.get('k')).toBe('v2')
  })

  it('a cache-level refreshAhead applies to getOrSet hits too (they do not take the L1 shortcut of get)', async () => {
    let n = 0
    const loader = vi.fn(async () => `v${++n}`)
    make({ ttl: '10s', refreshAhead: 0.5 })
    expect(await cache.getOrSet('k', loader)).toBe('v1')
    vi.advanceTimersByTime(4_000)
    expect(await cache.getOrSet('k', loader)).toBe('v1') // before the refresh point: a plain hit
    expect(loader).toHaveBeenCalledTimes(1)
    vi.advanceTimersByTime(1_000)
    expect(await cache.getOrSet('k', loader)).toBe('v1') // at it: served, and refreshed behind
    await vi.advanceTimersByTimeAsync(0)
    expect(loader).toHaveBeenCalledTimes(2)
    expect(await cache.getOrSet('k', loader)).toBe('v2')
  })

  it('a getOrSet hit counts and reports like a get hit, and hands out a copy', async () => {
    make({ ttl: '10s' })
    const loader = vi.fn(async () => ({ n: 1 }))
    const first = await cache.getOrSet('k', loader)
    const hits = cache.stats().l1.hits
    const events: unknown[] = []
    const listen = (message: unknown) => events.push(message)
    diagnosticsChannel.subscribe('coherent-cache:hit', listen)
    try {
      const again = await cache.getOrSet('k', loader)
      const viaGet = await cache.get('k')
      expect([again, viaGet]).toEqual([{ n: 1 }, { n: 1 }])
      expect(again).not.toBe(first)
      ;(again as { n: number }).n = 99 // a caller's copy: the cached value is untouched
      expect(await cache.getOrSet('k', loader)).toEqual({ n: 1 })
    } finally {
      diagnosticsChannel.unsubscribe('coherent-cache:hit', listen)
    }
    expect(loader).toHaveBeenCalledTimes(1)
    expect(cache.stats().l1.hits).toBe(hits + 3)
    expect(events).toEqual([
      { namespace: 'fresh', path: '', key: 'k', tier: 'l1' },
      { namespace: 'fresh', path: '', key: 'k', tier: 'l1' },
      { namespace: 'fresh', path: '', key: 'k', tier: 'l1' },
    ])
  })

  it('works for get() with the cache-level loader and refreshAhead', async () => {
    let n = 0
    make({ ttl: '10s', refreshAhead: 0.5, loader: async () => `v${++n}` })
    expect(await cache.get('k')).toBe('v1')
    vi.advanceTimersByTime(5_000)
    expect(await cache.get('k')).toBe('v1')
    await vi.advanceTimersByTimeAsync(0)
    expect(await cache.get('k')).toBe('v2')
  })
})

describe('probabilistic early refresh (XFetch)', () => {
  it('refreshes early with a probability that grows towards expiry and with the load time', async () => {
    let draw = 0.5
    make({ ttl: '10s', earlyRefresh: { beta: 1 }, random: () => draw })
    const loader = vi.fn(async () => {
      await new Promise((resolve) => setTimeout(resolve, 1_000)) // the load takes 1 s
      return 'v'
    })
    const first = cache.getOrSet('k', loader)
    await vi.advanceTimersByTimeAsync(1_000)
    await first
    // Written at t=1s, expires at t=11s. -ln(0.5) × 1 s ≈ 0.69 s: refresh once within 0.69 s of expiry.
    vi.advanceTimersByTime(9_000) // t = 10 s: 1 s before expiry
    await cache.getOrSet('k', loader)
    expect(loader).toHaveBeenCalledTimes(1)
    vi.advanceTimersByTime(400) // 0.6 s before expiry
    await cache.getOrSet('k', loader)
    expect(loader).toHaveBeenCalledTimes(2)
    // A draw near 0 makes -ln(draw) large: a refresh long before expiry.
    await vi.advanceTimersByTimeAsync(1_000)
    draw = 1e-9
    await cache.getOrSet('k', loader)
    expect(loader).toHaveBeenCalledTimes(3)
  })
})

describe('loader timeouts', () => {
  it('past the soft timeout a caller with a stale value gets it; the loader finishes in the background', async () => {
    make({ ttl: '10s', grace: '1h', loaderTimeout: { soft: '100ms', hard: '5s' } })
    await cache.set('k', 'old')
    vi.advanceTimersByTime(11_000)
    const { loader, pending } = controlledLoader()
    const answer = cache.getOrSet('k', loader)
    await vi.advanceTimersByTimeAsync(100)
    expect(await answer).toBe('old')
    pending[0]!.resolve('new')
    await vi.advanceTimersByTimeAsync(0)
    expect(await cache.get('k')).toBe('new')
  })

  it('within the soft timeout the fresh value wins over the stale one', async () => {
    make({ ttl: '10s', grace: '1h', loaderTimeout: { soft: '100ms' } })
    await cache.set('k', 'old')
    vi.advanceTimersByTime(11_000)
    const { loader, pending } = controlledLoader()
    const answer = cache.getOrSet('k', loader)
    await vi.advanceTimersByTimeAsync(50)
    pending[0]!.resolve('new')
    expect(await answer).toBe('new')
  })

  it('past the hard timeout a caller without a stale value gets E_LOADER_HARD_TIMEOUT; the value still lands', async () => {
    make({ ttl: '10s', loaderTimeout: { soft: '100ms', hard: '1s' } })
    const { loader, pending } = controlledLoader()
    const answer = cache.getOrSet('k', loader)
    const assertion = expect(answer).rejects.toMatchObject({ code: 'E_LOADER_HARD_TIMEOUT' })
    await vi.advanceTimersByTimeAsync(1_000)
    await assertion
    pending[0]!.resolve('late')
    await vi.advanceTimersByTimeAsync(0)
    expect(await cache.get('k')).toBe('late')
    expect(loader).toHaveBeenCalledTimes(1)
  })

  it('per-call timeouts override the cache defaults', async () => {
    make({ ttl: '10s', loaderTimeout: { hard: '10s' } })
    const { loader } = controlledLoader()
    const answer = cache.getOrSet('k', loader, { loaderTimeout: { hard: '200ms' } })
    const assertion = expect(answer).rejects.toMatchObject({ code: 'E_LOADER_HARD_TIMEOUT' })
    await vi.advanceTimersByTimeAsync(200)
    await assertion
  })
})

describe('fail-safe', () => {
  it('a loader that throws while a stale value exists within grace returns the stale value; retries are throttled', async () => {
    make({ ttl: '10s', grace: '1h', failSafeThrottle: '30s', loaderTimeout: { soft: '1s' } })
    await cache.set('k', 'last good')
    vi.advanceTimersByTime(11_000)
    const loader = vi.fn(async () => {
      throw new Error('database down')
    })
    expect(await cache.getOrSet('k', loader)).toBe('last good')
    expect(loader).toHaveBeenCalledTimes(1)
    // Within the throttle: no new attempt, the stale value answers at once.
    vi.advanceTimersByTime(29_000)
    expect(await cache.getOrSet('k', loader)).toBe('last good')
    expect(loader).toHaveBeenCalledTimes(1)
    // After it: one new attempt.
    vi.advanceTimersByTime(1_000)
    expect(await cache.getOrSet('k', loader)).toBe('last good')
    expect(loader).toHaveBeenCalledTimes(2)
    // The database is back.
    vi.advanceTimersByTime(30_000)
    expect(await cache.getOrSet('k', async () => 'recovered')).toBe('recovered')
  })

  it('without a stale value the loader error reaches the caller', async () => {
    make({ ttl: '10s', grace: '1h' })
    await expect(
      cache.getOrSet('k', async () => {
        throw new Error('database down')
      }),
    ).rejects.toThrow('database down')
  })
})

describe('option validation', () => {
  it.each([
    [{ refreshAhead: 1 }, 'refreshAhead'],
    [{ refreshAhead: -0.1 }, 'refreshAhead'],
    [{ loaderTimeout: { soft: '2s', hard: '1s' } }, 'loaderTimeout.soft'],
    [{ loaderTimeout: { hard: 0 } }, 'loaderTimeout.hard'],
    [{ earlyRefresh: { beta: 0 } }, 'earlyRefresh.beta'],
    [{ failSafeThrottle: 'soon' }, 'failSafeThrottle'],
    [{ distributedLock: { onTimeout: 'wait' } }, 'distributedLock.onTimeout'],
    [{ circuitBreaker: { failureThreshold: 0 } }, 'circuitBreaker.failureThreshold'],
  ])('%o is rejected naming %s', (options, option) => {
    expect(() => createCache(options as CacheOptions)).toThrow(
      expect.objectContaining({ code: 'E_INVALID_OPTION', option }),
    )
  })
})
