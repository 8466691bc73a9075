/**
 * The public face of the cache: its API, argument validation, and the L1 hit path (get / getValid),
 * which stays here and stays short so that it inlines. Everything after an L1 miss is a mechanism of
 * its own, wired by the runtime (runtime.ts); docs/architecture.md maps them.
 */
import { inspect } from 'node:util'
import { type Duration, parseDuration } from './duration.js'
import { handOut, shortcutFor, shortcutTag } from './entry/entry.js'
import { CacheClosedError, InvalidOptionError } from './errors.js'
import type { NodeReport } from './fleet/fleet.js'
import {
  childPath,
  MAX_NAMESPACE_DEPTH,
  type NamespaceState,
  namespaceAt,
  namespaceStamp,
  ROOT_NAMESPACE,
  relKey,
  tagStamp,
} from './keys.js'
import { NIL } from './local/slots.js'
import {
  type CacheOptions,
  type GetOptions,
  type GetOrSetOptions,
  type Loader,
  resolveLoadOptions,
  resolveOptions,
  resolveReadOptions,
  resolveWriteOptions,
  resolveWriteThroughOptions,
  type SetOptions,
  validateKey,
  validateNamespaceName,
  validateTags,
  type WriteThroughOptions,
} from './options.js'
import { CacheRuntime } from './runtime.js'
import { cloneValue } from './serialization/clone.js'
import { encode } from './serialization/codec.js'
import { hitChannel } from './stats/events.js'
import { type CacheStats, snapshot } from './stats/stats.js'
import type { DeadLetter } from './write-behind/write-behind.js'

/**
 * A cache over L1 (in-process), an optional shared L2 and an optional invalidation bus.
 * Create it with createCache(); `namespace(name)` returns a child sharing tiers and bus.
 */
export class Cache {
  private constructor(
    private readonly rt: CacheRuntime,
    private readonly ns: NamespaceState,
  ) {}

  /** @internal */
  static create(options?: CacheOptions): Cache {
    const rt = new CacheRuntime(resolveOptions(options))
    return new Cache(rt, ROOT_NAMESPACE)
  }

  /** Resolves once the bus subscription (if any) is live; until then L1 is bypassed. */
  ready(): Promise<void> {
    return this.rt.whenReady()
  }

  /**
   * The value for `key`, or undefined. With a `loader` option, a miss is loaded (read-through). With
   * `{ consistency: 'strong' }`, never a value older than L2's newest (see GetOptions).
   */
  get<T = unknown>(key: string, options?: GetOptions): Promise<T | undefined> {
    if (options !== undefined) return this.getWith<T>(key, options)
    const rt = this.rt
    // Short keys of type string need no byte count: the full check (and its error) only off the hot path;
    // a key that begins with the namespace mark is escaped there (keys.ts, relKey).
    if (
      rt.closed ||
      typeof key !== 'string' ||
      key.length === 0 ||
      key.length > 341 ||
      key.charCodeAt(0) === 1
    ) {
      return this.getChecked<T>(key)
    }
    const rel = this.ns.prefix === '' ? key : this.ns.prefix + key
    return (this.fromShortcut(rel, key) as Promise<T | undefined> | undefined) ?? this.getValid<T>(rel, key)
  }

  /**
   * The hot path, kept small so that it inlines: most hits answer from the entry's shortcut (see
   * L1Writer.store) without loading the entry itself. Undefined when the shortcut cannot answer.
   */
  private fromShortcut(rel: string, key: string): Promise<unknown> | undefined {
    const rt = this.rt
    const l1 = rt.hitPathL1
    if (l1 === undefined || !rt.coherence.trusted) return undefined
    const { coherence } = rt
    const shortcut = l1.getShortcut(rel, 2 * coherence.namespaceEpoch, 2 * coherence.stampEpoch + 1)
    if (shortcut === undefined) return undefined
    rt.counters.l1Hits++
    if (hitChannel.hasSubscribers) this.hitEvent(key)
    // Copy mode: the value, copied for this caller. Freeze mode: a promise of the frozen value.
    return rt.copiesOnRead ? Promise.resolve(cloneValue(shortcut)) : (shortcut as Promise<unknown>)
  }

