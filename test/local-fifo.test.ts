import { describe, expect, it } from 'vitest'
import { checkInvariants, recordingTier, runModel } from './support/local-tier.js'

describe('LocalTier fifo', () => {
  it('evicts in insertion order and ignores reads', () => {
    const { tier, evicted } = recordingTier<number>({ maxEntries: 3, policy: 'fifo' })
    for (const key of ['a', 'b', 'c']) tier.set(key, 1, Number.POSITIVE_INFINITY)
    for (let i = 0; i < 5; i++) tier.get('a')
    tier.set('d', 1, Number.POSITIVE_INFINITY)
    tier.get('b')
    tier.set('e', 1, Number.POSITIVE_INFINITY)
    expect(evicted()).toEqual(['a', 'b'])
    expect([...tier.keys()].sort()).toEqual(['c', 'd', 'e'])
    expect(tier.stats.hits).toBe(6)
    checkInvariants(tier)
  })

  it('keeps the original position when a key is overwritten', () => {
    const { tier, evicted } = recordingTier<number>({ maxEntries: 3, policy: 'fifo' })
    for (const key of ['a', 'b', 'c']) tier.set(key, 1, Number.POSITIVE_INFINITY)
    tier.set('a', 2, Number.POSITIVE_INFINITY)
    tier.set('d', 1, Number.POSITIVE_INFINITY)
    expect(evicted()).toEqual(['a'])
  })

  it('never evicts the entry being overwritten, even when it is the oldest', () => {
    const { tier, evicted } = recordingTier<number>({ maxBytes: 10, policy: 'fifo' })
    tier.set('a', 1, Number.POSITIVE_INFINITY, 4)
    tier.set('b', 1, Number.POSITIVE_INFINITY, 3)
    tier.set('c', 1, Number.POSITIVE_INFINITY, 3)
    // 'a' is the oldest; growing it must evict the next oldest instead.
    expect(tier.set('a', 2, Number.POSITIVE_INFINITY, 6)).toBe(true)
    expect(evicted()).toEqual(['b'])
    expect(tier.get('a')).toBe(2)
    expect(tier.bytes).toBe(9)
    checkInvariants(tier)
  })

  it('matches a reference FIFO on random operations', () => {
    for (const seed of [11, 12, 13]) runModel('fifo', { seed, ops: 4000, keys: 40, maxEntries: 12 })
    for (const seed of [14, 15])
      runModel('fifo', { seed, ops: 4000, keys: 40, maxEntries: 10, maxBytes: 50, maxSize: 10 })
  })
})
