import { BentoCache, bentostore } from 'bentocache'
import { memoryDriver } from 'bentocache/drivers/memory'
import { redisBusDriver, redisDriver } from 'bentocache/drivers/redis'

/**
 * One BentoCache node as the write and propagation benchmarks compare it: a memory L1 of 10,000 items,
 * the Redis at `host:port` as L2, and a Redis bus on it.
 */
export function bentoNode(host: string, port: number): BentoCache<{ tiered: ReturnType<typeof bentostore> }> {
  return new BentoCache({
    default: 'tiered',
    stores: {
      tiered: bentostore()
        .useL1Layer(memoryDriver({ maxItems: 10_000 }))
        .useL2Layer(redisDriver({ connection: { host, port } }))
        .useBus(redisBusDriver({ connection: { host, port } })),
    },
  })
}
