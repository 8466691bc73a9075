import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type Cache, type CacheOptions, createCache, UnconfirmedReadError } from '../src/index.js'
import { redisBus, redisStore } from '../src/redis.js'
import { type RedisServer, redisCommand, startRedis } from '../tools/redis-server.js'
import { type FaultyBus, faultyBus } from './support/faults.js'
import { uniqueNamespace } from './support/redis-fleet.js'
import { eventually } from './support/store-conformance.js'

// Strong reads against a Redis of the test's own: B's bus is cut for real (CLIENT KILL TYPE pubsub), and
// its return is held off by a wrapper that reports 'disconnected' and drops what arrives, so B's L1 keeps
// a value that A has since replaced.

let server: RedisServer | undefined
let a: Cache | undefined
let b: Cache | undefined
let bBus: FaultyBus

beforeEach(async () => {
  server = await startRedis()
  const namespace = uniqueNamespace('strong')
  const options: CacheOptions = { namespace, l2Timeout: '200ms', circuitBreaker: false }
  a = createCache({ ...options, l2: redisStore({ url: server.url }), bus: redisBus({ url: server.url }) })
  bBus = faultyBus(redisBus({ url: server.url }))
  b = createCache({ ...options, l2: redisStore({ url: server.url }), bus: bBus.bus })
  await Promise.all([a.ready(), b.ready()])
})

afterEach(async () => {
  await Promise.allSettled([a?.close(), b?.close()])
  await server?.stop()
  server = undefined
})

/** Kills every pub/sub connection on the server; B's wrapper reports the loss and keeps it lost. */
async function cutBuses(): Promise<void> {
  bBus.cut('disconnected')
  const killed = await redisCommand(server!.port, ['CLIENT', 'KILL', 'TYPE', 'pubsub'])
  expect(killed).toBeGreaterThanOrEqual(2)
}

describe('strong reads on Redis', () => {
  it('a node whose bus is cut returns the new value on a strong read at once, from L1 while it is current', async () => {
    await a!.set('user:1', { email: 'old@example.com' })
    expect(await b!.get('user:1')).toEqual({ email: 'old@example.com' })
    await cutBuses()
    expect(b!.stats().bus.connected).toBe(false)
    // Unchanged in L2: confirmed and served from B's L1.
    expect(await b!.get('user:1', { consistency: 'strong' })).toEqual({ email: 'old@example.com' })
    expect(b!.stats().strong.confirmed).toBe(1)
    await eventually(() => a!.stats().bus.connected, 5000, "A's bus to come back")
    await a!.set('user:1', { email: 'new@example.com' })
    expect(await b!.get('user:1', { consistency: 'strong' })).toEqual({ email: 'new@example.com' })
    expect(b!.stats().strong).toMatchObject({ reads: 2, confirmed: 1 })
    // Deleted on A: gone for a strong read on B, whatever B's L1 held.
    await a!.delete('user:1')
    expect(await b!.get('user:1', { consistency: 'strong' })).toBeUndefined()
  })

  it('with Redis down a strong read fails with E_UNCONFIRMED_READ, or answers from L1 with grace', async () => {
    await a!.set('k', 'cached')
    expect(await b!.get('k')).toBe('cached')
    await server!.kill('SIGKILL')
    const error = await b!.get('k', { consistency: 'strong' }).catch((err: unknown) => err)
    expect(error).toBeInstanceOf(UnconfirmedReadError)
    expect(await b!.get('k', { consistency: 'strong', grace: '1m' })).toBe('cached')
    await expect(b!.getOrSet('k', async () => 'db', { consistency: 'strong' })).rejects.toMatchObject({
      code: 'E_UNCONFIRMED_READ',
    })
  })
})
