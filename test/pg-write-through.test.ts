import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { type Cache, createCache, type WriteThroughOptions } from '../src/index.js'
import { redisBus, redisStore } from '../src/redis.js'
import { redisCommand } from '../tools/redis-server.js'
import { DATABASE_URL } from './support/database.js'
import { uniqueNamespace } from './support/redis-fleet.js'

// Two nodes write through to one PostgreSQL row at nearly the same time, round after round, with random
// pauses before and after the UPDATE (the gap between a commit and its cache write is where the race
// lives). At the end of each round the cache must agree with the database: a strong read (which serves
// what L2 holds, or loads the row when L2 holds nothing) returns the row as the database has it.

const ROUNDS = 150
const redisUrl = inject('redisUrl')
const table = `write_through_race_${randomBytes(4).toString('hex')}`
let pool: pg.Pool

interface Row {
  id: number
  name: string
  version: number
}

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: DATABASE_URL, max: 6 })
  await pool.query(
    `CREATE TABLE ${table} (id integer PRIMARY KEY, name text NOT NULL, version integer NOT NULL)`,
  )
  await pool.query(`INSERT INTO ${table} VALUES (1, 'initial', 1), (2, 'initial', 1)`)
})

afterAll(async () => {
  await pool?.query(`DROP TABLE IF EXISTS ${table}`)
  await pool?.end()
})

/** 0 to 2 ms, or nothing. */
const pause = () => (Math.random() < 0.3 ? Promise.resolve() : sleep(Math.random() * 2))

async function update(id: number, name: string): Promise<Row> {
  await pause()
  const { rows } = await pool.query<Row>(
    `UPDATE ${table} SET name = $2, version = version + 1 WHERE id = $1 RETURNING id, name, version`,
    [id, name],
  )
  await pause()
  return rows[0]!
}

async function load(id: number): Promise<Row> {
  const { rows } = await pool.query<Row>(`SELECT id, name, version FROM ${table} WHERE id = $1`, [id])
  return rows[0]!
}

describe('writeThrough against PostgreSQL', () => {
  it('a writer the database refuses leaves L1 and L2 untouched on every node', async () => {
    const namespace = uniqueNamespace('pg-write-through-fail')
    const make = () =>
      createCache({ namespace, l2: redisStore({ url: redisUrl }), bus: redisBus({ url: redisUrl }) })
    const nodes = [make(), make()]
    try {
      await Promise.all(nodes.map((node) => node.ready()))
      const row = await nodes[0]!.writeThrough('user:1', () => update(1, 'before'))
      expect(await nodes[1]!.get('user:1')).toEqual(row)
      const raw = await redisCommand(Number(new URL(redisUrl).port), ['GET', `${namespace}:user:1`])
      const hits = nodes.map((node) => node.stats().l1.hits)
      // NOT NULL violated: PostgreSQL refuses the UPDATE.
      const refused = nodes[0]!.writeThrough('user:1', async () => {
        await pool.query(`UPDATE ${table} SET name = NULL WHERE id = 1`)
        return row
      })
      await expect(refused).rejects.toMatchObject({ code: '23502' })
      expect(await redisCommand(Number(new URL(redisUrl).port), ['GET', `${namespace}:user:1`])).toEqual(raw)
      for (const node of nodes) expect(await node.get('user:1')).toEqual(row)
      expect(nodes.map((node) => node.stats().l1.hits)).toEqual(hits.map((n) => n + 1))
      expect(await load(1)).toEqual(row)
    } finally {
      await Promise.all(nodes.map((node) => node.close()))
    }
  })
})

describe('writeThrough against PostgreSQL: two nodes racing on one key', () => {
  for (const mode of ['unordered', 'ordered by the row version'] as const) {
    it(`${mode}: cache and database agree at the end of each of ${ROUNDS} rounds`, async () => {
      const namespace = uniqueNamespace('pg-write-through')
      const make = () =>
        createCache({ namespace, l2: redisStore({ url: redisUrl }), bus: redisBus({ url: redisUrl }) })
      const nodes: Cache[] = [make(), make()]
      const id = mode === 'unordered' ? 1 : 2
      const key = `user:${id}`
      const options: WriteThroughOptions<Row> = mode === 'unordered' ? {} : { version: (row) => row.version }
      try {
        await Promise.all(nodes.map((node) => node.ready()))
        let invalidated = 0
        for (let round = 0; round < ROUNDS; round++) {
          await Promise.all(
            nodes.map((node, i) =>
              node.writeThrough(key, () => update(id, `node ${i} round ${round}`), options),
            ),
          )
          const row = await load(id)
          for (const node of nodes) {
            expect(
              await node.getOrSet(key, () => load(id), { consistency: 'strong' }),
              `round ${round}`,
            ).toEqual(row)
          }
          if (mode !== 'unordered') {
            // Ordered writes never need to invalidate: the highest commit is in L2.
            expect(await nodes[0]!.get(key, { consistency: 'strong' })).toEqual(row)
          }
          invalidated = nodes.reduce((sum, node) => sum + node.stats().writeThrough.invalidated, 0)
        }
        const writes = nodes.reduce((sum, node) => sum + node.stats().writeThrough.writes, 0)
        expect(writes).toBe(2 * ROUNDS)
        if (mode !== 'unordered') expect(invalidated).toBe(0)
      } finally {
        await Promise.all(nodes.map((node) => node.close()))
      }
    })
  }
})
