/**
 * The contract between write-behind (write-behind.ts) and the store that holds its queue: append-only
 * streams with a consumer group, shaped after Redis Streams, plus the partition leases that let one node
 * at a time consume a stream. A store offers it as `RemoteStore.queue`: redisStore on Redis Streams
 * (durable as far as Redis persists its data), memoryStore in the process (not durable). Entries are
 * opaque bytes; write-behind encodes them (entries.ts).
 *
 * Every call names its keys in full (keys.ts makes them). The keys of one partition (its stream, its
 * dead-letter stream, its lease) share a Redis Cluster hash tag, so calls that touch two of them are one
 * script on one shard.
 */

/** One entry of a stream. */
export interface QueueEntry {
  /** The stream id, `<milliseconds>-<sequence>`: ids grow in the order entries were appended. */
  id: string
  bytes: Uint8Array
}

export interface QueueLog {
  /** Whether appended entries outlive this process (Redis, as far as its persistence goes). */
  readonly durable: boolean
  /** Appends `bytes` to `stream` (XADD); resolves to the entry's id once the store has it. */
  append(stream: string, bytes: Uint8Array): Promise<string>
  /** How many entries each stream holds (XLEN): appended and not yet acknowledged or moved. */
  lengths(streams: readonly string[]): Promise<number[]>
  /** The id of the newest entry of `stream`, undefined when it is empty. */
  lastId(stream: string): Promise<string | undefined>
  /** Whether `stream` still holds an entry whose id is `id` or lower. */
  holdsUpTo(stream: string, id: string): Promise<boolean>
  /** Creates the consumer group of `stream` (reading from its first entry) unless it exists. */
  ensureGroup(stream: string, group: string): Promise<void>
  /**
   * Makes `consumer` the owner of every entry pending in the group (delivered to any consumer, `consumer`
   * itself included, and not acknowledged: XAUTOCLAIM from 0-0 until done) and resolves to them in id
   * order; entries deleted meanwhile are dropped from the group.
   */
  claim(stream: string, group: string, consumer: string): Promise<QueueEntry[]>
  /** Up to `count` entries never delivered to the group (XREADGROUP ... >), in id order. */
  read(stream: string, group: string, consumer: string, count: number): Promise<QueueEntry[]>
  /** Acknowledges `ids` and deletes them from `stream`, atomically. */
  ack(stream: string, group: string, ids: readonly string[]): Promise<void>
  /**
   * Appends `bytes` to `dead` and acknowledges and deletes `ids` from `stream`, atomically; resolves to the
   * id of the dead entry.
   */
  bury(
    stream: string,
    group: string,
    ids: readonly string[],
    dead: string,
    bytes: Uint8Array,
  ): Promise<string>
  /** Up to `count` entries of `stream` with ids above `after` (from the first, without it), in id order. */
  range(stream: string, count: number, after?: string): Promise<QueueEntry[]>
  /**
   * If `dead` still holds entry `id`: deletes it and appends `bytes` to `stream`, atomically, and resolves to
   * the new id; else does nothing and resolves to undefined.
   */
  revive(dead: string, id: string, stream: string, bytes: Uint8Array): Promise<string | undefined>
  /** Deletes `ids` from `stream`; resolves to how many were there. */
  remove(stream: string, ids: readonly string[]): Promise<number>
  /** Sets lease `key` to `token` for `ttlMs` if nobody holds it. */
  acquire(key: string, token: string, ttlMs: number): Promise<boolean>
  /** Extends the lease to `ttlMs` from now if `token` still holds it. */
  renew(key: string, token: string, ttlMs: number): Promise<boolean>
  /** Deletes the lease if `token` still holds it. */
  release(key: string, token: string): Promise<boolean>
}

/** Compares two stream ids as Redis orders them (milliseconds, then sequence). */
export function compareIds(a: string, b: string): number {
  const [am, as] = splitId(a)
  const [bm, bs] = splitId(b)
  return am !== bm ? Math.sign(am - bm) : Math.sign(as - bs)
}

/** The two numbers of a stream id; NaN for something else. */
export function splitId(id: string): [number, number] {
  const dash = id.indexOf('-')
  if (dash <= 0) return [Number.NaN, Number.NaN]
  return [Number(id.slice(0, dash)), Number(id.slice(dash + 1))]
}
