/**
 * The memcached L2, on memjs (memcached's binary protocol: binary-safe values and keys).
 * Long because every operation of the store contract is a compare-and-swap loop of its own (Redis does each
 * in one script); they share the loop (update()) and the item layout, which are kept here with them.
 *
 * memcached has no scripts, so each ordering rule of the store contract (store.ts) is a compare-and-swap
 * loop on memcached's own CAS tokens: read the item with its token (GET), decide, then write it back
 * with that token (SET with CAS), or with ADD when there was no item; a write that lost a race (the
 * token changed, or someone added first) re-reads and decides again. memjs has no gets/cas calls of its
 * own, so these requests are built with its exported `Utils.makeRequestBuffer` and sent with
 * `Client.perform`, the way its own commands are, with the token in the header's CAS field.
 *
 * Item layout: `<kind: 1 byte><version or counter: float64><expires at, epoch ms: float64><payload>`,
 * kind 'e' entry, 't' tombstone, 's' stamp, 'l' lease, and 'c' / 'q' for an entry of an ordered write
 * (setIf with a commit or queue order), whose payload starts with the order (8 bytes, big-endian). Both numbers are integers below 2^53, exact as
 * doubles. An item that is none of these (too short, another kind, numbers that are not integers, or a
 * version more than MAX_VERSION_LEAD above a write's proposal) is garbage (store.ts): get() reports it
 * corrupt, a stamp reads as NaN, and the next write replaces it.
 *
 * Expiry: memcached counts TTLs in whole seconds, and an item set to live 1 s may be gone after a few
 * milliseconds or live almost 2 s (its clock ticks once a second). So the store keeps expiry itself:
 * every item carries its expiry time in milliseconds and reads treat an item past it as absent; the
 * server's TTL is that, rounded up, plus a second, only to reclaim memory. Expiry therefore follows the
 * clocks of the writing nodes, not the server's: skew between nodes shifts it by the skew.
 * A stamp's TTL is extended and never shortened the same way (memcached's `touch` would set it, not
 * extend it, so it is not used), and a lease's expiry is checked by whoever wants to take it over.
 *
 * Weaker than Redis, stated plainly:
 * - Writes of one key from many clients at once can retry (CAS conflicts); after 50 lost races in a row
 *   a call fails (the cache treats it as an L2 failure). Redis' scripts never retry.
 * - memcached may evict any item under memory pressure, tombstones and stamps included (Redis, without
 *   a maxmemory policy, does not): an evicted tombstone lets an older load be written again, an evicted
 *   stamp reads as 0 and can make entries written before an invalidation look current. Give memcached
 *   memory for the working set, or use it behind shardedStore, which keeps stamps on every member.
 * - Values are limited by memcached's item size (`-I`, 1 MiB by default, including the 17-byte header).
 * - Keys longer than 200 bytes, or with spaces or control characters, are stored under `~` and their
 *   SHA-256 (memcached keys are at most 250 bytes).
 */
import { createHash } from 'node:crypto'
import memjs from 'memjs'
import { type Clock, systemClock } from '../clock.js'
import { MAX_VERSION_LEAD } from '../coherence/hlc.js'
import { type Duration, parseDuration } from '../duration.js'
import { CacheClosedError, CorruptEntryError, InvalidOptionError } from '../errors.js'
import type { ConditionalWrite, EntryHead, RemoteStore, StoredEntry, WriteCondition } from './store.js'

export interface MemcachedStoreOptions {
  /** `memcached://[user:password@]host[:port]` (SASL credentials for managed memcached). */
  url?: string
  /** A memjs client of the application's; `close()` leaves it open. */
  client?: memjs.Client
  /** How long memjs waits for a reply before it drops the connection. @default '500ms' */
  timeout?: Duration
  /** @default systemClock */
  clock?: Clock
}

const OP_GET = 0x00
const OP_SET = 0x01
const OP_ADD = 0x02
const OP_DELETE = 0x04
const STATUS_OK = 0x0000
const STATUS_NOT_FOUND = 0x0001
const STATUS_EXISTS = 0x0002
const STATUS_NOT_STORED = 0x0005

