/**
 * The Redis L2 (standalone or Cluster) on node-redis v5. Connections (options, reconnects, Cluster
 * topology refreshes) live in redis/connection.ts.
 * Long because each rule of the store contract (store.ts) is a Lua script here, with its replies checked
 * as untrusted bytes; the write-behind queue (redis-queue.ts) gets its connection from here.
 *
 * Entry layout: ONE Redis string per key, `<16 lowercase hex digits of the version><entry bytes>`, so a
 * single GET returns both and a Lua script can read the version with `GETRANGE key 0 15` without a
 * second key. A tombstone (a deleted key that keeps its version) is `t<15 hex digits of the version>`,
 * exactly 16 bytes, so it cannot be mistaken for an entry (whose first digit is always 0: versions are
 * integers < 2^53, at most 14 hex digits, which Lua's doubles hold exactly). An entry of an ordered
 * write (`setIf` with an order) is `<c|q><15 hex digits of the version><16 hex digits of the
 * order><entry bytes>`: `c` for a commit order, `q` for a queue order; the first 16 bytes still give the
 * version, and orders compare as fixed-width strings in Lua (exact up to 2^64, beyond what doubles hold).
 *
 * Ordering rules (store.ts), each one Lua script, atomic on the server:
 * - `set` / `delete` write version max(proposed, stored + 1): the store orders the writes of a key in the
 *   order it applied them, whatever the writers' clocks say;
 * - `setIfNewer` (loads) writes only if what is stored is older, so a slow load never replaces a newer
 *   write or resurrects a deleted key (the tombstone carries the version);
 * - `setIf` (write-through, write-behind) compares orders of one domain, or what the writer noted, and
 *   writes, deletes or leaves the key in the same script.
 * Scripts return versions as hex strings, never as Lua numbers: node-redis' integer decoder rounds
 * values close to 2^53 (it computes `n * 10 + byte - 48`).
 *
 * Scripts run as EVALSHA with a fallback to EVAL on NOSCRIPT (after a restart or failover the script
 * cache is empty; EVAL reloads it). We do this ourselves instead of node-redis' `scripts` option because
 * a client passed in by the application (`{ client }`) was created without our scripts.
 *
 * Stamps are generation counters in keys of their own (decimal text): a script per key raises one to
 * max(stored + 1, proposed) and extends its TTL (never shortens it), so on a Cluster no command spans two
 * slots. On a single server (and Sentinel) `setStamped` reads an entry's stamps in the script that writes
 * it (not on a Cluster: they live in other slots). Where the bus is on the same server (`canAnnounce`), the
 * write scripts also PUBLISH the invalidation, after the write: a write and its announcement are one round
 * trip (docs/decisions.md). Garbage in an entry's header or a stamp (store.ts) is replaced by the next write. Leases are `SET NX PX` and a
 * compare-and-delete script.
 */
import { createHash } from 'node:crypto'
import type { RedisArgument } from 'redis'
import type { Bus } from '../bus/bus.js'
import { MAX_VERSION_LEAD } from '../coherence/hlc.js'
import { CorruptEntryError } from '../errors.js'
import {
  connectionOf,
  INSPECT,
  type RedisConnection,
  type RedisConnectionOptions,
  redisConnection,
  registerConnection,
} from '../redis/connection.js'
import { RedisQueueLog } from './redis-queue.js'
import type {
  Announcement,
  ConditionalWrite,
  EntryHead,
  EntryStamps,
  RemoteStore,
  StampedWrite,
  StoredEntry,
  WriteCondition,
} from './store.js'

export type RedisStoreOptions = RedisConnectionOptions

// ---------------------------------------------------------------------------------------------------------
// Scripts

interface Script {
  source: string
  sha1: string
}

/**
 * Reads the version of `key` (entry or tombstone); nil when absent or unreadable (not a string of ours, even
 * another Redis type: SET replaces it), and when it is more than
 * MAX_VERSION_LEAD above `proposed`: garbage that no correct writer's clock produced (store.ts), which
 * the write then replaces instead of ordering itself after it.
 */
