import type { BusStatus, BusSubscription } from './bus/bus.js'
import { decodeMessage, encodeMessage, type InvalidationMessage, MessageKind } from './bus/wire.js'
import { Coherence } from './coherence/coherence.js'
import { PendingWrites } from './coherence/pending-writes.js'
import { LocalTier } from './local/local-tier.js'
import type { ResolvedOptions } from './options.js'
import { CircuitBreaker } from './remote/circuit-breaker.js'
import { L2TimeoutError, RemoteTier } from './remote/remote-tier.js'
import { SingleFlight } from './stampede/single-flight.js'
import { busChannel, circuitChannel } from './stats/events.js'
import { StatsCounters } from './stats/stats.js'
import { withTimeout } from './timeouts.js'

/** What a namespace knows about itself: its path and the stamps that apply to its entries. */
export interface NamespaceState {
  /** '' for the root, 'users' or 'users:admins' for children. */
  readonly path: string
  /** Prefix of its keys relative to the root: '' or 'users:'. */
  readonly prefix: string
  /** 'n:<path>' for the root, each ancestor and itself: a clear() of any of them invalidates its entries. */
  readonly stampKeys: readonly string[]
}

/** One L1 slot's content. `value` is the cache's own copy; callers always get a clone of it. */
export interface L1Entry {
  /** The cache's own copy. Callers get a clone of it, or with isolation 'freeze' it itself if `frozen`. */
  value: unknown
  /** The value is deep-frozen plain data: it can be handed to callers without a copy. */
  frozen: boolean
  /**
   * No tier holds `value` and exactly one caller will get it (an L2 read that L1 did not keep, and that no
   * other caller joined): that caller may take it as is, without a copy. Cleared once lent.
   */
  lendable: boolean
  version: number
  writtenAt: number
  /** How long the loader took to produce the value (0 for set). */
  loadMs: number
  freshUntil: number
  staleUntil: number
  ns: NamespaceState
  /** The stamps that judge this entry (namespace chain, then tags) and the generations it was written under. */
  stampKeys: readonly string[]
  stampGens: readonly number[]
}

/** What a load produced: the entry its callers get at once, and the write that stores it in the tiers. */
export interface LoadOutcome {
  entry: L1Entry
  /** Settles when the entry has landed in L2, L1 and the bus, or was queued for retry. */
  done: Promise<void>
}

/**
 * The best entry a read found. `degraded`: L2 could not be asked (down, slow, or absent while the bus
 * is not trusted), so the entry comes from this node's L1 without the usual guarantees.
 */
export type Lookup = { entry: L1Entry; fresh: boolean; degraded: boolean } | undefined

/** An L2 read in flight that other callers of the same key may join (see Cache.readL2Shared). */
export interface SharedRead {
  /** The fill token the read began with: a caller joins only if nothing touched the key since. */
  token: number
  /** Callers that joined (besides the one that started it); they get the same answer. */
  joiners: { resolve: (found: Lookup) => void; reject: (err: unknown) => void }[]
}

/** A write of this node that L2 has not got yet (see CacheCore.unsent). */
export interface UnsentWrite {
  version: number
  entry: L1Entry | undefined
}

const STAMP_TTL_MARGIN_MS = 60_000 // stamps outlive the entries they judge by at least this much
export const FOREVER_MS = 365 * 86_400_000 // what "no expiry" means for an L2 key or stamp
const RETRY_INTERVAL_MS = 1_000 // how often pending writes are retried while L2 or the bus is down
const MAINTENANCE_INTERVAL_MS = 10_000 // how often stale stamps and loader-failure marks are forgotten

/**
 * State shared by a cache and all its namespaces: the tiers, the bus subscription, the coherence state
 * (coherence/coherence.ts explains the protocol) and the counters.
 */
