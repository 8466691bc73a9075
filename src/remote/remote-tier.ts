import { CoherentError, CorruptEntryError } from '../errors.js'
import type {
  ConditionalWrite,
  EntryHead,
  RemoteStore,
  StoredEntry,
  WriteCondition,
} from '../stores/store.js'
import { Admission, type CircuitBreaker, CircuitOpenError } from './circuit-breaker.js'

/** An L2 call took longer than `l2Timeout`. The cache treats it like any L2 failure and degrades. */
export class L2TimeoutError extends CoherentError {
  constructor(operation: string, timeoutMs: number) {
    super('E_L2_TIMEOUT', `L2 ${operation} did not answer within ${timeoutMs} ms`)
  }
}

/**
 * The policy wrapper around one dumb store (guarantee 5): every call is bounded by a timeout, and goes
 * through a circuit breaker, so that once the store is known to be down calls skip it without waiting
 * at all; when the store reports that its connection is back, the breaker is probed at once instead of
 * after its open duration. A cache operation that makes several L2 calls (a read, a stamp lookup, a
 * write) passes one `deadline` (epoch ms) to all of them, so that together they wait at most
 * `l2Timeout`. Stores stay free of policy; the cache only talks to this.
 *
 * One RemoteTier guards one store, so a store made of members (shardedStore) gives each member its own
 * and sets `guardsMembers`: the cache then wraps it with a timeout but no breaker of its own, and one
 * failing member cannot stop the others.
 *
 * Every cache read that misses L1 comes through here, so the common calls avoid a closure and an async
 * frame per call: they check the budget and the breaker, start the store call, and watch it (see watch()).
 */
export class RemoteTier {
  private readonly stopReconnectWatch: (() => void) | undefined

  private readonly plausible: ((n: number) => boolean) | undefined

  /**
   * @param extras.probe a cheap read of the store (e.g. one stamp): when the store reports that its
   *   connection is back (RemoteStore.onReconnect), it runs at once as the breaker's probe.
   * @param extras.plausible which versions and generations the store's write replies may carry; any other
   *   reply fails the call with CorruptEntryError (an answer, not an outage, for the breaker).
   */
  constructor(
    readonly store: RemoteStore,
    private readonly timeoutMs: number,
    readonly breaker: CircuitBreaker | undefined,
    extras: { probe?: () => Promise<unknown>; plausible?: (n: number) => boolean } = {},
  ) {
    const { probe, plausible } = extras
    this.plausible = plausible
    this.stopReconnectWatch = probe === undefined ? undefined : store.onReconnect?.(() => this.probe(probe))
  }

  /** Stops watching the store's reconnects (the store itself is closed by its owner). */
  close(): void {
    this.stopReconnectWatch?.()
  }

  /** The deadline for a cache operation starting now. */
  deadline(): number {
    return Date.now() + this.timeoutMs
  }

  get(key: string, deadline?: number): Promise<StoredEntry | undefined> {
    const timeoutMs = this.budget(deadline)
    const admission = this.admit(timeoutMs)
    if (admission !== Admission.Call && admission !== Admission.Probe) return this.refuse('get', admission)
    let call: Promise<StoredEntry | undefined>
    try {
      call = this.store.get(key)
    } catch (err) {
      return this.failedToStart(admission, err)
    }
    return this.watch('get', admission, timeoutMs, call)
  }

  set(key: string, bytes: Uint8Array, version: number, ttlMs: number, deadline?: number): Promise<number> {
    // The store gets the moment this call stops waiting: a copy that reaches it later must not apply.
    return this.call('set', (end) => this.checked(this.store.set(key, bytes, version, ttlMs, end)), deadline)
  }

  setIfNewer(
    key: string,
    bytes: Uint8Array,
    version: number,
    ttlMs: number,
    deadline?: number,
  ): Promise<number | undefined> {
    const start = () => this.checked(this.store.setIfNewer(key, bytes, version, ttlMs))
    return this.call('setIfNewer', start, deadline)
  }

  delete(key: string, version: number, tombstoneTtlMs: number, deadline?: number): Promise<number> {
    const start = (end: number) => this.checked(this.store.delete(key, version, tombstoneTtlMs, end))
    return this.call('delete', start, deadline)
  }

  deleteIfNewer(
    key: string,
    version: number,
    tombstoneTtlMs: number,
    deadline?: number,
  ): Promise<number | undefined> {
    const start = () => this.checked(this.store.deleteIfNewer(key, version, tombstoneTtlMs))
    return this.call('deleteIfNewer', start, deadline)
  }

  /**
   * The version under `key` and the generations of `stampKeys` (RemoteStore.head). A store without
   * `head` is asked with a full get and getStamps, which cannot tell a tombstone from nothing.
   */
  head(key: string, stampKeys: readonly string[], deadline?: number): Promise<EntryHead> {
    const store = this.store
    if (store.head !== undefined) {
      // The path of every strong read: like get(), no closure.
      const timeoutMs = this.budget(deadline)
      const admission = this.admit(timeoutMs)
      if (admission !== Admission.Call && admission !== Admission.Probe) return this.refuse('head', admission)
      let call: Promise<EntryHead>
      try {
        call = store.head(key, stampKeys)
      } catch (err) {
        return this.failedToStart(admission, err)
      }
      return this.watch('head', admission, timeoutMs, call)
    }
    const start = () =>
      Promise.all([store.get(key), store.getStamps(stampKeys)]).then(
        ([entry, stamps]): EntryHead => ({ version: entry?.version, deleted: false, stamps }),
      )
    return this.call('head', start, deadline)
  }

