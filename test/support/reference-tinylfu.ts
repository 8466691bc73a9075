/**
 * Reference models of W-TinyLFU and its frequency sketch, written the obvious way (arrays of keys, one
 * byte per counter) from the rules that src/local/policies/tinylfu.ts and src/local/frequency-sketch.ts
 * state in their opening comments. The model tests run them side by side with the real ones and compare
 * every eviction, so a change in which entry is compared or evicted fails a test even when the
 * invariants still hold and only the hit ratio would move (issue 16: such mutants survived before).
 *
 * What the reference does not model: the adaptive window's decision (WindowSim). It asks the real
 * policy for its target share (`target()`) and models everything else: the bounded walk towards it, the
 * segment bounds it gives, admission, the candidate/victim walk, promotion and demotion.
 */
import { hashKey } from '../../src/local/frequency-sketch.js'
import type { EvictionCause } from '../../src/local/types.js'

/** Count-min sketch of 4-bit counters, one Uint8Array cell per counter, halved every 20 x capacity additions. */
export class ReferenceSketch {
  private counters = new Uint8Array(0)
  private blocks = 0
  private sampleSize = 0
  private additions = 0
  capacity = 0

  constructor(capacity: number) {
    this.ensureCapacity(capacity)
  }

  /** Sized for `maximum` entries (at most 2^26): 16 counters per entry, rounded up to a power of two words. */
  ensureCapacity(maximum: number): void {
    const entries = Math.max(1, Math.min(maximum, 2 ** 26))
    if (entries <= this.capacity) return
    const words = Math.max(16, 2 ** Math.ceil(Math.log2(entries * 2)))
    this.counters = new Uint8Array(words * 8)
    this.blocks = words / 16
    this.sampleSize = 20 * entries
    this.additions = 0
    this.capacity = entries
  }

  /** The 4 counters of a key: all in one block of 16 words, counter i in words 4i..4i+3 of it. */
  private cells(hash: number): number[] {
    let h = Math.imul(hash, 0x31848bab)
    h ^= h >>> 14
    const block = (hash & (this.blocks - 1)) * 16
    const cells: number[] = []
    for (let i = 0; i < 4; i++) {
      const word = block + 4 * i + ((h >>> (8 * i)) & 3)
      const nibble = (h >>> (8 * i + 2)) & 7
      cells.push(word * 8 + nibble)
    }
    return cells
  }

  frequency(hash: number): number {
    return Math.min(...this.cells(hash).map((cell) => this.counters[cell]!))
  }

  /** Adds 1 to each counter below 15; returns false when all 4 were at 15 (then nothing counts). */
  increment(hash: number): boolean {
    let changed = false
    for (const cell of this.cells(hash)) {
      if (this.counters[cell]! < 15) {
        this.counters[cell]!++
        changed = true
      }
    }
    if (!changed) return false
    this.additions++
    if (this.additions >= this.sampleSize) {
      let odd = 0
      for (let i = 0; i < this.counters.length; i++) {
        odd += this.counters[i]! & 1
        this.counters[i] = this.counters[i]! >> 1
      }
      // Each halving of an odd counter loses half a count: the sample counter loses a quarter per odd one.
      this.additions = Math.floor((this.additions - Math.floor(odd / 4)) / 2)
    }
    return true
  }
}

interface Held {
  value: number
  size: number
  expiry: number
  hash: number
  segment: 'window' | 'probation' | 'protected'
}

/** A segment: keys oldest first, and their bytes. */
class Segment {
  keys: string[] = []
  bytes = 0
}

export interface ReferenceTinyLfuOptions {
  maxEntries: number
  maxBytes: number
  /** The tier's random source (a second copy of the same seeded stream): the seed, then admissions. */
  random: () => number
  /** The real policy's target share for its window (the adaptive decision, not modelled). */
  target: () => number
  onEvict: (key: string, value: number, cause: EvictionCause) => void
}

/** W-TinyLFU over plain arrays, with the tier's rules for set/get/delete/sweep around it. */
export class ReferenceTinyLfu {
  readonly entries = new Map<string, Held>()
  readonly sketch: ReferenceSketch
  private readonly window = new Segment()
  private readonly probation = new Segment()
  private readonly protected = new Segment()
  private readonly seed: number
  private readonly maxEntries: number
  private readonly maxBytes: number
  /** Slots the tier holds when bounded by bytes only: 1,024, doubled when all are in use. */
  private slots = 1024
  private share = 0.01
  private windowMaxEntries = 0
  private windowMaxBytes = 0
  private protectedMaxEntries = 0
  private protectedMaxBytes = 0
  private totalBytes = 0

  constructor(private readonly options: ReferenceTinyLfuOptions) {
    this.maxEntries = options.maxEntries
    this.maxBytes = options.maxBytes
    this.seed = (options.random() * 2 ** 32) | 0
    this.sketch = new ReferenceSketch(this.boundedByEntries() ? this.maxEntries : this.slots)
    this.setShare(this.share)
  }

  get(key: string, now: number): number | undefined {
    const held = this.entries.get(key)
    if (held === undefined) return undefined
    if (held.expiry <= now) {
      this.remove(key)
      this.options.onEvict(key, held.value, 'expired')
      return undefined
    }
    this.sketch.increment(held.hash)
    this.reorder(key, held)
    return held.value
  }

