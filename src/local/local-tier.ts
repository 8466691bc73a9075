/**
 * LocalTier: the in-process (L1) tier. A bounded map with per-entry TTL and a pluggable eviction
 * policy (W-TinyLFU by default; LRU, LFU and FIFO for comparison and special workloads).
 * Long because the hit path is written out by hand (get and getShortcut share no helper: a call costs a
 * measurable share of a hit), next to expiry, byte bounds and the policies' shared slot store.
 *
 * Layout (after lru-cache): a Map from key to an integer slot; the entry itself lives in parallel
 * arrays of a SlotStore (key, value, expiry, size, list links), the policy keeps its order in typed
 * arrays of slot indexes. A hit is a Map lookup and a slot index written to the read buffer; every
 * READ_BUFFER_SIZE hits the policy applies them in one loop. No allocation, no closure, and no clock
 * read unless some entry has a finite TTL (then only for entries that have one).
 *
 * Bounds: maxEntries and/or maxBytes. When maxEntries is given the slot arrays are preallocated for it
 * (up to PREALLOCATED_SLOTS_MAX, then grown by doubling); with maxBytes only they start at
 * INITIAL_SLOTS and double when full. One spare slot beyond maxEntries lets a policy insert first and
 * evict after (TinyLFU's new entry must reach the window before the window's victim is chosen).
 *
 * Expiry: an entry set at time t with ttlMs lives while clock.now() < t + ttlMs. Expired entries are
 * never returned; get() removes them lazily, sweep() (on an unref'd timer) removes them in bulk and is
 * a no-op until the earliest known expiry has passed.
 *
 * Hit-path time: with the system clock, get() and getShortcut() read it at most once per event-loop
 * turn and per READ_BUFFER_SIZE hits, and reuse that reading in between (lru-cache's ttlResolution,
 * bounded by work done instead of a 1 ms timer alone). A clock read cost ~40-100 ns here, a third of a
 * hit. So a hit may see an entry live for the rest of the turn in which it expired: until the next I/O
 * callback or timer at the latest, as if the caller had read Date.now() once at the start of its work.
 * An injected clock (tests, simulations) is read on every call, so fake time stays exact.
 *
 * onEvict runs after the entry is fully removed. It must not call back into the tier synchronously.
 * If it throws, the operation still completes (bounds hold) and the first error is rethrown at the end.
 */
import { type Clock, systemClock } from '../clock.js'
import { InvalidOptionError } from '../errors.js'
import { FifoPolicy } from './policies/fifo.js'
import { LfuPolicy } from './policies/lfu.js'
import { LruPolicy } from './policies/lru.js'
import type { EvictionHost, Policy, PolicyContext } from './policies/policy.js'
import { TinyLfuPolicy } from './policies/tinylfu.js'
import { MAX_SLOTS, NIL, NO_ENTRY_FIELDS, SlotStore } from './slots.js'
import type { EvictionCause, EvictionPolicy, LocalTierOptions, LocalTierStats } from './types.js'

/** Slots allocated up front when only maxBytes bounds the tier; doubled as needed. */
const INITIAL_SLOTS = 1024
/** With maxEntries, preallocate all slots up to this many (~3.4 MB of arrays); beyond, grow by doubling. */
const PREALLOCATED_SLOTS_MAX = 65_536
/**
 * Hits buffered before they are handed to the policy in one batch (Caffeine's read buffer, minus the
 * concurrency): the batch runs as one tight loop, which made TinyLFU hits ~20% faster than applying
 * each at once. Drained before every other policy call and every removal, so behaviour is unchanged.
 */
const READ_BUFFER_SIZE = 64
/** Default for options.sweepIntervalMs. */
const DEFAULT_SWEEP_INTERVAL_MS = 1000
/** setInterval's largest delay (a signed 32-bit millisecond count). */
const MAX_TIMER_MS = 2 ** 31 - 1
/** Largest maxEntries: one spare slot must still fit in MAX_SLOTS. */
const MAX_ENTRIES = MAX_SLOTS - 1

const POLICIES: Record<EvictionPolicy, new (context: PolicyContext) => Policy> = {
  lru: LruPolicy,
  lfu: LfuPolicy,
  fifo: FifoPolicy,
  tinylfu: TinyLfuPolicy,
}

