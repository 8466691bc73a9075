/**
 * The load path: reads with a loader (getOrSet, and get with the `loader` option).
 *
 * - A fresh value answers at once, and may start a background refresh: refreshAhead (past that fraction
 *   of the TTL) or early refresh (XFetch: with a probability rising towards expiry and with how long the
 *   loader took; Vattani, Chierichetti & Lowenstein, "Optimal Probabilistic Cache Stampede Prevention",
 *   VLDB 2015).
 * - A stale value within grace answers once the soft timeout has passed without the loader finishing
 *   (soft 0: at once), and whenever the loader fails (fail-safe); after such a failure the key's loader
 *   is not called again for failSafeThrottle.
 * - With nothing to serve, the caller waits for the loader up to the hard timeout.
 * - Single flight (guarantee 4): at most one load per key runs in this process, and callers share it;
 *   with lock: 'distributed', the lease (stampede/lease.ts) makes it one per fleet.
 * - A load's version is taken before the loader starts, so that a write made elsewhere while it loaded
 *   wins over it (the write path fences it). The load resolves as soon as the value is known; this node
 *   keeps sharing it with new callers, and its fill token stays valid, until its write has landed.
 */
import { handOut, type L1Entry } from '../entry/entry.js'
import { LoaderTimeoutError } from '../errors.js'
import type { NamespaceState } from '../keys.js'
import type { Loader, LoadOptions } from '../options.js'
import type { CacheRuntime } from '../runtime.js'
import { encode } from '../serialization/codec.js'
import { SingleFlight } from '../stampede/single-flight.js'
import { loadChannel, staleChannel } from '../stats/events.js'
import { within } from '../timeouts.js'
import type { Written } from '../write/write-path.js'

export class LoadPath {
  readonly flights = new SingleFlight<Written | undefined>()
  /** When each key's loader last failed (for failSafeThrottle). */
  private readonly failures = new Map<string, number>()

  constructor(private readonly rt: CacheRuntime) {}

  /**
   * The read path with a loader: fresh value (maybe refreshing early in the background), else a stale
   * value within grace (waiting up to the soft timeout for the loader), else the loader (up to the hard
   * timeout). A loader failure is answered by the stale value when there is one (fail-safe).
   */
  async resolve<T>(
    rel: string,
    key: string,
    loader: Loader<T>,
    opts: LoadOptions,
    ns: NamespaceState,
  ): Promise<T | undefined> {
    const rt = this.rt
    const deadline = rt.deadline()
    const found = opts.strong
      ? await rt.strong.lookup(rel, key, deadline, opts.unconfirmedGrace)
      : await rt.reads.lookup(rel, deadline)
    const now = rt.options.clock.now()
    if (found?.fresh) {
      if (this.refreshDue(found.entry, opts.refreshAhead, now) && !this.flights.has(rel)) {
        rt.counters.refreshes++
        this.load(rel, key, loader, opts, ns, found.entry).catch(() => {})
      }
      return handOut(found.entry) as T
    }
    const stale = found !== undefined && now < found.entry.staleUntil ? found.entry : undefined
    if (stale !== undefined) {
      const lastFailure = this.failures.get(rel)
      let outcome: Awaited<ReturnType<typeof within<Written | undefined>>> | undefined
      if (lastFailure === undefined || now - lastFailure >= rt.options.failSafeThrottle) {
        outcome = await within(this.load(rel, key, loader, opts, ns, stale), opts.soft)
        if (outcome.status === 'done' && outcome.value !== undefined) {
          await this.landed(outcome.value, deadline)
          return handOut(outcome.value.entry) as T
        }
      }
      rt.counters.staleServed++
      if (staleChannel.hasSubscribers) {
        // Not loaded: the loader failed, or failed recently (throttled); or it is still running.
        const reason = outcome === undefined || outcome.status === 'failed' ? 'fail-safe' : 'grace'
        rt.reads.event(staleChannel, rel, { reason })
      }
      return handOut(stale) as T
    }
    const outcome = await within(this.load(rel, key, loader, opts, ns, undefined), opts.hard)
    if (outcome.status === 'timeout') throw new LoaderTimeoutError(key, opts.hard)
    if (outcome.status === 'failed') throw outcome.error
    if (outcome.value === undefined) return undefined
    await this.landed(outcome.value, deadline)
    return handOut(outcome.value.entry) as T
  }