  set(key: string, value: number, ttl: number, size: number, now: number): boolean {
    if (size > this.maxBytes || ttl <= 0) {
      this.delete(key)
      return false
    }
    const expiry = ttl === Number.POSITIVE_INFINITY ? ttl : now + ttl
    const held = this.entries.get(key)
    if (held !== undefined) {
      const segment = this.segment(held)
      segment.bytes += size - held.size
      this.totalBytes += size - held.size
      held.value = value
      held.size = size
      held.expiry = expiry
      this.sketch.increment(held.hash)
      this.reorder(key, held)
    } else {
      if (!this.boundedByEntries() && this.entries.size === this.slots) {
        this.slots *= 2
        this.sketch.ensureCapacity(this.slots)
      }
      const hash = hashKey(key, this.seed)
      this.entries.set(key, { value, size, expiry, hash, segment: 'window' })
      this.totalBytes += size
      this.window.keys.push(key)
      this.window.bytes += size
      this.sketch.increment(hash)
    }
    this.evict()
    return this.entries.has(key)
  }

  delete(key: string): boolean {
    if (!this.entries.has(key)) return false
    this.remove(key)
    return true
  }

  sweep(now: number): void {
    for (const [key, held] of [...this.entries]) {
      if (held.expiry <= now) {
        this.remove(key)
        this.options.onEvict(key, held.value, 'expired')
      }
    }
  }

  private boundedByEntries(): boolean {
    return this.maxEntries !== Number.POSITIVE_INFINITY
  }

  private overBounds(): boolean {
    return this.entries.size > this.maxEntries || this.totalBytes > this.maxBytes
  }

  private segment(held: Held): Segment {
    return this[held.segment]
  }

  private remove(key: string): void {
    const held = this.entries.get(key)!
    const segment = this.segment(held)
    segment.keys.splice(segment.keys.indexOf(key), 1)
    segment.bytes -= held.size
    this.totalBytes -= held.size
    this.entries.delete(key)
  }

  private evictOne(key: string): void {
    const held = this.entries.get(key)!
    this.remove(key)
    this.options.onEvict(key, held.value, 'size')
  }

  private move(key: string, to: 'window' | 'probation' | 'protected'): void {
    const held = this.entries.get(key)!
    const from = this.segment(held)
    from.keys.splice(from.keys.indexOf(key), 1)
    from.bytes -= held.size
    held.segment = to
    this[to].keys.push(key)
    this[to].bytes += held.size
  }

  /** A use: window and protected entries become their segment's newest; probation is promoted. */
  private reorder(key: string, held: Held): void {
    if (held.segment !== 'probation') {
      this.move(key, held.segment)
      return
    }
    this.move(key, 'protected')
    if (this.protectedOver()) this.demote()
  }

  private protectedOver(): boolean {
    return (
      this.protected.keys.length > this.protectedMaxEntries || this.protected.bytes > this.protectedMaxBytes
    )
  }

  private demote(): void {
    while (this.protectedOver() && this.protected.keys.length > 0)
      this.move(this.protected.keys[0]!, 'probation')
  }

  private setShare(share: number): void {
    this.share = share
    const entries = this.maxEntries
    const bytes = this.maxBytes
    if (entries === Number.POSITIVE_INFINITY) {
      this.windowMaxEntries = entries
      this.protectedMaxEntries = entries
    } else {
      this.windowMaxEntries = Math.min(entries, Math.max(1, Math.floor(entries * share)))
      this.protectedMaxEntries = Math.floor((entries - this.windowMaxEntries) * 0.8)
    }
    if (bytes === Number.POSITIVE_INFINITY) {
      this.windowMaxBytes = bytes
      this.protectedMaxBytes = bytes
    } else {
      this.windowMaxBytes = bytes * share
      this.protectedMaxBytes = (bytes - this.windowMaxBytes) * 0.8
    }
  }

  private evict(): void {
    // Walk the share towards the target, at most 64 entries' worth (of the sketch's capacity) per write.
    const target = this.options.target()
    if (this.share !== target) {
      const most = 64 / this.sketch.capacity
      const gap = target - this.share
      this.setShare(Math.abs(gap) <= most ? target : this.share + Math.sign(gap) * most)
    }
    // The window's overflow (oldest first) moves to probation's tail: these are the candidates.
    const candidates: string[] = []
    while (
      (this.window.keys.length > this.windowMaxEntries || this.window.bytes > this.windowMaxBytes) &&
      this.window.keys.length > 0
    ) {
      const key = this.window.keys[0]!
      this.move(key, 'probation')
      candidates.push(key)
    }
    // Newest candidate first, each against the current victim: probation's oldest (else protected's). The less frequent one goes; a tie keeps the victim. A candidate that meets
    // itself as the victim, or no candidate left: the victim goes.
    while (this.overBounds()) {
      const victim = this.probation.keys[0] ?? this.protected.keys[0]
      if (victim === undefined) return
      const candidate = candidates.at(-1)
      if (candidate === undefined || candidate === victim) {
        candidates.length = 0
        this.evictOne(victim)
        continue
      }
      candidates.pop()
      if (this.admit(candidate, victim)) {
        this.evictOne(victim)
        const index = candidates.indexOf(victim)
        if (index >= 0) candidates.length = index // the victim was the oldest candidate left
      } else {
        this.evictOne(candidate)
      }
    }
    if (this.protectedOver()) this.demote()
  }

  private admit(candidate: string, victim: string): boolean {
    const victimFrequency = this.sketch.frequency(this.entries.get(victim)!.hash)
    const candidateFrequency = this.sketch.frequency(this.entries.get(candidate)!.hash)
    if (candidateFrequency > victimFrequency) return true
    // Hash-flooding defence: a warm candidate gets in 1 time in 128.
    if (candidateFrequency >= 6) return this.options.random() < 1 / 128
    return false
  }
}
