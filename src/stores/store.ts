/**
 * The contract between the cache and a shared (L2) store. Stores are dumb: they hold opaque entry bytes,
 * tombstones and small generation counters ("stamps"); all policy (timeouts, circuit breaking,
 * coherence) lives in the cache around them. Every store passes test/support/store-conformance.ts.
 *
 * Versions order the writes of one key. The store, not the writer's clock, has the last word: `set` and
 * `delete` give the key version max(proposed, stored + 1), so versions of a key grow in the order the
 * store applied its writes, whatever the writers' clocks say (a tombstone keeps the version of a deleted
 * key). Only `setIfNewer` (used by loads) can be refused: it must never replace a newer write.
 * Versions are integers below 2^53 (exact as JS numbers and as Lua doubles).
 *
 * Stored numbers are untrusted (a bug, an attack, a bit flip may have put anything there): a stored
 * version or stamp more than MAX_VERSION_LEAD (coherence/hlc.ts: one hour of versions) above the number
 * proposed by the writer is garbage, since no correct writer's clock is that far ahead, and counts as
 * absent; so does a stored stamp that is not a non-negative integer. The next write replaces it, and a
 * poisoned key or stamp heals itself instead of ordering every later write after it.
 */
export interface StoredEntry {
  /** The encoded entry (see coherence/envelope.ts). */
  bytes: Uint8Array
  /** The version the store gave the entry. */
  version: number
}

import type { Bus } from '../bus/bus.js'
import type { QueueLog } from '../write-behind/queue-log.js'

/**
 * An invalidation the store publishes itself, in the same atomic operation as the write it announces and
 * only once that write is applied: the write and its announcement cost one round trip. Given only to a
 * store whose `canAnnounce(bus)` said yes for the cache's bus.
 */
export interface Announcement {
  /** The bus channel. */
  channel: string
  /**
   * The bus message (bus/wire.ts), one item; its last 8 bytes are replaced by the number the write
   * produced (the version a set or delete gave the key, the generation a bump gave the stamp), as a
   * big-endian f64.
   */
  message: Uint8Array
}

/** The stamps a `setStamped` entry is judged by, and where their generations go in its bytes. */
export interface EntryStamps {
  /** The stamps' store keys. */
  keys: readonly string[]
  /**
   * What the writer knows of each (its own bumps included). A stored generation below it was lost (a
   * restart without persistence, eviction, FLUSHALL) and is raised back to it; garbage is raised to it, or
   * to the write's proposed version when it is 0 (RemoteStore.bumpStamps with `raise`).
   */
  known: readonly number[]
  /** The byte offset in the entry bytes of each stamp's generation: a big-endian f64 holding `known`. */
  offsets: readonly number[]
  /** How long a raised stamp lives at least. */
  ttlMs: number
}

/** What `setStamped` did. */
export interface StampedWrite {
  /** The version the entry got: max(proposed, stored + 1). */
  version: number
  /** The generation recorded for each stamp: max(stored, known) (stored garbage: see EntryStamps.known). */
  gens: number[]
  /** How many stamps were raised because the store had lost them or held garbage. */
  restored: number
}

/** What `head` reports about a key without reading its value. */
export interface EntryHead {
  /** The version of the entry or tombstone under the key; undefined when there is neither, or it is unreadable. */
  version: number | undefined
  /** The key holds a tombstone (a deleted key that keeps its version). */
  deleted: boolean
  /** The generation counters asked for, as getStamps reads them, in the same round trip. */
  stamps: number[]
}

/**
 * Which kind of order an ordered write carries: `commit`, the database's commit order of a write-through
 * (a row version, a sequence); `queue`, the position of a write-behind in its durable queue. Orders of
 * different domains are never compared.
 */
export type OrderDomain = 'commit' | 'queue'

