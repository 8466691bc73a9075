import { hostname } from 'node:os'
import type { Bus } from './bus/bus.js'
import { type Clock, systemClock } from './clock.js'
import { MAX_TAGS } from './coherence/envelope.js'
import { type Duration, describe, MAX_TIMER_MS, parseDuration } from './duration.js'
import { InvalidKeyError, InvalidOptionError } from './errors.js'
import type { EvictionPolicy } from './local/types.js'
import type { RemoteStore } from './stores/store.js'

export type Loader<T = unknown> = (key: string) => T | Promise<T>

/*
 * Every option of the cache: its type (one TSDoc'd interface per group, with @default), its default, and
 * its validation at createCache (E_INVALID_OPTION names the option and what it takes), plus the per-call
 * options of writes and loads. Long because it is the one place where each option is documented,
 * defaulted and checked; splitting it by group would spread the defaults and the messages apart.
 */

/** Options of the in-process tier. */
export interface L1Options {
  /** At most this many entries. @default 10_000 (when maxBytes is not given either) */
  maxEntries?: number
  /** At most this many bytes of encoded values. */
  maxBytes?: number
  /** Eviction policy. @default 'tinylfu' */
  policy?: EvictionPolicy
  /**
   * The longest an entry stays in L1, whatever its TTL: the hard bound on staleness if bus messages are
   * lost. @default min(ttl, 1 minute) with an L2; without one, each entry's own TTL
   */
  ttl?: Duration
  /** How often expired entries are swept. @default '1s' */
  sweepInterval?: Duration
  /**
   * How callers are kept from changing each other's values. 'copy': every read returns a fresh deep copy.
   * 'freeze': values made only of plain objects, arrays and primitives are deep-frozen once and shared
   * (reads cost nothing; mutating one throws a TypeError in strict mode); other values are copied.
   * @default 'copy'
   */
  isolation?: 'copy' | 'freeze'
}

export interface DistributedLockOptions {
  /** How long a lease lasts if its holder dies (the holder releases it as soon as it has written). @default '5s' */
  leaseTtl?: Duration
  /** How long a node waits for another node's load before acting on its own. @default '10s' */
  waitTimeout?: Duration
  /** How often a waiting node re-reads L2 and retries the lease; a bus notification wakes it sooner. @default '100ms' */
  pollInterval?: Duration
  /** What a waiter does past waitTimeout: load by itself, or serve its stale value if it has one. @default 'load' */
  onTimeout?: 'load' | 'stale'
}

/** One write as write-behind hands it to `write`: the newest value of its key in the batch. */
export interface WriteBehindItem<T = unknown> {
  /** The key given to writeBehind (relative to its namespace). */
  readonly key: string
  /** The namespace path it was written in ('' for the root, 'users' for cache.namespace('users')). */
  readonly namespace: string
  readonly value: T
  /**
   * The order of the write among the writes of its key: increasing in the order they were accepted.
   * A re-driven dead letter keeps its own, so a `write` that stores it with the row (`UPDATE ... WHERE
   * version < $1`) never lets an old value replace a newer one.
   */
  readonly version: number
  /** When writeBehind accepted it (epoch ms, by the queue's clock). */
  readonly acceptedAt: number
  /** 1 for the first try, 2 for the first retry, ... */
  readonly attempt: number
}

/**
 * Writes a batch to the database. Resolves when the batch is written; to report a partial failure it
 * resolves to the items (or keys) it could not write: those are retried, the rest are done. Throwing
 * fails the whole batch.
 */
export type WriteBehindWriter = (batch: WriteBehindItem[], info: { partition: number }) => unknown

export interface WriteBehindOptions {
  /** Writes a batch to the database (see WriteBehindWriter). */
  write: WriteBehindWriter
  /** At most this many keys per batch. @default 100 */
  batchSize?: number
  /** How long a partial batch waits to fill (and coalesce) before it is written. @default '1s' */
  flushInterval?: Duration
  /** Retries of a failed write before it moves to the dead letters. @default 10 */
  maxRetries?: number
  /** Retry delays: exponential from `initial` to `max`, with jitter. @default { initial: '200ms', max: '30s' } */
  retryDelay?: { initial?: Duration; max?: Duration }
  /** How many partitions this node writes at once (one batch in flight per partition). @default 4 */
  concurrency?: number
  /**
   * Streams the queue is spread over (by key hash; on a Redis Cluster they spread over the shards). Every
   * node must use the same number; drain the queue (flush) before changing it. @default 16
   */
  partitions?: number
  /**
   * How long a node's claim on a partition lasts unless renewed: when a node dies, its partitions (and
   * what it had read but not written) pass to a live node after this long. @default '10s'
   */
  leaseTtl?: Duration
  /** How long close() waits for the queue to drain. @default '10s' */
  closeTimeout?: Duration
}

