/**
 * Reconnect notifications of the Redis store (RemoteStore.onReconnect) against servers of our own that we
 * stop and start: a listener must fire once the connection is back, never while it is down, not for a first
 * connection that succeeds at once (but for one that succeeds only after failed attempts), and without any
 * command being sent meanwhile (a cache whose circuit breaker is open
 * sends none: that is when it needs to hear about it).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { createClient } from 'redis'
import { describe, expect, it } from 'vitest'
import type { NodeRedisClient } from '../src/redis/connection.js'
import { redisStore } from '../src/stores/redis-store.js'
import { killKeyOwner, type RedisServer, startCluster, startRedis } from '../tools/redis-server.js'
import { withOwnRedis } from './support/own-redis.js'
import { eventually } from './support/store-conformance.js'

/** Counts the calls of a listener. */
function counter(): { (): void; calls: number } {
  const count = () => {
    count.calls++
  }
  count.calls = 0
  return count
}

describe('redisStore onReconnect', () => {
  it('single server: fires after a restart, not before, not for the first connection', () =>
    withOwnRedis(
      (server) => redisStore({ url: server.url, maxReconnectDelay: 100 }),
      async (server, store) => {
        const [a, b] = [counter(), counter()]
        // Subscribed before the first connection exists: the store connects lazily.
        const unsubscribeA = store.onReconnect!(a)
        store.onReconnect!(b)
        expect(await store.set('k', Buffer.from('v'), 1, 60_000)).toBe(1)
        await sleep(200)
        expect([a.calls, b.calls]).toEqual([0, 0])

        await server.kill('SIGKILL')
        // Down for several reconnect attempts (100 ms apart), with no command sent.
        await sleep(600)
        expect([a.calls, b.calls]).toEqual([0, 0])
        await server.start()
        await eventually(() => a.calls === 1 && b.calls === 1, 5000, 'the listeners after the restart')
        expect(await store.get('k')).toBeUndefined() // usable again (the data died with the server)

        // An unsubscribed listener is not called; the other one is, once per outage.
        unsubscribeA()
        unsubscribeA()
        await server.restart({ downMs: 300 })
        await eventually(() => b.calls === 2, 5000, 'the listener after the second restart')
        await sleep(300)
        expect([a.calls, b.calls]).toEqual([1, 2])

        // close() unsubscribes everything.
        await store.close()
        await server.restart({ downMs: 100 })
        await sleep(500)
        expect(b.calls).toBe(2)
      },
    ))

  it('single server: a first connection that succeeds only after failed attempts counts as a comeback', () =>
    withOwnRedis(
      (server) => redisStore({ url: server.url, maxReconnectDelay: 100 }),
      async (server, store) => {
        await server.kill('SIGKILL')
        const reconnected = counter()
        store.onReconnect!(reconnected)
        await expect(store.get('k')).rejects.toThrow() // the first connection attempt fails
        await sleep(300)
        expect(reconnected.calls).toBe(0)
        await server.start()
        await eventually(() => reconnected.calls === 1, 5000, 'the listener once Redis is up')
        expect(await store.get('k')).toBeUndefined()
        await sleep(300)
        expect(reconnected.calls).toBe(1)
      },
    ))

  it('{ client }: fires from the application client, and close() removes its listeners', async () => {
    let server: RedisServer | undefined
    let client: NodeRedisClient | undefined
    try {
      server = await startRedis()
      client = createClient({
        url: server.url,
        socket: { reconnectStrategy: () => 100 },
      }) as unknown as NodeRedisClient
      client.on('error', () => {})
      await client.connect()
      const readyListeners = client.listenerCount('ready')
      const store = redisStore({ client })
      const reconnected = counter()
      store.onReconnect!(reconnected)
      await store.get('k')
      await server.kill('SIGKILL')
      await sleep(400)
      expect(reconnected.calls).toBe(0)
      await server.start()
      await eventually(() => reconnected.calls === 1, 5000, 'the listener after the restart')
      await store.close()
      expect(client.listenerCount('ready')).toBe(readyListeners)
      expect(client.isOpen).toBe(true)
    } finally {
      if (client?.isOpen) client.destroy()
      await server?.stop()
    }
  })

  it('cluster: fires when a restarted master is back, without any command in between', async () => {
    const cluster = await startCluster({ masters: 3, replicasPerMaster: 0 })
    const store = redisStore({ cluster: cluster.nodes.slice(0, 1), maxReconnectDelay: 200 })
    try {
      const reconnected = counter()
      store.onReconnect!(reconnected)
      // Keys on every master, so that the first connection is used everywhere.
      await Promise.all(
        Array.from({ length: 30 }, (_, i) => store.set(`key-${i}`, Buffer.from('v'), 1, 60_000)),
      )
      await sleep(200)
      expect(reconnected.calls).toBe(0)
      const master = cluster.servers[1]!
      await master.kill('SIGKILL')
      await sleep(1000)
      expect(reconnected.calls).toBe(0)
      await master.start()
      await eventually(() => reconnected.calls === 1, 10_000, 'the listener after the master is back')
      await sleep(500)
      expect(reconnected.calls).toBe(1)
    } finally {
      await store.close()
      await cluster.stop()
    }
  })

  it('cluster: fires when a replica has taken over from a dead master, without any command', async () => {
    const cluster = await startCluster({ masters: 3, replicasPerMaster: 1 })
    const store = redisStore({ cluster: cluster.nodes, maxReconnectDelay: 200 })
    try {
      const reconnected = counter()
      store.onReconnect!(reconnected)
      const key = 'failover'
      expect(await store.set(key, Buffer.from('before'), 1, 60_000)).toBe(1)
      await killKeyOwner(cluster, key)
      await sleep(1000)
      expect(reconnected.calls).toBe(0)
      // The dead master never comes back: what comes back is its slots, on the promoted replica, which
      // the store must find by itself (node-redis only looks again when a command gets MOVED).
      await eventually(() => reconnected.calls >= 1, 20_000, 'the listener after the failover')
      expect(await store.set(key, Buffer.from('after'), 1, 60_000)).toBeGreaterThanOrEqual(1)
    } finally {
      await store.close()
      await cluster.stop()
    }
  })
})
