import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KeyNames } from '../src/keys.js'
import { type RedisConnectionOptions, redisStore } from '../src/redis.js'
import { type RedisServer, type RedisTestCluster, startCluster, startRedis } from '../tools/redis-server.js'
import { DATABASE_URL } from './support/database.js'
import { uniqueNamespace } from './support/redis-fleet.js'

// Guarantee 6, end to end: a process accepts 10,000 writeBehind calls over 500 keys (each key's writes
// numbered 1, 2, 3, ...), starts flushing them to PostgreSQL and is killed with SIGKILL in the middle of
// it; a second process with the same configuration finishes the queue. Then every key holds its last
// accepted value, and the log of applied writes shows that no key was ever written out of order. On a
// standalone Redis and on a Cluster, both with appendonly yes.

const WRITES = 10_000
const KEYS = 500
const PARTITIONS = 8 // as in the fixture

let pool: pg.Pool
let server: RedisServer | undefined
let cluster: RedisTestCluster | undefined

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 })
  const [standalone, clustered] = await Promise.all([
    startRedis({ args: ['--appendonly', 'yes'] }),
    startCluster({ masters: 3, replicasPerMaster: 0, args: ['--appendonly', 'yes'] }),
  ])
  server = standalone
  cluster = clustered
})

afterAll(async () => {
  await Promise.all([server?.stop(), cluster?.stop()])
  await pool?.end()
})

interface Child {
  process: ChildProcess
  output: string[]
  exited: Promise<number | null>
}

function run(
  mode: 'accept' | 'drain',
  connection: RedisConnectionOptions,
  namespace: string,
  table: string,
): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/write-behind-node.ts'], {
    env: {
      ...process.env,
      WB_CONNECTION: JSON.stringify(connection),
      WB_NAMESPACE: namespace,
      WB_TABLE: table,
      WB_MODE: mode,
      WB_WRITES: String(WRITES),
      WB_KEYS: String(KEYS),
      DATABASE_URL,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const output: string[] = []
  child.stdout!.on('data', (chunk: Buffer) => output.push(...chunk.toString().trim().split('\n')))
  child.stderr!.on('data', (chunk: Buffer) => output.push(chunk.toString()))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return { process: child, output, exited }
}

async function until(
  what: string,
  probe: () => Promise<boolean> | boolean,
  child: Child,
  timeoutMs = 40_000,
) {
  const deadline = Date.now() + timeoutMs
  while (!(await probe())) {
    if (child.process.exitCode !== null)
      throw new Error(`the child exited before ${what}:\n${child.output.join('\n')}`)
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${child.output.join('\n')}`)
    await sleep(5)
  }
}

async function count(sql: string): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(sql)
  return Number(rows[0]!.n)
}

async function crashAndRecover(connection: RedisConnectionOptions) {
  const namespace = uniqueNamespace('wb-crash')
  const table = `write_behind_crash_${randomBytes(4).toString('hex')}`
  await pool.query(`CREATE TABLE ${table} (key text PRIMARY KEY, seq integer NOT NULL)`)
  await pool.query(
    `CREATE TABLE ${table}_applied (id bigserial PRIMARY KEY, key text NOT NULL, seq integer NOT NULL)`,
  )
  const store = redisStore(connection)
  const keys = new KeyNames(namespace)
  const streams = Array.from({ length: PARTITIONS }, (_, p) => keys.writeBehind(p).stream)
  const queued = async () => (await store.queue!.lengths(streams)).reduce((sum, n) => sum + n, 0)
  let first: Child | undefined
  let second: Child | undefined
  try {
    first = run('accept', connection, namespace, table)
    await until('every write to be accepted', () => first!.output.includes(`accepted ${WRITES}`), first)
    // Flushing has begun: kill the process once a third of the keys are written.
    await until(
      'a third of the keys to be written',
      async () => (await count(`SELECT count(*) AS n FROM ${table}_applied`)) >= KEYS / 3,
      first,
    )
    first.process.kill('SIGKILL')
    await first.exited
    const appliedAtKill = await count(`SELECT count(*) AS n FROM ${table}_applied`)
    const leftInQueue = await queued()
    expect(appliedAtKill).toBeGreaterThan(0)
    expect(leftInQueue, 'the process was killed in the middle of flushing').toBeGreaterThan(0)
    expect(await count(`SELECT count(*) AS n FROM ${table} WHERE seq = ${WRITES / KEYS}`)).toBeLessThan(KEYS)

    second = run('drain', connection, namespace, table)
    await until('the queue to be drained', () => second!.output.includes('drained'), second)
    expect(await second.exited).toBe(0)

    // Every key holds its last accepted value: no accepted write is missing.
    const { rows } = await pool.query<{ key: string; seq: number }>(`SELECT key, seq FROM ${table}`)
    expect(rows).toHaveLength(KEYS)
    for (const row of rows) expect(row.seq, row.key).toBe(WRITES / KEYS)
    // No key's writes were applied out of order (a write may be applied twice: at least once).
    const backwards = await count(`
      SELECT count(*) AS n FROM (
        SELECT seq < lag(seq) OVER (PARTITION BY key ORDER BY id) AS backwards FROM ${table}_applied
      ) AS steps WHERE backwards`)
    expect(backwards).toBe(0)
    expect(await queued()).toBe(0)
    return { appliedAtKill, leftInQueue, applied: await count(`SELECT count(*) AS n FROM ${table}_applied`) }
  } finally {
    first?.process.kill('SIGKILL')
    second?.process.kill('SIGKILL')
    await store.close()
    await pool.query(`DROP TABLE IF EXISTS ${table}, ${table}_applied`)
  }
}

describe('write-behind survives a crash in the middle of flushing (appendonly yes)', () => {
  it('on a standalone Redis', { timeout: 90_000 }, async () => {
    const figures = await crashAndRecover({ url: server!.url })
    // Coalescing: far fewer database writes than accepted writes.
    expect(figures.applied).toBeLessThan(WRITES)
  })

  it('on a Redis Cluster, with the queue spread over its shards', { timeout: 90_000 }, async () => {
    const figures = await crashAndRecover({ cluster: cluster!.nodes.slice(0, 1) })
    expect(figures.applied).toBeLessThan(WRITES)
  })
})