const STORED_VERSION = `local function stored_version(key, proposed)
  local head = redis.pcall('GETRANGE', key, 0, 15)
  if type(head) ~= 'string' or #head < 16 then return nil end
  local version
  local first = string.byte(head, 1)
  if first == 116 or first == 99 or first == 113 then version = tonumber(string.sub(head, 2), 16) else version = tonumber(head, 16) end
  if version == nil or version > proposed + ${MAX_VERSION_LEAD} then return nil end
  return version
end
`

/**
 * True once Redis' clock is past `deadline` (epoch ms, or '' for none): the writer stopped waiting for
 * this write then and retries it conditionally, so a copy that arrives late (held up by the network)
 * must not apply and overwrite what came after it (store.ts).
 */
const EXPIRED = `local function expired(deadline)
  if deadline == nil or deadline == '' then return false end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > tonumber(deadline)
end
`

/**
 * A stamp as stored: its value; 0 when the key is missing; nil for garbage (not a decimal integer of at
 * most 16 digits, another Redis type, or more than MAX_VERSION_LEAD above `proposed`: store.ts).
 */
const STAMP_VALUE = `local function stamp_value(key, proposed)
  local raw = redis.pcall('GET', key)
  if raw == false then return 0 end
  if type(raw) ~= 'string' or #raw > 16 or not string.match(raw, '^%d+$') then return nil end
  local value = tonumber(raw)
  if value > proposed + ${MAX_VERSION_LEAD} then return nil end
  return value
end
`

/** Sets a stamp to `value` and keeps it for max(remaining, ttl) ms. */
const SET_STAMP = `local function set_stamp(key, value, ttl)
  local remaining = redis.call('PTTL', key)
  redis.call('SET', key, string.format('%d', value))
  if remaining > ttl then redis.call('PEXPIRE', key, remaining) else redis.call('PEXPIRE', key, ttl) end
end
`

/**
 * Publishes a write's announcement (store.ts, Announcement): the message with its last 8 bytes replaced by
 * \`number\` as a big-endian double (exact: versions and generations are integers below 2^53). Nothing for
 * an empty channel.
 */
const ANNOUNCE = `local function announce(channel, message, number)
  if channel == '' then return end
  redis.call('PUBLISH', channel, string.sub(message, 1, #message - 8) .. struct.pack('>d', number))
end
`

function script(body: string): Script {
  const source = STORED_VERSION + EXPIRED + STAMP_VALUE + SET_STAMP + ANNOUNCE + body
  return { source, sha1: createHash('sha1').update(source).digest('hex') }
}

/**
 * KEYS[1] entry key; ARGV[1] entry bytes, ARGV[2] proposed version (decimal), ARGV[3] TTL in ms.
 * Always writes, with version max(proposed, stored + 1); returns that version as 16 hex digits.
 */
const SET_ENTRY =
  script(`if expired(ARGV[4]) then return redis.error_reply('EXPIRED the writer gave up on this write') end
local version = tonumber(ARGV[2])
local stored = stored_version(KEYS[1], version)
if stored ~= nil and stored >= version then version = stored + 1 end
local head = string.format('%016x', version)
redis.call('SET', KEYS[1], head .. ARGV[1], 'PX', ARGV[3])
return head`)

