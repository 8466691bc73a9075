import { CoherentError } from '../errors.js'
import type { RemoteStore, StoredEntry } from '../stores/store.js'
import type { CircuitBreaker } from './circuit-breaker.js'

/** An L2 call took longer than `l2Timeout`. The cache treats it like any L2 failure and degrades. */
export class L2TimeoutError extends CoherentError {
  constructor(operation: string, timeoutMs: number) {
    super('E_L2_TIMEOUT', `L2 ${operation} did not answer within ${timeoutMs} ms`)
  }
}

/**
 * The policy wrapper around a dumb store: every call is bounded by a timeout, and goes through a circuit
 * breaker, so that once L2 is known to be down calls skip it without waiting at all. A cache operation
 * that makes several L2 calls (a read, a stamp lookup, a write) passes one `deadline` (epoch ms) to all
 * of them, so that together they wait at most `l2Timeout`. Stores stay free of policy; the cache only
 * talks to this.
 */
export class RemoteTier {
  constructor(
    readonly store: RemoteStore,
    private readonly timeoutMs: number,
    readonly breaker: CircuitBreaker | undefined,
  ) {}

  /** The deadline for a cache operation starting now. */
  deadline(): number {
    return Date.now() + this.timeoutMs
  }

  get(key: string, deadline?: number): Promise<StoredEntry | undefined> {
    return this.call('get', () => this.store.get(key), deadline)
  }

  set(key: string, bytes: Uint8Array, version: number, ttlMs: number, deadline?: number): Promise<number> {
    return this.call('set', () => this.store.set(key, bytes, version, ttlMs), deadline)
  }

  setIfNewer(
    key: string,
    bytes: Uint8Array,
    version: number,
    ttlMs: number,
    deadline?: number,
  ): Promise<number | undefined> {
    return this.call('setIfNewer', () => this.store.setIfNewer(key, bytes, version, ttlMs), deadline)
  }

  delete(key: string, version: number, tombstoneTtlMs: number, deadline?: number): Promise<number> {
    return this.call('delete', () => this.store.delete(key, version, tombstoneTtlMs), deadline)
  }

  getStamps(keys: readonly string[], deadline?: number): Promise<number[]> {
    return this.call('getStamps', () => this.store.getStamps(keys), deadline)
  }

  bumpStamps(keys: readonly string[], ttlMs: number, deadline?: number): Promise<number[]> {
    return this.call('bumpStamps', () => this.store.bumpStamps(keys, ttlMs), deadline)
  }

  /**
   * Runs a store call under the breaker and the timeout (the sooner of `l2Timeout` and `deadline`).
   * Past the deadline it fails at once without touching the store or the breaker.
   */
  call<T>(operation: string, start: () => Promise<T>, deadline?: number): Promise<T> {
    const timeoutMs =
      deadline === undefined ? this.timeoutMs : Math.min(this.timeoutMs, deadline - Date.now())
    if (timeoutMs <= 0) return Promise.reject(new L2TimeoutError(operation, this.timeoutMs))
    const breaker = this.breaker
    const bounded = () => this.bounded(operation, start, timeoutMs)
    return breaker === undefined ? bounded() : breaker.run(bounded)
  }

  private bounded<T>(operation: string, start: () => Promise<T>, timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new L2TimeoutError(operation, this.timeoutMs)), timeoutMs)
      let call: Promise<T>
      try {
        call = start()
      } catch (err) {
        clearTimeout(timer)
        reject(err)
        return
      }
      call.then(
        (value) => {
          clearTimeout(timer)
          resolve(value)
        },
        (err) => {
          clearTimeout(timer)
          reject(err)
        },
      )
    })
  }
}
