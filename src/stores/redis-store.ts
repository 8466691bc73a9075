/**
 * The Redis L2 (standalone or Cluster) on node-redis v5, plus the connection handling redisBus shares.
 *
 * Entry layout: ONE Redis string per key, `<16 lowercase hex digits of the version><entry bytes>`, so a
 * single GET returns both and a Lua script can read the version with `GETRANGE key 0 15` without a
 * second key. A tombstone (a deleted key that keeps its version) is `t<15 hex digits of the version>`,
 * exactly 16 bytes, so it cannot be mistaken for an entry (whose first digit is always 0: versions are
 * integers < 2^53, at most 14 hex digits, which Lua's doubles hold exactly).
 *
 * Ordering rules (store.ts), each one Lua script, atomic on the server:
 * - `set` / `delete` write version max(proposed, stored + 1): the store orders the writes of a key in the
 *   order it applied them, whatever the writers' clocks say;
 * - `setIfNewer` (loads) writes only if what is stored is older, so a slow load never replaces a newer
 *   write or resurrects a deleted key (the tombstone carries the version).
 * Scripts return versions as hex strings, never as Lua numbers: node-redis' integer decoder rounds
 * values close to 2^53 (it computes `n * 10 + byte - 48`).
 *
 * Scripts run as EVALSHA with a fallback to EVAL on NOSCRIPT (after a restart or failover the script
 * cache is empty; EVAL reloads it). We do this ourselves instead of node-redis' `scripts` option because
 * a client passed in by the application (`{ client }`) was created without our scripts.
 *
 * Stamps are generation counters in keys of their own: a script per key INCRs it and extends its TTL
 * (never shortens it), so on a Cluster no command spans two slots. Leases are `SET NX PX` and a
 * compare-and-delete script.
 *
 * Connections: no unbounded offline queue. Owned clients use `disableOfflineQueue`, so while the socket is
 * down commands fail at once (the cache serves L1/stale/loader meanwhile) and node-redis reconnects forever
 * with a capped backoff. Only the very first connection is waited for, at most `connectTimeout`.
 */
import { createHash } from 'node:crypto'
import {
  createClient,
  createCluster,
  ErrorReply,
  RESP_TYPES,
  type RedisArgument,
  type RedisClientOptions,
  type RedisClientType,
  type RedisClusterOptions,
  type RedisClusterType,
} from 'redis'
import { CacheClosedError, CorruptEntryError, InvalidOptionError } from '../errors.js'
import type { RemoteStore, StoredEntry } from './store.js'

// ---------------------------------------------------------------------------------------------------------
// Options

/** Any node-redis v5 client (`createClient()`), whatever its modules, scripts or RESP version. */
export type NodeRedisClient = RedisClientType<any, any, any, any, any>
/** Any node-redis v5 cluster client (`createCluster()`). */
export type NodeRedisCluster = RedisClusterType<any, any, any, any, any>

/** node-redis socket options (TLS material, `family`, `keepAlive`, ...). */
export type RedisSocketOptions = NonNullable<RedisClientOptions['socket']>
export type RedisClusterSocketOptions = NonNullable<NonNullable<RedisClusterOptions['defaults']>['socket']>

export interface RedisNodeAddress {
  host: string
  port: number
}

export interface RedisCommonOptions {
  /**
   * Milliseconds a connection attempt may take, and how long the first operation waits for the first
   * connection before failing (later operations fail at once until it is up).
   * @default 5000
   */
  connectTimeout?: number
  /**
   * Cap of the reconnect backoff in milliseconds. After a drop the client retries at once, then after
   * 50, 100, 200, ... ms up to this value, forever, until `close()`.
   * @default 2000
   */
  maxReconnectDelay?: number
}

export interface RedisUrlOptions extends RedisCommonOptions {
  /** `redis[s]://[[username][:password]@]host[:port][/db]`: `rediss://` for TLS, username/password for ACL. */
  url: string
  /** Extra node-redis socket options (e.g. `ca`, `cert`, `key` for TLS); host, port and TLS come from `url`. */
  socket?: RedisSocketOptions
  cluster?: never
  client?: never
}