/**
 * RemoteStore.setStamped. KEYS[1] entry key, KEYS[2..n+1] its stamp keys; ARGV[1] the value as stored
 * (header with the proposed version, then the entry bytes, each stamp's generation slot holding what the
 * writer knows), ARGV[2] proposed version (decimal), ARGV[3] TTL in ms, ARGV[4] deadline, ARGV[5] stamp
 * TTL in ms, ARGV[6] channel ('' for no announcement), ARGV[7] message; then per stamp i: ARGV[6 + 2i]
 * known generation (decimal), ARGV[7 + 2i] offset of its slot in the value. Each stamp's generation becomes
 * max(stored, known); a lost or garbage stamp is raised (to the known generation, or to the proposed version
 * when that is 0). The value is written as given and patched in place (SETRANGE) where the version or a
 * generation differs from what the writer sent, so the common case copies nothing in Lua (a concatenation
 * of the value cost as much as the rest of the script). Then it is announced. Returns the version (16 hex)
 * alone when every generation is the known one, else followed by ' ', the generations (decimal, comma
 * separated), ' ' and how many stamps were raised.
 */
const SET_STAMPED =
  script(`if expired(ARGV[4]) then return redis.error_reply('EXPIRED the writer gave up on this write') end
local proposed = tonumber(ARGV[2])
local version = proposed
local stored = stored_version(KEYS[1], version)
if stored ~= nil and stored >= version then version = stored + 1 end
local stamp_ttl = tonumber(ARGV[5])
local gens = nil
local patches = nil
local restored = 0
for i = 2, #KEYS do
  local known = tonumber(ARGV[4 + 2 * i])
  local value = stamp_value(KEYS[i], proposed)
  local gen = value
  if value == nil then
    if known > 0 then gen = known else gen = proposed end
  elseif value < known then
    gen = known
  end
  if gen ~= value then
    set_stamp(KEYS[i], gen, stamp_ttl)
    restored = restored + 1
  end
  if gen ~= known then
    patches = patches or {}
    patches[#patches + 1] = { tonumber(ARGV[5 + 2 * i]), struct.pack('>d', gen) }
  end
  gens = gens or {}
  gens[i - 1] = string.format('%d', gen)
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
local head = string.format('%016x', version)
if version ~= proposed then redis.call('SETRANGE', KEYS[1], 0, head) end
if patches ~= nil then
  for _, patch in ipairs(patches) do redis.call('SETRANGE', KEYS[1], patch[1], patch[2]) end
end
announce(ARGV[6], ARGV[7], version)
if patches == nil and restored == 0 then return head end
return head .. ' ' .. table.concat(gens, ',') .. ' ' .. restored`)

/**
 * KEYS[1] entry key; ARGV[1] header + entry bytes, ARGV[2] version (decimal), ARGV[3] TTL in ms.
 * Writes unless the stored entry or tombstone is as new or newer; then returns its version (16 hex).
 */
const SET_IF_NEWER = script(`local stored = stored_version(KEYS[1], tonumber(ARGV[2]))
if stored ~= nil and stored >= tonumber(ARGV[2]) then return string.format('%016x', stored) end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return false`)

/**
 * KEYS[1] entry key; ARGV[1] proposed version (decimal), ARGV[2] tombstone TTL in ms, ARGV[3] deadline,
 * ARGV[4] channel ('' for no announcement), ARGV[5] message.
 * Replaces the key with a tombstone of version max(proposed, stored + 1), announces it; returns it (16 hex).
 */
const DELETE_ENTRY =
  script(`if expired(ARGV[3]) then return redis.error_reply('EXPIRED the writer gave up on this write') end
local version = tonumber(ARGV[1])
local stored = stored_version(KEYS[1], version)
if stored ~= nil and stored >= version then version = stored + 1 end
redis.call('SET', KEYS[1], 't' .. string.format('%015x', version), 'PX', ARGV[2])
announce(ARGV[4], ARGV[5], version)
return string.format('%016x', version)`)

/**
 * KEYS[1] stamp key; ARGV[1] TTL in ms, ARGV[2] proposed generation (decimal), ARGV[3] '1' to raise
 * (RemoteStore.bumpStamps), ARGV[4] channel ('' for no announcement), ARGV[5] message. The stamp becomes
 * max(stored + 1, proposed), or max(stored, proposed) to raise, where garbage (stamp_value) counts as 0;
 * its TTL becomes max(remaining, ttl); then it is announced. Returns the new value as a decimal string (a
 * Lua number reply could lose precision in the client's parser).
 */
