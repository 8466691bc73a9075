/**
 * Write-behind into the machine's PostgreSQL through a redis-server of this file's own (its queue is a
 * real Redis stream, and nothing else shares it): coalescing, and a batch that the database takes only in
 * part. test/cache-write-behind.test.ts proves the same rules on the in-process queue with a recording
 * `write`; test/redis-write-behind.test.ts covers Cluster spreading, two nodes on one key and dead letters;
 * test/write-behind-crash.test.ts a node killed mid-flush. Here `write` is what an application writes:
 * SQL, with PostgreSQL deciding what it accepts.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Cache, createCache, type WriteBehindItem, type WriteBehindOptions } from '../src/index.js'
import { KeyNames } from '../src/keys.js'
import { redisStore } from '../src/redis.js'
import { type RedisServer, redisCommand, startRedis } from '../tools/redis-server.js'
import { DATABASE_URL } from './support/database.js'
import { deferred } from './support/deferred.js'
import { TEST_L2_TIMEOUT, uniqueNamespace } from './support/redis-fleet.js'
import { eventually } from './support/store-conformance.js'

const table = `write_behind_${randomBytes(4).toString('hex')}`
let redis: RedisServer
let pool: pg.Pool
const caches: Cache[] = []

beforeAll(async () => {
  redis = await startRedis()
  pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 })
  await pool.query(`CREATE TABLE ${table}_accounts (id integer PRIMARY KEY)`)
  await pool.query(`INSERT INTO ${table}_accounts SELECT generate_series(1, 3)`)
  // One row per cache key; `version` is the write's order among the writes of its key (WriteBehindItem).
  await pool.query(
    `CREATE TABLE ${table} (
       key text PRIMARY KEY,
       account integer NOT NULL REFERENCES ${table}_accounts (id),
       amount integer NOT NULL,
       version bigint NOT NULL
     )`,
  )
})

afterAll(async () => {
  await Promise.allSettled(caches.map((cache) => cache.close()))
  await pool?.query(`DROP TABLE IF EXISTS ${table}`)
  await pool?.query(`DROP TABLE IF EXISTS ${table}_accounts`)
  await pool?.end()
  await redis?.stop()
})

interface Entry {
  account: number
  amount: number
}

/**
 * The application's `write`: one transaction per batch, one upsert per item under a savepoint, so a row
 * PostgreSQL refuses is rolled back alone; resolves to the keys it could not write (retried alone). The
 * version guard keeps an older value from replacing a newer one.
 */
async function writeBatch(batch: WriteBehindItem[]): Promise<string[]> {
  const client = await pool.connect()
  const failed: string[] = []
  try {
    await client.query('BEGIN')
    for (const item of batch) {
      const { account, amount } = item.value as Entry
      await client.query('SAVEPOINT item')
      try {
        await client.query(
          `INSERT INTO ${table} (key, account, amount, version) VALUES ($1, $2, $3, $4)
           ON CONFLICT (key) DO UPDATE SET account = EXCLUDED.account, amount = EXCLUDED.amount,
             version = EXCLUDED.version
           WHERE ${table}.version < EXCLUDED.version`,
          [item.key, account, amount, item.version],
        )
        await client.query('RELEASE SAVEPOINT item')
      } catch {
        await client.query('ROLLBACK TO SAVEPOINT item')
        failed.push(item.key)
      }
    }
    await client.query('COMMIT')
    return failed
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {})
    throw error
  } finally {
    client.release()
  }
}

async function rows(prefix: string): Promise<Map<string, { account: number; amount: number }>> {
  const { rows } = await pool.query<{ key: string; account: number; amount: number }>(
    `SELECT key, account, amount FROM ${table} WHERE key LIKE $1 ORDER BY key`,
    [`${prefix}%`],
  )
  return new Map(rows.map((row) => [row.key, { account: row.account, amount: row.amount }]))
}

function cacheWith(namespace: string, writeBehind: WriteBehindOptions): Cache {
  const cache = createCache({
    namespace,
    l2: redisStore({ url: redis.url }),
    // Not about timeouts: a healthy Redis on a loaded machine must not open the breaker.
    l2Timeout: TEST_L2_TIMEOUT,
    writeBehind,
  })
  caches.push(cache)
  return cache
}

/** Entries left in the queue's streams (written ones are acknowledged and deleted). */
async function queued(namespace: string, partitions: number): Promise<number> {
  const keys = new KeyNames(namespace)
  let total = 0
  for (let p = 0; p < partitions; p++) {
    total += Number(await redisCommand(redis.port, ['XLEN', keys.writeBehind(p).stream]))
  }
  return total
}

