import { randomBytes } from 'node:crypto'
import type { Clock } from '../clock.js'
import { isNamespaceStamp } from '../keys.js'
import { VersionClock } from './hlc.js'

/**
 * The coherence protocol: how every node's L1 stays honest about writes made elsewhere.
 *
 * 1. Versions order the writes of one key. The writer proposes one from its VersionClock (hlc.ts); L2
 *    has the last word and gives the write max(proposed, stored + 1), so the versions of a key grow in the
 *    order L2 applied its writes whatever the nodes' clocks say (a delete leaves a tombstone that keeps
 *    its version). L1 entries carry the version; a node never replaces a newer L1 entry with an older one.
 *    Loads are the exception: their version is taken before the loader starts and L2 refuses it if
 *    anything newer is stored (fencing), so a slow load never overwrites a write made meanwhile.
 * 2. Invalidation. After the L2 write succeeds (never before: a node that hears of a write must find it
 *    in L2), the writer publishes {key, version, origin}. Receivers drop L1 entries of that key whose
 *    version is <= the message's.
 * 3. Tags and clear are generation counters ("stamps"): `t:<tag>` and `n:<namespace path>`, incremented
 *    in L2 by invalidateTags / clear and announced on the bus. An entry records the generation of each
 *    stamp that applies to it (its tags, its namespace chain) when written, and is current only while none
 *    has moved past that. A node that has not yet heard of a bump can only record an older generation,
 *    which makes its entry look invalid (a miss), never valid. The rule compares generations only, never
 *    a generation with a version: versions and generations are clock readings of different nodes, and two
 *    nodes' readings in one millisecond, or on skewed clocks, do not say which came first (a rule "a
 *    generation below the entry's version cannot invalidate it" let a tag invalidation miss a write that
 *    had resolved before it began). Checking is O(stamps of the entry) per read; nothing ever scans keys.
 *    A bump proposes a version-clock reading and L2 gives the stamp max(stored + 1, proposed), so it lands
 *    above every generation recorded before it, and, if L2 lost the stamp (a restart without persistence,
 *    FLUSHALL, eviction under maxmemory), above every generation any node remembers. A bump that could not
 *    reach L2 is in effect on its node at once (under the generation it proposed) and is retried as a
 *    raise to that generation, max(stored, proposed), never past it: its first attempt may have landed
 *    with its reply lost, and the entries its node wrote since recorded that generation and must survive
 *    it (guarantee 1). A node that reads a generation from L2 below the one it knows concludes that L2
 *    lost it and raises it again (stamps.ts), so that nodes started later do not trust entries it
 *    invalidated.
 * 4. No stale fill. A read from L2 (or a load) that started before an invalidation arrived must not be
 *    stored in L1 after it: the invalidation may have overtaken the reply. Each fill takes a token (the
 *    local invalidation sequence number when it started); each invalidation bumps the sequence and
 *    records it per key with the highest version it announced (or globally, for stamps and bus
 *    reconnects). A fill whose key was invalidated after its token, by a version newer than the one it
 *    read, is answered to its caller but not stored. (The invalidation of the very write it read, which
 *    often arrives during the read, does not void it.)
 * 5. Trust. L1 and the local stamp table are trusted only while the bus subscription is live. When it
 *    drops, reads bypass L1 (falling back to it only when L2 cannot answer); when it is back, everything
 *    the node may have missed is dropped (L1 purged, stamps forgotten, in-flight fills voided) before
 *    trust returns. Without any bus message, an L1 entry still dies at l1.ttl: that is the hard bound.
 */

/** How many per-key invalidation marks to keep for in-flight fills before voiding all fills instead. */
const MAX_KEY_MARKS = 10_000

export interface Stamp {
  /** The highest generation of this stamp this node knows of. */
  gen: number
  /** When this node learned it (epoch ms); stamps are forgotten once no entry they judge can be alive. */
  seenAt: number
}

export class Coherence {
  /** 8 random bytes that identify this node on the bus. */
  readonly nodeId: Buffer = randomBytes(8)
  readonly versions: VersionClock
  readonly stamps = new Map<string, Stamp>()
  /** How many stamps in the table are above generation 0 (the hit path skips stamp checks while none are). */
  private movedStamps = 0
  /**
   * Count every rise of a stamp this node knows (and every time it forgets them): `stampEpoch` of any
   * stamp, `namespaceEpoch` of namespace stamps only. An L1 entry found current at one value stays current
   * while it is unchanged: stamps only ever rise, and an entry is invalidated only by a rise of one of its
   * own. An entry without tags depends on namespace stamps only, so invalidating a tag leaves it alone.
   * The L1 hit path relies on this (see CacheCore.shortcutTag).
   */
  stampEpoch = 0
  namespaceEpoch = 0
  /** False while the bus (if any) is not known to be delivering every invalidation. */
  trusted: boolean

  private seq = 0
  private floorSeq = 0
  private readonly keyMarks = new Map<string, { seq: number; version: number }>()
  private fillsInFlight = 0