const BUMP_STAMP = script(`local proposed = tonumber(ARGV[2])
local stored = stamp_value(KEYS[1], proposed) or 0
if ARGV[3] ~= '1' then stored = stored + 1 end
local value = math.max(stored, proposed)
set_stamp(KEYS[1], value, tonumber(ARGV[1]))
announce(ARGV[4], ARGV[5], value)
return string.format('%d', value)`)

/**
 * KEYS[1] entry key; ARGV[1] version (decimal), ARGV[2] tombstone TTL in ms. Writes a tombstone of that
 * version unless the stored entry or tombstone is as new or newer; then returns its version (16 hex).
 */
const DELETE_IF_NEWER = script(`local stored = stored_version(KEYS[1], tonumber(ARGV[1]))
if stored ~= nil and stored >= tonumber(ARGV[1]) then return string.format('%016x', stored) end
redis.call('SET', KEYS[1], 't' .. string.format('%015x', tonumber(ARGV[1])), 'PX', ARGV[2])
return false`)

/**
 * KEYS[1] entry key; ARGV[1] entry bytes, ARGV[2] proposed version (decimal), ARGV[3] TTL in ms,
 * ARGV[4] tombstone TTL in ms, ARGV[5] order mark ('c', 'q', or '' for none), ARGV[6] order (16 hex),
 * ARGV[7] expected: '' not given, '-' nothing stored, else a version (decimal). The rules of
 * RemoteStore.setIf; returns 'w', 'd' or 's' followed by the version (16 hex).
 */
const SET_IF = script(`local proposed = tonumber(ARGV[2])
local stored = stored_version(KEYS[1], proposed)
local version = proposed
if stored ~= nil and stored >= version then version = stored + 1 end
local mark = ARGV[5]
local function write()
  local head
  if mark == '' then head = string.format('%016x', version) else head = mark .. string.format('%015x', version) .. ARGV[6] end
  redis.call('SET', KEYS[1], head .. ARGV[1], 'PX', ARGV[3])
  return 'w' .. string.format('%016x', version)
end
if mark ~= '' and stored ~= nil then
  local head = redis.call('GETRANGE', KEYS[1], 0, 31)
  local order = string.sub(head, 17, 32)
  if #head == 32 and string.sub(head, 1, 1) == mark and string.match(order, '^[0-9a-f]+$') then
    if order >= ARGV[6] then return 's' .. string.format('%016x', stored) end
    return write()
  end
end
local expected = ARGV[7]
if expected == '' or (expected == '-' and stored == nil) or (stored ~= nil and stored == tonumber(expected)) then
  return write()
end
redis.call('SET', KEYS[1], 't' .. string.format('%015x', version), 'PX', ARGV[4])
return 'd' .. string.format('%016x', version)`)

/** KEYS[1] lease key; ARGV[1] token. Deletes the lease only if it still holds the token. */
const RELEASE_LEASE =
  script(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT')
}

async function runScript(
  connection: RedisConnection,
  { source, sha1 }: Script,
  key: string,
  args: RedisArgument[],
  moreKeys: readonly string[] = [],
): Promise<unknown> {
  const keys = [String(1 + moreKeys.length), key, ...moreKeys]
  try {
    return await connection.send(key, ['EVALSHA', sha1, ...keys, ...args])
  } catch (error) {
    if (!isNoScript(error)) throw error
    // The server lost its script cache (restart, failover, SCRIPT FLUSH): EVAL runs and re-caches it.
    return connection.send(key, ['EVAL', source, ...keys, ...args])
  }
}

/** An announcement as the scripts take it: channel and message, or two empty strings for none. */
function announceArguments(announce: Announcement | undefined): RedisArgument[] {
  if (announce === undefined) return ['', '']
  if (announce.message.byteLength < 8)
    throw new RangeError('an announcement message ends with 8 bytes to fill')
  return [announce.channel, toBuffer(announce.message)]
}

