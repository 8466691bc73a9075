/**
 * Stamps: where generations come from (L2, the local table, this node's own unsent bumps), what counts as
 * L2 having lost a stamp, and the bound on the table (issue 16, found by mutation testing). Real parts: a
 * memoryStore behind a RemoteTier, on a ManualClock.
 */
import { describe, expect, it, vi } from 'vitest'
import { ManualClock } from '../../src/clock.js'
import { Coherence } from '../../src/coherence/coherence.js'
import { Lifetimes } from '../../src/coherence/lifetimes.js'
import { MAX_KNOWN_STAMPS, Stamps } from '../../src/coherence/stamps.js'
import { zeroGens } from '../../src/entry/entry.js'
import { KeyNames } from '../../src/keys.js'
import { RemoteTier } from '../../src/remote/remote-tier.js'
import { StatsCounters } from '../../src/stats/stats.js'
import { memoryStore } from '../../src/stores/memory-store.js'
import { UnsentWrites } from '../../src/write/unsent-writes.js'

function setUp(options: { remote?: boolean; trusted?: boolean } = {}) {
  const clock = new ManualClock()
  const store = memoryStore({ clock })
  const remote = options.remote === false ? undefined : new RemoteTier(store, 1_000, undefined)
  const keys = new KeyNames('st')
  const coherence = new Coherence(clock, true)
  coherence.trusted = options.trusted ?? true
  const unsent = new UnsentWrites()
  const counters = new StatsCounters()
  const clearL1 = vi.fn()
  const stamps = new Stamps({
    coherence,
    remote,
    keys,
    unsent,
    lifetimes: new Lifetimes(60_000, 300_000),
    counters,
    clock,
    clearL1,
  })
  const getStamps = vi.spyOn(store, 'getStamps')
  /** Sets what L2 holds for `stamp`. */
  const inL2 = async (stamp: string, gen: number) => {
    await store.bumpStamps([keys.stamp(stamp)], 300_000, gen, true)
  }
  const l2Gen = async (stamp: string) => (await store.getStamps([keys.stamp(stamp)]))[0]!
  return { clock, store, keys, coherence, unsent, counters, clearL1, stamps, getStamps, inL2, l2Gen }
}

describe('Stamps.gens', () => {
  it('asks L2 only for the stamps the trusted local table does not know, and learns them', async () => {
    const t = setUp()
    const gen = t.coherence.versions.next()
    await t.inL2('t:a', gen)
    expect(await t.stamps.gens(['t:a', 'n:'])).toEqual([gen, 0])
    expect(t.coherence.stampGen('t:a')).toBe(gen)
    expect(t.getStamps).toHaveBeenCalledTimes(1)
    // Known now: answered locally, even though L2 moved on.
    await t.inL2('t:a', gen + 10)
    expect(await t.stamps.gens(['t:a', 'n:'])).toEqual([gen, 0])
    expect(t.getStamps).toHaveBeenCalledTimes(1)
    // fromL2: asked again.
    expect(await t.stamps.gens(['t:a', 'n:'], undefined, true)).toEqual([gen + 10, 0])
    expect(t.getStamps).toHaveBeenCalledTimes(2)
  })

  it('asks L2 for every stamp while the local table is not trusted (the bus is down)', async () => {
    const t = setUp()
    const gen = t.coherence.versions.next()
    await t.stamps.gens(['t:a'])
    await t.inL2('t:a', gen)
    t.coherence.trusted = false
    expect(await t.stamps.gens(['t:a'])).toEqual([gen])
    expect(t.getStamps).toHaveBeenCalledTimes(2)
  })

  it('without L2, answers from the local table alone', async () => {
    const t = setUp({ remote: false })
    t.coherence.raiseStamp('t:a', 5, t.clock.now())
    expect(await t.stamps.gens(['t:a', 't:b'], undefined, true)).toEqual([5, 0])
  })

  it('a generation in L2 below the known one means L2 lost it: raised again in L2 to the known one', async () => {
    const t = setUp()
    const known = t.coherence.versions.next()
    t.coherence.raiseStamp('t:a', known, t.clock.now())
    await t.inL2('t:a', 3)
    expect(await t.stamps.gens(['t:a'], undefined, true)).toEqual([known])
    expect(await t.l2Gen('t:a')).toBe(known)
    expect(t.counters.stampsRestored).toBe(1)
  })

  it('restoring raises to the known generation, never bumps past a higher one another node put meanwhile', async () => {
    const t = setUp()
    const known = t.coherence.versions.next()
    t.coherence.raiseStamp('t:a', known, t.clock.now())
    const other = known + 50
    t.getStamps.mockImplementationOnce(async () => {
      await t.inL2('t:a', other) // another node bumps after this read
      return [3]
    })
    expect(await t.stamps.gens(['t:a'], undefined, true)).toEqual([other])
    expect(await t.l2Gen('t:a')).toBe(other)
  })

  it('the same generation as the known one is no loss', async () => {
    const t = setUp()
    const known = t.coherence.versions.next()
    t.coherence.raiseStamp('t:a', known, t.clock.now())
    await t.inL2('t:a', known)
    expect(await t.stamps.gens(['t:a'], undefined, true)).toEqual([known])
    expect(t.counters.stampsRestored).toBe(0)
  })

  it("a lower generation in L2 is no loss while this node's own bump of it has not reached L2", async () => {
    const t = setUp()
    const mine = t.coherence.versions.next()
    t.coherence.raiseStamp('t:a', mine, t.clock.now())
    t.unsent.stamps.set('t:a', mine)
    await t.inL2('t:a', 3)
    expect(await t.stamps.gens(['t:a'], undefined, true)).toEqual([mine])
    expect(await t.l2Gen('t:a')).toBe(3) // left for the outage queue's retry
    expect(t.counters.stampsRestored).toBe(0)
  })

  it('garbage in L2 (beyond any plausible clock) is replaced by a version-clock reading', async () => {
    const t = setUp()
    await t.store.bumpStamps([t.keys.stamp('t:a')], 300_000, 2 ** 60, true)
    const before = t.coherence.versions.next()
    const [gen] = await t.stamps.gens(['t:a'])
    expect(gen).toBeGreaterThan(before)
    expect(gen).toBeLessThan(2 ** 53)
    expect(t.coherence.stampGen('t:a')).toBe(gen)
    expect(await t.l2Gen('t:a')).toBe(gen)
    expect(t.counters.stampsRestored).toBe(1)
  })

  it('generations never mentioned answer 0 (the shared zero array)', async () => {
    const t = setUp()
    expect(await t.stamps.gens(['t:x', 't:y'])).toBe(zeroGens(2))
  })
})

