import type { SlotStore } from '../slots.js'

/** What a policy needs from the tier that owns it. */
export interface EvictionHost {
  /** True while the tier holds more than maxEntries entries or more than maxBytes bytes. */
  overBounds(): boolean
  /** Removes `slot` as a size eviction: stats, onEvict(…, 'size'), then policy.onRemove(slot). */
  evictSlot(slot: number): void
}

/** Everything a policy is built from. */
export interface PolicyContext {
  store: SlotStore<unknown>
  host: EvictionHost
  /** Infinity when not bounded by entries. */
  maxEntries: number
  /** Infinity when not bounded by bytes. */
  maxBytes: number
  /** Uniform in [0, 1). */
  random: () => number
}

/**
 * An eviction policy orders the tier's slots on lists threaded through the store's prev/next arrays.
 * The tier owns the slots (alloc, release, key/value/size/expiry); the policy only links them.
 * onHits runs on the hit path (a batch per READ_BUFFER_SIZE hits) and must not allocate.
 */
export interface Policy {
  /** A new entry was stored at `slot` (key, value and size are already set). */
  onInsert(slot: number): void
  /**
   * Live entries were read with get(): slots[0..count-1], oldest first (a slot may repeat). The tier
   * buffers hits and hands them over before any other policy call, so the outcome is the same as if
   * each hit had been applied at once (the buffer never holds a slot that was freed since).
   */
  onHits(slots: Int32Array, count: number): void
  /** The entry at `slot` got a new value; its size changed from `oldSize` to store.sizes[slot]. */
  onUpdate(slot: number, oldSize: number): void
  /** The entry at `slot` is being removed (delete, expiry or eviction); unlink it. */
  onRemove(slot: number): void
  /**
   * Called after every insert or update: rebalances internal segments and evicts (through
   * host.evictSlot) until host.overBounds() is false. `written` is the slot just written; policies that
   * evict-before-insert (lru, lfu, fifo) never pick it unless it is the only entry left.
   */
  evict(written: number): void
  /** The store grew to `capacity` slots: grow any per-slot arrays. */
  grow(capacity: number): void
  /** Forget every entry (the store is being reset). */
  clear(): void
  /** Verifies the policy's structures against the store and returns the linked slots. Tests only, O(n). */
  check(): number[]
}
