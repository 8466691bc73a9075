import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../src/clock.js'
import { Coherence } from '../../src/coherence/coherence.js'
import { MAX_LEAD_MS, MAX_VERSION_LEAD, VersionClock } from '../../src/coherence/hlc.js'
import { deferred } from '../support/deferred.js'

function coherence() {
  const clock = new ManualClock()
  return { clock, c: new Coherence(clock, false) }
}

describe('Coherence: fill tokens', () => {
  it('a fill gets the current sequence as its token and gives it back when its body settles', async () => {
    const { c } = coherence()
    const body = deferred<string>()
    let token = -1
    const running = c.fill((t) => {
      token = t
      return body.promise
    })
    // While the fill runs, marks are kept for it; a mark made now voids it for older versions.
    c.markKey('k', 5)
    expect(c.fillAllowed('k', token, 4)).toBe(false)
    expect(c.fillAllowed('k', token, 5)).toBe(true) // the invalidation of the very version it read
    body.resolve('done')
    expect(await running).toBe('done')
    // No fill in flight: marks are forgotten, and a mark made now is not even recorded.
    c.markKey('k', 9)
    expect(c.fillAllowed('k', token, 4)).toBe(true)
  })

  it('gives the token back when the body throws synchronously or rejects', async () => {
    const { c } = coherence()
    await expect(
      c.fill(() => {
        throw new Error('sync')
      }),
    ).rejects.toThrow('sync')
    await expect(c.fill(() => Promise.reject(new Error('async')))).rejects.toThrow('async')
    c.markKey('k', 1) // recorded only while some fill is in flight
    const inner = deferred<void>()
    let token = -1
    const running = c.fill((t) => {
      token = t
      return inner.promise
    })
    expect(c.fillAllowed('k', token, 0)).toBe(true) // nothing recorded the mark above
    inner.resolve()
    await running
  })

  it('holdWhile keeps the token until the held promise settles (a load until its write lands)', async () => {
    const { c } = coherence()
    const landing = deferred<void>()
    let token = -1
    await c.fill(
      async (t) => {
        token = t
        return 'loaded'
      },
      () => landing.promise,
    )
    c.markKey('k', 3) // still recorded: the fill holds its token until landing settles
    expect(c.fillAllowed('k', token, 2)).toBe(false)
    landing.resolve()
    await landing.promise
    await Promise.resolve()
    c.markKey('other', 1) // nothing in flight now: not recorded
    expect(c.fillAllowed('other', token, 0)).toBe(true)
  })

  it('the token is given back before the awaiting caller resumes', async () => {
    const { c } = coherence()
    await c.fill(async () => 'x')
    c.markKey('k', 1) // if the fill were still counted, this would be recorded
    expect(c.fillAllowed('k', 0, 0)).toBe(true)
  })

  it('markAll voids every fill in flight; fills started after it are allowed', async () => {
    const { c } = coherence()
    const a = deferred<void>()
    let before = -1
    const running = c.fill((t) => {
      before = t
      return a.promise
    })
    c.markAll()
    expect(c.fillAllowed('any', before, Number.MAX_SAFE_INTEGER)).toBe(false)
    expect(c.untouchedSince('any', before)).toBe(false)
    let after = -1
    await c.fill(async (t) => {
      after = t
    })
    expect(c.fillAllowed('any', after, 0)).toBe(true)
    a.resolve()
    await running
  })

  it('untouchedSince: a write of the key after the token, not of another key', async () => {
    const { c } = coherence()
    const hold = deferred<void>()
    let token = -1
    const running = c.fill((t) => {
      token = t
      return hold.promise
    })
    c.markKey('a', Number.POSITIVE_INFINITY)
    expect(c.untouchedSince('a', token)).toBe(false)
    expect(c.untouchedSince('b', token)).toBe(true)
    hold.resolve()
    await running
  })

  it('marks of one key keep the highest version announced', async () => {
    const { c } = coherence()
    const hold = deferred<void>()
    let token = -1
    const running = c.fill((t) => {
      token = t
      return hold.promise
    })
    c.markKey('k', 10)
    c.markKey('k', 4) // an older invalidation arriving late does not lower the mark
    expect(c.fillAllowed('k', token, 9)).toBe(false)
    expect(c.fillAllowed('k', token, 10)).toBe(true)
    hold.resolve()
    await running
  })
})

