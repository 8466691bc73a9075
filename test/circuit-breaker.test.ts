import { describe, expect, it, vi } from 'vitest'
import { ManualClock } from '../src/clock.js'
import { CircuitBreaker, type CircuitState } from '../src/remote/circuit-breaker.js'
import { RemoteTier } from '../src/remote/remote-tier.js'
import type { RemoteStore } from '../src/stores/store.js'
import { deferred } from './support/deferred.js'
import { settlesAtOnce } from './support/order.js'

function breaker(failureThreshold = 3, openMs = 1000) {
  const clock = new ManualClock()
  const changes: CircuitState[] = []
  const cb = new CircuitBreaker('test', { failureThreshold, openMs }, clock, (state) => changes.push(state))
  return { clock, changes, cb }
}

const ok = () => Promise.resolve('ok')
const boom = () => Promise.reject(new Error('boom'))

async function failTimes(cb: CircuitBreaker, times: number) {
  for (let i = 0; i < times; i++) await expect(cb.run(boom)).rejects.toThrow('boom')
}

describe('CircuitBreaker', () => {
  it('opens after failureThreshold consecutive failures, not before', async () => {
    const { cb, changes } = breaker(3)
    await failTimes(cb, 2)
    expect(cb.state).toBe('closed')
    expect(cb.opened).toBe(0)
    await failTimes(cb, 1)
    expect(cb.state).toBe('open')
    expect(cb.opened).toBe(1)
    expect(changes).toEqual(['open'])
  })

  it('a success resets the count of consecutive failures', async () => {
    const { cb } = breaker(3)
    await failTimes(cb, 2)
    expect(await cb.run(ok)).toBe('ok')
    await failTimes(cb, 2)
    expect(cb.state).toBe('closed')
    await failTimes(cb, 1)
    expect(cb.state).toBe('open')
  })

  it('fails fast while open, without calling, until openMs has passed', async () => {
    const { cb, clock } = breaker(2, 1000)
    await failTimes(cb, 2)
    const call = vi.fn(ok)
    for (let i = 0; i < 5; i++) {
      await expect(cb.run(call)).rejects.toMatchObject({ code: 'E_CIRCUIT_OPEN' })
    }
    clock.advance(999)
    await expect(cb.run(call)).rejects.toMatchObject({ code: 'E_CIRCUIT_OPEN' })
    expect(cb.allow()).toBe(false)
    expect(call).not.toHaveBeenCalled()
    expect(cb.state).toBe('open')
  })

  it('half-open lets exactly one probe through; a success closes the circuit', async () => {
    const { cb, clock, changes } = breaker(2, 1000)
    await failTimes(cb, 2)
    clock.advance(1000)
    const probe = deferred<string>()
    const probeCall = vi.fn(() => probe.promise)
    const other = vi.fn(ok)
    const first = cb.run(probeCall)
    expect(cb.state).toBe('half-open')
    expect(probeCall).toHaveBeenCalledTimes(1)
    // While the probe is in flight, every other call fails fast without being made.
    for (let i = 0; i < 3; i++) {
      await expect(cb.run(other)).rejects.toMatchObject({ code: 'E_CIRCUIT_OPEN' })
    }
    expect(other).not.toHaveBeenCalled()
    probe.resolve('probed')
    expect(await first).toBe('probed')
    expect(cb.state).toBe('closed')
    expect(await cb.run(other)).toBe('ok')
    expect(other).toHaveBeenCalledTimes(1)
    expect(changes).toEqual(['open', 'half-open', 'closed'])
    expect(cb.opened).toBe(1)
  })

  it('a failed probe reopens the circuit for another openMs; `opened` counts every opening', async () => {
    const { cb, clock, changes } = breaker(2, 1000)
    await failTimes(cb, 2)
    expect(cb.opened).toBe(1)
    clock.advance(1000)
    await expect(cb.run(boom)).rejects.toThrow('boom') // the probe
    expect(cb.state).toBe('open')
    expect(cb.opened).toBe(2)
    // Open again for a full openMs from the failed probe.
    const call = vi.fn(ok)
    clock.advance(500)
    await expect(cb.run(call)).rejects.toMatchObject({ code: 'E_CIRCUIT_OPEN' })
    expect(call).not.toHaveBeenCalled()
    clock.advance(500)
    expect(await cb.run(call)).toBe('ok')
    expect(cb.state).toBe('closed')
    expect(changes).toEqual(['open', 'half-open', 'open', 'half-open', 'closed'])
    // After closing, it takes the full threshold again to open.
    await failTimes(cb, 1)
    expect(cb.state).toBe('closed')
    await failTimes(cb, 1)
    expect(cb.state).toBe('open')
    expect(cb.opened).toBe(3)
  })

  it('probeNow (the connection is back) lets the next call probe at once instead of after openMs', async () => {
    const { cb, changes } = breaker(2, 60_000)
    await failTimes(cb, 2)
    expect(cb.allow()).toBe(false)
    cb.probeNow()
    expect(cb.state).toBe('half-open')
    expect(await cb.run(ok)).toBe('ok')
    expect(cb.state).toBe('closed')
    expect(changes).toEqual(['open', 'half-open', 'closed'])
    cb.probeNow() // closed: nothing to do
    expect(changes).toHaveLength(3)
  })

  it('a probe that rejects with a synchronous throw still counts as a failure and frees the probe slot', async () => {
    const { cb, clock } = breaker(1, 100)
    await failTimes(cb, 1)
    clock.advance(100)
    await expect(
      cb.run(() => {
        throw new Error('sync')
      }),
    ).rejects.toThrow('sync')
    expect(cb.state).toBe('open')
    clock.advance(100)
    expect(await cb.run(ok)).toBe('ok')
    expect(cb.state).toBe('closed')
  })
})