export interface RedisClusterConnectionOptions extends RedisCommonOptions {
  /** Some nodes of the cluster (one reachable node is enough; the rest is discovered). */
  cluster: readonly RedisNodeAddress[]
  /** Socket options for every node, e.g. `{ tls: true, ca }`. */
  socket?: RedisClusterSocketOptions
  /** ACL username for every node. */
  username?: string
  /** ACL password (or `requirepass`) for every node. */
  password?: string
  /** Maps the addresses nodes announce to addresses this process can reach (NAT, containers). */
  nodeAddressMap?: RedisClusterOptions['nodeAddressMap']
  /** How many MOVED/ASK redirections a command may follow. @default 16 */
  maxCommandRedirections?: number
  url?: never
  client?: never
}

export interface RedisClientConnectionOptions extends RedisCommonOptions {
  /**
   * A connected node-redis client or cluster client owned by the application: it is used as is (its own
   * offline-queue and reconnect settings apply) and `close()` leaves it open.
   */
  client: NodeRedisClient | NodeRedisCluster
  url?: never
  cluster?: never
}

/** The three ways to reach Redis, shared by redisStore and redisBus. */
export type RedisConnectionOptions =
  | RedisUrlOptions
  | RedisClusterConnectionOptions
  | RedisClientConnectionOptions

export type RedisStoreOptions = RedisConnectionOptions

const DEFAULT_CONNECT_TIMEOUT = 5000
const DEFAULT_MAX_RECONNECT_DELAY = 2000
/** How long close() lets operations already sent finish before dropping the connection. */
const CLOSE_GRACE_MS = 1000

const CONNECTION_KEYS = ['url', 'cluster', 'client'] as const
const ALLOWED_KEYS: Record<(typeof CONNECTION_KEYS)[number], readonly string[]> = {
  url: ['url', 'socket', 'connectTimeout', 'maxReconnectDelay'],
  cluster: [
    'cluster',
    'socket',
    'username',
    'password',
    'nodeAddressMap',
    'maxCommandRedirections',
    'connectTimeout',
    'maxReconnectDelay',
  ],
  client: ['client', 'connectTimeout', 'maxReconnectDelay'],
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null
}

function positiveNumber(options: Record<string, unknown>, key: string, fallback: number): number {
  const value = options[key]
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new InvalidOptionError(key, `must be a positive number of milliseconds, got ${String(value)}`)
  }
  return value
}

function isClusterClient(client: NodeRedisClient | NodeRedisCluster): client is NodeRedisCluster {
  return (
    'masters' in client &&
    'slots' in client &&
    typeof (client as NodeRedisCluster).getSlotMaster === 'function'
  )
}

