import { describe, expect, it, vi } from 'vitest'
import { ManualClock } from '../../src/clock.js'
import { createCache, memoryStore, type RemoteStore } from '../../src/index.js'
import { CircuitBreaker } from '../../src/remote/circuit-breaker.js'
import { RemoteTier } from '../../src/remote/remote-tier.js'
import type { StoredEntry } from '../../src/stores/store.js'
import { gatedStore } from '../support/faults.js'

/** A memoryStore that can report reconnects, as a Redis store does. */
function reconnectingStore() {
  const gated = gatedStore(memoryStore())
  const listeners = new Set<() => void>()
  const store: RemoteStore = {
    ...gated.store,
    onReconnect(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
  }
  return {
    store,
    gated,
    listeners,
    reconnect: () => {
      for (const listener of listeners) listener()
    },
  }
}

describe('RemoteTier: resilience attached to its store', () => {
  it('probes with the given call when its store reports a reconnect; close() stops listening', async () => {
    const { store, gated, listeners, reconnect } = reconnectingStore()
    const clock = new ManualClock()
    const breaker = new CircuitBreaker('member', { failureThreshold: 1, openMs: 60_000 }, clock, () => {})
    let probes = 0
    const tier = new RemoteTier(store, 1_000, breaker, {
      probe: () => {
        probes++
        return store.getStamps(['probe'])
      },
    })
    gated.fail('get', new Error('down'))
    await expect(tier.get('k')).rejects.toThrow('down')
    expect(breaker.state).toBe('open')
    gated.fail('get', undefined)
    reconnect()
    expect(probes).toBe(1)
    await expect.poll(() => breaker.state).toBe('closed')
    tier.close()
    expect(listeners.size).toBe(0)
  })

  it('a store that guards its members gets no circuit breaker of the cache around it', async () => {
    const gated = gatedStore(memoryStore())
    const store: RemoteStore = { ...gated.store, guardsMembers: true }
    const cache = createCache({
      namespace: 'members',
      l1: false,
      l2: store,
      circuitBreaker: { failureThreshold: 2 },
    })
    try {
      gated.fail('get', new Error('one member down'))
      for (let i = 0; i < 5; i++) expect(await cache.get('k')).toBeUndefined()
      // Every call still reached the store: nothing opened a circuit around all its members.
      expect(gated.calls.get).toBe(5)
      expect(cache.stats().l2).toMatchObject({ circuit: 'closed', circuitOpened: 0, errors: 5 })
      gated.fail('get', undefined)
      await cache.set('k', 'v')
      expect(await cache.get('k')).toBe('v')
    } finally {
      await cache.close()
    }
  })

  it('an ordinary store gets the cache breaker: it opens after the threshold and calls stop', async () => {
    const gated = gatedStore(memoryStore())
    const cache = createCache({
      namespace: 'plain',
      l1: false,
      l2: gated.store,
      circuitBreaker: { failureThreshold: 2 },
    })
    try {
      gated.fail('get', new Error('down'))
      for (let i = 0; i < 5; i++) expect(await cache.get('k')).toBeUndefined()
      expect(gated.calls.get).toBe(2)
      expect(cache.stats().l2).toMatchObject({ circuit: 'open', circuitOpened: 1 })
    } finally {
      await cache.close()
    }
  })
})

/** A store whose gets answer only when the test says so (by key); other calls go to a memoryStore. */
function heldStore() {
  const pending = new Map<string, (entry: StoredEntry | undefined) => void>()
  const store: RemoteStore = {
    ...gatedStore(memoryStore()).store,
    get: (key) =>
      new Promise<StoredEntry | undefined>((resolve) => {
        pending.set(key, resolve)
      }),
  }
  const answer = (key: string) => {
    pending.get(key)!({ bytes: new Uint8Array([1]), version: 1 })
    pending.delete(key)
  }
  return { store, answer }
}

/** Whether `promise` has settled (it is observed, so a rejection is not unhandled). */
function watchSettled(promise: Promise<unknown>): { settled: boolean; error?: unknown } {
  const state: { settled: boolean; error?: unknown } = { settled: false }
  promise.then(
    () => {
      state.settled = true
    },
    (error: unknown) => {
      state.settled = true
      state.error = error
    },
  )
  return state
}

describe('RemoteTier: one timer for the calls in flight', () => {
  // Fake timers and Date: each call must fail exactly at its own end, whatever the others do.
  it('a call that hangs among calls that answer still fails at its timeout; those that answered keep their answers', async () => {
    vi.useFakeTimers()
    try {
      const { store, answer } = heldStore()
      const tier = new RemoteTier(store, 100, undefined)
      const a = watchSettled(tier.get('a'))
      await vi.advanceTimersByTimeAsync(10)
      const hung = watchSettled(tier.get('hung'))
      await vi.advanceTimersByTimeAsync(10)
      const c = watchSettled(tier.get('c'))
      answer('a')
      answer('c')
      await vi.advanceTimersByTimeAsync(0)
      expect([a, c].map((s) => [s.settled, s.error])).toEqual([
        [true, undefined],
        [true, undefined],
      ])
      // 'hung' began at 10 ms: it fails at 110 ms, not at 100 (the first call's end) nor later.
      await vi.advanceTimersByTimeAsync(89)
      expect(hung.settled).toBe(false)
      await vi.advanceTimersByTimeAsync(1)
      expect(hung.settled).toBe(true)
      expect(hung.error).toMatchObject({ code: 'E_L2_TIMEOUT' })
      // An answer after the timeout changes nothing.
      answer('hung')
      await vi.advanceTimersByTimeAsync(0)
      expect(hung.error).toMatchObject({ code: 'E_L2_TIMEOUT' })
    } finally {
      vi.useRealTimers()
    }
  })

  it('a call with a sooner deadline than the calls already waiting fails at its own deadline', async () => {
    vi.useFakeTimers()
    try {
      const { store } = heldStore()
      const tier = new RemoteTier(store, 1_000, undefined)
      const long = watchSettled(tier.get('long'))
      const short = watchSettled(tier.get('short', Date.now() + 30))
      await vi.advanceTimersByTimeAsync(29)
      expect(short.settled).toBe(false)
      await vi.advanceTimersByTimeAsync(1)
      expect(short.error).toMatchObject({ code: 'E_L2_TIMEOUT' })
      expect(long.settled).toBe(false)
      await vi.advanceTimersByTimeAsync(970)
      expect(long.error).toMatchObject({ code: 'E_L2_TIMEOUT' })
    } finally {
      vi.useRealTimers()
    }
  })

  it('leaves no timer behind once no call is in flight, and times out calls made after that', async () => {
    vi.useFakeTimers()
    try {
      const { store, answer } = heldStore()
      const breaker = new CircuitBreaker(
        't',
        { failureThreshold: 1, openMs: 60_000 },
        new ManualClock(),
        () => {},
      )
      const tier = new RemoteTier(store, 100, breaker)
      const a = watchSettled(tier.get('a'))
      const b = watchSettled(tier.get('b'))
      answer('b')
      answer('a')
      await vi.advanceTimersByTimeAsync(0)
      expect(a.error ?? b.error).toBeUndefined()
      // Nothing in flight: nothing keeps the process awake until the old calls' timeouts.
      expect(vi.getTimerCount()).toBe(0)
      const later = watchSettled(tier.get('later'))
      expect(vi.getTimerCount()).toBe(1)
      await vi.advanceTimersByTimeAsync(100)
      expect(later.error).toMatchObject({ code: 'E_L2_TIMEOUT' })
      // The timeout counted as a failure: the breaker opened.
      expect(breaker.state).toBe('open')
      expect(vi.getTimerCount()).toBe(0)
    } finally {
      vi.useRealTimers()
    }
  })
})
