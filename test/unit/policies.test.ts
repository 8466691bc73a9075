/**
 * The policies' own invariant checks (check(), which checkInvariants runs after every step of the
 * randomized L1 tests) must catch what they claim to: each test here breaks one invariant in a policy's
 * state by hand and expects check() to report it. A check that misses a broken state would let those
 * randomized tests pass over a real bug (issue 16, found by mutation testing).
 */
import { describe, expect, it } from 'vitest'
import { FrequencySketch } from '../../src/local/frequency-sketch.js'
import type { LocalTier } from '../../src/local/local-tier.js'
import type { LfuPolicy } from '../../src/local/policies/lfu.js'
import type { TinyLfuPolicy } from '../../src/local/policies/tinylfu.js'
import { checkInvariants, policyOf, recordingTier, seeded } from '../support/local-tier.js'

const NEVER = Number.POSITIVE_INFINITY
type Internals = Record<string, any>

function filled(policy: 'lfu' | 'tinylfu', maxEntries = 20) {
  const { tier } = recordingTier<number>({ maxEntries, policy })
  for (let i = 0; i < maxEntries; i++) tier.set(`k${i}`, i, NEVER)
  // Uses of different counts, so that several buckets / segments are in use.
  for (let round = 0; round < 3; round++)
    for (let i = 0; i < maxEntries / 2 + round * 3; i++) tier.get(`k${i}`)
  tier.set('drain', 0, NEVER) // applies the buffered hits
  checkInvariants(tier)
  return { tier, internals: policyOf<Internals>(tier) }
}

function slotOf(tier: LocalTier<number>, key: string): number {
  return (tier as unknown as { index: Map<string, number> }).index.get(key)!
}

describe('LfuPolicy.check catches', () => {
  it('a slot whose bucket field names another bucket', () => {
    const { tier, internals } = filled('lfu')
    const links = internals.store.links as Int32Array
    const slot = slotOf(tier, 'k0')
    const other = internals.lowest as number
    expect(links[4 * slot + 2]).not.toBe(other)
    links[4 * slot + 2] = other
    expect(() => (internals as unknown as LfuPolicy).check()).toThrow(/lfu: slot/)
  })

  it('bucket counts out of order, a broken bucket prev link, a wrong tail, an empty bucket, a broken slot link', () => {
    const breakers: Array<[(p: Internals) => void, RegExp]> = [
      [
        (p) => {
          const second = p.bucketNext[p.lowest]
          p.bucketCount[second] = p.bucketCount[p.lowest]
        },
        /not ascending/,
      ],
      [
        (p) => {
          const second = p.bucketNext[p.lowest]
          p.bucketPrev[second] = second
        },
        /bucket prev link/,
      ],
      [
        (p) => {
          p.bucketTail[p.lowest] = p.bucketHead[p.lowest]
        },
        /tail mismatch/,
      ],
      [
        (p) => {
          p.bucketHead[p.lowest] = -1
        },
        /empty bucket/,
      ],
      [
        (p) => {
          const head = p.bucketHead[p.lowest]
          const links = p.store.links as Int32Array
          const next = links[4 * head + 1]!
          links[4 * next] = next
        },
        /broken prev link/,
      ],
    ]
    for (const [breakIt, message] of breakers) {
      const { internals } = filled('lfu')
      breakIt(internals)
      expect(() => (internals as unknown as LfuPolicy).check()).toThrow(message)
    }
  })
})

describe('TinyLfuPolicy.check catches', () => {
  it('a slot whose segment bits name another segment', () => {
    const { tier, internals } = filled('tinylfu')
    const links = internals.store.links as Int32Array
    const slot = slotOf(tier, 'k0')
    links[4 * slot + 3] = links[4 * slot + 3]! ^ 1
    expect(() => (internals as unknown as TinyLfuPolicy).check()).toThrow(/says/)
  })

  it('a stale key hash', () => {
    const { tier, internals } = filled('tinylfu')
    const links = internals.store.links as Int32Array
    links[4 * slotOf(tier, 'k1') + 2]! ^= 0x100
    expect(() => (internals as unknown as TinyLfuPolicy).check()).toThrow(/stale hash/)
  })

  it('a wrong sample mark', () => {
    const { tier, internals } = filled('tinylfu')
    const links = internals.store.links as Int32Array
    links[4 * slotOf(tier, 'k2') + 3]! ^= 4
    expect(() => (internals as unknown as TinyLfuPolicy).check()).toThrow(/sample mark/)
  })

  it('segments over their share, and a share outside [0, 1]', () => {
    const breakers: Array<[(p: Internals) => void, RegExp]> = [
      [(p) => (p.protectedMaxEntries = p.protected.count - 1), /protected segment over/],
      [(p) => (p.protectedMaxBytes = p.protected.bytes - 1), /protected segment over/],
      [(p) => (p.windowMaxEntries = p.window.count - 1), /window over/],
      [(p) => (p.windowMaxBytes = p.window.bytes - 1), /window over/],
      [(p) => (p.share = -0.1), /share/],
      [(p) => (p.share = 1.1), /share/],
      [(p) => (p.targetShare = -0.1), /share/],
      [(p) => (p.targetShare = 1.1), /share/],
    ]
    for (const [breakIt, message] of breakers) {
      const { internals } = filled('tinylfu')
      breakIt(internals)
      expect(() => (internals as unknown as TinyLfuPolicy).check()).toThrow(message)
    }
  })

  it('a window over its byte share only by float rounding (up to 1e-6): no complaint', () => {
    const { internals } = filled('tinylfu')
    internals.windowMaxBytes = internals.window.bytes - 1e-6
    expect(internals.window.bytes).toBe(internals.windowMaxBytes + 1e-6)
    expect(() => (internals as unknown as TinyLfuPolicy).check()).not.toThrow()
  })

  it('within bounds at exactly the share: no complaint', () => {
    const { internals } = filled('tinylfu')
    internals.protectedMaxEntries = internals.protected.count
    internals.protectedMaxBytes = internals.protected.bytes
    internals.windowMaxEntries = internals.window.count
    internals.windowMaxBytes = internals.window.bytes
    internals.share = 1
    internals.targetShare = 0
    expect(() => (internals as unknown as TinyLfuPolicy).check()).not.toThrow()
  })
})

