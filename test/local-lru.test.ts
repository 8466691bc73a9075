import { describe, expect, it } from 'vitest'
import { checkInvariants, recordingTier, runModel } from './support/local-tier.js'

describe('LocalTier lru', () => {
  it('evicts the least recently read entry', () => {
    const { tier, evictions } = recordingTier<string>({ maxEntries: 3, policy: 'lru' })
    tier.set('a', 'A', Number.POSITIVE_INFINITY)
    tier.set('b', 'B', Number.POSITIVE_INFINITY)
    tier.set('c', 'C', Number.POSITIVE_INFINITY)
    expect(tier.get('a')).toBe('A')
    tier.set('d', 'D', Number.POSITIVE_INFINITY)
    expect(evictions).toEqual([['b', 'B', 'size']])
    tier.get('c')
    tier.set('e', 'E', Number.POSITIVE_INFINITY)
    tier.set('f', 'F', Number.POSITIVE_INFINITY)
    expect(evictions.map(([key]) => key)).toEqual(['b', 'a', 'd'])
    expect([...tier.keys()].sort()).toEqual(['c', 'e', 'f'])
    expect(tier.stats.evictedBySize).toBe(3)
    checkInvariants(tier)
  })

  it('counts a write as a use', () => {
    const { tier, evicted } = recordingTier<number>({ maxEntries: 3, policy: 'lru' })
    for (const key of ['a', 'b', 'c']) tier.set(key, 1, Number.POSITIVE_INFINITY)
    tier.set('a', 2, Number.POSITIVE_INFINITY)
    tier.set('d', 1, Number.POSITIVE_INFINITY)
    expect(evicted()).toEqual(['b'])
    expect(tier.get('a')).toBe(2)
  })

  it('does not reorder on peek or has, and does not count them', () => {
    const { tier, evicted } = recordingTier<number>({ maxEntries: 3, policy: 'lru' })
    for (const key of ['a', 'b', 'c']) tier.set(key, 1, Number.POSITIVE_INFINITY)
    expect(tier.peek('a')).toBe(1)
    expect(tier.has('a')).toBe(true)
    expect(tier.peek('zz')).toBeUndefined()
    expect(tier.has('zz')).toBe(false)
    tier.set('d', 1, Number.POSITIVE_INFINITY)
    expect(evicted()).toEqual(['a'])
    expect(tier.stats).toEqual({ hits: 0, misses: 0, evictedBySize: 1, expired: 0 })
  })

  it('counts hits and misses', () => {
    const { tier } = recordingTier<number>({ maxEntries: 2, policy: 'lru' })
    tier.set('a', 1, Number.POSITIVE_INFINITY)
    tier.get('a')
    tier.get('a')
    tier.get('b')
    expect(tier.stats).toMatchObject({ hits: 2, misses: 1 })
  })

  it('applies many buffered hits in order before the next eviction', () => {
    const { tier, evicted } = recordingTier<number>({ maxEntries: 100, policy: 'lru' })
    for (let i = 0; i < 100; i++) tier.set(`k${i}`, i, Number.POSITIVE_INFINITY)
    // 150 reads (more than one read-buffer batch): every key but k0..k9 is read, k10 first.
    for (let i = 10; i < 100; i++) tier.get(`k${i}`)
    for (let i = 40; i < 100; i++) tier.get(`k${i}`)
    for (let i = 0; i < 12; i++) tier.set(`n${i}`, i, Number.POSITIVE_INFINITY)
    expect(evicted()).toEqual(['k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7', 'k8', 'k9', 'k10', 'k11'])
    checkInvariants(tier)
  })

  it('does not call onEvict for delete, replace or clear', () => {
    const { tier, evictions } = recordingTier<number>({ maxEntries: 3, policy: 'lru' })
    tier.set('a', 1, Number.POSITIVE_INFINITY)
    tier.set('a', 2, Number.POSITIVE_INFINITY)
    tier.set('b', 1, Number.POSITIVE_INFINITY)
    expect(tier.delete('b')).toBe(true)
    expect(tier.delete('b')).toBe(false)
    tier.clear()
    expect(evictions).toEqual([])
    expect(tier.size).toBe(0)
    expect(tier.bytes).toBe(0)
    tier.set('c', 3, Number.POSITIVE_INFINITY)
    expect(tier.get('c')).toBe(3)
    checkInvariants(tier)
  })

  it('a single-entry tier keeps the last write', () => {
    const { tier, evicted } = recordingTier<number>({ maxEntries: 1, policy: 'lru' })
    tier.set('a', 1, Number.POSITIVE_INFINITY)
    tier.set('b', 2, Number.POSITIVE_INFINITY)
    expect(evicted()).toEqual(['a'])
    expect(tier.get('b')).toBe(2)
  })

  it('matches a reference LRU on random operations (entries bound)', () => {
    for (const seed of [1, 2, 3]) runModel('lru', { seed, ops: 4000, keys: 40, maxEntries: 12 })
  })

  it('matches a reference LRU on random operations (bytes and both bounds)', () => {
    for (const seed of [4, 5]) runModel('lru', { seed, ops: 4000, keys: 40, maxBytes: 60, maxSize: 12 })
    for (const seed of [6, 7])
      runModel('lru', { seed, ops: 4000, keys: 40, maxEntries: 8, maxBytes: 40, maxSize: 10 })
  })
})
