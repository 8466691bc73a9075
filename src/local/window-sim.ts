/**
 * WindowSim: chooses the size of W-TinyLFU's admission window by miniature simulation.
 *
 * Idea: the best split between the window (recency) and the main space (frequency) depends on the
 * workload, and the cache can only be in one configuration at a time. So a few miniature W-TinyLFU caches
 * run beside it, each with a different fixed window share, on a spatial sample of the keys: a key takes
 * part when the top log2(R) bits of its hash are zero (1 key in R, a power of two), and each mini
 * holds capacity / R entries. Sampling by key keeps every access of a sampled key, so a mini's hit ratio
 * estimates that of a full-size cache with its window share (SHARDS). The minis store key hashes only, no
 * values, and share the real cache's frequency sketch: a sampled key's counts are the same in the sampled
 * stream, and the sketch ages over the same number of accesses per entry. Once the minis are full, every
 * `period` sampled accesses their hits are folded into a fast- and a slow-decaying score, and the best
 * mini's share becomes the target only when it leads the current one by Z standard deviations (so the
 * window holds still when shares tie, as 0-5% do on Zipf traffic). The tier then walks its window to the
 * target in bounded steps (tinylfu.ts).
 *
 * Why not the hit-rate hill climber (Caffeine's climb()): it learns the direction from the change in hit
 * rate between samples of 10 x capacity requests, one step per sample. On recency-biased traces the best
 * window is ~100% and the climb from 1% took ~15 samples (300,000 requests at 2,000 entries), a loss of
 * 8 points against LRU over a million requests; on short traces (LIRS sprite: 27 samples) it never got
 * there. The minis measure every candidate share at once, on the same requests (so their differences
 * carry little noise), and decide within a few times the capacity in requests.
 *
 * Cost: per sampled access, one lookup in each mini (open addressing, linear probing) and an O(1) list
 * move or W-TinyLFU insert/evict; typed arrays allocated once, nothing allocated per access. The sample
 * rate keeps a mini at MINI_ENTRIES..2 x MINI_ENTRIES entries, so for a large cache about one access in
 * capacity / MINI_ENTRIES pays it; a cache of at most MINI_ENTRIES entries runs the minis unsampled.
 *
 * Invariants (check()): in each mini, every used slot but the free one is on exactly one of its three
 * lists and in its hash table, counts match the lists, and window / protected are within their bounds.
 * Deterministic: the sample comes from the tier's seeded key hashes, and nothing else is random.
 *
 * Sources: Waldspurger, Saemundsson, Ahmad & Park, "Cache Modeling and Optimization using Miniature
 * Simulations" (USENIX ATC 2017); Waldspurger et al., "Efficient MRC Construction with SHARDS" (FAST 2015);
 * Einziger, Eytan, Friedman & Manes, "Adaptive Software Cache Management" (Middleware 2018), whose
 * mini-simulation climber (Caffeine's simulator, MiniSimClimber) this follows.
 */
import type { FrequencySketch } from './frequency-sketch.js'

/** Window shares the minis run with; the tier's window moves to one of them. */
export const SHARES: readonly number[] = [0, 0.01, 0.05, 0.2, 0.5, 0.8, 1]
/** A mini holds MINI_ENTRIES to 2 x MINI_ENTRIES - 1 entries (fewer only if the cache is smaller). */
const MINI_ENTRIES = 256
/** Share of a mini's main space reserved for protected entries (as in the tier). */
const PROTECTED_FRACTION = 0.8
/** Sampled accesses between two decisions: half a mini's size, and at least PERIOD_MIN. */
const PERIOD_PER_ENTRY = 0.5
const PERIOD_MIN = 128
/**
 * Scores are hit counts that decay by this factor each period, so they weigh about the last
 * 1 / (1 - decay) periods: 8 for the fast score (about 4 x the mini's size in sampled accesses), 64 for
 * the slow one. The fast score catches a change of workload within a few periods; the slow one sees a
 * small but steady difference that the fast one never holds long enough to prove.
 */
const FAST_DECAY = 0.875
const SLOW_DECAY = 1 - 1 / 64
/**
 * A share replaces the current one only if it leads by more than Z standard deviations of the
 * difference. All minis see the same accesses, so a hit ratio difference between two of them is roughly a
 * difference of two Poisson counts, whose variance is at most their sum.
 */
