/**
 * The invalidation bus on Redis pub/sub: PUBLISH/SUBSCRIBE on a single server, sharded pub/sub
 * (SPUBLISH/SSUBSCRIBE) on a Cluster, so a message only travels inside the shard that owns its channel.
 * Long because the one thing it reports, "subscribed on the server right now", takes the reconnect,
 * resubscribe and Cluster-slot cases below, each of which node-redis gets wrong in its own way.
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
 * - On a Cluster, node-redis' view is not taken on trust: before reporting 'connected' (and before
 *   subscribe() resolves) the master the subscriber connects to must list the channel in
 *   `PUBSUB SHARDNUMSUB` (see confirmListed). A Cluster node drops sharded subscriptions on its own, with a
 *   `sunsubscribe` push, whenever it loses a slot or a slot is re-assigned (even to itself: Redis 7.0 drops
 *   them on every `CLUSTER SETSLOT ... NODE`), and node-redis takes such a push for the reply to whatever
 *   pub/sub command is pending, or swallows it while another command is, instead of reporting the move;
 *   its idea of what is subscribed can then differ from the server's. A single server needs no such
 *   check: nothing but the loss of the connection (which we see) or our own UNSUBSCRIBE removes a
 *   subscription there, and `PUBSUB NUMSUB` would count the other processes' subscribers to the same
 *   channel, proving nothing about ours (a limit SHARDNUMSUB shares: in a fleet, ">= 1" is necessary, not
 *   sufficient).
 *
 * Connections: each bus opens one publisher connection (or uses the `client` passed in) and dedicated
 * subscriber connections: one per bus on a single server, one per channel on a Cluster (to the master that
 * owns the channel's slot; channels are few, one per root namespace). On a Cluster the subscription
 * follows the slot: when the server tells us the channel moved (`sunsubscribe` push after a resharding or a
 * manual failover), or when the link stays down and a topology refresh shows another master owning the
 * slot (the old master died and its replica took over), the link reconnects to the new owner.
 */
import { ErrorReply } from 'redis'
import { CacheClosedError } from '../errors.js'
import {
  addressKey,
  destroyClient,
  INSPECT,
  type NodeRedisClient,
  type NodeRedisCluster,
  type RedisConnection,
  type RedisConnectionOptions,
  redisConnection,
  registerConnection,
} from '../redis/connection.js'
import { unrefSleep, withTimeout } from '../timeouts.js'
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

/** What a Cluster or Sentinel link asks about the node it connects to. */
interface LinkRouting {
  /**
   * Whether the channel (Cluster: its slot; Sentinel: the master) now lives on another node than the one
   * the link connects to. Asked periodically while the link is down: when a master dies, a replica takes
   * over and the old address never comes back.
   */
  ownerMoved(): Promise<boolean>
  /** Cluster: whether the master the link connects to lists at least one subscriber of `channel`. */
  listed?(channel: string, timeoutMs: number): Promise<boolean>
}

/**
 * Pauses between PUBSUB SHARDNUMSUB attempts. The count only lags our acknowledged SSUBSCRIBE when the
 * subscription was dropped meanwhile (node-redis then usually reports the move and we relocate, which ends
 * the attempts) or when the query itself failed (the node connection is reconnecting): a short, bounded
 * series, after which the link starts over on a new connection instead of reporting 'connected'.
 */
const CONFIRM_DELAYS_MS = [0, 25, 50, 100, 200, 400]

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

class SubscriberLink {
  private client: NodeRedisClient | undefined
  private state: LinkState = 'idle'
  private readonly channels = new Map<string, ChannelState>()
  private readonly liveWaiters = new Set<{ resolve: () => void; reject: (error: unknown) => void }>()
  private pendingAdds = 0
  private lastError: unknown
  private relocating = false
  private restoreTimer: NodeJS.Timeout | undefined
  /** Counts restore() runs: a run that is no longer the latest (the client reconnected again) gives up. */
  private restoreRun = 0
  private watchdog: NodeJS.Timeout | undefined
  private readonly sharded: boolean

  constructor(
    /** Creates an unconnected client for this link; `relocate` asks for the channel's current owner. */
    private readonly makeClient: (relocate: boolean) => Promise<NodeRedisClient>,
    private readonly connectTimeout: number,
    private readonly maxReconnectDelay: number,
    /** Called when the last channel is gone and the link closed itself. */
    private readonly onReleased: (link: SubscriberLink) => void,
    /** Cluster (sharded pub/sub) and Sentinel only. */
    private readonly routing?: LinkRouting,
  ) {
    this.sharded = routing?.listed !== undefined
  }

