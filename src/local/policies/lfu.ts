import { growFloat64, growInt32, NIL, type SlotStore } from '../slots.js'
import type { EvictionHost, Policy, PolicyContext } from './policy.js'

/** A slot's bucket is kept in its first policy word of the store's links (SlotStore.links). */
const BUCKET = 2

/**
 * Least frequently used, O(1) per operation (Shah, Mitra & Matani, "An O(1) algorithm for
 * implementing the LFU cache eviction scheme", 2010).
 *
 * Entries with the same use count share a bucket; each bucket holds its slots in a list threaded
 * through the store's links, and the buckets form a list ordered by ascending count. A hit
 * moves a slot from its bucket (count f) to the next bucket (f + 1), creating it if needed; eviction
 * takes the head of the first bucket. Buckets live in typed arrays too, with their own free stack.
 *
 * Counts start at 1 on insert; get() and set() of an existing key add 1. Counts never age (that is
 * what `tinylfu` is for). Tie-break: among entries with the lowest count, the one that reached that
 * count first is evicted (so a fresh entry outlives older ones of the same count). A newly written
 * entry is never its own victim unless it is the only entry (evict-before-insert semantics).
 */
export class LfuPolicy implements Policy {
  private readonly store: SlotStore<unknown>
  private readonly host: EvictionHost
  /** Use count of each bucket. */
  private bucketCount: Float64Array
  private bucketHead: Int32Array
  private bucketTail: Int32Array
  /** Neighbour with the next lower count. */
  private bucketPrev: Int32Array
  /** Neighbour with the next higher count. */
  private bucketNext: Int32Array
  private bucketFree: Int32Array
  private bucketFreeTop = 0
  private bucketHighWater = 0
  /** The bucket with the lowest count, or NIL when empty. */
  private lowest = NIL

  constructor(context: PolicyContext) {
    this.store = context.store
    this.host = context.host
    const capacity = context.store.capacity
    // A hit can create the next bucket before the old one is freed: one more bucket than slots.
    const buckets = capacity + 1
    this.bucketCount = new Float64Array(buckets)
    this.bucketHead = new Int32Array(buckets).fill(NIL)
    this.bucketTail = new Int32Array(buckets).fill(NIL)
    this.bucketPrev = new Int32Array(buckets).fill(NIL)
    this.bucketNext = new Int32Array(buckets).fill(NIL)
    this.bucketFree = new Int32Array(buckets)
  }

  onInsert(slot: number): void {
    const lowest = this.lowest
    const bucket = lowest !== NIL && this.bucketCount[lowest] === 1 ? lowest : this.newBucket(1, NIL, lowest)
    this.append(bucket, slot)
  }

  onHits(slots: Int32Array, count: number): void {
    for (let i = 0; i < count; i++) this.use(slots[i]!)
  }

  /** Writing a key counts as a use. */
  onUpdate(slot: number): void {
    this.use(slot)
  }

  /** Adds 1 to the count of `slot`: moves it to the bucket for count + 1. */
  private use(slot: number): void {
    const bucket = this.store.links[4 * slot + BUCKET]!
    const count = this.bucketCount[bucket]! + 1
    const next = this.bucketNext[bucket]!
    const nextFits = next !== NIL && this.bucketCount[next] === count
    if (!nextFits && this.bucketHead[bucket] === slot && this.bucketTail[bucket] === slot) {
      // Alone in its bucket and no bucket for count + 1: bump the bucket in place.
      this.bucketCount[bucket] = count
      return
    }
    const target = nextFits ? next : this.newBucket(count, bucket, next)
    this.detach(bucket, slot)
    this.append(target, slot)
  }

  onRemove(slot: number): void {
    this.detach(this.store.links[4 * slot + BUCKET]!, slot)
  }

  evict(written: number): void {
    const host = this.host
    while (host.overBounds()) {
      const lowest = this.lowest
      if (lowest === NIL) return
      let victim = this.bucketHead[lowest]!
      if (victim === written) {
        // The written entry is its bucket's tail, so here it is alone: take the next bucket's oldest.
        const next = this.bucketNext[lowest]!
        if (next === NIL) return
        victim = this.bucketHead[next]!
      }
      host.evictSlot(victim)
    }
  }

