import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../src/clock.js'
import { createCache, memoryStore, type RemoteStore } from '../../src/index.js'
import { CircuitBreaker } from '../../src/remote/circuit-breaker.js'
import { RemoteTier } from '../../src/remote/remote-tier.js'
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