/** Validates connection options once, at creation, with errors that name the option. */
function validateConnectionOptions(options: unknown): RedisConnectionOptions {
  if (!isObject(options)) {
    throw new InvalidOptionError('options', 'expected an object with one of `url`, `cluster` or `client`')
  }
  const given = CONNECTION_KEYS.filter((key) => options[key] !== undefined)
  if (given.length === 0)
    throw new InvalidOptionError('url', 'one of `url`, `cluster` or `client` is required')
  if (given.length > 1) throw new InvalidOptionError(given[1]!, `cannot be combined with \`${given[0]}\``)
  const kind = given[0]!
  for (const key of Object.keys(options)) {
    if (options[key] !== undefined && !ALLOWED_KEYS[kind].includes(key)) {
      throw new InvalidOptionError(key, `is not supported together with \`${kind}\``)
    }
  }
  positiveNumber(options, 'connectTimeout', DEFAULT_CONNECT_TIMEOUT)
  positiveNumber(options, 'maxReconnectDelay', DEFAULT_MAX_RECONNECT_DELAY)
  if (options.socket !== undefined && !isObject(options.socket)) {
    throw new InvalidOptionError('socket', 'must be an object of node-redis socket options')
  }
  for (const key of ['username', 'password'] as const) {
    if (options[key] !== undefined && typeof options[key] !== 'string') {
      throw new InvalidOptionError(key, 'must be a string')
    }
  }
  if (kind === 'url') {
    const url = options.url
    if (typeof url !== 'string') throw new InvalidOptionError('url', 'must be a string')
    let parsed: URL
    try {
      parsed = new URL(url)
    } catch {
      throw new InvalidOptionError('url', 'is not a valid URL (expected redis://host:port)')
    }
    if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
      throw new InvalidOptionError('url', `must start with redis:// or rediss://, got ${parsed.protocol}//`)
    }
    if (parsed.hostname === '') throw new InvalidOptionError('url', 'has no host')
    if (parsed.pathname.length > 1 && !/^\/\d+$/.test(parsed.pathname)) {
      throw new InvalidOptionError('url', 'the path must be a database number, e.g. redis://host:6379/2')
    }
  } else if (kind === 'cluster') {
    const nodes = options.cluster
    if (!Array.isArray(nodes) || nodes.length === 0) {
      throw new InvalidOptionError('cluster', 'must be a non-empty array of { host, port }')
    }
    nodes.forEach((node: unknown, index) => {
      if (!isObject(node)) throw new InvalidOptionError(`cluster[${index}]`, 'must be { host, port }')
      if (typeof node.host !== 'string' || node.host === '') {
        throw new InvalidOptionError(`cluster[${index}].host`, 'must be a non-empty string')
      }
      if (
        typeof node.port !== 'number' ||
        !Number.isInteger(node.port) ||
        node.port < 1 ||
        node.port > 65535
      ) {
        throw new InvalidOptionError(`cluster[${index}].port`, 'must be an integer between 1 and 65535')
      }
    })
    if (
      options.maxCommandRedirections !== undefined &&
      (typeof options.maxCommandRedirections !== 'number' ||
        !Number.isInteger(options.maxCommandRedirections) ||
        options.maxCommandRedirections < 0)
    ) {
      throw new InvalidOptionError('maxCommandRedirections', 'must be a non-negative integer')
    }
  } else {
    const client = options.client
    if (
      !isObject(client) ||
      typeof client.sendCommand !== 'function' ||
      typeof client.duplicate !== 'function'
    ) {
      throw new InvalidOptionError(
        'client',
        'must be a node-redis v5 client or cluster (createClient / createCluster)',
      )
    }
  }
  return options as unknown as RedisConnectionOptions
}

// ---------------------------------------------------------------------------------------------------------
// Connection

/** node-redis type mapping that keeps bulk strings as Buffers: entry bytes never go through UTF-8. */
const BUFFERS = { typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer } } as const

/** Retry at once, then 50, 100, 200, ... ms, capped, with a little jitter; never gives up. */
export function cappedBackoff(maxDelay: number): (retries: number) => number {
  return (retries) => Math.min(maxDelay, 50 * 2 ** Math.min(retries, 20) + Math.floor(Math.random() * 25))
}

function unrefSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}

/** Rejects after `ms` unless `promise` settles first. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(message)), ms)
        timer.unref()
      }),
    ])
  } finally {
    clearTimeout(timer)
  }
}

/** Not a reply from Redis: the connection failed (offline, closed, refused, timed out). */
function isConnectionError(error: unknown): boolean {
  return error instanceof Error && !(error instanceof ErrorReply)
}

/** The least time between two topology refreshes of a cluster client. */
const MIN_REFRESH_INTERVAL_MS = 500

/**
 * A lazily opened node-redis client or cluster client with bounded waits. Shared by redisStore and
 * redisBus (the bus uses `raw()` to reach pub/sub and to derive its subscriber connections).
 * @internal
 */
