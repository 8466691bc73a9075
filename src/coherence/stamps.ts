/**
 * Stamp generations as this node learns them: from L2 (the authority), from the bus, and from its own
 * bumps that L2 has not got yet. The table itself (and the rule "an entry is current while none of its
 * stamps moved past the generation it recorded") is in coherence.ts; this module fetches what the table
 * does not know, checks what it is told, and raises it.
 *
 * Untrusted numbers (guarantee 7): a generation is accepted only if it is plausible (hlc.ts); NaN or
 * Infinity would make entries immune to invalidation. A generation read from L2 that is garbage, or lower
 * than the one this node knows, means L2 lost the stamp (a restart without persistence, FLUSHALL, eviction
 * under maxmemory): this node bumps it again in L2, above everything it has seen, so that neither it nor a
 * node started later trusts an entry written before an invalidation it knows of.
 *
 * Bounded: the table holds at most MAX_KNOWN_STAMPS stamps. Past that (a flood of unique tags), it is
 * reset the safe way, as after a bus reconnect: L1 purged, stamps forgotten, fills in flight voided.
 */
import type { Clock } from '../clock.js'
import { sharedGens, zeroGens } from '../entry/entry.js'
import type { KeyNames } from '../keys.js'
import type { RemoteTier } from '../remote/remote-tier.js'
import type { StatsCounters } from '../stats/stats.js'
import type { UnsentWrites } from '../write/unsent-writes.js'
import type { Coherence } from './coherence.js'
import type { Lifetimes } from './lifetimes.js'

/** Stamps this node keeps knowledge of before it resets its table (see the module comment). */
export const MAX_KNOWN_STAMPS = 100_000

export interface StampsParts {
  coherence: Coherence
  remote: RemoteTier | undefined
  keys: KeyNames
  unsent: UnsentWrites
  lifetimes: Lifetimes
  counters: StatsCounters
  clock: Clock
  /** Drops every L1 entry: the table is being reset. */
  clearL1: () => void
}

export class Stamps {
  constructor(private readonly parts: StampsParts) {}

  /**
   * The generations of `stampKeys`: from L2 when `fromL2` (or the local table is not trusted), else from
   * the local table, fetching from L2 only the stamps it does not know. May throw: L2 unreachable.
   */
  async gens(stampKeys: readonly string[], deadline?: number, fromL2 = false): Promise<readonly number[]> {
    const { coherence, remote, keys, clock } = this.parts
    if (remote !== undefined) {
      const unknown =
        fromL2 || !coherence.trusted ? stampKeys : stampKeys.filter((key) => !coherence.stamps.has(key))
      if (unknown.length > 0) {
        const gens = await remote.getStamps(
          unknown.map((key) => keys.stamp(key)),
          deadline,
        )
        const now = clock.now()
        let lost: string[] | undefined
        for (let i = 0; i < unknown.length; i++) {
          const stamp = unknown[i]!
          const gen = gens[i] ?? Number.NaN
          // Lower than known is a loss, unless it is this node's own bump that L2 has not got yet.
          const behind = gen < coherence.stampGen(stamp) && !this.parts.unsent.stamps.has(stamp)
          if (!coherence.versions.observe(gen) || behind) {
            lost ??= []
            lost.push(stamp)
            continue
          }
          coherence.raiseStamp(stamp, gen, now)
        }
        if (lost !== undefined) await this.restore(lost, deadline)
        this.bound()
      }
    }
    return this.local(stampKeys)
  }

  /**
   * The generations a write recorded in L2 (RemoteStore.setStamped: the higher of L2's and this node's,
   * stamps L2 had lost restored in the same operation), learned as gens() learns what it reads; returned
   * for the entry, which records exactly what L2 recorded. `gens` were checked as plausible by the tier.
   */
  learnWritten(stampKeys: readonly string[], gens: number[], restored: number): readonly number[] {
    this.parts.counters.stampsRestored += restored
    this.raise(stampKeys, gens)
    return sharedGens(gens)
  }

  /** The generations of `stampKeys` in the local table (0 for stamps it does not know). */
  local(stampKeys: readonly string[]): readonly number[] {
    return sharedGens(stampKeys.map((key) => this.parts.coherence.stampGen(key)))
  }

  /**
   * The generations of `stampKeys` from the local table, or undefined if it cannot answer (not trusted, or
   * a stamp it has not learned yet). The synchronous path of gens() for reads: no await, no arrays.
   */
  known(stampKeys: readonly string[]): readonly number[] | undefined {
    const { coherence } = this.parts
    if (!coherence.trusted) return undefined
    const stamps = coherence.stamps
    let gens: number[] | undefined
    for (let i = 0; i < stampKeys.length; i++) {
      const stamp = stamps.get(stampKeys[i]!)
      if (stamp === undefined) return undefined
      if (stamp.gen !== 0) {
        gens ??= new Array<number>(stampKeys.length).fill(0)
        gens[i] = stamp.gen
      }
    }
    return gens ?? zeroGens(stampKeys.length)
  }

  /**
   * Raises stamps in the local table: an invalidation by tag or namespace takes effect here. `gens` must be
   * trusted (this node's own, or L2's answer to its bump); see accept() for numbers from the bus.
   * Returns whether any stamp rose.
   */
  raise(stampKeys: readonly string[], gens: readonly number[]): boolean {
    const { coherence, clock } = this.parts
    const now = clock.now()
    let rose = false
    for (let i = 0; i < stampKeys.length; i++) {
      coherence.versions.observe(gens[i]!)
      if (coherence.raiseStamp(stampKeys[i]!, gens[i]!, now)) rose = true
    }
    this.bound()
    return rose
  }

  /** A generation another node announced: observed and usable if plausible, else to be ignored. */
  accept(gen: number): boolean {
    return this.parts.coherence.versions.observe(gen)
  }

  /** Stamps bumped here but not yet in L2 stay raised, even when the stamp table is forgotten or pruned. */
  restoreUnsent(): void {
    const { unsent, coherence, clock } = this.parts
    if (unsent.stamps.size === 0) return
    const now = clock.now()
    for (const [key, gen] of unsent.stamps) coherence.raiseStamp(key, gen, now)
  }

  /**
   * L2 lost `stamps` (or holds garbage for them): raise them again to what this node knows (garbage: to a
   * version-clock reading), one stamp at a time. That is not an invalidation of its own: the stamp is
   * raised to what this node knows, not bumped past what L2 holds (RemoteStore.bumpStamps with `raise`),
   * so entries written under the generation this node knows keep their place and entries it invalidated
   * stay invalid. Not announced: other nodes know no more than this.
   */
  private async restore(stamps: readonly string[], deadline: number | undefined): Promise<void> {
    const { remote, keys, lifetimes, coherence, counters } = this.parts
    counters.stampsRestored += stamps.length
    const bumped = await Promise.all(
      stamps.map(async (stamp) => {
        const known = coherence.stampGen(stamp)
        const proposed = known > 0 ? known : coherence.versions.next()
        const [gen] = await remote!.bumpStamps(
          [keys.stamp(stamp)],
          lifetimes.stampTtl(),
          proposed,
          deadline,
          true,
        )
        return gen!
      }),
    )
    this.raise(stamps, bumped)
  }

  /** Resets the table the safe way once it knows more than MAX_KNOWN_STAMPS stamps. */
  private bound(): void {
    const { coherence } = this.parts
    if (coherence.stamps.size <= MAX_KNOWN_STAMPS) return
    this.parts.clearL1()
    coherence.forgetStamps()
    this.restoreUnsent()
    coherence.markAll()
  }
}
