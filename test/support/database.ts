/**
 * The PostgreSQL the tests use (write-through, write-behind, the example): trust authentication, each
 * test making tables (or a schema) with names of its own and dropping them after.
 */
export const DATABASE_URL =
  process.env.TEST_DATABASE_URL ??
  process.env.DEMO_TEST_DATABASE_URL ??
  'postgres://postgres@127.0.0.1:5432/test'