const HEADER_BYTES = 17
const ENTRY = 0x65 // 'e'
const TOMBSTONE = 0x74 // 't'
const STAMP = 0x73 // 's'
const LEASE = 0x6c // 'l'
const COMMIT_ORDERED = 0x63 // 'c'
const QUEUE_ORDERED = 0x71 // 'q'
const ORDER_BYTES = 8
const MAX_ATTEMPTS = 50 // CAS races lost in a row before a call gives up
const MAX_PLAIN_KEY = 200 // longer keys are stored under their hash (memcached's limit is 250)
const MAX_RELATIVE_TTL_S = 30 * 86_400 // memcached reads larger expirations as a Unix time

interface Item {
  kind: number
  /** Version (entry, tombstone) or counter (stamp). */
  number: number
  expiresAt: number
  payload: Buffer
}

interface Read {
  /** The live item; undefined if there is none or it expired. */
  item: Item | undefined
  /** The CAS token of whatever memcached holds (a live or expired item); undefined if nothing. */
  cas: Buffer | undefined
}

function checkVersion(version: number): void {
  if (!Number.isSafeInteger(version) || version < 0) {
    throw new RangeError(`version must be a non-negative integer below 2^53, got ${version}`)
  }
}

function checkTtl(ttlMs: number): void {
  if (!Number.isFinite(ttlMs)) throw new RangeError(`ttlMs must be a finite number, got ${ttlMs}`)
}

function encode(kind: number, number: number, expiresAt: number, payload?: Uint8Array): Buffer {
  const value = Buffer.allocUnsafe(HEADER_BYTES + (payload?.byteLength ?? 0))
  value[0] = kind
  value.writeDoubleBE(number, 1)
  value.writeDoubleBE(expiresAt, 9)
  if (payload !== undefined) value.set(payload, HEADER_BYTES)
  return value
}

class MemcachedStore implements RemoteStore {
  readonly name = 'memcached'
  private readonly client: memjs.Client
  private readonly ownsClient: boolean
  private readonly clock: Clock
  private closed = false

  constructor(client: memjs.Client, ownsClient: boolean, clock: Clock) {
    this.client = client
    this.ownsClient = ownsClient
    this.clock = clock
  }

  async get(key: string): Promise<StoredEntry | undefined> {
    const { item } = await this.read(key)
    if (item === undefined || item.kind === TOMBSTONE) return undefined
    if (isOrdered(item)) return { bytes: item.payload.subarray(ORDER_BYTES), version: item.number }
    if (item.kind !== ENTRY) throw new CorruptEntryError(`L2 item ${key} is not an entry`)
    return { bytes: item.payload, version: item.number }
  }

  async head(key: string, stampKeys: readonly string[]): Promise<EntryHead> {
    // memcached reads whole items: the value comes along and is dropped here.
    const [{ item }, stamps] = await Promise.all([this.read(key), this.getStamps(stampKeys)])
    const known = item !== undefined && (item.kind === ENTRY || item.kind === TOMBSTONE || isOrdered(item))
    return {
      version: known ? item.number : undefined,
      deleted: known && item.kind === TOMBSTONE,
      stamps,
    }
  }

  async setIf(
    key: string,
    bytes: Uint8Array,
    version: number,
    ttlMs: number,
    condition: WriteCondition,
  ): Promise<ConditionalWrite> {
    checkVersion(version)
    checkTtl(ttlMs)
    const { order, expected, tombstoneTtlMs } = condition
    checkTtl(tombstoneTtlMs)
    const kind = order === undefined ? ENTRY : order.domain === 'commit' ? COMMIT_ORDERED : QUEUE_ORDERED
    let payload: Uint8Array = bytes
    if (order !== undefined) {
      if (order.value < 0n || order.value >= 1n << 64n) throw new RangeError('order must fit in 64 bits')
      const prefixed = Buffer.allocUnsafe(ORDER_BYTES + bytes.byteLength)
      prefixed.writeBigUInt64BE(order.value, 0)
      prefixed.set(bytes, ORDER_BYTES)
      payload = prefixed
    }
    // The TTL passed to update() is the longer one: the item written is either an entry or a tombstone.
    return this.update<ConditionalWrite>(key, Math.max(ttlMs, tombstoneTtlMs), (item) => {
      const stored = versionOf(item, version)
      const given = stored !== undefined && stored >= version ? stored + 1 : version
      const written = () => ({
        write: encode(kind, given, this.clock.now() + ttlMs, payload),
        result: { outcome: 'written' as const, version: given },
        expiresAt: this.clock.now() + ttlMs,
      })
      if (
        order !== undefined &&
        stored !== undefined &&
        item!.kind === kind &&
        item!.payload.length >= ORDER_BYTES
      ) {
        if (item!.payload.readBigUInt64BE(0) >= order.value) {
          return { write: undefined, result: { outcome: 'superseded' as const, version: stored } }
        }
        return written()
      }
      if (expected === undefined || (stored ?? null) === expected) return written()
      return {
        write: encode(TOMBSTONE, given, this.clock.now() + tombstoneTtlMs),
        result: { outcome: 'deleted' as const, version: given },
        expiresAt: this.clock.now() + tombstoneTtlMs,
      }
    })
  }

