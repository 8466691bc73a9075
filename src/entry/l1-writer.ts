/**
 * Every way an entry enters or leaves this node's L1 outside the hit path, under the coherence rules
 * (guarantee 3, no stale fill; guarantee 1, read-your-writes):
 * - an older version never replaces a newer one, nor this node's own write that L2 has not got yet;
 * - a fill (an L2 read or a load) that an invalidation overtook is refused, and a refused fill still
 *   proves that its version exists, so an older entry is dropped either way;
 * - no entry outlives the trust window (l1.ttl), the staleness bound when bus messages are lost.
 */
import type { Clock } from '../clock.js'
import type { Coherence } from '../coherence/coherence.js'
import type { StatsCounters } from '../stats/stats.js'
import type { UnsentWrites } from '../write/unsent-writes.js'
import { type L1Entry, shortcutFor, shortcutTag } from './entry.js'
import type { L1Entries } from './l1-entries.js'

export class L1Writer {
  constructor(
    readonly tier: L1Entries | undefined,
    private readonly coherence: Coherence,
    private readonly unsent: UnsentWrites,
    private readonly counters: StatsCounters,
    private readonly clock: Clock,
    /** How long an entry may stay in L1 (l1.ttl). */
    private readonly trustWindowMs: number,
    /** l1.isolation is 'copy'. */
    private readonly copiesOnRead: boolean,
  ) {}

  /**
   * Stores `entry` in L1 unless a newer entry is there or an invalidation overtook the fill. A refused
   * fill still proves that `entry.version` exists, so an older L1 entry is dropped either way: otherwise
   * it would keep answering after a newer write (this node's own, even) has resolved.
   */
  store(rel: string, entry: L1Entry, bytes: number, fillToken: number): void {
    const l1 = this.tier
    if (l1 === undefined) return
    const existing = l1.versionOf(rel)
    if (existing > entry.version) return
    // Never an older value over this node's own write that L2 has not got yet.
    const own = this.unsent.get(rel)
    if (own !== undefined && own.version > entry.version) return
    if (!this.coherence.fillAllowed(rel, fillToken, entry.version)) {
      this.counters.staleFillsRefused++
      if (existing !== -1) l1.delete(rel)
      return
    }
    const lifetime = Math.min(this.trustWindowMs, entry.staleUntil - this.clock.now())
    if (lifetime <= 0) {
      l1.delete(rel)
      return
    }
    // The hit path's shortcut (Cache.get), valid while no stamp the entry depends on rises, for an entry
    // that is current now: the value itself in copy mode (each hit copies it); in freeze mode, a promise
    // already resolved with the frozen value, which every hit hands out as it is. (Resolving a new promise
    // with a frozen object costs a lookup of `then` that V8 does not cache for frozen objects: 3x slower
    // than on a plain one, which made freeze-mode hits slower than copying.)
    const current = this.coherence.isCurrent(entry.stampKeys, entry.stampGens)
    const shortcut =
      current && shortcutFor(entry.staleUntil === entry.freshUntil, entry.frozen, this.copiesOnRead)
        ? this.copiesOnRead
          ? entry.value
          : Promise.resolve(entry.value)
        : undefined
    l1.set(rel, entry, lifetime, bytes + rel.length, shortcut, shortcutTag(entry, this.coherence))
  }

  /** Version `version` of `rel` exists (written here or elsewhere): an older L1 entry must not answer. */
  dropOlder(rel: string, version: number): void {
    const existing = this.tier?.versionOf(rel) ?? -1
    if (existing !== -1 && existing < version) this.tier!.delete(rel)
  }

  /** An invalidation of `rel` up to `version` arrived: entries of that version or older go. */
  invalidate(rel: string, version: number): void {
    const existing = this.tier?.versionOf(rel) ?? -1
    if (existing !== -1 && existing <= version) this.tier!.delete(rel)
  }

  delete(rel: string): void {
    this.tier?.delete(rel)
  }

  clear(): void {
    this.tier?.clear()
  }
}