  constructor(clock: Clock, hasBus: boolean) {
    this.versions = new VersionClock(clock)
    this.trusted = !hasBus
  }

  /**
   * Runs `body` as a fill of L1 (an L2 read, a load, a write): it gets the token to pass to fillAllowed,
   * valid until `body` settles, or, when `holdWhile` returns a promise for its result, until that settles
   * (a load's value may enter L1 only once its write has landed). This is the only way to take a token,
   * so no caller can forget to give it back: per-key marks are kept only while some fill is in flight.
   * The token is given back before anyone awaiting the returned promise resumes.
   */
  fill<T>(
    body: (token: number) => Promise<T>,
    holdWhile?: (result: T) => Promise<unknown> | undefined,
  ): Promise<T> {
    this.fillsInFlight++
    let running: Promise<T>
    try {
      running = body(this.seq)
    } catch (err) {
      this.endFill()
      return Promise.reject(err)
    }
    running.then(
      holdWhile === undefined
        ? this.endFill
        : (result) => {
            const hold = holdWhile(result)
            if (hold === undefined) this.endFill()
            else hold.then(this.endFill, this.endFill)
          },
      this.endFill,
    )
    return running
  }

  private readonly endFill = (): void => {
    this.fillsInFlight--
    if (this.fillsInFlight === 0 && this.keyMarks.size > 0) this.keyMarks.clear()
  }

  /**
   * True if the fill holding `token`, which read `version` of `key`, may land in L1: nothing voided all
   * fills since it started, and no invalidation of `key` since then announced a newer version.
   */
  fillAllowed(key: string, token: number, version: number): boolean {
    if (token < this.floorSeq) return false
    const mark = this.keyMarks.get(key)
    return mark === undefined || mark.seq <= token || mark.version <= version
  }

  /** True if nothing voided fills, and nothing invalidated or wrote `key`, since `token` was taken. */
  untouchedSince(key: string, token: number): boolean {
    if (token < this.floorSeq) return false
    const mark = this.keyMarks.get(key)
    return mark === undefined || mark.seq <= token
  }

  /**
   * Records that `key` was written or invalidated up to `version` (Infinity when unknown, as for this
   * node's own writes in progress): fills of older versions that are in flight must not land.
   */
  markKey(key: string, version: number): void {
    if (this.fillsInFlight === 0) return
    if (this.keyMarks.size >= MAX_KEY_MARKS) {
      this.markAll()
      return
    }
    const mark = this.keyMarks.get(key)
    this.keyMarks.set(key, {
      seq: ++this.seq,
      version: mark === undefined ? version : Math.max(mark.version, version),
    })
  }

  /** Voids every fill in flight (tag invalidation, clear, bus reconnect). */
  markAll(): void {
    this.floorSeq = ++this.seq
    this.keyMarks.clear()
  }

  /** Raises stamp `key` to `gen` (a trusted number); true if that was a rise. */
  raiseStamp(key: string, gen: number, now: number): boolean {
    const stamp = this.stamps.get(key)
    if (stamp === undefined) {
      this.stamps.set(key, { gen, seenAt: now })
      if (gen === 0) return false
      this.movedStamps++
      this.stampRose(key)
      return true
    }
    if (gen <= stamp.gen) return false
    if (stamp.gen === 0) this.movedStamps++
    stamp.gen = gen
    stamp.seenAt = now
    this.stampRose(key)
    return true
  }

  private stampRose(key: string): void {
    this.stampEpoch++
    if (isNamespaceStamp(key)) this.namespaceEpoch++
  }

  /** The generation of `key` this node knows, or 0. */
  stampGen(key: string): number {
    return this.stamps.get(key)?.gen ?? 0
  }

  /** True if no known stamp has moved past the generation the entry recorded for it (point 3). */
  isCurrent(stampKeys: readonly string[], stampGens: readonly number[]): boolean {
    // Until some tag or namespace has been invalidated, every entry is current: no lookups at all.
    if (this.movedStamps === 0) return true
    const stamps = this.stamps
    for (let i = 0; i < stampKeys.length; i++) {
      const stamp = stamps.get(stampKeys[i]!)
      if (stamp !== undefined && stamp.gen > stampGens[i]!) return false
    }
    return true
  }

  /** Forgets stamps learned more than `maxAgeMs` ago: no L1 entry they could apply to is still alive. */
  pruneStamps(now: number, maxAgeMs: number): void {
    for (const [key, stamp] of this.stamps) {
      if (now - stamp.seenAt > maxAgeMs) {
        this.stamps.delete(key)
        if (stamp.gen > 0) this.movedStamps--
      }
    }
  }

  /** Forgets every stamp (after a bus reconnect: any of them may be out of date). */
  forgetStamps(): void {
    this.stamps.clear()
    this.movedStamps = 0
    this.stampEpoch++
    this.namespaceEpoch++
  }
}

/** The rule of point 3 for generations `gens` (what is known now) against what an entry recorded. */
export function stillCurrent(gens: readonly number[], recorded: readonly number[]): boolean {
  for (let i = 0; i < gens.length; i++) if (gens[i]! > recorded[i]!) return false
  return true
}
