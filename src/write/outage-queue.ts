/**
 * The outage queue: what did not reach L2 or the bus because Redis was unreachable, retried until it
 * gets through (guarantee 5: failed invalidations are retried when Redis returns). Not to be confused
 * with the write-behind queue, which holds database writes.
 *
 * Three kinds of work wait here, each under an id (keys.ts) so that for each key, or set of stamps,
 * only the newest pending work is kept:
 * - an L2 write or delete that failed: this node keeps it in the unsent overlay (unsent-writes.ts) so
 *   that its own reads see it (read-your-writes), and redoes it later unless L2 by then shows a newer
 *   write (a write that L2 shows was superseded is dropped, not re-announced);
 * - a stamp bump (invalidateTags, clear) that failed: in effect here at once, redone in L2 later;
 * - an announcement: L2 has the write but the bus did not take its invalidation.
 * `announceKeys` / `announceStamps` are the one "publish, or else queue the announcement" of the cache.
 *
 * Retries run every RETRY_INTERVAL_MS while anything waits, when the L2 breaker closes, when the bus
 * reconnects, and once at close(). A retry redoes the L2 part first and then publishes what it returned.
 *
 * Bounded: past `limit` pending items (a long outage), all of them are replaced by one clear() of the
 * whole cache (a root stamp bump, in effect here at once and on every node once Redis is back), so that
 * memory stays bounded and no node serves what they replaced; their values are dropped (counted).
 */
import type { Invalidations } from '../bus/invalidations.js'
import { type InvalidationMessage, MAX_ITEMS } from '../bus/wire.js'
import type { Coherence } from '../coherence/coherence.js'
import type { Lifetimes } from '../coherence/lifetimes.js'
import type { Stamps } from '../coherence/stamps.js'
import type { L1Entry } from '../entry/entry.js'
import type { L1Writer } from '../entry/l1-writer.js'
import { type KeyNames, keyWorkId, ROOT_STAMP, stampWorkId } from '../keys.js'
import type { RemoteTier } from '../remote/remote-tier.js'
import type { StatsCounters } from '../stats/stats.js'
import type { UnsentWrite, UnsentWrites } from './unsent-writes.js'

const RETRY_INTERVAL_MS = 1_000 // how often queued work is retried while L2 or the bus is down

/** Queued work: `redo` redoes the L2 part and resolves to the invalidation to publish, or undefined. */
interface QueuedWork {
  /** Newer work of the same id replaces older work. */
  rank: number
  redo: () => Promise<InvalidationMessage | undefined>
}

export interface OutageQueueParts {
  remote: RemoteTier | undefined
  keys: KeyNames
  coherence: Coherence
  stamps: Stamps
  unsent: UnsentWrites
  l1: L1Writer
  lifetimes: Lifetimes
  counters: StatsCounters
  invalidations: Invalidations
  /** How many items may wait; one more replaces them all by one clear(). */
  limit: number
  /** @default RETRY_INTERVAL_MS */
  intervalMs?: number
}

export class OutageQueue {
  /** Queued work that eventually went through (or was found superseded). */
  recovered = 0
  private readonly work = new Map<string, QueuedWork>()
  private readonly intervalMs: number
  private timer: NodeJS.Timeout | undefined
  private running = false
  private stopped = false

  constructor(private readonly parts: OutageQueueParts) {
    this.intervalMs = parts.intervalMs ?? RETRY_INTERVAL_MS
  }

  get size(): number {
    return this.work.size
  }

  // ---- announce, or queue the announcement --------------------------------------------------------

  /**
   * Publishes that `rels` were written with `versions`, in messages of at most MAX_ITEMS keys; what the
   * bus does not take is queued per key.
   */
  async announceKeys(rels: readonly string[], versions: readonly number[]): Promise<void> {
    if (rels.length > MAX_ITEMS) {
      const parts: Promise<void>[] = []
      for (let at = 0; at < rels.length; at += MAX_ITEMS) {
        parts.push(this.announceKeys(rels.slice(at, at + MAX_ITEMS), versions.slice(at, at + MAX_ITEMS)))
      }
      await Promise.all(parts)
      return
    }
    const { invalidations } = this.parts
    if (await invalidations.publish(invalidations.keys(rels, versions))) return
    for (let i = 0; i < rels.length; i++) {
      const rel = rels[i]!
      const version = versions[i]!
      this.queueAnnouncement(
        keyWorkId(rel),
        version,
        invalidations.keys([rel], [version]),
        this.notSuperseded(rel, version),
      )
    }
  }

