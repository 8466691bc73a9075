import type { Bus } from '../bus/bus.js'
import { CoherentError, CorruptEntryError } from '../errors.js'
import type {
  Announcement,
  ConditionalWrite,
  EntryHead,
  EntryStamps,
  RemoteStore,
  StampedWrite,
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
 * The calls in flight share one timer: they wait in a list ordered by the moment each stops waiting, and
 * the timer is set for the first of them (a timer and a closure per call cost about a tenth of L2 hit
 * throughput in bench:l2).
 */
export class RemoteTier {
  private readonly stopReconnectWatch: (() => void) | undefined

  /** The calls in flight (see watch()), first to stop waiting first; `last` is where new ones go. */
  private first: Watched | undefined = undefined
  private last: Watched | undefined = undefined
  /** The shared timer, while some call is in flight, and when it is due (epoch ms). */
  private timer: ReturnType<typeof setTimeout> | undefined = undefined
  private timerDue = 0

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

  /** Whether the store reads an entry's stamps as it writes it (RemoteStore.setStamped). */
  get stamped(): boolean {
    return this.store.setStamped !== undefined
  }

  /** Whether the store publishes `bus`'s invalidations with its writes (RemoteStore.canAnnounce). */
  canAnnounce(bus: Bus): boolean {
    return this.store.canAnnounce?.(bus) ?? false
  }

  /** RemoteStore.setStamped; only for a store that has it (see `stamped`). Its numbers are checked. */
  setStamped(
    key: string,
    bytes: Uint8Array,
    version: number,
    ttlMs: number,
    stamps: EntryStamps,
    deadline?: number,
    announce?: Announcement,
  ): Promise<StampedWrite> {
    const start = (end: number) =>
      this.store.setStamped!(key, bytes, version, ttlMs, stamps, end, announce).then((done) => {
        this.assertPlausible(done.version)
        for (const gen of done.gens) this.assertPlausible(gen)
        return done
      })
    return this.call('set', start, deadline)
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

  delete(
    key: string,
    version: number,
    tombstoneTtlMs: number,
    deadline?: number,
    announce?: Announcement,
  ): Promise<number> {
    const start = (end: number) =>
      this.checked(this.store.delete(key, version, tombstoneTtlMs, end, announce))
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
      this.store.setIf!(key, bytes, version, ttlMs, condition).then((done) => {
        this.assertPlausible(done.version)
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
    announce?: readonly Announcement[],
  ): Promise<number[]> {
    const start = () => this.checked(this.store.bumpStamps(keys, ttlMs, proposed, raise, announce))
    return this.call('bumpStamps', start, deadline)
  }

  /** `reply`, unless it carries a number that `plausible` refuses (then a CorruptEntryError). */
  private checked<T extends number | number[] | undefined>(reply: Promise<T>): Promise<T> {
    if (this.plausible === undefined) return reply
    return reply.then((value) => {
      if (Array.isArray(value)) for (const n of value) this.assertPlausible(n)
      else if (value !== undefined) this.assertPlausible(value)
      return value
    })
  }

  /** Throws a CorruptEntryError for a number in a write's reply that `plausible` refuses. */
  private assertPlausible(n: number): void {
    if (this.plausible !== undefined && !this.plausible(n)) {
      throw new CorruptEntryError(`L2 answered a write with an impossible number: ${n}`)
    }
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

  /**
   * Settles with `call`, or fails at `timeoutMs`; records the outcome with the breaker. The call waits in
   * the list of calls in flight until either happens; the shared timer is due for the first of the list.
   */
  private watch<T>(operation: string, admission: Admission, timeoutMs: number, call: Promise<T>): Promise<T> {
    const watched = new Watched(operation, admission, Date.now() + timeoutMs)
    const settled = new Promise<T>((resolve, reject) => {
      watched.resolve = resolve as (value: unknown) => void
      watched.reject = reject
    })
    this.enlist(watched)
    call.then(
      (value) => this.answered(watched, value),
      (err) => this.failed(watched, err),
    )
    return settled
  }

  private answered(watched: Watched, value: unknown): void {
    if (watched.done) return
    this.delist(watched)
    this.breaker?.record(watched.admission, true)
    watched.resolve(value)
  }

  private failed(watched: Watched, err: unknown): void {
    if (watched.done) return
    this.delist(watched)
    // Garbage in the store is not an outage: the store answered (guarantee 7).
    this.breaker?.record(watched.admission, err instanceof CorruptEntryError)
    watched.reject(err)
  }

  /** Adds a call to the list, in order of `end` (nearly always last), and makes the timer due for it. */
  private enlist(watched: Watched): void {
    let before = this.last
    while (before !== undefined && before.end > watched.end) before = before.prev
    const after = before === undefined ? this.first : before.next
    watched.prev = before
    watched.next = after
    if (before === undefined) this.first = watched
    else before.next = watched
    if (after === undefined) this.last = watched
    else after.prev = watched
    if (this.timer === undefined || watched.end < this.timerDue) this.arm(watched.end)
  }

  /** Takes a settled call out of the list; once the list is empty, no timer is left behind. */
  private delist(watched: Watched): void {
    watched.done = true
    const { prev, next } = watched
    if (prev === undefined) this.first = next
    else prev.next = next
    if (next === undefined) this.last = prev
    else next.prev = prev
    watched.prev = watched.next = undefined
    if (this.first === undefined && this.timer !== undefined) {
      clearTimeout(this.timer)
      this.timer = undefined
    }
  }

  private arm(due: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timerDue = due
    this.timer = setTimeout(this.expire, Math.max(0, due - Date.now()))
  }

  /**
   * The shared timer: fails every call whose time is up, then is due again for the first one left. A timer
   * can fire up to a millisecond before Date.now() reaches its due time; deadlines are read with
   * Date.now(), so a call fails only once Date.now() has reached its end: once a call timed out, its
   * deadline has passed for the next call of its operation too.
   */
  private readonly expire = (): void => {
    this.timer = undefined
    const now = Date.now()
    let watched = this.first
    while (watched !== undefined && watched.end <= now) {
      const next = watched.next
      this.delist(watched)
      this.breaker?.record(watched.admission, false)
      watched.reject(new L2TimeoutError(watched.operation, this.timeoutMs))
      watched = next
    }
    if (this.first !== undefined && this.timer === undefined) this.arm(this.first.end)
  }
}

/** A store call in flight (RemoteTier.watch): settled by the store's answer or by the shared timer. */
class Watched {
  prev: Watched | undefined = undefined
  next: Watched | undefined = undefined
  done = false
  resolve: (value: unknown) => void = noop
  reject: (err: unknown) => void = noop

  constructor(
    readonly operation: string,
    readonly admission: Admission,
    /** When the call stops waiting (epoch ms). */
    readonly end: number,
  ) {}
}

function noop(): void {}
