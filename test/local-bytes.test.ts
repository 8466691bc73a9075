import { describe, expect, it } from 'vitest'
import { checkInvariants, recordingTier, runModel, seeded } from './support/local-tier.js'

const NEVER = Number.POSITIVE_INFINITY
const POLICIES = ['lru', 'lfu', 'fifo', 'tinylfu'] as const

describe('LocalTier maxBytes', () => {
  it('evicts until the sum of sizes fits', () => {
    const { tier, evicted } = recordingTier<string>({ maxBytes: 100, policy: 'lru' })
    tier.set('a', 'A', NEVER, 40)
    tier.set('b', 'B', NEVER, 40)
    tier.set('c', 'C', NEVER, 20)
    expect(tier.bytes).toBe(100)
    tier.get('a')
    tier.set('d', 'D', NEVER, 50) // evicts b (40) then c (20)
    expect(evicted()).toEqual(['b', 'c'])
    expect(tier.bytes).toBe(90)
    expect(tier.size).toBe(2)
    checkInvariants(tier)
  })

  it('rejects an entry larger than maxBytes: nothing stored, the old entry removed, no eviction', () => {
    for (const policy of POLICIES) {
      const { tier, evictions } = recordingTier<string>({ maxBytes: 100, policy })
      tier.set('a', 'A', NEVER, 10)
      tier.set('b', 'B', NEVER, 10)
      expect(tier.set('a', 'huge', NEVER, 101)).toBe(false)
      expect(tier.set('z', 'huge', NEVER, 1e9)).toBe(false)
      expect(tier.has('a')).toBe(false)
      expect(tier.get('b')).toBe('B')
      expect(tier.bytes).toBe(10)
      expect(evictions).toEqual([])
      // exactly maxBytes fits (tinylfu could refuse it admission over a warmer 'b', so start empty)
      tier.clear()
      expect(tier.set('full', 'F', NEVER, 100)).toBe(true)
      expect(tier.bytes).toBe(100)
      expect(tier.size).toBe(1)
      checkInvariants(tier)
    }
  })

  it('resizing an entry in place updates bytes and evicts if needed', () => {
    const { tier, evicted } = recordingTier<string>({ maxBytes: 100, policy: 'lru' })
    tier.set('a', 'A', NEVER, 30)
    tier.set('b', 'B', NEVER, 30)
    tier.set('a', 'A2', NEVER, 60) // a becomes most recent and 60 bytes: 90 in all
    expect(tier.bytes).toBe(90)
    tier.set('b', 'B2', NEVER, 50) // 110: evicts a
    expect(evicted()).toEqual(['a'])
    expect(tier.bytes).toBe(50)
    tier.set('b', 'B3', NEVER, 5)
    expect(tier.bytes).toBe(5)
    checkInvariants(tier)
  })

  it('holds both bounds at once', () => {
    for (const policy of POLICIES) {
      const { tier } = recordingTier<number>({ maxEntries: 5, maxBytes: 50, policy, random: seeded(2) })
      for (let i = 0; i < 20; i++) tier.set(`small${i}`, i, NEVER, 1)
      expect(tier.size).toBe(5) // entries bind
      for (let i = 0; i < 20; i++) {
        // cache-aside, three reads: tinylfu admits a big entry once it is warmer than main's victim
        for (let read = 0; read < 3; read++)
          if (tier.get(`big${i}`) === undefined) tier.set(`big${i}`, i, NEVER, 20)
        expect(tier.bytes).toBeLessThanOrEqual(50) // bytes bind
        expect(tier.size).toBeLessThanOrEqual(5)
      }
      // two 20-byte entries and at most one small one fit in 50 bytes
      expect([...tier.keys()].filter((key) => key.startsWith('big'))).toHaveLength(2)
      expect(tier.size).toBeLessThanOrEqual(3)
      checkInvariants(tier)
    }
  })

  it('defaults the size to 1, so maxBytes alone then bounds the number of entries', () => {
    const { tier } = recordingTier<number>({ maxBytes: 3, policy: 'fifo' })
    for (let i = 0; i < 10; i++) tier.set(`k${i}`, i, NEVER)
    expect(tier.size).toBe(3)
    expect(tier.bytes).toBe(3)
    expect([...tier.keys()].sort()).toEqual(['k7', 'k8', 'k9'])
  })

  it('accepts zero-size entries and rejects negative, NaN or infinite sizes', () => {
    const { tier } = recordingTier<number>({ maxBytes: 10 })
    expect(tier.set('free', 1, NEVER, 0)).toBe(true)
    expect(tier.bytes).toBe(0)
    expect(() => tier.set('x', 1, NEVER, -1)).toThrow(RangeError)
    expect(() => tier.set('x', 1, NEVER, Number.NaN)).toThrow(RangeError)
    expect(() => tier.set('x', 1, NEVER, NEVER)).toThrow(RangeError)
  })

  it('grows its slot arrays when bounded by bytes only (past the 1,024 initial slots)', () => {
    for (const policy of POLICIES) {
      const { tier, evictions } = recordingTier<number>({ maxBytes: 5000, policy })
      for (let i = 0; i < 5000; i++) tier.set(`k${i}`, i, NEVER, 1)
      expect(tier.size).toBe(5000)
      expect(evictions).toEqual([])
      // every entry is still reachable after the arrays were copied
      for (let i = 0; i < 5000; i += 7) expect(tier.get(`k${i}`)).toBe(i)
      tier.set('more', -1, NEVER, 1)
      expect(tier.size).toBe(5000)
      checkInvariants(tier)
    }
  })

  it('grows up to maxEntries when that is above the preallocation limit', () => {
    const { tier } = recordingTier<number>({ maxEntries: 70_000, policy: 'lru' })
    for (let i = 0; i < 70_010; i++) tier.set(`k${i}`, i, NEVER)
    expect(tier.size).toBe(70_000)
    expect(tier.get('k9')).toBeUndefined()
    expect(tier.get('k10')).toBe(10)
    checkInvariants(tier)
  })

  it('keeps bytes exact on random operations with random sizes', () => {
    for (const policy of POLICIES)
      runModel(policy, { seed: 51, ops: 3000, keys: 40, maxBytes: 64, maxSize: 16 })
  })
})