/** When `setIf` writes (see RemoteStore.setIf). */
export interface WriteCondition {
  /** This write's place among the writes of the key in `domain`: an integer from 0 to 2^64 - 1. */
  order?: { domain: OrderDomain; value: bigint }
  /**
   * What the writer saw under the key when it began (head's version of the entry or tombstone, null for
   * nothing). Given, the write happens only if the key still holds exactly that; otherwise the key is
   * deleted instead. Undefined: the write happens whatever is stored (as `set` does).
   */
  expected?: number | null
  /** The tombstone's lifetime, when the write turns into a delete. */
  tombstoneTtlMs: number
}

/** What `setIf` did, and the version the key has now. */
export interface ConditionalWrite {
  /**
   * `written`: the entry was stored, with version max(proposed, stored + 1). `deleted`: the key was
   * replaced by a tombstone with that version instead (expected did not match). `superseded`: nothing
   * was written, because the key holds an entry of the same order domain with an order at least as
   * high; `version` is that entry's.
   */
  outcome: 'written' | 'deleted' | 'superseded'
  version: number
}

export interface RemoteStore {
  /** Human-readable name for stats and errors, e.g. 'redis', 'redis-cluster', 'memory'. */
  readonly name: string
  /**
   * The store applies timeouts and circuit breaking per member itself (shardedStore: one breaker per
   * member, so that one failing member does not cut off the others). The cache then gives it no circuit
   * breaker of its own; its calls are still bounded by `l2Timeout`.
   */
  readonly guardsMembers?: boolean
  /** The live entry under `key`; undefined if there is none, it expired, or it is a tombstone. */
  get(key: string): Promise<StoredEntry | undefined>
  /**
   * Stores `bytes` for `ttlMs` with version max(version, stored + 1); resolves to that version.
   * `deadline` (epoch ms): the writer stops waiting for the write then, and retries it later with
   * setIfNewer, so the store must not apply a copy that reaches it after the deadline (a request held up
   * by the network would otherwise land after newer writes and win over them). It is judged by the
   * store's clock where it has one (Redis TIME), so clock skew between the store and the writer widens or
   * narrows the window by the skew. A store that cannot tell applies it.
   */
  set(key: string, bytes: Uint8Array, version: number, ttlMs: number, deadline?: number): Promise<number>
  /**
   * A set that reads the entry's stamps in the same atomic operation (optional: without it the cache asks
   * getStamps first, a second round trip): each stamp's generation becomes max(stored, known), a stamp
   * the store lost or holds garbage for is raised (see EntryStamps), the generations are written into
   * `bytes` at their offsets, and the entry is stored as `set` stores it (version, TTL, deadline). With
   * `announce`, the store then publishes it with the version (see Announcement).
   */
  setStamped?(
    key: string,
    bytes: Uint8Array,
    version: number,
    ttlMs: number,
    stamps: EntryStamps,
    deadline?: number,
    announce?: Announcement,
  ): Promise<StampedWrite>
  /**
   * Whether this store can publish `bus`'s messages itself (Announcement): it reaches the server the bus
   * subscribes on, and can publish there atomically with its writes (optional: no).
   */
  canAnnounce?(bus: Bus): boolean
  /**
   * Stores `bytes` with `version` only if what is stored (entry or tombstone) is older. Resolves to
   * undefined when written, or to the stored newer version when refused.
   */
  setIfNewer(key: string, bytes: Uint8Array, version: number, ttlMs: number): Promise<number | undefined>
  /**
   * Replaces the entry with a tombstone of version max(version, stored + 1), kept for `tombstoneTtlMs`
   * (so that a later write of the key still gets a larger version); resolves to that version. `deadline`:
   * as for set(). `announce`: published with that version once the tombstone is written (Announcement).
   */
  delete(
    key: string,
    version: number,
    tombstoneTtlMs: number,
    deadline?: number,
    announce?: Announcement,
  ): Promise<number>
  /**
   * Replaces what is stored with a tombstone of `version`, kept for `tombstoneTtlMs`, only if what is
   * stored (entry or tombstone) is older. Resolves to undefined when written, or to the stored newer
   * version when refused. The retry of a delete that failed uses it: a write made since, by any node,
   * must survive it, whatever happens between reading the key and writing the tombstone.
   */
  deleteIfNewer(key: string, version: number, tombstoneTtlMs: number): Promise<number | undefined>
  /**
   * Reads generation counters (tag and namespace stamps); a missing stamp reads as 0, one that is not a
   * non-negative integer (garbage) as NaN, which the cache repairs with a bump.
   */
  getStamps(keys: readonly string[]): Promise<number[]>
  /**
   * Raises each counter to max(stored + 1, `proposed`) and keeps it for at least `ttlMs`; resolves to the
   * new values. The cache proposes a version-clock reading, so a stamp that L2 lost (a restart without
   * persistence, eviction) comes back above every generation handed out before. With `raise`, each counter
   * becomes max(stored, `proposed`) instead: idempotent, for a retried bump whose first attempt may have
   * landed (its reply lost) and for restoring a stamp L2 lost, neither of which may invalidate what was
   * written since (coherence.ts, point 3). `announce`: one per key, each published with its key's new
   * value once it is written (Announcement). @default proposed 0, raise false
   */
  bumpStamps(
    keys: readonly string[],
    ttlMs: number,
    proposed?: number,
    raise?: boolean,
    announce?: readonly Announcement[],
  ): Promise<number[]>
  /**
   * The version of the entry or tombstone under `key` (not its value) and the generations of
   * `stampKeys`, in one round trip: what a strong read checks its L1 entry against, and what a
   * write-through notes before its writer runs (optional: the cache falls back to `get` and `getStamps`,
   * which cannot see tombstones).
   */
  head?(key: string, stampKeys: readonly string[]): Promise<EntryHead>
  /**
   * An ordered or conditional write, atomic in the store (optional: without it, write-through invalidates
   * instead of writing, and write-behind's cache writes are plain sets). Decided in this order:
   * 1. with `order`, if the key holds an entry written with an order of the same domain: written if that
   *    order is lower than this write's, else `superseded` (nothing written);
   * 2. else with `expected` given: written if the key still holds what it names (the same version of an
   *    entry or tombstone, or nothing for null), else `deleted`: a tombstone of version
   *    max(proposed, stored + 1) for `tombstoneTtlMs`;
   * 3. else written.
   * A written entry has version max(proposed, stored + 1) and keeps `order` (if given) for later ordered
   * writes; set, setIfNewer and delete drop it. Garbage (store.ts, above) counts as nothing stored.
   */
  setIf?(
    key: string,
    bytes: Uint8Array,
    version: number,
    ttlMs: number,
    condition: WriteCondition,
  ): Promise<ConditionalWrite>
  /**
   * The write-behind queue (optional: write-behind needs a store that has one). redisStore's is on Redis
   * Streams (durable); memoryStore's lives in the process (not durable).
   */
  readonly queue?: QueueLog
  /**
   * Leases for `lock: 'distributed'` (optional: a store without them cannot be used with it).
   * acquireLease sets `key` to `token` for `ttlMs` only if no lease is held (SET NX PX);
   * releaseLease deletes it only if it still holds `token`, so a holder whose lease expired and was
   * taken over cannot release the new holder's lease.
   */
  acquireLease?(key: string, token: string, ttlMs: number): Promise<boolean>
  releaseLease?(key: string, token: string): Promise<boolean>
  /**
   * Reconnect notifications (optional: a store without a connection to lose, like memoryStore, has none).
   * Calls `listener` each time the store's connection becomes ready again after it was lost, and when a
   * first connection succeeds only after failed attempts (never for one that succeeds at once), and
   * returns a function that unsubscribes it. It is a cue, not a promise: the
   * cache may probe the store at once instead of waiting for its circuit breaker's next probe, but the
   * store may still refuse the first commands (e.g. a restarted Cluster master that has not rejoined yet),
   * and on a Cluster "the connection" is several node connections: it fires when any of them is back.
   * Listeners are called synchronously from the client's event handling and must not throw; `close()`
   * unsubscribes them all.
   */
  onReconnect?(listener: () => void): () => void
  /** Releases what the store opened itself (a client passed in by the application is left open). */
  close(): Promise<void>
}
