/**
 * redisStore's write-behind queue on Redis Streams (write-behind/queue-log.ts): XADD to append, a
 * consumer group per stream (XREADGROUP to read, XAUTOCLAIM to take over what another consumer left
 * pending, XACK + XDEL once written), a dead-letter stream per partition, and partition leases
 * (SET NX PX, extended and released only by their token). Durable as far as Redis is: with
 * `appendonly yes` an XADD is in the append-only file before Redis acknowledges it (on disk within
 * `appendfsync`'s interval), and with replicas it reaches them asynchronously.
 *
 * Calls that touch two keys (bury, revive) are scripts; their keys share a hash tag (keys.ts), so on a
 * Cluster they are on one shard. Replies are read in both RESP2 and RESP3 shapes (a client passed in may
 * speak either).
 */
import { createHash } from 'node:crypto'
import type { RedisArgument } from 'redis'
import type { RedisConnection } from '../redis/connection.js'
import type { QueueEntry, QueueLog } from '../write-behind/queue-log.js'

interface Script {
  source: string
  sha1: string
}

function script(source: string): Script {
  return { source, sha1: createHash('sha1').update(source).digest('hex') }
}

/** KEYS[1] stream; ARGV[1] group, ARGV[2..] ids. Acknowledges and deletes the entries. */
const ACK = script(`local ids = {unpack(ARGV, 2)}
redis.call('XACK', KEYS[1], ARGV[1], unpack(ids))
return redis.call('XDEL', KEYS[1], unpack(ids))`)

/** KEYS[1] stream, KEYS[2] dead; ARGV[1] group, ARGV[2] dead entry bytes, ARGV[3..] ids. */
const BURY = script(`local id = redis.call('XADD', KEYS[2], '*', 'e', ARGV[2])
local ids = {unpack(ARGV, 3)}
redis.call('XACK', KEYS[1], ARGV[1], unpack(ids))
redis.call('XDEL', KEYS[1], unpack(ids))
return id`)

/** KEYS[1] dead, KEYS[2] stream; ARGV[1] dead id, ARGV[2] entry bytes. */
const REVIVE = script(`if redis.call('XDEL', KEYS[1], ARGV[1]) == 0 then return false end
return redis.call('XADD', KEYS[2], '*', 'e', ARGV[2])`)