export interface CacheOptions {
  /** Prefixes every key in L2 and names the bus channel. Letters, digits, '_', '-', '.'. @default 'coherent' */
  namespace?: string
  /** Default TTL of entries. @default '5m' */
  ttl?: Duration
  /** Spread each TTL by up to ±jitter (0..1) so entries written together do not expire together. @default 0 */
  jitter?: number
  /** The in-process tier; `false` disables it. @default { maxEntries: 10_000, policy: 'tinylfu' } */
  l1?: L1Options | false
  /** The shared tier: memoryStore(), redisStore(...). Omit for a process-local cache. */
  l2?: RemoteStore
  /** The invalidation bus: memoryBus() within one process, redisBus(...) across processes. */
  bus?: Bus
  /** How long past expiry a value may still be served while it is refreshed. @default 0 */
  grace?: Duration
  /** Stampede scope. @default 'local' */
  lock?: 'local' | 'distributed'
  /** Read-through loader used by get() on a miss. */
  loader?: Loader
  /**
   * Upper bound on every L2 call; past it the call counts as failed and the cache degrades. Also the
   * longest a hung Redis (connections open, no answers) holds a call before the breaker opens.
   * @default '100ms'
   */
  l2Timeout?: Duration
  /**
   * Circuit breaker around L2 and around bus publishes: after `failureThreshold` consecutive failures,
   * calls skip Redis for `openDuration`, then one probe decides. `false` disables it.
   * @default { failureThreshold: 5, openDuration: '2s' }
   */
  circuitBreaker?: { failureThreshold?: number; openDuration?: Duration } | false
  /**
   * Loader timeouts. Past `soft`, a caller that has a stale value (within grace) gets it and the loader
   * finishes in the background; past `hard`, a caller without one gets E_LOADER_HARD_TIMEOUT (the loader
   * still finishes and fills the cache). @default { soft: 0, hard: Infinity } (soft 0: stale at once)
   */
  loaderTimeout?: { soft?: Duration; hard?: Duration }
  /**
   * How many writes (and invalidations) failed against an unreachable Redis may wait for their retry.
   * Past it, they are all replaced by one clear() of the whole cache, applied here at once and on every
   * node once Redis is back: memory stays bounded in a long outage, nobody serves what those writes
   * replaced, and the values they wrote are dropped (counted in stats().pendingDropped). @default 10_000
   */
  maxPendingWrites?: number
  /** After a loader failure answered by a stale value, don't call that loader again for this long. @default '10s' */
  failSafeThrottle?: Duration
  /** Refresh in the background once this fraction of the TTL has passed (0 < x < 1); 0 disables. @default 0 */
  refreshAhead?: number
  /**
   * Probabilistic early refresh (XFetch, Vattani et al. 2015): a read shortly before expiry refreshes
   * with a probability that grows as expiry nears and with how long the loader took, so hot keys are
   * refreshed by one request instead of expiring under all of them. `beta` > 1 refreshes earlier.
   * @default false
   */
  earlyRefresh?: { beta?: number } | false
  /** With lock: 'distributed': lease and waiting. */
  distributedLock?: DistributedLockOptions
  /**
   * The fleet view (cache.fleet()): each node publishes a heartbeat on the bus every `interval`; nodes not
   * heard from for `timeout` drop out. `name` names this node in it. `false`: no heartbeats.
   * @default { interval: '5s', timeout: 3 × interval, name: '<hostname>:<pid>' }
   */
  fleet?: { interval?: Duration; timeout?: Duration; name?: string } | false
  /** Time source (inject a ManualClock in tests). @default Date.now */
  clock?: Clock
  /** Random source in [0, 1) used for jitter. @default Math.random */
  random?: () => number
  /**
   * Write-behind: `writeBehind(key, value)` writes the cache at once and queues the database write, which
   * `write` receives in batches. Durable with redisStore (Redis Streams), in-process (not durable) with
   * memoryStore or no L2; shardedStore and memcachedStore have no queue.
   */
  writeBehind?: WriteBehindOptions
}

