import { PGlite } from '@electric-sql/pglite'
import { type Database, SCHEMA_SQL, seedSql, sqlDatabase } from './database.js'

/**
 * Embedded PostgreSQL (PGlite: PostgreSQL compiled to WebAssembly) in this process, in memory: the
 * database of the embedded mode, so that the demo needs no server. Several in-process nodes share it.
 */
export async function pgliteDatabase(users: number): Promise<Database> {
  const pg = await PGlite.create()
  await pg.exec(`${SCHEMA_SQL}; ${seedSql(users)}`)
  return sqlDatabase('PGlite (embedded PostgreSQL)', pg, () => pg.close())
}
