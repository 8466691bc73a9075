/**
 * Stats: the counters every mechanism increments, and the stats() snapshot built from them and from the
 * live state of the tiers, the bus and the outage queue. Pulled, never pushed: nothing is computed until
 * stats() is called, and exporters read the snapshot when they are scraped.
 */
import type { CacheRuntime } from '../runtime.js'
import { LagHistogram, type LagSummary } from './lag.js'

/** Counters kept by one cache (shared by its namespaces). Plain fields: incrementing one is the whole cost. */
export class StatsCounters {
  l1Hits = 0
  l1Misses = 0
  l1DegradedHits = 0
  sets = 0
  deletes = 0
  tagInvalidations = 0
  clears = 0
  refreshes = 0
  /** How long invalidations from other nodes took to arrive (lag.ts). */
  readonly lag = new LagHistogram()
  l2Hits = 0
  l2Misses = 0
  l2Errors = 0
  l2Corrupt = 0
  stampsRestored = 0
  l2ReadsShared = 0
  loads = 0
  loaderErrors = 0
  staleServed = 0
  busPublished = 0
  busReceived = 0
  busDropped = 0
  busUnknown = 0
  busRejected = 0
  busPublishErrors = 0
  busReconnects = 0
  staleFillsRefused = 0
  leasesAcquired = 0
  leaseWaits = 0
  pendingDropped = 0
  strongReads = 0
  strongConfirmed = 0
  strongUnconfirmed = 0
  writeThroughs = 0
  writeThroughsInvalidated = 0
  writeThroughsSuperseded = 0
  wbAccepted = 0
  wbWritten = 0
  wbCoalesced = 0
  wbBatches = 0
  wbRetries = 0
  wbDeadLettered = 0
  wbCorrupt = 0
}

export interface TierStats {
  hits: number
  misses: number
  /** hits / (hits + misses), 0 when there were no reads. */
  hitRate: number
}

export interface CacheStats {
  /** The cache's (root) namespace. */
  namespace: string
  l1: TierStats & {
    size: number
    bytes: number
    evictions: { size: number; expired: number }
    /** Answers from L1 while L2 could not be asked (Redis down, or no L2 while the bus is down). */
    degradedHits: number
  }
  /** Writes made on this node: set (and write-through), deletes, tag invalidations, clears. */
  writes: { sets: number; deletes: number; tagInvalidations: number; clears: number }
  l2: TierStats & {
    errors: number
    /**
     * Entries or stamps L2 answered with that could not be accepted (undecodable, or numbers no correct
     * node writes): dropped and counted, and read as misses; the next write replaces them.
     */
    corrupt: number
    /**
     * Stamps that L2 had lost (restart without persistence, FLUSHALL, eviction) or held garbage for, and
     * that this node bumped again so that no invalidation it knows of is forgotten.
     */
    stampsRestored: number
    /** Reads that joined another caller's L2 read of the same key instead of asking L2 themselves. */
    sharedReads: number
    circuit: 'closed' | 'open' | 'half-open'
    circuitOpened: number
  }
  loads: {
    calls: number
    errors: number
    /** Callers that shared another caller's load in this process. */
    coalesced: number
    /** lock: 'distributed': leases this node won, and waits for another node's load. */
    leasesAcquired: number
    leaseWaits: number
    /** Background refreshes started by refreshAhead or early refresh. */
    refreshes: number
  }
  staleServed: number
  /** Strong reads (consistency: 'strong'). */
  strong: {
    reads: number
    /** Answered from L1 after L2 confirmed the entry's version and stamps (one small round trip). */
    confirmed: number
    /** L2 could not be asked: failed with E_UNCONFIRMED_READ, or answered within the caller's grace. */
    unconfirmed: number
  }
  /** writeThrough() calls whose writer succeeded. */
  writeThrough: {
    writes: number
    /**
     * Invalidated instead of written: another write landed while the writer ran (rule b), L2 could not be
     * asked, or the result could not be cached.
     */
    invalidated: number
    /** Not written because L2 held a write of a higher commit order (rule a). */
    superseded: number
  }
  /** Write-behind (all zeros without the writeBehind option). */
  writeBehind: {
    /** false with an in-process queue (memoryStore, or no L2): what it holds dies with the process. */
    durable: boolean
    /** Entries in the queue (every node's), as of this node's last poll (every flushInterval). */
    depth: number
    /** writeBehind() calls this node accepted (in the queue and the cache). */
    accepted: number
    /** Keys this node's `write` calls wrote (one per key per batch, after coalescing). */
    written: number
    /** Entries folded into a newer value of their key before being written (never written themselves). */
    coalesced: number
    /** `write` calls. */
    batches: number
    /** Keys whose write failed and waits for a retry. */
    retries: number
    /** Writes moved to the dead letters after maxRetries. */
    deadLettered: number
    /** Queue entries no correct node wrote: dropped (guarantee 7). */
    corrupt: number
  }
  /** Fills (from L2 or a loader) not stored in L1 because an invalidation overtook them. */
  staleFillsRefused: number
  bus: {
    published: number
    received: number
    /** Messages that could not be decoded (corrupt). */
    dropped: number
    /** Messages of a kind (or wire version) this node does not know, from newer nodes: ignored. */
    unknown: number
    /**
     * Items of messages with numbers this node cannot accept (not non-negative safe integers, or far ahead
     * of its clock): a key's is still invalidated here, a stamp's is ignored; nothing is observed.
     */
    rejected: number
    publishErrors: number
    reconnects: number
    /** From a write on another node (its version's clock reading) to its invalidation arriving here, in ms. */
    lag: LagSummary
    connected: boolean
    circuit: 'closed' | 'open' | 'half-open'
  }
  /** L2 writes and invalidations waiting to be retried because L2 or the bus was unreachable. */
  pending: number
  /** Pending writes that went through on a retry (or were found superseded and dropped). */
  recovered: number
  /** Pending writes dropped because more than maxPendingWrites were waiting (replaced by one clear()). */
  pendingDropped: number
}

