/**
 * Slot storage shared by the local tier and its eviction policies, laid out like lru-cache:
 * every entry lives at an integer slot index of preallocated parallel arrays (key, value, expiry and
 * shortcut tag, size, and the prev/next links of whichever policy list the slot is on). Freed slots go on an
 * integer stack and are reused, so steady-state operation allocates nothing per entry.
 *
 * A tier's user may give each entry more than a value without an object per entry (see EntryFields):
 * a fixed number of numbers, kept side by side in one Float64Array, and one reference to a record
 * that many entries may share.
 *
 * Each slot is on exactly one policy list at a time (LRU: the list; LFU: its frequency bucket;
 * TinyLFU: window, probation or protected), so one links array serves every policy. It interleaves
 * prev, next and two policy words per slot, so a hit's list move and policy bookkeeping share one
 * cache line (lru-cache keeps prev and next in separate arrays).
 *
 * Growth: the arrays start at `initialCapacity` slots and double (copying) whenever a slot is needed
 * and none is free, up to `limit`. They never shrink (lru-cache does not either).
 */

/** "No slot": the end of a list, or an empty list's head/tail. */
export const NIL = -1

/** Largest number of slots: indexes are stored in Int32Arrays and NIL is -1. */
export const MAX_SLOTS = 2 ** 31 - 2

/** What each slot holds besides key, value and shortcut (LocalTierOptions.entryFields). */
export interface EntryFields {
  /** Numbers per entry, kept in one Float64Array outside the V8 heap. @default 0 */
  numbers: number
  /** Whether each entry has a record: a reference that entries may share (e.g. their common metadata). */
  record: boolean
}

export const NO_ENTRY_FIELDS: EntryFields = { numbers: 0, record: false }

export class SlotStore<V> {
  keys: (string | undefined)[]
  values: (V | undefined)[]
  /** Each slot's record, if the tier keeps them (EntryFields.record; else an empty array). */
  records: unknown[]
  /** `width` numbers per slot: numbers[width * slot + i] is the slot's i-th number (EntryFields.numbers). */
  numbers: Float64Array
  readonly width: number
  /** Whether slots keep a record (EntryFields.record). */
  readonly keepsRecords: boolean
  /**
   * What a hit may answer with directly, when the tier's user gave one (see LocalTier.getShortcut):
   * reading it skips loading the value object itself, one dependent memory access fewer per hit.
   */
  shortcuts: unknown[]
  /**
   * Two numbers per slot, side by side because a hit reads both (one cache line instead of two):
   * timing[2 * slot] is the absolute expiry time in clock milliseconds (Infinity = never expires), and
   * timing[2 * slot + 1] the tag the slot's shortcut was given with (getShortcut answers only when asked
   * with the same one).
   */
  timing: Float64Array
  /** Weight counted against maxBytes. */
  sizes: Float64Array
  /**
   * Four int32 per slot, side by side so that the policy's work on a hit touches one cache line:
   * links[4 * slot] is the previous slot and links[4 * slot + 1] the next one on the slot's policy
   * list (NIL at the ends); links[4 * slot + 2] and links[4 * slot + 3] belong to the policy (LFU: the
   * slot's bucket; TinyLFU: the key's hash and its segment/saturation word).
   */
  links: Int32Array
  /** Number of slots currently allocated in the arrays. */
  capacity: number
  /** The arrays never grow beyond this many slots. */
  readonly limit: number
  private freeStack: Int32Array
  private freeTop = 0
  /** Slots [0, highWater) have been handed out at least once; the rest were never used. */
  private highWater = 0

  constructor(initialCapacity: number, limit: number, fields: EntryFields = NO_ENTRY_FIELDS) {
    const capacity = Math.max(1, Math.min(initialCapacity, limit))
    this.capacity = capacity
    this.limit = limit
    this.keys = new Array<string | undefined>(capacity).fill(undefined)
    this.values = new Array<V | undefined>(capacity).fill(undefined)
    this.keepsRecords = fields.record
    this.records = fields.record ? new Array<unknown>(capacity).fill(undefined) : []
    this.width = fields.numbers
    this.numbers = new Float64Array(fields.numbers * capacity)
    this.shortcuts = new Array<unknown>(capacity).fill(undefined)
    this.timing = newTiming(capacity)
    this.sizes = new Float64Array(capacity)
    this.links = new Int32Array(4 * capacity).fill(NIL)
    this.freeStack = new Int32Array(capacity)
  }

  /** True when the next alloc() needs grow() first. */
  get full(): boolean {
    return this.freeTop === 0 && this.highWater === this.capacity
  }

  /** Number of slots ever handed out; live slots are those below it with a defined key. */
  get used(): number {
    return this.highWater
  }

  /** Takes a free slot. The caller checks `full` (and grows) first. */
  alloc(): number {
    if (this.freeTop > 0) return this.freeStack[--this.freeTop]!
    return this.highWater++
  }

  /** Returns a slot to the free stack and drops its references so the GC can reclaim them. */
  release(slot: number): void {
    this.keys[slot] = undefined
    this.values[slot] = undefined
    this.shortcuts[slot] = undefined
    if (this.keepsRecords) this.records[slot] = undefined
    this.timing[2 * slot] = Number.POSITIVE_INFINITY
    this.timing[2 * slot + 1] = 0
    this.sizes[slot] = 0
    this.links[4 * slot] = NIL
    this.links[4 * slot + 1] = NIL
    this.freeStack[this.freeTop++] = slot
  }