export class LocalTier<V> {
  /** Live counters; read them directly. */
  readonly stats: LocalTierStats = { hits: 0, misses: 0, evictedBySize: 0, expired: 0 }

  private readonly index = new Map<string, number>()
  private readonly store: SlotStore<V>
  private readonly policy: Policy
  private readonly clock: Clock
  private readonly maxEntries: number
  private readonly maxBytes: number
  private readonly onEvict: ((key: string, value: V, cause: EvictionCause) => void) | undefined
  private totalBytes = 0
  /** Live entries with a finite expiry; sweep() and keys() skip the clock when 0. */
  private ttlEntries = 0
  /** No entry expires before this time (a lower bound; exact right after a sweep). */
  private earliestExpiry = Number.POSITIVE_INFINITY
  private timer: ReturnType<typeof setInterval> | undefined
  private readonly hitBuffer = new Int32Array(READ_BUFFER_SIZE)
  private pendingHits = 0
  private hasPendingError = false
  private pendingError: unknown = undefined
  /** Whether hits may reuse a clock reading (see "Hit-path time"): only for the system clock. */
  private readonly reusesHitTime: boolean
  /** The reading hits reuse, or -1: read the clock. Reset by drainHits() and once per event-loop turn. */
  private hitTime = -1
  private hitTimeResetScheduled = false
  private readonly resetHitTime = (): void => {
    this.hitTime = -1
    this.hitTimeResetScheduled = false
  }

  /**
   * `policyFactory` (internal: benchmarks and tests) builds the policy instead of `options.policy`, e.g. a
   * TinyLFU with a fixed window as bench:hitrate's reference row. It is not part of the public options.
   */
  constructor(options: LocalTierOptions<V>, policyFactory?: (context: PolicyContext) => Policy) {
    if (options === null || typeof options !== 'object') {
      throw new InvalidOptionError('l1', `expected an options object, got ${describe(options)}`)
    }
    const {
      maxEntries,
      maxBytes,
      policy = 'tinylfu',
      clock = systemClock,
      onEvict,
      random = Math.random,
      entryFields = NO_ENTRY_FIELDS,
    } = options
    const sweepIntervalMs = options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS
    if (maxEntries === undefined && maxBytes === undefined) {
      throw new InvalidOptionError(
        'l1.maxEntries',
        'set l1.maxEntries and/or l1.maxBytes to bound the local tier',
      )
    }
    if (
      maxEntries !== undefined &&
      !(
        typeof maxEntries === 'number' &&
        Number.isInteger(maxEntries) &&
        maxEntries > 0 &&
        maxEntries <= MAX_ENTRIES
      )
    ) {
      throw new InvalidOptionError(
        'l1.maxEntries',
        `expected an integer from 1 to ${MAX_ENTRIES}, got ${describe(maxEntries)}`,
      )
    }
    if (
      maxBytes !== undefined &&
      !(typeof maxBytes === 'number' && Number.isFinite(maxBytes) && maxBytes > 0)
    ) {
      throw new InvalidOptionError(
        'l1.maxBytes',
        `expected a finite number greater than 0, got ${describe(maxBytes)}`,
      )
    }
    if (typeof policy !== 'string' || !Object.hasOwn(POLICIES, policy)) {
      throw new InvalidOptionError(
        'l1.policy',
        `expected one of ${Object.keys(POLICIES).join(', ')}, got ${describe(policy)}`,
      )
    }
    if (
      !(typeof sweepIntervalMs === 'number' && Number.isFinite(sweepIntervalMs)) ||
      sweepIntervalMs < 0 ||
      sweepIntervalMs > MAX_TIMER_MS
    ) {
      throw new InvalidOptionError(
        'l1.sweepIntervalMs',
        `expected a number of milliseconds from 0 (no timer) to ${MAX_TIMER_MS}, got ${describe(sweepIntervalMs)}`,
      )
    }
    if (clock === null || typeof clock !== 'object' || typeof clock.now !== 'function') {
      throw new InvalidOptionError('l1.clock', 'expected an object with a now() method')
    }
    if (onEvict !== undefined && typeof onEvict !== 'function') {
      throw new InvalidOptionError('l1.onEvict', `expected a function, got ${describe(onEvict)}`)
    }
    if (typeof random !== 'function') {
      throw new InvalidOptionError('l1.random', `expected a function, got ${describe(random)}`)
    }

    if (
      entryFields === null ||
      typeof entryFields !== 'object' ||
      !(Number.isInteger(entryFields.numbers) && entryFields.numbers >= 0 && entryFields.numbers <= 64) ||
      typeof entryFields.record !== 'boolean'
    ) {
      throw new InvalidOptionError(
        'l1.entryFields',
        'expected { numbers: an integer from 0 to 64, record: a boolean }',
      )
    }

    this.maxEntries = maxEntries ?? Number.POSITIVE_INFINITY
    this.maxBytes = maxBytes ?? Number.POSITIVE_INFINITY
    this.clock = clock
    this.reusesHitTime = clock === systemClock
    this.onEvict = onEvict
    const limit = maxEntries === undefined ? MAX_SLOTS : maxEntries + 1
    const initial = maxEntries === undefined ? INITIAL_SLOTS : Math.min(limit, PREALLOCATED_SLOTS_MAX)
    this.store = new SlotStore<V>(initial, limit, entryFields)
    const host: EvictionHost = {
      overBounds: () => this.index.size > this.maxEntries || this.totalBytes > this.maxBytes,
      evictSlot: (slot) => this.remove(slot, 'size'),
    }
    const context: PolicyContext = {
      store: this.store as SlotStore<unknown>,
      host,
      maxEntries: this.maxEntries,
      maxBytes: this.maxBytes,
      random,
    }
    this.policy = policyFactory === undefined ? new POLICIES[policy](context) : policyFactory(context)

    if (sweepIntervalMs > 0) {
      // The timer holds the tier weakly, so a tier dropped without close() can still be collected.
      const ref = new WeakRef<LocalTier<V>>(this)
      const timer = setInterval(() => {
        const tier = ref.deref()
        if (tier === undefined) clearInterval(timer)
        else tier.sweepFromTimer()
      }, sweepIntervalMs)
      timer.unref()
      this.timer = timer
    }
  }

