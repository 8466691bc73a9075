/**
 * W-TinyLFU eviction (the default policy).
 *
 * Idea: recency and frequency each catch what the other misses. New entries enter a small LRU
 * *admission window*; the window's overflow becomes a *candidate* for the main space, which is a
 * segmented LRU (SLRU): entries start on *probation* and are promoted to *protected* when hit again;
 * protected overflow is demoted back to probation's tail. When the cache is over its bounds, the
 * candidate competes with main's *victim* (probation's head, its least recently used entry): the one
 * the TinyLFU frequency sketch says is less popular is evicted. A burst of one-off keys therefore
 * churns only the window and dies at admission, while a popular key keeps its place; the window lets
 * a new key collect a few hits before it has to prove itself.
 *
 * Invariants (checked by check()): every live slot is on exactly one of window / probation /
 * protected, and its segment bits say which; after evict() returns, the tier is within maxEntries and
 * maxBytes and the window within its share (unless the window is the only place left to evict from);
 * after a hit, protected is within its share.
 *
 * Hash flooding: an attacker who makes a victim look hot (colliding keys raise its counters) could
 * keep every candidate out. As in Caffeine, a candidate that is warm (frequency >= 6) but not hotter
 * than the victim is still admitted with probability 1/128, and key hashes are seeded per cache.
 *
 * Hit path: the tier hands hits over in batches (its read buffer, like Caffeine's but with no
 * concurrency to absorb). Each hit costs a sketch increment only until the key's 4 counters are
 * saturated; from then until the next halving it is a list move, as in LRU (see SATURATION below).
 *
 * Not done (vs Caffeine): the window is a fixed 1% (Caffeine adapts it by hill climbing).
 *
 * Sources: Einziger, Friedman & Manes, "TinyLFU: A Highly Efficient Cache Admission Policy", ACM
 * Transactions on Storage 13(4), 2017 (W-TinyLFU, section 4); Caffeine's BoundedLocalCache.java
 * (evictFromWindow, evictFromMain, admit, onAccess) by Ben Manes.
 */
import { FrequencySketch, hashKey } from '../frequency-sketch.js'
import { NIL, SlotList, type SlotStore } from '../slots.js'
import { WindowClimber } from '../window-climber.js'
import type { EvictionHost, Policy, PolicyContext } from './policy.js'

/** Share of the capacity given to the admission window (Caffeine's initial and the paper's default). */
const WINDOW_FRACTION = 0.01
/** Share of the main space (capacity minus window) reserved for protected entries, as in Caffeine. */
const PROTECTED_FRACTION = 0.8
/** A candidate at least this warm may be admitted at random even when not hotter than the victim (Caffeine). */
const ADMIT_HASHDOS_THRESHOLD = 6
/** Odds of that random admission: 1 in 128 (Caffeine's `(random & 127) == 0`). */
const ADMIT_RANDOM_ODDS = 1 / 128
/** Most entries one adjustment moves between segments per write (Caffeine: QUEUE_TRANSFER_THRESHOLD, 1,000). */
const TRANSFER_BATCH = 64

/*
 * Per-slot policy words, in the store's links array next to the slot's list links (SlotStore.links):
 * - links[4 * slot + HASH]: the key's seeded hash (hashKey), computed once on insert: hits never hash;
 * - links[4 * slot + META]: bits 0-1 the segment (WINDOW, PROBATION, PROTECTED), bits 2-31 the
 *   SATURATION mark: (sketch.epoch + 1) mod 2^30 when the key's 4 counters were last found all at 15,
 *   else 0. While the mark is current an increment would change nothing (counters only go down when
 *   the epoch moves), so a hit skips the sketch: hot keys, which take most hits, then cost no sketch
 *   access at all. Exact: the sketch ends up the same as if every hit were counted.
 */
const HASH = 2
const META = 3
/** Saturation marks keep 30 bits (the low 2 hold the segment); they wrap after 2^30 sketch epochs. */
const MARK_MASK = 0x3fffffff

const WINDOW = 0
const PROBATION = 1
const PROTECTED = 2