  /** Doubles the capacity (capped at `limit`) and returns the new capacity. */
  grow(): number {
    const capacity = Math.min(this.limit, this.capacity * 2)
    if (capacity <= this.capacity) throw new RangeError('slot storage is at its limit')
    this.keys.length = capacity
    this.keys.fill(undefined, this.capacity)
    this.values.length = capacity
    this.values.fill(undefined, this.capacity)
    this.shortcuts.length = capacity
    this.shortcuts.fill(undefined, this.capacity)
    if (this.keepsRecords) {
      this.records.length = capacity
      this.records.fill(undefined, this.capacity)
    }
    this.numbers = growFloat64(this.numbers, this.width * capacity, 0)
    const timing = newTiming(capacity)
    timing.set(this.timing)
    this.timing = timing
    this.sizes = growFloat64(this.sizes, capacity, 0)
    this.links = growInt32(this.links, 4 * capacity, NIL)
    this.freeStack = growInt32(this.freeStack, capacity, 0)
    this.capacity = capacity
    return capacity
  }

  /** Forgets every entry (capacity is kept). */
  reset(): void {
    this.keys.fill(undefined)
    this.values.fill(undefined)
    this.shortcuts.fill(undefined)
    this.records.fill(undefined)
    this.numbers.fill(0)
    this.timing = newTiming(this.capacity)
    this.sizes.fill(0)
    this.links.fill(NIL)
    this.freeTop = 0
    this.highWater = 0
  }
}

/** Timing for `capacity` empty slots: no expiry, shortcut tag 0. */
function newTiming(capacity: number): Float64Array {
  const timing = new Float64Array(2 * capacity)
  for (let i = 0; i < timing.length; i += 2) timing[i] = Number.POSITIVE_INFINITY
  return timing
}

export function growInt32(old: Int32Array, capacity: number, fill: number): Int32Array {
  const grown = new Int32Array(capacity)
  grown.set(old)
  if (fill !== 0) grown.fill(fill, old.length)
  return grown
}

export function growFloat64(old: Float64Array, capacity: number, fill: number): Float64Array {
  const grown = new Float64Array(capacity)
  grown.set(old)
  if (fill !== 0) grown.fill(fill, old.length)
  return grown
}

/**
 * A doubly linked list of slots threaded through the store's prev/next arrays, head = oldest.
 * Tracks its length and the sum of its slots' sizes (TinyLFU bounds its segments by both).
 */
export class SlotList {
  head = NIL
  tail = NIL
  count = 0
  bytes = 0

  constructor(private readonly store: SlotStore<unknown>) {}

  pushTail(slot: number): void {
    const store = this.store
    const tail = this.tail
    store.links[4 * slot] = tail
    store.links[4 * slot + 1] = NIL
    if (tail === NIL) this.head = slot
    else store.links[4 * tail + 1] = slot
    this.tail = slot
    this.count++
    this.bytes += store.sizes[slot]!
  }

  unlink(slot: number): void {
    const store = this.store
    const prev = store.links[4 * slot]!
    const next = store.links[4 * slot + 1]!
    if (prev === NIL) this.head = next
    else store.links[4 * prev + 1] = next
    if (next === NIL) this.tail = prev
    else store.links[4 * next] = prev
    store.links[4 * slot] = NIL
    store.links[4 * slot + 1] = NIL
    this.count--
    this.bytes -= store.sizes[slot]!
  }

  /** The size of `slot` (on this list) changed from `oldSize` to store.sizes[slot]. */
  resized(slot: number, oldSize: number): void {
    this.bytes += this.store.sizes[slot]! - oldSize
  }

  /** Makes `slot` (already on this list) the most recent entry. */
  moveToTail(slot: number): void {
    const tail = this.tail
    if (slot === tail) return
    const store = this.store
    const links = store.links
    const prev = links[4 * slot]!
    const next = links[4 * slot + 1]!
    // slot is not the tail, so next !== NIL
    if (prev === NIL) this.head = next
    else links[4 * prev + 1] = next
    links[4 * next] = prev
    links[4 * slot] = tail
    links[4 * slot + 1] = NIL
    links[4 * tail + 1] = slot
    this.tail = slot
  }

  clear(): void {
    this.head = NIL
    this.tail = NIL
    this.count = 0
    this.bytes = 0
  }

  /** Walks the list checking its links, length and byte sum; returns its slots. Tests only. */
  check(name: string): number[] {
    const store = this.store
    const slots: number[] = []
    let bytes = 0
    let prev = NIL
    for (let s = this.head; s !== NIL; s = store.links[4 * s + 1]!) {
      if (store.links[4 * s] !== prev) throw new Error(`${name}: broken prev link at slot ${s}`)
      if (store.keys[s] === undefined) throw new Error(`${name}: free slot ${s} is linked`)
      slots.push(s)
      bytes += store.sizes[s]!
      prev = s
      if (slots.length > store.capacity) throw new Error(`${name}: cycle`)
    }
    if (this.tail !== prev) throw new Error(`${name}: tail ${this.tail} but last slot is ${prev}`)
    if (slots.length !== this.count) throw new Error(`${name}: count ${this.count} but ${slots.length} slots`)
    if (Math.abs(bytes - this.bytes) > 1e-6)
      throw new Error(`${name}: bytes ${this.bytes} but sum is ${bytes}`)
    return slots
  }
}