  /** Publishes that `stamps` rose to `gens`; queued (with `rank`) if the bus does not take it. */
  async announceStamps(stamps: readonly string[], gens: readonly number[], rank: number): Promise<void> {
    const { invalidations } = this.parts
    const message = invalidations.stamps(stamps, gens)
    if (!(await invalidations.publish(message))) this.queueAnnouncement(stampWorkId(stamps), rank, message)
  }

  // ---- L2 work that failed ----------------------------------------------------------------------------

  /**
   * The L2 write of `entry` (encoded as `bytes`) failed: this node keeps it (read-your-writes) and redoes
   * it later, unless L2 holds something newer by then. The generations it recorded stay as they were:
   * what this node knew when it wrote (including its own bumps that L2 has not got yet). An invalidation
   * made elsewhere that this node had not heard of makes it look invalid once it lands: a miss, never a
   * stale value (coherence.ts, point 3).
   */
  queueSet(rel: string, entry: L1Entry, bytes: Uint8Array, l2Ttl: number): void {
    const { remote, keys, invalidations } = this.parts
    const l2Key = keys.entry(rel)
    const proposed = entry.version
    const own = this.parts.unsent.keep(rel, proposed, entry)
    this.add(keyWorkId(rel), {
      rank: proposed,
      redo: async () => {
        const newer = await remote!.setIfNewer(l2Key, bytes, proposed, l2Ttl)
        if (newer === undefined) {
          this.sent(rel, own, proposed)
          return invalidations.keys([rel], [proposed])
        }
        // Refused: either a newer write, or this very write, which reached L2 although its reply did
        // not reach us (L2 may have given it a higher version than proposed). Ours is announced.
        const stored = await remote!.get(l2Key)
        const landed = stored !== undefined && stored.version === newer && sameBytes(stored.bytes, bytes)
        this.sent(rel, own, newer)
        return landed ? invalidations.keys([rel], [newer]) : undefined
      },
    })
  }

  /**
   * The L2 delete of `rel` failed: reads here see it until it reaches L2; redone unless superseded. The
   * redo is one conditional write (deleteIfNewer): a write that reached L2 since, from any node, survives
   * it, even one that lands between a read of the key and the tombstone.
   */
  queueDelete(rel: string, proposed: number): void {
    const { remote, keys, lifetimes, invalidations } = this.parts
    const l2Key = keys.entry(rel)
    const own = this.parts.unsent.keep(rel, proposed, undefined)
    this.add(keyWorkId(rel), {
      rank: proposed,
      redo: async () => {
        const newer = await remote!.deleteIfNewer(l2Key, proposed, lifetimes.tombstoneTtl())
        if (newer !== undefined) {
          this.sent(rel, own, newer)
          return undefined
        }
        this.sent(rel, own, proposed)
        return invalidations.keys([rel], [proposed])
      },
    })
  }

  /**
   * A stamp bump L2 could not take: it takes effect here at once (and stays in effect until L2 has it,
   * even if the stamp table is forgotten meanwhile); L2 and the other nodes get it on retry. `gen` is the
   * generation the bump proposed (a version-clock reading, above what this node knows): assumed here
   * meanwhile, and the retry raises the stamp to it, never past what L2 holds, so that entries this node
   * writes in the meantime, which record it (or a higher generation another node bumped to meanwhile),
   * stay valid once L2 has it (guarantee 1).
   */
  queueStampBump(stamps: readonly string[], gen: number): void {
    const { remote, keys, unsent, lifetimes, invalidations } = this.parts
    const assumed = stamps.map(() => gen)
    this.parts.stamps.raise(stamps, assumed)
    for (let i = 0; i < stamps.length; i++) unsent.stamps.set(stamps[i]!, assumed[i]!)
    const l2Keys = stamps.map((stamp) => keys.stamp(stamp))
    this.add(stampWorkId(stamps), {
      rank: gen,
      redo: async () => {
        // Raised to `gen`, not bumped past what L2 holds: the first attempt may have landed (a lost reply),
        // and entries written since under a generation at or above `gen` were written after this bump
        // (this node's own, which recorded `gen`, and any written after a later bump by another node).
        const bumped = await remote!.bumpStamps(l2Keys, lifetimes.stampTtl(), gen, undefined, true)
        this.parts.stamps.raise(stamps, bumped)
        for (const stamp of stamps) unsent.stamps.delete(stamp)
        return invalidations.stamps(stamps, bumped)
      },
    })
  }

