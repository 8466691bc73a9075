/**
 * The invalidation bus on Redis pub/sub: PUBLISH/SUBSCRIBE on a single server, sharded pub/sub
 * (SPUBLISH/SSUBSCRIBE) on a Cluster, so a message only travels inside the shard that owns its channel.
 *
 * Why the status matters: pub/sub is fire-and-forget. While the subscriber connection is down, messages
 * published elsewhere are lost for good, so the cache must stop trusting its L1 from the moment the
 * connection drops until the subscription is back on the server (coherence/coherence.ts). Hence:
 * - 'disconnected' is reported on the first sign of trouble (node-redis' `error` / `reconnecting` events,
 *   emitted synchronously when the socket closes, e.g. after `CLIENT KILL TYPE pubsub` or a restart);
 * - 'connected' only once the connection is `ready` again AND every channel is subscribed on the server:
 *   node-redis re-sends (S)SUBSCRIBE inside its connection initiator and emits `ready` only after the
 *   server acknowledged them; we then check that each channel's listener is still registered (a MOVED
 *   during resubscription drops it) and subscribe again where it is missing before reporting.
 *
 * Connections: each bus opens one publisher connection (or uses the `client` passed in) and dedicated
 * subscriber connections: one per bus on a single server, one per channel on a Cluster (to the master that
 * owns the channel's slot; channels are few, one per root namespace). On a Cluster the subscription
 * follows the slot: when the server tells us the channel moved (`sunsubscribe` push after a resharding or a
 * manual failover), or when the link stays down and a topology refresh shows another master owning the
 * slot (the old master died and its replica took over), the link reconnects to the new owner.
 */
import { createClient } from 'redis'
import { CacheClosedError } from '../errors.js'
import {
  cappedBackoff,
  destroyClient,
  type NodeRedisClient,
  type NodeRedisCluster,
  type RedisConnection,
  type RedisConnectionOptions,
  type RedisSocketOptions,
  redisConnection,
  withTimeout,
} from '../stores/redis-store.js'
import type { Bus, BusStatus, BusSubscription } from './bus.js'

export type RedisBusOptions = RedisConnectionOptions

interface Subscriber {
  onMessage: (message: Uint8Array) => void
  onStatus: (status: BusStatus) => void
}

interface ChannelState {
  readonly subscribers: Set<Subscriber>
  /** The one node-redis listener of this channel; it fans out to `subscribers`. */
  readonly listener: (message: Buffer) => void
  /** Settles when the server acknowledged the first SUBSCRIBE of this channel. */
  subscribed: Promise<void>
}

type LinkState = 'idle' | 'connecting' | 'live' | 'down' | 'closed'

// ---------------------------------------------------------------------------------------------------------
// Cluster key slots (CRC16-XMODEM of the key, or of its {hash tag}, modulo 16384), as Redis computes them

function crc16(bytes: Uint8Array, start: number, end: number): number {
  let crc = 0
  for (let i = start; i < end; i++) {
    crc ^= bytes[i]! << 8
    for (let bit = 0; bit < 8; bit++)
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
  }
  return crc
}

/** @internal The Redis Cluster hash slot of `key`. */
export function keySlot(key: string): number {
  const bytes = Buffer.from(key)
  let start = 0
  let end = bytes.length
  const open = bytes.indexOf(0x7b) // '{'
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1) // '}'
    if (close > open + 1) {
      start = open + 1
      end = close
    }
  }
  return crc16(bytes, start, end) & 16383
}

// ---------------------------------------------------------------------------------------------------------
// One dedicated subscriber connection and the channels it carries

function isMoved(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('MOVED')
}

function unrefSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}

class SubscriberLink {
  private client: NodeRedisClient | undefined
  private state: LinkState = 'idle'
  private readonly channels = new Map<string, ChannelState>()
  private readonly liveWaiters = new Set<{ resolve: () => void; reject: (error: unknown) => void }>()
  private pendingAdds = 0
  private lastError: unknown
  private relocating = false
  private restoreTimer: NodeJS.Timeout | undefined
  private watchdog: NodeJS.Timeout | undefined

  constructor(
    /** Creates an unconnected client for this link; `relocate` asks for the channel's current owner. */
    private readonly makeClient: (relocate: boolean) => Promise<NodeRedisClient>,
    private readonly sharded: boolean,
    private readonly connectTimeout: number,
    private readonly maxReconnectDelay: number,
    /** Called when the last channel is gone and the link closed itself. */
    private readonly onReleased: (link: SubscriberLink) => void,
    /**
     * Cluster only: whether the channel's slot now belongs to another master than the one this link
     * connects to. Asked periodically while the link is down: when a master dies, its replica takes over
     * and the old address never comes back.
     */
    private readonly ownerMoved?: () => Promise<boolean>,
  ) {}