  async add(channel: string, subscriber: Subscriber): Promise<void> {
    this.pendingAdds++
    try {
      await this.whenLive()
      let state = this.channels.get(channel)
      if (state === undefined) {
        const created = this.createChannel()
        const client = this.client!
        this.channels.set(channel, created)
        created.subscribed = this.serverSubscribe(client, channel, created.listener)
          .then(() => this.confirmSubscribed(client, channel))
          .catch((error) => {
            if (this.channels.get(channel) === created && created.subscribers.size === 0) {
              this.channels.delete(channel)
              if (client === this.client && client.isReady)
                void this.serverUnsubscribe(client, channel, created)
            }
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
    await this.serverUnsubscribe(client, channel, state)
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

  private async serverUnsubscribe(client: NodeRedisClient, channel: string, state: ChannelState) {
    const unsubscribe = this.sharded
      ? client.sUnsubscribe(channel, state.listener, true)
      : client.unsubscribe(channel, state.listener, true)
    // Offline, node-redis queues the UNSUBSCRIBE until it is back (after it resubscribed): do not wait.
    if (client.isReady) await unsubscribe.catch(() => {})
    else unsubscribe.catch(() => {})
  }

  /**
   * Cluster: whether the master this link connects to lists every one of `channels` (PUBSUB SHARDNUMSUB
   * >= 1), asked a few times over about a second at most (CONFIRM_DELAYS_MS, bounded by connectTimeout).
   * False as soon as `current()` is: the link moved on and whoever moved it confirms for itself.
   * Sentinel: whether the node is still the master (a node that reconnected may have been demoted: its
   * subscribers would hear only what reaches it by replication, and nothing once it is gone).
   * Single server: true at once (see the top of the file).
   */
  private async confirmListed(channels: readonly string[], current: () => boolean): Promise<boolean> {
    const routing = this.routing
    if (routing === undefined) return true
    if (routing.listed === undefined) {
      return routing.ownerMoved().then(
        (moved) => !moved,
        (error: unknown) => {
          this.lastError = error
          return false
        },
      )
    }
    const cluster = { listed: routing.listed.bind(routing) }
    const deadline = Date.now() + this.connectTimeout
    for (const delay of CONFIRM_DELAYS_MS) {
      if (delay > 0) await unrefSleep(delay)
      const remaining = deadline - Date.now()
      if (!current() || remaining <= 0) return false
      const listed = await Promise.all(
        channels.map((channel) =>
          cluster.listed(channel, remaining).catch((error: unknown) => {
            this.lastError = error
            return false
          }),
        ),
      )
      if (listed.every(Boolean)) return true
    }
    return false
  }

  /** First subscription of a channel: resolves once the owner lists it (Cluster), else rejects. */
  private async confirmSubscribed(client: NodeRedisClient, channel: string): Promise<void> {
    const current = () => client === this.client && this.state === 'live'
    if (await this.confirmListed([channel], current)) return
    // The link moved meanwhile (slot migration, reconnect): restore() resubscribes and confirms there.
    if (this.state !== 'closed' && !current()) return this.whenLive()
    throw new Error(
      this.sharded
        ? `redisBus: the Cluster node does not list the subscription to ${channel}`
        : 'redisBus: the node subscribed to is no longer the Sentinel master',
      { cause: this.lastError },
    )
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
          await withTimeout(
            client.connect(),
            this.connectTimeout,
            () => new Error('redisBus: no connection in time'),
          )
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
    const cluster = this.routing
    if (cluster === undefined || this.watchdog !== undefined) return
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
        cluster
          .ownerMoved()
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

  /**
   * After a reconnect: make sure every channel is subscribed on the server (and, on a Cluster, listed by
   * the node), then report 'connected'.
   */
  private async restore(client: NodeRedisClient): Promise<void> {
    clearTimeout(this.restoreTimer)
    const run = ++this.restoreRun
    const current = () => run === this.restoreRun && client === this.client && this.state === 'down'
    const registered = client.getPubSubListeners(this.sharded ? 'SHARDED' : 'CHANNELS')
    try {
      for (const [channel, state] of this.channels) {
        if (!registered.get(channel)?.buffers.has(state.listener)) {
          await this.serverSubscribe(client, channel, state.listener)
        }
      }
    } catch (error) {
      if (!current()) return
      this.lastError = error
      if (isMoved(error)) {
        void this.relocate()
      } else if (client.isReady) {
        // Connected but refused (e.g. ACL): try again later; a new connection retries via 'ready' anyway.
        this.retryLater(current, () => this.restore(client))
      }
      return
    }
    if (!current() || !client.isReady) return
    if (!(await this.confirmListed([...this.channels.keys()], current))) {
      if (!current()) return
      if (!this.sharded) {
        // Sentinel: reconnected to a node that is no longer the master. Move to the one that is.
        void this.relocate()
        return
      }
      // Acknowledged, yet the node does not list it: node-redis believes it is subscribed, so subscribing
      // again on this connection would send nothing. Stay 'disconnected' and start over on a new one.
      this.lastError = new Error('redisBus: the Cluster node does not list the resubscription', {
        cause: this.lastError,
      })
      this.retryLater(current, () => this.relocate())
      return
    }
    if (!current() || !client.isReady) return
    this.state = 'live'
    clearInterval(this.watchdog)
    this.watchdog = undefined
    for (const waiter of this.liveWaiters) waiter.resolve()
    this.notify('connected')
  }

  /** Runs `retry` after maxReconnectDelay unless the restore it belongs to is superseded by then. */
  private retryLater(current: () => boolean, retry: () => Promise<void>): void {
    clearTimeout(this.restoreTimer)
    this.restoreTimer = setTimeout(() => {
      if (current()) void retry()
    }, this.maxReconnectDelay)
    this.restoreTimer.unref()
  }

  /**
   * Moves the subscription to the node that now owns the channel (Cluster) or to the new master
   * (Sentinel); reports 'disconnected' until it is subscribed there.
   */
  async relocate(): Promise<void> {
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
  /** Cluster: the master address each channel's subscriber connection was opened to (Sentinel: under ''). */
  private readonly owners = new Map<string, string>()
  private closed = false

  constructor(options: RedisBusOptions) {
    this.connection = redisConnection(options, 'redisBus')
    // A redisStore on the same server publishes this bus's invalidations itself (RemoteStore.canAnnounce).
    registerConnection(this, this.connection)
    this.name = this.connection.isCluster
      ? 'redis-cluster'
      : this.connection.isSentinel
        ? 'redis-sentinel'
        : 'redis'
    if (this.connection.isSentinel) {
      // The publisher connection follows the master (ROLE, +switch-master); the subscriber follows it,
      // even while its own connection to the old master still stands (that node no longer hears them).
      this.connection.onMasterChange((master) => {
        const link = this.links.get('')
        if (link !== undefined && this.owners.get('') !== addressKey(master)) void link.relocate()
      })
    }
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
        this.connection.connectTimeout,
        this.connection.maxReconnectDelay,
        (released) => {
          if (this.links.get(linkKey) !== released) return
          this.links.delete(linkKey)
          this.owners.delete(channel)
        },
        this.connection.isCluster
          ? {
              ownerMoved: () => this.ownerMoved(channel),
              listed: (listed, timeoutMs) => this.listed(listed, timeoutMs),
            }
          : this.connection.isSentinel
            ? { ownerMoved: () => this.masterMoved() }
            : undefined,
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

  /** What util.inspect shows: never the clients or the options as given (they hold the secrets). */
  [INSPECT](): unknown {
    return { name: this.name, connection: this.connection.options, subscriberConnections: this.links.size }
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const link of this.links.values()) link.close()
    this.links.clear()
    await this.connection.close()
  }

  /**
   * A new, unconnected client for a dedicated subscriber connection: on a Cluster, to the master that owns
   * the channel's slot.
   */
  private async subscriberClient(channel: string, relocate: boolean): Promise<NodeRedisClient> {
    const connection = this.connection
    if (connection.isSentinel) {
      // Opens the publisher connection too: it watches for failovers (see the constructor). While it has
      // no confirmed master (a failover), the sentinels answer for it.
      await connection.raw().catch(() => {})
      const master = await connection.sentinelMaster(relocate)
      this.owners.set('', addressKey(master))
      return connection.masterClient(master)
    }
    if (!connection.isCluster) return connection.dedicatedClient()
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
    return connection.dedicatedClient(nodeClient)
  }

  /**
   * Whether the master `channel`'s subscriber connects to lists a subscriber of it, asked on that master's
   * regular connection (the subscriber connection only takes pub/sub commands). Asking that node, not the
   * slot's owner in the cluster client's map: it accepted the SSUBSCRIBE, so it owned the slot (a node that
   * does not answers MOVED), while the map may be stale for as long as nothing answers MOVED. An ACL that
   * forbids PUBSUB leaves only the SSUBSCRIBE acknowledgement to go by: then we accept it.
   */
  private async listed(channel: string, timeoutMs: number): Promise<boolean> {
    const address = this.owners.get(channel)
    const cluster = (await this.connection.raw()) as NodeRedisCluster
    const node = cluster.masters.find((master) => master.address === address)
    if (node === undefined) return false
    const ask = async () => {
      const client = (await cluster.nodeClient(node)) as NodeRedisClient
      return (await client.sendCommand(['PUBSUB', 'SHARDNUMSUB', channel])) as [unknown, unknown]
    }
    try {
      const reply = await withTimeout(
        ask(),
        timeoutMs,
        () => new Error('redisBus: PUBSUB SHARDNUMSUB timed out'),
      )
      return Number(reply[1]) >= 1
    } catch (error) {
      if (error instanceof ErrorReply && /^(NOPERM|ERR unknown)/.test(error.message)) return true
      throw error
    }
  }

  /** Sentinel: whether the master is no longer the node the subscriber connects to. */
  private async masterMoved(): Promise<boolean> {
    const master = await this.connection.sentinelMaster()
    return addressKey(master) !== this.owners.get('')
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