/** Options of one write (set, and the writes of getOrSet's loads). */
export interface SetOptions {
  /** TTL of this entry. @default the cache ttl */
  ttl?: Duration
  /** Tags to invalidate this entry by, with invalidateTags(). */
  tags?: readonly string[]
  /** Grace period of this entry. @default the cache grace */
  grace?: Duration
}

/** Options of one writeThrough(). */
export interface WriteThroughOptions<T = unknown> extends SetOptions {
  /**
   * The database's commit order of the write, from the writer's result: a row version raised by every
   * UPDATE (`RETURNING version`), or a sequence taken under the row's lock; an integer from 0 to 2^64 - 1
   * (number, bigint, or decimal string as `pg` returns int8). With it, concurrent write-throughs of a key
   * leave the highest commit in the cache; without it, a write-through that sees another write land
   * while its writer ran invalidates the key instead of writing.
   */
  version?: (result: T) => number | bigint | string
}

/**
 * 'eventual' (the default): L1 answers while the bus keeps it honest (guarantee 2). 'strong': never a value
 * older than the newest one in L2 when the call began: an L1 entry is served only after one round trip
 * to L2 confirms its version and stamps; if L2 cannot answer, the call fails with E_UNCONFIRMED_READ
 * unless `grace` is given too.
 */
export type Consistency = 'eventual' | 'strong'

/** Options of one get(). */
export interface GetOptions {
  /** @default 'eventual' */
  consistency?: Consistency
  /**
   * With consistency 'strong': when L2 cannot confirm, answer as a plain read would (from L1, or a value
   * up to this long past its expiry) instead of failing. Only for strong reads.
   */
  grace?: Duration
}

export interface GetOrSetOptions extends SetOptions {
  /** Refresh in the background once this fraction of the TTL has passed (0 < x < 1). @default the cache's */
  refreshAhead?: number
  /** Loader timeouts for this call. @default the cache's */
  loaderTimeout?: { soft?: Duration; hard?: Duration }
  /**
   * 'strong': the cached value is served only once L2 confirms it is the newest (see GetOptions). If L2
   * cannot answer, the call fails with E_UNCONFIRMED_READ, unless this call passes `grace`: then it
   * answers as a plain getOrSet would (a value within grace, or the loader's). @default 'eventual'
   */
  consistency?: Consistency
}

/** Per-call write options after validation and defaults. */
export interface WriteOptions {
  ttl: number
  grace: number
  tags: readonly string[] | undefined
}

/** writeThrough() options after validation and defaults. */
export interface WriteThroughWrite<T> extends WriteOptions {
  version: ((result: T) => unknown) | undefined
}

/** Per-call load options after validation and defaults. */
export interface LoadOptions extends WriteOptions {
  refreshAhead: number
  soft: number
  hard: number
  /** consistency: 'strong'. */
  strong: boolean
  /** With `strong`: the grace the caller passed (how to answer when L2 cannot confirm), else undefined. */
  unconfirmedGrace: number | undefined
}

/** Per-call read options of get() after validation. */
export interface ReadOptions {
  strong: boolean
  unconfirmedGrace: number | undefined
}

export interface ResolvedOptions {
  namespace: string
  ttl: number
  jitter: number
  l1:
    | {
        maxEntries?: number
        maxBytes?: number
        policy: EvictionPolicy
        ttl: number
        sweepInterval: number
        isolation: 'copy' | 'freeze'
      }
    | false
  l2: RemoteStore | undefined
  bus: Bus | undefined
  grace: number
  lock: 'local' | 'distributed'
  loader: Loader | undefined
  l2Timeout: number
  circuitBreaker: { failureThreshold: number; openMs: number } | false
  loaderTimeout: { soft: number; hard: number }
  failSafeThrottle: number
  maxPendingWrites: number
  refreshAhead: number
  earlyRefreshBeta: number
  distributedLock: {
    leaseTtl: number
    waitTimeout: number
    pollInterval: number
    onTimeout: 'load' | 'stale'
  }
  fleet: { intervalMs: number; timeoutMs: number; name: string } | false
  clock: Clock
  random: () => number
  writeBehind: ResolvedWriteBehind | undefined
}

