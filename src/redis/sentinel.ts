/**
 * Redis Sentinel: where the master is, and when it moves. RedisConnection (connection.ts) keeps a plain
 * node-redis client to the master this module names, and replaces it when the master changes.
 *
 * The idea, as Redis' "Sentinel clients" guidelines describe it: ask the sentinels in turn for the master
 * (`SENTINEL GET-MASTER-ADDR-BY-NAME`), connect to it, and check with `ROLE` that it is a master (a
 * sentinel's view can lag a failover); whenever the connection drops, or a command gets READONLY, ask again.
 * On top of that, one connection per watch subscribes to `+switch-master` on one sentinel, so that a
 * failover is followed at once, not only once the old master drops its clients: a master demoted by
 * `SENTINEL FAILOVER` keeps accepting writes until Sentinel reconfigures it, and every write it accepts
 * after the promotion is lost when it resyncs from the new master.
 *
 * Why not node-redis' own `createSentinel`: its pub/sub proxy reports no connection loss or resubscription
 * (the bus must say 'disconnected' the moment its subscriber drops, see bus/redis-bus.ts), commands sent
 * while the master is down wait for it (retrying discovery in a loop) instead of failing fast, the master
 * clients are private (no 'ready' to turn into the store's reconnect cue), its connect loop logs errors
 * with console.log and retries on timers that keep the process alive, and `destroy()` waits for a connect
 * in progress. With a plain client per master, the store and the bus keep the single-server code paths.
 */
import { createClient } from 'redis'
import { unrefSleep, withTimeout } from '../timeouts.js'
import type { NodeRedisClient, RedisNodeAddress, RedisSocketOptions } from './connection.js'

export interface RedisSentinelOptions {
  /** The master's name in the sentinels' configuration (`sentinel monitor <name> ...`). */
  name: string
  /** Some of the sentinels (one that answers is enough; they are asked in turn). */
  sentinels: readonly RedisNodeAddress[]
  /** ACL username for the sentinels themselves (not for the master: see the options beside `sentinel`). */
  username?: string
  /** Password of the sentinels themselves (`requirepass` in the sentinel configuration). */
  password?: string
  /** Socket options for the sentinel connections, e.g. `{ tls: true, ca }`. */
  socket?: RedisSocketOptions
}

/** Maps an address a sentinel announces (`host:port`) to one this process can reach (NAT, proxies). */
export type NodeAddressMap =
  | Readonly<Record<string, RedisNodeAddress>>
  | ((address: string) => RedisNodeAddress | undefined)

export function addressKey(node: RedisNodeAddress): string {
  return `${node.host}:${node.port}`
}

export function sameAddress(a: RedisNodeAddress | undefined, b: RedisNodeAddress | undefined): boolean {
  return a !== undefined && b !== undefined && a.host === b.host && a.port === b.port
}

/** Where to connect to reach `node`, as announced. */
export function mapAddress(map: NodeAddressMap | undefined, node: RedisNodeAddress): RedisNodeAddress {
  if (map === undefined) return node
  const mapped = typeof map === 'function' ? map(addressKey(node)) : map[addressKey(node)]
  return mapped ?? node
}

/** Pause before subscribing to the next sentinel after one was lost: grows to the reconnect cap. */
function backoff(attempt: number, cap: number): number {
  return Math.min(cap, 100 * 2 ** Math.min(attempt, 10))
}

/**
 * Asks the sentinels where the master is and tells when it moved. `makeClient` creates an unconnected
 * client to a sentinel with our socket options and the sentinels' credentials, without reconnects.
 * @internal
 */
export class SentinelWatch {
  /** The sentinel that answered last is asked first. */
  private first = 0
  private subscriber: NodeRedisClient | undefined
  private closed = false

  constructor(
    private readonly options: RedisSentinelOptions,
    private readonly makeClient: (sentinel: RedisNodeAddress) => NodeRedisClient,
    private readonly connectTimeout: number,
    private readonly maxReconnectDelay: number,
  ) {}