  /** Number of entries (expired ones count until they are removed). */
  get size(): number {
    return this.index.size
  }

  /** Sum of the sizes of all entries. */
  get bytes(): number {
    return this.totalBytes
  }

  /** Returns the live value for `key` and records the use with the policy; counts a hit or a miss. */
  get(key: string): V | undefined {
    const slot = this.index.get(key)
    if (slot === undefined) {
      this.stats.misses++
      return undefined
    }
    if (this.ttlEntries !== 0 && this.isExpired(slot)) {
      this.stats.misses++
      this.remove(slot, 'expired')
      this.throwPendingError()
      return undefined
    }
    // Record the hit for the policy; it is applied in batches (see READ_BUFFER_SIZE).
    const pending = this.pendingHits
    this.hitBuffer[pending] = slot
    this.pendingHits = pending + 1
    if (pending + 1 === READ_BUFFER_SIZE) this.drainHits()
    this.stats.hits++
    return this.store.values[slot]
  }

  /**
   * get() that answers with the live entry's slot (NIL if there is none), for valueAt(), recordAt() and
   * numberAt(). A slot names the entry only until the tier is next changed: read it at once.
   */
  getSlot(key: string): number {
    const slot = this.index.get(key)
    if (slot === undefined) {
      this.stats.misses++
      return NIL
    }
    if (this.ttlEntries !== 0 && this.isExpired(slot)) {
      this.stats.misses++
      this.remove(slot, 'expired')
      this.throwPendingError()
      return NIL
    }
    // Record the hit for the policy; it is applied in batches (see READ_BUFFER_SIZE).
    const pending = this.pendingHits
    this.hitBuffer[pending] = slot
    this.pendingHits = pending + 1
    if (pending + 1 === READ_BUFFER_SIZE) this.drainHits()
    this.stats.hits++
    return slot
  }

  /** peek() that answers with the live entry's slot (NIL if there is none); see getSlot. */
  peekSlot(key: string): number {
    const slot = this.index.get(key)
    if (slot === undefined) return NIL
    const expiry = this.store.timing[2 * slot]!
    if (expiry !== Number.POSITIVE_INFINITY && expiry <= this.clock.now()) return NIL
    return slot
  }