describe('TinyLfuPolicy.grow', () => {
  it('bounded by bytes only, keeps hashes and sample marks right while the tier grows', () => {
    const { tier } = recordingTier<number>({ maxBytes: 1_000_000, policy: 'tinylfu' })
    for (let i = 0; i < 5000; i++) {
      tier.set(`k${i}`, i, NEVER)
      if (i % 7 === 0) tier.get(`k${i >> 1}`)
      if (i % 1000 === 999) checkInvariants(tier)
    }
    checkInvariants(tier)
    expect(tier.size).toBe(5000)
  })
})

describe('TinyLfuPolicy segment bounds', () => {
  it('bounded by bytes only: byte shares for window and protected, no entry bounds', () => {
    const { tier } = recordingTier<number>({ maxBytes: 1000, policy: 'tinylfu' })
    const a = policyOf<TinyLfuPolicy>(tier).adaptation()
    expect(a.windowMaxEntries).toBe(Number.POSITIVE_INFINITY)
    expect(a.protectedMaxEntries).toBe(Number.POSITIVE_INFINITY)
    expect(a.windowMaxBytes).toBeCloseTo(10)
    expect(a.protectedMaxBytes).toBeCloseTo((1000 - 10) * 0.8)
  })

  it('bounded by entries only: entry shares, no byte bounds', () => {
    const { tier } = recordingTier<number>({ maxEntries: 1000, policy: 'tinylfu' })
    const a = policyOf<TinyLfuPolicy>(tier).adaptation()
    expect(a.windowMaxEntries).toBe(10)
    expect(a.protectedMaxEntries).toBe(Math.floor((1000 - 10) * 0.8))
    expect(a.windowMaxBytes).toBe(Number.POSITIVE_INFINITY)
    expect(a.protectedMaxBytes).toBe(Number.POSITIVE_INFINITY)
  })

  it('bounded by bytes, protected stays within its byte share as entries are promoted', () => {
    const { tier } = recordingTier<number>({ maxBytes: 200, policy: 'tinylfu' })
    const p = policyOf<Internals>(tier)
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 40; i++) {
        tier.set(`k${i}`, i, NEVER, 5)
        tier.get(`k${i}`)
        tier.get(`k${i}`)
      }
      tier.set('drain', 0, NEVER)
      expect(p.protected.bytes).toBeLessThanOrEqual(p.protectedMaxBytes)
    }
    expect(p.protected.count).toBeGreaterThan(0)
  })

  it('key hashes are seeded per cache (hash flooding)', () => {
    const a = recordingTier<number>({ maxEntries: 10, policy: 'tinylfu', random: seeded(1) })
    const b = recordingTier<number>({ maxEntries: 10, policy: 'tinylfu', random: seeded(2) })
    expect(policyOf<Internals>(a.tier).seed).not.toBe(policyOf<Internals>(b.tier).seed)
  })
})

describe('FrequencySketch.ensureCapacity', () => {
  it('asking for the capacity it has keeps the counts', () => {
    const sketch = new FrequencySketch(64)
    for (let i = 0; i < 5; i++) sketch.increment(12345)
    expect(sketch.frequency(12345)).toBe(5)
    sketch.ensureCapacity(64)
    expect(sketch.frequency(12345)).toBe(5)
    sketch.ensureCapacity(32)
    expect(sketch.frequency(12345)).toBe(5)
  })
})

describe('clear()', () => {
  it('unlinks every entry from every policy, which then works on as before', () => {
    for (const policy of ['lru', 'fifo', 'lfu', 'tinylfu'] as const) {
      const { tier } = recordingTier<number>({ maxEntries: 20, policy })
      for (let i = 0; i < 40; i++) {
        tier.set(`k${i}`, i, NEVER)
        tier.get(`k${i >> 1}`)
      }
      tier.clear()
      expect(tier.size, policy).toBe(0)
      checkInvariants(tier) // the policy's lists hold exactly the tier's entries: none
      for (let i = 0; i < 40; i++) {
        tier.set(`n${i}`, i, NEVER)
        tier.get(`n${i >> 1}`)
        checkInvariants(tier)
      }
      expect(tier.size, policy).toBe(20)
    }
  })
})