  // ---- retrying -------------------------------------------------------------------------------------

  async retry(): Promise<void> {
    if (this.running || this.work.size === 0) return
    this.running = true
    const { invalidations } = this.parts
    try {
      for (const [id, work] of [...this.work]) {
        if (this.work.get(id) !== work) continue
        let message: InvalidationMessage | undefined
        try {
          message = await work.redo()
        } catch {
          continue // still unreachable; next round
        }
        if (message !== undefined && !(await invalidations.publish(message))) {
          // L2 is done; only the announcement is left to make.
          if (this.work.get(id) === work) this.work.set(id, { rank: work.rank, redo: async () => message })
          continue
        }
        if (this.work.get(id) === work) this.work.delete(id)
        this.recovered++
      }
    } finally {
      this.running = false
      if (this.work.size === 0) this.stopTimer()
    }
  }

  /** No more timed retries (close). */
  stop(): void {
    this.stopped = true
    this.stopTimer()
  }

  // ---- internals ------------------------------------------------------------------------------------

  /**
   * The retry of `own` reached L2, or found a newer write there: L2 now holds `version` of `rel`, so reads
   * no longer need the record. Older L1 entries, and fills of older versions still in flight (they may
   * have read L2 before the retry landed), must not answer any more.
   */
  private sent(rel: string, own: UnsentWrite, version: number): void {
    const { coherence } = this.parts
    coherence.versions.observe(version)
    coherence.markKey(rel, version)
    this.parts.l1.dropOlder(rel, version)
    this.parts.unsent.forget(rel, own)
  }

  private queueAnnouncement(
    id: string,
    rank: number,
    message: InvalidationMessage,
    stillCurrent?: () => Promise<boolean>,
  ): void {
    this.add(id, {
      rank,
      redo: async () => (stillCurrent === undefined || (await stillCurrent()) ? message : undefined),
    })
  }

  /** Before re-announcing a write: is L2 still holding it (nothing newer)? */
  private notSuperseded(rel: string, version: number): (() => Promise<boolean>) | undefined {
    const { remote, keys } = this.parts
    if (remote === undefined) return undefined
    return async () => {
      const stored = await remote.get(keys.entry(rel))
      return stored === undefined || stored.version <= version
    }
  }

  private add(id: string, work: QueuedWork): void {
    const existing = this.work.get(id)
    if (existing !== undefined && existing.rank > work.rank) return
    this.work.set(id, work)
    if (this.timer === undefined && !this.stopped) {
      this.timer = setInterval(() => void this.retry(), this.intervalMs)
      this.timer.unref()
    }
    if (this.work.size > this.parts.limit) this.overflow()
  }

  /**
   * More work waits than `limit` allows: keeping each write would let their values fill memory. They are
   * all replaced by one clear() of the whole cache, in effect here at once and on every node once Redis
   * is back, so that no node serves what they replaced; their values are dropped (reads miss, and load
   * again). Stamp bumps that were waiting go too: the clear covers them.
   */
  private overflow(): void {
    const { coherence, unsent, l1, remote, counters, invalidations } = this.parts
    counters.pendingDropped += this.work.size
    this.work.clear()
    unsent.clear()
    l1.clear()
    coherence.markAll()
    const rank = coherence.versions.next()
    if (remote !== undefined) {
      this.queueStampBump([ROOT_STAMP], rank)
      return
    }
    // No L2: only announcements were waiting (the bus is down); announce the clear instead.
    const gens = [coherence.versions.next()]
    this.parts.stamps.raise([ROOT_STAMP], gens)
    this.queueAnnouncement(stampWorkId([ROOT_STAMP]), rank, invalidations.stamps([ROOT_STAMP], gens))
  }

  private stopTimer(): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b)
}