  /** The value at a slot getSlot() or peekSlot() just found. */
  valueAt(slot: number): V {
    return this.store.values[slot] as V
  }

  /** The record at a slot getSlot() or peekSlot() just found (entryFields.record). */
  recordAt(slot: number): unknown {
    return this.store.records[slot]
  }

  /** The `field`-th number (from 0, below entryFields.numbers) at a slot getSlot() or peekSlot() just found. */
  numberAt(slot: number, field: number): number {
    const store = this.store
    return store.numbers[store.width * slot + field]!
  }

  /**
   * The shortcut stored with `key`'s live entry (see set), if it was given with tag `tagA` or `tagB`,
   * recording the hit like get(); undefined, and nothing recorded, if there is no live entry, it has no
   * shortcut, or its tag is another (the caller then uses get(), and may renewShortcut()).
   * The expiry check and the hit recording are written out here rather than shared with isExpired() and
   * get() through a helper: with a helper call, in-process A/B probes of `await cache.get` ran 2-4% slower.
   */
  getShortcut(key: string, tagA: number, tagB: number): unknown {
    const slot = this.index.get(key)
    if (slot === undefined) return undefined
    const store = this.store
    const shortcut = store.shortcuts[slot]
    if (shortcut === undefined) return undefined
    const timing = store.timing
    const tag = timing[2 * slot + 1]
    if (tag !== tagA && tag !== tagB) return undefined
    const expiry = timing[2 * slot]!
    if (expiry !== Number.POSITIVE_INFINITY) {
      const now = this.hitTime
      if (expiry <= (now >= 0 ? now : this.readHitTime())) return undefined
    }
    const pending = this.pendingHits
    this.hitBuffer[pending] = slot
    this.pendingHits = pending + 1
    if (pending + 1 === READ_BUFFER_SIZE) this.drainHits()
    this.stats.hits++
    return shortcut
  }

  /** Gives `key`'s shortcut (if it has one) the tag `tag`; no policy update, no stats. */
  renewShortcut(key: string, tag: number): void {
    const slot = this.index.get(key)
    if (slot !== undefined) this.store.timing[2 * slot + 1] = tag
  }

  /** Returns the live value for `key` without touching the policy or the stats. */
  peek(key: string): V | undefined {
    const slot = this.peekSlot(key)
    return slot === NIL ? undefined : this.store.values[slot]
  }

  /** Whether `key` holds a live entry; like peek, no policy update and no stats. */
  has(key: string): boolean {
    const slot = this.index.get(key)
    if (slot === undefined) return false
    const expiry = this.store.timing[2 * slot]!
    return expiry === Number.POSITIVE_INFINITY || expiry > this.clock.now()
  }

