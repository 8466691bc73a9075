import { type Clock, systemClock } from '../clock.js'
import { MAX_VERSION_LEAD } from '../coherence/hlc.js'
import { MemoryQueueLog } from './memory-queue.js'
import type {
  ConditionalWrite,
  EntryHead,
  EntryStamps,
  OrderDomain,
  RemoteStore,
  StampedWrite,
  StoredEntry,
  WriteCondition,
} from './store.js'

interface Slot {
  /** undefined for a tombstone. */
  bytes: Uint8Array | undefined
  version: number
  expiresAt: number
  /** The order an ordered write (setIf) gave the entry. */
  order?: { domain: OrderDomain; value: bigint }
}

export interface MemoryStoreOptions {
  /** @default systemClock */
  clock?: Clock
}

/**
 * The embedded L2: a map that several cache instances in one process can share, with the same
 * ordering rules as Redis. It is a product feature for single-process use and for tests of the facade,
 * not a stand-in for Redis behaviour.
 */
class MemoryStore implements RemoteStore {
  readonly name = 'memory'
  private readonly entries = new Map<string, Slot>()
  private readonly stamps = new Map<string, { value: number; expiresAt: number }>()
  private readonly leases = new Map<string, { token: string; expiresAt: number }>()
  private readonly clock: Clock
  /** The in-process write-behind queue of every cache that shares this store (not durable). */
  readonly queue: MemoryQueueLog

  constructor(options: MemoryStoreOptions) {
    this.clock = options.clock ?? systemClock
    this.queue = new MemoryQueueLog(this.clock)
  }

  async get(key: string): Promise<StoredEntry | undefined> {
    const slot = this.live(key)
    return slot?.bytes ? { bytes: slot.bytes, version: slot.version } : undefined
  }

  async set(
    key: string,
    bytes: Uint8Array,
    version: number,
    ttlMs: number,
    deadline?: number,
  ): Promise<number> {
    this.checkDeadline(deadline)
    const stored = this.believable(key, version)
    const given = stored && stored.version >= version ? stored.version + 1 : version
    this.entries.set(key, { bytes, version: given, expiresAt: this.clock.now() + ttlMs })
    return given
  }

  async setStamped(
    key: string,
    bytes: Uint8Array,
    version: number,
    ttlMs: number,
    stamps: EntryStamps,
    deadline?: number,
  ): Promise<StampedWrite> {
    this.checkDeadline(deadline)
    const now = this.clock.now()
    const gens: number[] = []
    let restored = 0
    let written: Buffer | undefined
    for (let i = 0; i < stamps.keys.length; i++) {
      const stampKey = stamps.keys[i]!
      const known = stamps.known[i]!
      const stamp = this.stamps.get(stampKey)
      const live = stamp !== undefined && stamp.expiresAt > now
      // A stamp far above the proposal is garbage (store.ts): raised to what the writer knows, or to the
      // proposal when that is 0. An expired stamp is one this store lost: raised to what the writer knows.
      const garbage = live && stamp.value > version + MAX_VERSION_LEAD
      const stored = live && !garbage ? stamp.value : 0
      const gen = garbage ? (known > 0 ? known : version) : Math.max(stored, known)
      if (garbage || gen !== stored) {
        restored++
        const expiresAt = Math.max(live ? stamp.expiresAt : 0, now + stamps.ttlMs)
        this.stamps.set(stampKey, { value: gen, expiresAt })
      }
      if (gen !== known) {
        // A copy: the caller's bytes are not ours to change.
        written ??= Buffer.from(bytes)
        written.writeDoubleBE(gen, stamps.offsets[i]!)
      }
      gens.push(gen)
    }
    return { version: await this.set(key, written ?? bytes, version, ttlMs), gens, restored }
  }

  async setIfNewer(
    key: string,
    bytes: Uint8Array,
    version: number,
    ttlMs: number,
  ): Promise<number | undefined> {
    const stored = this.believable(key, version)
    if (stored && stored.version >= version) return stored.version
    this.entries.set(key, { bytes, version, expiresAt: this.clock.now() + ttlMs })
    return undefined
  }

  async delete(key: string, version: number, tombstoneTtlMs: number, deadline?: number): Promise<number> {
    this.checkDeadline(deadline)
    const stored = this.believable(key, version)
    const given = stored && stored.version >= version ? stored.version + 1 : version
    this.entries.set(key, { bytes: undefined, version: given, expiresAt: this.clock.now() + tombstoneTtlMs })
    return given
  }