// ---------------------------------------------------------------------------------------------------------
// Encoding

const HEADER_BYTES = 16
const ORDERED_HEADER_BYTES = 32 // mark, version, order
const TOMBSTONE = 0x74 // 't'
const COMMIT_ORDERED = 0x63 // 'c'
const QUEUE_ORDERED = 0x71 // 'q'
const MAX_ORDER = (1n << 64n) - 1n
const OUTCOMES = { w: 'written', d: 'deleted', s: 'superseded' } as const

function checkVersion(version: number): void {
  if (!Number.isSafeInteger(version) || version < 0) {
    throw new RangeError(`version must be a non-negative integer below 2^53, got ${version}`)
  }
}

function deadlineArgument(deadline: number | undefined): string {
  return deadline === undefined || !Number.isFinite(deadline) ? '' : String(Math.ceil(deadline))
}

function ttlArgument(ttlMs: number): string {
  if (!Number.isFinite(ttlMs)) throw new RangeError(`ttlMs must be a finite number, got ${ttlMs}`)
  return String(Math.max(1, Math.ceil(ttlMs)))
}

function encodeEntry(bytes: Uint8Array, version: number): Buffer {
  const value = Buffer.allocUnsafe(HEADER_BYTES + bytes.byteLength)
  value.write(version.toString(16).padStart(HEADER_BYTES, '0'), 0, HEADER_BYTES, 'latin1')
  value.set(bytes, HEADER_BYTES)
  return value
}

/** Parses hex digits `value[from..16)`; NaN when they are not all hex. */
function decodeVersion(value: Buffer, from = 0): number {
  let version = 0
  for (let i = from; i < HEADER_BYTES; i++) {
    const c = value[i]!
    const digit =
      c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1
    if (digit < 0) return Number.NaN
    version = version * 16 + digit
  }
  return version
}

/** A version a script returned as 16 hex digits. */
function scriptVersion(reply: unknown): number {
  const version = Buffer.isBuffer(reply) && reply.length === HEADER_BYTES ? decodeVersion(reply) : Number.NaN
  if (Number.isNaN(version))
    throw new CorruptEntryError(`unexpected reply from a store script: ${String(reply)}`)
  return version
}

/** An order as a setIf script compares it: 16 lowercase hex digits. */
function orderArgument(order: bigint): string {
  if (typeof order !== 'bigint' || order < 0n || order > MAX_ORDER) {
    throw new RangeError(`order must be an integer from 0 to 2^64 - 1, got ${String(order)}`)
  }
  return order.toString(16).padStart(16, '0')
}

/** A stamp as stored: 0 when missing, NaN when it is not a non-negative decimal integer (garbage). */
function decodeStamp(value: unknown): number {
  if (value === null || value === undefined) return 0
  const text = Buffer.isBuffer(value) ? value.toString('latin1') : String(value)
  return /^\d{1,16}$/.test(text) ? Number(text) : Number.NaN
}

// ---------------------------------------------------------------------------------------------------------
// Store

class RedisStore implements RemoteStore {
  readonly name: string
  /** The write-behind queue, on Redis Streams over the same connection. */
  readonly queue: RedisQueueLog
  private readonly connection: RedisConnection

  /**
   * Not on a Cluster: the stamps live in other slots than the entry, and no script may touch two slots
   * (the cache then reads them first: docs/decisions.md, "One round trip per write").
   */
  readonly setStamped: RemoteStore['setStamped']

  constructor(connection: RedisConnection) {
    this.connection = connection
    this.name = connection.isCluster ? 'redis-cluster' : connection.isSentinel ? 'redis-sentinel' : 'redis'
    this.queue = new RedisQueueLog(connection)
    this.setStamped = connection.isCluster ? undefined : this.writeStamped
    registerConnection(this, connection)
  }