  /**
   * Stores `value` under `key` for `ttlMs` milliseconds (Infinity: no expiry), replacing any entry.
   * `size` is the entry's weight against maxBytes, default 1 (so maxBytes alone then counts entries);
   * it must be a finite number >= 0. Then evicts by policy until both bounds hold.
   *
   * Returns whether the entry is in the tier afterwards. False when it can never fit (size > maxBytes)
   * or ttlMs <= 0 (already expired): nothing is stored and the previous entry for `key` is removed
   * (without onEvict, like delete). TinyLFU may also reject an entry larger than its admission window
   * at once (it is then evicted with cause 'size' and set returns false).
   * `shortcut`, if given, is what getShortcut() answers for this entry when asked with `shortcutTag`
   * (replacing the value's entry replaces it too: a shortcut never outlives the value it was given with).
   * `record` and the first entryFields.numbers of `numbers` are the entry's fields (see entryFields).
   */
  set(
    key: string,
    value: V,
    ttlMs: number,
    size = 1,
    shortcut?: unknown,
    shortcutTag = 0,
    record?: unknown,
    numbers?: ArrayLike<number>,
  ): boolean {
    if (!(size >= 0 && size !== Number.POSITIVE_INFINITY)) {
      throw new RangeError(`LocalTier.set: size must be a finite number >= 0, got ${size}`)
    }
    if (Number.isNaN(ttlMs)) throw new RangeError('LocalTier.set: ttlMs is NaN')
    if (this.store.width !== 0 && !(numbers !== undefined && numbers.length >= this.store.width)) {
      throw new RangeError(`LocalTier.set: expected ${this.store.width} numbers for the entry`)
    }
    if (size > this.maxBytes || ttlMs <= 0) {
      this.delete(key)
      return false
    }
    if (this.pendingHits !== 0) this.drainHits()
    const store = this.store
    const expiry = ttlMs === Number.POSITIVE_INFINITY ? ttlMs : this.clock.now() + ttlMs
    if (expiry !== Number.POSITIVE_INFINITY) {
      this.ttlEntries++
      if (expiry < this.earliestExpiry) this.earliestExpiry = expiry
    }
    let slot = this.index.get(key)
    if (slot !== undefined) {
      const oldSize = store.sizes[slot]!
      if (store.timing[2 * slot] !== Number.POSITIVE_INFINITY) this.ttlEntries--
      store.values[slot] = value
      store.shortcuts[slot] = shortcut
      store.timing[2 * slot + 1] = shortcutTag
      store.timing[2 * slot] = expiry
      store.sizes[slot] = size
      this.totalBytes += size - oldSize
      this.policy.onUpdate(slot, oldSize)
    } else {
      if (store.full) this.policy.grow(store.grow())
      slot = store.alloc()
      store.keys[slot] = key
      store.values[slot] = value
      store.shortcuts[slot] = shortcut
      store.timing[2 * slot + 1] = shortcutTag
      store.timing[2 * slot] = expiry
      store.sizes[slot] = size
      this.index.set(key, slot)
      this.totalBytes += size
      this.policy.onInsert(slot)
    }
    const width = store.width
    if (width !== 0) {
      const at = width * slot
      for (let i = 0; i < width; i++) store.numbers[at + i] = numbers![i]!
    }
    if (store.keepsRecords) store.records[slot] = record
    this.policy.evict(slot)
    this.throwPendingError()
    return store.keys[slot] === key
  }

  /** Removes `key`; returns whether it was present (expired or not). No onEvict. */
  delete(key: string): boolean {
    const slot = this.index.get(key)
    if (slot === undefined) return false
    this.remove(slot, undefined)
    return true
  }

  /** Removes every entry, without onEvict. Stats are kept. */
  clear(): void {
    this.pendingHits = 0
    this.index.clear()
    this.store.reset()
    this.policy.clear()
    this.totalBytes = 0
    this.ttlEntries = 0
    this.earliestExpiry = Number.POSITIVE_INFINITY
  }

  /**
   * Removes every expired entry now (cause 'expired'); returns how many. Costs nothing until the
   * earliest expiry seen has passed, then one pass over the slots, which also finds the next one.
   */
  sweep(): number {
    if (this.ttlEntries === 0) return 0
    const now = this.clock.now()
    if (now < this.earliestExpiry) return 0
    const store = this.store
    let removed = 0
    let earliest = Number.POSITIVE_INFINITY
    for (let slot = 0, used = store.used; slot < used; slot++) {
      if (store.keys[slot] === undefined) continue
      const expiry = store.timing[2 * slot]!
      if (expiry === Number.POSITIVE_INFINITY) continue
      if (expiry <= now) {
        this.remove(slot, 'expired')
        removed++
      } else if (expiry < earliest) {
        earliest = expiry
      }
    }
    this.earliestExpiry = earliest
    this.throwPendingError()
    return removed
  }

  /** Live (non-expired) keys, in no particular order. */
  *keys(): IterableIterator<string> {
    const now = this.ttlEntries === 0 ? Number.NEGATIVE_INFINITY : this.clock.now()
    const expiryOf = this.store
    for (const [key, slot] of this.index) {
      if (expiryOf.timing[2 * slot]! > now) yield key
    }
  }

  /** Stops the sweep timer. The tier stays usable (expired entries are then removed only by get/sweep). */
  close(): void {
    if (this.timer !== undefined) {
      clearInterval(this.timer)
      this.timer = undefined
    }
  }

