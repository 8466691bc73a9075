/**
 * The distributed lease of lock: 'distributed' (guarantee 4: at most one loader per key across the
 * fleet while its holder is alive).
 *
 * One node holds a lease in L2 (SET NX PX with a random token) and loads; the others wait for its write,
 * woken by its bus invalidation (wake(), called by the bus handler for every key written elsewhere) or
 * by polling L2 every pollInterval, which also retries the lease, so a dead holder's lease is taken over
 * once it expires. The holder releases the lease once its write has landed, so that the others find the
 * value when they wake; release is a compare-and-delete, so a holder whose lease expired and was taken
 * over cannot release the new holder's lease. A holder that outlives its lease cannot overwrite a newer
 * value either: its write is fenced by version (write-path.ts). If L2 cannot be reached there is nothing
 * to coordinate with, and the node loads by itself (guarantee 5 beats guarantee 4).
 */
import { randomBytes } from 'node:crypto'
import type { L1Entry } from '../entry/entry.js'
import { LockTimeoutError } from '../errors.js'
import type { CacheRuntime } from '../runtime.js'
import { afterLanding, type Written } from '../write/write-path.js'

export class DistributedLease {
  /** Nodes of this process waiting for another node's write of a key, by key. */
  private readonly waiters = new Map<string, Set<() => void>>()

  constructor(private readonly rt: CacheRuntime) {}

  /**
   * Runs `produce` (the load) under the key's lease, or waits for the holder's value. `stale`: what this
   * node may serve instead if waiting times out and onTimeout is 'stale'.
   */
  async run(
    rel: string,
    key: string,
    produce: () => Promise<Written | undefined>,
    stale: L1Entry | undefined,
  ): Promise<Written | undefined> {
    const rt = this.rt
    const remote = rt.remote!
    const store = remote.store
    const { leaseTtl, waitTimeout, pollInterval, onTimeout } = rt.options.distributedLock
    const leaseKey = rt.keys.lease(rel)
    const token = randomBytes(12).toString('base64url')
    // Waiting is counted in the time asked of each wait, not read from the clock: the waits are real
    // timers, and an injected (test) clock must not make them endless.
    let waited = 0
    for (;;) {
      let acquired: boolean
      try {
        acquired = await remote.call('acquireLease', () => store.acquireLease!(leaseKey, token, leaseTtl))
      } catch {
        rt.counters.l2Errors++
        return produce()
      }
      if (acquired) {
        rt.counters.leasesAcquired++
        const release = () => {
          remote.call('releaseLease', () => store.releaseLease!(leaseKey, token)).catch(() => {})
        }
        let outcome: Written | undefined
        try {
          // The previous holder may have written the value while we were waiting for the lease.
          outcome = (await rt.reads.readFresh(rel)) ?? (await produce())
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
      if (waited === 0) rt.counters.leaseWaits++
      const wait = Math.min(pollInterval, remaining)
      waited += wait
      await this.waitForWrite(rel, wait)
      const written = await rt.reads.readFresh(rel)
      if (written !== undefined) return written
    }
  }

  /** Resolves when a write of `rel` is announced on the bus, or after `ms`, whichever comes first. */
  waitForWrite(rel: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let waiters = this.waiters.get(rel)
      if (waiters === undefined) {
        waiters = new Set()
        this.waiters.set(rel, waiters)
      }
      const set = waiters
      const wake = () => {
        clearTimeout(timer)
        set.delete(wake)
        if (set.size === 0 && this.waiters.get(rel) === set) this.waiters.delete(rel)
        resolve()
      }
      const timer = setTimeout(wake, ms)
      set.add(wake)
    })
  }

  /** Another node wrote `rel`: its waiters re-read L2 now. */
  wake(rel: string): void {
    const waiters = this.waiters.get(rel)
    if (waiters !== undefined) for (const wake of [...waiters]) wake()
  }

  /** How many waits for `rel` are pending (for benchmarks). */
  waiting(rel: string): number {
    return this.waiters.get(rel)?.size ?? 0
  }
}
