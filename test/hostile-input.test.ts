import { inspect } from 'node:util'
import { createClient, RESP_TYPES } from 'redis'
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest'
import { encodeMessage, MAX_ITEMS, MessageKind } from '../src/bus/wire.js'
import { type EnvelopeHeader, encodeEnvelope } from '../src/coherence/envelope.js'
import { type Cache, type CacheOptions, createCache, memoryBus, memoryStore } from '../src/index.js'
import { redisBus, redisStore } from '../src/redis.js'
import { encode } from '../src/serialization/codec.js'
import { type RedisServer, startRedis } from '../tools/redis-server.js'
import { gatedStore } from './support/faults.js'
import { settle, untilDelivered } from './support/nodes.js'
import { uniqueNamespace } from './support/redis-fleet.js'

// Issue 10, found as a tester would find them with a black-box probe against a private Redis: bytes from
// the bus or L2 are untrusted input, and none of them may poison a node (guarantee 7).

let server: RedisServer
let raw: ReturnType<typeof createClient>
beforeAll(async () => {
  server = await startRedis()
  raw = createClient({ url: server.url })
  raw.on('error', () => {}) // the restart test takes the server away; the client reconnects
  await raw.connect()
})
afterAll(async () => {
  await raw?.close()
  await server?.stop()
})

const caches: Cache[] = []
/** The nodes of each namespace, which a raw publish to that namespace's channel reaches. */
const fleets = new Map<string, Cache[]>()
afterEach(async () => {
  fleets.clear()
  await Promise.allSettled(caches.splice(0).map((cache) => cache.close()))
})

/** `count` nodes on the private Redis, one namespace (a new one unless `options.namespace`). */
async function nodes(count: number, options: CacheOptions = {}) {
  const namespace = options.namespace ?? uniqueNamespace('hostile')
  const made: Cache[] = []
  for (let i = 0; i < count; i++) {
    made.push(
      createCache({
        l2: redisStore({ url: server.url }),
        bus: redisBus({ url: server.url }),
        ...options,
        namespace,
      }),
    )
  }
  caches.push(...made)
  fleets.set(namespace, [...(fleets.get(namespace) ?? []), ...made])
  await Promise.all(made.map((node) => node.ready()))
  return { namespace, nodes: made }
}

const origin = Buffer.alloc(8, 0xee) // not any node's id
const SPECIAL = [
  2 ** 53,
  2 ** 53 + 2,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  1e300,
  Number.NaN,
  -1,
  0.5,
]

/** Publishes a hand-made message on the namespace's channel and waits until every node there took it in. */
async function publish(namespace: string, kind: number, names: string[], numbers: number[]) {
  await untilDelivered(fleets.get(namespace) ?? [], () =>
    raw.publish(`coherent:${namespace}`, encodeMessage({ kind: kind as 1 | 2, origin, names, numbers })),
  )
}

/** An L2 entry as redisStore writes it: 16 hex digits of `version`, then the envelope. */
function entryBytes(versionHex: string, value: unknown, header: Partial<EnvelopeHeader> = {}): Buffer {
  const now = Date.now()
  const envelope = encodeEnvelope(
    {
      writtenAt: now,
      loadMs: 0,
      freshUntil: now + 600_000,
      staleUntil: now + 600_000,
      namespacePath: '',
      stampKeys: ['n:'],
      stampGens: [0],
      ...header,
    },
    encode(value),
  )
  return Buffer.concat([Buffer.from(versionHex, 'latin1'), envelope])
}

/**
 * True if a write of `key` by `writer` reached L2 (nothing queued) and `reader` reads it (once the
 * invalidation has arrived, if the reader held an older value).
 */