  /** get() with options: a strong read, or a plain one. */
  private async getWith<T>(key: string, options: GetOptions): Promise<T | undefined> {
    const rt = this.rt
    if (rt.closed) throw new CacheClosedError()
    const read = resolveReadOptions(options)
    if (!read.strong) return this.get<T>(key)
    validateKey(key)
    const rel = relKey(this.ns, key)
    const loader = rt.options.loader
    if (loader !== undefined) {
      const opts = {
        ...resolveLoadOptions(rt.options, undefined),
        strong: true,
        unconfirmedGrace: read.unconfirmedGrace,
      }
      return rt.loads.resolve<T>(rel, key, loader as Loader<T>, opts, this.ns)
    }
    const found = await rt.strong.lookup(rel, key, rt.deadline(), read.unconfirmedGrace)
    if (found === undefined) return undefined
    if (!found.fresh) {
      // Stale: served only when L2 could not be asked and the caller's grace allows it.
      if (!found.degraded) return undefined
      rt.counters.staleServed++
    }
    return handOut(found.entry) as T
  }

  /** get() of a key the hot path did not vouch for: validated here (a rejection, not a throw). */
  private getChecked<T>(key: string): Promise<T | undefined> {
    try {
      if (this.rt.closed) throw new CacheClosedError()
      validateKey(key)
    } catch (err) {
      return Promise.reject(err)
    }
    return this.getValid<T>(relKey(this.ns, key), key)
  }

  /** get() past the shortcut: a current L1 entry (with grace, or once stamps moved), else the slow path. */
  private getValid<T>(rel: string, key: string): Promise<T | undefined> {
    const rt = this.rt
    const l1 = rt.hitPathL1
    if (l1 !== undefined && rt.coherence.trusted) {
      // The entry's slot, read in place: no L1Entry is put together for a hit.
      const slot = l1.getSlot(rel)
      if (slot !== NIL) {
        const stamps = l1.stampsAt(slot)
        const freshUntil = l1.freshUntilAt(slot)
        // L1 drops an entry at its staleUntil (or l1.ttl, if sooner): without grace, an entry L1 still holds
        // is fresh and the clock need not be read again.
        const noGrace = l1.staleUntilAt(slot) === freshUntil
        if (
          (noGrace || rt.options.clock.now() < freshUntil) &&
          rt.coherence.isCurrent(stamps.stampKeys, stamps.stampGens)
        ) {
          const value = l1.valueAt(slot)
          // Found current now: its shortcut (if it has one) answers the next hits until a stamp rises.
          if (shortcutFor(noGrace, stamps.frozen, rt.copiesOnRead))
            l1.renewShortcut(rel, shortcutTag(stamps, rt.coherence))
          rt.counters.l1Hits++
          if (hitChannel.hasSubscribers) this.hitEvent(key)
          return Promise.resolve((stamps.frozen ? value : cloneValue(value)) as T)
        }
      }
    }
    // A short key came here unchecked (get's guard): it must have a UTF-8 form before it names anything in L2.
    if (!key.isWellFormed()) return this.getChecked<T>(key)
    const loader = rt.options.loader
    if (loader === undefined) return rt.reads.get(rel) as Promise<T | undefined>
    return rt.loads.resolve<T>(
      rel,
      key,
      loader as Loader<T>,
      resolveLoadOptions(rt.options, undefined),
      this.ns,
    )
  }

