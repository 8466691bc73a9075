/**
 * The TCP fault proxy of test/support/tcp-proxy.ts against a real redis-server (the run's standalone one):
 * every fault does what it says, per direction, on open and new connections, and heal() undoes it.
 * Waits are polls with overall timeouts; "has not happened yet" is checked while the fault still holds.
 */
import { randomUUID } from 'node:crypto'
import net from 'node:net'
import { createClient } from 'redis'
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest'
import type { Cache } from '../src/index.js'
import { redisStore } from '../src/redis.js'
import { redisCommand } from '../tools/redis-server.js'
import { proxiedFleet } from './support/proxied-fleet.js'
import { eventually } from './support/store-conformance.js'
import { closeAllProxies, startProxy, type TcpProxy } from './support/tcp-proxy.js'

const redisPort = Number(new URL(inject('redisUrl')).port)
const target = { host: '127.0.0.1', port: redisPort }

type Client = ReturnType<typeof createClient>
const clients: Client[] = []
/** A node-redis client through `proxy` that does not reconnect by itself (each test sees the raw effect). */
async function through(proxy: TcpProxy, reconnect = false): Promise<Client> {
  const client = createClient({
    socket: { host: proxy.host, port: proxy.port, reconnectStrategy: reconnect ? () => 50 : false },
  })
  client.on('error', () => {})
  clients.push(client)
  await client.connect()
  return client
}

/** The state of a promise right now, without waiting for it. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false
  promise.then(
    () => (done = true),
    () => (done = true),
  )
  await new Promise((resolve) => setImmediate(resolve))
  return done
}

const direct = (args: string[]) => redisCommand(redisPort, args)
const key = (label: string) => `proxy:${label}:${randomUUID()}`

afterEach(() => {
  for (const client of clients.splice(0)) if (client.isOpen) client.destroy()
})
afterAll(async () => {
  await closeAllProxies()
})

describe('TCP fault proxy', () => {
  it('forwards commands on many connections, and close() ends them', async () => {
    const proxy = await startProxy(target)
    const [a, b] = await Promise.all([through(proxy), through(proxy)])
    const k = key('forward')
    await a.set(k, 'v')
    expect(await b.get(k)).toBe('v')
    expect(proxy.connections).toBe(2)
    // 1,000 pipelined commands come back in order.
    const replies = await Promise.all(Array.from({ length: 1000 }, () => a.incr(`${k}:n`)))
    expect(replies).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1))
    await proxy.close()
    await eventually(() => !a.isReady && !b.isReady, 5000, 'the clients to see the connections end')
  })

  it('latency delays each direction by at least its amount and keeps the order', async () => {
    const proxy = await startProxy(target)
    const client = await through(proxy)
    const k = key('latency')
    for (const [up, down] of [
      [150, 0],
      [0, 150],
    ] as const) {
      proxy.latency({ up, down })
      const started = performance.now()
      const replies = await Promise.all(Array.from({ length: 20 }, () => client.incr(k)))
      // A lower bound only: the proxy never delivers early (a loaded machine can only add to it).
      expect(performance.now() - started).toBeGreaterThanOrEqual(up + down - 1)
      expect(replies).toEqual([...replies].sort((x, y) => x - y))
    }
    // Down latency only: the server has applied the command while its reply is still on the way.
    proxy.latency({ down: 60_000 })
    const k2 = key('down')
    const set = client.set(k2, 'applied')
    await eventually(async () => (await direct(['GET', k2])) === 'applied', 10_000, 'the SET to be applied')
    expect(await settled(set)).toBe(false)
    proxy.heal()
    await set
  })

  it("stall('up') holds commands until heal(); stall('down') holds replies, the server has applied them", async () => {
    const proxy = await startProxy(target)
    const client = await through(proxy)
    const [k1, k2] = [key('stall-up'), key('stall-down')]
    proxy.stall('up')
    const first = client.set(k1, 'held')
    const behind = client.ping() // sent after it, held as well
    expect(await direct(['GET', k1])).toBeNull()
    expect(await settled(first)).toBe(false)
    expect(await settled(behind)).toBe(false)
    proxy.heal()
    expect(await first).toBe('OK')
    expect(await behind).toBe('PONG')
    expect(await direct(['GET', k1])).toBe('held')

    proxy.stall('down')
    const second = client.set(k2, 'applied')
    await eventually(async () => (await direct(['GET', k2])) === 'applied', 10_000, 'the SET to be applied')
    expect(await settled(second)).toBe(false)
    proxy.heal()
    expect(await second).toBe('OK')
    expect(client.isReady).toBe(true)
  })

  it('partition() cuts this proxy off, new connections included, while another proxy keeps working', async () => {
    const [cut, other] = await Promise.all([startProxy(target), startProxy(target)])
    const [client, bystander] = await Promise.all([through(cut), through(other)])
    const k = key('partition')
    cut.partition()
    const during = client.set(k, 'late')
    // A new connection is accepted (the proxy listens) but its handshake never gets an answer.
    const fresh = createClient({ socket: { host: cut.host, port: cut.port, reconnectStrategy: false } })
    fresh.on('error', () => {})
    clients.push(fresh)
    const connecting = fresh.connect()
    await eventually(() => cut.accepted === 2, 5000, 'the new connection to be accepted')
    // The other proxy to the same server is not affected.
    await bystander.set(`${k}:other`, 'fine')
    expect(await bystander.get(`${k}:other`)).toBe('fine')
    expect(await direct(['GET', k])).toBeNull()
    expect(await settled(during)).toBe(false)
    expect(await settled(connecting)).toBe(false)
    cut.heal()
    expect(await during).toBe('OK')
    await connecting
    expect(await fresh.get(k)).toBe('late')
  })

  it("blackhole('up') drops commands for good; heal() resets that connection and new ones work", async () => {
    const proxy = await startProxy(target)
    const client = await through(proxy, true)
    const k = key('hole-up')
    proxy.blackhole('up')
    const lost = client.set(k, 'never').catch((error: unknown) => error)
    // Healed before the SET reached the proxy, it would pass: wait until the proxy has dropped it.
    await eventually(() => proxy.dropped > 0, 10_000, 'the SET to be dropped')
    expect(await direct(['GET', k])).toBeNull()
    expect(await settled(lost)).toBe(false)
    const resetsBefore = proxy.accepted
    proxy.heal()
    expect(await lost).toBeInstanceOf(Error)
    expect(await direct(['GET', k])).toBeNull()
    // The client reconnects through the healed proxy and works again.
    await eventually(() => client.isReady && proxy.accepted > resetsBefore, 5000, 'a reconnect')
    await client.set(k, 'after')
    expect(await direct(['GET', k])).toBe('after')
  })

  it("blackhole('down'): commands are applied, their replies never arrive", async () => {
    const proxy = await startProxy(target)
    const client = await through(proxy)
    const k = key('hole-down')
    proxy.blackhole('down')
    const lost = client.set(k, 'applied').catch((error: unknown) => error)
    await eventually(async () => (await direct(['GET', k])) === 'applied', 10_000, 'the SET to be applied')
    // Applied is not replied to: a reply that reached the proxy only after heal() would pass.
    await eventually(() => proxy.dropped > 0, 10_000, 'the reply to be dropped')
    expect(await settled(lost)).toBe(false)
    proxy.heal()
    expect(await lost).toBeInstanceOf(Error)
  })

  it('reset() closes connections with RST (ECONNRESET), drop() with FIN (a clean end)', async () => {
    const proxy = await startProxy(target)
    /** A raw socket through the proxy that has had one reply (so the pair is fully set up). */
    const raw = async () => {
      const socket = net.connect({ host: proxy.host, port: proxy.port })
      const outcome = new Promise<string>((resolve) => {
        socket.on('error', (error: NodeJS.ErrnoException) => resolve(`error ${error.code}`))
        socket.on('end', () => resolve('end'))
      })
      await new Promise<void>((resolve) => {
        socket.once('data', () => resolve())
        socket.write('PING\r\n')
      })
      return { socket, outcome }
    }
    const reset = await raw()
    proxy.reset()
    expect(await reset.outcome).toBe('error ECONNRESET')
    const dropped = await raw()
    proxy.drop()
    expect(await dropped.outcome).toBe('end')
    dropped.socket.destroy()
    await eventually(() => proxy.connections === 0, 5000, 'the proxy to forget both connections')
  })

  it('a target that refuses connections resets the client connection', async () => {
    const server = net.createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
    const port = (server.address() as net.AddressInfo).port
    await new Promise<void>((resolve) => server.close(() => resolve()))
    const proxy = await startProxy({ host: '127.0.0.1', port })
    const socket = net.connect({ host: proxy.host, port: proxy.port })
    const outcome = await new Promise<string>((resolve) => {
      socket.on('error', (error: NodeJS.ErrnoException) => resolve(`error ${error.code}`))
      socket.on('end', () => resolve('end'))
    })
    expect(outcome).toBe('error ECONNRESET')
  })
})