export class CacheCore {
  readonly options: ResolvedOptions
  readonly l1: LocalTier<L1Entry> | undefined
  readonly remote: RemoteTier | undefined
  readonly busBreaker: CircuitBreaker | undefined
  readonly coherence: Coherence
  readonly counters = new StatsCounters()
  readonly flights = new SingleFlight<LoadOutcome | undefined>()
  /** L2 reads in flight by key, with the fill token each began with (see Cache.readL2Shared). */
  readonly reads = new Map<string, SharedRead>()
  readonly namespaces = new Map<string, NamespaceState>()
  readonly pending: PendingWrites
  /** How long an L1 entry (and so a stamp learned from the bus or L2) can live in this node. */
  readonly trustWindowMs: number
  /**
   * L1, when get() may answer from it without further ado: undefined without L1, and when a read may have
   * to trigger a background refresh (refreshAhead or earlyRefresh with a loader), which the slow path decides.
   */
  readonly hitPathL1: LocalTier<L1Entry> | undefined
  /** l1.isolation is 'copy': callers always get their own copy of an L1 value. */
  readonly copiesOnRead: boolean
  /** When each key's loader last failed (for failSafeThrottle). */
  readonly loaderFailures = new Map<string, number>()
  /**
   * This node's writes that did not reach L2 (Redis unreachable), by key, until their retry lands or a
   * newer write supersedes them. Reads answer from them (read-your-writes) whatever L1 dropped meanwhile
   * (a bus reconnect purges it) and whatever older value L2 still holds. `entry` undefined: a delete.
   */
  readonly unsent = new Map<string, UnsentWrite>()
  /** Stamps this node bumped that L2 has not got yet, with the generation assumed locally. */
  readonly unsentStamps = new Map<string, number>()
  busConnected = false
  closed = false
  private readonly channel: string
  private readonly keyWaiters = new Map<string, Set<() => void>>()
  private subscription: BusSubscription | undefined
  private readonly ready: Promise<void>
  private readonly maintenanceTimer: NodeJS.Timeout
  private readonly stopReconnectWatch: (() => void) | undefined
  private longestLifetimeMs: number

  constructor(options: ResolvedOptions) {
    this.options = options
    const { l1, clock } = options
    this.l1 =
      l1 === false
        ? undefined
        : new LocalTier<L1Entry>({
            maxEntries: l1.maxEntries,
            maxBytes: l1.maxBytes,
            policy: l1.policy,
            clock,
            sweepIntervalMs: l1.sweepInterval,
          })
    this.remote = options.l2
      ? new RemoteTier(
          options.l2,
          options.l2Timeout,
          options.l2.guardsMembers ? undefined : this.breaker('l2'),
        )
      : undefined
    this.busBreaker = options.bus ? this.breaker('bus') : undefined
    this.coherence = new Coherence(clock, options.bus !== undefined)
    this.pending = new PendingWrites(
      (message) => this.publish(message),
      RETRY_INTERVAL_MS,
      options.maxPendingWrites,
      () => this.dropPending(),
    )
    this.channel = `coherent:${options.namespace}`
    this.trustWindowMs = l1 === false ? Math.min(options.ttl, 60_000) : l1.ttl
    this.longestLifetimeMs = options.ttl + options.grace
    this.copiesOnRead = l1 === false || l1.isolation === 'copy'
    // get() with the configured loader may have to refresh early (refreshAhead or earlyRefresh).
    const refreshesOnRead =
      options.loader !== undefined && (options.refreshAhead > 0 || options.earlyRefreshBeta > 0)
    this.hitPathL1 = refreshesOnRead ? undefined : this.l1
    this.namespaces.set('', { path: '', prefix: '', stampKeys: ['n:'] })
    // When the store's connection is back, probe it at once rather than waiting out the open circuit.
    const l2 = options.l2
    this.stopReconnectWatch = l2?.onReconnect?.(() => {
      this.remote?.probe(() => l2.getStamps([this.l2StampKey('n:')]))
    })
    this.ready = this.subscribe()
    this.ready.catch(() => {})
    this.maintenanceTimer = setInterval(() => this.maintain(), MAINTENANCE_INTERVAL_MS)
    this.maintenanceTimer.unref()
  }

  private breaker(target: 'l2' | 'bus'): CircuitBreaker | undefined {
    const { circuitBreaker, clock, namespace } = this.options
    if (circuitBreaker === false) return undefined
    return new CircuitBreaker(`${target} of cache '${namespace}'`, circuitBreaker, clock, (state) => {
      if (circuitChannel.hasSubscribers) circuitChannel.publish({ namespace, target, state })
      // Redis answers again: what failed while it did not goes out now, not at the next retry tick.
      if (state === 'closed' && !this.closed) void this.pending.retry()
    })
  }