const Z = 3

const WINDOW = 0
const PROBATION = 1
const PROTECTED = 2
const NIL = -1

export class WindowSim {
  /** A key is sampled when (hash & sampleMask) === 0: its top log2(R) bits are zero (0: every key). */
  readonly sampleMask: number
  /** Entries per mini. */
  readonly size: number
  private readonly minis = SHARES.length
  /** Slots per mini: size + 1 (a new entry is inserted before the victim leaves). */
  private readonly slots: number
  private readonly tableMask: number
  private readonly hashes: Int32Array
  private readonly prev: Int32Array
  private readonly next: Int32Array
  private readonly segment: Uint8Array
  /** Open-addressing tables, one per mini: (slot + 1), 0 = empty. */
  private readonly table: Int32Array
  /** Per mini and list (3 * mini + segment): head, tail, count. */
  private readonly heads: Int32Array
  private readonly tails: Int32Array
  private readonly counts: Int32Array
  private readonly windowMax: Int32Array
  private readonly protectedMax: Int32Array
  /** Per mini: slots handed out so far, and the slot freed by the last eviction (or NIL). */
  private readonly used: Int32Array
  private readonly free: Int32Array
  private readonly hits: Float64Array
  private readonly scores: Float64Array
  private readonly slowScores: Float64Array
  private readonly period: number
  private accesses = 0
  private warm = false
  /** Set by the first eviction in any mini. */
  private filled = false
  /** Index in SHARES of the current target. */
  best: number

  constructor(
    capacity: number,
    private readonly sketch: FrequencySketch,
    initialShare: number,
  ) {
    let bits = 0
    while (bits < 24 && capacity / 2 ** (bits + 1) >= MINI_ENTRIES) bits++
    this.sampleMask = bits === 0 ? 0 : -1 << (32 - bits)
    const size = Math.max(1, Math.ceil(capacity / 2 ** bits))
    this.size = size
    this.slots = size + 1
    const tableSize = 2 ** Math.ceil(Math.log2(2 * this.slots))
    this.tableMask = tableSize - 1
    const k = this.minis
    this.hashes = new Int32Array(k * this.slots)
    this.prev = new Int32Array(k * this.slots)
    this.next = new Int32Array(k * this.slots)
    this.segment = new Uint8Array(k * this.slots)
    this.table = new Int32Array(k * tableSize)
    this.heads = new Int32Array(3 * k).fill(NIL)
    this.tails = new Int32Array(3 * k).fill(NIL)
    this.counts = new Int32Array(3 * k)
    this.windowMax = new Int32Array(k)
    this.protectedMax = new Int32Array(k)
    this.used = new Int32Array(k)
    this.free = new Int32Array(k).fill(NIL)
    this.hits = new Float64Array(k)
    this.scores = new Float64Array(k)
    this.slowScores = new Float64Array(k)
    for (let i = 0; i < k; i++) {
      const window = Math.min(size, Math.max(1, Math.round(SHARES[i]! * size)))
      this.windowMax[i] = window
      this.protectedMax[i] = Math.floor(PROTECTED_FRACTION * (size - window))
    }
    this.period = Math.max(PERIOD_MIN, Math.ceil(PERIOD_PER_ENTRY * size))
    let nearest = 0
    for (let i = 1; i < k; i++) {
      if (Math.abs(SHARES[i]! - initialShare) < Math.abs(SHARES[nearest]! - initialShare)) nearest = i
    }
    this.best = nearest
  }

  /**
   * Replays one access of a sampled key (the caller checks `(hash & sampleMask) === 0`, and has already
   * counted the access in the sketch). Returns true when the decision changed (read `best`).
   */
  access(hash: number): boolean {
    for (let mini = 0; mini < this.minis; mini++) this.accessMini(mini, hash)
    if (!this.warm) {
      // Until the minis are full nothing is evicted and every share scores the same: no evidence yet.
      if (!this.filled) return false
      this.warm = true
      this.hits.fill(0)
      this.accesses = 0
      return false
    }
    if (++this.accesses < this.period) return false
    this.accesses = 0
    const before = this.best
    this.decide()
    return this.best !== before
  }

