import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { type Cache, createCache } from '../src/index.js'
import { redisBus, redisStore } from '../src/redis.js'
import { type RedisServer, redisCommand, startRedis } from '../tools/redis-server.js'
import { gatedStore, STORE_OPERATIONS } from './support/faults.js'
import { untilDelivered } from './support/nodes.js'
import { uniqueNamespace } from './support/redis-fleet.js'
import { eventually } from './support/store-conformance.js'

// Issue 3: writes made while Redis is down are not lost. Each test has a Redis server of its own, kills
// it and starts it again empty (it keeps nothing on disk), so whatever L2 holds afterwards was put there
// by the retry of a pending write.

let server: RedisServer | undefined
let a: Cache
let b: Cache
let namespace: string

async function startNodes() {
  namespace = uniqueNamespace('recovery')
  const make = () =>
    createCache({
      namespace,
      l2: redisStore({ url: server!.url }),
      bus: redisBus({ url: server!.url }),
      l2Timeout: '200ms',
    })
  a = make()
  b = make()
  await Promise.all([a.ready(), b.ready()])
}

beforeEach(async (context) => {
  // The last test needs a server that keeps its data across the outage; every other one an empty restart.
  const persistent = context.task.name.includes('loses no data')
  server = await startRedis(persistent ? { args: ['--appendonly', 'yes', '--appendfsync', 'always'] } : {})
  await startNodes()
})

afterEach(async () => {
  await Promise.allSettled([a?.close(), b?.close()])
  await server?.stop()
  server = undefined
})

/** Raw GET on the test's own server (no client library involved). */
async function rawGet(key: string): Promise<string | null> {
  return (await redisCommand(server!.port, ['GET', key])) as string | null
}

/**
 * Reads `key` on A over and over until A has no pending write left, and returns every answer: A must
 * keep seeing its own write during the whole recovery (read-your-writes), not only during the outage.
 */
async function readWhileRecovering(node: Cache, key: string): Promise<unknown[]> {
  const answers: unknown[] = []
  await eventually(
    async () => {
      answers.push(await node.get(key))
      return node.stats().pending === 0
    },
    15_000,
    'the pending writes to go out',
  )
  answers.push(await node.get(key))
  return answers
}

function totalCalls(calls: Partial<Record<string, number>>): number {
  return Object.values(calls).reduce<number>((sum, n) => sum + (n ?? 0), 0)
}

async function outage(during: () => Promise<void>) {
  await server!.kill('SIGKILL')
  await during()
  await server!.start()
}

