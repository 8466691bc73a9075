/**
 * The cache's L1: entries packed into the local tier's slots, without an object per entry.
 *
 * An L1Entry is how an entry travels (a write, an L2 read, the outage queue). Kept in L1, it is split:
 * - its value is the tier's value, and the hit path's shortcut is that value or a promise of it;
 * - its version, writtenAt, loadMs, freshUntil and staleUntil are five numbers in the tier's Float64Array;
 * - what it shares with the entries written under the same stamps (namespace chain, tags, the
 *   generations it was written under, and whether its value is frozen) is one EntryStamps record, which
 *   all of them reference.
 * An untagged entry in a namespace whose generations have not moved thus costs the tier's slot and five
 * numbers; get() and peek() put an L1Entry back together for the paths that need one (a short-lived
 * object). The L1 hit path reads the slot instead (Cache.getValid).
 */
import type { Clock } from '../clock.js'
import type { LocalTier } from '../local/local-tier.js'
import { LocalTier as Tier } from '../local/local-tier.js'
import { NIL } from '../local/slots.js'
import type { EvictionPolicy, LocalTierStats } from '../local/types.js'
import { entryOf, type L1Entry } from './entry.js'

/** What entries written under the same stamps share; never mutated (entries hold it by reference). */
export interface EntryStamps {
  /** How many of stampKeys are the namespace chain (root first); the rest are tags. */
  readonly namespaceStamps: number
  readonly stampKeys: readonly string[]
  readonly stampGens: readonly number[]
  /** The value is deep-frozen plain data (isolation 'freeze'). */
  readonly frozen: boolean
}

// The numbers of an entry, in the tier's Float64Array.
const VERSION = 0
const WRITTEN_AT = 1
const LOAD_MS = 2
const FRESH_UNTIL = 3
const STALE_UNTIL = 4
const NUMBERS = 5

/** Distinct stamp records remembered for sharing; beyond, the table starts over (entries keep theirs). */
const MAX_SHARED_STAMPS = 4096

export interface L1EntriesOptions {
  maxEntries: number | undefined
  maxBytes: number | undefined
  policy: EvictionPolicy
  clock: Clock
  sweepIntervalMs: number
}

export class L1Entries {
  private readonly tier: LocalTier<unknown>
  /** set()'s numbers, filled and handed to the tier (which copies them). */
  private readonly scratch = new Float64Array(NUMBERS)
  /** Records by stamp keys, for entries written under the same ones to share (see stampsOf). */
  private readonly shared = new Map<string, EntryStamps[]>()
  /** The last record used: a run of writes in one namespace finds it without building a table key. */
  private last: EntryStamps | undefined

  constructor(options: L1EntriesOptions) {
    this.tier = new Tier<unknown>({
      maxEntries: options.maxEntries,
      maxBytes: options.maxBytes,
      policy: options.policy,
      clock: options.clock,
      sweepIntervalMs: options.sweepIntervalMs,
      entryFields: { numbers: NUMBERS, record: true },
    })
  }

  get size(): number {
    return this.tier.size
  }

  get bytes(): number {
    return this.tier.bytes
  }

  get stats(): LocalTierStats {
    return this.tier.stats
  }

  /** The live entry for `rel`, recording the hit with the eviction policy (a new object each call). */
  get(rel: string): L1Entry | undefined {
    const slot = this.tier.getSlot(rel)
    return slot === NIL ? undefined : this.entryAt(slot)
  }

  /** The live entry for `rel`, without touching the policy or the stats (a new object each call). */
  peek(rel: string): L1Entry | undefined {
    const slot = this.tier.peekSlot(rel)
    return slot === NIL ? undefined : this.entryAt(slot)
  }

  /** The version of `rel`'s live entry, or -1 if there is none (versions are never negative). */
  versionOf(rel: string): number {
    const slot = this.tier.peekSlot(rel)
    return slot === NIL ? -1 : this.tier.numberAt(slot, VERSION)
  }

  /** Whether `rel`'s live entry holds `value` itself (an entry that L1 kept, not one it did not). */
  holds(rel: string, value: unknown): boolean {
    const slot = this.tier.peekSlot(rel)
    return slot !== NIL && this.tier.valueAt(slot) === value
  }