export class RedisConnection {
  readonly isCluster: boolean
  /** Whether this connection opened the client (and so closes it). */
  readonly owned: boolean
  readonly connectTimeout: number
  readonly maxReconnectDelay: number
  private client: NodeRedisClient | NodeRedisCluster | undefined
  private connecting: Promise<void> | undefined
  private connected = false
  /** A first-connection wait timed out: fail at once until the background attempt succeeds. */
  private unreachable = false
  private closed = false
  private lastError: unknown
  private inflight = 0
  private onIdle: (() => void) | undefined
  private lastRefresh = 0
  private refreshing: Promise<void> | undefined

  constructor(
    readonly options: RedisConnectionOptions,
    private readonly owner: string,
  ) {
    this.connectTimeout = options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT
    this.maxReconnectDelay = options.maxReconnectDelay ?? DEFAULT_MAX_RECONNECT_DELAY
    if (options.client !== undefined) {
      this.owned = false
      this.client = options.client
      this.isCluster = isClusterClient(options.client)
    } else {
      this.owned = true
      this.isCluster = options.cluster !== undefined
    }
  }

  /** The node-redis reconnect strategy every connection of ours uses. */
  reconnectStrategy(): (retries: number) => number {
    return cappedBackoff(this.maxReconnectDelay)
  }

  /**
   * Resolves to the client once it is usable: waits for the first connection at most connectTimeout;
   * after that, and whenever a wait has already timed out, never waits (node-redis fails fast offline).
   */
  async raw(): Promise<NodeRedisClient | NodeRedisCluster> {
    if (!this.connected) await this.ready()
    return this.client!
  }

  /**
   * Sends one command with Buffer replies. On a Cluster `key` routes it (undefined: any node); on a single
   * server it is ignored. Commands issued in the same tick are pipelined by node-redis.
   */
  send(key: RedisArgument | undefined, args: RedisArgument[], readonly = false): Promise<unknown> {
    if (this.connected && !this.closed) return this.dispatch(key, args, readonly)
    return this.ready().then(() => this.dispatch(key, args, readonly))
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    const client = this.client
    if (!this.owned || client === undefined) return
    if (this.inflight > 0) {
      await Promise.race([
        new Promise<void>((resolve) => (this.onIdle = resolve)),
        unrefSleep(CLOSE_GRACE_MS),
      ])
    }
    destroyClient(client)
  }

  /**
   * Makes node-redis re-read the Cluster topology (at most every 500 ms, or maxReconnectDelay). node-redis
   * only does so on MOVED/ASK replies; when a master dies and its replica takes over, nothing answers
   * MOVED and the dead master's slots would stay unreachable for good. We refresh on connection errors.
   */
  refreshTopology(): Promise<void> {
    if (!this.isCluster || !this.connected || this.closed) return Promise.resolve()
    if (this.refreshing) return this.refreshing
    const now = Date.now()
    if (now - this.lastRefresh < Math.max(MIN_REFRESH_INTERVAL_MS, this.maxReconnectDelay))
      return Promise.resolve()
    this.lastRefresh = now
    const cluster = this.client as NodeRedisCluster
    // rediscover() asks `start` first, then the root nodes; prefer a node that is up.
    const start = (cluster.masters.find((node) => node.client?.isReady) ?? cluster.masters[0])?.client
    if (start === undefined) return Promise.resolve()
    this.refreshing = withTimeout(
      cluster._slots.rediscover(start as never),
      this.connectTimeout,
      'topology refresh timed out',
    )
      .catch((error: unknown) => {
        this.lastError = error
      })
      .finally(() => {
        this.refreshing = undefined
      })
    return this.refreshing
  }

  /**
   * Sends the command and counts it in flight until it settles (close() waits for those). This is the
   * hot path of every L2 call: one reaction per command (`.finally()` would chain three promises), with
   * the Cluster's topology refresh on connection errors folded into the same rejection handler.
   */
  private dispatch(
    key: RedisArgument | undefined,
    args: RedisArgument[],
    readonly: boolean,
  ): Promise<unknown> {
    const client = this.client!
    const reply = this.isCluster
      ? (client as NodeRedisCluster).sendCommand(key, readonly, args, BUFFERS)
      : (client as NodeRedisClient).sendCommand(args, BUFFERS)
    this.inflight++
    return reply.then(this.settled, this.failed)
  }

