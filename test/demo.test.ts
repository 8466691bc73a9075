/**
 * `npm run demo`: it runs to its summary in embedded mode with no services; with REDIS_URL and
 * DATABASE_URL its nodes are separate processes on that Redis and PostgreSQL; with --own-redis it starts
 * a Redis of its own and takes it away in the outage scene. Plus the pieces a reader may reuse: the
 * outage switch and the choice of mode.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { faultSwitch, OutageError } from '../demo/faults.js'
import { resolveMode } from '../demo/run.js'
import { createCache, memoryBus, memoryStore } from '../src/index.js'
import { type RedisServer, redisCommand, startRedis } from '../tools/redis-server.js'
import { DATABASE_URL } from './support/database.js'
import { settle } from './support/nodes.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
// The machine's PostgreSQL (trust auth); the demo works in a schema of its own and drops it.
const RUN_TIMEOUT_MS = 120_000

/** The environment without the variables that choose the demo's mode. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra }
  if (!('REDIS_URL' in extra)) delete env.REDIS_URL
  if (!('DATABASE_URL' in extra)) delete env.DATABASE_URL
  return env
}

/**
 * Runs a command in a process group of its own, with stdout a pipe (so the demo prints plain lines),
 * and resolves to its exit code and output. The group is killed if the command outlives the timeout or
 * the test, so no demo (or node process of it) outlives its test.
 */