  /** Same server as a redisBus of ours (RedisConnection.sameServerAs); never on a Cluster. */
  canAnnounce(bus: Bus): boolean {
    const busConnection = connectionOf(bus)
    return busConnection !== undefined && this.connection.sameServerAs(busConnection)
  }

  /** A GET and its reply checked; no async frame (every L2 hit comes through here: one promise step less). */
  get(key: string): Promise<StoredEntry | undefined> {
    return this.connection.send(key, ['GET', key], true).then(
      (value) => storedEntry(key, value as Buffer | null),
      (err: unknown) => {
        // Another Redis type under our key (a hash, a list): garbage, which the next write replaces.
        if (err instanceof Error && err.message.startsWith('WRONGTYPE')) {
          throw new CorruptEntryError(`L2 key ${key} holds a value of another Redis type`)
        }
        throw err
      },
    )
  }

  async set(
    key: string,
    bytes: Uint8Array,
    version: number,
    ttlMs: number,
    deadline?: number,
  ): Promise<number> {
    checkVersion(version)
    const ttl = ttlArgument(ttlMs)
    return scriptVersion(
      await runScript(this.connection, SET_ENTRY, key, [
        toBuffer(bytes),
        String(version),
        ttl,
        deadlineArgument(deadline),
      ]),
    )
  }

  private readonly writeStamped = async (
    key: string,
    bytes: Uint8Array,
    version: number,
    ttlMs: number,
    stamps: EntryStamps,
    deadline?: number,
    announce?: Announcement,
  ): Promise<StampedWrite> => {
    checkVersion(version)
    const count = stamps.keys.length
    if (stamps.known.length !== count || stamps.offsets.length !== count) {
      throw new RangeError('setStamped: keys, known and offsets must have one element per stamp')
    }
    const args: RedisArgument[] = [
      encodeEntry(bytes, version),
      String(version),
      ttlArgument(ttlMs),
      deadlineArgument(deadline),
      ttlArgument(stamps.ttlMs),
      ...announceArguments(announce),
    ]
    for (let i = 0; i < count; i++) {
      const known = stamps.known[i]!
      const offset = stamps.offsets[i]!
      checkVersion(known)
      if (!Number.isSafeInteger(offset) || offset < 0 || offset + 8 > bytes.byteLength) {
        throw new RangeError(`setStamped: stamp offset ${offset} is outside the entry bytes`)
      }
      args.push(String(known), String(HEADER_BYTES + offset))
    }
    const reply = await runScript(this.connection, SET_STAMPED, key, args, stamps.keys)
    if (!Buffer.isBuffer(reply))
      throw new CorruptEntryError(`unexpected reply from a store script: ${String(reply)}`)
    const given = scriptVersion(reply.subarray(0, HEADER_BYTES))
    if (reply.length === HEADER_BYTES) return { version: given, gens: [...stamps.known], restored: 0 }
    // '<version> <gen>,<gen>,... <restored>'
    const parts = reply.toString('latin1', HEADER_BYTES + 1).split(' ')
    const gens = parts[0] === undefined || parts[0] === '' ? [] : parts[0].split(',').map(decodeStamp)
    const restored = decodeStamp(parts[1])
    if (
      parts.length !== 2 ||
      reply[HEADER_BYTES] !== 0x20 ||
      gens.length !== count ||
      !gens.every((gen) => gen >= 0) ||
      !(restored >= 0 && restored <= count)
    ) {
      throw new CorruptEntryError(`unexpected reply from a store script: ${reply.toString('latin1')}`)
    }
    return { version: given, gens, restored }
  }

  async setIfNewer(
    key: string,
    bytes: Uint8Array,
    version: number,
    ttlMs: number,
  ): Promise<number | undefined> {
    checkVersion(version)
    const ttl = ttlArgument(ttlMs)
    const args = [encodeEntry(bytes, version), String(version), ttl]
    const stored = await runScript(this.connection, SET_IF_NEWER, key, args)
    return stored === null ? undefined : scriptVersion(stored)
  }

