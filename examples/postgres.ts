/**
 * The seeds' updateUser / getUser, on PostgreSQL (`pg`) and coherent-cache, with each strategy:
 * cache-aside, read-through, write-through, write-behind and a strong read.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npm run example:postgres
 *   REDIS_URL=redis://127.0.0.1:6379 DATABASE_URL=... npm run example:postgres   # L2, bus and queue on Redis
 *
 * It works in a schema of its own (a `users` table in it), dropped at the end. Without REDIS_URL the L2
 * and bus are in-process (memoryStore, memoryBus) and the write-behind queue is not durable. In an
 * application, import from 'coherent-cache' and 'coherent-cache/redis'.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { createCache, memoryBus, memoryStore, type WriteBehindItem } from '../src/index.js'
import { redisBus, redisStore } from '../src/redis.js'

interface User {
  id: number
  name: string
  email: string
  /** Raised by every UPDATE: the commit order write-through orders its cache writes by. */
  version: number
  lastSeen: string | null
}

const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const redisUrl = process.env.REDIS_URL
const schema = `coherent_example_${randomBytes(4).toString('hex')}`
const pool = new pg.Pool({ connectionString: databaseUrl, max: 4, options: `-c search_path=${schema}` })
let queries = 0

async function sql<R>(text: string, params: unknown[] = []): Promise<R[]> {
  queries++
  return (await pool.query(text, params)).rows as R[]
}

const COLUMNS = 'id, name, email, version, last_seen AS "lastSeen"'

/** The database side of the seeds' getUser. */
async function findUser(id: number): Promise<User | undefined> {
  return (await sql<User>(`SELECT ${COLUMNS} FROM users WHERE id = $1`, [id]))[0]
}

/** write-behind's `write`: one statement per batch, only the newest value of each user (coalesced). */
async function saveLastSeen(batch: WriteBehindItem[]): Promise<void> {
  const rows = batch.map((item) => item.value as User)
  await sql(
    `UPDATE users SET last_seen = data.last_seen::timestamptz
       FROM unnest($1::int[], $2::text[]) AS data(id, last_seen) WHERE users.id = data.id`,
    [rows.map((user) => user.id), rows.map((user) => user.lastSeen)],
  )
  console.log(`  write-behind wrote ${batch.length} user(s) in one statement`)
}

const shared = redisUrl
  ? { l2: redisStore({ url: redisUrl }), bus: redisBus({ url: redisUrl }) }
  : { l2: memoryStore(), bus: memoryBus() }

const cache = createCache({
  namespace: schema,
  ttl: '10m',
  ...shared,
  writeBehind: { write: saveLastSeen, flushInterval: '1s' },
})
// Read-through: a second cache on the same tiers whose get() loads misses itself.
const readThrough = createCache({
  namespace: schema,
  ...(redisUrl ? { l2: redisStore({ url: redisUrl }), bus: redisBus({ url: redisUrl }) } : shared),
  loader: (key) => findUser(Number(key.split(':')[1])),
})

// ---- the seeds' functions, one per strategy -------------------------------------------------------------

/** Cache-aside: the cache, else the database (one query per key, however many callers at once). */
function getUser(id: number): Promise<User | undefined> {
  return cache.getOrSet(`user:${id}`, () => findUser(id), { tags: ['users'] })
}

/** Write-through: the database first; then the cache, everywhere, ordered by the row's version. */
function updateUser(id: number, data: Pick<User, 'name' | 'email'>): Promise<User> {
  return cache.writeThrough(
    `user:${id}`,
    async () => {
      const [user] = await sql<User>(
        `UPDATE users SET name = $2, email = $3, version = version + 1 WHERE id = $1 RETURNING ${COLUMNS}`,
        [id, data.name, data.email],
      )
      if (user === undefined) throw new Error(`no user ${id}`)
      return user
    },
    { tags: ['users'], version: (user) => user.version },
  )
}

/** Write-behind: the cache at once, the database in a batch shortly after (durable on Redis). */
async function recordVisit(id: number): Promise<void> {
  const user = await getUser(id)
  if (user !== undefined)
    await cache.writeBehind(`user:${id}`, { ...user, lastSeen: new Date().toISOString() })
}

// ---- the walk-through -----------------------------------------------------------------------------------

try {
  await sql(`CREATE SCHEMA ${schema}`)
  await sql(`CREATE TABLE users (
    id integer PRIMARY KEY, name text NOT NULL, email text NOT NULL,
    version integer NOT NULL DEFAULT 1, last_seen timestamptz)`)
  await sql(
    `INSERT INTO users (id, name, email) VALUES (1, 'Alice', 'old@email.com'), (2, 'Bob', 'bob@email.com')`,
  )
  await Promise.all([cache.ready(), readThrough.ready()])
  console.log(
    `PostgreSQL (schema ${schema}); L2, bus and queue: ${redisUrl ? `Redis at ${redisUrl}` : 'in this process'}`,
  )

  queries = 0
  const first = await Promise.all(Array.from({ length: 10 }, () => getUser(1)))
  console.log(`cache-aside     10 concurrent getUser(1) → ${first[0]!.email}, ${queries} database query`)

  queries = 0
  const bob = await readThrough.get<User>('user:2')
  await readThrough.get<User>('user:2')
  console.log(`read-through    get('user:2') twice → ${bob!.name}, ${queries} database query`)

  queries = 0
  const updated = await updateUser(1, { name: 'Alice', email: 'new@email.com' })
  console.log(
    `write-through   updateUser(1) → version ${updated.version}; getUser(1) → ${(await getUser(1))!.email} (${queries} query: the UPDATE)`,
  )

  const failed = await cache
    .writeThrough('user:1', async () => {
      throw new Error('unique constraint violated')
    })
    .catch((err: Error) => err.message)
  console.log(
    `write-through   a failing writer (${failed}) leaves the cache as it was: ${(await getUser(1))!.email}`,
  )

  queries = 0
  await Promise.all([recordVisit(1), recordVisit(1), recordVisit(2)])
  const cached = (await getUser(1))!.lastSeen
  const stored = (await findUser(1))!.lastSeen
  console.log(
    `write-behind    recordVisit: the cache has lastSeen at once (${cached !== null}), the database not yet (${stored !== null})`,
  )
  await cache.flush()
  console.log(
    `write-behind    after flush() the database has it too (${(await findUser(1))!.lastSeen !== null}); stats: ${JSON.stringify(cache.stats().writeBehind)}`,
  )

  // For money, say: a strong read serves L1 only once L2 confirms it holds that version (one small round
  // trip), so another node's write is seen even before its invalidation arrives here.
  const strong = () => cache.get<User>('user:1', { consistency: 'strong' })
  console.log(
    `strong read     get('user:1', { consistency: 'strong' }) → ${(await strong())!.email} (L1, confirmed)`,
  )
  const [row] = await sql<User>(
    `UPDATE users SET email = 'changed@elsewhere.com', version = version + 1 WHERE id = 1 RETURNING ${COLUMNS}`,
  )
  await readThrough.set('user:1', row, { tags: ['users'] }) // another node's write
  console.log(
    `strong read     after another node's write → ${(await strong())!.email}; ${JSON.stringify(cache.stats().strong)}`,
  )
} finally {
  await Promise.allSettled([cache.close(), readThrough.close()])
  await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {})
  await pool.end()
}
