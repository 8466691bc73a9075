import type { Clock } from '../clock.js'
import type { EntryFields } from './slots.js'

/** L1 eviction policy. `tinylfu` (W-TinyLFU) is the default. */
export type EvictionPolicy = 'lru' | 'lfu' | 'fifo' | 'tinylfu'

/** Why an entry left the local tier on its own (explicit delete/clear is not an eviction). */
export type EvictionCause = 'size' | 'expired'

export interface LocalTierOptions<V> {
  /** Upper bound on the number of entries. At least one of maxEntries / maxBytes is required. */
  maxEntries?: number
  /** Upper bound on the sum of entry sizes (as passed to set). */
  maxBytes?: number
  /** @default 'tinylfu' */
  policy?: EvictionPolicy
  /** @default systemClock */
  clock?: Clock
  /** How often the periodic sweep removes expired entries; 0 disables the timer. The timer is unref'd. @default 1000 */
  sweepIntervalMs?: number
  /**
   * Random source, uniform in [0, 1): seeds TinyLFU's key hashing and drives its rare random admission
   * (the hash-flooding defence). Inject a seeded one for reproducible tests and simulations.
   * @default Math.random
   */
  random?: () => number
  /**
   * What each entry holds besides its value, without an object per entry: `numbers` numbers (kept in a
   * Float64Array) and, with `record`, one reference that many entries may share. Set them with set()'s
   * last two arguments; read them with numberAt() and recordAt() at the slot getSlot()/peekSlot() found.
   * @default { numbers: 0, record: false }
   */
  entryFields?: EntryFields
  /** Called for every entry evicted by size or removed because it expired. */
  onEvict?: (key: string, value: V, cause: EvictionCause) => void
}

export interface LocalTierStats {
  hits: number
  misses: number
  /** Entries evicted to respect maxEntries / maxBytes. */
  evictedBySize: number
  /** Entries removed because their TTL passed (lazily on read, or by the sweep). */
  expired: number
}
