/**
 * The runtime of one cache and all its namespaces: it builds the tiers, the bus subscription and every
 * mechanism once, at construction, wires them to each other, runs the maintenance timer, and closes them
 * in order. It holds no logic of its own beyond that; docs/architecture.md maps who owns what.
 *
 * The fields the L1 hit path reads (Cache.get) are direct fields of this object, never one level deeper:
 * closed, hitPathL1, coherence, counters, copiesOnRead, options.
 */
import { Invalidations } from './bus/invalidations.js'
import { Coherence } from './coherence/coherence.js'
import { Lifetimes } from './coherence/lifetimes.js'
import { Stamps } from './coherence/stamps.js'
import { L1Entries } from './entry/l1-entries.js'
import { L1Writer } from './entry/l1-writer.js'
import { Fleet } from './fleet/fleet.js'
import { KeyNames, ROOT_STAMP } from './keys.js'
import { LoadPath } from './load/load-path.js'
import type { ResolvedOptions } from './options.js'
import { ReadPath } from './read/read-path.js'
import { StrongReads } from './read/strong-read.js'
import { CircuitBreaker } from './remote/circuit-breaker.js'
import { RemoteTier } from './remote/remote-tier.js'
import { DistributedLease } from './stampede/lease.js'
import { circuitChannel } from './stats/events.js'
import { StatsCounters, snapshot } from './stats/stats.js'
import { OutageQueue } from './write/outage-queue.js'
import { UnsentWrites } from './write/unsent-writes.js'
import { WritePath } from './write/write-path.js'
import { WriteThrough } from './write/write-through.js'
import { WriteBehind } from './write-behind/write-behind.js'

const MAINTENANCE_INTERVAL_MS = 10_000 // how often stale stamps and loader-failure marks are forgotten

export class CacheRuntime {
  // ---- read by the L1 hit path ----
  closed = false
  /**
   * L1, when get() may answer from it without further ado: undefined without L1, and when a read may have
   * to trigger a background refresh (refreshAhead or earlyRefresh with a loader), which the slow path decides.
   */
  readonly hitPathL1: L1Entries | undefined
  readonly coherence: Coherence
  readonly counters = new StatsCounters()
  /** l1.isolation is 'copy': callers always get their own copy of an L1 value. */
  readonly copiesOnRead: boolean
  readonly options: ResolvedOptions

  // ---- the rest ----
  /** l1.isolation is 'freeze': entries of plain data are deep-frozen and shared with callers. */
  readonly freezes: boolean
  readonly keys: KeyNames
  readonly l1: L1Entries | undefined
  readonly remote: RemoteTier | undefined
  readonly lifetimes: Lifetimes
  readonly unsent = new UnsentWrites()
  readonly l1Writer: L1Writer
  readonly stamps: Stamps
  readonly invalidations: Invalidations
  readonly outage: OutageQueue
  readonly reads: ReadPath
  readonly strong: StrongReads
  readonly writes: WritePath
  readonly writeThrough: WriteThrough
  /** With the writeBehind option. */
  readonly writeBehind: WriteBehind | undefined
  readonly loads: LoadPath
  /** With lock: 'distributed'. */
  readonly lease: DistributedLease | undefined
  /** The fleet view (heartbeats), unless fleet: false. */
  readonly fleet: Fleet | undefined
  private readonly ready: Promise<void>
  private readonly maintenanceTimer: NodeJS.Timeout

