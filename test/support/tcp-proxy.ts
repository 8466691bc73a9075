/**
 * A TCP fault proxy for tests: listens on a free loopback port and forwards every connection to one
 * target (a Redis server), with faults switched on and off while a test runs. One proxy per (cache node,
 * Redis server), so that one node can be cut off alone while the others keep working.
 *
 * Faults, per direction: 'up' is client to server, 'down' server to client.
 * - latency({ up, down }): each chunk is delivered that many ms after it arrived (order kept).
 * - stall(direction): bytes are held and delivered, in order, at heal(): what TCP does across a short
 *   network outage (it retransmits), so the client sees a connection that hangs, not one that fails.
 * - partition(): stall('both') on every connection, new ones included (a new connection is accepted, as
 *   the kernel would, but nothing passes): the node is cut off from this server until heal().
 * - blackhole(direction): bytes are accepted and dropped, never delivered. A stream that lost bytes
 *   cannot go on (Redis replies would be paired with the wrong commands), so heal() resets those
 *   connections instead of resuming them. Bytes that reach the proxy after heal() pass: a test that
 *   means to lose a reply waits until `dropped` says it was lost.
 * - reset(): every open connection is closed with RST (ECONNRESET on both ends); drop(): with FIN (a
 *   clean end of stream).
 * - heal(): no latency, no stall, no blackhole; stalled bytes go out, blackholed connections are reset.
 *
 * close() stops listening and destroys every connection. Proxies are registered, and closed by
 * closeAllProxies() (tests call it in afterAll) and at process exit.
 */
import net from 'node:net'

export type Direction = 'up' | 'down' | 'both'

export interface ProxyTarget {
  host: string
  port: number
}

export interface TcpProxy {
  readonly host: string
  readonly port: number
  readonly target: ProxyTarget
  /** Connections currently open through the proxy. */
  readonly connections: number
  /** Connections accepted so far. */
  readonly accepted: number
  /** Chunks that blackholes dropped so far, both directions. */
  readonly dropped: number
  latency(ms: number | { up?: number; down?: number }): void
  stall(direction?: Direction): void
  partition(): void
  blackhole(direction?: Direction): void
  reset(): void
  drop(): void
  heal(): void
  close(): Promise<void>
}

const HOST = '127.0.0.1'

interface Chunk {
  /** undefined: the end of the stream (FIN), forwarded in order like the bytes before it. */
  data: Buffer | undefined
  due: number
}

/** RST where possible (a socket still connecting has no TCP handle to reset yet). */
function resetSocket(socket: net.Socket): void {
  if (socket.destroyed) return
  try {
    socket.resetAndDestroy()
  } catch {
    socket.destroy()
  }
}

/** One direction of one connection: chunks waiting to be written to `to`. */
class Pump {
  private readonly queue: Chunk[] = []
  private timer: NodeJS.Timeout | undefined
  /** Bytes were dropped (blackhole): the stream is broken for good. */
  lost = false

  constructor(
    private readonly to: net.Socket,
    private readonly faults: () => { latencyMs: number; stalled: boolean; blackholed: boolean },
    private readonly onDrop: () => void,
  ) {}

  push(data: Buffer | undefined): void {
    const { latencyMs, blackholed } = this.faults()
    if (blackholed) {
      this.lost = true
      this.onDrop()
      return
    }
    this.queue.push({ data, due: performance.now() + latencyMs })
    this.flush()
  }

  /** Writes what is due, in order; waits for the first chunk that is not. */
  flush(): void {
    clearTimeout(this.timer)
    this.timer = undefined
    if (this.faults().stalled) return
    const now = performance.now()
    while (this.queue.length > 0) {
      const head = this.queue[0]!
      if (head.due > now) {
        this.timer = setTimeout(() => this.flush(), Math.ceil(head.due - now))
        this.timer.unref()
        return
      }
      this.queue.shift()
      if (this.to.destroyed) continue
      if (head.data === undefined) this.to.end()
      else this.to.write(head.data)
    }
  }

  /** Delivers what waits now, whatever its due time (heal()). */
  release(): void {
    for (const chunk of this.queue) chunk.due = 0
    this.flush()
  }

  stop(): void {
    clearTimeout(this.timer)
    this.queue.length = 0
  }
}

interface Pair {
  client: net.Socket
  server: net.Socket
  up: Pump
  down: Pump
}

const proxies = new Set<FaultProxy>()
let exitHook = false