/** Internal construction options (benchmarks and tests; not reachable through the public options). */
export interface TinyLfuOptions {
  /** Whether the window/main split adapts at run time. @default true (false: today's fixed 1% window) */
  adaptive?: boolean
  /** Initial share of the capacity given to the window. @default WINDOW_FRACTION */
  windowFraction?: number
}

export class TinyLfuPolicy implements Policy {
  private readonly store: SlotStore<unknown>
  private readonly host: EvictionHost
  private readonly random: () => number
  private readonly sketch: FrequencySketch
  private readonly window: SlotList
  private readonly probation: SlotList
  private readonly protected: SlotList
  private readonly seed: number
  private readonly boundedByEntries: boolean
  private windowMaxEntries: number
  private windowMaxBytes: number
  private protectedMaxEntries: number
  private protectedMaxBytes: number
  private readonly maxEntries: number
  private readonly maxBytes: number
  private readonly adaptive: boolean
  private readonly climber: WindowClimber
  /** Set once the tier first evicted: the climber samples only a full cache. */
  private full = false
  /** What is left to move for the current adjustment: entries and bytes, > 0 growing the window. */
  private pendingEntries = 0
  private pendingBytes = 0

  constructor(context: PolicyContext, options: TinyLfuOptions = {}) {
    const { store, maxEntries, maxBytes } = context
    this.adaptive = options.adaptive ?? true
    this.store = store
    this.host = context.host
    this.random = context.random
    this.seed = (context.random() * 2 ** 32) | 0
    this.window = new SlotList(store)
    this.probation = new SlotList(store)
    this.protected = new SlotList(store)
    // Each bound is split the same way; an absent bound (Infinity) stays Infinity in every segment.
    const windowFraction = options.windowFraction ?? WINDOW_FRACTION
    this.windowMaxEntries = Math.max(1, Math.floor(maxEntries * windowFraction))
    this.windowMaxBytes = maxBytes * windowFraction
    this.protectedMaxEntries = Math.floor((maxEntries - this.windowMaxEntries) * PROTECTED_FRACTION)
    this.protectedMaxBytes = (maxBytes - this.windowMaxBytes) * PROTECTED_FRACTION
    this.boundedByEntries = maxEntries !== Number.POSITIVE_INFINITY
    // Bounded by bytes only: size the sketch by the slots in use, and grow it with them.
    this.sketch = new FrequencySketch(this.boundedByEntries ? maxEntries : store.capacity)
    this.maxEntries = maxEntries
    this.maxBytes = maxBytes
    this.climber = new WindowClimber(this.sketch.capacity)
  }

  onInsert(slot: number): void {
    const hash = hashKey(this.store.keys[slot]!, this.seed)
    this.store.links[4 * slot + HASH] = hash
    this.store.links[4 * slot + META] = WINDOW
    this.record(slot)
    this.window.pushTail(slot)
    this.climber.misses++
  }

  /** Applies a batch of hits: count each in the sketch, then move it in its segment. */
  onHits(slots: Int32Array, count: number): void {
    this.climber.hits += count
    for (let i = 0; i < count; i++) {
      const slot = slots[i]!
      this.record(slot)
      this.reorder(slot)
    }
  }

  /** Counts one access to the slot's key in the sketch (skipped while it is known to be saturated). */
  private record(slot: number): void {
    const links = this.store.links
    const sketch = this.sketch
    const mark = (sketch.epoch + 1) & MARK_MASK
    const meta = links[4 * slot + META]!
    if (meta >>> 2 !== mark && !sketch.increment(links[4 * slot + HASH]!)) {
      links[4 * slot + META] = (mark << 2) | (meta & 3)
    }
  }

  /** The list move of an access: window and protected entries go to their tail, probation is promoted. */
  private reorder(slot: number): void {
    const segment = this.store.links[4 * slot + META]! & 3
    if (segment === PROTECTED) this.protected.moveToTail(slot)
    else if (segment === WINDOW) this.window.moveToTail(slot)
    else this.promote(slot)
  }

