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
 * Adaptive window: no window size suits every workload. A 1% window is near the best on frequency-skewed
 * traffic (Zipf, scans, loops), but on recency-biased traffic (keys used a few times soon after their
 * first use, then never) it rejects exactly the keys that matter and loses most of LRU's hit ratio; there
 * the best window is nearly the whole cache. So the window's share of the capacity moves at run time
 * between 1 entry and 100% (main empty: plain LRU). It starts at 1%; WindowSim (window-sim.ts) replays a
 * sample of the keys through miniature caches, one per candidate share, and names the share to move to.
 * The tier walks there in bounded steps: each write moves the share by at most TRANSFER_BATCH entries'
 * worth, then evicts as usual, so a shrinking window spills its oldest entries to probation as candidates
 * and a shrinking protected segment demotes its oldest, never more than about TRANSFER_BATCH entries per
 * write. Protected keeps 80% of whatever main has. With `adaptive: false` (a benchmark reference) the
 * share stays where it started.
 *
 * Invariants (checked by check()): every live slot is on exactly one of window / probation /
 * protected, and its segment bits say which; after evict() returns, the tier is within maxEntries and
 * maxBytes, the window within its share (unless the window is the only place left to evict from) and
 * protected within 80% of the rest; after a hit, protected is within its share; the share is in [0, 1].
 *
 * Hash flooding: an attacker who makes a victim look hot (colliding keys raise its counters) could
 * keep every candidate out. As in Caffeine, a candidate that is warm (frequency >= 6) but not hotter
 * than the victim is still admitted with probability 1/128, and key hashes are seeded per cache.
 *
 * Hit path: the tier hands hits over in batches (its read buffer, like Caffeine's but with no
 * concurrency to absorb). Each hit costs a sketch increment only until the key's 4 counters are
 * saturated; from then until the next halving it is a list move, as in LRU (see SATURATION below).
 *
 * Hits of sampled keys (1 in R, see WindowSim) are also replayed through the minis: one hash test per
 * hit, and R is about capacity / 256, so a large cache pays it rarely; nothing is allocated.
 *
 * Sources: Einziger, Friedman & Manes, "TinyLFU: A Highly Efficient Cache Admission Policy", ACM
 * Transactions on Storage 13(4), 2017 (W-TinyLFU, section 4); Caffeine's BoundedLocalCache.java
 * (evictFromWindow, evictFromMain, admit, onAccess; increaseWindow / decreaseWindow for moving the
 * split in bounded batches) by Ben Manes; Einziger, Eytan, Friedman & Manes, "Adaptive Software Cache
 * Management" (Middleware 2018) for adapting the window.
 */
import { FrequencySketch, hashKey } from '../frequency-sketch.js'
import { NIL, SlotList, type SlotStore } from '../slots.js'
import { SHARES, WindowSim } from '../window-sim.js'
import type { EvictionHost, Policy, PolicyContext } from './policy.js'

/** Initial share of the capacity given to the admission window (Caffeine's initial and the paper's default). */
const WINDOW_FRACTION = 0.01
/** Share of the main space (capacity minus window) reserved for protected entries, as in Caffeine. */
const PROTECTED_FRACTION = 0.8
/** A candidate at least this warm may be admitted at random even when not hotter than the victim (Caffeine). */
const ADMIT_HASHDOS_THRESHOLD = 6
/** Odds of that random admission: 1 in 128 (Caffeine's `(random & 127) == 0`). */
const ADMIT_RANDOM_ODDS = 1 / 128
/**
 * Most entries' worth the window's share moves per write, so one write moves at most about this many
 * entries between segments (Caffeine moves up to QUEUE_TRANSFER_THRESHOLD = 1,000 per maintenance run).
 */
const TRANSFER_BATCH = 64

/*
 * Per-slot policy words, in the store's links array next to the slot's list links (SlotStore.links):
 * - links[4 * slot + HASH]: the key's seeded hash (hashKey), computed once on insert: hits never hash;
 * - links[4 * slot + META]: bits 0-1 the segment (WINDOW, PROBATION, PROTECTED), bit 2 SAMPLED (the key
 *   takes part in the window simulation: set on insert, so a hit tests a bit of a word it reads anyway),
 *   bits 3-31 the SATURATION mark: (sketch.epoch + 1) mod 2^29 when the key's 4 counters were last found all at 15,
 *   else 0. While the mark is current an increment would change nothing (counters only go down when
 *   the epoch moves), so a hit skips the sketch: hot keys, which take most hits, then cost no sketch
 *   access at all. Exact: the sketch ends up the same as if every hit were counted.
 */
