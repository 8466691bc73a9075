/**
 * The demo's database: one table of users and one slow report, behind a small interface with two
 * implementations, PGlite (embedded PostgreSQL in this process, the default) and PostgreSQL through `pg`
 * (DATABASE_URL). Both run the same SQL. Each node counts the queries it sends (countQueries), which is
 * how the demo shows the load the cache takes off the database.
 */

export interface User {
  id: number
  name: string
  email: string
  /** Raised by every update: how the load generator tells a stale read from a fresh one. */
  version: number
  updatedAt: string
}

/** The "expensive" query that the hot-key scene puts under load: the ten most updated users. */
export interface Report {
  top: { id: number; name: string; version: number }[]
  computedAt: string
}

export interface Database {
  readonly name: string
  getUser(id: number): Promise<User | undefined>
  /** Renames the user and raises its version; resolves to the new row. */
  updateUser(id: number): Promise<User | undefined>
  /**
   * Stores rows made elsewhere (write-behind's batches) in one statement; a row only moves forward: one
   * whose version is not above the stored one is left out.
   */
  saveUsers(users: readonly User[]): Promise<void>
  topUsers(): Promise<Report>
  close(): Promise<void>
}

/** What a database runs a statement with: PGlite and pg both take `(text, params)` and answer `{ rows }`. */
export interface Queryable {
  query<R>(text: string, params?: unknown[]): Promise<{ rows: R[] }>
}

/** How long the report query is made to take (simulated with a timer, so that it is slow on any machine). */
export const REPORT_QUERY_MS = 150

export const SCHEMA_SQL = `
  CREATE TABLE users (
    id integer PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL,
    version integer NOT NULL DEFAULT 1,
    updated_at timestamptz NOT NULL DEFAULT now()
  )`

export function seedSql(users: number): string {
  return `INSERT INTO users (id, name, email)
    SELECT i, 'User ' || i, 'user' || i || '@example.com' FROM generate_series(1, ${Math.floor(users)}) AS i`
}

interface UserRow {
  id: number
  name: string
  email: string
  version: number
  updated_at: Date | string
}

const toUser = (row: UserRow): User => ({
  id: row.id,
  name: row.name,
  email: row.email,
  version: row.version,
  updatedAt: new Date(row.updated_at).toISOString(),
})

/** The queries of the demo, for either client. */
export function sqlDatabase(name: string, db: Queryable, close: () => Promise<void>): Database {
  return {
    name,
    async getUser(id) {
      const { rows } = await db.query<UserRow>('SELECT * FROM users WHERE id = $1', [id])
      return rows[0] && toUser(rows[0])
    },
    async updateUser(id) {
      const { rows } = await db.query<UserRow>(
        `UPDATE users SET name = 'User ' || id || ' v' || (version + 1), version = version + 1, updated_at = now()
         WHERE id = $1 RETURNING *`,
        [id],
      )
      return rows[0] && toUser(rows[0])
    },
    async saveUsers(users) {
      if (users.length === 0) return
      await db.query(
        `UPDATE users SET name = data.name, version = data.version, updated_at = data.updated_at
         FROM unnest($1::int[], $2::text[], $3::int[], $4::timestamptz[]) AS data(id, name, version, updated_at)
         WHERE users.id = data.id AND users.version < data.version`,
        [
          users.map((u) => u.id),
          users.map((u) => u.name),
          users.map((u) => u.version),
          users.map((u) => u.updatedAt),
        ],
      )
    },
    async topUsers() {
      const { rows } = await db.query<{ id: number; name: string; version: number }>(
        'SELECT id, name, version FROM users ORDER BY version DESC, id LIMIT 10',
      )
      await new Promise((resolve) => setTimeout(resolve, REPORT_QUERY_MS))
      return { top: rows, computedAt: new Date().toISOString() }
    },
    close,
  }
}

/** A view of `db` for one node that counts the queries the node sends. Closing it leaves `db` open. */
export function countQueries(db: Database): Database & { readonly queries: number } {
  let queries = 0
  const counted =
    <A extends unknown[], R>(query: (...args: A) => R) =>
    (...args: A): R => {
      queries++
      return query(...args)
    }
  return {
    name: db.name,
    get queries() {
      return queries
    },
    getUser: counted((id: number) => db.getUser(id)),
    updateUser: counted((id: number) => db.updateUser(id)),
    saveUsers: counted((users: readonly User[]) => db.saveUsers(users)),
    topUsers: counted(() => db.topUsers()),
    close: async () => {},
  }
}