  async delete(
    key: string,
    version: number,
    tombstoneTtlMs: number,
    deadline?: number,
    announce?: Announcement,
  ): Promise<number> {
    checkVersion(version)
    const args = [
      String(version),
      ttlArgument(tombstoneTtlMs),
      deadlineArgument(deadline),
      ...announceArguments(announce),
    ]
    return scriptVersion(await runScript(this.connection, DELETE_ENTRY, key, args))
  }

  async deleteIfNewer(key: string, version: number, tombstoneTtlMs: number): Promise<number | undefined> {
    checkVersion(version)
    const args = [String(version), ttlArgument(tombstoneTtlMs)]
    const stored = await runScript(this.connection, DELETE_IF_NEWER, key, args)
    return stored === null ? undefined : scriptVersion(stored)
  }

  /** GETRANGE of the first 16 bytes and the stamps, sent in one tick: node-redis pipelines them. */
  head(key: string, stampKeys: readonly string[]): Promise<EntryHead> {
    const range = this.connection
      .send(key, ['GETRANGE', key, '0', String(HEADER_BYTES - 1)], true)
      .then(undefined, (err: unknown) => {
        // Another Redis type under the key: garbage, read as nothing (the next write replaces it).
        if (err instanceof Error && err.message.startsWith('WRONGTYPE')) return null
        throw err
      })
    if (stampKeys.length === 0) return range.then((head) => parseHead(head, []))
    return Promise.all([range, this.getStamps(stampKeys)]).then(([head, stamps]) => parseHead(head, stamps))
  }

  async setIf(
    key: string,
    bytes: Uint8Array,
    version: number,
    ttlMs: number,
    condition: WriteCondition,
  ): Promise<ConditionalWrite> {
    checkVersion(version)
    const { order, expected } = condition
    if (expected !== undefined && expected !== null) checkVersion(expected)
    const args = [
      toBuffer(bytes),
      String(version),
      ttlArgument(ttlMs),
      ttlArgument(condition.tombstoneTtlMs),
      order === undefined ? '' : order.domain === 'commit' ? 'c' : 'q',
      order === undefined ? '' : orderArgument(order.value),
      expected === undefined ? '' : expected === null ? '-' : String(expected),
    ]
    const reply = await runScript(this.connection, SET_IF, key, args)
    const outcome =
      Buffer.isBuffer(reply) && reply.length === HEADER_BYTES + 1
        ? OUTCOMES[String.fromCharCode(reply[0]!) as keyof typeof OUTCOMES]
        : undefined
    if (outcome === undefined)
      throw new CorruptEntryError(`unexpected reply from a store script: ${String(reply)}`)
    return { outcome, version: scriptVersion((reply as Buffer).subarray(1)) }
  }

  async getStamps(keys: readonly string[]): Promise<number[]> {
    if (keys.length === 0) return []
    if (!this.connection.isCluster) {
      const values = (await this.connection.send(undefined, ['MGET', ...keys], true)) as (Buffer | null)[]
      return values.map((value) => decodeStamp(value))
    }
    // A Cluster refuses multi-key commands across slots: one GET per key, routed and pipelined by node-redis.
    return Promise.all(
      keys.map(async (key) => decodeStamp(await this.connection.send(key, ['GET', key], true))),
    )
  }

  async bumpStamps(
    keys: readonly string[],
    ttlMs: number,
    proposed = 0,
    raise = false,
    announce?: readonly Announcement[],
  ): Promise<number[]> {
    if (keys.length === 0) return []
    checkVersion(proposed)
    if (announce !== undefined && announce.length !== keys.length) {
      throw new RangeError('bumpStamps: one announcement per key')
    }
    const args = [ttlArgument(ttlMs), String(proposed), raise ? '1' : '0']
    // One script per key (never two slots in one command); node-redis sends them in one pipeline.
    return Promise.all(
      keys.map(async (key, i) =>
        decodeStamp(
          await runScript(this.connection, BUMP_STAMP, key, [...args, ...announceArguments(announce?.[i])]),
        ),
      ),
    )
  }