export interface ResolvedWriteBehind {
  write: WriteBehindWriter
  batchSize: number
  flushInterval: number
  maxRetries: number
  retryInitial: number
  retryMax: number
  concurrency: number
  partitions: number
  leaseTtl: number
  closeTimeout: number
}

const KNOWN_OPTIONS = new Set([
  'fleet',
  'namespace',
  'ttl',
  'jitter',
  'l1',
  'l2',
  'bus',
  'grace',
  'lock',
  'loader',
  'l2Timeout',
  'circuitBreaker',
  'loaderTimeout',
  'failSafeThrottle',
  'maxPendingWrites',
  'refreshAhead',
  'earlyRefresh',
  'distributedLock',
  'clock',
  'random',
  'writeBehind',
])
const KNOWN_WRITE_BEHIND_OPTIONS = new Set([
  'write',
  'batchSize',
  'flushInterval',
  'maxRetries',
  'retryDelay',
  'concurrency',
  'partitions',
  'leaseTtl',
  'closeTimeout',
])
const KNOWN_L1_OPTIONS = new Set(['maxEntries', 'maxBytes', 'policy', 'ttl', 'sweepInterval', 'isolation'])
const POLICIES: readonly EvictionPolicy[] = ['lru', 'lfu', 'fifo', 'tinylfu']
const NAMESPACE_RE = /^[A-Za-z0-9_.-]+$/
const DEFAULT_L1_TTL_WITH_L2 = 60_000

export function resolveOptions(options: CacheOptions = {}): ResolvedOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionError('options', `expected an object, got ${describe(options)}`)
  }
  for (const name of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(name)) throw new InvalidOptionError(name, `unknown option`)
  }
  const namespace = options.namespace ?? 'coherent'
  validateNamespaceName(namespace, 'namespace')
  const ttl = parseDuration(options.ttl ?? '5m', 'ttl', { allowZero: false, allowInfinite: true })
  const jitter = options.jitter ?? 0
  if (typeof jitter !== 'number' || !(jitter >= 0 && jitter <= 1)) {
    throw new InvalidOptionError('jitter', `must be a number from 0 to 1, got ${describe(jitter)}`)
  }
  const grace = parseDuration(options.grace ?? 0, 'grace', { allowInfinite: false })
  const lock = options.lock ?? 'local'
  if (lock !== 'local' && lock !== 'distributed') {
    throw new InvalidOptionError('lock', `must be 'local' or 'distributed', got ${describe(lock)}`)
  }
  if (options.loader !== undefined && typeof options.loader !== 'function') {
    throw new InvalidOptionError(
      'loader',
      `must be a function (key) => value, got ${describe(options.loader)}`,
    )
  }
  const l2 = options.l2
  if (l2 !== undefined && !isStore(l2)) {
    throw new InvalidOptionError('l2', 'must be a store such as memoryStore() or redisStore({ url })')
  }
  const bus = options.bus
  if (bus !== undefined && !isBus(bus)) {
    throw new InvalidOptionError('bus', 'must be a bus such as memoryBus() or redisBus({ url })')
  }
  if (lock === 'distributed' && (l2 === undefined || typeof l2.acquireLease !== 'function')) {
    throw new InvalidOptionError(
      'lock',
      "'distributed' needs an l2 store that supports leases, such as redisStore(...) or memoryStore()",
    )
  }
  // Chosen with bench:outage's hung Redis (docs/decisions.md): a hung Redis costs a call at most about a
  // slow database read, and a busy but healthy one does not trip the breaker.
  const l2Timeout = parseDuration(options.l2Timeout ?? '100ms', 'l2Timeout', {
    allowZero: false,
    max: MAX_TIMER_MS,
  })
  const clock = options.clock ?? systemClock
  if (typeof clock?.now !== 'function') throw new InvalidOptionError('clock', 'must have a now() method')
  const random = options.random ?? Math.random
  if (typeof random !== 'function')
    throw new InvalidOptionError('random', 'must be a function returning [0, 1)')

  return {
    namespace,
    ttl,
    jitter,
    l1: resolveL1(options.l1, ttl, l2 !== undefined),
    l2,
    bus,
    grace,
    lock,
    loader: options.loader,
    l2Timeout,
    circuitBreaker: resolveCircuitBreaker(options.circuitBreaker),
    loaderTimeout: resolveLoaderTimeout(options.loaderTimeout, 'loaderTimeout'),
    failSafeThrottle: parseDuration(options.failSafeThrottle ?? '10s', 'failSafeThrottle'),
    maxPendingWrites: resolvePositiveInteger(options.maxPendingWrites ?? 10_000, 'maxPendingWrites'),
    refreshAhead: resolveRefreshAhead(options.refreshAhead, 'refreshAhead'),
    earlyRefreshBeta: resolveEarlyRefresh(options.earlyRefresh),
    distributedLock: resolveDistributedLock(options.distributedLock),
    fleet: resolveFleet(options.fleet),
    clock,
    random,
    writeBehind: resolveWriteBehind(options.writeBehind, l2),
  }
}