async function writesLand(writer: Cache, reader: Cache, key: string): Promise<boolean> {
  const value = `v-${Math.random()}`
  await writer.set(key, value)
  if (writer.stats().pending !== 0) return false
  const deadline = Date.now() + 10_000
  while ((await reader.get(key)) !== value) {
    if (Date.now() > deadline) return false
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return true
}

describe('1. one number cannot stop the fleet writing', () => {
  it('a bus message with a version at or above 2^53, infinite, huge, NaN or negative is rejected', async () => {
    const {
      namespace,
      nodes: [a, b],
    } = await nodes(2, { maxPendingWrites: 2 })
    await a!.set('k', 'before')
    expect(await b!.get('k')).toBe('before')
    for (const version of SPECIAL) await publish(namespace, MessageKind.Keys, ['k'], [version])
    expect(b!.stats().bus.rejected).toBe(SPECIAL.length)
    // The key it named is still invalidated (a miss is harmless), and B goes on writing.
    expect(b!.stats().l1.size).toBe(0)
    for (let i = 0; i < 5; i++) expect(await writesLand(b!, a!, `after-${i}`)).toBe(true)
    expect(b!.stats().l2.errors).toBe(0)
    expect(b!.stats().pendingDropped).toBe(0)
  })

  it('a version from years ahead (a plausible-looking number) is rejected too', async () => {
    const {
      namespace,
      nodes: [a, b],
    } = await nodes(2)
    const yearsAhead = (Date.now() + 10 * 365 * 86_400_000) * 4096
    await publish(namespace, MessageKind.Keys, ['k'], [yearsAhead])
    expect(b!.stats().bus.rejected).toBe(1)
    expect(await writesLand(b!, a!, 'k')).toBe(true)
  })

  it('an L2 entry whose header holds a huge version is read as corrupt, and the next write replaces it', async () => {
    const {
      namespace,
      nodes: [a, b],
    } = await nodes(2)
    for (const header of ['ffffffffffffffff', '0020000000000000', '001fffffffffffff']) {
      await raw.set(`${namespace}:${header}`, entryBytes(header, 'garbage'))
      expect(await a!.get(header)).toBeUndefined()
      expect(await writesLand(a!, b!, header)).toBe(true)
      expect(await writesLand(a!, b!, 'other')).toBe(true)
    }
    expect(a!.stats().l2.corrupt).toBe(3)
    expect(a!.stats().l2.errors).toBe(0)
  })

  it('a garbage entry with a high header does not keep the key from caching: the loader fills it', async () => {
    const {
      namespace,
      nodes: [a, b],
    } = await nodes(2)
    const near = ((Date.now() + 60_000) * 4096).toString(16).padStart(16, '0') // plausible, a minute ahead
    for (const header of ['ffffffffffffffff', near]) {
      await raw.set(
        `${namespace}:g`,
        Buffer.concat([Buffer.from(header, 'latin1'), Buffer.from([0xff, 0xff])]),
      )
      let loads = 0
      const load = async () => `loaded ${++loads}`
      expect(await a!.getOrSet('g', load)).toBe('loaded 1')
      // The load's write replaced the garbage: another node reads it from L2 without loading.
      expect(await b!.getOrSet('g', load)).toBe('loaded 1')
      expect(loads).toBe(1)
      await a!.delete('g')
    }
  })

  it('a tombstone with a huge version is not adopted: writes of the key and of others land', async () => {
    const {
      namespace,
      nodes: [a, b],
    } = await nodes(2)
    await raw.set(`${namespace}:t`, 'tfffffffffffffff')
    expect(await writesLand(a!, b!, 't')).toBe(true)
    expect(await writesLand(b!, a!, 'u')).toBe(true)
  })
})

describe('2. NaN or Infinity generations cannot make entries immune to invalidation', () => {
  it('a stamps message with NaN for a tag is ignored: invalidateTags on a healthy node still works there', async () => {
    const {
      namespace,
      nodes: [a, b, c],
    } = await nodes(3)
    await publish(namespace, MessageKind.Stamps, ['t:group'], [Number.NaN])
    await publish(namespace, MessageKind.Stamps, ['t:group'], [Number.POSITIVE_INFINITY])
    expect(b!.stats().bus.rejected).toBe(2)
    await b!.set('k', 'v', { tags: ['group'] }) // the poisoned node writes: L2 must not record NaN
    expect(await a!.get('k')).toBe('v')
    expect(await b!.get('k')).toBe('v')
    await untilDelivered([b!, c!], () => a!.invalidateTags(['group']))
    expect(await b!.get('k')).toBeUndefined()
    expect(await c!.get('k')).toBeUndefined()
    // A node started later trusts nothing the invalidation removed.
    const [late] = (await nodes(1, { namespace })).nodes
    expect(await late!.get('k')).toBeUndefined()
  })

  it('Infinity for the namespace stamp cannot make entries survive clear()', async () => {
    const {
      namespace,
      nodes: [a, b],
    } = await nodes(2)
    await publish(namespace, MessageKind.Stamps, ['n:'], [Number.POSITIVE_INFINITY])
    await b!.set('k', 'v')
    expect(await a!.get('k')).toBe('v')
    await untilDelivered([b!], () => a!.clear())
    expect(await b!.get('k')).toBeUndefined()
    expect(await a!.get('k')).toBeUndefined()
  })

  it('an L2 entry recording NaN, Infinity or a negative generation is corrupt, not immune', async () => {
    const {
      namespace,
      nodes: [a],
    } = await nodes(1)
    const version = (Date.now() * 4096).toString(16).padStart(16, '0')
    for (const gen of [Number.NaN, Number.POSITIVE_INFINITY, -1, 2 ** 60]) {
      await raw.set(`${namespace}:k`, entryBytes(version, 'immune?', { stampGens: [gen] }))
      expect(await a!.get('k')).toBeUndefined()
    }
    expect(a!.stats().l2.corrupt).toBe(4)
  })

  it('an L2 entry without stamps, or with 30,000, is corrupt, and costs no 30,000-key read', async () => {
    const namespace = uniqueNamespace('stamps')
    const gated = gatedStore(redisStore({ url: server.url }))
    const a = createCache({ namespace, l2: gated.store })
    caches.push(a)
    const version = (Date.now() * 4096).toString(16).padStart(16, '0')
    await raw.set(`${namespace}:none`, entryBytes(version, 'x', { stampKeys: [], stampGens: [] }))
    const many = Array.from({ length: 30_000 }, (_, i) => `t:${i}`)
    await raw.set(
      `${namespace}:many`,
      entryBytes(version, 'x', { stampKeys: ['n:', ...many], stampGens: [0, ...many.map(() => 0)] }),
    )
    expect(await a.get('none')).toBeUndefined()
    expect(await a.get('many')).toBeUndefined()
    expect(gated.calls.getStamps ?? 0).toBe(0)
    expect(a.stats().l2.corrupt).toBe(2)
  })
})

describe('3. Redis losing its data does not disable clear() and tag invalidation', () => {
  for (const loss of ['FLUSHALL', 'a restart without persistence'] as const) {
    it(`after ${loss}, invalidateTags and clear still reach nodes that remember older generations`, async () => {
      // The bus on another Redis (the run's own), so that it stays connected while L2 loses its data and
      // the nodes keep what they know of the stamps.
      const {
        nodes: [a, b],
      } = await nodes(2, { bus: redisBus({ url: inject('redisUrl') }) })
      for (let i = 0; i < 3; i++) await a!.invalidateTags(['group'])
      for (let i = 0; i < 3; i++) await a!.clear()
      await a!.set('tagged', 'v1', { tags: ['group'] })
      await a!.set('plain', 'p1')
      expect(await b!.get('tagged')).toBe('v1')
      expect(await b!.get('plain')).toBe('p1')
      if (loss === 'FLUSHALL') await raw.flushAll()
      else await server.restart()
      // (After a restart, A's first calls may fail and be queued: then they go out when Redis answers.)
      await a!.invalidateTags(['group'])
      await expect.poll(() => b!.get('tagged'), { timeout: 10_000 }).toBeUndefined()
      expect(await b!.get('plain')).toBe('p1') // still in B's L1, untouched by the tag
      await a!.clear()
      await expect.poll(() => b!.get('plain'), { timeout: 10_000 }).toBeUndefined()
    })
  }

  it('a node that reads a generation lower than it knows bumps it again: nodes started later do not trust entries it invalidated', async () => {
    const {
      namespace,
      nodes: [a],
    } = await nodes(1)
    await a!.set('old', 'stale', { tags: ['group'] })
    await a!.invalidateTags(['group'])
    // The stale entry's bytes are put back (as if the invalidation had been the only thing lost), and the
    // stamp key is evicted.
    const buffers = raw.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer })
    await a!.set('old', 'stale', { tags: ['group'] })
    const staleBytes = await buffers.get(`${namespace}:old`)
    await a!.invalidateTags(['group'])
    await raw.set(`${namespace}:old`, staleBytes!)
    await raw.del(`${namespace}#t:group`)
    // A writes another entry of the tag: it reads the generation from L2, finds it lower, restores it.
    await a!.set('new', 'fresh', { tags: ['group'] })
    expect(a!.stats().l2.stampsRestored).toBe(1)
    const [late] = (await nodes(1, { namespace })).nodes
    expect(await late!.get('old')).toBeUndefined()
    expect(await late!.get('new')).toBe('fresh')
  })
})