  get name(): string {
    return this.options.name
  }

  /** The master's address as the first sentinel to answer announces it; rejects when none knows it. */
  async locate(): Promise<RedisNodeAddress> {
    const sentinels = this.options.sentinels
    const problems: string[] = []
    let lastError: unknown
    for (let i = 0; i < sentinels.length; i++) {
      if (this.closed) break
      const index = (this.first + i) % sentinels.length
      const sentinel = sentinels[index]!
      const client = this.makeClient(sentinel)
      client.on('error', () => {})
      try {
        const reply = await withTimeout(
          (async () => {
            await client.connect()
            return client.sendCommand(['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.options.name])
          })(),
          this.connectTimeout,
          () => new Error(`no answer within ${this.connectTimeout} ms`),
        )
        if (Array.isArray(reply) && reply.length === 2) {
          this.first = index
          return { host: String(reply[0]), port: Number(reply[1]) }
        }
        problems.push(`${addressKey(sentinel)} monitors no master named ${this.options.name}`)
      } catch (error) {
        lastError = error
        problems.push(`${addressKey(sentinel)}: ${(error as Error)?.message ?? String(error)}`)
      } finally {
        destroy(client)
      }
    }
    throw new Error(`no sentinel named the master ${this.options.name} (${problems.join('; ')})`, {
      cause: lastError,
    })
  }

  /**
   * Subscribes to `+switch-master` on one sentinel at a time and calls `onSwitch` with the new master's
   * address when the master of our name changes. When that sentinel's connection is lost, moves on to the
   * next sentinel (after a pause that grows while none can be reached), until close().
   */
  watch(onSwitch: (master: RedisNodeAddress) => void): void {
    let attempt = 0
    let next = this.first
    const subscribe = async (): Promise<void> => {
      if (this.closed) return
      const sentinels = this.options.sentinels
      const client = this.makeClient(sentinels[next++ % sentinels.length]!)
      this.subscriber = client
      let lost = false
      const moveOn = () => {
        if (lost) return
        lost = true
        destroy(client)
        if (this.subscriber === client) this.subscriber = undefined
        if (this.closed) return
        void unrefSleep(backoff(attempt++, this.maxReconnectDelay)).then(subscribe)
      }
      client.on('error', moveOn)
      client.on('end', moveOn)
      try {
        await withTimeout(client.connect(), this.connectTimeout, () => new Error('no sentinel connection'))
        await client.subscribe('+switch-master', (message: string) => {
          // "<name> <old ip> <old port> <new ip> <new port>"
          const [name, , , host, port] = message.split(' ')
          if (name === this.options.name && host !== undefined && port !== undefined) {
            onSwitch({ host, port: Number(port) })
          }
        })
        attempt = 0
      } catch {
        moveOn()
      }
    }
    void subscribe()
  }

  close(): void {
    this.closed = true
    const subscriber = this.subscriber
    this.subscriber = undefined
    if (subscriber !== undefined) destroy(subscriber)
  }
}

/** Whether ROLE's reply says master. */
export function isMasterRole(reply: unknown): boolean {
  return Array.isArray(reply) && String(reply[0]) === 'master'
}

function destroy(client: NodeRedisClient): void {
  try {
    if (client.isOpen) client.destroy()
  } catch {
    // already closed
  }
}

/** An unconnected client to `node` with the given options (for sentinels: no reconnects). */
export function sentinelClient(
  node: RedisNodeAddress,
  options: RedisSentinelOptions,
  socket: RedisSocketOptions,
): NodeRedisClient {
  return createClient({
    socket: { ...socket, host: node.host, port: node.port, reconnectStrategy: false } as RedisSocketOptions,
    ...(options.username !== undefined && { username: options.username }),
    ...(options.password !== undefined && { password: options.password }),
    disableOfflineQueue: true,
  }) as unknown as NodeRedisClient
}