  async acquireLease(key: string, token: string, ttlMs: number): Promise<boolean> {
    const reply = await this.connection.send(key, ['SET', key, token, 'NX', 'PX', ttlArgument(ttlMs)])
    return reply !== null
  }

  async releaseLease(key: string, token: string): Promise<boolean> {
    return (await runScript(this.connection, RELEASE_LEASE, key, [token])) === 1
  }

  /** Each time the connection is ready again after a loss; on a Cluster, see watchCluster (connection.ts). */
  onReconnect(listener: () => void): () => void {
    return this.connection.onReconnect(listener)
  }

  close(): Promise<void> {
    return this.connection.close()
  }

  /** What util.inspect shows: never the client or the options as given (they hold the secrets). */
  [INSPECT](): unknown {
    return { name: this.name, connection: this.connection.options }
  }
}

/** What a GET of an entry key holds (see the layout at the top): the entry, or undefined. */
function storedEntry(key: string, value: Buffer | null): StoredEntry | undefined {
  if (value === null || (value.length === HEADER_BYTES && value[0] === TOMBSTONE)) return undefined
  if (value[0] === COMMIT_ORDERED || value[0] === QUEUE_ORDERED) {
    // An ordered write's entry: the version after the mark, then the order, then the bytes.
    const version = value.length >= ORDERED_HEADER_BYTES ? decodeVersion(value, 1) : Number.NaN
    if (Number.isNaN(version)) throw new CorruptEntryError(`L2 entry ${key} has a broken ordered header`)
    return { bytes: value.subarray(ORDERED_HEADER_BYTES), version }
  }
  const version = value.length >= HEADER_BYTES ? decodeVersion(value) : Number.NaN
  if (Number.isNaN(version)) throw new CorruptEntryError(`L2 entry ${key} has no version header`)
  // No copy: `bytes` is a view into the socket chunk node-redis read the reply from (a fresh buffer per
  // read, never reused or written to). The cache decodes it at once and keeps nothing that points into
  // it (the codec copies binary leaves), so the chunk lives no longer than the call. Copying cost about
  // 1 µs per 1 KiB get (a fresh ArrayBuffer each time), a tenth of the whole L2 hit path. Like
  // memoryStore's, these bytes are shared: a caller of the store that keeps them should copy them.
  return { bytes: value.subarray(HEADER_BYTES), version }
}

/** What GETRANGE 0 15 of an entry key says (see the layout at the top). */
function parseHead(head: unknown, stamps: number[]): EntryHead {
  if (!Buffer.isBuffer(head) || head.length !== HEADER_BYTES)
    return { version: undefined, deleted: false, stamps }
  const first = head[0]
  const marked = first === TOMBSTONE || first === COMMIT_ORDERED || first === QUEUE_ORDERED
  const version = decodeVersion(head, marked ? 1 : 0)
  return {
    version: Number.isNaN(version) ? undefined : version,
    deleted: first === TOMBSTONE && !Number.isNaN(version),
    stamps,
  }
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/**
 * An L2 on Redis or Redis Cluster. Connects on first use; `close()` closes what it opened (a `client`
 * passed in stays open).
 *
 * @example
 * redisStore({ url: 'rediss://cache:secret@redis.internal:6380' })
 * redisStore({ cluster: [{ host: '10.0.0.1', port: 7000 }], password: 'secret', socket: { tls: true, ca } })
 * redisStore({ client: await createClient({ url }).connect() })
 */
export function redisStore(options: RedisStoreOptions): RemoteStore {
  return new RedisStore(redisConnection(options, 'redisStore'))
}