class FaultProxy implements TcpProxy {
  readonly host = HOST
  private readonly pairs = new Set<Pair>()
  private latencyUp = 0
  private latencyDown = 0
  private stalledUp = false
  private stalledDown = false
  private holeUp = false
  private holeDown = false
  accepted = 0
  dropped = 0
  private readonly countDrop = (): void => {
    this.dropped++
  }

  constructor(
    private readonly listener: net.Server,
    readonly port: number,
    readonly target: ProxyTarget,
  ) {
    listener.on('connection', (client) => this.accept(client))
  }

  get connections(): number {
    return this.pairs.size
  }

  private accept(client: net.Socket): void {
    this.accepted++
    client.setNoDelay(true)
    const server = net.connect({ host: this.target.host, port: this.target.port, allowHalfOpen: true })
    server.setNoDelay(true)
    const up = new Pump(
      server,
      () => ({ latencyMs: this.latencyUp, stalled: this.stalledUp, blackholed: this.holeUp }),
      this.countDrop,
    )
    const down = new Pump(
      client,
      () => ({ latencyMs: this.latencyDown, stalled: this.stalledDown, blackholed: this.holeDown }),
      this.countDrop,
    )
    const pair: Pair = { client, server, up, down }
    this.pairs.add(pair)
    client.on('data', (data) => up.push(data))
    server.on('data', (data) => down.push(data))
    // A FIN travels like the bytes before it; an error (RST, refused) resets the other side at once.
    client.on('end', () => up.push(undefined))
    server.on('end', () => down.push(undefined))
    client.on('error', () => resetSocket(server))
    server.on('error', () => resetSocket(client))
    let open = 2
    const closed = () => {
      if (--open > 0) return
      up.stop()
      down.stop()
      this.pairs.delete(pair)
    }
    client.on('close', closed)
    server.on('close', closed)
  }

  latency(ms: number | { up?: number; down?: number }): void {
    const { up = 0, down = 0 } = typeof ms === 'number' ? { up: ms, down: ms } : ms
    this.latencyUp = up
    this.latencyDown = down
  }

  stall(direction: Direction = 'both'): void {
    if (direction !== 'down') this.stalledUp = true
    if (direction !== 'up') this.stalledDown = true
  }

  partition(): void {
    this.stall('both')
  }

  blackhole(direction: Direction = 'both'): void {
    if (direction !== 'down') this.holeUp = true
    if (direction !== 'up') this.holeDown = true
  }

  reset(): void {
    for (const { client, server } of [...this.pairs]) {
      resetSocket(client)
      resetSocket(server)
    }
  }

  drop(): void {
    for (const { client, server } of [...this.pairs]) {
      client.end()
      server.end()
    }
  }

  heal(): void {
    this.latencyUp = this.latencyDown = 0
    this.stalledUp = this.stalledDown = false
    this.holeUp = this.holeDown = false
    for (const pair of [...this.pairs]) {
      if (pair.up.lost || pair.down.lost) {
        resetSocket(pair.client)
        resetSocket(pair.server)
        continue
      }
      pair.up.release()
      pair.down.release()
    }
  }

  async close(): Promise<void> {
    proxies.delete(this)
    for (const { client, server, up, down } of [...this.pairs]) {
      up.stop()
      down.stop()
      client.destroy()
      server.destroy()
    }
    this.pairs.clear()
    await new Promise<void>((resolve) => this.listener.close(() => resolve()))
  }

  closeSync(): void {
    for (const { client, server } of this.pairs) {
      client.destroy()
      server.destroy()
    }
    this.listener.close()
  }
}

/** Starts a proxy to `target` on a free loopback port. */
export async function startProxy(target: ProxyTarget): Promise<TcpProxy> {
  if (!exitHook) {
    exitHook = true
    process.prependOnceListener('exit', () => {
      for (const proxy of proxies) proxy.closeSync()
    })
  }
  // Half-open connections allowed: a FIN from one side must not close the other before its bytes are out.
  const listener = net.createServer({ allowHalfOpen: true })
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject)
    listener.listen(0, HOST, () => resolve())
  })
  listener.unref()
  const address = listener.address() as net.AddressInfo
  const proxy = new FaultProxy(listener, address.port, target)
  proxies.add(proxy)
  return proxy
}

/** Closes every proxy still open (for afterAll). */
export async function closeAllProxies(): Promise<void> {
  await Promise.all([...proxies].map((proxy) => proxy.close()))
}
