import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { LocalTier } from '../src/local/local-tier.js'
import { TinyLfuPolicy } from '../src/local/policies/tinylfu.js'
import { loopTrace, recencyBiasedTrace, zipfTrace } from '../tools/traces.js'
import { checkInvariants, policyOf, recordingTier, seeded } from './support/local-tier.js'

const NEVER = Number.POSITIVE_INFINITY
const FC_SEED = Number(process.env.FUZZ_SEED ?? 20261207)

type Adaptation = ReturnType<TinyLfuPolicy['adaptation']>

/** Cache-aside replay of `trace` (integer keys); returns the hit ratio of accesses [from, trace.length). */
function replay(tier: LocalTier<number>, trace: Int32Array, from = 0): number {
  const before = tier.stats.hits
  for (let i = 0; i < trace.length; i++) {
    if (i === from) tier.stats.hits = before
    const key = String(trace[i])
    if (tier.get(key) === undefined) tier.set(key, i, NEVER)
  }
  return (tier.stats.hits - before) / (trace.length - from)
}

function adaptiveTier(maxEntries: number, seed = 3) {
  const { tier } = recordingTier<number>({ maxEntries, random: seeded(seed) })
  return { tier, policy: policyOf<TinyLfuPolicy>(tier) }
}

describe('LocalTier tinylfu: adaptive window', () => {
  it('keeps every slot on one list and every segment within its bounds while the window moves (random operations)', () => {
    const key = fc.nat({ max: 24 })
    const command = fc.oneof(
      { weight: 4, arbitrary: fc.record({ op: fc.constant('get' as const), key }) },
      {
        weight: 4,
        arbitrary: fc.record({ op: fc.constant('set' as const), key, size: fc.integer({ min: 0, max: 9 }) }),
      },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), key }) },
      {
        weight: 1,
        arbitrary: fc.record({
          op: fc.constant('aim' as const),
          share: fc.oneof(fc.constantFrom(0, 0.01, 0.5, 1), fc.double({ min: 0, max: 1, noNaN: true })),
        }),
      },
    )
    const bounds = fc.oneof(
      fc.record({ maxEntries: fc.integer({ min: 1, max: 30 }) }),
      fc.record({ maxBytes: fc.integer({ min: 9, max: 120 }) }),
      fc.record({ maxEntries: fc.integer({ min: 1, max: 30 }), maxBytes: fc.integer({ min: 9, max: 120 }) }),
    )
    fc.assert(
      fc.property(
        bounds,
        fc.array(command, { minLength: 50, maxLength: 400, size: 'max' }),
        fc.nat(),
        (bound, commands, seed) => {
          const { tier } = recordingTier<number>({ ...bound, random: seeded(seed) })
          const policy = policyOf<TinyLfuPolicy>(tier)
          let previous: Adaptation = policy.adaptation()
          for (const c of commands) {
            if (c.op === 'get') tier.get(`k${c.key}`)
            else if (c.op === 'delete') tier.delete(`k${c.key}`)
            else if (c.op === 'aim') policy.aimAt(c.share)
            else tier.set(`k${c.key}`, c.key, NEVER, c.size)
            // Map, slots and lists agree; window and protected within the bounds of the current share.
            checkInvariants(tier)
            const now = policy.adaptation()
            const entries = 'maxEntries' in bound ? bound.maxEntries : undefined
            if (entries !== undefined) {
              expect(now.windowMaxEntries).toBeGreaterThanOrEqual(1)
              expect(now.windowMaxEntries).toBeLessThanOrEqual(entries)
              expect(now.protectedMaxEntries).toBe(Math.floor(0.8 * (entries - now.windowMaxEntries)))
            }
            if (c.op === 'set') {
              // One write moves the share by at most 64 entries' worth of the sketch's capacity.
              expect(Math.abs(now.share - previous.share)).toBeLessThanOrEqual(
                64 / Math.min(entries ?? 1024, 1024) + 1e-9,
              )
            } else {
              expect(now.share).toBe(previous.share)
            }
            previous = now
          }
        },
      ),
      // Under mutation testing (MUTATION_MODULE set) fewer runs: every mutant that reaches this runs it.
      { seed: FC_SEED, numRuns: process.env.MUTATION_MODULE === undefined ? 200 : 30 },
    )
  })

  it('walks to a new share in steps of at most 64 entries per write', () => {
    const { tier, policy } = adaptiveTier(1000)
    for (let i = 0; i < 1000; i++) tier.set(`k${i}`, i, NEVER)
    for (let round = 0; round < 2; round++) for (let i = 0; i < 1000; i++) tier.get(`k${i}`)
    expect(policy.segments()).toEqual({ window: 10, probation: 198, protected: 792 })
    policy.aimAt(1)
    let segments = policy.segments()
    let writes = 0
    while (policy.adaptation().share < 1) {
      tier.set(`n${writes}`, writes, NEVER)
      writes++
      checkInvariants(tier)
      const now = policy.segments()
      expect(Math.abs(now.protected - segments.protected)).toBeLessThanOrEqual(64)
      expect(Math.abs(now.window - segments.window)).toBeLessThanOrEqual(65)
      segments = now
    }
    // From 1% to 100% of 1,000 entries: 990 entries' worth, 64 per write.
    expect(writes).toBe(Math.ceil(990 / 64))
    expect(policy.adaptation()).toMatchObject({ windowMaxEntries: 1000, protectedMaxEntries: 0 })
    // The window fills by new arrivals; main's entries go as victims, oldest first.
    for (let i = 0; i < 1000; i++) tier.set(`m${i}`, i, NEVER)
    expect(policy.segments()).toEqual({ window: 1000, probation: 0, protected: 0 })
    policy.aimAt(0.01)
    for (let i = 0; i < 16; i++) tier.set(`o${i}`, i, NEVER)
    expect(policy.adaptation()).toMatchObject({ share: 0.01, windowMaxEntries: 10, protectedMaxEntries: 792 })
    expect(policy.segments().window).toBe(10)
    checkInvariants(tier)
  })

  it('grows the window to LRU-like sizes on a recency-biased workload and gets LRU’s hit ratio', () => {
    const trace = recencyBiasedTrace(200_000, { live: 800, meanUses: 3, seed: 1 })
    const fixed = new LocalTier<number>(
      { maxEntries: 2000, sweepIntervalMs: 0, random: seeded(3) },
      (context) => new TinyLfuPolicy(context, { adaptive: false }),
    )
    expect(replay(fixed, trace, 100_000)).toBeLessThan(0.15)
    const { tier, policy } = adaptiveTier(2000)
    // Every access but a key's first can hit (about 2/3); the adaptive window gets within a point of it.
    expect(replay(tier, trace, 100_000)).toBeGreaterThan(0.655)
    expect(policy.adaptation().target).toBeGreaterThanOrEqual(0.5)
    checkInvariants(tier)
  })

  it('keeps the 1% window on Zipf and loop workloads', () => {
    const zipf = zipfTrace(200_000, { distinct: 20_000, skew: 0.9, seed: 2 })
    const a = adaptiveTier(2000)
    const fixed = new LocalTier<number>(
      { maxEntries: 2000, sweepIntervalMs: 0, random: seeded(3) },
      (context) => new TinyLfuPolicy(context, { adaptive: false }),
    )
    const targets = new Set<number>()
    for (let i = 0; i < zipf.length; i++) {
      const key = String(zipf[i])
      if (a.tier.get(key) === undefined) a.tier.set(key, i, NEVER)
      if (fixed.get(key) === undefined) fixed.set(key, i, NEVER)
      targets.add(a.policy.adaptation().target)
    }
    expect([...targets]).toEqual([0.01])
    expect(a.tier.stats.hits).toBe(fixed.stats.hits)

    const loop = adaptiveTier(2000)
    expect(replay(loop.tier, loopTrace(200_000, 2400), 100_000)).toBeGreaterThan(0.8)
    expect(loop.policy.adaptation().share).toBeLessThanOrEqual(0.05)
  })

  it('comes back to a small window when a recency-biased phase gives way to a loop', () => {
    const { tier, policy } = adaptiveTier(2000)
    replay(tier, recencyBiasedTrace(100_000, { live: 800, meanUses: 3, seed: 4 }))
    expect(policy.adaptation().share).toBeGreaterThanOrEqual(0.5)
    // A loop over 2,400 keys: LRU-like windows get nothing; the window shrinks and the loop is held.
    const loop = loopTrace(200_000, 2400)
    for (let i = 0; i < loop.length; i++) loop[i] = loop[i]! + 10_000_000
    expect(replay(tier, loop, 100_000)).toBeGreaterThan(0.75)
    expect(policy.adaptation().share).toBeLessThanOrEqual(0.05)
    checkInvariants(tier)
  })

  it('decides nothing before its minis are full, and nothing on a workload without hits', () => {
    const { tier, policy } = adaptiveTier(300)
    for (let i = 0; i < 50_000; i++) tier.set(`once${i}`, i, NEVER)
    expect(policy.scoreboard()!.every(({ fast, slow }) => fast === 0 && slow === 0)).toBe(true)
    expect(policy.adaptation()).toMatchObject({ share: 0.01, target: 0.01 })
  })

  it('is deterministic under the injected random source', () => {
    const trace = recencyBiasedTrace(60_000, { live: 500, meanUses: 3, seed: 9 })
    const run = () => {
      const { tier, policy } = adaptiveTier(1500, 77)
      const shares: number[] = []
      for (let i = 0; i < trace.length; i++) {
        const key = String(trace[i])
        if (tier.get(key) === undefined) tier.set(key, i, NEVER)
        if (i % 1000 === 0) shares.push(policy.adaptation().share)
      }
      return { hits: tier.stats.hits, shares, scores: policy.scoreboard() }
    }
    const first = run()
    expect(run()).toEqual(first)
    expect(new Set(first.shares).size).toBeGreaterThan(1)
  })

  it('has no window simulation when the window is fixed', () => {
    const tier = new LocalTier<number>(
      { maxEntries: 100, sweepIntervalMs: 0, random: seeded(1) },
      (context) => new TinyLfuPolicy(context, { adaptive: false }),
    )
    expect(policyOf<TinyLfuPolicy>(tier).scoreboard()).toBeUndefined()
  })
})
