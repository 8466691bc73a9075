import { randomBytes } from 'node:crypto'
import { type InvalidationMessage, MessageKind } from './bus/wire.js'
import { type DecodedEnvelope, decodeEnvelope, encodeEnvelope } from './coherence/envelope.js'
import {
  CacheCore,
  FOREVER_MS,
  type L1Entry,
  type LoadOutcome,
  type Lookup,
  type NamespaceState,
  type SharedRead,
  sharedGens,
  type UnsentWrite,
} from './core.js'
import { type Duration, parseDuration } from './duration.js'
import { CacheClosedError, InvalidOptionError, LoaderTimeoutError, LockTimeoutError } from './errors.js'
import {
  type CacheOptions,
  type Loader,
  resolveLoaderTimeout,
  resolveOptions,
  resolveRefreshAhead,
  validateKey,
  validateNamespaceName,
  validateTags,
} from './options.js'
import { cloneValue, deepFreeze } from './serialization/clone.js'
import { decode, encode } from './serialization/codec.js'
import { type CacheStats, hitRate } from './stats/stats.js'
import type { StoredEntry } from './stores/store.js'

export interface SetOptions {
  /** TTL of this entry. @default the cache ttl */
  ttl?: Duration
  /** Tags to invalidate this entry by, with invalidateTags(). */
  tags?: readonly string[]
  /** Grace period of this entry. @default the cache grace */
  grace?: Duration
}

export interface GetOrSetOptions extends SetOptions {
  /** Refresh in the background once this fraction of the TTL has passed (0 < x < 1). @default the cache's */
  refreshAhead?: number
  /** Loader timeouts for this call. @default the cache's */
  loaderTimeout?: { soft?: Duration; hard?: Duration }
}

/** Per-call options after validation and defaults. */
interface WriteOptions {
  ttl: number
  grace: number
  tags: readonly string[] | undefined
}

interface LoadOptions extends WriteOptions {
  refreshAhead: number
  soft: number
  hard: number
}

/** A load's identity: its fill token and the version taken before the loader started (for fencing). */
interface LoadTicket {
  token: number
  version: number
  loadMs: number
}

const DONE: Promise<void> = Promise.resolve()

/**
 * A cache over L1 (in-process), an optional shared L2 and an optional invalidation bus.
 * Create it with createCache(); `namespace(name)` returns a child sharing tiers and bus.
 */
export class Cache {
  private constructor(
    private readonly core: CacheCore,
    private readonly ns: NamespaceState,
  ) {}

  /** @internal */
  static create(options?: CacheOptions): Cache {
    const core = new CacheCore(resolveOptions(options))
    return new Cache(core, core.namespaces.get('')!)
  }

  /** Resolves once the bus subscription (if any) is live; until then L1 is bypassed. */
  ready(): Promise<void> {
    return this.core.whenReady()
  }

  /** The value for `key`, or undefined. With a `loader` option, a miss is loaded (read-through). */
  get<T = unknown>(key: string): Promise<T | undefined> {
    const core = this.core
    // Short keys of type string are valid: the full check (and its error) only off the hot path.
    if (core.closed || typeof key !== 'string' || key.length === 0 || key.length > 341) {
      return this.getChecked<T>(key)
    }
    const rel = this.ns.prefix === '' ? key : this.ns.prefix + key
    // Hot path, kept small so that it inlines: most hits answer from the entry's shortcut (see
    // CacheCore.storeL1) without loading the entry itself.
    const l1 = core.hitPathL1
    if (l1 !== undefined && core.coherence.trusted) {
      const { coherence } = core
      const shortcut = l1.getShortcut(rel, 2 * coherence.namespaceEpoch, 2 * coherence.stampEpoch + 1)
      if (shortcut !== undefined) {
        core.counters.l1Hits++
        // Copy mode: the value, copied for this caller. Freeze mode: a promise of the frozen value.
        return (core.copiesOnRead ? Promise.resolve(cloneValue(shortcut)) : shortcut) as Promise<
          T | undefined
        >
      }
    }
    return this.getValid<T>(rel, key)
  }

  /** get() of a key the hot path did not vouch for: validated here (a rejection, not a throw). */
  private getChecked<T>(key: string): Promise<T | undefined> {
    try {
      if (this.core.closed) throw new CacheClosedError()
      validateKey(key)
    } catch (err) {
      return Promise.reject(err)
    }
    return this.getValid<T>(this.ns.prefix + key, key)
  }