  // ---- keys in L2 -------------------------------------------------------------------------------

  l2Key(rel: string): string {
    return `${this.options.namespace}:${rel}`
  }

  l2StampKey(stampKey: string): string {
    return `${this.options.namespace}#${stampKey}`
  }

  l2LeaseKey(rel: string): string {
    return `${this.options.namespace}#lease:${rel}`
  }

  namespaceState(path: string): NamespaceState {
    let ns = this.namespaces.get(path)
    if (ns === undefined) {
      const parts = path.split(':')
      const stampKeys = ['n:']
      for (let i = 1; i <= parts.length; i++) stampKeys.push(`n:${parts.slice(0, i).join(':')}`)
      ns = { path, prefix: `${path}:`, stampKeys }
      this.namespaces.set(path, ns)
    }
    return ns
  }

  // ---- lifetimes --------------------------------------------------------------------------------

  noteLifetime(lifetimeMs: number): void {
    if (lifetimeMs > this.longestLifetimeMs) this.longestLifetimeMs = lifetimeMs
  }

  /** Stamps must outlive every entry written under an older generation. */
  stampTtl(): number {
    const ttl = this.longestLifetimeMs + STAMP_TTL_MARGIN_MS
    return Number.isFinite(ttl) ? ttl : FOREVER_MS
  }

  /** A tombstone must outlive every L1 copy of what it deleted, so later versions keep growing. */
  tombstoneTtl(): number {
    const ttl = Math.min(this.trustWindowMs, this.longestLifetimeMs) + STAMP_TTL_MARGIN_MS
    return Number.isFinite(ttl) ? ttl : FOREVER_MS
  }

  // ---- stamps -----------------------------------------------------------------------------------

  /**
   * The generations of `stampKeys`: from L2 when `fromL2` (or the local table is not trusted), else from
   * the local table, fetching from L2 only the stamps it does not know. May throw: L2 unreachable.
   */
  async stampGens(
    stampKeys: readonly string[],
    deadline?: number,
    fromL2 = false,
  ): Promise<readonly number[]> {
    const { coherence, remote } = this
    if (remote !== undefined) {
      const unknown =
        fromL2 || !coherence.trusted ? stampKeys : stampKeys.filter((key) => !coherence.stamps.has(key))
      if (unknown.length > 0) {
        const gens = await remote.getStamps(
          unknown.map((key) => this.l2StampKey(key)),
          deadline,
        )
        const now = this.options.clock.now()
        for (let i = 0; i < unknown.length; i++) coherence.raiseStamp(unknown[i]!, gens[i] ?? 0, now)
      }
    }
    return sharedGens(stampKeys.map((key) => coherence.stampGen(key)))
  }

  /**
   * The generations of `stampKeys` from the local table, or undefined if it cannot answer (not trusted, or
   * a stamp it has not learned yet). The synchronous path of stampGens for reads: no await, no arrays.
   */
  knownStampGens(stampKeys: readonly string[]): readonly number[] | undefined {
    const { coherence } = this
    if (!coherence.trusted) return undefined
    const stamps = coherence.stamps
    let gens: number[] | undefined
    for (let i = 0; i < stampKeys.length; i++) {
      const stamp = stamps.get(stampKeys[i]!)
      if (stamp === undefined) return undefined
      if (stamp.gen !== 0) {
        gens ??= new Array<number>(stampKeys.length).fill(0)
        gens[i] = stamp.gen
      }
    }
    return gens ?? zeroGens(stampKeys.length)
  }

  // ---- writes L2 has not got yet --------------------------------------------------------------------

  /** Records a write of `rel` that failed to reach L2 (unless a newer one is recorded); returns the record. */
  keepUnsent(rel: string, version: number, entry: L1Entry | undefined): UnsentWrite {
    const existing = this.unsent.get(rel)
    if (existing !== undefined && existing.version > version) return existing
    const own = { version, entry }
    this.unsent.set(rel, own)
    return own
  }

