import { setTimeout as sleep } from 'node:timers/promises'
import { createClient, createCluster } from 'redis'
import { afterAll, describe, expect, inject, it } from 'vitest'
import type { Bus, BusSubscription } from '../src/bus/bus.js'
import { memoryBus } from '../src/bus/memory-bus.js'
import { keySlot, redisBus } from '../src/bus/redis-bus.js'
import { InvalidOptionError } from '../src/errors.js'
import type { NodeRedisClient } from '../src/redis/connection.js'
import { freePort, redisCommand, startCluster, startRedis } from '../tools/redis-server.js'
import {
  type BusConformanceOptions,
  busConformance,
  type DedicatedBusServer,
} from './support/bus-conformance.js'
import { settlesBeforeTimer } from './support/order.js'
import { eventually } from './support/store-conformance.js'

const redisUrl = inject('redisUrl')
const clusterNodes = inject('redisCluster')

/** The nodes of one process share one memoryBus; each node's view closes only its own subscriptions. */
const sharedMemoryBus = memoryBus()
function memoryNode(): Bus {
  const mine = new Set<BusSubscription>()
  return {
    name: sharedMemoryBus.name,
    async subscribe(channel, onMessage, onStatus) {
      const subscription = await sharedMemoryBus.subscribe(channel, onMessage, onStatus)
      mine.add(subscription)
      return subscription
    },
    publish: (channel, message) => sharedMemoryBus.publish(channel, message),
    async close() {
      await Promise.all([...mine].map((subscription) => subscription.unsubscribe()))
      mine.clear()
    },
  }
}

/** Admin connections, separate from the buses under test. */
const admin = createClient({ url: redisUrl })
admin.on('error', () => {})
const clusterAdmin = createCluster({ rootNodes: [{ socket: clusterNodes[0]! }] })
clusterAdmin.on('error', () => {})
afterAll(async () => {
  if (admin.isOpen) await admin.close()
  if (clusterAdmin.isOpen) await clusterAdmin.close()
})

async function killStandaloneSubscribers(): Promise<number> {
  if (!admin.isOpen) await admin.connect()
  return admin.sendCommand<number>(['CLIENT', 'KILL', 'TYPE', 'pubsub'])
}

/** Sharded subscribers sit on the masters that own their channels' slots: kill them there. */
async function killClusterSubscribers(): Promise<number> {
  if (!clusterAdmin.isOpen) await clusterAdmin.connect()
  const killed = await Promise.all(
    clusterAdmin.masters.map(async (master) => {
      const client = await clusterAdmin.nodeClient(master)
      return client.sendCommand<number>(['CLIENT', 'KILL', 'TYPE', 'pubsub'])
    }),
  )
  return killed.reduce((sum, n) => sum + n, 0)
}

async function dedicatedServer(): Promise<DedicatedBusServer> {
  const server = await startRedis()
  return {
    factory: () => redisBus({ url: server.url, maxReconnectDelay: 200 }),
    restart: (downMs) => server.restart({ downMs }),
    stop: () => server.stop(),
  }
}

/**
 * A cluster of its own (3 masters, no replicas, so a restart cannot turn into a failover). A restarted
 * master refuses commands (CLUSTERDOWN) for about 2 s while it rejoins, hence the longer recovery.
 */
async function dedicatedCluster(): Promise<DedicatedBusServer> {
  const cluster = await startCluster({ masters: 3, replicasPerMaster: 0 })
  return {
    factory: () => redisBus({ cluster: cluster.nodes.slice(0, 1), maxReconnectDelay: 200 }),
    restart: async (downMs) => {
      await Promise.all(cluster.servers.map((server) => server.restart({ downMs })))
    },
    stop: () => cluster.stop(),
    recoveryMs: 15_000,
  }
}

interface BusCase {
  name: string
  factory: () => Bus
  options?: BusConformanceOptions
}

