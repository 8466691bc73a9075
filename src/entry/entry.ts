/**
 * The L1 entry: one value as this node holds it, with what every read needs to judge it (version,
 * freshness, grace, the stamps it depends on and the generations it was written under), and value
 * isolation: how a caller gets the value without being able to change it for the next caller.
 *
 * Isolation (l1.isolation):
 * - 'copy' (default): the entry holds the cache's own copy; every caller gets a fresh copy of it.
 * - 'freeze': values of plain data are deep-frozen once and shared; others are still copied.
 * - lending: a value that no tier keeps and exactly one caller will see (an L2 read that L1 did not
 *   keep and nobody joined) is handed over as it is, once.
 *
 * Every entry is made by entryOf() (through createEntry(), or rebuilt from L1), so all of them have one
 * shape (the hit path stays monomorphic).
 */
import type { Coherence } from '../coherence/coherence.js'
import { cloneValue, deepFreeze } from '../serialization/clone.js'

export interface L1Entry {
  /** The cache's own copy. Callers get a clone of it, or with isolation 'freeze' it itself if `frozen`. */
  value: unknown
  /** The value is deep-frozen plain data: it can be handed to callers without a copy. */
  frozen: boolean
  /**
   * No tier holds `value` and exactly one caller will get it (an L2 read that L1 did not keep, and that no
   * other caller joined): that caller may take it as is, without a copy. Cleared once lent.
   */
  lendable: boolean
  version: number
  writtenAt: number
  /** How long the loader took to produce the value (0 for set). */
  loadMs: number
  freshUntil: number
  staleUntil: number
  /** How many of stampKeys are the namespace chain (root first); the rest are tags. */
  namespaceStamps: number
  /** The stamps that judge this entry (namespace chain, then tags) and the generations it was written under. */
  stampKeys: readonly string[]
  stampGens: readonly number[]
}

/** What an entry is made of; `freeze` deep-freezes `value` (isolation 'freeze') where it can. */
export interface EntryInit {
  value: unknown
  freeze: boolean
  version: number
  writtenAt: number
  loadMs: number
  freshUntil: number
  staleUntil: number
  namespaceStamps: number
  stampKeys: readonly string[]
  stampGens: readonly number[]
}

export function createEntry(init: EntryInit): L1Entry {
  return entryOf(init, init.freeze && deepFreeze(init.value))
}

/**
 * The entry of `init`, whose value is already as isolation wants it (`frozen`: deep-frozen plain data):
 * what createEntry makes, and what L1Entries puts back together from an L1 slot.
 */
export function entryOf(init: Omit<EntryInit, 'freeze'>, frozen: boolean): L1Entry {
  return {
    value: init.value,
    frozen,
    lendable: false,
    version: init.version,
    writtenAt: init.writtenAt,
    loadMs: init.loadMs,
    freshUntil: init.freshUntil,
    staleUntil: init.staleUntil,
    namespaceStamps: init.namespaceStamps,
    stampKeys: init.stampKeys,
    stampGens: init.stampGens,
  }
}

/** What a caller gets: the shared frozen value, the value itself if it may be lent, or its own copy. */
export function handOut(entry: L1Entry): unknown {
  if (entry.frozen) return entry.value
  if (entry.lendable) {
    entry.lendable = false
    return entry.value
  }
  return cloneValue(entry.value)
}

/**
 * Whether a hit on an entry may be answered from its L1 shortcut, the value itself: its L1 lifetime ends
 * by its freshness (`noGrace`, staleUntil === freshUntil: L1 drops it at freshUntil or sooner), and
 * handing it out needs no per-entry decision (copy mode always copies; freeze mode shares only what
 * deepFreeze could freeze: `frozen`). Takes the fields, not an entry: the hit path reads them from L1's slot.
 */
export function shortcutFor(noGrace: boolean, frozen: boolean, copiesOnRead: boolean): boolean {
  return noGrace && (copiesOnRead || frozen)
}

/**
 * The tag an entry found current now gives its L1 shortcut: the shortcut answers while no stamp the
 * entry depends on has risen (Coherence.namespaceEpoch for an entry without tags, else stampEpoch).
 * Even and odd numbers keep the two apart; Cache.get asks with both current values.
 */
export function shortcutTag(
  entry: Pick<L1Entry, 'stampKeys' | 'namespaceStamps'>,
  coherence: Coherence,
): number {
  // An entry's stamps are its namespace chain followed by its tags: no more than the chain, no tags.
  return entry.stampKeys.length === entry.namespaceStamps
    ? 2 * coherence.namespaceEpoch
    : 2 * coherence.stampEpoch + 1
}

const ZERO_GENS: (readonly number[])[] = []

/** Most entries are written under generation 0 of every stamp: they share one frozen array per length. */
export function sharedGens(gens: number[]): readonly number[] {
  for (const gen of gens) if (gen !== 0) return gens
  return zeroGens(gens.length)
}

export function zeroGens(length: number): readonly number[] {
  ZERO_GENS[length] ??= Object.freeze(new Array<number>(length).fill(0))
  return ZERO_GENS[length]!
}