/** A store whose every method is a spy; `get` answers after `delayMs` (or never, if Infinity). */
function fakeStore(delayMs = 0): RemoteStore & { get: ReturnType<typeof vi.fn> } {
  const answer = <T>(value: T) =>
    new Promise<T>((resolve) => {
      if (Number.isFinite(delayMs)) setTimeout(() => resolve(value), delayMs)
    })
  return {
    name: 'fake',
    get: vi.fn(() => answer({ bytes: new Uint8Array([1]), version: 7 })),
    set: vi.fn(() => answer(1)),
    setIfNewer: vi.fn(() => answer(undefined)),
    delete: vi.fn(() => answer(1)),
    deleteIfNewer: vi.fn(() => answer(undefined)),
    getStamps: vi.fn(() => answer([0])),
    bumpStamps: vi.fn(() => answer([1])),
    close: vi.fn(async () => {}),
  }
}

describe('RemoteTier deadlines', () => {
  it('a call made past its deadline fails at once with E_L2_TIMEOUT without calling the store or the breaker', async () => {
    const store = fakeStore()
    const { cb } = breaker(1, 1000)
    const tier = new RemoteTier(store, 10_000, cb)
    const past = Date.now() - 1
    // "At once": each fails before the event loop's next turn (no timer, nowhere near the 10 s timeout).
    const calls = [
      tier.get('k', past),
      tier.set('k', new Uint8Array(), 1, 1000, past),
      tier.getStamps(['s'], past),
      tier.delete('k', 1, 1000, Date.now()),
    ]
    // Handled now: each rejects before the loop below awaits it, which would be an unhandled rejection.
    for (const call of calls) call.catch(() => {})
    for (const call of calls) expect(await settlesAtOnce(call)).toBe(true)
    await expect(calls[0]).rejects.toMatchObject({ code: 'E_L2_TIMEOUT' })
    await expect(calls[1]).rejects.toMatchObject({
      code: 'E_L2_TIMEOUT',
    })
    await expect(calls[2]).rejects.toMatchObject({ code: 'E_L2_TIMEOUT' })
    await expect(calls[3]).rejects.toMatchObject({ code: 'E_L2_TIMEOUT' })
    expect(store.get).not.toHaveBeenCalled()
    expect(store.set).not.toHaveBeenCalled()
    expect(store.getStamps).not.toHaveBeenCalled()
    expect(store.delete).not.toHaveBeenCalled()
    // Not a failure of L2: the breaker (threshold 1) did not count it.
    expect(cb.state).toBe('closed')
    expect(cb.opened).toBe(0)
  })

  it('probe() on reconnect: an open circuit is probed through the given call and closes if it succeeds', async () => {
    const store = fakeStore()
    store.get = vi.fn(() => Promise.reject(new Error('down')))
    const { cb } = breaker(2, 60_000)
    const tier = new RemoteTier(store, 10_000, cb)
    for (let i = 0; i < 2; i++) await expect(tier.get('k')).rejects.toThrow('down')
    expect(cb.state).toBe('open')
    const probeCall = vi.fn(() => Promise.resolve([0]))
    tier.probe(probeCall)
    expect(probeCall).toHaveBeenCalledTimes(1)
    await vi.waitFor(() => expect(cb.state).toBe('closed'))
    tier.probe(probeCall) // closed: no probe
    expect(probeCall).toHaveBeenCalledTimes(1)
  })

  it('a failed reconnect probe leaves the circuit open for another openMs', async () => {
    const store = fakeStore()
    store.get = vi.fn(() => Promise.reject(new Error('down')))
    const { cb } = breaker(1, 60_000)
    const tier = new RemoteTier(store, 10_000, cb)
    await expect(tier.get('k')).rejects.toThrow('down')
    tier.probe(() => Promise.reject(new Error('still down')))
    await vi.waitFor(() => expect(cb.opened).toBe(2))
    expect(cb.state).toBe('open')
    await expect(tier.get('k')).rejects.toMatchObject({ code: 'E_CIRCUIT_OPEN' })
  })

  it('a call within its deadline reaches the store', async () => {
    const store = fakeStore()
    const tier = new RemoteTier(store, 1000, undefined)
    expect(await tier.get('k', Date.now() + 1000)).toEqual({ bytes: new Uint8Array([1]), version: 7 })
    expect(store.get).toHaveBeenCalledWith('k')
  })

  it('a store call that does not answer fails with E_L2_TIMEOUT after the sooner of l2Timeout and the deadline', async () => {
    // Fake timers and Date: it fails exactly when the deadline (50 ms) is reached, not l2Timeout (5 s).
    vi.useFakeTimers()
    try {
      const store = fakeStore(Number.POSITIVE_INFINITY)
      const tier = new RemoteTier(store, 5000, undefined)
      const started = Date.now()
      const call = tier.get('k', Date.now() + 50)
      let settled = false
      call
        .catch(() => {})
        .finally(() => {
          settled = true
        })
      await vi.advanceTimersByTimeAsync(49)
      expect(settled).toBe(false)
      await vi.advanceTimersByTimeAsync(1)
      expect(settled).toBe(true)
      await expect(call).rejects.toMatchObject({ code: 'E_L2_TIMEOUT' })
      const took = Date.now() - started
      expect(took).toBeGreaterThanOrEqual(45)
      expect(took).toBeLessThan(2000)
      expect(store.get).toHaveBeenCalledTimes(1)
    } finally {
      vi.useRealTimers()
    }
  })

  it('calls of one operation share its deadline: the second waits only for what is left', async () => {
    // Fake timers and Date: the first call fails when the 100 ms are spent, the second with no time passing.
    vi.useFakeTimers()
    try {
      const store = fakeStore(Number.POSITIVE_INFINITY)
      const tier = new RemoteTier(store, 100, undefined)
      const deadline = tier.deadline()
      const started = Date.now()
      const first = expect(tier.get('a', deadline)).rejects.toMatchObject({ code: 'E_L2_TIMEOUT' })
      await vi.advanceTimersByTimeAsync(100)
      await first
      expect(Date.now() - started).toBe(100)
      // The budget is spent: the next call of the same operation fails at once without a store call.
      await expect(tier.getStamps(['t'], deadline)).rejects.toMatchObject({ code: 'E_L2_TIMEOUT' })
      expect(store.getStamps).not.toHaveBeenCalled()
      expect(Date.now() - started).toBeLessThan(1000)
      expect(Date.now() - started).toBe(100)
    } finally {
      vi.useRealTimers()
    }
  })

  it('reports a timeout only once Date.now() has reached the deadline, even if its timer fires early', async () => {
    // Timers and Date.now() can disagree by a millisecond; here the timers are fake, so they run far ahead.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    try {
      const store = fakeStore(Number.POSITIVE_INFINITY)
      const tier = new RemoteTier(store, 50, undefined)
      const deadline = tier.deadline()
      let timedOut = false
      const first = tier.get('a', deadline).catch((err: { code: string }) => {
        timedOut = err.code === 'E_L2_TIMEOUT'
      })
      await vi.advanceTimersByTimeAsync(50) // the timer fires, but Date.now() has barely moved
      expect(timedOut).toBe(false)
      while (Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve))
      await vi.advanceTimersByTimeAsync(50)
      await first
      expect(timedOut).toBe(true)
      await expect(tier.getStamps(['t'], deadline)).rejects.toMatchObject({ code: 'E_L2_TIMEOUT' })
      expect(store.getStamps).not.toHaveBeenCalled()
    } finally {
      vi.useRealTimers()
    }
  })

  it('timeouts count as failures for the breaker, which then fails fast without calling', async () => {
    const store = fakeStore(Number.POSITIVE_INFINITY)
    const { cb } = breaker(2, 60_000)
    const tier = new RemoteTier(store, 20, cb)
    await expect(tier.get('a')).rejects.toMatchObject({ code: 'E_L2_TIMEOUT' })
    await expect(tier.get('b')).rejects.toMatchObject({ code: 'E_L2_TIMEOUT' })
    expect(cb.state).toBe('open')
    expect(store.get).toHaveBeenCalledTimes(2)
    await expect(tier.get('c')).rejects.toMatchObject({ code: 'E_CIRCUIT_OPEN' })
    expect(store.get).toHaveBeenCalledTimes(2)
  })
})