  async add(channel: string, subscriber: Subscriber): Promise<void> {
    this.pendingAdds++
    try {
      await this.whenLive()
      let state = this.channels.get(channel)
      if (state === undefined) {
        const created = this.createChannel()
        this.channels.set(channel, created)
        created.subscribed = this.serverSubscribe(this.client!, channel, created.listener).catch((error) => {
          if (this.channels.get(channel) === created && created.subscribers.size === 0)
            this.channels.delete(channel)
          throw error
        })
        state = created
      }
      await state.subscribed
      state.subscribers.add(subscriber)
    } finally {
      this.pendingAdds--
      this.releaseIfUnused()
    }
  }

  async remove(channel: string, subscriber: Subscriber): Promise<void> {
    const state = this.channels.get(channel)
    if (state === undefined || !state.subscribers.delete(subscriber) || state.subscribers.size > 0) return
    this.channels.delete(channel)
    if (this.releaseIfUnused()) return
    const client = this.client
    if (client === undefined || !client.isOpen) return
    const unsubscribe = this.sharded
      ? client.sUnsubscribe(channel, state.listener, true)
      : client.unsubscribe(channel, state.listener, true)
    // Offline, node-redis queues the UNSUBSCRIBE until it is back (after it resubscribed): do not wait.
    if (client.isReady) await unsubscribe.catch(() => {})
    else unsubscribe.catch(() => {})
  }

  close(): void {
    if (this.state === 'closed') return
    this.state = 'closed'
    clearTimeout(this.restoreTimer)
    clearInterval(this.watchdog)
    this.channels.clear()
    for (const waiter of this.liveWaiters) waiter.reject(new CacheClosedError())
    this.liveWaiters.clear()
    const client = this.client
    this.client = undefined
    if (client) destroyClient(client)
  }

  private releaseIfUnused(): boolean {
    if (this.channels.size > 0 || this.pendingAdds > 0 || this.state === 'closed') return false
    this.close()
    this.onReleased(this)
    return true
  }

  private createChannel(): ChannelState {
    const subscribers = new Set<Subscriber>()
    return {
      subscribers,
      listener: (message: Buffer) => {
        for (const subscriber of subscribers) {
          try {
            subscriber.onMessage(message)
          } catch (error) {
            // A throwing subscriber must not break node-redis' reply parser; surface it like memoryBus does.
            queueMicrotask(() => {
              throw error
            })
          }
        }
      },
      subscribed: Promise.resolve(),
    }
  }

  private serverSubscribe(client: NodeRedisClient, channel: string, listener: (message: Buffer) => void) {
    // node-redis queues pub/sub commands even while offline; we want a prompt failure instead.
    if (!client.isReady) return Promise.reject(new Error('redisBus: the subscriber connection is down'))
    return this.sharded
      ? client.sSubscribe(channel, listener, true)
      : client.subscribe(channel, listener, true)
  }