  private readonly settled = (value: unknown): unknown => {
    if (--this.inflight === 0 && this.onIdle) this.onIdle()
    return value
  }

  private readonly failed = (error: unknown): never => {
    if (--this.inflight === 0 && this.onIdle) this.onIdle()
    if (this.isCluster && isConnectionError(error)) void this.refreshTopology()
    throw error
  }

  private async ready(): Promise<void> {
    if (this.closed) throw new CacheClosedError()
    if (this.connected) return
    if (!this.owned) {
      if (!this.client!.isOpen) {
        throw new Error(`${this.owner}: the client passed in is not connected (call its connect() first)`)
      }
      this.connected = true
      return
    }
    if (this.unreachable) throw this.unavailable()
    if (this.connecting === undefined) {
      this.connecting = this.open()
      // Only rejects when closed while connecting; waiters see CacheClosedError themselves.
      this.connecting.catch(() => {})
    }
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), this.connectTimeout)
      timer.unref()
    })
    const outcome = await Promise.race([this.connecting.then(() => false), timedOut])
    clearTimeout(timer)
    if (this.closed) throw new CacheClosedError()
    if (outcome) {
      this.unreachable = true
      throw this.unavailable()
    }
  }

  private unavailable(): Error {
    const where = this.options.url !== undefined ? 'Redis' : 'the Redis Cluster'
    return new Error(
      `${this.owner}: cannot reach ${where} (no connection within ${this.connectTimeout} ms)`,
      {
        cause: this.lastError,
      },
    )
  }

  /** Opens the client; retries in the background until connected or closed (never rejects otherwise). */
  private async open(): Promise<void> {
    const options = this.options
    const reconnectStrategy = this.reconnectStrategy()
    const remember = (error: unknown) => {
      this.lastError = error
    }
    if (options.url !== undefined) {
      const client = createClient({
        url: options.url,
        socket: {
          ...options.socket,
          connectTimeout: this.connectTimeout,
          reconnectStrategy,
        } as RedisSocketOptions,
        disableOfflineQueue: true,
      })
      client.on('error', remember)
      this.client = client as unknown as NodeRedisClient
      // node-redis retries the first connection with reconnectStrategy until it succeeds or is destroyed.
      await client.connect()
      if (this.closed || !client.isReady) throw new CacheClosedError()
    } else if (options.cluster !== undefined) {
      // Discovery gives up when no root node answers, and hangs while a master it lists is down (it waits
      // for a connection to every node). Keep trying, with a fresh client each time, like a single client
      // would: once the cluster has failed over, the topology no longer lists the dead master.
      for (let attempt = 0; ; attempt++) {
        if (this.closed) throw new CacheClosedError()
        const cluster = createCluster({
          rootNodes: options.cluster.map((node) => ({ socket: { host: node.host, port: node.port } })),
          defaults: {
            socket: { ...options.socket, connectTimeout: this.connectTimeout, reconnectStrategy },
            ...(options.username !== undefined && { username: options.username }),
            ...(options.password !== undefined && { password: options.password }),
            disableOfflineQueue: true,
          },
          ...(options.nodeAddressMap !== undefined && { nodeAddressMap: options.nodeAddressMap }),
          ...(options.maxCommandRedirections !== undefined && {
            maxCommandRedirections: options.maxCommandRedirections,
          }),
        })
        cluster.on('error', remember)
        cluster.on('node-error', remember)
        this.client = cluster as unknown as NodeRedisCluster
        try {
          await withTimeout(cluster.connect(), this.connectTimeout, 'cluster discovery timed out')
          break
        } catch (error) {
          remember(error)
          destroyClient(cluster as unknown as NodeRedisCluster)
          await unrefSleep(reconnectStrategy(attempt))
        }
      }
      if (this.closed) throw new CacheClosedError()
    }
    this.connected = true
    this.unreachable = false
  }
}

