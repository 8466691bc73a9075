import { type Clock, systemClock } from '../clock.js'
import { MAX_VERSION_LEAD } from '../coherence/hlc.js'
import type { RemoteStore, StoredEntry } from './store.js'

interface Slot {
  /** undefined for a tombstone. */
  bytes: Uint8Array | undefined
  version: number
  expiresAt: number
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

  constructor(options: MemoryStoreOptions) {
    this.clock = options.clock ?? systemClock
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

  async getStamps(keys: readonly string[]): Promise<number[]> {
    const now = this.clock.now()
    return keys.map((key) => {
      const stamp = this.stamps.get(key)
      return stamp !== undefined && stamp.expiresAt > now ? stamp.value : 0
    })
  }

  async bumpStamps(keys: readonly string[], ttlMs: number, proposed = 0): Promise<number[]> {
    const now = this.clock.now()
    return keys.map((key) => {
      const stamp = this.stamps.get(key)
      const live = stamp !== undefined && stamp.expiresAt > now
      const stored = live && stamp.value <= proposed + MAX_VERSION_LEAD ? stamp.value : 0
      const value = Math.max(stored + 1, proposed)
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