  /**
   * Folds the period's hits into the scores and picks the share: the fast scores' leader if it leads the
   * current share by more than Z deviations; else the slow scores' leader if it does so there and is
   * also ahead in the fast scores (so that, after a change of workload, the slow scores' memory of the
   * old one cannot pull the window back).
   */
  private decide(): void {
    const fast = this.scores
    const slow = this.slowScores
    const hits = this.hits
    for (let i = 0; i < this.minis; i++) {
      fast[i] = FAST_DECAY * fast[i]! + hits[i]!
      slow[i] = SLOW_DECAY * slow[i]! + hits[i]!
      hits[i] = 0
    }
    const current = this.best
    const fastBest = this.leader(fast)
    if (this.leads(fast, fastBest, current)) {
      this.best = fastBest
      return
    }
    const slowBest = this.leader(slow)
    if (this.leads(slow, slowBest, current) && fast[slowBest]! > fast[current]!) this.best = slowBest
  }

  /** The index of the highest score (the first one on a tie). */
  private leader(scores: Float64Array): number {
    let best = 0
    for (let i = 1; i < this.minis; i++) if (scores[i]! > scores[best]!) best = i
    return best
  }

  private leads(scores: Float64Array, best: number, current: number): boolean {
    return scores[best]! - scores[current]! > Z * Math.sqrt(scores[best]! + scores[current]!)
  }

