import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { type Database, SCHEMA_SQL, seedSql, sqlDatabase } from './database.js'

/**
 * PostgreSQL through `pg` (DATABASE_URL). The demo works in a schema of its own, made for the run and
 * dropped at its end, so it never touches your tables and two runs never meet.
 */
export interface DemoSchema {
  readonly name: string
  /** Drops the schema and everything in it. */
  drop(): Promise<void>
}

export async function createDemoSchema(url: string, users: number): Promise<DemoSchema> {
  const name = `coherent_demo_${randomBytes(4).toString('hex')}`
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await client.query(`CREATE SCHEMA ${name}`)
    await client.query(`SET search_path TO ${name}`)
    await client.query(SCHEMA_SQL)
    await client.query(seedSql(users))
  } finally {
    await client.end()
  }
  return {
    name,
    async drop() {
      const dropper = new pg.Client({ connectionString: url })
      await dropper.connect()
      try {
        await dropper.query(`DROP SCHEMA IF EXISTS ${name} CASCADE`)
      } finally {
        await dropper.end()
      }
    },
  }
}

/** A pool of connections to `url` that works in `schema` (made by createDemoSchema). */
export function postgresDatabase(url: string, schema: string): Database {
  // A few connections per node are enough: the cache answers most requests.
  const pool = new pg.Pool({ connectionString: url, max: 4, options: `-c search_path=${schema}` })
  return sqlDatabase('PostgreSQL', pool, () => pool.end())
}
