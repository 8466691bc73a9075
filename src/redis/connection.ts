/**
 * Connections to Redis or Redis Cluster on node-redis v5, shared by redisStore and redisBus: option
 * validation, the lazily opened client or cluster client (or the one the application passed in), its
 * reconnect policy, topology refreshes, reconnect notifications, and the dedicated clients the bus derives
 * from it for pub/sub.
 *
 * Long because node-redis' standalone, Cluster and Sentinel clients differ in how they connect, report
 * readiness, refresh topology and fail during a connect; this module hides every one of those
 * differences, so that the store and the bus see one connection with one behaviour.
 *
 * No unbounded offline queue: owned clients use `disableOfflineQueue`, so while the socket is down
 * commands fail at once (the cache serves L1/stale/loader meanwhile) and node-redis reconnects forever
 * with a capped backoff. Only the very first connection is waited for, at most `connectTimeout`.
 */
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
import { CacheClosedError, InvalidOptionError } from '../errors.js'
import { unrefSleep, withTimeout } from '../timeouts.js'
import {
  addressKey,
  isMasterRole,
  mapAddress,
  type NodeAddressMap,
  type RedisSentinelOptions,
  SentinelWatch,
  sameAddress,
  sentinelClient,
} from './sentinel.js'

export type { NodeAddressMap, RedisSentinelOptions } from './sentinel.js'
export { addressKey } from './sentinel.js'

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
  sentinel?: never
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
  sentinel?: never
}

export interface RedisSentinelConnectionOptions extends RedisCommonOptions {
  /** The sentinels to ask and the master's name; failovers are followed by themselves. */
  sentinel: RedisSentinelOptions
  /** Socket options for the master connections, e.g. `{ tls: true, ca }`. */
  socket?: RedisSocketOptions
  /** ACL username for the master (and its replicas). */
  username?: string
  /** ACL password (or `requirepass`) of the master. */
  password?: string
  /** Maps the master addresses sentinels announce (`host:port`) to addresses this process can reach. */
  nodeAddressMap?: NodeAddressMap
  url?: never
  cluster?: never
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
  sentinel?: never
}

/** The four ways to reach Redis, shared by redisStore and redisBus. */
export type RedisConnectionOptions =
  | RedisUrlOptions
  | RedisClusterConnectionOptions
  | RedisSentinelConnectionOptions
  | RedisClientConnectionOptions

const DEFAULT_CONNECT_TIMEOUT = 5000
const DEFAULT_MAX_RECONNECT_DELAY = 2000
/** How long close() lets operations already sent finish before dropping the connection. */
const CLOSE_GRACE_MS = 1000