  /** get() past the shortcut: a current L1 entry (with grace, or once stamps moved), else the slow path. */
  private getValid<T>(rel: string, key: string): Promise<T | undefined> {
    const core = this.core
    const l1 = core.hitPathL1
    if (l1 !== undefined && core.coherence.trusted) {
      const entry = l1.get(rel)
      // L1 drops an entry at its staleUntil (or l1.ttl, if sooner): without grace, an entry L1 still holds
      // is fresh and the clock need not be read again.
      if (
        entry !== undefined &&
        (entry.staleUntil === entry.freshUntil || core.options.clock.now() < entry.freshUntil) &&
        core.coherence.isCurrent(entry.stampKeys, entry.stampGens)
      ) {
        core.counters.l1Hits++
        // Found current now: its shortcut (if it has one) answers the next hits until a stamp rises.
        if (core.shortcutFor(entry)) l1.renewShortcut(rel, core.shortcutTag(entry))
        return Promise.resolve((entry.frozen ? entry.value : cloneValue(entry.value)) as T)
      }
    }
    const loader = core.options.loader
    if (loader === undefined) return this.getSlow<T>(rel)
    return this.resolveWithLoader<T>(rel, key, loader as Loader<T>, this.resolveLoadOptions(undefined))
  }

  /** Cache-aside: the cached value, or the loader's (stored, and shared with concurrent callers). */
  getOrSet<T>(key: string, loader: Loader<T>, options?: GetOrSetOptions): Promise<T> {
    if (this.core.closed) return Promise.reject(new CacheClosedError())
    try {
      validateKey(key)
      if (typeof loader !== 'function') {
        throw new InvalidOptionError('loader', 'getOrSet needs a loader function (key) => value')
      }
      const opts = this.resolveLoadOptions(options)
      return this.resolveWithLoader<T>(this.ns.prefix + key, key, loader, opts) as Promise<T>
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** True if a fresh value exists for `key` (in L1 or L2). Never calls a loader. */
  async has(key: string): Promise<boolean> {
    this.assertOpen()
    validateKey(key)
    const found = await this.lookup(this.ns.prefix + key, this.deadline())
    return found?.fresh === true
  }

  /** Stores `value` in every tier and invalidates it on every other node. */
  async set(key: string, value: unknown, options?: SetOptions): Promise<void> {
    this.assertOpen()
    validateKey(key)
    const resolved = this.resolveSetOptions(options)
    const payload = encode(value)
    await this.write(this.ns.prefix + key, value, payload, resolved, undefined, this.deadline()).done
  }

  async delete(key: string): Promise<void> {
    await this.deleteMany([key])
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    this.assertOpen()
    if (!Array.isArray(keys)) throw new InvalidOptionError('keys', 'deleteMany needs an array of keys')
    for (const key of keys) validateKey(key)
    if (keys.length === 0) return
    const core = this.core
    const { coherence, remote, pending } = core
    const rels = keys.map((key) => this.ns.prefix + key)
    const proposed = coherence.versions.next()
    const versions = rels.map(() => proposed)
    for (const rel of rels) {
      coherence.markKey(rel, Number.POSITIVE_INFINITY)
      core.l1?.delete(rel)
    }
    const delivered: number[] = []
    if (remote === undefined) {
      for (let i = 0; i < rels.length; i++) delivered.push(i)
    } else {
      const tombstoneTtl = core.tombstoneTtl()
      const deadline = remote.deadline()
      await Promise.all(
        rels.map(async (rel, i) => {
          const l2Key = core.l2Key(rel)
          try {
            versions[i] = await remote.delete(l2Key, proposed, tombstoneTtl, deadline)
            coherence.versions.observe(versions[i]!)
            core.supersede(rel, versions[i]!)
            delivered.push(i)
          } catch {
            core.counters.l2Errors++
            // Reads here see the delete until it reaches L2 (read-your-writes), even if L2 still has the value.
            const own = core.keepUnsent(rel, proposed, undefined)
            // Redo it later unless a newer write reached L2 in the meantime.
            pending.add(`k:${rel}`, {
              rank: proposed,
              redo: async () => {
                const stored = await remote.get(l2Key)
                if (stored !== undefined && stored.version > proposed) {
                  core.sent(rel, own, stored.version)
                  return undefined
                }
                const version = await remote.delete(l2Key, proposed, core.tombstoneTtl())
                core.sent(rel, own, version)
                return this.keysMessage([rel], [version])
              },
            })
          }
        }),
      )
    }
    // Publish only what reached L2: the rest is published when its retry succeeds.
    if (delivered.length === 0) return
    const names = delivered.map((i) => rels[i]!)
    const numbers = delivered.map((i) => versions[i]!)
    if (!(await core.publish(this.keysMessage(names, numbers)))) {
      for (let i = 0; i < names.length; i++) {
        pending.addAnnouncement(
          `k:${names[i]}`,
          numbers[i]!,
          this.keysMessage([names[i]!], [numbers[i]!]),
          this.notSuperseded(names[i]!, numbers[i]!),
        )
      }
    }
  }

  /** Invalidates every entry written with any of `tags`, on every node. O(1) per tag: no key scans. */
  async invalidateTags(tags: readonly string[]): Promise<void> {
    this.assertOpen()
    const valid = validateTags(tags, 'tags') ?? []
    if (valid.length === 0) return
    await this.bumpStamps(valid.map((tag) => `t:${tag}`))
  }

  /** Invalidates every entry of this namespace (and its children), on every node. */
  async clear(): Promise<void> {
    this.assertOpen()
    if (this.ns.path === '') this.core.l1?.clear()
    await this.bumpStamps([`n:${this.ns.path}`])
  }

  /** A child cache whose keys live under `name`, sharing this cache's tiers and bus. */
  namespace(name: string): Cache {
    validateNamespaceName(name, 'namespace')
    const path = this.ns.path === '' ? name : `${this.ns.path}:${name}`
    return new Cache(this.core, this.core.namespaceState(path))
  }

  stats(): CacheStats {
    const { counters: c, l1, flights, coherence, remote, busBreaker, pending, options } = this.core
    return {
      l1: {
        hits: c.l1Hits,
        misses: c.l1Misses,
        hitRate: hitRate(c.l1Hits, c.l1Misses),
        size: l1?.size ?? 0,
        bytes: l1?.bytes ?? 0,
        evictions: { size: l1?.stats.evictedBySize ?? 0, expired: l1?.stats.expired ?? 0 },
      },
      l2: {
        hits: c.l2Hits,
        misses: c.l2Misses,
        hitRate: hitRate(c.l2Hits, c.l2Misses),
        errors: c.l2Errors,
        sharedReads: c.l2ReadsShared,
        circuit: remote?.breaker?.state ?? 'closed',
        circuitOpened: remote?.breaker?.opened ?? 0,
      },
      loads: {
        calls: c.loads,
        errors: c.loaderErrors,
        coalesced: flights.coalesced,
        leasesAcquired: c.leasesAcquired,
        leaseWaits: c.leaseWaits,
      },
      staleServed: c.staleServed,
      staleFillsRefused: c.staleFillsRefused,
      bus: {
        published: c.busPublished,
        received: c.busReceived,
        dropped: c.busDropped,
        publishErrors: c.busPublishErrors,
        reconnects: c.busReconnects,
        connected: this.core.busConnected || (options.bus === undefined && coherence.trusted),
        circuit: busBreaker?.state ?? 'closed',
      },
      pending: pending.size,
      recovered: pending.recovered,
      pendingDropped: c.pendingDropped,
    }
  }

  /** Stops timers, retries pending writes once, closes the store and bus. Loads in flight are not awaited. */
  async close(): Promise<void> {
    if (this.ns.path !== '') return
    await this.core.close()
  }

  // ---- options ----------------------------------------------------------------------------------

  private assertOpen(): void {
    if (this.core.closed) throw new CacheClosedError()
  }

  private resolveSetOptions(options: SetOptions | undefined): WriteOptions {
    const defaults = this.core.options
    if (options === undefined) return { ttl: defaults.ttl, grace: defaults.grace, tags: undefined }
    if (typeof options !== 'object' || options === null) {
      throw new InvalidOptionError('options', 'must be an object like { ttl, tags }')
    }
    return {
      ttl:
        options.ttl === undefined
          ? defaults.ttl
          : parseDuration(options.ttl, 'ttl', { allowZero: false, allowInfinite: true }),
      grace: options.grace === undefined ? defaults.grace : parseDuration(options.grace, 'grace'),
      tags: validateTags(options.tags, 'tags'),
    }
  }

  private resolveLoadOptions(options: GetOrSetOptions | undefined): LoadOptions {
    const defaults = this.core.options
    const write = this.resolveSetOptions(options)
    if (options === undefined)
      return { ...write, refreshAhead: defaults.refreshAhead, ...defaults.loaderTimeout }
    return {
      ...write,
      refreshAhead:
        options.refreshAhead === undefined
          ? defaults.refreshAhead
          : resolveRefreshAhead(options.refreshAhead, 'refreshAhead'),
      ...resolveLoaderTimeout(options.loaderTimeout, 'loaderTimeout', defaults.loaderTimeout),
    }
  }

  /** l1.isolation is 'freeze': entries of plain data are deep-frozen and shared with callers. */
  private get freezes(): boolean {
    const l1 = this.core.options.l1
    return l1 !== false && l1.isolation === 'freeze'
  }

  /** One L2 deadline for all the L2 calls of one cache operation (guarantee 5). */
  private deadline(): number | undefined {
    return this.core.remote?.deadline()
  }

  private jittered(ttl: number): number {
    const { jitter, random } = this.core.options
    if (jitter === 0 || !Number.isFinite(ttl)) return ttl
    return Math.max(1, Math.round(ttl * (1 + (random() * 2 - 1) * jitter)))
  }

  // ---- writes -----------------------------------------------------------------------------------

  private keysMessage(names: readonly string[], numbers: readonly number[]): InvalidationMessage {
    return { kind: MessageKind.Keys, origin: this.core.coherence.nodeId, names, numbers }
  }

  /** Before re-announcing a write: is L2 still holding it (nothing newer)? */
  private notSuperseded(rel: string, version: number): (() => Promise<boolean>) | undefined {
    const remote = this.core.remote
    if (remote === undefined) return undefined
    return async () => {
      const stored = await remote.get(this.core.l2Key(rel))
      return stored === undefined || stored.version <= version
    }
  }

  /**
   * Writes a value through the tiers: L2 first, then L1, then the bus (publish only once L2 has it).
   * A set always wins in L2 (last writer wins, in L2's order). A load (`ticket`) is fenced instead: it
   * is dropped if an invalidation of the key arrived while loading, and L2 refuses it if anything newer
   * is stored; either way its value is still returned to the callers that waited for it.
   * Returns the entry at once (a load's callers need only its value) and `done`, which settles when the
   * write has landed in every tier or has been queued for retry (L2 and bus failures do not reject it).
   */
  private write(
    rel: string,
    value: unknown,
    payload: Uint8Array,
    opts: WriteOptions,
    ticket: LoadTicket | undefined,
    deadline: number | undefined,
  ): LoadOutcome {
    const core = this.core
    const now = core.options.clock.now()
    const ttl = this.jittered(opts.ttl)
    const ownCopy = cloneValue(value)
    const stampKeys =
      opts.tags === undefined
        ? this.ns.stampKeys
        : [...this.ns.stampKeys, ...opts.tags.map((tag) => `t:${tag}`)]
    const entry: L1Entry = {
      // The cache's own copy: the caller keeps `value` and may mutate it after set() returns.
      value: ownCopy,
      frozen: this.freezes && deepFreeze(ownCopy),
      lendable: false,
      version: ticket?.version ?? core.coherence.versions.next(),
      writtenAt: now,
      loadMs: ticket?.loadMs ?? 0,
      freshUntil: now + ttl,
      staleUntil: now + ttl + opts.grace,
      ns: this.ns,
      stampKeys,
      stampGens: [],
    }
    core.noteLifetime(ttl + opts.grace)
    if (ticket !== undefined && !core.coherence.fillAllowed(rel, ticket.token, ticket.version)) {
      core.counters.staleFillsRefused++
      return { entry, done: DONE }
    }
    return { entry, done: this.writeTiers(rel, entry, payload, ticket, deadline) }
  }

  private async writeTiers(
    rel: string,
    entry: L1Entry,
    payload: Uint8Array,
    ticket: LoadTicket | undefined,
    deadline: number | undefined,
  ): Promise<void> {
    const core = this.core
    const { coherence, remote, counters, pending } = core
    const { stampKeys, writtenAt: now } = entry
    if (ticket === undefined) coherence.markKey(rel, Number.POSITIVE_INFINITY)
    const token = ticket?.token ?? coherence.beginFill()
    try {
      // The generations the entry is written under. A set asks L2, the authority: an invalidation that
      // resolved before this set began may not have reached this node yet, and recording the older
      // generation would let it invalidate this newer write (read-your-writes). A load uses what this node
      // knows: a generation that moved while it loaded must not validate what it loaded before. If L2
      // cannot answer, the local ones do: an older generation only makes an entry look invalid.
      entry.stampGens = await core
        .stampGens(stampKeys, deadline, ticket === undefined)
        .catch(() => sharedGens(stampKeys.map((k) => coherence.stampGen(k))))
      if (remote !== undefined) {
        const l2Key = core.l2Key(rel)
        const bytes = encodeEnvelope(
          {
            writtenAt: now,
            loadMs: entry.loadMs,
            freshUntil: entry.freshUntil,
            staleUntil: entry.staleUntil,
            namespacePath: this.ns.path,
            stampKeys,
            stampGens: entry.stampGens,
          },
          payload,
        )
        const l2Ttl = Number.isFinite(entry.staleUntil) ? Math.max(1, entry.staleUntil - now) : FOREVER_MS
        try {
          if (ticket !== undefined) {
            const newer = await remote.setIfNewer(l2Key, bytes, entry.version, l2Ttl, deadline)
            if (newer !== undefined) {
              // Someone wrote the key while we loaded: their value stays, ours only answers our callers.
              coherence.versions.observe(newer)
              core.supersede(rel, newer)
              counters.staleFillsRefused++
              const existing = core.l1?.peek(rel)
              if (existing !== undefined && existing.version < newer) core.l1!.delete(rel)
              return
            }
          } else {
            entry.version = await remote.set(l2Key, bytes, entry.version, l2Ttl, deadline)
            coherence.versions.observe(entry.version)
          }
          core.supersede(rel, entry.version)
        } catch {
          counters.l2Errors++
          // Redis is unreachable (or slow): this node keeps its write (read-your-writes) and retries it
          // later, unless L2 holds something newer by then.
          const proposed = entry.version
          const own = core.keepUnsent(rel, proposed, entry)
          pending.add(`k:${rel}`, {
            rank: proposed,
            redo: async () => {
              const newer = await remote.setIfNewer(l2Key, bytes, proposed, l2Ttl)
              if (newer === undefined) {
                core.sent(rel, own, proposed)
                return this.keysMessage([rel], [proposed])
              }
              // Refused: either a newer write, or this very write, which reached L2 although its reply
              // did not reach us (L2 may have given it a higher version than proposed). Ours is announced.
              const stored = await remote.get(l2Key)
              const landed =
                stored !== undefined && stored.version === newer && sameBytes(stored.bytes, bytes)
              core.sent(rel, own, newer)
              return landed ? this.keysMessage([rel], [newer]) : undefined
            },
          })
          core.storeL1(rel, entry, payload.length, token)
          return
        }
      }
      core.storeL1(rel, entry, payload.length, token)
      if (!(await core.publish(this.keysMessage([rel], [entry.version])))) {
        pending.addAnnouncement(
          `k:${rel}`,
          entry.version,
          this.keysMessage([rel], [entry.version]),
          this.notSuperseded(rel, entry.version),
        )
      }
    } finally {
      if (ticket === undefined) coherence.endFill()
    }
  }

  /** invalidateTags and clear: bump generation counters in L2, locally, and on every node. */
  private async bumpStamps(stampKeys: readonly string[]): Promise<void> {
    const core = this.core
    const { coherence, remote, pending } = core
    coherence.markAll()
    if (remote === undefined) {
      const gens = stampKeys.map((key) => coherence.stampGen(key) + 1)
      core.raiseStamps(stampKeys, gens)
      await core.publish(core.stampsMessage(stampKeys, gens))
      return
    }
    const l2Keys = stampKeys.map((key) => core.l2StampKey(key))
    const rank = coherence.versions.next()
    let gens: number[]
    try {
      gens = await remote.bumpStamps(l2Keys, core.stampTtl(), remote.deadline())
    } catch {
      core.counters.l2Errors++
      core.deferStampBump(stampKeys, rank)
      return
    }
    for (const key of stampKeys) core.unsentStamps.delete(key)
    core.raiseStamps(stampKeys, gens)
    const message = core.stampsMessage(stampKeys, gens)
    if (!(await core.publish(message))) {
      pending.addAnnouncement(`s:${stampKeys.join('\u0000')}`, rank, message)
    }
  }

  // ---- reads ------------------------------------------------------------------------------------

  private async getSlow<T>(rel: string): Promise<T | undefined> {
    const found = await this.lookup(rel, this.deadline())
    if (found === undefined) return undefined
    if (found.fresh) return handOut(found.entry) as T
    if (!found.degraded) return undefined
    // Fail-safe: L2 cannot answer, so a stale value within grace is better than nothing.
    this.core.counters.staleServed++
    return handOut(found.entry) as T
  }

  /**
   * Finds the best entry for `rel`: a fresh one from L1 (when trusted) or L2, else a stale one within
   * grace. When L2 cannot be reached, L1 answers even while untrusted (degradation beats failure).
   */
  private lookup(rel: string, deadline: number | undefined): Promise<Lookup> {
    // Taken before reading: if the retry lands while we read, what we read may predate it.
    const own = this.core.unsent.get(rel)
    return own === undefined ? this.lookupTiers(rel, deadline) : this.lookupOwn(rel, own, deadline)
  }

  /** lookup() while this node holds a write of `rel` that L2 has not got yet. */
  private async lookupOwn(rel: string, own: UnsentWrite, deadline: number | undefined): Promise<Lookup> {
    const found = await this.lookupTiers(rel, deadline)
    if (found !== undefined && found.entry.version >= own.version) return found
    // This node's own write that L2 had not got yet (Redis was unreachable): it answers until its retry
    // lands (read-your-writes), unless a tag or namespace invalidation made here since voids it.
    const entry = own.entry
    if (entry === undefined || !this.core.coherence.isCurrent(entry.stampKeys, entry.stampGens)) {
      return undefined
    }
    return { entry, fresh: this.core.options.clock.now() < entry.freshUntil, degraded: false }
  }

  private async lookupTiers(rel: string, deadline: number | undefined): Promise<Lookup> {
    const core = this.core
    const { l1, remote, coherence, counters } = core
    const now = core.options.clock.now()
    let candidate: L1Entry | undefined
    if (l1 !== undefined) {
      const entry = coherence.trusted ? l1.get(rel) : l1.peek(rel)
      if (entry !== undefined && coherence.isCurrent(entry.stampKeys, entry.stampGens)) {
        if (coherence.trusted && now < entry.freshUntil) {
          counters.l1Hits++
          return { entry, fresh: true, degraded: false }
        }
        candidate = entry
      }
      counters.l1Misses++
    }
    if (remote === undefined) {
      if (candidate === undefined) return undefined
      const trusted = coherence.trusted
      return { entry: candidate, fresh: trusted && now < candidate.freshUntil, degraded: !trusted }
    }
    const token = coherence.beginFill()
    try {
      const fromL2 = await this.readL2Shared(rel, token, deadline)
      if (fromL2?.fresh) counters.l2Hits++
      else counters.l2Misses++
      if (candidate !== undefined && (fromL2 === undefined || candidate.version > fromL2.entry.version)) {
        // Only a stale (or untrusted) L1 entry remains, and L2 has nothing newer.
        return coherence.trusted && now < candidate.staleUntil
          ? { entry: candidate, fresh: false, degraded: false }
          : fromL2
      }
      return fromL2
    } catch {
      counters.l2Errors++
      // L2 is down or slow: answer from what this node has, trusted or not.
      return candidate && { entry: candidate, fresh: now < candidate.freshUntil, degraded: true }
    } finally {
      coherence.endFill()
    }
  }

  /**
   * One L2 read per key at a time: a stampede of callers on a cold key asks L2 once, not once each. A
   * caller joins a read in flight only if nothing invalidated or wrote the key on this node since that
   * read began; otherwise it could get an answer older than a write it already knows of (read-your-writes).
   */
  private readL2Shared(rel: string, token: number, deadline: number | undefined): Promise<Lookup> {
    const core = this.core
    const { reads, coherence, counters } = core
    const running = reads.get(rel)
    if (running !== undefined && coherence.untouchedSince(rel, running.token)) {
      counters.l2ReadsShared++
      return new Promise<Lookup>((resolve, reject) => {
        running.joiners.push({ resolve, reject })
      })
    }
    const shared: SharedRead = { token, joiners: [] }
    reads.set(rel, shared)
    return this.readL2(rel, token, deadline, shared)
  }

  /**
   * Reads and judges an L2 entry; a current one is copied into L1 with its remaining TTL. With `shared`
   * (see readL2Shared), the read leaves core.reads as it ends, so that nobody joins it later, and its
   * joiners get the same answer. (Joiners wait on promises of their own: keeping the read's promise in
   * core.reads, where joiners could pick it up, cost a fifth of L2 hit throughput in bench:l2.)
   */
  private async readL2(
    rel: string,
    token: number,
    deadline: number | undefined,
    shared?: SharedRead,
  ): Promise<Lookup> {
    const core = this.core
    let found: Lookup
    try {
      const stored = await core.remote!.get(core.l2Key(rel), deadline)
      const judged = this.judgeL2(rel, token, deadline, stored)
      found = judged instanceof Promise ? await judged : judged
    } catch (err) {
      if (shared !== undefined) for (const joiner of shared.joiners) joiner.reject(err)
      throw err
    } finally {
      if (shared !== undefined && core.reads.get(rel) === shared) core.reads.delete(rel)
    }
    if (shared === undefined) return found
    const joiners = shared.joiners
    if (joiners.length === 0) {
      // A value that L1 did not keep and that only this caller will see needs no copy for it.
      if (found !== undefined && core.l1?.peek(rel) !== found.entry) found.entry.lendable = true
    } else {
      for (const joiner of joiners) joiner.resolve(found)
    }
    return found
  }

  /** What an L2 reply means: a current entry (then copied into L1), or nothing. Async only to learn stamps. */
  private judgeL2(
    rel: string,
    token: number,
    deadline: number | undefined,
    stored: StoredEntry | undefined,
  ): Lookup | Promise<Lookup> {
    if (stored === undefined) return undefined
    const core = this.core
    const envelope = decodeEnvelope(stored.bytes)
    core.coherence.versions.observe(stored.version)
    if (envelope.staleUntil <= core.options.clock.now()) return undefined
    const gens = core.knownStampGens(envelope.stampKeys)
    if (gens !== undefined) return this.acceptL2(rel, token, stored.version, envelope, gens)
    return core
      .stampGens(envelope.stampKeys, deadline)
      .then((learned) => this.acceptL2(rel, token, stored.version, envelope, learned))
  }

  private acceptL2(
    rel: string,
    token: number,
    version: number,
    envelope: DecodedEnvelope,
    gens: readonly number[],
  ): Lookup {
    const core = this.core
    for (let i = 0; i < gens.length; i++) if (gens[i]! > envelope.stampGens[i]!) return undefined
    const value = decode(envelope.payload)
    const entry: L1Entry = {
      value,
      frozen: this.freezes && deepFreeze(value),
      lendable: false,
      version,
      writtenAt: envelope.writtenAt,
      loadMs: envelope.loadMs,
      freshUntil: envelope.freshUntil,
      staleUntil: envelope.staleUntil,
      ns: core.namespaceState(envelope.namespacePath),
      stampKeys: envelope.stampKeys,
      stampGens: envelope.stampGens,
    }
    core.storeL1(rel, entry, envelope.payload.length, token)
    return { entry, fresh: core.options.clock.now() < entry.freshUntil, degraded: false }
  }

  // ---- loads ------------------------------------------------------------------------------------

  /**
   * The read path with a loader: fresh value (maybe refreshing early in the background), else a stale
   * value within grace (waiting up to the soft timeout for the loader), else the loader (up to the hard
   * timeout). A loader failure is answered by the stale value when there is one (fail-safe).
   */
  private async resolveWithLoader<T>(
    rel: string,
    key: string,
    loader: Loader<T>,
    opts: LoadOptions,
  ): Promise<T | undefined> {
    const core = this.core
    const deadline = this.deadline()
    const found = await this.lookup(rel, deadline)
    const now = core.options.clock.now()
    if (found?.fresh) {
      if (this.refreshDue(found.entry, opts.refreshAhead, now) && !core.flights.has(rel)) {
        this.load(rel, key, loader, opts, found.entry).catch(() => {})
      }
      return handOut(found.entry) as T
    }
    const stale = found !== undefined && now < found.entry.staleUntil ? found.entry : undefined
    if (stale !== undefined) {
      const lastFailure = core.loaderFailures.get(rel)
      if (lastFailure === undefined || now - lastFailure >= core.options.failSafeThrottle) {
        const outcome = await within(this.load(rel, key, loader, opts, stale), opts.soft)
        if (outcome.status === 'done' && outcome.value !== undefined) {
          await this.landed(outcome.value, deadline)
          return handOut(outcome.value.entry) as T
        }
      }
      core.counters.staleServed++
      return handOut(stale) as T
    }
    const outcome = await within(this.load(rel, key, loader, opts, undefined), opts.hard)
    if (outcome.status === 'timeout') throw new LoaderTimeoutError(key, opts.hard)
    if (outcome.status === 'failed') throw outcome.error
    if (outcome.value === undefined) return undefined
    await this.landed(outcome.value, deadline)
    return handOut(outcome.value.entry) as T
  }

  /**
   * Waits, within the caller's L2 budget, for a loaded value to land, so that this node reads it back
   * afterwards (read-your-writes). The write itself has its own budget and goes on if the caller stops
   * waiting: a slow L2 delays no caller past its deadline (guarantee 5).
   */
  private async landed(outcome: LoadOutcome, deadline: number | undefined): Promise<void> {
    if (deadline === undefined) await outcome.done.catch(() => {})
    else await within(outcome.done, deadline - Date.now())
  }

  /** refreshAhead: past that fraction of the TTL. earlyRefresh (XFetch): with probability rising towards expiry. */
  private refreshDue(entry: L1Entry, refreshAhead: number, now: number): boolean {
    const ttl = entry.freshUntil - entry.writtenAt
    if (refreshAhead > 0 && now >= entry.writtenAt + refreshAhead * ttl) return true
    const { earlyRefreshBeta: beta, random } = this.core.options
    return beta > 0 && entry.loadMs > 0 && now - entry.loadMs * beta * Math.log(random()) >= entry.freshUntil
  }

  /**
   * Runs the loader at most once per key in this process (and, with lock: 'distributed', in the fleet)
   * and writes its value through the tiers. Its version is taken before the loader starts, so that a
   * write made elsewhere while it loaded wins over it (see write()). The load resolves as soon as the
   * value is known; this node keeps sharing it with new callers until its write has landed.
   */
  private load<T>(
    rel: string,
    key: string,
    loader: Loader<T>,
    opts: LoadOptions,
    stale: L1Entry | undefined,
  ): Promise<LoadOutcome | undefined> {
    const core = this.core
    return core.flights.run(
      rel,
      async () => {
        const { coherence } = core
        const version = coherence.versions.next()
        const token = coherence.beginFill()
        let outcome: LoadOutcome | undefined
        try {
          const produce = () => this.runLoader(rel, key, loader, opts, token, version)
          outcome =
            core.options.lock === 'distributed'
              ? await this.loadUnderLease(rel, key, produce, stale)
              : await produce()
        } catch (err) {
          coherence.endFill()
          throw err
        }
        // The fill token must stay valid until the write has decided whether the value may enter L1.
        afterLanding(outcome, () => coherence.endFill())
        return outcome
      },
      (outcome) => outcome?.done,
    )
  }

  private async runLoader<T>(
    rel: string,
    key: string,
    loader: Loader<T>,
    opts: LoadOptions,
    token: number,
    version: number,
  ): Promise<LoadOutcome | undefined> {
    const core = this.core
    const { counters, options } = core
    counters.loads++
    const started = options.clock.now()
    let value: T
    try {
      value = await loader(key)
    } catch (err) {
      counters.loaderErrors++
      core.loaderFailures.set(rel, options.clock.now())
      throw err
    }
    core.loaderFailures.delete(rel)
    if (value === undefined) return undefined
    const loadMs = options.clock.now() - started
    // A fresh L2 budget: the caller's may have been spent while the loader ran, and a write that cannot
    // even start would leave the value unshared (and, under a distributed lock, let the next node load).
    return this.write(rel, value, encode(value), opts, { token, version, loadMs }, this.deadline())
  }

  /**
   * lock: 'distributed'. One node holds a lease in L2 (SET NX PX with a random token) and loads; the
   * others wait for its write, woken by its bus invalidation (or by polling L2 every pollInterval, which
   * also retries the lease, so a dead holder's lease is taken over once it expires). The holder releases
   * the lease once its write has landed, so that the others find the value when they wake. If L2 cannot
   * be reached there is nothing to coordinate with, and the node loads by itself.
   */
  private async loadUnderLease(
    rel: string,
    key: string,
    produce: () => Promise<LoadOutcome | undefined>,
    stale: L1Entry | undefined,
  ): Promise<LoadOutcome | undefined> {
    const core = this.core
    const remote = core.remote!
    const store = remote.store
    const { leaseTtl, waitTimeout, pollInterval, onTimeout } = core.options.distributedLock
    const leaseKey = core.l2LeaseKey(rel)
    const token = randomBytes(12).toString('base64url')
    // Waiting is counted in the time asked of each wait, not read from the clock: the waits are real
    // timers, and an injected (test) clock must not make them endless.
    let waited = 0
    for (;;) {
      let acquired: boolean
      try {
        acquired = await remote.call('acquireLease', () => store.acquireLease!(leaseKey, token, leaseTtl))
      } catch {
        core.counters.l2Errors++
        return produce()
      }
      if (acquired) {
        core.counters.leasesAcquired++
        const release = () => {
          remote.call('releaseLease', () => store.releaseLease!(leaseKey, token)).catch(() => {})
        }
        let outcome: LoadOutcome | undefined
        try {
          // The previous holder may have written the value while we were waiting for the lease.
          outcome = (await this.readFreshFromL2(rel)) ?? (await produce())
        } catch (err) {
          release()
          throw err
        }
        afterLanding(outcome, release)
        return outcome
      }
      const remaining = waitTimeout - waited
      if (remaining <= 0) {
        if (onTimeout === 'stale' && stale !== undefined) throw new LockTimeoutError(key, waitTimeout)
        return produce()
      }
      if (waited === 0) core.counters.leaseWaits++
      const wait = Math.min(pollInterval, remaining)
      waited += wait
      await core.waitForWrite(rel, wait)
      const written = await this.readFreshFromL2(rel)
      if (written !== undefined) return written
    }
  }

  /** A fresh entry from L2 (copied into L1), or undefined if there is none or L2 cannot answer. */
  private async readFreshFromL2(rel: string): Promise<LoadOutcome | undefined> {
    const { coherence, counters } = this.core
    const token = coherence.beginFill()
    try {
      const found = await this.readL2(rel, token, undefined)
      return found?.fresh ? { entry: found.entry, done: DONE } : undefined
    } catch {
      counters.l2Errors++
      return undefined
    } finally {
      coherence.endFill()
    }
  }
}

/** Runs `then` once a load's write has landed (or been queued), or at once if the load produced nothing. */
function afterLanding(outcome: LoadOutcome | undefined, then: () => void): void {
  if (outcome === undefined) then()
  else outcome.done.finally(then).catch(() => {})
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b)
}

/** What a caller gets: the shared frozen value, or its own copy. */
function handOut(entry: L1Entry): unknown {
  if (entry.frozen) return entry.value
  if (entry.lendable) {
    entry.lendable = false
    return entry.value
  }
  return cloneValue(entry.value)
}

type Outcome<T> = { status: 'done'; value: T } | { status: 'failed'; error: unknown } | { status: 'timeout' }

/** Waits for `promise` at most `ms` (0: not at all, Infinity: forever); it keeps running either way. */
function within<T>(promise: Promise<T>, ms: number): Promise<Outcome<T>> {
  promise.catch(() => {})
  if (ms <= 0) return Promise.resolve({ status: 'timeout' })
  const settled = promise.then(
    (value): Outcome<T> => ({ status: 'done', value }),
    (error): Outcome<T> => ({ status: 'failed', error }),
  )
  if (ms === Number.POSITIVE_INFINITY) return settled
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ status: 'timeout' }), ms)
    settled.then((outcome) => {
      clearTimeout(timer)
      resolve(outcome)
    })
  })
}

/** Creates a cache. See CacheOptions for every option and its default. */
export function createCache(options?: CacheOptions): Cache {
  return Cache.create(options)
}