  /** Forgets loader failures older than failSafeThrottle (maintenance). */
  prune(now: number): void {
    for (const [rel, at] of this.failures) {
      if (now - at >= this.rt.options.failSafeThrottle) this.failures.delete(rel)
    }
  }

  /**
   * Waits, within the caller's L2 budget, for a loaded value to land, so that this node reads it back
   * afterwards (read-your-writes). The write itself has its own budget and goes on if the caller stops
   * waiting: a slow L2 delays no caller past its deadline (guarantee 5).
   */
  private async landed(written: Written, deadline: number | undefined): Promise<void> {
    if (deadline === undefined) await written.done.catch(() => {})
    else await within(written.done, deadline - Date.now())
  }

  /** refreshAhead: past that fraction of the TTL. earlyRefresh (XFetch): with probability rising towards expiry. */
  private refreshDue(entry: L1Entry, refreshAhead: number, now: number): boolean {
    const ttl = entry.freshUntil - entry.writtenAt
    if (refreshAhead > 0 && now >= entry.writtenAt + refreshAhead * ttl) return true
    const { earlyRefreshBeta: beta, random } = this.rt.options
    return beta > 0 && entry.loadMs > 0 && now - entry.loadMs * beta * Math.log(random()) >= entry.freshUntil
  }

  /**
   * Runs the loader at most once per key in this process (and, with lock: 'distributed', in the fleet)
   * and writes its value through the tiers (see the module comment).
   */
  private load<T>(
    rel: string,
    key: string,
    loader: Loader<T>,
    opts: LoadOptions,
    ns: NamespaceState,
    stale: L1Entry | undefined,
  ): Promise<Written | undefined> {
    const rt = this.rt
    const landing = (written: Written | undefined) => written?.done
    return this.flights.run(
      rel,
      () => {
        const version = rt.coherence.versions.next()
        // The fill token must stay valid until the write has decided whether the value may enter L1.
        return rt.coherence.fill((token) => {
          const produce = () => this.runLoader(rel, key, loader, opts, ns, token, version)
          return rt.lease === undefined ? produce() : rt.lease.run(rel, key, produce, stale)
        }, landing)
      },
      landing,
    )
  }

  private async runLoader<T>(
    rel: string,
    key: string,
    loader: Loader<T>,
    opts: LoadOptions,
    ns: NamespaceState,
    token: number,
    version: number,
  ): Promise<Written | undefined> {
    const rt = this.rt
    const { counters, options } = rt
    counters.loads++
    const started = options.clock.now()
    let value: T
    try {
      value = await loader(key)
    } catch (err) {
      counters.loaderErrors++
      this.failures.set(rel, options.clock.now())
      if (loadChannel.hasSubscribers) {
        rt.reads.event(loadChannel, rel, { ms: options.clock.now() - started, outcome: 'error', error: err })
      }
      throw err
    }
    this.failures.delete(rel)
    const loadMs = options.clock.now() - started
    if (loadChannel.hasSubscribers) {
      rt.reads.event(loadChannel, rel, { ms: loadMs, outcome: value === undefined ? 'undefined' : 'value' })
    }
    if (value === undefined) return undefined
    // A fresh L2 budget: the caller's may have been spent while the loader ran, and a write that cannot
    // even start would leave the value unshared (and, under a distributed lock, let the next node load).
    return rt.writes.write(rel, value, encode(value), opts, ns, { token, version, loadMs }, rt.deadline())
  }
}