  // Every write below decides on `versionOf(item, proposed)`: garbage reads as no item at all.

  async set(
    key: string,
    bytes: Uint8Array,
    version: number,
    ttlMs: number,
    deadline?: number,
  ): Promise<number> {
    checkVersion(version)
    checkTtl(ttlMs)
    return this.update(key, ttlMs, (item) => {
      this.checkDeadline(deadline)
      const stored = versionOf(item, version)
      const given = stored !== undefined && stored >= version ? stored + 1 : version
      return { write: encode(ENTRY, given, this.clock.now() + ttlMs, bytes), result: given }
    })
  }

  async setIfNewer(
    key: string,
    bytes: Uint8Array,
    version: number,
    ttlMs: number,
  ): Promise<number | undefined> {
    checkVersion(version)
    checkTtl(ttlMs)
    return this.update(key, ttlMs, (item) => {
      const stored = versionOf(item, version)
      if (stored !== undefined && stored >= version) return { write: undefined, result: stored }
      return { write: encode(ENTRY, version, this.clock.now() + ttlMs, bytes), result: undefined }
    })
  }

  async delete(key: string, version: number, tombstoneTtlMs: number, deadline?: number): Promise<number> {
    checkVersion(version)
    checkTtl(tombstoneTtlMs)
    return this.update(key, tombstoneTtlMs, (item) => {
      this.checkDeadline(deadline)
      const stored = versionOf(item, version)
      const given = stored !== undefined && stored >= version ? stored + 1 : version
      return { write: encode(TOMBSTONE, given, this.clock.now() + tombstoneTtlMs), result: given }
    })
  }

  async deleteIfNewer(key: string, version: number, tombstoneTtlMs: number): Promise<number | undefined> {
    checkVersion(version)
    checkTtl(tombstoneTtlMs)
    return this.update(key, tombstoneTtlMs, (item) => {
      const stored = versionOf(item, version)
      if (stored !== undefined && stored >= version) return { write: undefined, result: stored }
      return { write: encode(TOMBSTONE, version, this.clock.now() + tombstoneTtlMs), result: undefined }
    })
  }

  async getStamps(keys: readonly string[]): Promise<number[]> {
    return Promise.all(
      keys.map(async (key) => {
        const { item } = await this.read(key)
        if (item === undefined) return 0
        return item.kind === STAMP ? item.number : Number.NaN
      }),
    )
  }

  async bumpStamps(keys: readonly string[], ttlMs: number, proposed = 0, raise = false): Promise<number[]> {
    checkTtl(ttlMs)
    checkVersion(proposed)
    return Promise.all(
      keys.map((key) =>
        this.update(key, ttlMs, (item) => {
          const stamp = item?.kind === STAMP && item.number <= proposed + MAX_VERSION_LEAD ? item : undefined
          const value = Math.max((stamp?.number ?? 0) + (raise ? 0 : 1), proposed)
          // The TTL becomes max(remaining, ttl): memcached's touch would set it, shortening it too.
          const expiresAt = Math.max(stamp?.expiresAt ?? 0, this.clock.now() + ttlMs)
          return { write: encode(STAMP, value, expiresAt), result: value, expiresAt }
        }),
      ),
    )
  }

  async acquireLease(key: string, token: string, ttlMs: number): Promise<boolean> {
    checkTtl(ttlMs)
    return this.update(key, ttlMs, (item) => {
      if (item?.kind === LEASE) return { write: undefined, result: false } // garbage is taken over
      return { write: encode(LEASE, 0, this.clock.now() + ttlMs, Buffer.from(token)), result: true }
    })
  }

