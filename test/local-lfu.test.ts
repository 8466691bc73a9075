import { describe, expect, it } from 'vitest'
import type { LfuPolicy } from '../src/local/policies/lfu.js'
import { checkInvariants, policyOf, recordingTier, runModel } from './support/local-tier.js'

const NEVER = Number.POSITIVE_INFINITY

describe('LocalTier lfu', () => {
  it('evicts the least frequently used entry', () => {
    const { tier, evicted } = recordingTier<number>({ maxEntries: 3, policy: 'lfu' })
    for (const key of ['a', 'b', 'c']) tier.set(key, 1, Number.POSITIVE_INFINITY)
    tier.get('a')
    tier.get('a')
    tier.get('c')
    tier.get('b')
    tier.get('b')
    tier.get('b')
    // counts: a 3, b 4, c 2
    tier.set('d', 1, Number.POSITIVE_INFINITY)
    expect(evicted()).toEqual(['c'])
    // d (count 1) is now the least frequent: the next newcomer replaces it.
    tier.set('e', 1, Number.POSITIVE_INFINITY)
    expect(evicted()).toEqual(['c', 'd'])
    expect([...tier.keys()].sort()).toEqual(['a', 'b', 'e'])
    checkInvariants(tier)
  })

  it('breaks ties by evicting the entry that reached the count first', () => {
    const { tier, evicted } = recordingTier<number>({ maxEntries: 3, policy: 'lfu' })
    for (const key of ['a', 'b', 'c']) tier.set(key, 1, Number.POSITIVE_INFINITY)
    // all at count 2, reached in the order c, a, b
    tier.get('c')
    tier.get('a')
    tier.get('b')
    // The newcomer d (count 1) is never its own victim: c goes, the first to reach count 2.
    tier.set('d', 1, Number.POSITIVE_INFINITY)
    expect(evicted()).toEqual(['c'])
    tier.get('d') // d reaches 2 last
    tier.set('e', 1, Number.POSITIVE_INFINITY)
    tier.get('e')
    tier.set('f', 1, Number.POSITIVE_INFINITY)
    expect(evicted()).toEqual(['c', 'a', 'b'])
    checkInvariants(tier)
  })

  it('counts writes as uses and tracks counts per entry', () => {
    const { tier } = recordingTier<number>({ maxEntries: 4, policy: 'lfu' })
    tier.set('a', 1, Number.POSITIVE_INFINITY)
    tier.set('a', 2, Number.POSITIVE_INFINITY)
    tier.get('a')
    tier.set('b', 1, Number.POSITIVE_INFINITY)
    tier.get('b')
    tier.get('zzz')
    tier.set('c', 1, Number.POSITIVE_INFINITY)
    const policy = policyOf<LfuPolicy>(tier)
    tier.peek('a') // no count
    checkInvariants(tier) // drains buffered hits
    const slotOf = (key: string) => (tier as unknown as { index: Map<string, number> }).index.get(key)!
    expect([policy.countOf(slotOf('a')), policy.countOf(slotOf('b')), policy.countOf(slotOf('c'))]).toEqual([
      3, 2, 1,
    ])
  })

  it('keeps a hot entry through a long run of newcomers', () => {
    const { tier, evicted } = recordingTier<number>({ maxEntries: 10, policy: 'lfu' })
    tier.set('hot', 1, Number.POSITIVE_INFINITY)
    for (let i = 0; i < 5; i++) tier.get('hot')
    for (let i = 0; i < 1000; i++) tier.set(`cold${i}`, i, Number.POSITIVE_INFINITY)
    expect(tier.has('hot')).toBe(true)
    expect(evicted()).toHaveLength(991)
    expect(evicted()).not.toContain('hot')
  })

  it('matches a reference LFU on random operations', () => {
    for (const seed of [21, 22, 23]) runModel('lfu', { seed, ops: 4000, keys: 40, maxEntries: 12 })
    for (const seed of [24, 25])
      runModel('lfu', { seed, ops: 4000, keys: 40, maxEntries: 10, maxBytes: 50, maxSize: 10 })
  })

  it('matches the reference while its bucket arrays grow with the slots (bounded by bytes only)', () => {
    // 1,024 slots to start: the prefill's 1,025th entry doubles them, and the policy's buckets with them.
    runModel('lfu', { seed: 26, ops: 3000, keys: 3000, maxBytes: 1400, prefill: 1300 })
  })

  it('holds as many distinct use counts as it has slots, while the slot arrays grow (bounded by bytes only)', () => {
    // 2,048 entries, entry i used i times: 2,048 buckets at once (the slots grow from 1,024 to 2,048).
    const { tier } = recordingTier<number>({ maxBytes: 1_000_000, policy: 'lfu' })
    const n = 2048
    for (let i = 0; i < n; i++) tier.set(`k${i}`, i, NEVER)
    for (let i = 0; i < n; i++) for (let use = 0; use < i; use++) tier.get(`k${i}`)
    tier.set('k0', 0, NEVER) // applies the buffered hits; a write is a use: k0 now counts 2
    checkInvariants(tier)
    const policy = policyOf<LfuPolicy>(tier)
    const index = (tier as unknown as { index: Map<string, number> }).index
    for (const i of [1, 2, 1000, 1023, 1024, 1025, 2046, 2047])
      expect(policy.countOf(index.get(`k${i}`)!), `k${i}`).toBe(i + 1)
    expect(policy.countOf(index.get('k0')!)).toBe(2)
  })
})