  /** For hits: reads the time only for an entry that has a finite expiry (see "Hit-path time"). */
  private isExpired(slot: number): boolean {
    const expiry = this.store.timing[2 * slot]!
    if (expiry === Number.POSITIVE_INFINITY) return false
    const now = this.hitTime
    return expiry <= (now >= 0 ? now : this.readHitTime())
  }

  private readHitTime(): number {
    const now = this.clock.now()
    if (this.reusesHitTime) {
      this.hitTime = now
      if (!this.hitTimeResetScheduled) {
        this.hitTimeResetScheduled = true
        setImmediate(this.resetHitTime)
      }
    }
    return now
  }

  /** Unlinks and frees `slot`; reports it to onEvict when `cause` is given. */
  private remove(slot: number, cause: EvictionCause | undefined): void {
    // Buffered hits may name this slot; apply them before it is freed (and perhaps reused).
    if (this.pendingHits !== 0) this.drainHits()
    const store = this.store
    const key = store.keys[slot]!
    const value = store.values[slot] as V
    this.policy.onRemove(slot)
    this.index.delete(key)
    this.totalBytes -= store.sizes[slot]!
    if (store.timing[2 * slot] !== Number.POSITIVE_INFINITY) this.ttlEntries--
    store.release(slot)
    if (this.index.size === 0) this.totalBytes = 0 // no floating-point residue once empty
    if (cause === undefined) return
    if (cause === 'size') this.stats.evictedBySize++
    else this.stats.expired++
    if (this.onEvict !== undefined) {
      try {
        this.onEvict(key, value, cause)
      } catch (error) {
        if (!this.hasPendingError) {
          this.hasPendingError = true
          this.pendingError = error
        }
      }
    }
  }

  /** Hands the buffered hits to the policy. Called before anything else touches the policy. */
  private drainHits(): void {
    const count = this.pendingHits
    this.pendingHits = 0
    this.hitTime = -1
    this.policy.onHits(this.hitBuffer, count)
  }

  private throwPendingError(): void {
    if (!this.hasPendingError) return
    const error = this.pendingError
    this.hasPendingError = false
    this.pendingError = undefined
    throw error
  }

  private sweepFromTimer(): void {
    try {
      this.sweep()
    } catch (error) {
      // Only onEvict can throw here, and there is no caller to give the error to.
      process.emitWarning(error instanceof Error ? error : String(error), 'CoherentCacheWarning')
    }
  }

  /** Verifies that the Map, the slot arrays and the policy's lists agree. Tests only, O(n). */
  protected checkInvariants(): void {
    if (this.pendingHits !== 0) this.drainHits()
    const store = this.store
    const linked = this.policy.check()
    if (linked.length !== this.index.size) {
      throw new Error(`policy links ${linked.length} slots but the map has ${this.index.size}`)
    }
    const seen = new Set<number>()
    let bytes = 0
    let ttl = 0
    for (const slot of linked) {
      if (seen.has(slot)) throw new Error(`slot ${slot} linked twice`)
      seen.add(slot)
      const key = store.keys[slot]
      if (key === undefined || this.index.get(key) !== slot)
        throw new Error(`slot ${slot} (${key}) not in the map`)
      bytes += store.sizes[slot]!
      if (store.timing[2 * slot] !== Number.POSITIVE_INFINITY) {
        ttl++
        if (store.timing[2 * slot]! < this.earliestExpiry)
          throw new Error(`slot ${slot} expires before earliestExpiry`)
      }
    }
    for (let slot = 0; slot < store.used; slot++) {
      if (store.keys[slot] !== undefined && !seen.has(slot)) throw new Error(`live slot ${slot} not linked`)
    }
    if (Math.abs(bytes - this.totalBytes) > 1e-6)
      throw new Error(`bytes ${this.totalBytes} but sizes sum to ${bytes}`)
    if (ttl !== this.ttlEntries)
      throw new Error(`ttlEntries ${this.ttlEntries} but ${ttl} entries have a TTL`)
    if (this.index.size > this.maxEntries)
      throw new Error(`${this.index.size} entries > maxEntries ${this.maxEntries}`)
    if (this.totalBytes > this.maxBytes)
      throw new Error(`${this.totalBytes} bytes > maxBytes ${this.maxBytes}`)
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return String(value)
  return typeof value
}