  async releaseLease(key: string, token: string): Promise<boolean> {
    const { item, cas } = await this.read(key)
    if (item === undefined || item.kind !== LEASE || item.payload.toString() !== token) return false
    // Deleted only if it is still the item we read: a lease taken over since has another token.
    const response = await this.request(OP_DELETE, key, Buffer.alloc(0), Buffer.alloc(0), cas)
    if (response.header.status === STATUS_OK) return true
    if (response.header.status === STATUS_NOT_FOUND || response.header.status === STATUS_EXISTS) return false
    throw this.failure('delete', response.header.status)
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.ownsClient) this.client.close()
  }

  // ---- compare-and-swap ------------------------------------------------------------------------------

  /**
   * The CAS loop: `decide` sees the live item (or undefined) and says what to write (nothing, to leave
   * it) and what to resolve to; the write carries the token of what was read, so it lands only if
   * nothing changed in between, and otherwise the loop reads again.
   */
  private async update<T>(
    key: string,
    ttlMs: number,
    decide: (item: Item | undefined) => { write: Buffer | undefined; result: T; expiresAt?: number },
  ): Promise<T> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const { item, cas } = await this.read(key)
      const { write, result, expiresAt } = decide(item)
      if (write === undefined) return result
      const lifetimeMs = expiresAt === undefined ? ttlMs : expiresAt - this.clock.now()
      const extras = Buffer.alloc(8)
      extras.writeUInt32BE(serverExpiration(lifetimeMs), 4)
      const response =
        cas === undefined
          ? await this.request(OP_ADD, key, extras, write)
          : await this.request(OP_SET, key, extras, write, cas)
      const { status } = response.header
      if (status === STATUS_OK) return result
      // Lost a race: someone wrote (EXISTS), added first (NOT_STORED) or the item went (NOT_FOUND).
      if (status !== STATUS_EXISTS && status !== STATUS_NOT_FOUND && status !== STATUS_NOT_STORED) {
        throw this.failure(cas === undefined ? 'add' : 'cas', status)
      }
    }
    throw new Error(`memcachedStore: gave up on ${key} after ${MAX_ATTEMPTS} conflicting writes`)
  }

  /**
   * The writer stops waiting at `deadline` and retries conditionally (store.ts): a CAS round that would
   * write after it does not. (The compare-and-swap makes a late final write land only over what it read.)
   */
  private checkDeadline(deadline: number | undefined): void {
    if (deadline !== undefined && this.clock.now() > deadline)
      throw new Error('memcachedStore: the writer gave up on this write')
  }

  private async read(key: string): Promise<Read> {
    const response = await this.request(OP_GET, key, Buffer.alloc(0), Buffer.alloc(0))
    const { status } = response.header
    if (status === STATUS_NOT_FOUND) return { item: undefined, cas: undefined }
    if (status !== STATUS_OK) throw this.failure('get', status)
    const value = response.val
    const cas = Buffer.from(response.header.cas)
    if (value.length < HEADER_BYTES) return { item: GARBAGE, cas }
    const item: Item = {
      kind: value[0]!,
      number: value.readDoubleBE(1),
      expiresAt: value.readDoubleBE(9),
      payload: value.subarray(HEADER_BYTES),
    }
    if (!(Number.isSafeInteger(item.number) && item.number >= 0) || Number.isNaN(item.expiresAt)) {
      return { item: GARBAGE, cas }
    }
    return { item: item.expiresAt > this.clock.now() ? item : undefined, cas }
  }

  private request(opcode: number, key: string, extras: Buffer, value: Buffer, cas?: Buffer) {
    if (this.closed) return Promise.reject(new CacheClosedError())
    const client = this.client
    const name = storedKey(key)
    client.incrSeq()
    const seq = client.seq
    const request = memjs.Utils.makeRequestBuffer(opcode, name, extras, value, seq)
    if (cas !== undefined) cas.copy(request, 16) // the header's CAS field
    return new Promise<memjs.Response>((resolve, reject) => {
      client.perform(
        key,
        request,
        seq,
        (err: Error | string | null, response?: memjs.Response) => {
          if (err) reject(err instanceof Error ? err : new Error(`memcached: ${String(err)}`))
          else resolve(response!)
        },
        1,
      )
    })
  }

  private failure(operation: string, status: number): Error {
    return new Error(`memcached ${operation} failed with status 0x${status.toString(16).padStart(4, '0')}`)
  }
}