  private accessMini(mini: number, hash: number): void {
    const base = mini * this.slots
    const tableBase = mini * (this.tableMask + 1)
    const mask = this.tableMask
    const table = this.table
    const hashes = this.hashes
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const entry = table[tableBase + i]!
      if (entry === 0) break
      const slot = entry - 1
      if (hashes[base + slot] === hash) {
        this.hits[mini]!++
        this.onHit(mini, base + slot)
        return
      }
    }
    this.insert(mini, hash)
  }

  private onHit(mini: number, slot: number): void {
    const segment = this.segment[slot]!
    if (segment === PROBATION) {
      this.unlink(mini, PROBATION, slot)
      this.pushTail(mini, PROTECTED, slot)
      if (this.counts[3 * mini + PROTECTED]! > this.protectedMax[mini]!) {
        const demoted = this.heads[3 * mini + PROTECTED]!
        this.unlink(mini, PROTECTED, demoted)
        this.pushTail(mini, PROBATION, demoted)
      }
    } else {
      this.unlink(mini, segment, slot)
      this.pushTail(mini, segment, slot)
    }
  }

  private insert(mini: number, hash: number): void {
    const base = mini * this.slots
    let local = this.free[mini]!
    if (local !== NIL) this.free[mini] = NIL
    else local = this.used[mini]!++
    const slot = base + local
    this.hashes[slot] = hash
    this.tableInsert(mini, hash, local)
    this.pushTail(mini, WINDOW, slot)
    let candidate = NIL
    if (this.counts[3 * mini + WINDOW]! > this.windowMax[mini]!) {
      candidate = this.heads[3 * mini + WINDOW]!
      this.unlink(mini, WINDOW, candidate)
      this.pushTail(mini, PROBATION, candidate)
    }
    const c = 3 * mini
    if (this.counts[c]! + this.counts[c + 1]! + this.counts[c + 2]! <= this.size) return
    let victim = this.heads[c + PROBATION]!
    if (victim === NIL) victim = this.heads[c + PROTECTED]!
    if (victim === NIL) victim = this.heads[c + WINDOW]!
    if (candidate !== NIL && candidate !== victim) {
      // W-TinyLFU admission: the candidate replaces the victim only if it is more frequent.
      if (this.sketch.frequency(this.hashes[candidate]!) <= this.sketch.frequency(this.hashes[victim]!))
        victim = candidate
    }
    this.evict(mini, victim)
  }

  private evict(mini: number, slot: number): void {
    this.unlink(mini, this.segment[slot]!, slot)
    this.tableRemove(mini, this.hashes[slot]!)
    this.free[mini] = slot - mini * this.slots
    this.filled = true
  }

  private pushTail(mini: number, segment: number, slot: number): void {
    const list = 3 * mini + segment
    const tail = this.tails[list]!
    this.prev[slot] = tail
    this.next[slot] = NIL
    if (tail === NIL) this.heads[list] = slot
    else this.next[tail] = slot
    this.tails[list] = slot
    this.counts[list]!++
    this.segment[slot] = segment
  }

  private unlink(mini: number, segment: number, slot: number): void {
    const list = 3 * mini + segment
    const prev = this.prev[slot]!
    const next = this.next[slot]!
    if (prev === NIL) this.heads[list] = next
    else this.next[prev] = next
    if (next === NIL) this.tails[list] = prev
    else this.prev[next] = prev
    this.counts[list]!--
  }

  private tableInsert(mini: number, hash: number, local: number): void {
    const tableBase = mini * (this.tableMask + 1)
    const mask = this.tableMask
    let i = hash & mask
    while (this.table[tableBase + i] !== 0) i = (i + 1) & mask
    this.table[tableBase + i] = local + 1
  }

  /** Linear-probing deletion by backward shift: no tombstones, so lookups stay short. */
  private tableRemove(mini: number, hash: number): void {
    const tableBase = mini * (this.tableMask + 1)
    const base = mini * this.slots
    const mask = this.tableMask
    const table = this.table
    let hole = hash & mask
    while (this.hashes[base + table[tableBase + hole]! - 1] !== hash) hole = (hole + 1) & mask
    for (let i = (hole + 1) & mask; ; i = (i + 1) & mask) {
      const entry = table[tableBase + i]!
      if (entry === 0) break
      const home = this.hashes[base + entry - 1]! & mask
      // The entry at i may fill the hole if its home is not in (hole, i] (cyclically).
      const between = hole <= i ? home > hole && home <= i : home > hole || home <= i
      if (!between) {
        table[tableBase + hole] = entry
        hole = i
      }
    }
    table[tableBase + hole] = 0
  }

  /** Scores of the minis, by share (tests and diagnostics). */
  scoreboard(): { share: number; fast: number; slow: number }[] {
    return SHARES.map((share, i) => ({ share, fast: this.scores[i]!, slow: this.slowScores[i]! }))
  }

  /** Verifies every mini's lists, counts, bounds and table. Tests only, O(size). */
  check(): void {
    for (let mini = 0; mini < this.minis; mini++) {
      const base = mini * this.slots
      const seen = new Set<number>()
      let total = 0
      for (const segment of [WINDOW, PROBATION, PROTECTED]) {
        const list = 3 * mini + segment
        let n = 0
        let prev = NIL
        for (let s = this.heads[list]!; s !== NIL; s = this.next[s]!) {
          if (this.prev[s] !== prev) throw new Error(`mini ${mini}: broken prev link at ${s}`)
          if (this.segment[s] !== segment) throw new Error(`mini ${mini}: slot ${s} on the wrong list`)
          if (seen.has(s)) throw new Error(`mini ${mini}: slot ${s} on two lists`)
          seen.add(s)
          prev = s
          n++
        }
        if (this.tails[list] !== prev || this.counts[list] !== n)
          throw new Error(`mini ${mini}: list ${segment} tail or count is off`)
        total += n
      }
      if (total > this.size) throw new Error(`mini ${mini}: ${total} entries > ${this.size}`)
      if (this.counts[3 * mini + WINDOW]! > this.windowMax[mini]!)
        throw new Error(`mini ${mini}: window over its bound`)
      if (this.counts[3 * mini + PROTECTED]! > this.protectedMax[mini]!)
        throw new Error(`mini ${mini}: protected over its bound`)
      const expected = this.used[mini]! - (this.free[mini] === NIL ? 0 : 1)
      if (total !== expected) throw new Error(`mini ${mini}: ${total} linked, ${expected} in use`)
      let inTable = 0
      const tableBase = mini * (this.tableMask + 1)
      for (let i = 0; i <= this.tableMask; i++) {
        const entry = this.table[tableBase + i]!
        if (entry === 0) continue
        inTable++
        if (!seen.has(base + entry - 1)) throw new Error(`mini ${mini}: table names a free slot`)
      }
      if (inTable !== total) throw new Error(`mini ${mini}: ${inTable} in the table, ${total} linked`)
    }
  }
}
