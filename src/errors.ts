/**
 * Every error this library throws on purpose is a CoherentError with a stable `code`.
 * Codes are part of the public contract: match on `err.code`, never on the message.
 */
export type CoherentErrorCode =
  | 'E_INVALID_OPTION'
  | 'E_INVALID_KEY'
  | 'E_UNSERIALIZABLE_VALUE'
  | 'E_CORRUPT_ENTRY'
  | 'E_CACHE_CLOSED'
  | 'E_LOADER_HARD_TIMEOUT'
  | 'E_L2_TIMEOUT'
  | 'E_CIRCUIT_OPEN'
  | 'E_LOCK_TIMEOUT'
  | 'E_SHARD_UNAVAILABLE'
  | 'E_UNCONFIRMED_READ'
  | 'E_FLUSH_TIMEOUT'
  | 'E_QUEUE_UNAVAILABLE'

export class CoherentError extends Error {
  readonly code: CoherentErrorCode
  constructor(code: CoherentErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

/** An option passed to createCache (or a store/bus factory) is missing, of the wrong type, or out of range. */
export class InvalidOptionError extends CoherentError {
  /** Dotted path of the offending option, e.g. `l1.maxEntries`. */
  readonly option: string
  constructor(option: string, message: string) {
    super('E_INVALID_OPTION', `Invalid option \`${option}\`: ${message}`)
    this.option = option
  }
}

/** A key is not a non-empty string of at most 1 KiB (UTF-8). */
export class InvalidKeyError extends CoherentError {
  constructor(message: string) {
    super('E_INVALID_KEY', message)
  }
}

/** A value cannot be stored: functions, symbols, circular structures, top-level undefined, ... */
export class UnserializableValueError extends CoherentError {
  /** Where in the value the problem is, e.g. `$.user.callback`. */
  readonly path: string
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super('E_UNSERIALIZABLE_VALUE', `Cannot cache value at ${path}: ${message}`, options)
    this.path = path
  }
}

/** Bytes read from L2 or the bus could not be decoded (written by an incompatible version, or corrupted). */
export class CorruptEntryError extends CoherentError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_CORRUPT_ENTRY', message, options)
  }
}

/** The cache was closed; no further operations are accepted. */
export class CacheClosedError extends CoherentError {
  constructor() {
    super('E_CACHE_CLOSED', 'The cache has been closed')
  }
}

/** A loader ran past its hard timeout and no stale value could answer instead. It keeps running in the background. */
export class LoaderTimeoutError extends CoherentError {
  constructor(key: string, timeoutMs: number) {
    super(
      'E_LOADER_HARD_TIMEOUT',
      `Loader for key ${JSON.stringify(key)} did not finish within its hard timeout of ${timeoutMs} ms`,
    )
  }
}

/** With lock: 'distributed', the lease holder did not produce the value in time and onTimeout is 'stale'. */
export class LockTimeoutError extends CoherentError {
  constructor(key: string, waitedMs: number) {
    super('E_LOCK_TIMEOUT', `Waited ${waitedMs} ms for another node to load key ${JSON.stringify(key)}`)
  }
}

/**
 * shardedStore could not serve a key now: the member it belongs to is changing hands (ejected or
 * re-admitted, see "Sharding without Redis Cluster" in the README), or no member could be asked for the
 * ring's membership. The cache treats it like any L2 failure and degrades.
 */
export class ShardUnavailableError extends CoherentError {
  constructor(message: string) {
    super('E_SHARD_UNAVAILABLE', message)
  }
}

/**
 * A strong read (consistency: 'strong') could not ask L2 whether its value is the newest (L2 down, slow,
 * or its circuit open), and the caller passed no `grace` to accept an unconfirmed one. `cause` is the L2
 * failure.
 */
export class UnconfirmedReadError extends CoherentError {
  constructor(key: string, options?: { cause?: unknown }) {
    super(
      'E_UNCONFIRMED_READ',
      `Could not confirm key ${JSON.stringify(key)} with L2 for a strong read`,
      options,
    )
  }
}

/** flush() (or the drain of close()) did not see the write-behind queue written within its timeout. */
export class FlushTimeoutError extends CoherentError {
  constructor(timeoutMs: number) {
    super('E_FLUSH_TIMEOUT', `The write-behind queue was not written within ${timeoutMs} ms`)
  }
}

/**
 * writeBehind() could not put the write in its queue (Redis down, slow, or its circuit open): nothing was
 * written, to the cache or the queue. `cause` is the store's failure.
 */
export class QueueUnavailableError extends CoherentError {
  constructor(key: string, options?: { cause?: unknown }) {
    super('E_QUEUE_UNAVAILABLE', `Could not queue the write-behind of key ${JSON.stringify(key)}`, options)
  }
}