function resolveWriteBehind(
  given: WriteBehindOptions | undefined,
  l2: RemoteStore | undefined,
): ResolvedWriteBehind | undefined {
  if (given === undefined) return undefined
  if (typeof given !== 'object' || given === null) {
    throw new InvalidOptionError(
      'writeBehind',
      `must be an options object like { write }, got ${describe(given)}`,
    )
  }
  for (const name of Object.keys(given)) {
    if (!KNOWN_WRITE_BEHIND_OPTIONS.has(name))
      throw new InvalidOptionError(`writeBehind.${name}`, 'unknown option')
  }
  if (typeof given.write !== 'function') {
    throw new InvalidOptionError(
      'writeBehind.write',
      'must be a function (batch) => written, writing a batch to the database',
    )
  }
  if (l2 !== undefined && l2.queue === undefined) {
    throw new InvalidOptionError(
      'writeBehind',
      `the l2 store '${l2.name}' has no queue for write-behind: use redisStore(...) (a durable queue on Redis Streams), or memoryStore() for one in this process that is not durable`,
    )
  }
  const retry = given.retryDelay ?? {}
  if (typeof retry !== 'object' || retry === null) {
    throw new InvalidOptionError('writeBehind.retryDelay', `must be { initial, max }, got ${describe(retry)}`)
  }
  const retryInitial = parseDuration(retry.initial ?? '200ms', 'writeBehind.retryDelay.initial', {
    allowZero: false,
  })
  const retryMax = parseDuration(retry.max ?? '30s', 'writeBehind.retryDelay.max', {
    allowZero: false,
    max: MAX_TIMER_MS,
  })
  if (retryMax < retryInitial) {
    throw new InvalidOptionError(
      'writeBehind.retryDelay.max',
      `must not be below initial (${retryInitial} ms)`,
    )
  }
  const maxRetries = given.maxRetries ?? 10
  if (!(Number.isSafeInteger(maxRetries) && maxRetries >= 0)) {
    throw new InvalidOptionError(
      'writeBehind.maxRetries',
      `must be a non-negative integer, got ${describe(maxRetries)}`,
    )
  }
  return {
    write: given.write,
    batchSize: resolvePositiveInteger(given.batchSize ?? 100, 'writeBehind.batchSize'),
    flushInterval: parseDuration(given.flushInterval ?? '1s', 'writeBehind.flushInterval', {
      allowZero: false,
      max: MAX_TIMER_MS,
    }),
    maxRetries,
    retryInitial,
    retryMax,
    concurrency: resolvePositiveInteger(given.concurrency ?? 4, 'writeBehind.concurrency'),
    partitions: resolvePositiveInteger(given.partitions ?? 16, 'writeBehind.partitions'),
    leaseTtl: parseDuration(given.leaseTtl ?? '10s', 'writeBehind.leaseTtl', {
      allowZero: false,
      max: MAX_TIMER_MS,
    }),
    closeTimeout: parseDuration(given.closeTimeout ?? '10s', 'writeBehind.closeTimeout', {
      allowInfinite: true,
    }),
  }
}