describe('Coherence: stamps', () => {
  it("a rise past what the entry recorded invalidates it, whatever the entry's version", () => {
    const { c, clock } = coherence()
    // Versions and generations are clock readings of different nodes: a write of version 800 can have
    // resolved before a bump that another node's clock numbered 500 began. Only generations decide.
    c.raiseStamp('t:a', 500, clock.now())
    expect(c.isCurrent(['n:', 't:a'], [0, 0])).toBe(false)
    expect(c.isCurrent(['n:', 't:a'], [0, 499])).toBe(false)
    expect(c.isCurrent(['n:', 't:a'], [0, 500])).toBe(true) // written after the bump: it saw it
    expect(c.isCurrent(['n:', 't:a'], [0, 501])).toBe(true)
  })

  it('an entry is current while none of its stamps moved past what it recorded', () => {
    const { c, clock } = coherence()
    expect(c.isCurrent(['n:', 't:a'], [0, 0])).toBe(true)
    c.raiseStamp('t:a', 2, clock.now())
    expect(c.isCurrent(['n:', 't:a'], [0, 1])).toBe(false)
    expect(c.isCurrent(['n:', 't:a'], [0, 2])).toBe(true)
    expect(c.isCurrent(['n:'], [0])).toBe(true)
    c.raiseStamp('t:a', 1, clock.now()) // stamps never go down
    expect(c.stampGen('t:a')).toBe(2)
  })

  it('epochs: any rise moves stampEpoch, only a namespace rise moves namespaceEpoch', () => {
    const { c, clock } = coherence()
    const { stampEpoch, namespaceEpoch } = c
    c.raiseStamp('t:a', 1, clock.now())
    expect(c.stampEpoch).toBe(stampEpoch + 1)
    expect(c.namespaceEpoch).toBe(namespaceEpoch)
    c.raiseStamp('n:users', 1, clock.now())
    expect(c.stampEpoch).toBe(stampEpoch + 2)
    expect(c.namespaceEpoch).toBe(namespaceEpoch + 1)
    c.raiseStamp('n:users', 1, clock.now()) // not a rise
    expect(c.stampEpoch).toBe(stampEpoch + 2)
    c.forgetStamps() // forgetting may hide a rise: both move
    expect(c.stampEpoch).toBe(stampEpoch + 3)
    expect(c.namespaceEpoch).toBe(namespaceEpoch + 2)
  })

  it('pruneStamps forgets stamps learned longer ago than the given age, and only those', () => {
    const { c, clock } = coherence()
    c.raiseStamp('t:old', 3, clock.now())
    clock.advance(1_000)
    c.raiseStamp('t:new', 1, clock.now())
    c.pruneStamps(clock.now(), 500)
    expect(c.stamps.has('t:old')).toBe(false)
    expect(c.stampGen('t:new')).toBe(1)
    // With every moved stamp forgotten the table is back to "nothing moved": all entries current.
    c.pruneStamps(clock.now() + 1_000, 500)
    expect(c.isCurrent(['t:new'], [0])).toBe(true)
  })
})

describe('VersionClock', () => {
  it('proposes increasing versions close to wall time, above everything it observed', () => {
    const clock = new ManualClock(1_700_000_000_000)
    const versions = new VersionClock(clock)
    const a = versions.next()
    expect(a).toBe(1_700_000_000_000 * 4096)
    expect(versions.next()).toBe(a + 1) // same millisecond
    versions.observe(a + 1_000_000)
    expect(versions.next()).toBe(a + 1_000_001)
    clock.advance(10_000)
    expect(versions.next()).toBe((1_700_000_000_000 + 10_000) * 4096)
    expect(Number.isSafeInteger(versions.next())).toBe(true)
  })
})

/** Runs `act` inside a fill and returns its token; the fill stays in flight until `done` is called. */
function inFill(c: Coherence): { token: number; done: () => void } {
  const end = deferred<void>()
  let token = -1
  void c.fill(async (t) => {
    token = t
    await end.promise
  })
  return { token, done: () => end.resolve() }
}