/** Drops a node-redis client or cluster at once (close() can wait forever on an unresponsive server). */
export function destroyClient(client: NodeRedisClient | NodeRedisCluster): void {
  if (isClusterClient(client)) {
    const nodeClients: NodeRedisClient[] = []
    for (const node of [...client.masters, ...client.replicas]) {
      if (node.client) nodeClients.push(node.client as NodeRedisClient)
      const pubSub = (node as { pubSub?: { client: NodeRedisClient } }).pubSub
      if (pubSub) nodeClients.push(pubSub.client)
    }
    try {
      client.destroy()
    } catch {
      // a node client was already closed and node-redis stopped half-way: finish the job below
      for (const nodeClient of nodeClients) destroyClient(nodeClient)
    }
    return
  }
  try {
    if (client.isOpen) client.destroy()
  } catch {
    // already closed
  }
}

// ---------------------------------------------------------------------------------------------------------
// Scripts

interface Script {
  source: string
  sha1: string
}

/** Reads the version of KEYS[1] (entry or tombstone); nil when absent or unreadable. */
const STORED_VERSION = `local function stored_version(key)
  local head = redis.call('GETRANGE', key, 0, 15)
  if #head < 16 then return nil end
  if string.byte(head, 1) == 116 then return tonumber(string.sub(head, 2), 16) end
  return tonumber(head, 16)
end
`

function script(body: string): Script {
  const source = STORED_VERSION + body
  return { source, sha1: createHash('sha1').update(source).digest('hex') }
}

/**
 * KEYS[1] entry key; ARGV[1] entry bytes, ARGV[2] proposed version (decimal), ARGV[3] TTL in ms.
 * Always writes, with version max(proposed, stored + 1); returns that version as 16 hex digits.
 */
const SET_ENTRY = script(`local version = tonumber(ARGV[2])
local stored = stored_version(KEYS[1])
if stored ~= nil and stored >= version then version = stored + 1 end
local head = string.format('%016x', version)
redis.call('SET', KEYS[1], head .. ARGV[1], 'PX', ARGV[3])
return head`)

/**
 * KEYS[1] entry key; ARGV[1] header + entry bytes, ARGV[2] version (decimal), ARGV[3] TTL in ms.
 * Writes unless the stored entry or tombstone is as new or newer; then returns its version (16 hex).
 */
const SET_IF_NEWER = script(`local stored = stored_version(KEYS[1])
if stored ~= nil and stored >= tonumber(ARGV[2]) then return string.format('%016x', stored) end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return false`)

/**
 * KEYS[1] entry key; ARGV[1] proposed version (decimal), ARGV[2] tombstone TTL in ms.
 * Replaces the key with a tombstone of version max(proposed, stored + 1); returns it (16 hex).
 */
const DELETE_ENTRY = script(`local version = tonumber(ARGV[1])
local stored = stored_version(KEYS[1])
if stored ~= nil and stored >= version then version = stored + 1 end
redis.call('SET', KEYS[1], 't' .. string.format('%015x', version), 'PX', ARGV[2])
return string.format('%016x', version)`)

/** KEYS[1] stamp key; ARGV[1] TTL in ms. Increments it; its TTL becomes max(remaining, ttl). */
const BUMP_STAMP = script(`local value = redis.call('INCR', KEYS[1])
local ttl = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return value`)

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
): Promise<unknown> {
  try {
    return await connection.send(key, ['EVALSHA', sha1, '1', key, ...args])
  } catch (error) {
    if (!isNoScript(error)) throw error
    // The server lost its script cache (restart, failover, SCRIPT FLUSH): EVAL runs and re-caches it.
    return connection.send(key, ['EVAL', source, '1', key, ...args])
  }
}

// ---------------------------------------------------------------------------------------------------------
// Encoding

const HEADER_BYTES = 16
const TOMBSTONE = 0x74 // 't'