  /** Cache-aside: the cached value, or the loader's (stored, and shared with concurrent callers). */
  getOrSet<T>(key: string, loader: Loader<T>, options?: GetOrSetOptions): Promise<T> {
    const rt = this.rt
    if (rt.closed) return Promise.reject(new CacheClosedError())
    try {
      validateKey(key)
      if (typeof loader !== 'function') {
        throw new InvalidOptionError('loader', 'getOrSet needs a loader function (key) => value')
      }
      const opts = resolveLoadOptions(rt.options, options)
      const rel = relKey(this.ns, key)
      // A fresh L1 hit is answered as get() answers it, unless this call could refresh it early or must
      // confirm it with L2 (the load path's business).
      if (opts.refreshAhead === 0 && !opts.strong && rt.options.earlyRefreshBeta === 0) {
        const hit = this.fromShortcut(rel, key)
        if (hit !== undefined) return hit as Promise<T>
      }
      return rt.loads.resolve<T>(rel, key, loader, opts, this.ns) as Promise<T>
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** True if a fresh value exists for `key` (in L1 or L2). Never calls a loader. */
  async has(key: string): Promise<boolean> {
    this.assertOpen()
    validateKey(key)
    const found = await this.rt.reads.lookup(relKey(this.ns, key), this.rt.deadline())
    return found?.fresh === true
  }

  /** Stores `value` in every tier and invalidates it on every other node. */
  async set(key: string, value: unknown, options?: SetOptions): Promise<void> {
    this.assertOpen()
    validateKey(key)
    const rt = this.rt
    const opts = resolveWriteOptions(rt.options, options)
    const payload = encode(value)
    await rt.writes.write(relKey(this.ns, key), value, payload, opts, this.ns, undefined, rt.deadline()).done
  }

  /**
   * Write-through: runs `writer` (the database write) and, only if it succeeds, stores what it returns in
   * every tier and invalidates it on every other node; resolves to what it returned. If it throws, no tier
   * on any node was touched. Concurrent write-throughs of a key never leave the older commit cached: with
   * `version` they are ordered by it, without it one that sees another write land meanwhile invalidates
   * the key instead of writing (see WriteThroughOptions).
   */
  async writeThrough<T>(
    key: string,
    writer: () => T | Promise<T>,
    options?: WriteThroughOptions<T>,
  ): Promise<T> {
    this.assertOpen()
    validateKey(key)
    if (typeof writer !== 'function') {
      throw new InvalidOptionError('writer', 'writeThrough needs a writer function () => the written value')
    }
    const opts = resolveWriteThroughOptions(this.rt.options, options)
    return this.rt.writeThrough.run(relKey(this.ns, key), writer, opts, this.ns)
  }

  /**
   * Write-behind: `value` is visible at once on every node, and its database write is in the durable queue
   * (Redis Streams) before this resolves; the `write` of createCache({ writeBehind }) gets it later,
   * batched, coalesced per key, in order per key, retried, dead-lettered after maxRetries.
   */
  async writeBehind(key: string, value: unknown, options?: SetOptions): Promise<void> {
    this.assertOpen()
    validateKey(key)
    const rt = this.rt
    if (rt.writeBehind === undefined) {
      throw new InvalidOptionError(
        'writeBehind',
        'writeBehind() needs createCache({ writeBehind: { write } })',
      )
    }
    const opts = resolveWriteOptions(rt.options, options)
    const payload = encode(value)
    await rt.writeBehind.accept(relKey(this.ns, key), key, this.ns, value, payload, opts)
  }

  /**
   * Resolves once every write-behind write in the queue when it was called has been written (or moved to
   * the dead letters), by this node or another; at once without write-behind. With `timeout`, rejects with
   * E_FLUSH_TIMEOUT past it.
   */
  async flush(options?: { timeout?: Duration }): Promise<void> {
    this.assertOpen()
    const timeout =
      options?.timeout === undefined
        ? Number.POSITIVE_INFINITY
        : parseDuration(options.timeout, 'timeout', { allowInfinite: true })
    await this.rt.writeBehind?.flush(timeout)
  }

  /** Write-behind's dead letters (writes that failed maxRetries + 1 times), oldest first. */
  async deadLetters(options?: { limit?: number }): Promise<DeadLetter[]> {
    this.assertOpen()
    const limit = options?.limit ?? 100
    if (!(Number.isSafeInteger(limit) && limit > 0)) {
      throw new InvalidOptionError('limit', `must be a positive integer, got ${String(limit)}`)
    }
    return (await this.rt.writeBehind?.deadLetters(limit)) ?? []
  }

  /** Puts dead letters (by id; all without ids) back into the write-behind queue; resolves to how many. */
  async redriveDeadLetters(ids?: readonly string[]): Promise<number> {
    this.assertOpen()
    return (await this.rt.writeBehind?.redrive(ids)) ?? 0
  }

  /** Deletes dead letters (by id; all without ids); resolves to how many. */
  async discardDeadLetters(ids?: readonly string[]): Promise<number> {
    this.assertOpen()
    return (await this.rt.writeBehind?.discard(ids)) ?? 0
  }

  async delete(key: string): Promise<void> {
    await this.deleteMany([key])
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    this.assertOpen()
    if (!Array.isArray(keys)) throw new InvalidOptionError('keys', 'deleteMany needs an array of keys')
    for (const key of keys) validateKey(key)
    if (keys.length === 0) return
    await this.rt.writes.deleteMany(keys.map((key) => relKey(this.ns, key)))
  }

  /** Invalidates every entry written with any of `tags`, on every node. O(1) per tag: no key scans. */
  async invalidateTags(tags: readonly string[]): Promise<void> {
    this.assertOpen()
    const valid = validateTags(tags, 'tags') ?? []
    if (valid.length === 0) return
    this.rt.counters.tagInvalidations += valid.length
    await this.rt.writes.bumpStamps(valid.map(tagStamp))
  }

  /** Invalidates every entry of this namespace (and its children), on every node. */
  async clear(): Promise<void> {
    this.assertOpen()
    this.rt.counters.clears++
    if (this.ns.path === '') this.rt.l1Writer.clear()
    await this.rt.writes.bumpStamps([namespaceStamp(this.ns.path)])
  }

  /** A child cache whose keys live under `name`, sharing this cache's tiers and bus. */
  namespace(name: string): Cache {
    validateNamespaceName(name, 'namespace')
    if (this.ns.stampKeys.length > MAX_NAMESPACE_DEPTH) {
      throw new InvalidOptionError('namespace', `namespaces nest at most ${MAX_NAMESPACE_DEPTH} deep`)
    }
    return new Cache(this.rt, namespaceAt(childPath(this.ns, name)))
  }

  stats(): CacheStats {
    return snapshot(this.rt)
  }

  /**
   * What every live node of the fleet last reported in its heartbeat (this one first, fresh), so that one
   * node can show the whole fleet's hit rates and health. Without a bus, or with fleet: false, only this
   * node. Nodes not heard from for fleet.timeout drop out.
   */
  fleet(): NodeReport[] {
    const fleet = this.rt.fleet
    if (fleet === undefined || this.rt.options.bus === undefined) {
      return fleet === undefined ? [] : fleet.view().filter((report) => report.self)
    }
    return fleet.view()
  }

  /** Stops timers, retries pending writes once, closes the store and bus. Loads in flight are not awaited. */
  async close(): Promise<void> {
    if (this.ns.path !== '') return
    await this.rt.close()
  }

  private hitEvent(key: string): void {
    hitChannel.publish({ namespace: this.rt.options.namespace, path: this.ns.path, key, tier: 'l1' })
  }

  private assertOpen(): void {
    if (this.rt.closed) throw new CacheClosedError()
  }

  /**
   * What util.inspect and console.log show: a summary, never the options as given (a store's or a bus's
   * connection options may hold credentials).
   */
  [inspect.custom](): object {
    const { options, closed } = this.rt
    const { l1 } = options
    return {
      namespace: options.namespace,
      ...(this.ns.path === '' ? {} : { path: this.ns.path }),
      l1:
        l1 === false
          ? false
          : { policy: l1.policy, maxEntries: l1.maxEntries, maxBytes: l1.maxBytes, ttl: l1.ttl },
      l2: options.l2?.name ?? false,
      bus: options.bus?.name ?? false,
      closed,
    }
  }
}

/** Creates a cache. See CacheOptions for every option and its default. */
export function createCache(options?: CacheOptions): Cache {
  return Cache.create(options)
}
