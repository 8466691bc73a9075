import { describe, expect, it } from 'vitest'
import type { FrequencySketch } from '../src/local/frequency-sketch.js'
import { TinyLfuPolicy } from '../src/local/policies/tinylfu.js'
import { checkInvariants, policyOf, recordingTier, runModel, seeded } from './support/local-tier.js'
import { ReferenceTinyLfu } from './support/reference-tinylfu.js'

const NEVER = Number.POSITIVE_INFINITY

describe('LocalTier tinylfu', () => {
  it('is the default policy', () => {
    const { tier } = recordingTier<number>({ maxEntries: 10 })
    expect(policyOf<object>(tier).constructor.name).toBe('TinyLfuPolicy')
  })

  it('keeps frequently used keys through a scan of one-off keys that flushes LRU', () => {
    const run = (policy: 'tinylfu' | 'lru') => {
      const { tier } = recordingTier<number>({ maxEntries: 100, policy, random: seeded(1) })
      const hot = Array.from({ length: 20 }, (_, i) => `hot${i}`)
      for (const key of hot) tier.set(key, 1, NEVER)
      for (let round = 0; round < 5; round++) for (const key of hot) tier.get(key)
      // Cache-aside scan of 3,000 one-off keys; still in use, each hot key is read once per 200 of them.
      let hotMisses = 0
      for (let i = 0; i < 3000; i++) {
        if (tier.get(`scan${i}`) === undefined) tier.set(`scan${i}`, i, NEVER)
        if (i % 10 === 9) {
          const key = hot[((i / 10) % 20) | 0]!
          if (tier.get(key) === undefined) {
            hotMisses++
            tier.set(key, 1, NEVER)
          }
        }
      }
      checkInvariants(tier)
      return { hotMisses, scanHits: tier.stats.hits - 100 - (300 - hotMisses) }
    }
    expect(run('tinylfu')).toEqual({ hotMisses: 0, scanHits: 0 })
    // LRU: a hot key comes back after 200 other keys, more than the 100 it holds. Only the first 8 hot
    // reads hit, while the scan is still filling the 80 free entries.
    expect(run('lru')).toEqual({ hotMisses: 292, scanHits: 0 })
  })

  it('admits a window victim only when it is more frequent than main’s victim', () => {
    // 10 entries: window 1, main 9 (protected up to 7). Hand-traced expectation:
    // after set a..j and three rounds of get a..i, probation = [a, b] (oldest first), protected = c..i,
    // window = [j]; a..i have frequency 4, j has 1.
    const { tier, evicted } = recordingTier<number>({ maxEntries: 10, random: seeded(7) })
    const warm = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i']
    for (const key of [...warm, 'j']) tier.set(key, 1, NEVER)
    for (let round = 0; round < 3; round++) for (const key of warm) tier.get(key)
    checkInvariants(tier)
    expect(policyOf<TinyLfuPolicy>(tier).segments()).toEqual({ window: 1, probation: 2, protected: 7 })

    // Each newcomer pushes the previous window entry out as a candidate; a cold candidate loses to the
    // warm victim (a) and is evicted itself.
    for (let n = 1; n <= 5; n++) tier.set(`x${n}`, n, NEVER)
    expect(evicted()).toEqual(['j', 'x1', 'x2', 'x3', 'x4'])
    // x5 collects 5 hits in the window (frequency 6 > 4): it wins against the victim a.
    for (let i = 0; i < 5; i++) expect(tier.get('x5')).toBe(5)
    tier.set('x6', 6, NEVER)
    expect(evicted().slice(5)).toEqual(['a'])
    // x6 (cold) then loses to the next victim, b.
    tier.set('x7', 7, NEVER)
    expect(evicted().slice(5)).toEqual(['a', 'x6'])
    expect(tier.has('x5')).toBe(true)
    // A tie keeps the victim: x7 reaches frequency 4, the same as b, and is rejected.
    for (let i = 0; i < 3; i++) tier.get('x7')
    tier.set('x8', 8, NEVER)
    expect(evicted().slice(5)).toEqual(['a', 'x6', 'x7'])
    expect(tier.has('b')).toBe(true)
    checkInvariants(tier)
  })

  it('handles several candidates at once, including one that beats the victim just before it', () => {
    // Bytes bound 1000: window 10 bytes, protected up to 792.
    const { tier, evicted } = recordingTier<number>({ maxBytes: 1000, random: seeded(11) })
    for (let i = 1; i <= 7; i++) tier.set(`p${i}`, i, NEVER, 100)
    for (let i = 1; i <= 7; i++) tier.get(`p${i}`) // all promoted: protected 700 bytes, probation empty
    tier.set('c1', 1, NEVER, 5)
    tier.set('c2', 2, NEVER, 5) // window [c1, c2], 10 bytes
    for (let i = 0; i < 3; i++) tier.get('c2')
    checkInvariants(tier)
    expect(policyOf<TinyLfuPolicy>(tier).segments()).toEqual({ window: 2, probation: 0, protected: 7 })
    // Growing c2 pushes both window entries out: probation [c1, c2], 1,105 bytes in all. c2 (hotter)
    // beats c1; the tier is still over, and with no candidate left probation's head (c2) goes too.
    expect(tier.set('c2', 3, NEVER, 400)).toBe(false)
    expect(evicted()).toEqual(['c1', 'c2'])
    expect(tier.bytes).toBe(700)
    checkInvariants(tier)
  })

  it('counts hits on a saturated key again after the sketch ages', () => {
    const { tier } = recordingTier<number>({ maxEntries: 50, random: seeded(13) })
    const policy = policyOf<TinyLfuPolicy>(tier)
    tier.set('hot', 1, NEVER)
    for (let i = 0; i < 20; i++) tier.get('hot')
    checkInvariants(tier)
    expect(policy.frequencyOf('hot')).toBe(15)
    // 1,200 one-off writes: more than the sample period (20 x 50), so every counter is halved once.
    for (let i = 0; i < 1200; i++) tier.set(`n${i}`, i, NEVER)
    expect(policy.frequencyOf('hot')).toBeLessThan(10)
    for (let i = 0; i < 10; i++) expect(tier.get('hot')).toBe(1)
    checkInvariants(tier)
    expect(policy.frequencyOf('hot')).toBe(15)
  })

  it('admits a warm candidate at random (1/128) even when the victim is hotter: the hash-flooding defence', () => {
    const scenario = (random: () => number) => {
      const { tier, evicted } = recordingTier<number>({ maxEntries: 10, random })
      const warm = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i']
      for (const key of [...warm, 'j']) tier.set(key, 1, NEVER)
      for (let round = 0; round < 9; round++) for (const key of warm) tier.get(key) // frequency 10
      tier.set('x', 1, NEVER)
      for (let i = 0; i < 6; i++) tier.get('x') // frequency 7: warm (>= 6) but colder than the victim
      tier.set('y', 1, NEVER) // x becomes the candidate
      return { evicted: evicted(), hasX: tier.has('x') }
    }
    // random() < 1/128 admits
    expect(scenario(() => 0)).toEqual({ evicted: ['j', 'a'], hasX: true })
    // otherwise the candidate is rejected
    expect(scenario(() => 0.5)).toEqual({ evicted: ['j', 'x'], hasX: false })
  })

  it('sizes the window at 1% and protected at 80% of the main space', () => {
    const { tier } = recordingTier<number>({ maxEntries: 1000, random: seeded(3) })
    for (let i = 0; i < 1000; i++) tier.set(`k${i}`, i, NEVER)
    for (let round = 0; round < 2; round++) for (let i = 0; i < 1000; i++) tier.get(`k${i}`)
    checkInvariants(tier)
    expect(policyOf<TinyLfuPolicy>(tier).segments()).toEqual({ window: 10, probation: 198, protected: 792 })
  })

  it('ages frequencies: a key that was hot long ago can be displaced', () => {
    const { tier } = recordingTier<number>({ maxEntries: 50, random: seeded(5) })
    tier.set('old', 1, NEVER)
    for (let i = 0; i < 14; i++) tier.get('old')
    const policy = policyOf<TinyLfuPolicy>(tier)
    checkInvariants(tier)
    expect(policy.frequencyOf('old')).toBe(15)
    // 50 entries: sample period 1,000 increments; after a few periods without a read, 'old' cools down.
    for (let i = 0; i < 6000; i++) {
      const key = `n${i % 200}`
      if (tier.get(key) === undefined) tier.set(key, i, NEVER)
    }
    checkInvariants(tier)
    expect(policy.frequencyOf('old')).toBeLessThanOrEqual(1)
  })

  it('rejects a newcomer that is larger than the window and colder than main’s victim (bytes bound)', () => {
    const { tier, evictions } = recordingTier<string>({ maxBytes: 1000, random: seeded(9) })
    for (let i = 0; i < 100; i++) tier.set(`k${i}`, 'v', NEVER, 10)
    for (let round = 0; round < 2; round++) for (let i = 0; i < 100; i++) tier.get(`k${i}`)
    expect(tier.set('big', 'B', NEVER, 500)).toBe(false)
    expect(evictions).toEqual([['big', 'B', 'size']])
    expect(tier.size).toBe(100)
    expect(tier.bytes).toBe(1000)
    checkInvariants(tier)
  })

  it('matches a reference W-TinyLFU on random operations (every eviction), and keeps its bounds and segments', () => {
    for (const seed of [31, 32, 33]) runModel('tinylfu', { seed, ops: 5000, keys: 60, maxEntries: 20 })
    for (const seed of [34, 35])
      runModel('tinylfu', { seed, ops: 5000, keys: 60, maxBytes: 100, maxSize: 15 })
    for (const seed of [36, 37])
      runModel('tinylfu', { seed, ops: 5000, keys: 60, maxEntries: 12, maxBytes: 80, maxSize: 12 })
    runModel('tinylfu', { seed: 38, ops: 3000, keys: 30, maxEntries: 1 })
    runModel('tinylfu', { seed: 39, ops: 3000, keys: 30, maxEntries: 3 })
  })

  it('matches the reference while the window walks between shares in bounded steps (random operations)', () => {
    // 300 entries: the share moves at most 64/300 per write, so each aim takes several writes to reach.
    for (const seed of [41, 42])
      runModel('tinylfu', { seed, ops: 6000, keys: 700, maxEntries: 300, aimEvery: 150 })
    runModel('tinylfu', { seed: 43, ops: 6000, keys: 700, maxBytes: 1500, maxSize: 10, aimEvery: 150 })
    runModel('tinylfu', {
      seed: 44,
      ops: 6000,
      keys: 700,
      maxEntries: 250,
      maxBytes: 1200,
      maxSize: 8,
      aimEvery: 100,
    })
  })

  it('bounded by bytes only: resizes its sketch with the slots it holds, as the reference does', () => {
    // 1,024 slots to start; the 1,025th entry doubles them, and the sketch is sized (and emptied) for
    // 2,048. The prefill alone overflows the 1,500 bytes by 1,100 entries (it is not shortened under
    // mutation testing); the random run after it then has the sketch decide admissions at the new size.
    const { tier, reference, sizeEvictions } = runModel('tinylfu', {
      seed: 77,
      ops: 6000,
      keys: 4000,
      maxBytes: 1500,
      maxSize: 3,
      prefill: 2600,
    })
    expect(policyOf<{ sketch: FrequencySketch }>(tier).sketch.capacity).toBe(2048)
    expect(reference).toBeInstanceOf(ReferenceTinyLfu)
    expect((reference as ReferenceTinyLfu).sketch.capacity).toBe(2048)
    expect(sizeEvictions).toBeGreaterThan(1000)
  })

  it('an update that grows a protected entry past the bounds evicts protected’s least recent entry, not the window’s', () => {
    const { tier, evicted } = recordingTier<number>({ maxBytes: 100, random: seeded(15) })
    for (let i = 1; i <= 7; i++) tier.set(`p${i}`, i, NEVER, 10)
    for (let i = 1; i <= 7; i++) tier.get(`p${i}`) // protected p1..p7, 70 bytes; probation empty
    tier.set('w', 0, NEVER, 1)
    expect(policyOf<TinyLfuPolicy>(tier).segments()).toEqual({ window: 1, probation: 0, protected: 7 })
    // p1 grows to 40 bytes (101 in all): p1 becomes protected's newest, and p2, its least recent, goes.
    expect(tier.set('p1', 1, NEVER, 40)).toBe(true)
    expect(evicted()).toEqual(['p2'])
    expect(tier.bytes).toBe(91)
    // Protected is back within its share (79.2 bytes): p3 and p4 were demoted to probation.
    expect(policyOf<TinyLfuPolicy>(tier).segments()).toEqual({ window: 1, probation: 2, protected: 4 })
    checkInvariants(tier)
  })

  it('admits at random a candidate exactly at the warm threshold (frequency 6), with odds of exactly 1 in 128', () => {
    const scenario = (gets: number, random: () => number) => {
      const { tier } = recordingTier<number>({ maxEntries: 10, random })
      const warm = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i']
      for (const key of [...warm, 'j']) tier.set(key, 1, NEVER)
      for (let round = 0; round < 9; round++) for (const key of warm) tier.get(key) // frequency 10
      tier.set('x', 1, NEVER)
      for (let i = 0; i < gets; i++) tier.get('x')
      tier.set('y', 1, NEVER) // x becomes the candidate against the victim a
      expect(policyOf<TinyLfuPolicy>(tier).frequencyOf('x')).toBe(gets + 1)
      return tier.has('x')
    }
    expect(scenario(5, () => 0)).toBe(true) // frequency 6: warm
    expect(scenario(4, () => 0)).toBe(false) // frequency 5: never
    expect(scenario(6, () => 1 / 128 - 2 ** -40)).toBe(true)
    expect(scenario(6, () => 1 / 128)).toBe(false) // [0, 1/128) admits: 1 in 128
  })

  it('bounded by entries: the sketch is sized for maxEntries and keeps its counts while the slot arrays grow', () => {
    // Slots are preallocated up to 65,536; beyond, they grow (here to 70,001) and the sketch must not.
    const { tier } = recordingTier<number>({ maxEntries: 70_000, random: seeded(16) })
    const policy = policyOf<TinyLfuPolicy>(tier)
    const sketch = () => (policy as unknown as { sketch: FrequencySketch }).sketch
    expect(sketch().capacity).toBe(70_000)
    tier.set('hot', 1, NEVER)
    for (let i = 0; i < 5; i++) tier.get('hot')
    for (let i = 0; i < 66_000; i++) tier.set(`k${i}`, i, NEVER)
    expect(tier.size).toBe(66_001)
    expect(sketch().capacity).toBe(70_000)
    expect(policy.frequencyOf('hot')).toBeGreaterThanOrEqual(6)
  })

  it('bounded by bytes only: the window simulation is redrawn for the grown size; a fixed window gets none', () => {
    const grow = (adaptive: boolean) => {
      const { tier } = recordingTier<number>(
        { maxBytes: 5000 },
        (context) => new TinyLfuPolicy(context, { adaptive }),
      )
      const policy = policyOf<{ sampleMask: number; scoreboard(): unknown }>(tier)
      const before = policy.sampleMask
      for (let i = 0; i < 1500; i++) tier.set(`k${i}`, i, NEVER)
      checkInvariants(tier) // includes every key's sample mark against the new sample
      return { before, after: policy.sampleMask, scoreboard: policy.scoreboard() }
    }
    // 1,024 slots: 1 key in 4 sampled (minis of 256 entries); 2,048: 1 in 8.
    const adaptive = grow(true)
    expect(adaptive.before).toBe(-1 << 30)
    expect(adaptive.after).toBe(-1 << 29)
    expect(adaptive.scoreboard).toBeDefined()
    expect(grow(false)).toEqual({ before: 0, after: 0, scoreboard: undefined })
  })

  it('a window emptied with byte-count rounding left over (fractional sizes) does not loop', () => {
    // The window's share is 10% of 10 bytes; it holds a, b and c (0.1 + 0.2 + 0.3 bytes), then shrinks to
    // nothing in two steps. Spilling them leaves the empty window a count of about 1e-16 bytes, more
    // than its share of 0. The steps are taken by updates of m, which is not in the window.
    const { tier } = recordingTier<number>(
      { maxBytes: 10 },
      (context) => new TinyLfuPolicy(context, { adaptive: false, windowFraction: 0.1 }),
    )
    const policy = policyOf<TinyLfuPolicy>(tier)
    tier.set('m', 0, NEVER, 1)
    tier.set('a', 1, NEVER, 0.1) // m spills to probation
    tier.set('b', 2, NEVER, 0.2)
    tier.set('c', 3, NEVER, 0.3)
    expect(policy.segments()).toEqual({ window: 3, probation: 1, protected: 0 })
    policy.aimAt(0)
    tier.set('m', 0, NEVER, 1) // share 0.1 -> 0.0375 (64 of 1,024 slots' worth per step): a and b spill
    expect(policy.segments().window).toBe(1)
    tier.set('m', 0, NEVER, 1) // share 0: c spills
    expect(policy.adaptation().share).toBe(0)
    expect(policy.segments()).toEqual({ window: 0, probation: 3, protected: 1 })
    expect(tier.size).toBe(4)
    checkInvariants(tier)
  })
})