describe('recovery of writes made while Redis is down (issue 3)', () => {
  it('a set during the outage reaches L2 and the other node once Redis is back', async () => {
    await a.set('k', 'v1')
    expect(await b.get('k')).toBe('v1')
    expect(await b.get('k')).toBe('v1')
    expect(b.stats().l1.hits).toBeGreaterThanOrEqual(1) // B holds it in L1

    await outage(async () => {
      await expect(a.set('k', 'v2')).resolves.toBeUndefined()
      expect(a.stats().pending).toBeGreaterThan(0)
      expect(await a.get('k')).toBe('v2') // read-your-writes, from L1, while L2 cannot answer
      expect(await a.get('k')).toBe('v2')
    })

    const answers = await readWhileRecovering(a, 'k')
    expect(answers.filter((answer) => answer !== 'v2')).toEqual([])
    await eventually(async () => (await b.get('k')) === 'v2', 10_000, "B to see A's value")
    expect(a.stats().pending).toBe(0)
    expect(a.stats().recovered).toBeGreaterThan(0)
    // The value is in the restarted (empty) server: the retry wrote it.
    expect(await rawGet(`${namespace}:k`)).toContain('v2')
    expect(await b.get('k')).toBe('v2')
  })

  it('with the circuit open, the cache uses Redis again as soon as it is back, not after openDuration', async () => {
    // No interval timer fires in this test (the outage queue retries every second on one): what sends the
    // pending write can only be Redis coming back (the circuit closing, the bus resubscribing).
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    const c = createCache({
      namespace,
      l2: redisStore({ url: server!.url }),
      bus: redisBus({ url: server!.url }),
      l2Timeout: '200ms',
      circuitBreaker: { failureThreshold: 2, openDuration: '60s' },
    })
    try {
      await c.ready()
      await outage(async () => {
        await c.set('k', 'during') // queued: L2 is unreachable
        while (c.stats().l2.circuit !== 'open') await c.get('other')
      })
      // Only the reconnect probe can close the circuit this early (openDuration is 60 s), and the
      // pending write goes out as soon as it has.
      await eventually(() => c.stats().l2.circuit === 'closed', 15_000, 'the circuit to close')
      await eventually(() => c.stats().pending === 0, 5000, 'the pending write to go out')
      expect(await rawGet(`${namespace}:k`)).toContain('during')
      expect(await b.get('k')).toBe('during')
    } finally {
      await c.close()
      vi.useRealTimers()
    }
  })

  it('a set whose reply was lost (it reached L2, the client timed out) is announced by its retry', async () => {
    await a.set('k', 'old')
    expect(await b.get('k')).toBe('old')
    expect(await b.get('k')).toBe('old') // B holds it in L1 now
    // A's next write lands in Redis, but its reply comes after l2Timeout (200 ms): A cannot know it landed.
    // (A set is one script, setStamped, on a single server: the one whose reply is delayed here.)
    const store = (
      a as unknown as { rt: { remote: { store: { setStamped: (...args: never[]) => Promise<unknown> } } } }
    ).rt.remote.store
    const realSet = store.setStamped
    store.setStamped = async (...args: never[]) => {
      const written = await realSet(...args)
      await new Promise((resolve) => setTimeout(resolve, 400))
      return written
    }
    await a.set('k', 'new')
    store.setStamped = realSet
    expect(a.stats().pending).toBe(1)
    expect(a.stats().bus.published).toBe(1) // only 'old' was announced by a reply A saw
    // The retry finds its own write in L2 (not a newer one) and announces it: B drops 'old' at once,
    // long before its L1 entry would expire.
    await eventually(() => a.stats().pending === 0, 5000, 'the retry')
    expect(a.stats().bus.published).toBe(2)
    await eventually(async () => (await b.get('k')) === 'new', 1000, "B to see A's write")
  })

  it('a delete during the outage leaves its tombstone in L2 once Redis is back', async () => {
    await a.set('k', 'v1')
    expect(await b.get('k')).toBe('v1')
    expect(await b.get('k')).toBe('v1')

    await outage(async () => {
      await expect(a.delete('k')).resolves.toBeUndefined()
      expect(a.stats().pending).toBeGreaterThan(0)
      expect(await a.get('k')).toBeUndefined()
    })

    const answers = await readWhileRecovering(a, 'k')
    expect(answers.filter((answer) => answer !== undefined)).toEqual([])
    await eventually(async () => (await b.get('k')) === undefined, 10_000, 'B to see the delete')
    expect(a.stats().pending).toBe(0)
    expect(a.stats().recovered).toBeGreaterThan(0)
    // A tombstone ('t' + 15 hex digits of the version), written by the retry.
    expect(await rawGet(`${namespace}:k`)).toMatch(/^t[0-9a-f]{15}$/)
    expect(await b.get('k')).toBeUndefined()
  })

  it("a queued delete that another node's newer write superseded is dropped when Redis returns: it does not wipe that write", async () => {
    // Redis is unreachable for A only (its store fails every call), so B writes while A's delete waits.
    await a.close()
    const gated = gatedStore(redisStore({ url: server!.url }))
    a = createCache({
      namespace,
      l2: gated.store,
      bus: redisBus({ url: server!.url }),
      l2Timeout: '200ms',
      circuitBreaker: false,
    })
    await a.ready()
    await b.set('k', 1)
    expect(await a.get('k')).toBe(1)
    const unreachable = new Error('connect ECONNREFUSED (a test: Redis unreachable for A)')
    for (const operation of STORE_OPERATIONS) gated.fail(operation, unreachable)
    await expect(a.delete('k')).resolves.toBeUndefined()
    expect(a.stats().pending).toBe(1)
    expect(await a.get('k')).toBeUndefined()
    // B's write comes after A's delete: the newer one, and the one L2 must keep.
    await untilDelivered([a], () => b.set('k', 2))
    expect(await rawGet(`${namespace}:k`)).not.toMatch(/^t[0-9a-f]{15}$/)
    const callsBefore = totalCalls(gated.calls)
    for (const operation of STORE_OPERATIONS) gated.fail(operation, undefined)
    await eventually(() => a.stats().pending === 0, 15_000, "A's queued delete to be retried")
    expect(totalCalls(gated.calls)).toBeGreaterThan(callsBefore) // the retry reached Redis
    expect(a.stats().recovered).toBe(1)
    // L2 still holds B's value: no tombstone, and a node with an empty L1 reads 2.
    expect(await rawGet(`${namespace}:k`)).not.toMatch(/^t[0-9a-f]{15}$/)
    const fresh = createCache({ namespace, l2: redisStore({ url: server!.url }), l2Timeout: '200ms' })
    try {
      expect(await fresh.get('k')).toBe(2)
    } finally {
      await fresh.close()
    }
    expect(await a.get('k')).toBe(2)
    expect(await b.get('k')).toBe(2)
  })

  it('an invalidateTags during the outage bumps the tag in L2 once Redis is back', async () => {
    const started = Date.now()
    await a.set('tagged', 'v1', { tags: ['group'] })
    await a.set('untagged', 'u1')
    // B reads v1 into its L1 (a read that missed the 200 ms l2Timeout on a loaded machine is retried).
    await eventually(async () => (await b.get('tagged')) === 'v1', 10_000, 'B to read v1')
    expect(await b.get('tagged')).toBe('v1')

    await outage(async () => {
      await expect(a.invalidateTags(['group'])).resolves.toBeUndefined()
      expect(a.stats().pending).toBeGreaterThan(0)
      expect(await a.get('tagged')).toBeUndefined()
    })

    const answers = await readWhileRecovering(a, 'tagged')
    expect(answers.filter((answer) => answer !== undefined)).toEqual([])
    await eventually(async () => (await b.get('tagged')) === undefined, 10_000, 'B to see the invalidation')
    expect(a.stats().pending).toBe(0)
    expect(a.stats().recovered).toBeGreaterThan(0)
    // Generations are version-clock readings (ms × 4096): this one was proposed during the outage.
    const gen = Number(await rawGet(`${namespace}#t:group`))
    expect(gen).toBeGreaterThanOrEqual(Math.floor(started) * 4096)

    // After the recovery, tags work across the nodes as before.
    await b.set('tagged', 'v2', { tags: ['group'] })
    expect(await a.get('tagged')).toBe('v2')
    await b.invalidateTags(['group'])
    await eventually(
      async () => (await a.get('tagged')) === undefined,
      3000,
      'A to see the next invalidation',
    )
  })

  it('an outage that loses no data: A never reads the values its delete, invalidateTags and set replaced', async () => {
    await a.set('deleted', 'old')
    await a.set('tagged', 'old', { tags: ['group'] })
    await a.set('overwritten', 'old')
    for (const key of ['deleted', 'tagged', 'overwritten']) expect(await b.get(key)).toBe('old')

    // SIGTERM: the server writes its append-only file and comes back with every key.
    await server!.kill('SIGTERM')
    await a.delete('deleted')
    await a.invalidateTags(['group'])
    await a.set('overwritten', 'new')
    expect(a.stats().pending).toBe(3)
    expect(await a.get('deleted')).toBeUndefined()
    expect(await a.get('tagged')).toBeUndefined()
    expect(await a.get('overwritten')).toBe('new')
    await server!.start()
    expect(await rawGet(`${namespace}:deleted`)).toContain('old') // L2 still has what A replaced

    // While the retries have not landed, L2 still holds 'old' for all three: A must not read it.
    const answers: Record<string, unknown[]> = { deleted: [], tagged: [], overwritten: [] }
    await eventually(
      async () => {
        for (const key of Object.keys(answers)) answers[key]!.push(await a.get(key))
        return a.stats().pending === 0
      },
      15_000,
      'the pending writes to go out',
    )
    for (const key of Object.keys(answers)) answers[key]!.push(await a.get(key))
    expect(answers.deleted!.filter((answer) => answer !== undefined)).toEqual([])
    expect(answers.tagged!.filter((answer) => answer !== undefined)).toEqual([])
    expect(answers.overwritten!.filter((answer) => answer !== 'new')).toEqual([])
    expect(a.stats().recovered).toBeGreaterThanOrEqual(3)

    // And B, which held 'old' for all three in L1, converges on A's writes.
    await eventually(async () => (await b.get('deleted')) === undefined, 10_000, 'B to see the delete')
    await eventually(async () => (await b.get('tagged')) === undefined, 10_000, 'B to see the invalidation')
    await eventually(async () => (await b.get('overwritten')) === 'new', 10_000, 'B to see the set')
    expect(await rawGet(`${namespace}:deleted`)).toMatch(/^t[0-9a-f]{15}$/)
  })
})