  /** Resolves when the link is live; waits at most connectTimeout. */
  private whenLive(): Promise<void> {
    if (this.state === 'live') return Promise.resolve()
    if (this.state === 'closed') return Promise.reject(new CacheClosedError())
    if (this.state === 'idle') this.connect()
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        resolve: () => {
          clearTimeout(timer)
          this.liveWaiters.delete(waiter)
          resolve()
        },
        reject: (error: unknown) => {
          clearTimeout(timer)
          this.liveWaiters.delete(waiter)
          reject(error)
        },
      }
      const timer = setTimeout(() => {
        waiter.reject(
          new Error(`redisBus: no subscriber connection within ${this.connectTimeout} ms`, {
            cause: this.lastError,
          }),
        )
      }, this.connectTimeout)
      timer.unref()
      this.liveWaiters.add(waiter)
    })
  }

  private connect(relocate = false): void {
    if (this.state === 'idle') this.state = 'connecting'
    void (async () => {
      let client: NodeRedisClient | undefined
      try {
        client = await this.makeClient(relocate)
        if (this.state === 'closed') return destroyClient(client)
        this.client = client
        this.attach(client)
        // node-redis keeps retrying a first connection (reconnectStrategy) until it succeeds or is destroyed.
        // When moving to another node, give up after connectTimeout and ask for the owner again instead.
        if (relocate)
          await withTimeout(client.connect(), this.connectTimeout, 'redisBus: no connection in time')
        else await client.connect()
      } catch (error) {
        this.lastError = error
        if (client && client === this.client) {
          this.client = undefined
          destroyClient(client)
        }
        if (this.state === 'connecting') {
          this.state = 'idle'
          for (const waiter of this.liveWaiters) waiter.reject(error)
        } else if (this.state === 'down') {
          await unrefSleep(this.maxReconnectDelay)
          if (this.state === 'down' && this.client === undefined) this.connect(true)
        }
      }
    })()
  }

  private attach(client: NodeRedisClient): void {
    client.on('error', (error: unknown) => {
      if (client !== this.client) return
      this.lastError = error
      this.markDown()
    })
    client.on('reconnecting', () => {
      if (client === this.client) this.markDown()
    })
    client.on('ready', () => {
      if (client === this.client) this.onReady(client)
    })
    if (this.sharded) {
      // The server unsubscribed us: the channel's slot moved to another master (resharding, failover).
      client.on('sharded-channel-moved', (channel: string) => {
        if (client === this.client && this.channels.has(channel)) void this.relocate()
      })
    }
  }

  private markDown(): void {
    if (this.state !== 'live') return
    this.state = 'down'
    this.notify('disconnected')
    this.startWatchdog()
  }

  private startWatchdog(): void {
    const ownerMoved = this.ownerMoved
    if (ownerMoved === undefined || this.watchdog !== undefined) return
    let checking = false
    this.watchdog = setInterval(
      () => {
        if (this.state !== 'down') {
          clearInterval(this.watchdog)
          this.watchdog = undefined
          return
        }
        if (checking || this.relocating) return
        checking = true
        ownerMoved()
          .then((moved) => {
            if (moved && this.state === 'down') void this.relocate()
          })
          .catch((error: unknown) => {
            this.lastError = error
          })
          .finally(() => {
            checking = false
          })
      },
      Math.max(1000, this.maxReconnectDelay),
    )
    this.watchdog.unref()
  }

  private onReady(client: NodeRedisClient): void {
    if (this.state === 'connecting') {
      this.state = 'live'
      for (const waiter of this.liveWaiters) waiter.resolve()
      return
    }
    if (this.state === 'down') void this.restore(client)
  }

  /** After a reconnect: make sure every channel is subscribed on the server, then report 'connected'. */
  private async restore(client: NodeRedisClient): Promise<void> {
    clearTimeout(this.restoreTimer)
    const registered = client.getPubSubListeners(this.sharded ? 'SHARDED' : 'CHANNELS')
    try {
      for (const [channel, state] of this.channels) {
        if (!registered.get(channel)?.buffers.has(state.listener)) {
          await this.serverSubscribe(client, channel, state.listener)
        }
      }
    } catch (error) {
      if (client !== this.client || this.state !== 'down') return
      this.lastError = error
      if (isMoved(error)) {
        void this.relocate()
      } else if (client.isReady) {
        // Connected but refused (e.g. ACL): try again later; a new connection retries via 'ready' anyway.
        this.restoreTimer = setTimeout(() => void this.restore(client), this.maxReconnectDelay)
        this.restoreTimer.unref()
      }
      return
    }
    if (client !== this.client || this.state !== 'down' || !client.isReady) return
    this.state = 'live'
    clearInterval(this.watchdog)
    this.watchdog = undefined
    for (const waiter of this.liveWaiters) waiter.resolve()
    this.notify('connected')
  }

  /** Moves the subscription to the node that now owns the channel (Cluster only). */
  private async relocate(): Promise<void> {
    if (this.relocating || this.state === 'closed') return
    this.relocating = true
    try {
      this.markDown()
      if (this.state === 'connecting') this.state = 'down'
      const old = this.client
      this.client = undefined
      if (old) destroyClient(old)
      // The listeners live in the old client; new ones are subscribed by restore() on the new 'ready'.
      this.connect(true)
    } finally {
      this.relocating = false
    }
  }

  private notify(status: BusStatus): void {
    for (const state of this.channels.values()) {
      for (const subscriber of state.subscribers) {
        try {
          subscriber.onStatus(status)
        } catch (error) {
          queueMicrotask(() => {
            throw error
          })
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Bus

class RedisBus implements Bus {
  readonly name: string
  private readonly connection: RedisConnection
  /** Single server: one link under ''. Cluster: one link per channel. */
  private readonly links = new Map<string, SubscriberLink>()
  /** Cluster: the master address each channel's subscriber connection was opened to. */
  private readonly owners = new Map<string, string>()
  private closed = false

  constructor(options: RedisBusOptions) {
    this.connection = redisConnection(options, 'redisBus')
    this.name = this.connection.isCluster ? 'redis-cluster' : 'redis'
  }

  async subscribe(
    channel: string,
    onMessage: (message: Uint8Array) => void,
    onStatus: (status: BusStatus) => void,
  ): Promise<BusSubscription> {
    if (this.closed) throw new CacheClosedError()
    const subscriber: Subscriber = { onMessage, onStatus }
    const linkKey = this.connection.isCluster ? channel : ''
    let link = this.links.get(linkKey)
    if (link === undefined) {
      const created = new SubscriberLink(
        (relocate) => this.subscriberClient(channel, relocate),
        this.connection.isCluster,
        this.connection.connectTimeout,
        this.connection.maxReconnectDelay,
        (released) => {
          if (this.links.get(linkKey) !== released) return
          this.links.delete(linkKey)
          this.owners.delete(channel)
        },
        this.connection.isCluster ? () => this.ownerMoved(channel) : undefined,
      )
      this.links.set(linkKey, created)
      link = created
    }
    await link.add(channel, subscriber)
    let active = true
    return {
      unsubscribe: async () => {
        if (!active) return
        active = false
        await link.remove(channel, subscriber)
      },
    }
  }

  async publish(channel: string, message: Uint8Array): Promise<void> {
    if (this.closed) throw new CacheClosedError()
    const payload = Buffer.isBuffer(message)
      ? message
      : Buffer.from(message.buffer, message.byteOffset, message.byteLength)
    if (this.connection.isCluster) await this.connection.send(channel, ['SPUBLISH', channel, payload])
    else await this.connection.send(undefined, ['PUBLISH', channel, payload])
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const link of this.links.values()) link.close()
    this.links.clear()
    await this.connection.close()
  }

  /** A new, unconnected client for a dedicated subscriber connection (fails fast offline, retries forever). */
  private async subscriberClient(channel: string, relocate: boolean): Promise<NodeRedisClient> {
    const connection = this.connection
    const reconnectStrategy = cappedBackoff(connection.maxReconnectDelay)
    const overrides = (base: NodeRedisClient) => ({
      socket: {
        ...base.options.socket,
        connectTimeout: connection.connectTimeout,
        reconnectStrategy,
      } as RedisSocketOptions,
      disableOfflineQueue: true,
      clientSideCache: undefined,
      emitInvalidate: undefined,
    })
    if (!connection.isCluster) {
      const options = connection.options
      if (options.url !== undefined) {
        return createClient({
          url: options.url,
          socket: {
            ...options.socket,
            connectTimeout: connection.connectTimeout,
            reconnectStrategy,
          } as RedisSocketOptions,
          disableOfflineQueue: true,
        }) as unknown as NodeRedisClient
      }
      const client = options.client as NodeRedisClient
      return client.duplicate(overrides(client)) as NodeRedisClient
    }
    const cluster = (await connection.raw()) as NodeRedisCluster
    if (relocate) {
      // A keyed command for the channel's slot: a MOVED reply makes node-redis rediscover the topology.
      await cluster.sendCommand(channel, true, ['EXISTS', channel]).catch(() => {})
    }
    const shard = cluster.slots[keySlot(channel)]
    if (shard === undefined)
      throw new Error(`redisBus: no Cluster node serves the slot of channel ${channel}`)
    const nodeClient = (await cluster.nodeClient(shard.master)) as NodeRedisClient
    this.owners.set(channel, shard.master.address)
    return nodeClient.duplicate(overrides(nodeClient)) as NodeRedisClient
  }

  /** Whether the master owning `channel`'s slot is no longer the one its subscriber connects to. */
  private async ownerMoved(channel: string): Promise<boolean> {
    await this.connection.refreshTopology()
    const cluster = (await this.connection.raw()) as NodeRedisCluster
    const owner = cluster.slots[keySlot(channel)]?.master.address
    return owner !== undefined && owner !== this.owners.get(channel)
  }
}

/**
 * An invalidation bus on Redis pub/sub (sharded pub/sub on a Cluster). Takes the same connection options
 * as redisStore; with `client`, the subscriber connections are duplicates of it.
 */
export function redisBus(options: RedisBusOptions): Bus {
  return new RedisBus(options)
}
