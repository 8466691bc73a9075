/**
 * One application node: a small HTTP service (Fastify) that answers from coherent-cache in front of the
 * database. This file is the part of the demo that shows how an application uses the library:
 *
 * - reads are cache-aside (`getOrSet`): L1, then L2, then one database query per key in the whole fleet
 *   (`lock: 'distributed'`), however many requests ask at once;
 * - an update goes to the database first, then deletes the cached row, which every other node hears
 *   about on the bus (see writeStrategies for why delete rather than set);
 * - a slow report is cached with a short TTL: the hot key of the "expiring under load" scene.
 *
 * GET /users/:id, PUT /users/:id, GET /report, and GET /_report (what this node says about itself; see
 * NodeReport).
 */
import { readFileSync } from 'node:fs'
import Fastify from 'fastify'
import type { Cache, CacheOptions, CacheStats, WriteBehindItem } from '../../src/index.js'
import type { Database, User } from '../database/database.js'
import { countQueries } from '../database/database.js'

/**
 * The cache options every node of the demo uses (the L2 and bus come from the mode). With `db`, the node
 * can write behind: its batches go to the database in one statement each.
 */
export function nodeCacheOptions(namespace: string, db?: Database): CacheOptions {
  return {
    ...(db && {
      writeBehind: {
        write: (batch: WriteBehindItem[]) => db.saveUsers(batch.map((item) => item.value as User)),
        flushInterval: '100ms',
      },
    }),
    namespace,
    // Long: an update deletes the row everywhere at once, so the TTL only bounds memory.
    ttl: '5m',
    // Past its TTL a row may still be served for a while as one request reloads it in the background.
    grace: '1m',
    // A tenth of the users fit in L1, L2 holds them all. l1.ttl bounds how long a node can serve its own
    // copy without hearing of updates (while the bus is down).
    l1: { maxEntries: 200, ttl: '30s' },
    // One database query per key across the fleet, not one per node.
    lock: 'distributed',
    // Timeouts for a machine that may be busy (the demo often shares it with a browser, a build, the
    // database): a Redis that answers late is still up, so a call waits up to a second for it, and only
    // 10 failures in a row open the breaker. A Redis that is really gone (the outage scene stops it)
    // refuses connections at once: those calls fail without waiting, the breaker opens after the first
    // 10, and from then on calls skip Redis until a probe finds it back (at once when it reconnects).
    l2Timeout: '1s',
    circuitBreaker: { failureThreshold: 10, openDuration: '1s' },
  }
}

export const userKey = (id: number) => `user:${id}`
export const REPORT_KEY = 'report:top-users'

/**
 * How a node applies an update; a scene picks one with LoadProfile.writeStrategy.
 * - `invalidate` is cache-aside's: write the database, then delete the cached row. Deleting, not setting:
 *   two nodes updating one user at once could otherwise put their rows into the cache in the other order
 *   than the database applied them, while a delete cannot leave an old row behind (a load that read the
 *   old row before the delete is fenced by version and not stored). The next read loads the row again.
 * - `writeThrough`: the database first, then the new row in the cache everywhere, ordered by the row's
 *   version (the database's commit order), so no reload follows.
 * - `writeBehind`: the current row read strongly (confirmed against Redis), then the new row in the cache
 *   everywhere at once and in the durable queue; the database gets it in a batch shortly after
 *   (coalesced: a row updated ten times in a batch is written once).
 */
export const writeStrategies = {
  invalidate: async (cache: Cache, db: Database, id: number): Promise<User | undefined> => {
    const user = await db.updateUser(id)
    if (user !== undefined) await cache.delete(userKey(id))
    return user
  },
  writeThrough: (cache: Cache, db: Database, id: number): Promise<User | undefined> =>
    cache.writeThrough(userKey(id), () => db.updateUser(id), { version: (user) => user!.version }),
  writeBehind: async (cache: Cache, db: Database, id: number): Promise<User | undefined> => {
    // The new version is the current one + 1, so the current one must not be this node's L1 copy of a row
    // another node has just replaced (its invalidation still on the way): the new row would then carry
    // a version no higher than one already acknowledged, the database (which keeps the higher version)
    // would drop it, and the load generator would count reads of it as stale. A strong read confirms
    // the copy against Redis first. (Two updates of one user racing on two nodes can still both write
    // the same version; a real application would take the version from the database or a lock.)
    const current = await cache.getOrSet(userKey(id), () => db.getUser(id), { consistency: 'strong' })
    if (current === undefined) return undefined
    const version = current.version + 1
    const user: User = {
      ...current,
      name: `User ${id} v${version}`,
      version,
      updatedAt: new Date().toISOString(),
    }
    await cache.writeBehind(userKey(id), user)
    return user
  },
} satisfies Record<string, (cache: Cache, db: Database, id: number) => Promise<User | undefined>>