function checkVersion(version: number): void {
  if (!Number.isSafeInteger(version) || version < 0) {
    throw new RangeError(`version must be a non-negative integer below 2^53, got ${version}`)
  }
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

function decodeStamp(key: string, value: unknown): number {
  if (value === null || value === undefined) return 0
  const stamp = Number(Buffer.isBuffer(value) ? value.toString('latin1') : value)
  if (!Number.isSafeInteger(stamp)) throw new CorruptEntryError(`stamp ${key} is not an integer`)
  return stamp
}

// ---------------------------------------------------------------------------------------------------------
// Store

class RedisStore implements RemoteStore {
  readonly name: string
  private readonly connection: RedisConnection

  constructor(options: RedisStoreOptions) {
    this.connection = new RedisConnection(options, 'redisStore')
    this.name = this.connection.isCluster ? 'redis-cluster' : 'redis'
  }

  async get(key: string): Promise<StoredEntry | undefined> {
    const value = (await this.connection.send(key, ['GET', key], true)) as Buffer | null
    if (value === null || (value.length === HEADER_BYTES && value[0] === TOMBSTONE)) return undefined
    const version = value.length >= HEADER_BYTES ? decodeVersion(value) : Number.NaN
    if (Number.isNaN(version)) throw new CorruptEntryError(`L2 entry ${key} has no version header`)
    // No copy: `bytes` is a view into the socket chunk node-redis read the reply from (a fresh buffer per
    // read, never reused or written to). The cache decodes it at once and keeps nothing that points into
    // it (the codec copies binary leaves), so the chunk lives no longer than the call. Copying cost about
    // 1 µs per 1 KiB get (a fresh ArrayBuffer each time), a tenth of the whole L2 hit path. Like
    // memoryStore's, these bytes are shared: a caller of the store that keeps them should copy them.
    return { bytes: value.subarray(HEADER_BYTES), version }
  }

  async set(key: string, bytes: Uint8Array, version: number, ttlMs: number): Promise<number> {
    checkVersion(version)
    const ttl = ttlArgument(ttlMs)
    return scriptVersion(
      await runScript(this.connection, SET_ENTRY, key, [toBuffer(bytes), String(version), ttl]),
    )
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

  async delete(key: string, version: number, tombstoneTtlMs: number): Promise<number> {
    checkVersion(version)
    const args = [String(version), ttlArgument(tombstoneTtlMs)]
    return scriptVersion(await runScript(this.connection, DELETE_ENTRY, key, args))
  }

  async getStamps(keys: readonly string[]): Promise<number[]> {
    if (keys.length === 0) return []
    if (!this.connection.isCluster) {
      const values = (await this.connection.send(undefined, ['MGET', ...keys], true)) as (Buffer | null)[]
      return values.map((value, i) => decodeStamp(keys[i]!, value))
    }
    // A Cluster refuses multi-key commands across slots: one GET per key, routed and pipelined by node-redis.
    return Promise.all(
      keys.map(async (key) => decodeStamp(key, await this.connection.send(key, ['GET', key], true))),
    )
  }

  async bumpStamps(keys: readonly string[], ttlMs: number): Promise<number[]> {
    if (keys.length === 0) return []
    const args = [ttlArgument(ttlMs)]
    // One script per key (never two slots in one command); node-redis sends them in one pipeline.
    return Promise.all(
      keys.map(async (key) => (await runScript(this.connection, BUMP_STAMP, key, args)) as number),
    )
  }

  async acquireLease(key: string, token: string, ttlMs: number): Promise<boolean> {
    const reply = await this.connection.send(key, ['SET', key, token, 'NX', 'PX', ttlArgument(ttlMs)])
    return reply !== null
  }

  async releaseLease(key: string, token: string): Promise<boolean> {
    return (await runScript(this.connection, RELEASE_LEASE, key, [token])) === 1
  }

  close(): Promise<void> {
    return this.connection.close()
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
  return new RedisStore(validateConnectionOptions(options))
}

/** @internal Validates options and creates a connection (used by redisBus). */
export function redisConnection(options: RedisConnectionOptions, owner: string): RedisConnection {
  return new RedisConnection(validateConnectionOptions(options), owner)
}
