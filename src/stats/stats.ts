/** Counters kept by one cache (shared by its namespaces). Plain fields: incrementing one is the whole cost. */
export class StatsCounters {
  l1Hits = 0
  l1Misses = 0
  l2Hits = 0
  l2Misses = 0
  l2Errors = 0
  l2ReadsShared = 0
  loads = 0
  loaderErrors = 0
  staleServed = 0
  busPublished = 0
  busReceived = 0
  busDropped = 0
  busPublishErrors = 0
  busReconnects = 0
  staleFillsRefused = 0
  leasesAcquired = 0
  leaseWaits = 0
  pendingDropped = 0
}

export interface TierStats {
  hits: number
  misses: number
  /** hits / (hits + misses), 0 when there were no reads. */
  hitRate: number
}

export interface CacheStats {
  l1: TierStats & { size: number; bytes: number; evictions: { size: number; expired: number } }
  l2: TierStats & {
    errors: number
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
  }
  staleServed: number
  /** Fills (from L2 or a loader) not stored in L1 because an invalidation overtook them. */
  staleFillsRefused: number
  bus: {
    published: number
    received: number
    /** Messages that could not be decoded (e.g. from a newer wire version). */
    dropped: number
    publishErrors: number
    reconnects: number
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