  /** A probation entry was used again: it moves to protected, whose overflow is demoted. */
  private promote(slot: number): void {
    this.probation.unlink(slot)
    this.protected.pushTail(slot)
    this.setSegment(slot, PROTECTED)
    if (this.protectedOver()) this.demote()
  }

  /** A write is an access (as in Caffeine); the segment's byte total follows the new size. */
  onUpdate(slot: number, oldSize: number): void {
    this.listOf(slot).resized(slot, oldSize)
    this.record(slot)
    this.reorder(slot)
    if (this.protectedOver()) this.demote()
  }

  onRemove(slot: number): void {
    this.listOf(slot).unlink(slot)
  }

  /**
   * Caffeine's evictFromWindow + evictFromMain. Window overflow moves to probation's tail; those
   * moved entries are the candidates, taken newest first. While over the bounds, each candidate meets
   * the current victim (probation's head) and the less frequent one is evicted. With no candidate
   * left, victims are evicted directly (probation, then protected, then window).
   */
  evict(): void {
    this.evictToBounds()
    if (this.adaptive) this.climb()
  }

  private evictToBounds(): void {
    let candidates = this.evictFromWindow()
    const host = this.host
    if (!host.overBounds()) return
    if (!this.full) {
      this.full = true
      this.climber.resetSample()
    }
    const links = this.store.links
    let candidate = candidates > 0 ? this.probation.tail : NIL
    while (host.overBounds()) {
      let victim = this.probation.head
      if (victim === NIL) victim = this.protected.head !== NIL ? this.protected.head : this.window.head
      if (victim === NIL) return
      if (candidate === NIL || candidate === victim) {
        // No competition left (or the candidate walk reached the victim itself).
        if (candidate === victim) candidate = NIL
        host.evictSlot(victim)
        continue
      }
      const previous = --candidates > 0 ? links[4 * candidate]! : NIL
      if (this.admit(links[4 * candidate + HASH]!, links[4 * victim + HASH]!)) {
        host.evictSlot(victim)
        // If the next candidate was the victim, it is gone and probation holds no more candidates.
        candidate = previous === victim ? NIL : previous
      } else {
        host.evictSlot(candidate)
        candidate = previous
      }
    }
  }

  grow(capacity: number): void {
    if (!this.boundedByEntries) {
      this.sketch.ensureCapacity(capacity)
      this.climber.resize(this.sketch.capacity)
    }
  }

  /** Runs the climber (when a sample is complete) and moves one bounded batch of a pending adjustment. */
  private climb(): void {
    if (!this.full) {
      this.climber.resetSample()
      return
    }
    if (this.pendingEntries === 0) {
      const share = this.climber.climb()
      if (share === 0) return
      this.pendingEntries = share * this.maxEntries
      this.pendingBytes = share * this.maxBytes
      if (this.pendingEntries === 0) return
    }
    if (this.pendingEntries > 0) this.increaseWindow()
    else this.decreaseWindow()
  }

  /**
   * Grows the window by moving main's least valuable entries into it (probation's oldest, then protected's),
   * at most TRANSFER_BATCH per call; the window's bounds grow and protected's shrink by what moved.
   */
  private increaseWindow(): void {
    const sizes = this.store.sizes
    let moved = 0
    for (; moved < TRANSFER_BATCH; moved++) {
      let slot = this.probation.head
      if (slot === NIL) slot = this.protected.head
      if (slot === NIL) break
      const size = sizes[slot]!
      if (
        this.pendingEntries < 1 ||
        this.pendingBytes < size ||
        this.protectedMaxEntries < 1 ||
        this.protectedMaxBytes < size
      ) {
        this.pendingEntries = 0
        break
      }
      this.listOf(slot).unlink(slot)
      this.window.pushTail(slot)
      this.setSegment(slot, WINDOW)
      this.pendingEntries--
      this.pendingBytes -= size
      this.windowMaxEntries++
      this.windowMaxBytes += size
      this.protectedMaxEntries--
      this.protectedMaxBytes -= size
    }
    if (moved === 0) this.pendingEntries = 0
    this.demote()
  }