  async deleteIfNewer(key: string, version: number, tombstoneTtlMs: number): Promise<number | undefined> {
    const stored = this.believable(key, version)
    if (stored && stored.version >= version) return stored.version
    this.entries.set(key, { bytes: undefined, version, expiresAt: this.clock.now() + tombstoneTtlMs })
    return undefined
  }

  async head(key: string, stampKeys: readonly string[]): Promise<EntryHead> {
    const slot = this.live(key)
    return {
      version: slot?.version,
      deleted: slot !== undefined && slot.bytes === undefined,
      stamps: await this.getStamps(stampKeys),
    }
  }

  async setIf(
    key: string,
    bytes: Uint8Array,
    version: number,
    ttlMs: number,
    condition: WriteCondition,
  ): Promise<ConditionalWrite> {
    const { order, expected } = condition
    if (order !== undefined && !(order.value >= 0n && order.value < 1n << 64n)) {
      throw new RangeError(`order must be an integer from 0 to 2^64 - 1, got ${String(order.value)}`)
    }
    const stored = this.believable(key, version)
    const given = stored && stored.version >= version ? stored.version + 1 : version
    const now = this.clock.now()
    if (order !== undefined && stored?.order?.domain === order.domain && stored.bytes !== undefined) {
      if (stored.order.value >= order.value) return { outcome: 'superseded', version: stored.version }
    } else if (expected !== undefined && (stored?.version ?? null) !== expected) {
      this.entries.set(key, { bytes: undefined, version: given, expiresAt: now + condition.tombstoneTtlMs })
      return { outcome: 'deleted', version: given }
    }
    this.entries.set(key, { bytes, version: given, expiresAt: now + ttlMs, ...(order && { order }) })
    return { outcome: 'written', version: given }
  }

  async getStamps(keys: readonly string[]): Promise<number[]> {
    const now = this.clock.now()
    return keys.map((key) => {
      const stamp = this.stamps.get(key)
      return stamp !== undefined && stamp.expiresAt > now ? stamp.value : 0
    })
  }

  async bumpStamps(keys: readonly string[], ttlMs: number, proposed = 0, raise = false): Promise<number[]> {
    const now = this.clock.now()
    return keys.map((key) => {
      const stamp = this.stamps.get(key)
      const live = stamp !== undefined && stamp.expiresAt > now
      const stored = live && stamp.value <= proposed + MAX_VERSION_LEAD ? stamp.value : 0
      const value = Math.max(raise ? stored : stored + 1, proposed)
      this.stamps.set(key, { value, expiresAt: Math.max(live ? stamp.expiresAt : 0, now + ttlMs) })
      return value
    })
  }

  async acquireLease(key: string, token: string, ttlMs: number): Promise<boolean> {
    const now = this.clock.now()
    const lease = this.leases.get(key)
    if (lease !== undefined && lease.expiresAt > now) return false
    this.leases.set(key, { token, expiresAt: now + ttlMs })
    return true
  }

  async releaseLease(key: string, token: string): Promise<boolean> {
    const lease = this.leases.get(key)
    if (lease === undefined || lease.token !== token || lease.expiresAt <= this.clock.now()) return false
    this.leases.delete(key)
    return true
  }

  async close(): Promise<void> {}

  /** A write that arrives after its writer's deadline must not apply (store.ts). */
  private checkDeadline(deadline: number | undefined): void {
    if (deadline !== undefined && this.clock.now() > deadline)
      throw new Error('the writer gave up on this write')
  }

  /** The live slot of `key`, unless its version is garbage next to `proposed` (see store.ts). */
  private believable(key: string, proposed: number): Slot | undefined {
    const slot = this.live(key)
    return slot !== undefined && slot.version <= proposed + MAX_VERSION_LEAD ? slot : undefined
  }

  private live(key: string): Slot | undefined {
    const slot = this.entries.get(key)
    if (slot === undefined) return undefined
    if (slot.expiresAt <= this.clock.now()) {
      this.entries.delete(key)
      return undefined
    }
    return slot
  }
}

/** An in-process L2. Pass the same instance to several caches to share it between them. */
export function memoryStore(options: MemoryStoreOptions = {}): RemoteStore {
  return new MemoryStore(options)
}
