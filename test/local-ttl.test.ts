import { afterEach, describe, expect, it, vi } from 'vitest'
import { type Clock, ManualClock } from '../src/clock.js'
import { LocalTier } from '../src/local/local-tier.js'
import { checkInvariants, recordingTier, runModel } from './support/local-tier.js'

const NEVER = Number.POSITIVE_INFINITY

/** A ManualClock that counts how often it is read. */
class CountingClock extends ManualClock {
  reads = 0
  override now(): number {
    this.reads++
    return super.now()
  }
}

describe('LocalTier TTL', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('serves an entry for exactly ttlMs, then never again', () => {
    const clock = new ManualClock()
    const { tier, evictions } = recordingTier<string>({ maxEntries: 10, clock })
    tier.set('a', 'A', 100)
    clock.advance(99)
    expect(tier.get('a')).toBe('A')
    clock.advance(1)
    expect(tier.peek('a')).toBeUndefined()
    expect(tier.has('a')).toBe(false)
    expect(tier.size).toBe(1) // peek and has do not remove
    expect(tier.get('a')).toBeUndefined()
    expect(tier.size).toBe(0) // get removes it, lazily
    expect(evictions).toEqual([['a', 'A', 'expired']])
    expect(tier.stats).toEqual({ hits: 1, misses: 1, evictedBySize: 0, expired: 1 })
    expect(tier.get('a')).toBeUndefined()
    expect(tier.stats.expired).toBe(1)
    checkInvariants(tier)
  })

  it('never returns an expired entry, whatever the policy and however hot', () => {
    for (const policy of ['lru', 'lfu', 'fifo', 'tinylfu'] as const) {
      const clock = new ManualClock()
      const { tier } = recordingTier<number>({ maxEntries: 4, policy, clock })
      tier.set('hot', 1, 50)
      for (let i = 0; i < 100; i++) expect(tier.get('hot')).toBe(1)
      clock.advance(50)
      expect(tier.get('hot'), policy).toBeUndefined()
      expect(tier.stats.hits).toBe(100)
      expect(tier.stats.misses).toBe(1)
      checkInvariants(tier)
    }
  })

  it('sweep removes every expired entry, reports them, and counts them', () => {
    const clock = new ManualClock()
    const { tier, evictions } = recordingTier<number>({ maxEntries: 10, clock })
    tier.set('a', 1, 10)
    tier.set('b', 2, 20)
    tier.set('c', 3, 30)
    tier.set('d', 4, NEVER)
    expect(tier.sweep()).toBe(0)
    clock.advance(20)
    expect(tier.sweep()).toBe(2)
    expect(evictions.map(([key, , cause]) => `${key}:${cause}`).sort()).toEqual(['a:expired', 'b:expired'])
    expect([...tier.keys()].sort()).toEqual(['c', 'd'])
    expect(tier.stats.expired).toBe(2)
    clock.advance(1000)
    expect(tier.sweep()).toBe(1)
    expect(tier.sweep()).toBe(0)
    expect([...tier.keys()]).toEqual(['d'])
    expect(tier.stats.misses).toBe(0) // a sweep is not a read
    checkInvariants(tier)
  })

  it('keys() skips expired entries without removing them', () => {
    const clock = new ManualClock()
    const { tier } = recordingTier<number>({ maxEntries: 10, clock })
    tier.set('a', 1, 10)
    tier.set('b', 2, NEVER)
    clock.advance(10)
    expect([...tier.keys()]).toEqual(['b'])
    expect(tier.size).toBe(2)
  })

  it('does not read the clock on get, peek, has or keys while no entry has a TTL', () => {
    const clock = new CountingClock()
    const { tier } = recordingTier<number>({ maxEntries: 10, clock })
    tier.set('a', 1, NEVER)
    tier.get('a')
    tier.get('missing')
    tier.sweep()
    ;[...tier.keys()]
    expect(clock.reads).toBe(0)
    // an entry with a TTL: only reads of that entry need the clock
    tier.set('b', 2, 100)
    const afterSet = clock.reads
    tier.get('a')
    expect(clock.reads).toBe(afterSet)
    tier.get('b')
    expect(clock.reads).toBe(afterSet + 1)
    // once it is gone, the clock is left alone again
    tier.delete('b')
    tier.sweep()
    tier.get('a')
    expect(clock.reads).toBe(afterSet + 1)
  })

  it('replacing an entry replaces its TTL', () => {
    const clock = new ManualClock()
    const { tier } = recordingTier<number>({ maxEntries: 10, clock })
    tier.set('a', 1, 10)
    tier.set('a', 2, NEVER)
    clock.advance(1_000_000)
    expect(tier.get('a')).toBe(2)
    expect(tier.sweep()).toBe(0)
    tier.set('a', 3, 5)
    clock.advance(5)
    expect(tier.get('a')).toBeUndefined()
    checkInvariants(tier)
  })

  it('treats ttlMs <= 0 as already expired: nothing stored, the old entry dropped without onEvict', () => {
    const { tier, evictions } = recordingTier<number>({ maxEntries: 10 })
    tier.set('a', 1, NEVER)
    expect(tier.set('a', 2, 0)).toBe(false)
    expect(tier.set('b', 2, -5)).toBe(false)
    expect(tier.size).toBe(0)
    expect(evictions).toEqual([])
    expect(() => tier.set('c', 1, Number.NaN)).toThrow(RangeError)
  })

  it('size evictions do not look at TTLs, and expired entries are not counted as size evictions', () => {
    const clock = new ManualClock()
    const { tier, evictions } = recordingTier<number>({ maxEntries: 2, policy: 'lru', clock })
    tier.set('a', 1, 10)
    tier.set('b', 2, NEVER)
    clock.advance(10)
    tier.set('c', 3, NEVER) // 'a' is expired but still there: evicted by size as the LRU entry
    expect(evictions).toEqual([['a', 1, 'size']])
    expect(tier.stats).toMatchObject({ evictedBySize: 1, expired: 0 })
  })

  it('sweeps on an unref’d timer, and close() stops it', () => {
    vi.useFakeTimers()
    const clock: Clock = { now: () => Date.now() }
    const expired: string[] = []
    const tier = new LocalTier<number>({
      maxEntries: 10,
      clock,
      sweepIntervalMs: 1000,
      onEvict: (key, _value, cause) => expired.push(`${key}:${cause}`),
    })
    const timer = (tier as unknown as { timer: NodeJS.Timeout }).timer
    expect(timer.hasRef()).toBe(false)
    tier.set('a', 1, 1500)
    tier.set('b', 2, 3500)
    vi.advanceTimersByTime(1000)
    expect(expired).toEqual([])
    vi.advanceTimersByTime(1000)
    expect(expired).toEqual(['a:expired'])
    expect(tier.size).toBe(1)
    tier.close()
    vi.advanceTimersByTime(10_000)
    expect(expired).toEqual(['a:expired'])
    expect(tier.size).toBe(1)
    expect(vi.getTimerCount()).toBe(0)
    tier.close() // idempotent
  })

  it('sweepIntervalMs: 0 starts no timer', () => {
    vi.useFakeTimers()
    const tier = new LocalTier<number>({ maxEntries: 10, sweepIntervalMs: 0 })
    expect(vi.getTimerCount()).toBe(0)
    tier.close()
  })

  it('a failing onEvict does not break the tier: the operation completes, then the error is thrown', () => {
    const clock = new ManualClock()
    const tier = new LocalTier<number>({
      maxEntries: 2,
      policy: 'lru',
      clock,
      sweepIntervalMs: 0,
      onEvict: (key) => {
        throw new Error(`boom ${key}`)
      },
    })
    tier.set('a', 1, 10)
    tier.set('b', 2, 10)
    expect(() => tier.set('c', 3, NEVER)).toThrow('boom a')
    expect(tier.size).toBe(2)
    expect(tier.get('c')).toBe(3)
    clock.advance(10)
    expect(() => tier.sweep()).toThrow('boom b')
    expect(tier.size).toBe(1)
    tier.set('d', 4, 5)
    clock.advance(5)
    expect(() => tier.get('d')).toThrow('boom d')
    expect(tier.size).toBe(1)
    checkInvariants(tier)
  })

  it('matches the reference with TTLs on random operations (lru, fifo, lfu) and stays consistent (tinylfu)', () => {
    for (const policy of ['lru', 'fifo', 'lfu', 'tinylfu'] as const) {
      runModel(policy, { seed: 41, ops: 3000, keys: 30, maxEntries: 10, ttlShare: 0.7 })
    }
  })

  it('with the system clock, hits reuse a clock reading for one event-loop turn and at most 64 hits', async () => {
    const busyWait = (ms: number) => {
      const until = Date.now() + ms
      while (Date.now() < until) {}
    }
    const tier = new LocalTier<string>({ maxEntries: 10, sweepIntervalMs: 0 })
    tier.set('long', 'L', NEVER)

    // Within one synchronous run, the reading is reused until 64 hits have gone by...
    // TTLs of 250 ms leave room for a stalled test worker between set and the first get.
    tier.set('a', 'A', 250)
    expect(tier.get('a')).toBe('A')
    busyWait(260) // 'a' has expired, but no event-loop turn has passed
    expect(tier.get('a')).toBe('A')
    for (let i = 0; i < 64; i++) tier.get('long')
    expect(tier.get('a')).toBeUndefined()

    // ...and never past the end of the event-loop turn that read it.
    tier.set('b', 'B', 250, 1, 'shortcut', 7)
    expect(tier.getShortcut('b', 7, 7)).toBe('shortcut')
    busyWait(260)
    await new Promise((resolve) => setImmediate(resolve))
    expect(tier.getShortcut('b', 7, 7)).toBeUndefined()
    expect(tier.get('b')).toBeUndefined()
    expect(tier.stats.expired).toBe(2)
  })
})