  /** Shrinks the window by moving its oldest entries to probation, at most TRANSFER_BATCH per call. */
  private decreaseWindow(): void {
    const sizes = this.store.sizes
    let moved = 0
    for (; moved < TRANSFER_BATCH; moved++) {
      const slot = this.window.head
      if (slot === NIL || this.windowMaxEntries <= 1) {
        this.pendingEntries = 0
        break
      }
      const size = sizes[slot]!
      if (-this.pendingEntries < 1 || -this.pendingBytes < size) {
        this.pendingEntries = 0
        break
      }
      this.window.unlink(slot)
      this.probation.pushTail(slot)
      this.setSegment(slot, PROBATION)
      this.pendingEntries++
      this.pendingBytes += size
      this.windowMaxEntries--
      this.windowMaxBytes -= size
      this.protectedMaxEntries++
      this.protectedMaxBytes += size
    }
    if (moved === 0) this.pendingEntries = 0
  }

  clear(): void {
    this.window.clear()
    this.probation.clear()
    this.protected.clear()
  }

  check(): number[] {
    const lists: [SlotList, number, string][] = [
      [this.window, WINDOW, 'window'],
      [this.probation, PROBATION, 'probation'],
      [this.protected, PROTECTED, 'protected'],
    ]
    const all: number[] = []
    for (const [list, segment, name] of lists) {
      for (const slot of list.check(`tinylfu ${name}`)) {
        if (this.segmentOf(slot) !== segment)
          throw new Error(`tinylfu: slot ${slot} on ${name} says ${this.segmentOf(slot)}`)
        if (this.store.links[4 * slot + HASH] !== hashKey(this.store.keys[slot]!, this.seed))
          throw new Error(`tinylfu: stale hash at ${slot}`)
        all.push(slot)
      }
    }
    if (this.protectedOver()) throw new Error('tinylfu: protected segment over its share')
    return all
  }

  /** Segment sizes, for tests and diagnostics. */
  segments(): { window: number; probation: number; protected: number } {
    return { window: this.window.count, probation: this.probation.count, protected: this.protected.count }
  }

  /** The sketch's estimate for a key (tests and diagnostics). */
  frequencyOf(key: string): number {
    return this.sketch.frequency(hashKey(key, this.seed))
  }

  /** Moves the window's overflow to probation's tail; returns how many entries moved (the candidates). */
  private evictFromWindow(): number {
    const window = this.window
    let moved = 0
    while (
      (window.count > this.windowMaxEntries || window.bytes > this.windowMaxBytes) &&
      window.head !== NIL
    ) {
      const slot = window.head
      window.unlink(slot)
      this.probation.pushTail(slot)
      this.setSegment(slot, PROBATION)
      moved++
    }
    return moved
  }

  /** Whether the candidate should replace the victim (Caffeine's admit). */
  private admit(candidateHash: number, victimHash: number): boolean {
    const victimFrequency = this.sketch.frequency(victimHash)
    const candidateFrequency = this.sketch.frequency(candidateHash)
    if (candidateFrequency > victimFrequency) return true
    if (candidateFrequency >= ADMIT_HASHDOS_THRESHOLD) return this.random() < ADMIT_RANDOM_ODDS
    return false
  }

  private protectedOver(): boolean {
    const list = this.protected
    return list.count > this.protectedMaxEntries || list.bytes > this.protectedMaxBytes
  }

  /** Demotes protected's least recent entries to probation's tail until protected fits its share. */
  private demote(): void {
    const list = this.protected
    while (this.protectedOver() && list.head !== NIL) {
      const slot = list.head
      list.unlink(slot)
      this.probation.pushTail(slot)
      this.setSegment(slot, PROBATION)
    }
  }

  private segmentOf(slot: number): number {
    return this.store.links[4 * slot + META]! & 3
  }

  private setSegment(slot: number, segment: number): void {
    const links = this.store.links
    links[4 * slot + META] = (links[4 * slot + META]! & ~3) | segment
  }

  private listOf(slot: number): SlotList {
    const segment = this.segmentOf(slot)
    return segment === WINDOW ? this.window : segment === PROBATION ? this.probation : this.protected
  }
}
