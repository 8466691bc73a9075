/**
 * A fleet of cache nodes that reach Redis through TCP fault proxies (tcp-proxy.ts): one proxy per (node,
 * Redis server), so a fault can hit one node alone. On a Cluster the nodes learn every node's address from
 * CLUSTER SLOTS; `nodeAddressMap` maps each announced address to this node's proxy for it, so no
 * connection bypasses the proxies (the bus' subscriber connections included).
 */
import { inject } from 'vitest'
import { type Cache, type CacheOptions, createCache } from '../../src/index.js'
import { type RedisConnectionOptions, redisBus, redisStore } from '../../src/redis.js'
import { TEST_L2_TIMEOUT, type Topology, uniqueNamespace } from './redis-fleet.js'
import { startProxy, type TcpProxy } from './tcp-proxy.js'

export interface ProxiedFleet {
  namespace: string
  nodes: Cache[]
  /** proxies[n]: node n's proxies, one per Redis server. */
  proxies: TcpProxy[][]
  /** How node n reaches Redis (through its proxies). */
  connections: RedisConnectionOptions[]
  ready(): Promise<void>
  close(): Promise<void>
}

/** The servers of a topology the global setup started. */
function servers(topology: Topology): { host: string; port: number }[] {
  if (topology === 'standalone') {
    const url = new URL(inject('redisUrl'))
    return [{ host: url.hostname, port: Number(url.port) }]
  }
  return inject('redisCluster')
}

export async function proxiedFleet(
  count: number,
  topology: Topology,
  options: CacheOptions = {},
): Promise<ProxiedFleet> {
  const namespace = uniqueNamespace('proxied')
  const targets = servers(topology)
  const proxies: TcpProxy[][] = []
  const connections: RedisConnectionOptions[] = []
  const nodes: Cache[] = []
  for (let n = 0; n < count; n++) {
    const mine = await Promise.all(targets.map((target) => startProxy(target)))
    proxies.push(mine)
    const conn: RedisConnectionOptions =
      topology === 'standalone'
        ? { url: `redis://${mine[0]!.host}:${mine[0]!.port}` }
        : {
            cluster: mine.map((proxy) => ({ host: proxy.host, port: proxy.port })),
            nodeAddressMap: Object.fromEntries(
              targets.map((target, i) => [
                `${target.host}:${target.port}`,
                { host: mine[i]!.host, port: mine[i]!.port },
              ]),
            ),
          }
    connections.push(conn)
    nodes.push(
      createCache({
        namespace,
        l2: redisStore(conn),
        bus: redisBus(conn),
        l2Timeout: TEST_L2_TIMEOUT,
        ...options,
      }),
    )
  }
  return {
    namespace,
    nodes,
    proxies,
    connections,
    async ready() {
      await Promise.all(nodes.map((node) => node.ready()))
    },
    async close() {
      for (const mine of proxies) for (const proxy of mine) proxy.heal()
      await Promise.allSettled(nodes.map((node) => node.close()))
      await Promise.allSettled(proxies.flat().map((proxy) => proxy.close()))
    },
  }
}
