import { randomBytes } from 'node:crypto'
import { inject } from 'vitest'
import type { Bus } from '../../src/bus/bus.js'
import { type Cache, type CacheOptions, createCache } from '../../src/index.js'
import { type RedisConnectionOptions, redisBus, redisStore } from '../../src/redis.js'
import { redisCommand } from '../../tools/redis-server.js'

export type Topology = 'standalone' | 'cluster'
export const TOPOLOGIES: Topology[] = ['standalone', 'cluster']

/** How to reach the Redis the global setup started for this topology. */
export function connection(topology: Topology): RedisConnectionOptions {
  return topology === 'standalone' ? { url: inject('redisUrl') } : { cluster: inject('redisCluster') }
}

/** Ports of every server of a topology (for admin commands such as CLIENT KILL). */
export function ports(topology: Topology): number[] {
  return topology === 'standalone'
    ? [Number(new URL(inject('redisUrl')).port)]
    : inject('redisCluster').map((node) => node.port)
}

/** A namespace no other test uses, so tests share the servers without sharing state. */
export function uniqueNamespace(prefix: string): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`
}

/**
 * The L2 budget of test fleets unless a test sets its own. These tests are about coherence, leases and
 * recovery, and run on a loaded machine where a healthy Redis (or the event loop) can take longer than
 * the library's default of 100 ms, a production latency budget: they were written against a 1 s one.
 */
export const TEST_L2_TIMEOUT = '1s'

/**
 * `count` cache nodes sharing one namespace, each with its own Redis connections (as separate servers
 * would have): its own redisStore for L2 and redisBus for invalidations (`wrapBus` may wrap node i's bus,
 * e.g. in the cut harness of support/faults.ts).
 */
export function redisFleet(
  count: number,
  conn: RedisConnectionOptions,
  options: CacheOptions = {},
  wrapBus: (bus: Bus, i: number) => Bus = (bus) => bus,
) {
  const namespace = uniqueNamespace('fleet')
  const nodes: Cache[] = []
  for (let i = 0; i < count; i++) {
    nodes.push(
      createCache({
        namespace,
        l2: redisStore(conn),
        bus: wrapBus(redisBus(conn), i),
        l2Timeout: TEST_L2_TIMEOUT,
        ...options,
      }),
    )
  }
  return {
    namespace,
    nodes,
    async ready() {
      await Promise.all(nodes.map((node) => node.ready()))
    },
    async close() {
      await Promise.allSettled(nodes.map((node) => node.close()))
    },
  }
}

/** Kills every pub/sub connection on the given servers (the bus of every node drops). */
export async function killPubSub(serverPorts: readonly number[]): Promise<void> {
  await Promise.all(serverPorts.map((port) => redisCommand(port, ['CLIENT', 'KILL', 'TYPE', 'pubsub'])))
}