const HASH = 2
const META = 3
/** Saturation marks keep 29 bits (the low 3 hold the segment and SAMPLED); they wrap after 2^29 sketch epochs. */
const MARK_MASK = 0x1fffffff
const MARK_SHIFT = 3
const SAMPLED = 4

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
  private readonly maxEntries: number
  private readonly maxBytes: number
  /** Segment bounds, derived from `share` by setShare(). */
  private windowMaxEntries = 0
  private windowMaxBytes = 0
  private protectedMaxEntries = 0
  private protectedMaxBytes = 0
  /** The window's share of the capacity now, and the one the simulation chose (adaptive only). */
  private share: number
  private targetShare: number
  /** The miniature simulations that choose the share; undefined when the window is fixed. */
  private sim: WindowSim | undefined
  /** sim.sampleMask: a key is sampled when (hash & sampleMask) === 0. */
  private sampleMask = 0

  constructor(context: PolicyContext, options: TinyLfuOptions = {}) {
    const { store, maxEntries, maxBytes } = context
    this.store = store
    this.host = context.host
    this.random = context.random
    this.seed = (context.random() * 2 ** 32) | 0
    this.window = new SlotList(store)
    this.probation = new SlotList(store)
    this.protected = new SlotList(store)
    this.maxEntries = maxEntries
    this.maxBytes = maxBytes
    this.boundedByEntries = maxEntries !== Number.POSITIVE_INFINITY
    // Bounded by bytes only: size the sketch by the slots in use, and grow it with them.
    this.sketch = new FrequencySketch(this.boundedByEntries ? maxEntries : store.capacity)
    this.share = options.windowFraction ?? WINDOW_FRACTION
    this.targetShare = this.share
    this.setShare(this.share)
    if (options.adaptive ?? true) this.startSim()
  }

  onInsert(slot: number): void {
    const links = this.store.links
    const hash = hashKey(this.store.keys[slot]!, this.seed)
    links[4 * slot + HASH] = hash
    const sampled = this.sim !== undefined && (hash & this.sampleMask) === 0
    links[4 * slot + META] = sampled ? WINDOW | SAMPLED : WINDOW
    this.record(slot)
    this.window.pushTail(slot)
    if (sampled) this.simulate(hash)
  }

  /**
   * Applies a batch of hits: count each in the sketch, move it in its segment, and replay it in the
   * window simulation if its key is sampled. record() and reorder() written out, so that the slot's
   * policy word is read once per hit.
   */
  onHits(slots: Int32Array, count: number): void {
    const links = this.store.links
    const sketch = this.sketch
    for (let i = 0; i < count; i++) {
      const slot = slots[i]!
      const meta = links[4 * slot + META]!
      const mark = (sketch.epoch + 1) & MARK_MASK
      if (meta >>> MARK_SHIFT !== mark && !sketch.increment(links[4 * slot + HASH]!)) {
        links[4 * slot + META] = (mark << MARK_SHIFT) | (meta & 7)
      }
      const segment = meta & 3
      if (segment === PROTECTED) this.protected.moveToTail(slot)
      else if (segment === WINDOW) this.window.moveToTail(slot)
      else this.promote(slot)
      if ((meta & SAMPLED) !== 0) this.simulate(links[4 * slot + HASH]!)
    }
  }

  /** Replays an access of a sampled key in the simulation; if it changes its mind, aims the window there. */
  private simulate(hash: number): void {
    const sim = this.sim!
    if (sim.access(hash)) this.targetShare = SHARES[sim.best]!
  }

  /** Counts one access to the slot's key in the sketch (skipped while it is known to be saturated). */
  private record(slot: number): void {
    const links = this.store.links
    const sketch = this.sketch
    const mark = (sketch.epoch + 1) & MARK_MASK
    const meta = links[4 * slot + META]!
    if (meta >>> MARK_SHIFT !== mark && !sketch.increment(links[4 * slot + HASH]!)) {
      links[4 * slot + META] = (mark << MARK_SHIFT) | (meta & 7)
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

  /** A write of a live key: a use, like a hit. If it grew a protected entry, evict() demotes the overflow. */
  onUpdate(slot: number, oldSize: number): void {
    this.listOf(slot).resized(slot, oldSize)
    this.record(slot)
    this.reorder(slot)
  }

  onRemove(slot: number): void {
    this.listOf(slot).unlink(slot)
  }

  /**
   * Walks the window one bounded step towards its target share, then Caffeine's evictFromWindow +
   * evictFromMain. Window overflow moves to probation's tail; those moved entries are the candidates,
   * taken newest first. While over the bounds, each candidate meets the current victim (probation's head)
   * and the less frequent one is evicted. With no candidate left, victims are evicted directly
   * (probation, then protected). Last, protected's overflow (if the step shrank it, or an update grew it)
   * is demoted.
   */
  evict(): void {
    if (this.share !== this.targetShare) this.stepShare()
    this.evictToBounds()
    if (this.protectedOver()) this.demote()
  }

  private evictToBounds(): void {
    let candidates = this.evictFromWindow()
    const host = this.host
    if (!host.overBounds()) return
    const links = this.store.links
    let candidate = candidates > 0 ? this.probation.tail : NIL
    while (host.overBounds()) {
      // Probation is empty only when an update grew a protected entry past protected's share (demoted at
      // the end): the victim is then protected's least recent. The window is never the victim: with main
      // empty, it is within its share, hence within the bounds.
      let victim = this.probation.head
      if (victim === NIL) victim = this.protected.head
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

  /**
   * Moves the share at most TRANSFER_BATCH entries' worth towards the target, so one write never moves
   * more than about TRANSFER_BATCH entries between segments (the window's overflow, or protected's).
   */
  private stepShare(): void {
    const most = TRANSFER_BATCH / this.sketch.capacity
    const gap = this.targetShare - this.share
    this.setShare(Math.abs(gap) <= most ? this.targetShare : this.share + Math.sign(gap) * most)
  }

  /** Sets the window's share of each bound, and protected's share of what is left (an absent bound stays Infinity). */
  private setShare(share: number): void {
    this.share = share
    const entries = this.maxEntries
    const bytes = this.maxBytes
    if (entries === Number.POSITIVE_INFINITY) {
      this.windowMaxEntries = entries
      this.protectedMaxEntries = entries
    } else {
      this.windowMaxEntries = Math.min(entries, Math.max(1, Math.floor(entries * share)))
      this.protectedMaxEntries = Math.floor((entries - this.windowMaxEntries) * PROTECTED_FRACTION)
    }
    if (bytes === Number.POSITIVE_INFINITY) {
      this.windowMaxBytes = bytes
      this.protectedMaxBytes = bytes
    } else {
      this.windowMaxBytes = bytes * share
      this.protectedMaxBytes = (bytes - this.windowMaxBytes) * PROTECTED_FRACTION
    }
  }

  private startSim(): void {
    this.sim = new WindowSim(this.sketch.capacity, this.sketch, this.share)
    this.sampleMask = this.sim.sampleMask
  }

  grow(capacity: number): void {
    if (this.boundedByEntries) return
    this.sketch.ensureCapacity(capacity)
    // The minis are sized by the sketch's capacity: start them again at the new size, and mark the keys
    // of the new sample (the store just grew, an O(n) copy, so one more pass costs little more).
    if (this.sim === undefined) return
    this.startSim()
    const links = this.store.links
    for (const list of [this.window, this.probation, this.protected]) {
      for (let slot = list.head; slot !== NIL; slot = links[4 * slot + 1]!) {
        const sampled = (links[4 * slot + HASH]! & this.sampleMask) === 0
        links[4 * slot + META] = (links[4 * slot + META]! & ~SAMPLED) | (sampled ? SAMPLED : 0)
      }
    }
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
        const hash = this.store.links[4 * slot + HASH]!
        if (hash !== hashKey(this.store.keys[slot]!, this.seed))
          throw new Error(`tinylfu: stale hash at ${slot}`)
        const sampled = this.sim !== undefined && (hash & this.sampleMask) === 0
        if (((this.store.links[4 * slot + META]! & SAMPLED) !== 0) !== sampled)
          throw new Error(`tinylfu: sample mark of slot ${slot} is wrong`)
        all.push(slot)
      }
    }
    if (this.protectedOver()) throw new Error('tinylfu: protected segment over its share')
    const window = this.window
    if (window.count > this.windowMaxEntries || window.bytes > this.windowMaxBytes + 1e-6)
      throw new Error('tinylfu: window over its share')
    if (!(this.share >= 0 && this.share <= 1 && this.targetShare >= 0 && this.targetShare <= 1))
      throw new Error(`tinylfu: share ${this.share}, target ${this.targetShare}`)
    this.sim?.check()
    return all
  }

  /** The window's share now and its target, and the segment bounds they give (tests and diagnostics). */
  adaptation(): {
    share: number
    target: number
    windowMaxEntries: number
    windowMaxBytes: number
    protectedMaxEntries: number
    protectedMaxBytes: number
  } {
    return {
      share: this.share,
      target: this.targetShare,
      windowMaxEntries: this.windowMaxEntries,
      windowMaxBytes: this.windowMaxBytes,
      protectedMaxEntries: this.protectedMaxEntries,
      protectedMaxBytes: this.protectedMaxBytes,
    }
  }

  /** Sets the share the window walks to, as a decision of the simulation would (tests only). */
  aimAt(share: number): void {
    this.targetShare = Math.min(1, Math.max(0, share))
  }

  /** The simulation's scores by share, or undefined when the window is fixed (tests and diagnostics). */
  scoreboard(): { share: number; fast: number; slow: number }[] | undefined {
    return this.sim?.scoreboard()
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