const CONNECTION_KEYS = ['url', 'cluster', 'sentinel', 'client'] as const
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
  sentinel: [
    'sentinel',
    'socket',
    'username',
    'password',
    'nodeAddressMap',
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

function validateNodes(nodes: unknown, option: string): void {
  if (!Array.isArray(nodes) || nodes.length === 0) {
    throw new InvalidOptionError(option, 'must be a non-empty array of { host, port }')
  }
  nodes.forEach((node: unknown, index) => {
    if (!isObject(node)) throw new InvalidOptionError(`${option}[${index}]`, 'must be { host, port }')
    if (typeof node.host !== 'string' || node.host === '') {
      throw new InvalidOptionError(`${option}[${index}].host`, 'must be a non-empty string')
    }
    if (typeof node.port !== 'number' || !Number.isInteger(node.port) || node.port < 1 || node.port > 65535) {
      throw new InvalidOptionError(`${option}[${index}].port`, 'must be an integer between 1 and 65535')
    }
  })
}

/** Validates connection options once, at creation, with errors that name the option. */
function validateConnectionOptions(options: unknown): RedisConnectionOptions {
  if (!isObject(options)) {
    throw new InvalidOptionError(
      'options',
      'expected an object with one of `url`, `cluster`, `sentinel` or `client`',
    )
  }
  const given = CONNECTION_KEYS.filter((key) => options[key] !== undefined)
  if (given.length === 0)
    throw new InvalidOptionError('url', 'one of `url`, `cluster`, `sentinel` or `client` is required')
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
    validateNodes(options.cluster, 'cluster')
    if (
      options.maxCommandRedirections !== undefined &&
      (typeof options.maxCommandRedirections !== 'number' ||
        !Number.isInteger(options.maxCommandRedirections) ||
        options.maxCommandRedirections < 0)
    ) {
      throw new InvalidOptionError('maxCommandRedirections', 'must be a non-negative integer')
    }
  } else if (kind === 'sentinel') {
    const sentinel = options.sentinel
    if (!isObject(sentinel)) {
      throw new InvalidOptionError('sentinel', 'must be { name, sentinels: [{ host, port }, ...] }')
    }
    for (const key of Object.keys(sentinel)) {
      if (!['name', 'sentinels', 'username', 'password', 'socket'].includes(key)) {
        throw new InvalidOptionError(`sentinel.${key}`, 'is not a Sentinel option')
      }
    }
    if (typeof sentinel.name !== 'string' || sentinel.name === '') {
      throw new InvalidOptionError('sentinel.name', "must be the master's name, a non-empty string")
    }
    validateNodes(sentinel.sentinels, 'sentinel.sentinels')
    for (const key of ['username', 'password'] as const) {
      if (sentinel[key] !== undefined && typeof sentinel[key] !== 'string') {
        throw new InvalidOptionError(`sentinel.${key}`, 'must be a string')
      }
    }
    if (sentinel.socket !== undefined && !isObject(sentinel.socket)) {
      throw new InvalidOptionError('sentinel.socket', 'must be an object of node-redis socket options')
    }
    const map = options.nodeAddressMap
    if (map !== undefined && typeof map !== 'function' && !isObject(map)) {
      throw new InvalidOptionError('nodeAddressMap', 'must be an object or a function')
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
// Secrets

/** util.inspect's hook (the registered symbol, so that this module needs no import for it). */
export const INSPECT = Symbol.for('nodejs.util.inspect.custom')

/** Option keys whose values are secrets, wherever they appear (ACL and TLS material). */
const SECRET_KEYS = /^(password|passphrase|key|pfx|secret|token|credentials(Provider)?)$/i
const REDACTED = '[redacted]'

/** A URL with the password of its userinfo replaced, e.g. `redis://user:***@host:6379`. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password === '') return url
    parsed.password = '***'
    return parsed.toString()
  } catch {
    // Not a URL: do not echo what might be a secret.
    return REDACTED
  }
}

/**
 * A copy of connection options fit to print: passwords, TLS keys and URL passwords replaced, a client
 * passed in shown by kind only. Used by util.inspect of connections, stores and buses.
 */
export function redactConnectionOptions(value: unknown, key = ''): unknown {
  if (SECRET_KEYS.test(key)) return value === undefined ? undefined : REDACTED
  if (key === 'url' && typeof value === 'string') return redactUrl(value)
  if (key === 'client' && isObject(value)) return '[node-redis client]'
  if (Array.isArray(value)) return value.map((item) => redactConnectionOptions(item))
  if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return `[${value.byteLength} bytes]`
  if (typeof value === 'function') return '[function]'
  if (!isObject(value)) return value
  const copy: Record<string, unknown> = {}
  for (const [name, item] of Object.entries(value)) copy[name] = redactConnectionOptions(item, name)
  return copy
}

// ---------------------------------------------------------------------------------------------------------
// Connection

/** node-redis type mapping that keeps bulk strings as Buffers: entry bytes never go through UTF-8. */
const BUFFERS = { typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer } } as const

/** Retry at once, then 50, 100, 200, ... ms, capped, with a little jitter; never gives up. */
function cappedBackoff(maxDelay: number): (retries: number) => number {
  return (retries) => Math.min(maxDelay, 50 * 2 ** Math.min(retries, 20) + Math.floor(Math.random() * 25))
}

/**
 * How many abort listeners a SocketSignal keeps: Node adds two per socket and never removes them, and a
 * client opens one socket at a time, so only the newest ones can belong to a socket still open.
 */
const SOCKET_LISTENERS_KEPT = 4

/**
 * An AbortSignal look-alike (Node takes any object with `aborted` and the listener methods) for the sockets
 * of one node-redis client. Why not an AbortSignal: Node 20 adds listeners for every socket created with
 * it and removes none when the socket closes, so a client reconnecting for an hour would hold every
 * socket it ever opened. This one keeps the last few listeners only.
 */
class SocketSignal {
  aborted = false
  reason: unknown = undefined
  private listeners: (() => void)[] = []

  addEventListener(_type: string, listener: () => void): void {
    if (this.aborted) {
      queueMicrotask(listener)
      return
    }
    this.listeners.push(listener)
    if (this.listeners.length > SOCKET_LISTENERS_KEPT) this.listeners.shift()
  }

  removeEventListener(_type: string, listener: () => void): void {
    this.listeners = this.listeners.filter((kept) => kept !== listener)
  }

  abort(): void {
    if (this.aborted) return
    this.aborted = true
    this.reason = new CacheClosedError()
    const listeners = this.listeners
    this.listeners = []
    for (const listener of listeners) listener()
  }
}

/** Not a reply from Redis: the connection failed (offline, closed, refused, timed out). */
function isConnectionError(error: unknown): boolean {
  return error instanceof Error && !(error instanceof ErrorReply)
}

/** The least time between two topology refreshes of a cluster client. */
const MIN_REFRESH_INTERVAL_MS = 500

/** The least pause between two questions to the sentinels while the master is lost. */
const MIN_LOCATE_INTERVAL_MS = 100

/**
 * A lazily opened node-redis client or cluster client with bounded waits. Shared by redisStore and
 * redisBus (the bus publishes through it, uses `raw()` to find a channel's Cluster node and
 * `dedicatedClient()` for its subscriber connections).
 *
 * With Sentinel, the client is a plain client to the master (see sentinel.ts), replaced when the master
 * moves. Commands are sent only while that client is `usable`: connected to a node whose ROLE said
 * master since its last (re)connection. From a drop, a READONLY reply or a `+switch-master` until then,
 * they fail at once (a node that was master may be a replica now: reads there could be stale, writes
 * fail), and the sentinels are asked again until a master is confirmed (relocate()).
 * @internal
 */
export class RedisConnection {
  readonly isCluster: boolean
  readonly isSentinel: boolean
  /** Whether this connection opened the client (and so closes it). */
  readonly owned: boolean
  readonly connectTimeout: number
  readonly maxReconnectDelay: number
  private client: NodeRedisClient | NodeRedisCluster | undefined
  private connecting: Promise<void> | undefined
  /** The first connection was established (it may be lost again since). */
  private connected = false
  /**
   * Commands may be sent now: `connected`, and with Sentinel, a master confirmed since the last change.
   * The hot path's one check.
   */
  private usable = false
  /** Sentinel: the sentinels, the master's address (as announced) and a relocation in progress. */
  private readonly sentinel: SentinelWatch | undefined
  private master: RedisNodeAddress | undefined
  private relocating: Promise<void> | undefined
  private readonly masterListeners = new Set<(master: RedisNodeAddress) => void>()
  /** A first-connection wait timed out: fail at once until the background attempt succeeds. */
  private unreachable = false
  private closed = false
  private lastError: unknown
  private inflight = 0
  private onIdle: (() => void) | undefined
  private lastRefresh = 0
  private refreshing: Promise<void> | undefined
  /** onReconnect() listeners (wrapped, so that one function can be added twice). */
  private readonly reconnectListeners = new Set<{ listener: () => void }>()
  /** Detaches the reconnect watch from the client; set while watching. */
  private unwatch: (() => void) | undefined
  /**
   * Aborted by close(): every client this connection creates carries a signal of its own in its socket
   * options, so no socket outlives close(), not even one node-redis was still opening (see close()). Held
   * weakly: a client's signal lives as long as the client.
   */
  private readonly signals = new Set<WeakRef<SocketSignal>>()

  /** The options as given, secrets included: private, so that util.inspect never shows them. */
  readonly #options: RedisConnectionOptions

  constructor(
    options: RedisConnectionOptions,
    private readonly owner: string,
  ) {
    this.#options = options
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
    this.isSentinel = options.sentinel !== undefined
    if (options.sentinel !== undefined) {
      const sentinel = options.sentinel
      const socket = this.socketOptions(sentinel.socket ?? {})
      this.sentinel = new SentinelWatch(
        sentinel,
        (node) => sentinelClient(node, sentinel, socket),
        this.connectTimeout,
        this.maxReconnectDelay,
      )
    }
  }

  /** The connection options with every secret replaced (see redactConnectionOptions). */
  get options(): unknown {
    return redactConnectionOptions(this.#options)
  }

  /**
   * Whether `other` reaches the same Redis server as the same user, judged by the options as given: the
   * same client object, the same host, port and username in the URL (not the same address under two names:
   * then no), or the same master name at the same sentinels with the same username. Never for a Cluster (a
   * write and a publish of another slot cannot share a script). The same user matters because ACLs are per
   * user: a store's user allowed to write but not to publish would fail every write. Pub/sub channels are
   * not per database, so the database number does not matter.
   */
  sameServerAs(other: RedisConnection): boolean {
    if (this.isCluster || other.isCluster) return false
    const a = this.#options
    const b = other.#options
    if (a.client !== undefined || b.client !== undefined) return a.client === b.client
    if (a.url !== undefined && b.url !== undefined) {
      const endpoint = urlEndpoint(a.url)
      return endpoint !== undefined && endpoint === urlEndpoint(b.url)
    }
    if (a.sentinel !== undefined && b.sentinel !== undefined) {
      const sentinels = (o: RedisSentinelOptions) => o.sentinels.map(addressKey).sort().join(',')
      return (
        a.sentinel.name === b.sentinel.name &&
        sentinels(a.sentinel) === sentinels(b.sentinel) &&
        (a.username ?? '') === (b.username ?? '')
      )
    }
    return false
  }

  [INSPECT](): unknown {
    return {
      owner: this.owner,
      options: this.options,
      connected: this.connected,
      closed: this.closed,
      ...(this.master !== undefined && { master: addressKey(this.master) }),
    }
  }

  /**
   * Sentinel: the master's address (as announced). Unless `fresh`, the one this connection confirmed, if
   * it has one now; else (or when `fresh`) what the sentinels say.
   */
  async sentinelMaster(fresh = false): Promise<RedisNodeAddress> {
    if (!fresh && this.usable && this.master !== undefined) return this.master
    return this.sentinel!.locate()
  }

  /** Sentinel: calls `listener` each time this connection moved to another master; returns the unsubscribe. */
  onMasterChange(listener: (master: RedisNodeAddress) => void): () => void {
    this.masterListeners.add(listener)
    return () => {
      this.masterListeners.delete(listener)
    }
  }

  /**
   * Sentinel: a new, unconnected client to the master at `address` (as announced) with our connection
   * policy and the master's credentials, for a connection of its own (the bus' subscriber).
   */
  masterClient(address: RedisNodeAddress): NodeRedisClient {
    const options = this.#options as RedisSentinelConnectionOptions
    const node = mapAddress(options.nodeAddressMap, address)
    return createClient({
      socket: { ...this.socketOptions(options.socket), host: node.host, port: node.port },
      ...(options.username !== undefined && { username: options.username }),
      ...(options.password !== undefined && { password: options.password }),
      disableOfflineQueue: true,
    }) as unknown as NodeRedisClient
  }

  /**
   * Calls `listener` each time the connection is ready again after it was lost, and when the first
   * connection succeeds only after failed attempts (not when it succeeds at once); returns the
   * unsubscribe function. See watchClient and watchCluster for the signals.
   */
  onReconnect(listener: () => void): () => void {
    if (this.closed) return () => {}
    const entry = { listener }
    this.reconnectListeners.add(entry)
    this.watch()
    return () => {
      if (this.reconnectListeners.delete(entry) && this.reconnectListeners.size === 0) this.stopWatching()
    }
  }

  /**
   * A new, unconnected standalone client with our connection policy (fails fast offline, reconnects
   * forever with the capped backoff), for a connection of its own (the bus' subscribers): to the server of
   * `url`, or a duplicate of `base`: on a single server the client passed in, on a Cluster the node client
   * of the master to connect to (required).
   */
  dedicatedClient(base?: NodeRedisClient): NodeRedisClient {
    if (base === undefined && this.#options.url !== undefined) {
      return createClient(this.urlClientOptions(this.#options.url)) as unknown as NodeRedisClient
    }
    const from = base ?? (this.isCluster ? undefined : (this.#options.client as NodeRedisClient))
    if (from === undefined)
      throw new Error(`${this.owner}: a Cluster connection needs the node to connect to`)
    return from.duplicate({
      socket: this.socketOptions(from.options.socket as RedisSocketOptions),
      disableOfflineQueue: true,
      // Not inherited from an application client: they make no sense on a subscriber connection, and a
      // PING there can interleave with subscription replies.
      clientSideCache: undefined,
      emitInvalidate: undefined,
      pingInterval: undefined,
    }) as NodeRedisClient
  }

  /**
   * Resolves to the client once it is usable: waits for the first connection at most connectTimeout;
   * after that, and whenever a wait has already timed out, never waits (node-redis fails fast offline).
   */
  async raw(): Promise<NodeRedisClient | NodeRedisCluster> {
    if (!this.usable) await this.ready()
    return this.client!
  }

  /**
   * Sends one command with Buffer replies. On a Cluster `key` routes it (undefined: any node); on a single
   * server it is ignored. Commands issued in the same tick are pipelined by node-redis.
   */
  send(key: RedisArgument | undefined, args: RedisArgument[], readonly = false): Promise<unknown> {
    if (this.usable && !this.closed) return this.dispatch(key, args, readonly)
    return this.ready().then(() => this.dispatch(key, args, readonly))
  }

  /**
   * Lets operations already sent finish (at most CLOSE_GRACE_MS), then drops every connection this
   * connection opened. A client still making its first connection is dropped too: node-redis' destroy()
   * does not close a socket it is still opening (the TCP connect completes afterwards, unowned, and keeps
   * the process alive), which is why every socket of ours also carries an abort signal.
   */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.usable = false
    this.reconnectListeners.clear()
    this.masterListeners.clear()
    this.stopWatching()
    this.sentinel?.close()
    const client = this.client
    if (this.owned && client !== undefined) {
      if (this.inflight > 0) {
        await Promise.race([
          new Promise<void>((resolve) => (this.onIdle = resolve)),
          unrefSleep(CLOSE_GRACE_MS),
        ])
      }
      destroyClient(client)
    }
    // Sockets still being opened, and those of dedicated (bus subscriber) clients of ours.
    for (const ref of this.signals) ref.deref()?.abort()
    this.signals.clear()
  }

  /**
   * Makes node-redis re-read the Cluster topology (at most every 500 ms, or maxReconnectDelay). node-redis
   * only does so on MOVED/ASK replies; when a master dies and its replica takes over, nothing answers
   * MOVED and the dead master's slots would stay unreachable for good. We refresh on connection errors
   * and, while someone listens for reconnects, periodically while a node is down (watchCluster).
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
      () => new Error('topology refresh timed out'),
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
    else if (this.sentinel !== undefined && isReadOnly(error)) this.masterLost()
    throw error
  }

  private async ready(): Promise<void> {
    if (this.closed) throw new CacheClosedError()
    if (this.usable) return
    if (!this.owned) {
      if (!this.client!.isOpen) {
        throw new Error(`${this.owner}: the client passed in is not connected (call its connect() first)`)
      }
      this.connected = true
      this.usable = true
      this.watch()
      return
    }
    // Sentinel, once connected: the master was lost and is not confirmed again yet. Fail fast.
    if (this.connected) throw this.masterUnconfirmed()
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
    const where =
      this.#options.url !== undefined
        ? 'Redis'
        : this.sentinel !== undefined
          ? `the Redis Sentinel master ${this.sentinel.name}`
          : 'the Redis Cluster'
    return new Error(
      `${this.owner}: cannot reach ${where} (no connection within ${this.connectTimeout} ms)`,
      {
        cause: this.lastError,
      },
    )
  }

  /**
   * The node-redis reconnect strategy every connection of ours uses; after close() it stops retrying (a
   * retry would wait in a timer that keeps the process alive).
   */
  private reconnectStrategy(): (retries: number) => number | false {
    const backoff = cappedBackoff(this.maxReconnectDelay)
    return (retries) => (this.closed ? false : backoff(retries))
  }

  /**
   * Socket options of ours on top of the caller's: timeouts, reconnects, and close()'s abort signal. The
   * signal is a getter that makes a new one each time it is read: node-redis copies socket options once per
   * client (a Cluster once per node client), so each client gets its own (see SocketSignal).
   */
  private socketOptions<T extends object>(given: T | undefined): T {
    const theirs = (given as { signal?: AbortSignal } | undefined)?.signal
    const options = {
      ...given,
      connectTimeout: this.connectTimeout,
      reconnectStrategy: this.reconnectStrategy(),
    }
    Object.defineProperty(options, 'signal', {
      enumerable: true,
      get: () => {
        const signal = new SocketSignal()
        if (this.closed) signal.abort()
        theirs?.addEventListener('abort', () => signal.abort(), { once: true })
        for (const ref of this.signals) if (ref.deref() === undefined) this.signals.delete(ref)
        this.signals.add(new WeakRef(signal))
        return signal
      },
    })
    return options as T
  }

  private urlClientOptions(url: string): RedisClientOptions {
    const socket = this.#options.url !== undefined ? this.#options.socket : undefined
    return { url, socket: this.socketOptions(socket), disableOfflineQueue: true }
  }

  private masterUnconfirmed(): Error {
    return new Error(
      `${this.owner}: no confirmed master ${this.sentinel!.name} right now (it was lost or moved; asking the sentinels)`,
      { cause: this.lastError },
    )
  }

  /** Starts watching for reconnects once someone listens and the first connection is established. */
  private watch(): void {
    // Sentinel: reported by confirmMaster() and adopt(), which know when a master is usable again.
    if (this.sentinel !== undefined) return
    if (this.unwatch !== undefined || this.closed || this.reconnectListeners.size === 0) return
    const client = this.client
    if (client === undefined || (this.owned && !this.connected)) return
    const reconnected = () => this.reconnected()
    this.unwatch = isClusterClient(client)
      ? watchCluster(
          client,
          reconnected,
          () => void this.refreshTopology(),
          Math.max(1000, this.maxReconnectDelay),
        )
      : watchClient(client, this.connected || client.isReady, reconnected)
  }

  private stopWatching(): void {
    this.unwatch?.()
    this.unwatch = undefined
  }

  private reconnected(): void {
    if (this.closed) return
    for (const { listener } of [...this.reconnectListeners]) {
      try {
        listener()
      } catch (error) {
        // A throwing listener must not break node-redis' event handling; surface it like the bus does.
        queueMicrotask(() => {
          throw error
        })
      }
    }
  }

  // ---- Sentinel ----------------------------------------------------------------------------------------

  /**
   * Connects a new client to the master at `address` and checks with ROLE that it is one; rejects (after
   * dropping the client) when it cannot connect within connectTimeout or is not a master.
   */
  private async connectMaster(address: RedisNodeAddress): Promise<NodeRedisClient> {
    const client = this.masterClient(address)
    client.on('error', (error: unknown) => {
      this.lastError = error
    })
    try {
      const role = await withTimeout(
        (async () => {
          await client.connect()
          return client.sendCommand(['ROLE'])
        })(),
        this.connectTimeout,
        () => new Error(`no connection to ${addressKey(address)} within ${this.connectTimeout} ms`),
      )
      if (!isMasterRole(role))
        throw new Error(`${addressKey(address)} is not a master (ROLE ${String(role)})`)
      return client
    } catch (error) {
      destroyClient(client)
      throw error
    }
  }

  /** Makes `client` (connected to the confirmed master at `address`) the one commands go to. */
  private adopt(client: NodeRedisClient, address: RedisNodeAddress): void {
    const previous = this.client
    const moved = this.master !== undefined && !sameAddress(this.master, address)
    this.client = client
    this.master = address
    client.on('reconnecting', () => {
      if (client === this.client) this.masterLost()
    })
    client.on('ready', () => {
      if (client === this.client) void this.confirmMaster(client)
    })
    if (previous !== undefined && previous !== client) destroyClient(previous as NodeRedisClient)
    if (!this.connected) return // the first connection: open() finishes it
    this.usable = true
    this.reconnected()
    if (moved) for (const listener of [...this.masterListeners]) listener(address)
  }

  /** The connection dropped, a command got READONLY, or the master moved: stop sending, find it again. */
  private masterLost(): void {
    if (this.closed || !this.connected) return
    this.usable = false
    this.relocate()
  }

  private masterSwitched(address: RedisNodeAddress): void {
    if (this.usable && sameAddress(address, this.master)) return
    this.masterLost()
  }

  /** After the client reconnected by itself: usable again if the node is still the master. */
  private async confirmMaster(client: NodeRedisClient): Promise<void> {
    try {
      const role = await withTimeout(
        client.sendCommand(['ROLE']),
        this.connectTimeout,
        () => new Error('ROLE timed out'),
      )
      if (client !== this.client || this.closed) return
      if (isMasterRole(role)) {
        if (!this.usable) {
          this.usable = true
          this.reconnected()
        }
        return
      }
      this.lastError = new Error(`${addressKey(this.master!)} is no longer the master (a failover)`)
    } catch (error) {
      this.lastError = error
    }
    if (client === this.client) this.masterLost()
  }

  /**
   * Until a master is confirmed: asks the sentinels; another address means a failover (connect there,
   * confirm, adopt); the same one means the node is coming back or the sentinels have not noticed yet, so
   * the client's own reconnect (or a ROLE check, if it is connected) decides. One loop at a time.
   */
  private relocate(): void {
    if (this.relocating !== undefined || this.closed) return
    const sentinel = this.sentinel!
    const backoff = cappedBackoff(this.maxReconnectDelay)
    this.relocating = (async () => {
      for (let attempt = 0; !this.closed && !this.usable; attempt++) {
        try {
          const address = await sentinel.locate()
          if (this.closed || this.usable) return
          if (!sameAddress(address, this.master)) {
            const client = await this.connectMaster(address)
            if (this.closed) return destroyClient(client)
            this.adopt(client, address)
            return
          }
          const client = this.client as NodeRedisClient
          if (client.isReady) await this.confirmMaster(client)
        } catch (error) {
          this.lastError = error
        }
        if (this.closed || this.usable) return
        await unrefSleep(Math.max(MIN_LOCATE_INTERVAL_MS, backoff(attempt)))
      }
    })().finally(() => {
      this.relocating = undefined
    })
  }

  /** Opens the client; retries in the background until connected or closed (never rejects otherwise). */
  private async open(): Promise<void> {
    const options = this.#options
    const remember = (error: unknown) => {
      this.lastError = error
    }
    if (options.url !== undefined) {
      const client = createClient(this.urlClientOptions(options.url))
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
            socket: this.socketOptions(options.socket),
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
          await withTimeout(
            cluster.connect(),
            this.connectTimeout,
            () => new Error('cluster discovery timed out'),
          )
          break
        } catch (error) {
          remember(error)
          destroyClient(cluster as unknown as NodeRedisCluster)
          await unrefSleep(cappedBackoff(this.maxReconnectDelay)(attempt))
        }
      }
      if (this.closed) throw new CacheClosedError()
    } else if (this.sentinel !== undefined) {
      const sentinel = this.sentinel
      for (let attempt = 0; ; attempt++) {
        if (this.closed) throw new CacheClosedError()
        try {
          const address = await sentinel.locate()
          const client = await this.connectMaster(address)
          if (this.closed) {
            destroyClient(client)
            throw new CacheClosedError()
          }
          this.adopt(client, address)
          break
        } catch (error) {
          if (error instanceof CacheClosedError) throw error
          remember(error)
          await unrefSleep(cappedBackoff(this.maxReconnectDelay)(attempt))
        }
      }
      sentinel.watch((address) => this.masterSwitched(address))
    }
    this.connected = true
    this.usable = true
    this.unreachable = false
    this.watch()
    // A first connection that only succeeded after failed attempts is a comeback too: the cache may have
    // opened its circuit breaker meanwhile, and this is the cue to probe it.
    if (this.lastError !== undefined) this.reconnected()
  }
}

function isReadOnly(error: unknown): boolean {
  return error instanceof ErrorReply && error.message.startsWith('READONLY')
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
// Reconnect notifications

/**
 * Single server: calls `onReconnect` on each 'ready' of `client` after the first. node-redis emits 'ready'
 * once per successful connection (after its handshake and resubscriptions), so a 'ready' that follows one
 * we saw (or follows watching a client that was ready) always comes after a lost connection.
 */
function watchClient(client: NodeRedisClient, wasReady: boolean, onReconnect: () => void): () => void {
  const ready = () => {
    if (wasReady) onReconnect()
    wasReady = true
  }
  client.on('ready', ready)
  return () => {
    client.off('ready', ready)
  }
}

/**
 * Cluster: calls `onReconnect` when a node client is ready again after its connection dropped, and when a
 * node client created by a topology refresh is first ready while a lost node client was dropped by that
 * refresh (a replica took over from a dead master: its slots are reachable again, on another node).
 *
 * Why these signals. The cluster client forwards only the FIRST 'ready' of each node client ('node-ready'
 * is registered with `once`), so a master that comes back on its existing client is invisible at the
 * cluster level: we listen to each node client ourselves, and hook the clients that appear after a
 * topology refresh on 'node-connect', which node-redis emits before their 'ready'. A node client that a
 * refresh destroys ('end') while down never comes back itself; the first new client to be ready stands in
 * for it. We do not use "a command succeeded after errors": while the cache's circuit breaker is open no
 * command is sent, which is exactly when a reconnect must be reported. For the same reason, while a node
 * client is down we `refresh` the topology every `intervalMs` ourselves: node-redis only does so on
 * MOVED replies or (RedisConnection) on failed commands, so without traffic it would never learn that a
 * replica took over, and never connect to it.
 * 'ready' means the socket and handshake are back, not that the node serves its slots yet (a restarted
 * master may answer CLUSTERDOWN for a moment): listeners should take it as a cue to probe.
 */
function watchCluster(
  cluster: NodeRedisCluster,
  onReconnect: () => void,
  refresh: () => void,
  intervalMs: number,
): () => void {
  const hooked = new Map<NodeRedisClient, () => void>()
  /** Node clients destroyed while down, not yet stood in for by a new client. */
  let orphans = 0
  /** Hooked node clients that are not ready. */
  let down = 0
  let refresher: NodeJS.Timeout | undefined
  const countDown = (delta: number) => {
    down += delta
    if (down > 0 && refresher === undefined) {
      refresher = setInterval(refresh, intervalMs)
      refresher.unref()
    } else if (down === 0 && refresher !== undefined) {
      clearInterval(refresher)
      refresher = undefined
    }
  }
  const hook = (client: NodeRedisClient, known: boolean) => {
    let everReady = known
    let up = client.isReady
    const ready = () => {
      if (everReady) onReconnect()
      else if (orphans > 0) {
        orphans--
        onReconnect()
      }
      everReady = true
      if (!up) countDown(-1)
      up = true
    }
    const lost = () => {
      if (up) countDown(1)
      up = false
    }
    const end = () => {
      if (everReady && !up) orphans++
      unhook()
    }
    const unhook = () => {
      client.off('ready', ready)
      client.off('reconnecting', lost)
      client.off('end', end)
      hooked.delete(client)
      if (!up) countDown(-1)
    }
    client.on('ready', ready)
    client.on('reconnecting', lost)
    client.on('end', end)
    hooked.set(client, unhook)
    if (!up) countDown(1)
  }
  const sweep = (known: boolean) => {
    for (const node of [...cluster.masters, ...cluster.replicas]) {
      const client = node.client as NodeRedisClient | undefined
      if (client !== undefined && !hooked.has(client)) hook(client, known)
    }
  }
  const added = () => sweep(false)
  sweep(true)
  cluster.on('node-connect', added)
  return () => {
    cluster.off('node-connect', added)
    for (const unhook of [...hooked.values()]) unhook()
  }
}

/** `protocol//user@host:port` of a Redis URL (port 6379 when none is given); undefined if it does not parse. */
function urlEndpoint(url: string): string | undefined {
  try {
    const parsed = new URL(url)
    return `${parsed.protocol}//${parsed.username}@${parsed.hostname}:${parsed.port === '' ? '6379' : parsed.port}`
  } catch {
    return undefined
  }
}

/** The connection a store or bus of ours talks through (see connectionOf). */
const connections = new WeakMap<object, RedisConnection>()

/** Records that `owner` (a redisStore or redisBus) talks through `connection`. */
export function registerConnection(owner: object, connection: RedisConnection): void {
  connections.set(owner, connection)
}

/** The connection of a redisStore or redisBus; undefined for anything else (another bus, a wrapper). */
export function connectionOf(owner: object): RedisConnection | undefined {
  return connections.get(owner)
}

/** Validates options and creates a connection (for redisStore and redisBus); connects on first use. */
export function redisConnection(options: RedisConnectionOptions, owner: string): RedisConnection {
  return new RedisConnection(validateConnectionOptions(options), owner)
}