const cases: BusCase[] = [
  { name: 'memoryBus()', factory: memoryNode },
  {
    name: 'redisBus({ url })',
    factory: () => redisBus({ url: redisUrl }),
    options: { killSubscribers: killStandaloneSubscribers, dedicated: dedicatedServer },
  },
  {
    name: 'redisBus({ cluster })',
    factory: () => redisBus({ cluster: clusterNodes.slice(0, 1) }),
    options: { killSubscribers: killClusterSubscribers, dedicated: dedicatedCluster },
  },
]

describe.each(cases)('$name', ({ name, factory, options }) => {
  busConformance(name, factory, options)
})

describe('redisBus specifics', () => {
  it('computes Cluster key slots like Redis', async () => {
    for (const key of ['foo', 'somekey', '{user1000}.following', 'a{}b', 'x{y', 'ünïcode', '']) {
      expect(keySlot(key)).toBe(await redisCommand(clusterNodes[0]!.port, ['CLUSTER', 'KEYSLOT', key]))
    }
  })

  it('uses sharded pub/sub on a Cluster, subscribed on the master that owns the channel', async () => {
    const bus = redisBus({ cluster: clusterNodes })
    const channel = `sharded:${Math.random()}`
    try {
      await bus.subscribe(
        channel,
        () => {},
        () => {},
      )
      if (!clusterAdmin.isOpen) await clusterAdmin.connect()
      const owner = clusterAdmin.slots[keySlot(channel)]!.master
      const counts = await Promise.all(
        clusterAdmin.masters.map(async (master) => {
          const reply = await redisCommand(master.port, ['PUBSUB', 'SHARDNUMSUB', channel])
          return { master, count: (reply as [string, number])[1] }
        }),
      )
      for (const { master, count } of counts) expect(count).toBe(master === owner ? 1 : 0)
    } finally {
      await bus.close()
    }
  })

  it('follows a channel whose slot moves to another master', async () => {
    const cluster = await startCluster({ masters: 3, replicasPerMaster: 0 })
    const [a, b] = [
      redisBus({ cluster: cluster.nodes.slice(0, 1) }),
      redisBus({ cluster: cluster.nodes.slice(1, 2) }),
    ]
    try {
      const channel = `moving:${Math.random()}`
      const slot = keySlot(channel)
      const ports = cluster.nodes.map((node) => node.port)
      const numsub = async (port: number) =>
        ((await redisCommand(port, ['PUBSUB', 'SHARDNUMSUB', channel])) as [string, number])[1]
      const received: string[] = []
      const statuses: string[] = []
      /** What each node lists the moment the bus reports each status. */
      const listedAt: Promise<number[]>[] = []
      await a.subscribe(
        channel,
        (message) => received.push(Buffer.from(message).toString()),
        (status) => {
          statuses.push(status)
          listedAt.push(Promise.all(ports.map(numsub)))
        },
      )
      const ids = await Promise.all(ports.map((port) => redisCommand(port, ['CLUSTER', 'MYID'])))
      const counts = await Promise.all(ports.map(numsub))
      const source = counts.indexOf(1)
      const target = (source + 1) % ports.length
      expect(source).toBeGreaterThanOrEqual(0)
      // Move the (empty) slot: the source drops its sharded subscribers with a `sunsubscribe` push. Each
      // node is told once, target first: Redis drops a slot's sharded subscribers on every SETSLOT NODE,
      // even one that assigns the slot to the node that already owns it (see the next step).
      const setSlot = (port: number, ...args: string[]) =>
        redisCommand(port, ['CLUSTER', 'SETSLOT', String(slot), ...args])
      await setSlot(ports[target]!, 'IMPORTING', String(ids[source]))
      await setSlot(ports[source]!, 'MIGRATING', String(ids[target]))
      const others = ports.filter((_, i) => i !== source && i !== target)
      for (const port of [ports[target]!, ports[source]!, ...others])
        await setSlot(port, 'NODE', String(ids[target]))
      await eventually(() => statuses.join() === 'disconnected,connected', 10_000, 'the subscription to move')
      // 'connected' is enough: the new owner listed the subscription when the bus reported it.
      const atConnected = await listedAt[1]!
      expect(atConnected[target]).toBe(1)
      expect(atConnected[source]).toBe(0)
      await eventually(
        () =>
          b.publish(channel, Buffer.from('moved')).then(
            () => true,
            () => false,
          ),
        5000,
        'publish on the new owner',
      )
      await eventually(() => received.includes('moved'), 3000, 'delivery from the new owner')

      // What a resharding tool that tells every master does: the owner drops its subscribers although the
      // slot stays, and the bus must notice (the push is the only sign) and subscribe again.
      await setSlot(ports[target]!, 'NODE', String(ids[target]))
      await eventually(
        () => statuses.join() === 'disconnected,connected,disconnected,connected',
        10_000,
        'the subscription to come back on the same owner',
      )
      expect((await listedAt[3]!)[target]).toBe(1)
      await b.publish(channel, Buffer.from('again'))
      await eventually(() => received.includes('again'), 3000, 'delivery after the re-assignment')
      expect(statuses.join()).toBe('disconnected,connected,disconnected,connected')
    } finally {
      await a.close()
      await b.close()
      await cluster.stop()
    }
  })

  it('follows a channel to the replica that took over from a dead master', async () => {
    const cluster = await startCluster({ masters: 3, replicasPerMaster: 1 })
    const options = { cluster: cluster.nodes, maxReconnectDelay: 200 }
    const [a, b] = [redisBus(options), redisBus(options)]
    try {
      const channel = `failover:${Math.random()}`
      const received: string[] = []
      const statuses: string[] = []
      await a.subscribe(
        channel,
        (message) => received.push(Buffer.from(message).toString()),
        (status) => statuses.push(status),
      )
      await b.publish(channel, Buffer.from('before'))
      await eventually(() => received.includes('before'), 3000, 'delivery before the failover')
      const counts = await Promise.all(
        cluster.nodes.map(
          async (node) =>
            ((await redisCommand(node.port, ['PUBSUB', 'SHARDNUMSUB', channel])) as [string, number])[1],
        ),
      )
      const owner = cluster.servers[counts.indexOf(1)]!
      await owner.kill('SIGKILL')
      await eventually(() => statuses.join() === 'disconnected', 2000, 'disconnected')
      // The old master never comes back: the subscription must move to the promoted replica.
      await eventually(
        () => statuses.join() === 'disconnected,connected',
        20_000,
        'connected on the new master',
      )
      await eventually(
        () =>
          b.publish(channel, Buffer.from('after')).then(
            () => true,
            () => false,
          ),
        10_000,
        'publish on the new master',
      )
      await eventually(() => received.includes('after'), 3000, 'delivery after the failover')
    } finally {
      await a.close()
      await b.close()
      await cluster.stop()
    }
  })

  it('with { client }: publishes on it, subscribes on a duplicate, leaves it open on close()', async () => {
    const client = createClient({ url: redisUrl }) as unknown as NodeRedisClient
    client.on('error', () => {})
    await client.connect()
    const bus = redisBus({ client })
    const channel = `client:${Math.random()}`
    try {
      const received: string[] = []
      await bus.subscribe(
        channel,
        (message) => received.push(Buffer.from(message).toString()),
        () => {},
      )
      await bus.publish(channel, Buffer.from('via the application client'))
      await eventually(() => received.length === 1, 3000, 'delivery')
      expect(client.isPubSubActive).toBe(false)
      await bus.close()
      expect(client.isOpen).toBe(true)
      expect(await client.ping()).toBe('PONG')
    } finally {
      await bus.close()
      await client.close()
    }
  })

  it('with { client } that pings: its subscriber connection does not inherit pingInterval', async () => {
    // A PING on a subscribed connection can interleave with subscription pushes; the subscriber does not
    // need it (node-redis' socket keep-alive and our resubscribe-on-reconnect cover dead connections).
    const name = `ping-test-${process.pid}-${Math.random().toString(36).slice(2)}`
    const client = createClient({ url: redisUrl, name, pingInterval: 50 }) as unknown as NodeRedisClient
    client.on('error', () => {})
    await client.connect()
    const bus = redisBus({ client })
    try {
      await bus.subscribe(
        `ping:${name}`,
        () => {},
        () => {},
      )
      await sleep(300) // six ping intervals
      const ours = (await client.sendCommand(['CLIENT', 'LIST'])) as string
      const subscriber = ours
        .split('\n')
        .filter((line) => line.includes(` name=${name} `) && / sub=1 /.test(line))
      expect(subscriber).toHaveLength(1)
      expect(subscriber[0]).toMatch(/ cmd=subscribe /)
    } finally {
      await bus.close()
      await client.close()
    }
  })

  it('with { client: cluster }: publishes on it, subscribes on duplicates of its nodes, leaves it open', async () => {
    const cluster = createCluster({ rootNodes: [{ socket: clusterNodes[1]! }] })
    cluster.on('error', () => {})
    await cluster.connect()
    const [a, b] = [redisBus({ client: cluster as never }), redisBus({ cluster: clusterNodes.slice(2, 3) })]
    const channel = `client-cluster:${Math.random()}`
    try {
      expect(a.name).toBe('redis-cluster')
      const received: string[] = []
      await a.subscribe(
        channel,
        (message) => received.push(Buffer.from(message).toString()),
        () => {},
      )
      await b.publish(channel, Buffer.from('from b'))
      await a.publish(channel, Buffer.from('from a'))
      await eventually(() => received.length === 2, 3000, 'delivery')
      expect(received.sort()).toEqual(['from a', 'from b'])
      await a.close()
      expect(cluster.isOpen).toBe(true)
      expect(await cluster.sendCommand(channel, true, ['EXISTS', channel])).toBe(0)
    } finally {
      await a.close()
      await b.close()
      await cluster.close()
    }
  })

  it('rejects subscribe() and publish() within connectTimeout when Redis is unreachable', async () => {
    const port = await freePort()
    const bus = redisBus({ url: `redis://127.0.0.1:${port}`, connectTimeout: 300 })
    try {
      // Within connectTimeout: each settles before a timer of twice that, started with it, fires.
      const subscribing = bus.subscribe(
        'ch',
        () => {},
        () => {},
      )
      expect(await settlesBeforeTimer(subscribing, 2 * 300)).toBe(true)
      await expect(subscribing).rejects.toThrow()
      const publishing = bus.publish('ch', Buffer.from('x'))
      expect(await settlesBeforeTimer(publishing, 2 * 300)).toBe(true)
      await expect(publishing).rejects.toThrow()
    } finally {
      // close() does not wait for a connect attempt to time out.
      const closing = bus.close()
      expect(await settlesBeforeTimer(closing, 300)).toBe(true)
      await closing
    }
  })

  it('rejects use after close()', async () => {
    const bus = redisBus({ url: redisUrl })
    await bus.close()
    await expect(bus.publish('ch', Buffer.from('x'))).rejects.toMatchObject({ code: 'E_CACHE_CLOSED' })
    await expect(
      bus.subscribe(
        'ch',
        () => {},
        () => {},
      ),
    ).rejects.toMatchObject({ code: 'E_CACHE_CLOSED' })
  })

  it('validates its options like redisStore', () => {
    expect(() => redisBus({} as never)).toThrow(InvalidOptionError)
    expect(() => redisBus({ url: 'http://x' })).toThrow(/`url`/)
    expect(() => redisBus({ cluster: [] })).toThrow(/`cluster`/)
  })
})
