/**
 * Embedded mode: every node in this process. They share one memoryStore() as L2 and one memoryBus() as
 * bus, exactly as separate processes share one Redis, and one embedded database.
 */
import { type Bus, createCache, type RemoteStore } from '../../src/index.js'
import { countQueries, type Database } from '../database/database.js'
import type { DemoNode } from '../fleet.js'
import { nodeCacheOptions, startNodeService } from './service.js'

export interface InProcessFleetOptions {
  count: number
  namespace: string
  l2: RemoteStore
  bus: Bus
  db: Database
  reportTtlMs: number
}

export async function startInProcessFleet(options: InProcessFleetOptions): Promise<DemoNode[]> {
  const nodes: DemoNode[] = []
  try {
    for (let i = 1; i <= options.count; i++) {
      // One count of this node's queries: its requests' and its cache's write-behind batches.
      const db = countQueries(options.db)
      const cache = createCache({
        ...nodeCacheOptions(options.namespace, db),
        l2: options.l2,
        bus: options.bus,
      })
      await cache.ready()
      const service = await startNodeService({
        id: `node-${i}`,
        cache,
        db,
        reportTtlMs: options.reportTtlMs,
      })
      nodes.push({
        id: service.id,
        url: service.url,
        pid: process.pid,
        report: async () => service.report(),
        close: async () => {
          await service.close()
          await cache.close()
        },
      })
    }
  } catch (error) {
    await Promise.allSettled(nodes.map((node) => node.close()))
    throw error
  }
  return nodes
}