  constructor(options: ResolvedOptions) {
    this.options = options
    const { l1, clock, l2, bus } = options
    this.keys = new KeyNames(options.namespace)
    this.l1 =
      l1 === false
        ? undefined
        : new L1Entries({
            maxEntries: l1.maxEntries,
            maxBytes: l1.maxBytes,
            policy: l1.policy,
            clock,
            sweepIntervalMs: l1.sweepInterval,
          })
    this.copiesOnRead = l1 === false || l1.isolation === 'copy'
    this.freezes = l1 !== false && l1.isolation === 'freeze'
    // get() with the configured loader may have to refresh early (refreshAhead or earlyRefresh).
    const refreshesOnRead =
      options.loader !== undefined && (options.refreshAhead > 0 || options.earlyRefreshBeta > 0)
    this.hitPathL1 = refreshesOnRead ? undefined : this.l1
    this.coherence = new Coherence(clock, bus !== undefined)
    const { versions } = this.coherence
    // When the store's connection is back, the breaker is probed at once with a cheap read.
    const probeKey = this.keys.stamp(ROOT_STAMP)
    this.remote =
      l2 === undefined
        ? undefined
        : new RemoteTier(l2, options.l2Timeout, l2.guardsMembers ? undefined : this.breaker('l2'), {
            probe: () => l2.getStamps([probeKey]),
            plausible: (n) => versions.plausible(n),
          })
    this.lifetimes = new Lifetimes(
      l1 === false ? Math.min(options.ttl, 60_000) : l1.ttl,
      options.ttl + options.grace,
    )
    this.l1Writer = new L1Writer(
      this.l1,
      this.coherence,
      this.unsent,
      this.counters,
      clock,
      this.lifetimes.trustWindowMs,
      this.copiesOnRead,
    )
    this.stamps = new Stamps({
      coherence: this.coherence,
      remote: this.remote,
      keys: this.keys,
      unsent: this.unsent,
      lifetimes: this.lifetimes,
      counters: this.counters,
      clock,
      clearL1: () => this.l1Writer.clear(),
    })
    this.invalidations = new Invalidations({
      bus,
      breaker: bus === undefined ? undefined : this.breaker('bus'),
      channel: this.keys.channel,
      namespace: options.namespace,
      publishTimeoutMs: options.l2Timeout,
      storeAnnounces: bus !== undefined && (this.remote?.canAnnounce(bus) ?? false),
      coherence: this.coherence,
      stamps: this.stamps,
      l1: this.l1Writer,
      unsent: this.unsent,
      counters: this.counters,
      clock,
      onHeartbeat: (message) => this.fleet?.receive(message),
      onKeyWritten: (rel) => this.lease?.wake(rel),
      onReconnected: () => void this.outage.retry(),
      isClosed: () => this.closed,
    })
    this.outage = new OutageQueue({
      remote: this.remote,
      keys: this.keys,
      coherence: this.coherence,
      stamps: this.stamps,
      unsent: this.unsent,
      l1: this.l1Writer,
      lifetimes: this.lifetimes,
      counters: this.counters,
      invalidations: this.invalidations,
      limit: options.maxPendingWrites,
    })
    this.reads = new ReadPath(this)
    this.strong = new StrongReads(this)
    this.writes = new WritePath(this)
    this.writeThrough = new WriteThrough(this)
    this.writeBehind =
      options.writeBehind === undefined ? undefined : new WriteBehind(this, options.writeBehind)
    this.lease = options.lock === 'distributed' ? new DistributedLease(this) : undefined
    this.loads = new LoadPath(this)
    this.fleet =
      options.fleet === false
        ? undefined
        : new Fleet({
            nodeId: this.coherence.nodeId,
            name: options.fleet.name,
            clock,
            intervalMs: options.fleet.intervalMs,
            timeoutMs: options.fleet.timeoutMs,
            counters: this.counters,
            stats: () => snapshot(this),
            publish: (bytes) => this.invalidations.publishRaw(bytes),
          })
    this.ready = this.invalidations.subscribe()
    // Heartbeats start once the subscription is live: the first one says the bus is connected.
    if (bus !== undefined && this.fleet !== undefined)
      this.ready.then(
        () => this.fleet?.start(),
        () => {},
      )
    this.ready.catch(() => {})
    this.maintenanceTimer = setInterval(() => this.maintain(), MAINTENANCE_INTERVAL_MS)
    this.maintenanceTimer.unref()
  }

  /** One L2 deadline for all the L2 calls of one cache operation (guarantee 5). */
  deadline(): number | undefined {
    return this.remote?.deadline()
  }

  whenReady(): Promise<void> {
    return this.ready
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.maintenanceTimer)
    this.fleet?.stop()
    // Write-behind drains first (within its closeTimeout), while L2 and the bus are still open.
    await this.writeBehind?.close()
    this.remote?.close()
    // Loads in flight are the application's: close() does not wait for them (a hung loader would hang
    // it). If one finishes later, its writes fail quietly against the closed tiers.
    await this.outage.retry()
    this.outage.stop()
    this.l1?.close()
    await this.ready.catch(() => {})
    await Promise.allSettled([this.invalidations.unsubscribe()])
    await Promise.allSettled([this.options.l2?.close(), this.options.bus?.close()])
  }

  private breaker(target: 'l2' | 'bus'): CircuitBreaker | undefined {
    const { circuitBreaker, clock, namespace } = this.options
    if (circuitBreaker === false) return undefined
    return new CircuitBreaker(`${target} of cache '${namespace}'`, circuitBreaker, clock, (state) => {
      if (circuitChannel.hasSubscribers) circuitChannel.publish({ namespace, target, state })
      // Redis answers again: what failed while it did not goes out now, not at the next retry tick.
      if (state === 'closed' && !this.closed) void this.outage.retry()
    })
  }

  private maintain(): void {
    const now = this.options.clock.now()
    this.loads.prune(now)
    // A stamp matters only while an entry recorded under an older generation may still be in this L1.
    this.coherence.pruneStamps(now, this.lifetimes.stampMaxAge())
    this.stamps.restoreUnsent()
  }
}