describe('4. keys that differ only in lone surrogates', () => {
  it('are refused with E_INVALID_KEY, never mixed up', async () => {
    const cache = createCache({ l2: memoryStore() })
    caches.push(cache)
    for (const key of ['\ud800', '\udfff', 'a\ud800b', '\udc00\ud800']) {
      await expect(cache.get(key)).rejects.toMatchObject({ code: 'E_INVALID_KEY' })
      await expect(cache.set(key, 1)).rejects.toMatchObject({ code: 'E_INVALID_KEY' })
      await expect(cache.getOrSet(key, () => 1)).rejects.toMatchObject({ code: 'E_INVALID_KEY' })
      await expect(cache.delete(key)).rejects.toMatchObject({ code: 'E_INVALID_KEY' })
      await expect(cache.has(key)).rejects.toMatchObject({ code: 'E_INVALID_KEY' })
    }
    await expect(cache.set('k', 1, { tags: ['\ud800'] })).rejects.toMatchObject({ code: 'E_INVALID_OPTION' })
    await expect(cache.invalidateTags(['\udfff'])).rejects.toMatchObject({ code: 'E_INVALID_OPTION' })
    await cache.set('\ufffd', 'replacement char')
    await cache.set('😀', 'emoji')
    expect(await cache.get('\ufffd')).toBe('replacement char')
    expect(await cache.get('😀')).toBe('emoji')
  })
})