async function run(command: string, args: string[], env: NodeJS.ProcessEnv) {
  let child: ChildProcess | undefined
  try {
    child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    let output = ''
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8')
    })
    child.stderr!.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8')
    })
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no exit within ${RUN_TIMEOUT_MS} ms:\n${output}`)),
        RUN_TIMEOUT_MS,
      )
      child!.once('exit', (exitCode) => {
        clearTimeout(timer)
        resolve(exitCode)
      })
    })
    return { code, output }
  } finally {
    if (child?.pid !== undefined && child.exitCode === null) {
      try {
        process.kill(-child.pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }
  }
}

const demo = (args: string[], env: NodeJS.ProcessEnv) =>
  run(process.execPath, ['--import', 'tsx', 'demo/main.ts', ...args], env)

/** The summary's per-node table rows: node id → its cells. */
function nodeRows(output: string): Map<string, string[]> {
  const rows = new Map<string, string[]>()
  for (const line of output.split('\n')) {
    const cells = line.trim().split(/\s{2,}/)
    if (/^node-\d+$/.test(cells[0]!) && cells.length === 12) rows.set(cells[0]!, cells)
  }
  return rows
}

/** The "whole run" row of the summary's scene table. */
function wholeRun(output: string): string[] {
  const line = output.split('\n').find((l) => l.startsWith('whole run'))
  expect(line, output).toBeDefined()
  return line!.trim().split(/\s{2,}/)
}

describe('npm run demo', () => {
  test('runs to its summary in embedded mode with no services', { timeout: RUN_TIMEOUT_MS }, async () => {
    const { code, output } = await run('npm', ['run', 'demo', '--', '--duration', '5'], cleanEnv())
    expect(code, output).toBe(0)
    expect(output).toContain('embedded mode: 3 nodes in this process on memoryStore() and memoryBus()')
    expect(output).toMatch(/dashboard: http:\/\/127\.0\.0\.1:\d+\//)
    for (const [i, title] of [
      'Warm-up',
      'Steady state',
      'A hot key expiring under load',
      'Updates on one node, seen by the others',
      'Write-through: the database, then the cache',
      'Write-behind: the cache now, the database in batches',
      'Redis taken away and brought back',
    ].entries()) {
      expect(output).toContain(`▶ scene ${i + 1}/7: ${title}`)
    }
    expect(output).toContain('· Redis is down')
    expect(output).toContain('· Redis is back')
    expect(output).toMatch(/every node's L2 circuit opened within \d+ ms/)
    // Not a terminal: plain progress lines, no redrawing.
    expect(output).toMatch(/^\[\s*\d+s\/5s\] warm-up /m)
    expect(output).not.toContain('\u001b[')
    expect(output).toContain('Summary · embedded mode')
    expect([...nodeRows(output).keys()]).toEqual(['node-1', 'node-2', 'node-3'])
    const whole = wholeRun(output)
    expect(Number(whole[2]!.replace(/,/g, ''))).toBeGreaterThan(0) // requests/s
    expect(whole.at(-1), output).toBe('0') // no request failed, not even while "Redis" was down
    expect(output.match(/^ {2}[A-Z].*: .+$/gm)?.length).toBeGreaterThanOrEqual(7) // what each scene showed
  })

  describe('with services', () => {
    let redis: RedisServer
    beforeAll(async () => {
      redis = await startRedis()
    })
    afterAll(async () => {
      await redis?.stop()
    })

    test('with REDIS_URL and DATABASE_URL, runs its nodes as separate processes on them', {
      timeout: RUN_TIMEOUT_MS,
    }, async () => {
      const { code, output } = await demo(
        ['--duration', '6', '--nodes', '2'],
        cleanEnv({ REDIS_URL: redis.url, DATABASE_URL }),
      )
      expect(code, output).toBe(0)
      const mode = output.match(
        /separate-process mode: 2 node processes \(pids (\d+), (\d+)\) on Redis (\S+) \(REDIS_URL\) and PostgreSQL \S+ \(schema (\w+)\)/,
      )
      expect(mode, output).not.toBeNull()
      const [, pidA, pidB, url, schema] = mode!
      expect(pidA).not.toBe(pidB)
      expect(url).toBe(redis.url)
      // It did not start this Redis, so it does not take it away.
      expect(output).toContain(
        'skipped “Redis taken away and brought back”: REDIS_URL is a Redis this demo did not start',
      )
      expect(output).toContain('Summary · separate-process mode')
      expect([...nodeRows(output).keys()]).toEqual(['node-1', 'node-2'])
      expect(wholeRun(output).at(-1), output).toBe('0')
      // The nodes' entries are in this Redis, and the demo dropped its schema when it ended.
      expect(await redisCommand(redis.port, ['DBSIZE'])).toBeGreaterThan(0)
      const client = new pg.Client({ connectionString: DATABASE_URL })
      await client.connect()
      try {
        const { rows } = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])
        expect(rows).toEqual([])
      } finally {
        await client.end()
      }
    })
  })

  test('with --own-redis, starts a Redis of its own and takes it away in the outage scene', {
    timeout: RUN_TIMEOUT_MS,
  }, async () => {
    const { code, output } = await demo(
      ['--own-redis', '--duration', '8', '--nodes', '2'],
      cleanEnv({ DATABASE_URL }),
    )
    expect(code, output).toBe(0)
    const mode = output.match(/on Redis redis:\/\/127\.0\.0\.1:(\d+)\/? \(started by the demo\)/)
    expect(mode, output).not.toBeNull()
    expect(output).toContain('▶ scene 7/7: Redis taken away and brought back')
    expect(output).toContain('· Redis is down')
    expect(output).toContain('· Redis is back')
    // Redis really went away, so the nodes failed fast: every node's breaker opened.
    expect(output).toMatch(/every node's L2 circuit opened within \d+ ms/)
    expect(wholeRun(output).at(-1), output).toBe('0')
    // Its Redis is gone with it.
    await expect(redisCommand(Number(mode![1]), ['PING'], { timeoutMs: 500 })).rejects.toThrow()
  })

  test('--own-redis without DATABASE_URL says what is missing', async () => {
    const { code, output } = await demo(['--own-redis', '--duration', '1'], cleanEnv())
    expect(code).toBe(2)
    expect(output).toContain('--own-redis runs the nodes as separate processes')
    expect(output).toContain('set DATABASE_URL')
  })
})

describe('demo pieces', () => {
  test('the mode follows REDIS_URL, DATABASE_URL and --own-redis', () => {
    expect(resolveMode({})).toEqual({ kind: 'embedded' })
    expect(resolveMode({ redisUrl: 'redis://r', databaseUrl: 'postgres://p' })).toMatchObject({
      kind: 'processes',
      redis: 'given',
    })
    expect(resolveMode({ redisUrl: 'redis://r' })).toMatchObject({
      kind: 'embedded',
      why: expect.stringMatching(/DATABASE_URL/),
    })
    expect(resolveMode({ ownRedis: true, databaseUrl: 'postgres://p' })).toMatchObject({ redis: 'own' })
    expect(() => resolveMode({ ownRedis: true })).toThrow(/DATABASE_URL/)
  })

  test('the outage switch fails the store and bus while down and tells subscribers', async () => {
    const faults = faultSwitch()
    const store = faults.store(memoryStore())
    const bus = faults.bus(memoryBus())
    const statuses: string[] = []
    const messages: number[] = []
    await bus.subscribe(
      'c',
      (message) => messages.push(message[0]!),
      (status) => statuses.push(status),
    )
    let reconnects = 0
    store.onReconnect!(() => reconnects++)

    await store.set('k', new Uint8Array([1]), 1, 60_000)
    faults.down()
    expect(statuses).toEqual(['disconnected'])
    await expect(store.get('k')).rejects.toBeInstanceOf(OutageError)
    await expect(store.acquireLease!('l', 't', 1000)).rejects.toBeInstanceOf(OutageError)
    await expect(bus.publish('c', new Uint8Array([2]))).rejects.toBeInstanceOf(OutageError)

    faults.up()
    expect(statuses).toEqual(['disconnected', 'connected'])
    expect(reconnects).toBe(1)
    expect((await store.get('k'))?.bytes).toEqual(new Uint8Array([1]))
    await bus.publish('c', new Uint8Array([3]))
    await settle()
    expect(messages).toEqual([3])
  })

  test('a cache behind the switch keeps answering while it is down', async () => {
    const faults = faultSwitch()
    const cache = createCache({
      namespace: 'switch',
      l2: faults.store(memoryStore()),
      bus: faults.bus(memoryBus()),
      l2Timeout: '100ms',
    })
    try {
      await cache.ready()
      await cache.set('a', 1)
      faults.down()
      expect(await cache.getOrSet('b', () => 2)).toBe(2)
      expect(cache.stats().bus.connected).toBe(false)
      faults.up()
      await settle()
      expect(cache.stats().bus.connected).toBe(true)
    } finally {
      await cache.close()
    }
  })
})