  /**
   * The retry of `own` reached L2, or found a newer write there: L2 now holds `version` of `rel`, so reads
   * no longer need the record. Older L1 entries, and fills of older versions still in flight (they may
   * have read L2 before the retry landed), must not answer any more.
   */
  sent(rel: string, own: UnsentWrite, version: number): void {
    this.coherence.versions.observe(version)
    this.coherence.markKey(rel, version)
    const existing = this.l1?.peek(rel)
    if (existing !== undefined && existing.version < version) this.l1!.delete(rel)
    if (this.unsent.get(rel) === own) this.unsent.delete(rel)
  }

  /** A write of `rel` with `version` reached L2: older unsent writes of this node are superseded. */
  supersede(rel: string, version: number): void {
    const own = this.unsent.get(rel)
    if (own !== undefined && own.version <= version) this.unsent.delete(rel)
  }

  // ---- stamp bumps (invalidateTags, clear) ------------------------------------------------------

  stampsMessage(stampKeys: readonly string[], gens: readonly number[]): InvalidationMessage {
    return { kind: MessageKind.Stamps, origin: this.coherence.nodeId, names: stampKeys, numbers: gens }
  }

  /** Raises stamps in the local table: an invalidation by tag or namespace takes effect here. */
  raiseStamps(stampKeys: readonly string[], gens: readonly number[]): void {
    const now = this.options.clock.now()
    for (let i = 0; i < stampKeys.length; i++) this.coherence.raiseStamp(stampKeys[i]!, gens[i]!, now)
  }

  /**
   * A stamp bump L2 could not take: it takes effect here at once (and stays in effect until L2 has it,
   * even if the stamp table is forgotten meanwhile); L2 and the other nodes get it on retry.
   */
  deferStampBump(stampKeys: readonly string[], rank: number): void {
    const remote = this.remote!
    const assumed = stampKeys.map((key) => this.coherence.stampGen(key) + 1)
    this.raiseStamps(stampKeys, assumed)
    for (let i = 0; i < stampKeys.length; i++) this.unsentStamps.set(stampKeys[i]!, assumed[i]!)
    const l2Keys = stampKeys.map((key) => this.l2StampKey(key))
    this.pending.add(`s:${stampKeys.join('\u0000')}`, {
      rank,
      redo: async () => {
        const bumped = await remote.bumpStamps(l2Keys, this.stampTtl())
        this.raiseStamps(stampKeys, bumped)
        for (const key of stampKeys) this.unsentStamps.delete(key)
        return this.stampsMessage(stampKeys, bumped)
      },
    })
  }

  /**
   * More writes wait for Redis than maxPendingWrites allows (a long outage): keeping each would let their
   * values fill memory. They are all replaced by one clear() of the whole cache, in effect here at once
   * and on every node once Redis is back, so that no node serves what they replaced; their values are
   * dropped (reads miss, and load again). Stamp bumps that were waiting go too: the clear covers them.
   */
  private dropPending(): void {
    this.counters.pendingDropped += this.pending.size
    this.pending.clear()
    this.unsent.clear()
    this.unsentStamps.clear()
    this.l1?.clear()
    this.coherence.markAll()
    const rank = this.coherence.versions.next()
    if (this.remote !== undefined) {
      this.deferStampBump(['n:'], rank)
      return
    }
    // No L2: only announcements were waiting (the bus is down); announce the clear instead.
    const gens = [this.coherence.stampGen('n:') + 1]
    this.raiseStamps(['n:'], gens)
    this.pending.addAnnouncement('s:n:', rank, this.stampsMessage(['n:'], gens))
  }

  /** Stamps bumped here but not yet in L2 stay raised, even when the stamp table is forgotten or pruned. */
  private restoreUnsentStamps(): void {
    if (this.unsentStamps.size === 0) return
    const now = this.options.clock.now()
    for (const [key, gen] of this.unsentStamps) this.coherence.raiseStamp(key, gen, now)
  }

  // ---- L1 ---------------------------------------------------------------------------------------