export function hitRate(hits: number, misses: number): number {
  const total = hits + misses
  return total === 0 ? 0 : hits / total
}

/** The stats() snapshot of a cache. */
export function snapshot(rt: CacheRuntime): CacheStats {
  const { counters: c, l1, loads, coherence, remote, invalidations, outage, options } = rt
  return {
    namespace: options.namespace,
    l1: {
      hits: c.l1Hits,
      misses: c.l1Misses,
      hitRate: hitRate(c.l1Hits, c.l1Misses),
      size: l1?.size ?? 0,
      bytes: l1?.bytes ?? 0,
      evictions: { size: l1?.stats.evictedBySize ?? 0, expired: l1?.stats.expired ?? 0 },
      degradedHits: c.l1DegradedHits,
    },
    writes: { sets: c.sets, deletes: c.deletes, tagInvalidations: c.tagInvalidations, clears: c.clears },
    l2: {
      hits: c.l2Hits,
      misses: c.l2Misses,
      hitRate: hitRate(c.l2Hits, c.l2Misses),
      errors: c.l2Errors,
      corrupt: c.l2Corrupt,
      stampsRestored: c.stampsRestored,
      sharedReads: c.l2ReadsShared,
      circuit: remote?.breaker?.state ?? 'closed',
      circuitOpened: remote?.breaker?.opened ?? 0,
    },
    loads: {
      calls: c.loads,
      errors: c.loaderErrors,
      coalesced: loads.flights.coalesced,
      leasesAcquired: c.leasesAcquired,
      leaseWaits: c.leaseWaits,
      refreshes: c.refreshes,
    },
    staleServed: c.staleServed,
    strong: { reads: c.strongReads, confirmed: c.strongConfirmed, unconfirmed: c.strongUnconfirmed },
    writeThrough: {
      writes: c.writeThroughs,
      invalidated: c.writeThroughsInvalidated,
      superseded: c.writeThroughsSuperseded,
    },
    writeBehind: {
      durable: rt.writeBehind?.durable ?? false,
      depth: rt.writeBehind?.depth ?? 0,
      accepted: c.wbAccepted,
      written: c.wbWritten,
      coalesced: c.wbCoalesced,
      batches: c.wbBatches,
      retries: c.wbRetries,
      deadLettered: c.wbDeadLettered,
      corrupt: c.wbCorrupt,
    },
    staleFillsRefused: c.staleFillsRefused,
    bus: {
      published: c.busPublished,
      received: c.busReceived,
      dropped: c.busDropped,
      unknown: c.busUnknown,
      rejected: c.busRejected,
      publishErrors: c.busPublishErrors,
      reconnects: c.busReconnects,
      lag: c.lag.summary(),
      connected: invalidations.connected || (options.bus === undefined && coherence.trusted),
      circuit: invalidations.breaker?.state ?? 'closed',
    },
    pending: outage.size,
    recovered: outage.recovered,
    pendingDropped: c.pendingDropped,
  }
}
