import { execFile } from 'node:child_process'
import { describe, expect, inject, it } from 'vitest'
import { DATABASE_URL } from './support/database.js'

// The README's worked example (examples/postgres.ts) runs against the machine's PostgreSQL, on the run's
// Redis and in-process, and shows what it says it shows.

function example(env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'examples/postgres.ts'],
      { env: { ...process.env, ...env }, timeout: 30_000 },
      (error, stdout, stderr) =>
        error ? reject(new Error(`${error.message}\n${stdout}\n${stderr}`)) : resolve(stdout),
    )
  })
}

describe('npm run example:postgres', () => {
  for (const redis of [false, true]) {
    it(redis ? 'on Redis' : 'in-process', { timeout: 40_000 }, async () => {
      const env: Record<string, string> = { DATABASE_URL }
      if (redis) env.REDIS_URL = inject('redisUrl')
      const output = await example(env)
      expect(output).toContain('10 concurrent getUser(1) → old@email.com, 1 database query')
      expect(output).toContain("get('user:2') twice → Bob, 1 database query")
      expect(output).toContain('updateUser(1) → version 2; getUser(1) → new@email.com')
      expect(output).toContain('leaves the cache as it was: new@email.com')
      expect(output).toContain('the cache has lastSeen at once (true), the database not yet (false)')
      expect(output).toContain('after flush() the database has it too (true)')
      expect(output).toContain(`"durable":${redis}`)
      expect(output).toContain("after another node's write → changed@elsewhere.com")
    })
  }
})