function resolveFleet(given: CacheOptions['fleet']): ResolvedOptions['fleet'] {
  if (given === false) return false
  const options = given ?? {}
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionError(
      'fleet',
      `must be { interval, timeout, name } or false, got ${describe(given)}`,
    )
  }
  const intervalMs = parseDuration(options.interval ?? '5s', 'fleet.interval', {
    allowZero: false,
    max: MAX_TIMER_MS,
  })
  const timeoutMs =
    options.timeout === undefined
      ? 3 * intervalMs
      : parseDuration(options.timeout, 'fleet.timeout', { allowZero: false })
  const name = options.name ?? `${hostname()}:${process.pid}`
  if (typeof name !== 'string' || name.length === 0 || name.length > 128) {
    throw new InvalidOptionError(
      'fleet.name',
      `must be a string of 1 to 128 characters, got ${describe(name)}`,
    )
  }
  return { intervalMs, timeoutMs, name }
}

function resolvePositiveInteger(given: unknown, name: string): number {
  if (!(typeof given === 'number' && Number.isSafeInteger(given) && given > 0)) {
    throw new InvalidOptionError(name, `must be a positive integer, got ${describe(given)}`)
  }
  return given
}

function resolveCircuitBreaker(given: CacheOptions['circuitBreaker']): ResolvedOptions['circuitBreaker'] {
  if (given === false) return false
  const options = given ?? {}
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionError(
      'circuitBreaker',
      `must be an options object or false, got ${describe(given)}`,
    )
  }
  const failureThreshold = options.failureThreshold ?? 5
  if (!(Number.isSafeInteger(failureThreshold) && failureThreshold > 0)) {
    throw new InvalidOptionError(
      'circuitBreaker.failureThreshold',
      `must be a positive integer, got ${describe(failureThreshold)}`,
    )
  }
  return {
    failureThreshold,
    openMs: parseDuration(options.openDuration ?? '2s', 'circuitBreaker.openDuration', { allowZero: false }),
  }
}

function resolveL1(l1: CacheOptions['l1'], ttl: number, hasL2: boolean): ResolvedOptions['l1'] {
  if (l1 === false) return false
  const given = l1 ?? {}
  if (typeof given !== 'object' || given === null) {
    throw new InvalidOptionError('l1', `must be an options object or false, got ${describe(l1)}`)
  }
  for (const name of Object.keys(given)) {
    if (!KNOWN_L1_OPTIONS.has(name)) throw new InvalidOptionError(`l1.${name}`, 'unknown option')
  }
  const policy = given.policy ?? 'tinylfu'
  if (!POLICIES.includes(policy)) {
    throw new InvalidOptionError(
      'l1.policy',
      `must be one of ${POLICIES.join(', ')}, got ${describe(policy)}`,
    )
  }
  for (const bound of ['maxEntries', 'maxBytes'] as const) {
    const value = given[bound]
    if (value !== undefined && !(Number.isSafeInteger(value) && value > 0)) {
      throw new InvalidOptionError(`l1.${bound}`, `must be a positive integer, got ${describe(value)}`)
    }
  }
  const maxEntries = given.maxEntries ?? (given.maxBytes === undefined ? 10_000 : undefined)
  const defaultTtl = hasL2 ? Math.min(ttl, DEFAULT_L1_TTL_WITH_L2) : Number.POSITIVE_INFINITY
  return {
    maxEntries,
    maxBytes: given.maxBytes,
    policy,
    ttl:
      given.ttl === undefined
        ? defaultTtl
        : parseDuration(given.ttl, 'l1.ttl', { allowZero: false, allowInfinite: true }),
    sweepInterval: parseDuration(given.sweepInterval ?? '1s', 'l1.sweepInterval', {
      allowZero: false,
      max: MAX_TIMER_MS,
    }),
    isolation: resolveIsolation(given.isolation),
  }
}

function resolveIsolation(given: unknown): 'copy' | 'freeze' {
  if (given === undefined) return 'copy'
  if (given !== 'copy' && given !== 'freeze') {
    throw new InvalidOptionError('l1.isolation', `must be 'copy' or 'freeze', got ${describe(given)}`)
  }
  return given
}

export function validateNamespaceName(name: unknown, option: string): asserts name is string {
  if (typeof name !== 'string' || !NAMESPACE_RE.test(name) || name.length > 128) {
    throw new InvalidOptionError(
      option,
      `must be 1 to 128 letters, digits, '_', '-' or '.', got ${describe(name)}`,
    )
  }
}

const MAX_KEY_BYTES = 1024