describe('5. a child namespace does not read root keys', () => {
  it("cache.set('users:1') and namespace('users').get('1') are different entries, in L1, L2 and on the bus", async () => {
    const {
      nodes: [a, b],
    } = await nodes(2)
    await a!.set('users:1', 'root')
    const users = a!.namespace('users')
    expect(await users.get('1')).toBeUndefined()
    await users.set('1', 'child')
    expect(await a!.get('users:1')).toBe('root')
    expect(await b!.namespace('users').get('1')).toBe('child')
    expect(await b!.get('users:1')).toBe('root')
    await untilDelivered([b!], () => users.clear())
    expect(await b!.get('users:1')).toBe('root')
    expect(await b!.namespace('users').get('1')).toBeUndefined()
    // A root key that starts with the character namespaced keys start with is a key like any other.
    await a!.set('\u0001users\u00011', 'tricky')
    await b!.namespace('users').set('1', 'child again')
    expect(await a!.get('\u0001users\u00011')).toBe('tricky')
    expect(await a!.namespace('users').get('1')).toBe('child again')
    await untilDelivered([b!], () => a!.delete('\u0001users\u00011'))
    expect(await b!.namespace('users').get('1')).toBe('child again')
  })
})

describe('6. absurd durations', () => {
  it("ttl: '200000000000d' or 1e300 means no expiry: the write lands, and tags and clear keep working", async () => {
    const {
      nodes: [a, b],
    } = await nodes(2)
    await a!.set('k', 'forever', { ttl: '200000000000d', tags: ['t'] })
    await a!.set('j', 'forever', { ttl: 1e300 })
    expect(a!.stats().pending).toBe(0)
    expect(await b!.get('k')).toBe('forever')
    await untilDelivered([b!], () => a!.invalidateTags(['t']))
    await untilDelivered([b!], () => a!.clear())
    expect(a!.stats().pending).toBe(0)
    expect(await b!.get('j')).toBeUndefined()
  })

  it("l2Timeout: '30d' and loaderTimeout.hard: '30d' do not overflow Node's timers", async () => {
    const {
      nodes: [a, b],
    } = await nodes(2, { l2Timeout: '30d', loaderTimeout: { hard: '30d' } })
    await a!.set('k', 'v')
    expect(a!.stats().bus.publishErrors).toBe(0)
    expect(await b!.get('k')).toBe('v')
    const slow = () => new Promise((resolve) => setTimeout(() => resolve('slow'), 50))
    expect(await a!.getOrSet('slow', slow)).toBe('slow')
  })
})

