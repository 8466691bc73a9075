/**
 * Write-behind on a Zipf update workload, against writing each update to PostgreSQL directly: 20,000
 * updates over 10,000 rows (Zipf 0.99: a few rows take most updates), 64 concurrent callers. Contenders, in
 * interleaved rounds:
 * - `UPDATE` per update through `pg` (the anchor: what the application does without a cache);
 * - writeThrough (the UPDATE, then the cache on every node);
 * - writeBehind (the cache and a durable queue on Redis with appendonly yes; `write` applies each batch
 *   with one UPDATE ... FROM unnest(...)), timed until accepted, and until flush() saw it all written;
 * - set (the cache alone, no database): what a cache write costs.
 * Reported: accepted writes per second, database row writes and statements, the coalescing ratio
 * (accepted writes per row written), and the time until every update is in the database.
 * Run: npm run bench:write-behind (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test)
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { type Cache, createCache, type WriteBehindItem } from '../src/index.js'
import { redisBus, redisStore } from '../src/redis.js'
import { mulberry32 } from '../tools/random.js'
import { type RedisServer, startRedis } from '../tools/redis-server.js'
import { zipfGenerator } from '../tools/zipf.js'
import {
  closedLoop,
  formatMs,
  formatOps,
  machineLine,
  markdownTable,
  median,
  ratio,
} from './support/harness.js'
import { writeResults } from './support/results.js'

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const ROWS = 10_000
const UPDATES = 20_000
const CALLERS = 64
const ROUNDS = 3
const zipf = zipfGenerator(ROWS, 0.99, mulberry32(7))
const trace = Uint32Array.from({ length: UPDATES }, () => zipf())
const distinct = new Set(trace).size

interface Sample {
  acceptedPerSec: number
  /** Until every update of the round is in the database. */
  durableMs: number
  rowWrites: number
  statements: number
}

const table = `bench_write_behind_${randomBytes(4).toString('hex')}`
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 16 })
let server: RedisServer | undefined
const caches: Cache[] = []
let rowWrites = 0
let statements = 0

async function writeBatch(batch: WriteBehindItem[]): Promise<void> {
  statements++
  rowWrites += batch.length
  await pool.query(
    `UPDATE ${table} AS t SET value = d.value FROM unnest($1::int[], $2::int[]) AS d(id, value) WHERE t.id = d.id`,
    [batch.map((item) => Number(item.key.slice(4))), batch.map((item) => item.value as number)],
  )
}

async function update(id: number, value: number): Promise<{ id: number; value: number }> {
  statements++
  rowWrites++
  const { rows } = await pool.query(`UPDATE ${table} SET value = $2 WHERE id = $1 RETURNING id, value`, [
    id,
    value,
  ])
  return rows[0]
}