describe('LocalTier shortcuts', () => {
  it('getShortcut answers only for a live entry stored with one, and counts the hit like get', () => {
    const clock = new ManualClock()
    const { tier } = recordingTier<{ big: string }>({ maxEntries: 10, clock })
    tier.set('a', { big: 'entry' }, 100, 1, 'A')
    tier.set('b', { big: 'entry' }, 100) // no shortcut
    expect(tier.getShortcut('a', 0, -1)).toBe('A')
    expect(tier.getShortcut('b', 0, -1)).toBeUndefined()
    expect(tier.getShortcut('missing', 0, -1)).toBeUndefined()
    expect(tier.stats).toMatchObject({ hits: 1, misses: 0 }) // only the answered shortcut counts
    clock.advance(100)
    expect(tier.getShortcut('a', 0, -1)).toBeUndefined() // expired: get() decides and removes
    expect(tier.get('a')).toBeUndefined()
    checkInvariants(tier)
  })

  it('a shortcut answers only when asked with its tag; renewShortcut gives it a new one', () => {
    const { tier } = recordingTier<string>({ maxEntries: 10 })
    tier.set('a', 'entry', NEVER, 1, 'A', 7)
    expect(tier.getShortcut('a', 7, -1)).toBe('A')
    expect(tier.getShortcut('a', 8, -1)).toBeUndefined()
    tier.renewShortcut('a', 8)
    expect(tier.getShortcut('a', 8, -1)).toBe('A')
    expect(tier.getShortcut('a', 7, -1)).toBeUndefined()
    tier.renewShortcut('missing', 8) // nothing to renew: no effect
    expect(tier.getShortcut('missing', 8, -1)).toBeUndefined()
    checkInvariants(tier)
  })

  it('replacing or deleting an entry replaces or drops its shortcut; freed slots forget theirs', () => {
    const { tier } = recordingTier<string>({ maxEntries: 2 })
    tier.set('a', 'v1', NEVER, 1, 's1')
    tier.set('a', 'v2', NEVER) // replaced without a shortcut
    expect(tier.getShortcut('a', 0, -1)).toBeUndefined()
    tier.set('a', 'v3', NEVER, 1, 's3')
    expect(tier.getShortcut('a', 0, -1)).toBe('s3')
    tier.delete('a')
    expect(tier.getShortcut('a', 0, -1)).toBeUndefined()
    tier.set('b', 'vb', NEVER) // reuses the freed slot
    expect(tier.getShortcut('b', 0, -1)).toBeUndefined()
    tier.set('c', 'vc', NEVER, 1, 'sc')
    tier.clear()
    tier.set('c', 'vc', NEVER)
    expect(tier.getShortcut('c', 0, -1)).toBeUndefined()
    checkInvariants(tier)
  })
})
