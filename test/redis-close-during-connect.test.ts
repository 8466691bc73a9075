/**
 * Issue 10 item 7: `close()` while the first connection is still being opened must not leave that
 * connection behind. node-redis' destroy() does not close a socket whose TCP connect is in progress; the
 * connect then completes on a client nobody owns, the server keeps a client, and the process never exits.
 */
import { spawn } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createCache } from '../src/index.js'
import { redisBus, redisStore } from '../src/redis.js'
import { type RedisServer, redisCommand, startRedis } from '../tools/redis-server.js'
import { eventually } from './support/store-conformance.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const CYCLES = 50

// A server per test: a leak in one test must not fail the next.
let server: RedisServer
beforeEach(async () => {
  server = await startRedis()
})
afterEach(async () => {
  await server?.stop()
})

/** Client connections the server has, other than the one asking. */
async function serverClients(): Promise<string[]> {
  const list = (await redisCommand(server.port, ['CLIENT', 'LIST'])) as string
  return list
    .trim()
    .split('\n')
    .filter((line) => line !== '' && !/ cmd=client\|list /.test(line))
}

/** Open TCP sockets of this process (node's resource names). */
function openSockets(): number {
  return process.getActiveResourcesInfo().filter((name) => name === 'TCPSocketWrap').length
}

describe('close() during the first connect', () => {
  for (const withBus of [false, true]) {
    const what = withBus ? 'redisStore + redisBus' : 'redisStore'
    it(`${what}: ${CYCLES} cycles of an un-awaited get and close() leave no connection`, async () => {
      const socketsBefore = openSockets()
      for (let i = 0; i < CYCLES; i++) {
        const cache = createCache({
          namespace: `cdc-${i}`,
          l2: redisStore({ url: server.url }),
          ...(withBus && { bus: redisBus({ url: server.url }) }),
        })
        const read = cache.get('k').catch((error: unknown) => error)
        await cache.close()
        await read
      }
      // The server drops a client when its socket closes; poll until it has (or fail on the timeout).
      await eventually(
        async () => (await serverClients()).length === 0,
        10_000,
        'the server to have no client left',
      ).catch(async (error) => {
        throw new Error(`${(error as Error).message}:\n${(await serverClients()).join('\n')}`)
      })
      await eventually(() => openSockets() <= socketsBefore, 10_000, 'our sockets to be closed')
    })

    it(`${what}: a process doing ${CYCLES} such cycles exits by itself`, async () => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/close-during-connect.ts'], {
        cwd: ROOT,
        env: { ...process.env, REDIS_URL: server.url, CYCLES: String(CYCLES), BUS: withBus ? '1' : '0' },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let output = ''
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
      // Generous: tsx start-up on a loaded machine takes seconds. Past it, the process is hung on a handle.
      const timer = setTimeout(() => child.kill('SIGKILL'), 25_000)
      try {
        const code = await exited
        expect({ code, signal: child.signalCode, output }).toEqual({
          code: 0,
          signal: null,
          output: `done ${CYCLES}\n`,
        })
      } finally {
        clearTimeout(timer)
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      }
    }, 40_000)
  }
})