export type WriteStrategy = keyof typeof writeStrategies

/**
 * What a node reports about itself: its cache's stats() and the application's own counters. It has the
 * shape of a fleet heartbeat (node id, uptime, library version, counters, bus health); see fleet.ts.
 */
export interface NodeReport {
  node: string
  pid: number
  uptimeMs: number
  version: string
  stats: CacheStats
  app: {
    /** HTTP requests answered (any status). */
    requests: number
    /** Requests answered with a 5xx. */
    errors: number
    /** Queries this node sent to the database. */
    dbQueries: number
    /** Times this node ran the report query (the hot key's loader). */
    reportLoads: number
  }
}

export interface NodeServiceOptions {
  id: string
  cache: Cache
  db: Database
  /** TTL of the cached report (the hot key). */
  reportTtlMs: number
  /** Where to listen. @default 127.0.0.1, a free port */
  host?: string
  port?: number
}

export interface NodeService {
  readonly id: string
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  report(): NodeReport
  /** Stops the HTTP server (the cache and database are the caller's to close). */
  close(): Promise<void>
}

const LIBRARY_VERSION: string = JSON.parse(
  readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
).version

export async function startNodeService(options: NodeServiceOptions): Promise<NodeService> {
  const { id, cache } = options
  // The node's own count, unless the caller counts already (its cache's write-behind uses the same view).
  const db =
    'queries' in options.db ? (options.db as ReturnType<typeof countQueries>) : countQueries(options.db)
  const started = Date.now()
  const counters = { requests: 0, errors: 0, reportLoads: 0 }
  const app = Fastify({ logger: false })

  // A failure is answered with its message (and code), so the load generator can say what went wrong.
  app.setErrorHandler(async (error: Error & { code?: string }, _request, reply) =>
    reply.code(500).send({ error: error.message, code: error.code }),
  )

  app.addHook('onResponse', async (_request, reply) => {
    counters.requests++
    if (reply.statusCode >= 500) counters.errors++
  })

  app.get<{ Params: { id: string } }>('/users/:id', async (request, reply) => {
    const userId = Number(request.params.id)
    const user = await cache.getOrSet(userKey(userId), () => db.getUser(userId))
    return user ?? reply.code(404).send({ error: 'no such user' })
  })

  app.put<{ Params: { id: string }; Querystring: { strategy?: WriteStrategy } }>(
    '/users/:id',
    async (request, reply) => {
      const strategy = request.query.strategy ?? 'invalidate'
      if (!Object.hasOwn(writeStrategies, strategy))
        return reply.code(400).send({ error: 'unknown strategy' })
      const user = await writeStrategies[strategy](cache, db, Number(request.params.id))
      return user ?? reply.code(404).send({ error: 'no such user' })
    },
  )

  app.get('/report', async () =>
    cache.getOrSet(
      REPORT_KEY,
      () => {
        counters.reportLoads++
        return db.topUsers()
      },
      // No grace: when the TTL is up, every node misses at once, and the distributed lock has work to do.
      { ttl: options.reportTtlMs, grace: 0 },
    ),
  )

  const report = (): NodeReport => ({
    node: id,
    pid: process.pid,
    uptimeMs: Date.now() - started,
    version: LIBRARY_VERSION,
    stats: cache.stats(),
    app: { ...counters, dbQueries: db.queries },
  })
  app.get('/_report', async () => report())

  await app.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 0 })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('the node did not get a TCP port')
  return {
    id,
    url: `http://127.0.0.1:${address.port}`,
    report,
    close: () => app.close(),
  }
}
