/**
 * A node in a process of its own (the mode with REDIS_URL and DATABASE_URL), started by processes.ts:
 * coherent-cache on Redis (redisStore, redisBus), PostgreSQL through `pg`, and the same HTTP service as
 * in embedded mode. It tells its parent its address over IPC, and ends when the parent says 'close' or
 * goes away.
 *
 * Environment: DEMO_NODE, JSON of ChildNodeConfig.
 */
import { createCache } from '../../src/index.js'
import { redisBus, redisStore } from '../../src/redis.js'
import { countQueries } from '../database/database.js'
import { postgresDatabase } from '../database/postgres.js'
import { nodeCacheOptions, startNodeService } from './service.js'

export interface ChildNodeConfig {
  id: string
  namespace: string
  redisUrl: string
  databaseUrl: string
  schema: string
  reportTtlMs: number
}

/** Messages from a node to its parent. */
export type ChildMessage = { event: 'listening'; url: string } | { event: 'failed'; error: string }

const config: ChildNodeConfig = JSON.parse(process.env.DEMO_NODE ?? 'null')
const send = (message: ChildMessage) => {
  if (process.connected) process.send!(message)
}

const pool = postgresDatabase(config.databaseUrl, config.schema)
// One count of this node's queries: its requests' and its cache's write-behind batches.
const db = countQueries(pool)
const cache = createCache({
  ...nodeCacheOptions(config.namespace, db),
  l2: redisStore({ url: config.redisUrl }),
  bus: redisBus({ url: config.redisUrl }),
})

let closing: Promise<void> | undefined
function shutDown(code: number): Promise<void> {
  closing ??= (async () => {
    // However the closing goes, the process ends: a node that cannot close must not outlive the demo.
    setTimeout(() => process.exit(code), 3_000).unref()
    await Promise.allSettled([service.then((s) => s.close()), cache.close()])
    await pool.close()
    process.exit(code)
  })()
  return closing
}

const service = (async () => {
  await cache.ready()
  return startNodeService({ id: config.id, cache, db, reportTtlMs: config.reportTtlMs })
})()

service.then(
  (s) => send({ event: 'listening', url: s.url }),
  (error: unknown) => {
    send({ event: 'failed', error: String((error as Error)?.stack ?? error) })
    void shutDown(1)
  },
)

process.on('message', (message) => {
  if (message === 'close') void shutDown(0)
})
// The parent is gone: nothing is left to serve.
process.on('disconnect', () => void shutDown(0))
