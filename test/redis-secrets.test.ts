/**
 * Issue 10 item 9: secrets (URL passwords, `password`, TLS keys) never show in util.inspect of a store, a
 * bus or their connection, nor in the errors our code builds (messages and their `cause` chains), whether
 * Redis is unreachable, refuses the password or the options are invalid.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import util from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createCache } from '../src/index.js'
import { redisBus, redisStore } from '../src/redis.js'
import { freePort, type RedisServer, startRedis } from '../tools/redis-server.js'

const PASSWORD = 'hunter2-s3cret'
const WRONG = 'wrong-pa55word'
const tlsKey = readFileSync(fileURLToPath(new URL('./fixtures/tls/server-key.pem', import.meta.url)), 'utf8')
/** A line from the middle of the PEM body: printing the key in any form would print it. */
const KEY_LINE = tlsKey.split('\n')[5]!

/** Everything util.inspect can reach, hidden properties and whole cause chains included. */
const inspectAll = (value: unknown) =>
  util.inspect(value, { depth: Number.POSITIVE_INFINITY, showHidden: true })

function expectNoSecret(text: string): void {
  for (const secret of [PASSWORD, WRONG, KEY_LINE]) expect(text).not.toContain(secret)
}

/** The error a promise rejects with. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error('expected a rejection')
}

let server: RedisServer
beforeAll(async () => {
  server = await startRedis({ args: ['--requirepass', PASSWORD] })
})
afterAll(async () => {
  await server?.stop()
})

describe('secrets', () => {
  it('util.inspect of a connected store and bus shows no password, nor a TLS key', async () => {
    const url = `redis://default:${PASSWORD}@127.0.0.1:${server.port}`
    // A TLS key in the socket options (unused on a plain connection, but kept with the options).
    const store = redisStore({ url, socket: { key: tlsKey, passphrase: PASSWORD } as never })
    const bus = redisBus({ url })
    try {
      expect(await store.set('secrets:k', Buffer.from('v'), 1, 60_000)).toBe(1)
      await bus.subscribe(
        'secrets',
        () => {},
        () => {},
      )
      const text = inspectAll(store) + inspectAll(bus)
      expectNoSecret(text)
      // Still says where it connects to, with the password masked.
      expect(inspectAll(store)).toContain(`redis://default:***@127.0.0.1:${server.port}`)
      expect(inspectAll(store)).toContain('[redacted]')
    } finally {
      await store.close()
      await bus.close()
    }
  })

  it('util.inspect of cluster options shows no password', async () => {
    const options = {
      cluster: [{ host: '127.0.0.1', port: await freePort() }],
      username: 'app',
      password: PASSWORD,
      socket: { tls: true as const, key: tlsKey },
      connectTimeout: 200,
    }
    const store = redisStore(options)
    const bus = redisBus(options)
    try {
      const text = inspectAll(store) + inspectAll(bus)
      expectNoSecret(text)
      expect(text).toContain("username: 'app'")
    } finally {
      await store.close()
      await bus.close()
    }
  })

  it('a refused password: the errors of the store, the bus and the cache do not contain it', async () => {
    const url = `redis://default:${WRONG}@127.0.0.1:${server.port}`
    const store = redisStore({ url, connectTimeout: 500, maxReconnectDelay: 100 })
    const bus = redisBus({ url, connectTimeout: 500, maxReconnectDelay: 100 })
    const cache = createCache({ namespace: 'secrets', l2: redisStore({ url, connectTimeout: 500 }) })
    try {
      const errors = [
        await rejection(store.get('k')),
        await rejection(store.set('k', Buffer.from('v'), 1, 1000)),
        await rejection(
          bus.subscribe(
            'secrets',
            () => {},
            () => {},
          ),
        ),
        await rejection(bus.publish('secrets', Buffer.from('m'))),
      ]
      for (const error of errors) {
        expect(error).toBeInstanceOf(Error)
        expectNoSecret(inspectAll(error))
      }
      // The cache degrades (no throw) and its stats and inspect output stay clean as well.
      expect(await cache.get('k')).toBeUndefined()
      expectNoSecret(inspectAll(cache.stats()))
    } finally {
      await Promise.allSettled([store.close(), bus.close(), cache.close()])
    }
  })

  it('an unreachable Redis: the error and its causes do not contain the password', async () => {
    const url = `redis://user:${PASSWORD}@127.0.0.1:${await freePort()}`
    const store = redisStore({ url, connectTimeout: 300 })
    try {
      const error = await rejection(store.get('k'))
      expect(String(error)).toContain('cannot reach Redis')
      expectNoSecret(inspectAll(error))
    } finally {
      await store.close()
    }
  })

  it('invalid options: the InvalidOptionError does not echo the URL or the password', () => {
    for (const url of [
      `redis://user:${PASSWORD}@127.0.0.1:notaport`,
      `http://user:${PASSWORD}@127.0.0.1:6379`,
      `redis://user:${PASSWORD}@127.0.0.1:6379/not-a-db`,
    ]) {
      let thrown: unknown
      try {
        redisStore({ url })
      } catch (error) {
        thrown = error
      }
      expect(thrown).toMatchObject({ code: 'E_INVALID_OPTION', option: 'url' })
      expectNoSecret(inspectAll(thrown))
    }
    let thrown: unknown
    try {
      redisStore({ cluster: [{ host: '127.0.0.1', port: 7000 }], password: 42 as never })
    } catch (error) {
      thrown = error
    }
    expect(thrown).toMatchObject({ code: 'E_INVALID_OPTION', option: 'password' })
  })
})