try {
  await pool.query(`CREATE TABLE ${table} (id integer PRIMARY KEY, value integer NOT NULL)`)
  await pool.query(`INSERT INTO ${table} SELECT i, 0 FROM generate_series(0, ${ROWS - 1}) AS i`)
  server = await startRedis({ args: ['--appendonly', 'yes'] })
  const { url } = server
  const cache = createCache({
    namespace: 'bench-wb',
    ttl: '1h',
    l2: redisStore({ url }),
    bus: redisBus({ url }),
    writeBehind: { write: writeBatch, batchSize: 100, flushInterval: '50ms', concurrency: 4 },
  })
  caches.push(cache)
  await cache.ready()

  let round = 0
  const contenders: { name: string; run: () => Promise<Sample> }[] = [
    {
      name: 'PostgreSQL UPDATE per update (pg, no cache)',
      run: async () => {
        const start = performance.now()
        await closedLoop(CALLERS, UPDATES, (i) => update(trace[i]!, round * UPDATES + i))
        const ms = performance.now() - start
        return {
          acceptedPerSec: UPDATES / (ms / 1000),
          durableMs: ms,
          rowWrites: UPDATES,
          statements: UPDATES,
        }
      },
    },
    {
      name: 'coherent-cache writeThrough (UPDATE, then the cache)',
      run: async () => {
        const start = performance.now()
        await closedLoop(CALLERS, UPDATES, (i) =>
          cache.writeThrough(`row:${trace[i]}`, () => update(trace[i]!, round * UPDATES + i)),
        )
        const ms = performance.now() - start
        return {
          acceptedPerSec: UPDATES / (ms / 1000),
          durableMs: ms,
          rowWrites: UPDATES,
          statements: UPDATES,
        }
      },
    },
    {
      name: 'coherent-cache writeBehind (durable queue on Redis, batched UPDATE)',
      run: async () => {
        const before = { rowWrites, statements }
        const start = performance.now()
        await closedLoop(CALLERS, UPDATES, (i) => cache.writeBehind(`row:${trace[i]}`, round * UPDATES + i))
        const accepted = performance.now() - start
        await cache.flush()
        const durableMs = performance.now() - start
        return {
          acceptedPerSec: UPDATES / (accepted / 1000),
          durableMs,
          rowWrites: rowWrites - before.rowWrites,
          statements: statements - before.statements,
        }
      },
    },
    {
      name: 'coherent-cache set (the cache alone, no database)',
      run: async () => {
        const start = performance.now()
        await closedLoop(CALLERS, UPDATES, (i) => cache.set(`row:${trace[i]}`, round * UPDATES + i))
        const ms = performance.now() - start
        return { acceptedPerSec: UPDATES / (ms / 1000), durableMs: Number.NaN, rowWrites: 0, statements: 0 }
      },
    },
  ]
  const samples = new Map(contenders.map((c) => [c.name, [] as Sample[]]))
  // One warm-up round, then ROUNDS measured, contenders interleaved.
  for (round = 0; round <= ROUNDS; round++) {
    for (const contender of contenders) {
      const sample = await contender.run()
      if (round > 0) samples.get(contender.name)!.push(sample)
    }
  }
  const summary = contenders.map((c) => {
    const list = samples.get(c.name)!
    return {
      name: c.name,
      acceptedPerSec: median(list.map((s) => s.acceptedPerSec)),
      durableMs: median(list.map((s) => s.durableMs)),
      rowWrites: median(list.map((s) => s.rowWrites)),
      statements: median(list.map((s) => s.statements)),
    }
  })
  const direct = summary[0]!
  console.log(
    `Write-behind: ${UPDATES.toLocaleString()} updates of ${ROWS.toLocaleString()} rows (Zipf 0.99: ${distinct.toLocaleString()} rows touched), ${CALLERS} callers, median of ${ROUNDS} rounds; PostgreSQL ${DATABASE_URL.replace(/\/\/[^@]*@/, '//')}; Redis appendonly yes; ${machineLine()}\n`,
  )
  console.log(
    markdownTable(
      [
        'contender',
        'accepted writes/s',
        'vs direct',
        'database row writes',
        'statements',
        'coalescing',
        'all in the database after',
        'database writes/s',
      ],
      summary.map((s) => [
        s.name,
        formatOps(s.acceptedPerSec),
        ratio(s.acceptedPerSec, direct.acceptedPerSec),
        s.rowWrites.toLocaleString(),
        s.statements.toLocaleString(),
        s.rowWrites === 0 ? 'n/a' : `${(UPDATES / s.rowWrites).toFixed(2)}×`,
        Number.isNaN(s.durableMs) ? 'never' : formatMs(s.durableMs),
        s.rowWrites === 0 ? 'n/a' : formatOps(s.rowWrites / (s.durableMs / 1000)),
      ]),
    ),
  )
  writeResults(
    'write-behind',
    direct.name,
    summary.map((s) => ({ name: s.name, opsPerSec: s.acceptedPerSec })),
  )
} finally {
  await Promise.allSettled(caches.map((cache) => cache.close()))
  await pool.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {})
  await pool.end()
  await server?.stop()
}