describe('proxied fleets', () => {
  it('Cluster: with nodeAddressMap every connection of a node goes through its proxies, the bus included', async () => {
    const fleet = await proxiedFleet(2, 'cluster', { l1: { ttl: '10m' } })
    try {
      await fleet.ready()
      const [a, b] = fleet.nodes as [Cache, Cache]
      // Keys on every master, read once by b so that they sit in b's L1.
      const keys = Array.from({ length: 30 }, (_, i) => `key-${i}`)
      for (const k of keys) await a.set(k, 'v1')
      for (const k of keys) expect(await b.get(k)).toBe('v1')
      const masters = inject('redisCluster').slice(0, 3)
      for (const proxy of fleet.proxies[1]!.slice(0, 3)) expect(proxy.accepted).toBeGreaterThan(0)
      expect(masters.length).toBe(3)
      // Cut b off: if any of its connections bypassed its proxies, a store connected like it (connected
      // to every master before the cut) would still answer.
      const store = redisStore(fleet.connections[1]!)
      try {
        for (const k of keys) await store.get(k)
        for (const proxy of fleet.proxies[1]!) proxy.partition()
        const replies = await Promise.all(
          keys.map((k) =>
            Promise.race([
              store.get(k).then(
                () => 'answered',
                () => 'failed',
              ),
              new Promise((resolve) => setTimeout(() => resolve('no answer'), 1000)),
            ]),
          ),
        )
        expect(replies.filter((reply) => reply === 'answered')).toEqual([])
        // Meanwhile a, with proxies of its own, works.
        await a.set('key-1', 'during')
        expect(await a.get('key-1')).toBe('during')
      } finally {
        for (const proxy of fleet.proxies[1]!) proxy.heal()
        await store.close()
      }
      // Healed: b hears a's invalidations again (its subscriber connection is proxied too).
      await a.set('key-0', 'v2')
      await eventually(async () => (await b.get('key-0')) === 'v2', 10_000, 'the invalidation')
    } finally {
      await fleet.close()
    }
  })
})