  grow(capacity: number): void {
    const buckets = capacity + 1
    this.bucketCount = growFloat64(this.bucketCount, buckets, 0)
    this.bucketHead = growInt32(this.bucketHead, buckets, NIL)
    this.bucketTail = growInt32(this.bucketTail, buckets, NIL)
    this.bucketPrev = growInt32(this.bucketPrev, buckets, NIL)
    this.bucketNext = growInt32(this.bucketNext, buckets, NIL)
    this.bucketFree = growInt32(this.bucketFree, buckets, 0)
  }

  clear(): void {
    this.bucketHead.fill(NIL)
    this.bucketTail.fill(NIL)
    this.bucketPrev.fill(NIL)
    this.bucketNext.fill(NIL)
    this.bucketFreeTop = 0
    this.bucketHighWater = 0
    this.lowest = NIL
  }

  /** The use count of the entry at `slot` (tests and diagnostics). */
  countOf(slot: number): number {
    return this.bucketCount[this.store.links[4 * slot + BUCKET]!]!
  }

  check(): number[] {
    // No cycle guard needed: a list that loops back fails its prev-link check within one lap.
    const store = this.store
    const slots: number[] = []
    let previousCount = 0
    let prevBucket = NIL
    for (let b = this.lowest; b !== NIL; b = this.bucketNext[b]!) {
      const count = this.bucketCount[b]!
      if (this.bucketPrev[b] !== prevBucket) throw new Error(`lfu: broken bucket prev link at ${b}`)
      if (!(count > previousCount)) throw new Error(`lfu: bucket counts not ascending (${count})`)
      if (this.bucketHead[b] === NIL) throw new Error(`lfu: empty bucket ${b} linked`)
      let prev = NIL
      for (let s = this.bucketHead[b]!; s !== NIL; s = store.links[4 * s + 1]!) {
        if (store.links[4 * s] !== prev) throw new Error(`lfu: broken prev link at slot ${s}`)
        if (this.store.links[4 * s + BUCKET] !== b)
          throw new Error(`lfu: slot ${s} on bucket ${b} says ${this.store.links[4 * s + BUCKET]}`)
        slots.push(s)
        prev = s
      }
      if (this.bucketTail[b] !== prev) throw new Error(`lfu: bucket ${b} tail mismatch`)
      previousCount = count
      prevBucket = b
    }
    return slots
  }

  /** Takes a bucket for `count` and links it between `prev` and `next` (either may be NIL). */
  private newBucket(count: number, prev: number, next: number): number {
    const bucket = this.bucketFreeTop > 0 ? this.bucketFree[--this.bucketFreeTop]! : this.bucketHighWater++
    this.bucketCount[bucket] = count
    this.bucketHead[bucket] = NIL
    this.bucketTail[bucket] = NIL
    this.bucketPrev[bucket] = prev
    this.bucketNext[bucket] = next
    if (prev === NIL) this.lowest = bucket
    else this.bucketNext[prev] = bucket
    if (next !== NIL) this.bucketPrev[next] = bucket
    return bucket
  }

  private append(bucket: number, slot: number): void {
    const links = this.store.links
    const tail = this.bucketTail[bucket]!
    links[4 * slot] = tail
    links[4 * slot + 1] = NIL
    if (tail === NIL) this.bucketHead[bucket] = slot
    else links[4 * tail + 1] = slot
    this.bucketTail[bucket] = slot
    this.store.links[4 * slot + BUCKET] = bucket
  }

  /** Unlinks `slot` from `bucket`, freeing the bucket if it becomes empty. Its own links are left: append() sets both. */
  private detach(bucket: number, slot: number): void {
    const links = this.store.links
    const prev = links[4 * slot]!
    const next = links[4 * slot + 1]!
    if (prev === NIL) this.bucketHead[bucket] = next
    else links[4 * prev + 1] = next
    if (next === NIL) this.bucketTail[bucket] = prev
    else links[4 * next] = prev
    if (this.bucketHead[bucket] === NIL) {
      const before = this.bucketPrev[bucket]!
      const after = this.bucketNext[bucket]!
      if (before === NIL) this.lowest = after
      else this.bucketNext[before] = after
      if (after !== NIL) this.bucketPrev[after] = before
      this.bucketFree[this.bucketFreeTop++] = bucket
    }
  }
}