/**
 * Throws InvalidKeyError unless `key` is a non-empty, well-formed string of at most 1 KiB in UTF-8. A key
 * with a lone surrogate has no UTF-8 form: '\ud800', '\udfff' and '\ufffd' would share one Redis key and
 * one bus name, so such keys are refused rather than mixed up.
 */
export function validateKey(key: unknown): asserts key is string {
  if (typeof key !== 'string') throw new InvalidKeyError(`Cache keys must be strings, got ${describe(key)}`)
  const length = key.length
  if (length === 0) throw new InvalidKeyError('Cache keys must not be empty')
  if (!key.isWellFormed()) {
    throw new InvalidKeyError('Cache keys must be well-formed UTF-16 (this one has a lone surrogate)')
  }
  // One UTF-16 unit takes at most 3 UTF-8 bytes, so short keys need no byte count.
  if (length > MAX_KEY_BYTES / 3 && (length > MAX_KEY_BYTES || Buffer.byteLength(key) > MAX_KEY_BYTES)) {
    throw new InvalidKeyError(
      `Cache keys must be at most ${MAX_KEY_BYTES} bytes in UTF-8, got ${Buffer.byteLength(key)} bytes (starting ${JSON.stringify(key.slice(0, 32))})`,
    )
  }
}

export function validateTags(tags: unknown, option: string): readonly string[] | undefined {
  if (tags === undefined) return undefined
  if (!Array.isArray(tags))
    throw new InvalidOptionError(option, `must be an array of strings, got ${describe(tags)}`)
  if (tags.length > MAX_TAGS)
    throw new InvalidOptionError(option, `at most ${MAX_TAGS} tags per entry, got ${tags.length}`)
  for (const tag of tags) {
    if (
      typeof tag !== 'string' ||
      tag.length === 0 ||
      Buffer.byteLength(tag) > MAX_KEY_BYTES ||
      !tag.isWellFormed()
    ) {
      throw new InvalidOptionError(
        option,
        `each tag must be a non-empty, well-formed string of at most 1 KiB, got ${describe(tag)}`,
      )
    }
  }
  return tags.length === 0 ? undefined : tags
}

function isStore(value: unknown): value is RemoteStore {
  const store = value as RemoteStore
  return (
    typeof store === 'object' &&
    store !== null &&
    typeof store.get === 'function' &&
    typeof store.set === 'function' &&
    typeof store.getStamps === 'function'
  )
}

function isBus(value: unknown): value is Bus {
  const bus = value as Bus
  return (
    typeof bus === 'object' &&
    bus !== null &&
    typeof bus.subscribe === 'function' &&
    typeof bus.publish === 'function'
  )
}

export function resolveLoaderTimeout(
  given: CacheOptions['loaderTimeout'],
  option: string,
  defaults = { soft: 0, hard: Number.POSITIVE_INFINITY },
): { soft: number; hard: number } {
  if (given === undefined) return defaults
  if (typeof given !== 'object' || given === null) {
    throw new InvalidOptionError(
      option,
      `must be an object like { soft: '100ms', hard: '2s' }, got ${describe(given)}`,
    )
  }
  const soft =
    given.soft === undefined
      ? defaults.soft
      : parseDuration(given.soft, `${option}.soft`, { allowInfinite: true, max: MAX_TIMER_MS })
  const hard =
    given.hard === undefined
      ? defaults.hard
      : parseDuration(given.hard, `${option}.hard`, {
          allowZero: false,
          allowInfinite: true,
          max: MAX_TIMER_MS,
        })
  if (soft > hard)
    throw new InvalidOptionError(`${option}.soft`, `must not exceed ${option}.hard (${hard} ms)`)
  return { soft, hard }
}

export function resolveRefreshAhead(given: unknown, option: string): number {
  if (given === undefined) return 0
  if (typeof given !== 'number' || !(given >= 0 && given < 1)) {
    throw new InvalidOptionError(
      option,
      `must be a fraction of the TTL from 0 (off) to below 1, got ${describe(given)}`,
    )
  }
  return given
}

function resolveEarlyRefresh(given: CacheOptions['earlyRefresh']): number {
  if (given === undefined || given === false) return 0
  if (typeof given !== 'object' || given === null) {
    throw new InvalidOptionError('earlyRefresh', `must be { beta } or false, got ${describe(given)}`)
  }
  const beta = given.beta ?? 1
  if (typeof beta !== 'number' || !(beta > 0 && Number.isFinite(beta))) {
    throw new InvalidOptionError('earlyRefresh.beta', `must be a positive number, got ${describe(beta)}`)
  }
  return beta
}