describe('write-behind into PostgreSQL, queued in Redis', () => {
  it('coalesces many writes to few keys: each key at most once per batch, with its newest value', async () => {
    const KEYS = 8
    const WRITES = 60
    const batches: WriteBehindItem[][] = []
    // Every write() waits until all writes are accepted, so what piles up behind the first batches
    // is read at once and coalesced.
    const accepted = deferred<void>()
    const namespace = uniqueNamespace('pg-wb-coalesce')
    const cache = cacheWith(namespace, {
      write: async (batch) => {
        batches.push(batch)
        await accepted.promise
        return writeBatch(batch)
      },
      flushInterval: '20ms',
    })
    await cache.ready()
    await Promise.all(
      Array.from({ length: KEYS }, async (_, k) => {
        for (let i = 1; i <= WRITES; i++) await cache.writeBehind(`c${k}`, { account: 1, amount: i })
      }),
    )
    accepted.resolve()
    await cache.flush()

    for (const batch of batches) {
      const keys = batch.map((item) => item.key)
      expect(new Set(keys).size, `one batch: ${keys.join(',')}`).toBe(keys.length)
    }
    for (let k = 0; k < KEYS; k++) {
      const amounts = batches
        .flat()
        .flatMap((item) => (item.key === `c${k}` ? [(item.value as Entry).amount] : []))
      // In order, ending with the last value; and at most twice: a batch read before all writes were
      // accepted, then one with the newest value of everything that piled up behind it.
      expect(amounts, `c${k}`).toEqual([...amounts].sort((a, b) => a - b))
      expect(amounts.at(-1), `c${k}`).toBe(WRITES)
      expect(amounts.length, `c${k}: ${amounts.join(',')}`).toBeLessThanOrEqual(2)
    }
    const written = batches.flat().length
    expect(cache.stats().writeBehind).toMatchObject({
      accepted: KEYS * WRITES,
      written,
      coalesced: KEYS * WRITES - written,
      retries: 0,
      deadLettered: 0,
    })
    const stored = await rows('c')
    expect(stored.size).toBe(KEYS)
    for (let k = 0; k < KEYS; k++)
      expect(stored.get(`c${k}`), `c${k}`).toEqual({ account: 1, amount: WRITES })
    expect(await queued(namespace, 16)).toBe(0)
  })

  it('a batch PostgreSQL takes in part: the other rows are written and acknowledged, the refused one retried until it lands', async () => {
    const namespace = uniqueNamespace('pg-wb-partial')
    const batches: [string, number][][] = []
    const refused = deferred<void>()
    const cache = cacheWith(namespace, {
      write: async (batch) => {
        batches.push(batch.map((item) => [item.key, item.attempt]))
        const failed = await writeBatch(batch)
        if (failed.length > 0) refused.resolve()
        return failed
      },
      partitions: 1,
      // A partial batch waits for flush(), so the four writes go out in one batch.
      flushInterval: '1h',
      maxRetries: 1_000,
      retryDelay: { initial: '10ms', max: '50ms' },
    })
    await cache.ready()
    await cache.writeBehind('p1', { account: 1, amount: 10 })
    // Account 4 does not exist yet: the foreign key refuses this row, and only this one.
    await cache.writeBehind('p2', { account: 4, amount: 20 })
    await cache.writeBehind('p3', { account: 2, amount: 30 })
    await cache.writeBehind('p4', { account: 3, amount: 40 })
    const flushed = cache.flush()
    await refused.promise

    expect(batches[0]).toEqual([
      ['p1', 1],
      ['p2', 1],
      ['p3', 1],
      ['p4', 1],
    ])
    // The others are in PostgreSQL and acknowledged: only p2's entry is left in the queue.
    await eventually(async () => (await queued(namespace, 1)) === 1, 10_000, 'the others acknowledged')
    expect(await rows('p')).toEqual(
      new Map([
        ['p1', { account: 1, amount: 10 }],
        ['p3', { account: 2, amount: 30 }],
        ['p4', { account: 3, amount: 40 }],
      ]),
    )
    // Counted once the acknowledgement's reply is back, which may come after the queue already shows it
    // (the test reads the queue on a connection of its own).
    await eventually(() => cache.stats().writeBehind.written === 3, 10_000, 'the others counted')
    expect(cache.stats().writeBehind).toMatchObject({ written: 3, deadLettered: 0 })
    // Retried (alone) while the database refuses it.
    await eventually(() => batches.length >= 3, 10_000, 'p2 retried')
    for (const batch of batches.slice(1)) expect(batch.map(([key]) => key)).toEqual(['p2'])

    // The database accepts it once the account exists: the next retry lands it.
    await pool.query(`INSERT INTO ${table}_accounts VALUES (4)`)
    await flushed
    expect((await rows('p')).get('p2')).toEqual({ account: 4, amount: 20 })
    const last = batches.at(-1)!
    expect(last[0]![0]).toBe('p2')
    expect(last[0]![1]).toBe(batches.length)
    expect(cache.stats().writeBehind).toMatchObject({
      accepted: 4,
      written: 4,
      retries: batches.length - 1,
      deadLettered: 0,
    })
    expect(await queued(namespace, 1)).toBe(0)
    expect(await cache.deadLetters()).toEqual([])
  })
})