describe('Stamps.known and local', () => {
  it('known: the local generations, or undefined when untrusted or a stamp is unknown', () => {
    const t = setUp()
    expect(t.stamps.known(['t:a'])).toBeUndefined()
    t.coherence.raiseStamp('t:a', 0, t.clock.now())
    t.coherence.raiseStamp('n:', 0, t.clock.now())
    expect(t.stamps.known(['t:a', 'n:'])).toBe(zeroGens(2))
    t.coherence.raiseStamp('n:', 9, t.clock.now())
    expect(t.stamps.known(['t:a', 'n:'])).toEqual([0, 9])
    expect(t.stamps.known(['t:a', 'n:', 't:b'])).toBeUndefined()
    t.coherence.trusted = false
    expect(t.stamps.known(['t:a', 'n:'])).toBeUndefined()
  })

  it('local: 0 for what the table does not know', () => {
    const t = setUp()
    t.coherence.raiseStamp('t:a', 4, t.clock.now())
    expect(t.stamps.local(['t:b', 't:a'])).toEqual([0, 4])
    expect(t.stamps.local(['t:b'])).toBe(zeroGens(1))
  })
})

describe('Stamps.raise, accept, restoreUnsent', () => {
  it('raise: true only if some stamp rose, and observes the generations', () => {
    const t = setUp()
    const ahead = (t.clock.now() + 10) * 4096
    expect(t.stamps.raise(['t:a', 't:b'], [ahead, 0])).toBe(true)
    expect(t.coherence.versions.next()).toBeGreaterThan(ahead)
    expect(t.stamps.raise(['t:a'], [ahead])).toBe(false)
    expect(t.stamps.raise(['t:b', 't:a'], [0, ahead])).toBe(false)
    expect(t.stamps.raise(['t:b', 't:a'], [0, ahead + 1])).toBe(true)
  })

  it('accept: plausible generations only', () => {
    const t = setUp()
    expect(t.stamps.accept(t.coherence.versions.next())).toBe(true)
    expect(t.stamps.accept(-1)).toBe(false)
    expect(t.stamps.accept(Number.NaN)).toBe(false)
  })

  it("restoreUnsent puts this node's unsent bumps back into a forgotten table", () => {
    const t = setUp()
    t.unsent.stamps.set('t:a', 7)
    t.unsent.stamps.set('n:', 8)
    t.coherence.forgetStamps()
    t.stamps.restoreUnsent()
    expect(t.coherence.stampGen('t:a')).toBe(7)
    expect(t.coherence.stampGen('n:')).toBe(8)
  })
})

describe('Stamps bound', () => {
  it('past MAX_KNOWN_STAMPS the table is reset the safe way: L1 cleared, stamps forgotten, fills voided', () => {
    const t = setUp()
    t.unsent.stamps.set('t:mine', 5)
    const names = Array.from({ length: MAX_KNOWN_STAMPS }, (_, i) => `t:${i}`)
    t.stamps.raise(
      names,
      names.map(() => 1),
    )
    expect(t.clearL1).not.toHaveBeenCalled()
    expect(t.coherence.stamps.size).toBe(MAX_KNOWN_STAMPS)
    let allowed = true
    void t.coherence.fill(async (token) => {
      t.stamps.raise(['t:one-more'], [1])
      allowed = t.coherence.fillAllowed('k', token, 1)
    })
    expect(t.clearL1).toHaveBeenCalledTimes(1)
    expect(allowed).toBe(false)
    expect(t.coherence.stampGen('t:0')).toBe(0)
    expect(t.coherence.stampGen('t:mine')).toBe(5)
    expect(t.coherence.stamps.size).toBe(1)
  })
})