  /** The hit path: the slot of `rel`'s live entry (NIL if none), recording the hit; read it at once. */
  getSlot(rel: string): number {
    return this.tier.getSlot(rel)
  }

  valueAt(slot: number): unknown {
    return this.tier.valueAt(slot)
  }

  stampsAt(slot: number): EntryStamps {
    return this.tier.recordAt(slot) as EntryStamps
  }

  freshUntilAt(slot: number): number {
    return this.tier.numberAt(slot, FRESH_UNTIL)
  }

  staleUntilAt(slot: number): number {
    return this.tier.numberAt(slot, STALE_UNTIL)
  }

  /** Stores `entry` for `lifetimeMs` (see LocalTier.set for size, shortcut and tag); whether it was kept. */
  set(
    rel: string,
    entry: L1Entry,
    lifetimeMs: number,
    size: number,
    shortcut: unknown,
    tag: number,
  ): boolean {
    const numbers = this.scratch
    numbers[VERSION] = entry.version
    numbers[WRITTEN_AT] = entry.writtenAt
    numbers[LOAD_MS] = entry.loadMs
    numbers[FRESH_UNTIL] = entry.freshUntil
    numbers[STALE_UNTIL] = entry.staleUntil
    return this.tier.set(rel, entry.value, lifetimeMs, size, shortcut, tag, this.stampsOf(entry), numbers)
  }

  getShortcut(rel: string, tagA: number, tagB: number): unknown {
    return this.tier.getShortcut(rel, tagA, tagB)
  }

  renewShortcut(rel: string, tag: number): void {
    this.tier.renewShortcut(rel, tag)
  }

  delete(rel: string): boolean {
    return this.tier.delete(rel)
  }

  clear(): void {
    this.tier.clear()
  }

  close(): void {
    this.tier.close()
  }

  /** The L1Entry at `slot`, put back together. */
  private entryAt(slot: number): L1Entry {
    const tier = this.tier
    const stamps = tier.recordAt(slot) as EntryStamps
    const init = {
      value: tier.valueAt(slot),
      version: tier.numberAt(slot, VERSION),
      writtenAt: tier.numberAt(slot, WRITTEN_AT),
      loadMs: tier.numberAt(slot, LOAD_MS),
      freshUntil: tier.numberAt(slot, FRESH_UNTIL),
      staleUntil: tier.numberAt(slot, STALE_UNTIL),
      namespaceStamps: stamps.namespaceStamps,
      stampKeys: stamps.stampKeys,
      stampGens: stamps.stampGens,
    }
    return entryOf(init, stamps.frozen)
  }

  /**
   * The record for `entry`'s stamps, shared with every entry written under the same ones: most entries of
   * a cache carry the same namespace chain under the same generations, so they all reference one record.
   */
  private stampsOf(entry: L1Entry): EntryStamps {
    const last = this.last
    if (last !== undefined && last.stampKeys === entry.stampKeys && matches(last, entry)) return last
    // Only a lookup key: matches() compares the lists themselves.
    const key = entry.stampKeys.join('\n')
    let records = this.shared.get(key)
    if (records === undefined) {
      if (this.shared.size >= MAX_SHARED_STAMPS) this.shared.clear()
      records = []
      this.shared.set(key, records)
    }
    let found = records.find((record) => matches(record, entry))
    if (found === undefined) {
      found = {
        namespaceStamps: entry.namespaceStamps,
        stampKeys: entry.stampKeys,
        stampGens: entry.stampGens,
        frozen: entry.frozen,
      }
      // Generations only rise: an older record of these keys rarely serves again, so a few suffice.
      if (records.length >= 4) records.shift()
      records.push(found)
    }
    this.last = found
    return found
  }
}

/** Whether `record` describes `entry`'s stamps exactly. */
function matches(record: EntryStamps, entry: L1Entry): boolean {
  return (
    record.frozen === entry.frozen &&
    record.namespaceStamps === entry.namespaceStamps &&
    sameList(record.stampKeys, entry.stampKeys) &&
    sameList(record.stampGens, entry.stampGens)
  )
}

function sameList<T>(a: readonly T[], b: readonly T[]): boolean {
  if (a === b) return true
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