/** What a read makes of an item none of our writes could have left: kept until a write replaces it. */
const GARBAGE: Item = {
  kind: 0,
  number: Number.NaN,
  expiresAt: Number.POSITIVE_INFINITY,
  payload: Buffer.alloc(0),
}

/** The version of an entry or tombstone, unless `item` is something else or garbage next to `proposed`. */
function versionOf(item: Item | undefined, proposed: number): number | undefined {
  if (item === undefined || (item.kind !== ENTRY && item.kind !== TOMBSTONE && !isOrdered(item)))
    return undefined
  return item.number <= proposed + MAX_VERSION_LEAD ? item.number : undefined
}

/** An entry written by an ordered setIf: its payload starts with the order. */
function isOrdered(item: Item): boolean {
  return (item.kind === COMMIT_ORDERED || item.kind === QUEUE_ORDERED) && item.payload.length >= ORDER_BYTES
}

/** memcached's expiration for an item that must live `lifetimeMs`: whole seconds, plus one of slack. */
function serverExpiration(lifetimeMs: number): number {
  const seconds = Math.max(1, Math.ceil(lifetimeMs / 1000) + 1)
  return seconds <= MAX_RELATIVE_TTL_S ? seconds : Math.floor(Date.now() / 1000) + seconds
}

/** The memcached key for `key`: itself when memcached takes it as is, else `~` and its SHA-256. */
function storedKey(key: string): Buffer {
  const bytes = Buffer.from(key)
  if (bytes.length <= MAX_PLAIN_KEY && bytes[0] !== 0x7e && !hasControlOrSpace(bytes)) return bytes
  return Buffer.from(`~${createHash('sha256').update(bytes).digest('base64url')}`)
}

function hasControlOrSpace(bytes: Buffer): boolean {
  for (const byte of bytes) if (byte <= 0x20 || byte === 0x7f) return true
  return false
}

function parseUrl(url: unknown): string {
  if (typeof url !== 'string') throw new InvalidOptionError('url', 'expected a memcached:// URL')
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new InvalidOptionError('url', `cannot parse ${JSON.stringify(url)}`)
  }
  if (parsed.protocol !== 'memcached:') throw new InvalidOptionError('url', 'expected a memcached:// URL')
  if (parsed.hostname === '') throw new InvalidOptionError('url', 'the URL names no host')
  const auth = parsed.username
    ? `${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}@`
    : ''
  return `${auth}${parsed.hostname}:${parsed.port || '11211'}`
}

/**
 * An L2 on one memcached server (put several behind shardedStore for a pool). Connects on first use;
 * `close()` closes what it opened (a `client` passed in stays open).
 *
 * @example
 * memcachedStore({ url: 'memcached://127.0.0.1:11211' })
 * shardedStore(['10.0.0.1', '10.0.0.2'].map((host) => ({ name: host, store: memcachedStore({ url: `memcached://${host}:11211` }) })))
 */
export function memcachedStore(options: MemcachedStoreOptions): RemoteStore {
  if (options === null || typeof options !== 'object') {
    throw new InvalidOptionError('options', 'memcachedStore needs { url } or { client }')
  }
  const clock = options.clock ?? systemClock
  if (options.client !== undefined) {
    if (options.url !== undefined) throw new InvalidOptionError('url', 'give either url or client, not both')
    if (typeof (options.client as { perform?: unknown }).perform !== 'function') {
      throw new InvalidOptionError('client', 'expected a memjs Client')
    }
    return new MemcachedStore(options.client, false, clock)
  }
  const server = parseUrl(options.url)
  const timeoutMs = parseDuration(options.timeout ?? 500, 'timeout', { allowZero: false })
  const client = memjs.Client.create(server, {
    // One attempt per call, no failover to other servers (shardedStore decides that), no logging.
    retries: 1,
    failover: false,
    timeout: timeoutMs / 1000,
    logger: { log: () => {} },
  })
  return new MemcachedStore(client, true, clock)
}