describe('Coherence: edges found by mutation testing', () => {
  it('trusts its L1 from the start only when it has no bus', () => {
    const clock = new ManualClock()
    expect(new Coherence(clock, false).trusted).toBe(true)
    expect(new Coherence(clock, true).trusted).toBe(false)
  })

  it('a mark made before a fill started does not void it, whatever version it announced', () => {
    const { c } = coherence()
    const holder = inFill(c) // keeps marks alive
    c.markKey('k', 500)
    const fill = inFill(c) // token taken after the mark
    expect(c.fillAllowed('k', fill.token, 100)).toBe(true)
    expect(c.untouchedSince('k', fill.token)).toBe(true)
    c.markKey('k', 500) // after the token: voids a fill of an older version
    expect(c.fillAllowed('k', fill.token, 100)).toBe(false)
    expect(c.untouchedSince('k', fill.token)).toBe(false)
    holder.done()
    fill.done()
  })

  it('past MAX_KEY_MARKS marked keys, a further mark voids every fill in flight instead', () => {
    const { c } = coherence()
    const fill = inFill(c)
    for (let i = 0; i < 10_000; i++) c.markKey(`k${i}`, 1)
    expect(c.fillAllowed('other', fill.token, 1)).toBe(true)
    c.markKey('one-more', 1)
    expect(c.fillAllowed('other', fill.token, 1)).toBe(false)
    fill.done()
  })

  it('a stamp first learned at generation 0 is no rise', () => {
    const { c, clock } = coherence()
    const epoch = c.stampEpoch
    expect(c.raiseStamp('t:a', 0, clock.now())).toBe(false)
    expect(c.stampEpoch).toBe(epoch)
    expect(c.stampGen('t:a')).toBe(0)
    expect(c.raiseStamp('t:a', 0, clock.now())).toBe(false)
  })

  it('an entry stays judged by its stamps however the table learned them (moved-stamp count)', () => {
    const a = coherence()
    a.c.raiseStamp('t:a', 0, a.clock.now())
    a.c.raiseStamp('t:b', 5, a.clock.now()) // new, already moved
    a.c.raiseStamp('t:a', 3, a.clock.now()) // known at 0, now moved
    expect(a.c.isCurrent(['t:a'], [0])).toBe(false)
    expect(a.c.isCurrent(['t:b'], [0])).toBe(false)
    const b = coherence()
    b.c.raiseStamp('t:a', 0, b.clock.now())
    b.c.raiseStamp('t:a', 3, b.clock.now())
    b.c.raiseStamp('t:b', 5, b.clock.now())
    expect(b.c.isCurrent(['t:a'], [0])).toBe(false)
  })

  it('pruning a stamp that never moved leaves the moved ones in force', () => {
    const { c, clock } = coherence()
    c.raiseStamp('t:still', 0, clock.now())
    clock.advance(1_000)
    c.raiseStamp('t:moved', 5, clock.now())
    c.pruneStamps(clock.now(), 500)
    expect(c.stamps.has('t:still')).toBe(false)
    expect(c.isCurrent(['t:moved'], [0])).toBe(false)
  })

  it('pruneStamps keeps a stamp learned exactly maxAgeMs ago', () => {
    const { c, clock } = coherence()
    c.raiseStamp('t:a', 3, clock.now())
    clock.advance(500)
    c.pruneStamps(clock.now(), 500)
    expect(c.stampGen('t:a')).toBe(3)
  })
})

describe('VersionClock plausibility', () => {
  it('believes versions up to MAX_LEAD_MS ahead of its clock (MAX_VERSION_LEAD in version units), not beyond', () => {
    const clock = new ManualClock(1_700_000_000_000)
    const versions = new VersionClock(clock)
    const now = versions.next()
    const limit = (1_700_000_000_000 + MAX_LEAD_MS) * 4096
    expect(now + MAX_VERSION_LEAD).toBe(limit)
    expect(versions.plausible(limit)).toBe(true)
    expect(versions.plausible(limit + 1)).toBe(false)
    expect(versions.plausible(0)).toBe(true)
    expect(versions.plausible(-1)).toBe(false)
    expect(versions.plausible(1.5)).toBe(false)
    expect(versions.observe(limit + 1)).toBe(false)
    expect(versions.next()).toBe(now + 1) // nothing observed
  })
})