  /** Whether the store has setIf (ordered and conditional writes). */
  get conditional(): boolean {
    return this.store.setIf !== undefined
  }

  /** RemoteStore.setIf; only for a store that has it (see `conditional`). */
  setIf(
    key: string,
    bytes: Uint8Array,
    version: number,
    ttlMs: number,
    condition: WriteCondition,
    deadline?: number,
  ): Promise<ConditionalWrite> {
    const start = () =>
      this.store.setIf!(key, bytes, version, ttlMs, condition).then(async (done) => {
        await this.checked(Promise.resolve(done.version))
        return done
      })
    return this.call('setIf', start, deadline)
  }

  getStamps(keys: readonly string[], deadline?: number): Promise<number[]> {
    return this.call('getStamps', () => this.store.getStamps(keys), deadline)
  }

  bumpStamps(
    keys: readonly string[],
    ttlMs: number,
    proposed: number,
    deadline?: number,
    raise = false,
  ): Promise<number[]> {
    const start = () => this.checked(this.store.bumpStamps(keys, ttlMs, proposed, raise))
    return this.call('bumpStamps', start, deadline)
  }

  /** `reply`, unless it carries a number that `plausible` refuses (then a CorruptEntryError). */
  private checked<T extends number | number[] | undefined>(reply: Promise<T>): Promise<T> {
    const plausible = this.plausible
    if (plausible === undefined) return reply
    return reply.then((value) => {
      const numbers = Array.isArray(value) ? value : value === undefined ? [] : [value]
      for (const n of numbers) {
        if (!plausible(n)) throw new CorruptEntryError(`L2 answered a write with an impossible number: ${n}`)
      }
      return value
    })
  }

  /**
   * Runs a store call under the breaker and the timeout (the sooner of `l2Timeout` and `deadline`).
   * Past the deadline it fails at once without touching the store or the breaker. `start` gets the moment
   * the call stops waiting (epoch ms), for stores that must not apply a write that arrives after it.
   */
  call<T>(operation: string, start: (end: number) => Promise<T>, deadline?: number): Promise<T> {
    const timeoutMs = this.budget(deadline)
    const admission = this.admit(timeoutMs)
    if (admission !== Admission.Call && admission !== Admission.Probe)
      return this.refuse(operation, admission)
    let call: Promise<T>
    try {
      call = start(Date.now() + timeoutMs)
    } catch (err) {
      return this.failedToStart(admission, err)
    }
    return this.watch(operation, admission, timeoutMs, call)
  }

  /**
   * The store says its connection is back: probe it now (through `start`, a cheap read) instead of
   * waiting out the breaker's open duration. Its success closes the circuit.
   */
  probe(start: () => Promise<unknown>): void {
    const breaker = this.breaker
    if (breaker === undefined || breaker.state === 'closed') return
    breaker.probeNow()
    this.call('probe', start).catch(() => {})
  }

  private budget(deadline: number | undefined): number {
    return deadline === undefined ? this.timeoutMs : Math.min(this.timeoutMs, deadline - Date.now())
  }

  /** Admission.Call or Probe to go ahead; -1 when the budget is spent (neither store nor breaker touched). */
  private admit(timeoutMs: number): Admission | -1 {
    if (timeoutMs <= 0) return -1
    return this.breaker === undefined ? Admission.Call : this.breaker.admit()
  }

  private refuse(operation: string, admission: Admission | -1): Promise<never> {
    return Promise.reject(
      admission === -1
        ? new L2TimeoutError(operation, this.timeoutMs)
        : new CircuitOpenError(this.breaker!.name),
    )
  }

  private failedToStart(admission: Admission, err: unknown): Promise<never> {
    this.breaker?.record(admission, false)
    return Promise.reject(err)
  }

  /** Settles with `call`, or fails at `timeoutMs`; records the outcome with the breaker. */
  private watch<T>(operation: string, admission: Admission, timeoutMs: number, call: Promise<T>): Promise<T> {
    const breaker = this.breaker
    const end = Date.now() + timeoutMs
    return new Promise<T>((resolve, reject) => {
      let settled = false
      const expire = () => {
        // A timer can fire up to a millisecond before Date.now() reaches `end`. Deadlines are read with
        // Date.now(), so wait that out: once a call timed out, its deadline has passed for the next one too.
        const left = end - Date.now()
        if (left > 0) {
          timer = setTimeout(expire, left)
          return
        }
        settled = true
        breaker?.record(admission, false)
        reject(new L2TimeoutError(operation, this.timeoutMs))
      }
      let timer = setTimeout(expire, timeoutMs)
      call.then(
        (value) => {
          if (settled) return
          clearTimeout(timer)
          breaker?.record(admission, true)
          resolve(value)
        },
        (err) => {
          if (settled) return
          clearTimeout(timer)
          // Garbage in the store is not an outage: the store answered (guarantee 7).
          breaker?.record(admission, err instanceof CorruptEntryError)
          reject(err)
        },
      )
    })
  }
}