  /**
   * Stores `entry` in L1 unless a newer entry is there or an invalidation overtook the fill. A refused
   * fill still proves that `entry.version` exists, so an older L1 entry is dropped either way: otherwise
   * it would keep answering after a newer write (this node's own, even) has resolved.
   */
  storeL1(rel: string, entry: L1Entry, bytes: number, fillToken: number): void {
    const l1 = this.l1
    if (l1 === undefined) return
    const existing = l1.peek(rel)
    if (existing !== undefined && existing.version > entry.version) return
    // Never an older value over this node's own write that L2 has not got yet.
    const own = this.unsent.get(rel)
    if (own !== undefined && own.version > entry.version) return
    if (!this.coherence.fillAllowed(rel, fillToken, entry.version)) {
      this.counters.staleFillsRefused++
      if (existing !== undefined) l1.delete(rel)
      return
    }
    const lifetime = Math.min(this.trustWindowMs, entry.staleUntil - this.options.clock.now())
    if (lifetime <= 0) {
      l1.delete(rel)
      return
    }
    // The hit path's shortcut (Cache.get), valid while no stamp the entry depends on rises, for an entry
    // that is current now: the value itself in copy mode (each hit copies it); in freeze mode, a promise
    // already resolved with the frozen value, which every hit hands out as it is. (Resolving a new promise
    // with a frozen object costs a lookup of `then` that V8 does not cache for frozen objects: 3x slower
    // than on a plain one, which made freeze-mode hits slower than copying.)
    const current = this.coherence.isCurrent(entry.stampKeys, entry.stampGens)
    const shortcut =
      current && this.shortcutFor(entry)
        ? this.copiesOnRead
          ? entry.value
          : Promise.resolve(entry.value)
        : undefined
    l1.set(rel, entry, lifetime, bytes + rel.length, shortcut, this.shortcutTag(entry))
  }

  /**
   * Whether a hit on `entry` may be answered from its L1 shortcut, the value itself: its L1 lifetime ends
   * by its freshness (no grace: L1 drops it at freshUntil or sooner), and handing it out needs no
   * per-entry decision (copy mode always copies; freeze mode shares only what deepFreeze could freeze).
   */
  shortcutFor(entry: L1Entry): boolean {
    return entry.staleUntil === entry.freshUntil && (this.copiesOnRead || entry.frozen)
  }

  /**
   * The tag an entry found current now gives its L1 shortcut: the shortcut answers while no stamp the
   * entry depends on has risen (Coherence.namespaceEpoch for an entry without tags, else stampEpoch).
   * Even and odd numbers keep the two apart; Cache.get asks with both current values.
   */
  shortcutTag(entry: L1Entry): number {
    const { coherence } = this
    // An entry's stamps are its namespace chain followed by its tags: no more than the chain, no tags.
    return entry.stampKeys.length === entry.ns.stampKeys.length
      ? 2 * coherence.namespaceEpoch
      : 2 * coherence.stampEpoch + 1
  }

  // ---- bus --------------------------------------------------------------------------------------

  private async subscribe(): Promise<void> {
    const bus = this.options.bus
    if (bus === undefined) return
    this.subscription = await bus.subscribe(
      this.channel,
      (message) => this.receive(message),
      (status) => this.onBusStatus(status),
    )
    this.onBusStatus('connected')
  }

  private onBusStatus(status: BusStatus): void {
    if (busChannel.hasSubscribers) busChannel.publish({ namespace: this.options.namespace, status })
    if (status === 'disconnected') {
      this.busConnected = false
      this.coherence.trusted = false
      return
    }
    if (this.busConnected || this.closed) return
    // Back (or connected for the first time): anything published while we were away may be lost, so
    // forget everything L1 and the stamp table hold and void fills in flight before trusting L1 again.
    this.busConnected = true
    this.counters.busReconnects++
    this.l1?.clear()
    this.coherence.forgetStamps()
    this.restoreUnsentStamps()
    this.coherence.markAll()
    this.coherence.trusted = true
    void this.pending.retry()
  }

  private receive(bytes: Uint8Array): void {
    let message: InvalidationMessage
    try {
      message = decodeMessage(bytes)
    } catch {
      this.counters.busDropped++
      return
    }
    if (message.origin.equals(this.coherence.nodeId)) return
    this.counters.busReceived++
    this.apply(message)
  }