describe('8. bus messages and remembered state are bounded', () => {
  it('a message over 4 MiB, and one with more items than a node sends, are dropped unread and counted', async () => {
    const {
      namespace,
      nodes: [, b],
    } = await nodes(2)
    // (Redis itself disconnects a subscriber that falls far behind: client-output-buffer-limit pubsub.)
    const names = Array.from({ length: 300_000 }, (_, i) => `t:${i}`)
    const huge = encodeMessage({ kind: MessageKind.Stamps, origin, names, numbers: names.map(() => 1) })
    expect(huge.length).toBeGreaterThan(4 << 20)
    await raw.publish(`coherent:${namespace}`, huge)
    const many = Array.from({ length: MAX_ITEMS + 1 }, (_, i) => `k${i}`)
    await publish(
      namespace,
      MessageKind.Keys,
      many,
      many.map(() => 1),
    )
    await expect.poll(() => b!.stats().bus.dropped).toBe(2)
    expect(b!.stats().bus.received).toBe(0)
  })

  it('a flood of 20 MB messages with a million names each leaves the heap bounded', async () => {
    const bus = memoryBus()
    const node = createCache({ namespace: 'flood', bus })
    caches.push(node)
    await node.ready()
    const names = Array.from({ length: 1_000_000 }, (_, i) => `t:${i}`)
    const huge = encodeMessage({ kind: MessageKind.Stamps, origin, names, numbers: names.map(() => 1) })
    expect(huge.length).toBeGreaterThan(10 << 20)
    const before = process.memoryUsage().heapUsed
    for (let i = 0; i < 3; i++) await bus.publish('coherent:flood', huge)
    await settle()
    expect(node.stats().bus.dropped).toBe(3)
    // Nothing of them is decoded or kept: the heap grew by no more than a fraction of one message.
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(8 << 20)
  })

  it('a stamps message whose generation is not newer does not clear L1', async () => {
    const {
      namespace,
      nodes: [a, b],
    } = await nodes(2)
    await untilDelivered([b!], () => a!.clear()) // the root stamp moves: both nodes know its generation
    await a!.set('k', 'v')
    expect(await b!.get('k')).toBe('v')
    await publish(namespace, MessageKind.Stamps, ['n:'], [1]) // an old generation
    expect(b!.stats().l1.size).toBe(1)
    expect(await b!.get('k')).toBe('v')
  })

  it('deleteMany of more keys than one message may carry is announced in several messages', async () => {
    const bus = memoryBus()
    const l2 = memoryStore()
    const a = createCache({ namespace: 'many', l2, bus })
    const b = createCache({ namespace: 'many', l2, bus })
    caches.push(a, b)
    await Promise.all([a.ready(), b.ready()])
    const keys = Array.from({ length: MAX_ITEMS * 2 + 5 }, (_, i) => `k${i}`)
    for (const key of keys) await a.set(key, 1)
    for (const key of keys) expect(await b.get(key)).toBe(1)
    await a.deleteMany(keys)
    await settle()
    expect(b.stats().bus.dropped).toBe(0)
    for (const key of keys) expect(await b.get(key)).toBeUndefined()
  })
})

describe('9. secrets', () => {
  it('util.inspect(cache) does not print the Redis password', async () => {
    const url = `redis://default:s3cr3t-pa55@127.0.0.1:${server.port}`
    const cache = createCache({ l2: redisStore({ url }), bus: redisBus({ url }) })
    caches.push(cache)
    const shown = inspect(cache, { depth: 10 })
    expect(shown).not.toContain('s3cr3t-pa55')
    expect(shown).toContain('redis')
  })
})
