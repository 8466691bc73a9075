/**
 * TLS through the URL (`rediss://`) and socket options, against a real TLS-enabled redis-server on loopback
 * (certificate in test/fixtures/tls). The server also listens on a plain port, which only the test harness
 * uses to start and stop it.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createCache } from '../src/index.js'
import { redisBus, redisStore } from '../src/redis.js'
import { freePort, type RedisServer, startRedis } from '../tools/redis-server.js'
import { uniqueNamespace } from './support/redis-fleet.js'
import { eventually } from './support/store-conformance.js'

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/tls/${name}`, import.meta.url))
const ca = readFileSync(fixture('server-cert.pem'))

let server: RedisServer | undefined
let tlsUrl: string

beforeAll(async () => {
  const tlsPort = await freePort()
  server = await startRedis({
    args: [
      '--tls-port',
      String(tlsPort),
      '--tls-cert-file',
      fixture('server-cert.pem'),
      '--tls-key-file',
      fixture('server-key.pem'),
      '--tls-ca-cert-file',
      fixture('server-cert.pem'),
      '--tls-auth-clients',
      'no',
    ],
  })
  tlsUrl = `rediss://127.0.0.1:${tlsPort}`
})

afterAll(async () => {
  await server?.stop()
})

describe('Redis over TLS', () => {
  it('store and bus work over rediss:// with the CA given as a socket option; two nodes stay coherent', async () => {
    const namespace = uniqueNamespace('tls')
    const node = () =>
      createCache({
        namespace,
        l2: redisStore({ url: tlsUrl, socket: { tls: true, ca } }),
        bus: redisBus({ url: tlsUrl, socket: { tls: true, ca } }),
      })
    const [a, b] = [node(), node()]
    try {
      await Promise.all([a.ready(), b.ready()])
      await a.set('k', { over: 'tls' })
      expect(await b.get('k')).toEqual({ over: 'tls' })
      expect(await b.get('k')).toEqual({ over: 'tls' }) // from B's L1 now
      await a.set('k', { over: 'tls', n: 2 })
      await eventually(
        async () => (await b.get<{ n?: number }>('k'))?.n === 2,
        2000,
        'B to see the new value',
      )
      expect(a.stats().l2.errors + b.stats().l2.errors).toBe(0)
      expect(b.stats().bus.received).toBeGreaterThan(0)
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })

  it('a certificate the client does not trust fails the connection, and the cache degrades instead of throwing', async () => {
    const cache = createCache({
      namespace: uniqueNamespace('tls-untrusted'),
      l2: redisStore({ url: tlsUrl, connectTimeout: 500 }),
      l2Timeout: '200ms',
    })
    try {
      await cache.set('k', 'v') // not in L2: queued, but this node still reads its own write
      expect(await cache.get('k')).toBe('v')
      expect(await cache.getOrSet('other', async () => 'loaded')).toBe('loaded')
      expect(cache.stats().l2.errors).toBeGreaterThan(0)
      expect(cache.stats().l2.hits).toBe(0)
    } finally {
      await cache.close()
    }
  })
})