  /** Applies an invalidation received from another node to L1 and the stamp table. */
  private apply(message: InvalidationMessage): void {
    const { coherence, l1 } = this
    const { names, numbers } = message
    if (message.kind === MessageKind.Keys) {
      for (let i = 0; i < names.length; i++) {
        const rel = names[i]!
        const version = numbers[i]!
        coherence.versions.observe(version)
        coherence.markKey(rel, version)
        this.supersede(rel, version)
        const entry = l1?.peek(rel)
        if (entry !== undefined && entry.version <= version) l1!.delete(rel)
        this.wakeWaiters(rel)
      }
      return
    }
    const now = this.options.clock.now()
    for (let i = 0; i < names.length; i++) {
      coherence.raiseStamp(names[i]!, numbers[i]!, now)
      if (names[i] === 'n:') l1?.clear()
    }
    coherence.markAll()
  }

  /** Publishes an invalidation; false (and counted) if the bus could not take it. */
  async publish(message: InvalidationMessage): Promise<boolean> {
    const bus = this.options.bus
    if (bus === undefined) return true
    try {
      // Bounded like every L2 call: a bus that accepts the connection but never answers (a frozen Redis)
      // must not hang the write that announces, nor a load's single flight that waits for it.
      const send = () =>
        withTimeout(
          bus.publish(this.channel, encodeMessage(message)),
          this.options.l2Timeout,
          () => new L2TimeoutError('bus publish', this.options.l2Timeout),
        )
      await (this.busBreaker ? this.busBreaker.run(send) : send())
      this.counters.busPublished++
      return true
    } catch {
      this.counters.busPublishErrors++
      return false
    }
  }

  // ---- waiting for another node's load ----------------------------------------------------------

  /** Resolves when a write of `rel` is announced on the bus, or after `ms`, whichever comes first. */
  waitForWrite(rel: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let waiters = this.keyWaiters.get(rel)
      if (waiters === undefined) {
        waiters = new Set()
        this.keyWaiters.set(rel, waiters)
      }
      const set = waiters
      const wake = () => {
        clearTimeout(timer)
        set.delete(wake)
        if (set.size === 0 && this.keyWaiters.get(rel) === set) this.keyWaiters.delete(rel)
        resolve()
      }
      const timer = setTimeout(wake, ms)
      set.add(wake)
    })
  }

  private wakeWaiters(rel: string): void {
    const waiters = this.keyWaiters.get(rel)
    if (waiters !== undefined) for (const wake of [...waiters]) wake()
  }

  // ---- housekeeping -----------------------------------------------------------------------------

  private maintain(): void {
    const now = this.options.clock.now()
    for (const [rel, at] of this.loaderFailures) {
      if (now - at >= this.options.failSafeThrottle) this.loaderFailures.delete(rel)
    }
    // A stamp matters only while an entry recorded under an older generation may still be in this L1.
    this.coherence.pruneStamps(now, Math.min(this.trustWindowMs, this.longestLifetimeMs))
    this.restoreUnsentStamps()
  }

  whenReady(): Promise<void> {
    return this.ready
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.maintenanceTimer)
    this.stopReconnectWatch?.()
    // Loads in flight are the application's: close() does not wait for them (a hung loader would hang
    // it). If one finishes later, its writes fail quietly against the closed tiers.
    await this.pending.retry()
    this.pending.stop()
    this.l1?.close()
    await this.ready.catch(() => {})
    await Promise.allSettled([this.subscription?.unsubscribe()])
    await Promise.allSettled([this.options.l2?.close(), this.options.bus?.close()])
  }
}

const ZERO_GENS: (readonly number[])[] = []

/** Most entries are written under generation 0 of every stamp: they share one frozen array per length. */
export function sharedGens(gens: number[]): readonly number[] {
  for (const gen of gens) if (gen !== 0) return gens
  return zeroGens(gens.length)
}

function zeroGens(length: number): readonly number[] {
  ZERO_GENS[length] ??= Object.freeze(new Array<number>(length).fill(0))
  return ZERO_GENS[length]!
}