/** KEYS[1] lease; ARGV[1] token, ARGV[2] TTL in ms. */
const RENEW =
  script(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`)

/** KEYS[1] lease; ARGV[1] token. */
const RELEASE = script(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

const CLAIM_COUNT = '100' // entries per XAUTOCLAIM call
const IDS_PER_SCRIPT = 1000 // ids per ACK or BURY call (Lua's unpack has a stack limit)

export class RedisQueueLog implements QueueLog {
  readonly durable = true

  constructor(private readonly connection: RedisConnection) {}

  async append(stream: string, bytes: Uint8Array): Promise<string> {
    return text(await this.connection.send(stream, ['XADD', stream, '*', 'e', toBuffer(bytes)]))
  }

  async lengths(streams: readonly string[]): Promise<number[]> {
    // One XLEN per stream, pipelined (on a Cluster, each to its shard).
    return Promise.all(
      streams.map(async (stream) => Number(await this.connection.send(stream, ['XLEN', stream], true))),
    )
  }

  async lastId(stream: string): Promise<string | undefined> {
    const reply = await this.connection.send(stream, ['XREVRANGE', stream, '+', '-', 'COUNT', '1'], true)
    return entries(reply)[0]?.id
  }

  async holdsUpTo(stream: string, id: string): Promise<boolean> {
    const reply = await this.connection.send(stream, ['XRANGE', stream, '-', id, 'COUNT', '1'], true)
    return entries(reply).length > 0
  }

  async ensureGroup(stream: string, group: string): Promise<void> {
    try {
      await this.connection.send(stream, ['XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM'])
    } catch (err) {
      if (!(err instanceof Error && err.message.startsWith('BUSYGROUP'))) throw err
    }
  }

  async claim(stream: string, group: string, consumer: string): Promise<QueueEntry[]> {
    const claimed: QueueEntry[] = []
    let cursor = '0-0'
    do {
      const reply = (await this.connection.send(stream, [
        'XAUTOCLAIM',
        stream,
        group,
        consumer,
        '0',
        cursor,
        'COUNT',
        CLAIM_COUNT,
      ])) as unknown[]
      cursor = text(reply[0])
      claimed.push(...entries(reply[1]))
    } while (cursor !== '0-0')
    return claimed
  }

  async read(stream: string, group: string, consumer: string, count: number): Promise<QueueEntry[]> {
    const reply = await this.connection.send(stream, [
      'XREADGROUP',
      'GROUP',
      group,
      consumer,
      'COUNT',
      String(count),
      'STREAMS',
      stream,
      '>',
    ])
    return streamEntries(reply)
  }

  async ack(stream: string, group: string, ids: readonly string[]): Promise<void> {
    for (let at = 0; at < ids.length; at += IDS_PER_SCRIPT) {
      await this.run(ACK, [stream], [group, ...ids.slice(at, at + IDS_PER_SCRIPT)])
    }
  }

  async bury(
    stream: string,
    group: string,
    ids: readonly string[],
    dead: string,
    bytes: Uint8Array,
  ): Promise<string> {
    // The dead entry goes with the first chunk; the rest are acknowledged after it.
    const id = text(
      await this.run(BURY, [stream, dead], [group, toBuffer(bytes), ...ids.slice(0, IDS_PER_SCRIPT)]),
    )
    await this.ack(stream, group, ids.slice(IDS_PER_SCRIPT))
    return id
  }

  async range(stream: string, count: number, after?: string): Promise<QueueEntry[]> {
    const start = after === undefined ? '-' : `(${after}`
    const reply = await this.connection.send(
      stream,
      ['XRANGE', stream, start, '+', 'COUNT', String(count)],
      true,
    )
    return entries(reply)
  }

  async revive(dead: string, id: string, stream: string, bytes: Uint8Array): Promise<string | undefined> {
    const reply = await this.run(REVIVE, [dead, stream], [id, toBuffer(bytes)])
    return reply === null || reply === undefined ? undefined : text(reply)
  }

  async remove(stream: string, ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0
    return Number(await this.connection.send(stream, ['XDEL', stream, ...ids]))
  }

  async acquire(key: string, token: string, ttlMs: number): Promise<boolean> {
    const reply = await this.connection.send(key, ['SET', key, token, 'NX', 'PX', String(Math.ceil(ttlMs))])
    return reply !== null
  }

  async renew(key: string, token: string, ttlMs: number): Promise<boolean> {
    return Number(await this.run(RENEW, [key], [token, String(Math.ceil(ttlMs))])) === 1
  }

  async release(key: string, token: string): Promise<boolean> {
    return Number(await this.run(RELEASE, [key], [token])) === 1
  }

  /** EVALSHA, and EVAL when the server lost its script cache (as redis-store.ts does). */
  private async run(
    { source, sha1 }: Script,
    keys: readonly string[],
    args: readonly RedisArgument[],
  ): Promise<unknown> {
    const tail = [String(keys.length), ...keys, ...args]
    try {
      return await this.connection.send(keys[0], ['EVALSHA', sha1, ...tail])
    } catch (error) {
      if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error
      return this.connection.send(keys[0], ['EVAL', source, ...tail])
    }
  }
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

function text(value: unknown): string {
  return Buffer.isBuffer(value) ? value.toString('latin1') : String(value)
}

/**
 * Entries as XRANGE, XAUTOCLAIM and XREADGROUP list them: `[id, [field, value, ...]]`; an entry deleted
 * while pending comes as `[id, null]` and is skipped.
 */
function entries(reply: unknown): QueueEntry[] {
  if (!Array.isArray(reply)) return []
  const found: QueueEntry[] = []
  for (const item of reply) {
    if (!Array.isArray(item)) continue
    const fields = item[1]
    if (!Array.isArray(fields)) continue
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (text(fields[i]) === 'e' && Buffer.isBuffer(fields[i + 1])) {
        found.push({ id: text(item[0]), bytes: fields[i + 1] as Buffer })
        break
      }
    }
  }
  return found
}

/** XREADGROUP's reply for one stream: RESP2 `[[name, entries]]`, RESP3 a map of name to entries; null when empty. */
function streamEntries(reply: unknown): QueueEntry[] {
  if (reply === null || reply === undefined) return []
  if (Array.isArray(reply))
    return reply.flatMap((stream) => (Array.isArray(stream) ? entries(stream[1]) : []))
  if (reply instanceof Map) return [...reply.values()].flatMap((value) => entries(value))
  if (typeof reply === 'object') return Object.values(reply).flatMap((value) => entries(value))
  return []
}
