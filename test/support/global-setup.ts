/**
 * Vitest global setup: one standalone Redis and one Redis Cluster (3 masters + 3 replicas) for the whole
 * run, on free loopback ports, handed to tests with `inject('redisUrl')` / `inject('redisCluster')`.
 * Tests must not make these servers unusable (SHUTDOWN, CONFIG, FLUSHALL): a test that needs an outage
 * starts a server of its own with startRedis().
 */
import type { TestProject } from 'vitest/node'
import {
  type RedisNodeAddress,
  type RedisServer,
  type RedisTestCluster,
  startCluster,
  startRedis,
} from '../../tools/redis-server.js'

declare module 'vitest' {
  export interface ProvidedContext {
    /** `redis://127.0.0.1:<port>` of the shared standalone server. */
    redisUrl: string
    /** Every node of the shared cluster (masters first). */
    redisCluster: RedisNodeAddress[]
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const [redis, cluster] = await Promise.allSettled([
    startRedis(),
    startCluster({ masters: 3, replicasPerMaster: 1 }),
  ])
  const stop = async () => {
    await Promise.all([
      redis.status === 'fulfilled' ? (redis.value as RedisServer).stop() : undefined,
      cluster.status === 'fulfilled' ? (cluster.value as RedisTestCluster).stop() : undefined,
    ])
  }
  if (redis.status === 'rejected' || cluster.status === 'rejected') {
    await stop()
    throw redis.status === 'rejected' ? redis.reason : (cluster as PromiseRejectedResult).reason
  }
  project.provide('redisUrl', redis.value.url)
  project.provide('redisCluster', cluster.value.nodes)
  return stop
}