function resolveDistributedLock(
  given: DistributedLockOptions | undefined,
): ResolvedOptions['distributedLock'] {
  const options = given ?? {}
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionError('distributedLock', `must be an options object, got ${describe(given)}`)
  }
  const onTimeout = options.onTimeout ?? 'load'
  if (onTimeout !== 'load' && onTimeout !== 'stale') {
    throw new InvalidOptionError(
      'distributedLock.onTimeout',
      `must be 'load' or 'stale', got ${describe(onTimeout)}`,
    )
  }
  return {
    leaseTtl: parseDuration(options.leaseTtl ?? '5s', 'distributedLock.leaseTtl', { allowZero: false }),
    waitTimeout: parseDuration(options.waitTimeout ?? '10s', 'distributedLock.waitTimeout'),
    pollInterval: parseDuration(options.pollInterval ?? '100ms', 'distributedLock.pollInterval', {
      allowZero: false,
      max: MAX_TIMER_MS,
    }),
    onTimeout,
  }
}

export function resolveWriteOptions(
  defaults: ResolvedOptions,
  options: SetOptions | undefined,
): WriteOptions {
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

export function resolveWriteThroughOptions<T>(
  defaults: ResolvedOptions,
  options: WriteThroughOptions<T> | undefined,
): WriteThroughWrite<T> {
  const write = resolveWriteOptions(defaults, options)
  const version = options?.version
  if (version !== undefined && typeof version !== 'function') {
    throw new InvalidOptionError(
      'version',
      `must be a function (result) => commit order, got ${describe(version)}`,
    )
  }
  return { ...write, version }
}

function resolveConsistency(given: unknown): boolean {
  if (given === undefined || given === 'eventual') return false
  if (given === 'strong') return true
  throw new InvalidOptionError('consistency', `must be 'eventual' or 'strong', got ${describe(given)}`)
}

const KNOWN_GET_OPTIONS = new Set(['consistency', 'grace'])

const STRONG: ReadOptions = { strong: true, unconfirmedGrace: undefined }

export function resolveReadOptions(options: GetOptions): ReadOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionError('options', "must be an object like { consistency: 'strong' }")
  }
  for (const name in options) {
    if (!KNOWN_GET_OPTIONS.has(name)) throw new InvalidOptionError(name, 'unknown option of get()')
  }
  // The common call, get(key, { consistency: 'strong' }), allocates nothing.
  if (options.consistency === 'strong' && options.grace === undefined) return STRONG
  const strong = resolveConsistency(options.consistency)
  if (options.grace !== undefined && !strong) {
    throw new InvalidOptionError('grace', "a grace of get() applies to consistency: 'strong' only")
  }
  return {
    strong,
    unconfirmedGrace: options.grace === undefined ? undefined : parseDuration(options.grace, 'grace'),
  }
}

export function resolveLoadOptions(
  defaults: ResolvedOptions,
  options: GetOrSetOptions | undefined,
): LoadOptions {
  // Object literals of one shape, not spreads: a cache-aside hit runs this on every call, and spreading
  // `write` and the timeout pair into a new object was ~40% of a getOrSet hit's time.
  const write = resolveWriteOptions(defaults, options)
  if (options === undefined) {
    return {
      ttl: write.ttl,
      grace: write.grace,
      tags: write.tags,
      refreshAhead: defaults.refreshAhead,
      soft: defaults.loaderTimeout.soft,
      hard: defaults.loaderTimeout.hard,
      strong: false,
      unconfirmedGrace: undefined,
    }
  }
  const strong = resolveConsistency(options.consistency)
  const timeout = resolveLoaderTimeout(options.loaderTimeout, 'loaderTimeout', defaults.loaderTimeout)
  return {
    ttl: write.ttl,
    grace: write.grace,
    tags: write.tags,
    refreshAhead:
      options.refreshAhead === undefined
        ? defaults.refreshAhead
        : resolveRefreshAhead(options.refreshAhead, 'refreshAhead'),
    soft: timeout.soft,
    hard: timeout.hard,
    strong,
    unconfirmedGrace: strong && options.grace !== undefined ? write.grace : undefined,
  }
}
