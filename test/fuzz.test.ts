/**
 * Fuzzing what reaches a node from outside (guarantee 7): random and mutated bus messages, L2 entries,
 * envelopes, stamps and option objects, with fast-check (seeded, so a failure reproduces). Mutations
 * start from the real formats and hit every field: byte flips at every offset, truncation at every
 * length, runs of 0xff, and the special doubles (NaN, ±Infinity, 2^53, 1e300, -0, ...) in every number
 * field. After each batch: the process is up, no exception escaped (vitest fails on unhandled ones),
 * what a node remembers is bounded, and the fleet still works (writes land in L2, invalidations, tags
 * and clear reach every node).
 */

import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import fc from 'fast-check'
import { createClient } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeHeartbeat, encodeMessage, MessageKind, NODE_ID_BYTES } from '../src/bus/wire.js'
import { encodeEnvelope } from '../src/coherence/envelope.js'
import {
  type Cache,
  type CacheOptions,
  CoherentError,
  createCache,
  memoryBus,
  memoryStore,
} from '../src/index.js'
import { redisBus, redisStore } from '../src/redis.js'
import { encode } from '../src/serialization/codec.js'
import { type RedisServer, startRedis } from '../tools/redis-server.js'
import { settle } from './support/nodes.js'
import { uniqueNamespace } from './support/redis-fleet.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const SPECIAL_DOUBLES = [
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  2 ** 53,
  2 ** 53 + 2,
  1e300,
  -1e300,
  -0,
  -1,
  0.5,
  Number.MAX_SAFE_INTEGER,
  Number.MIN_VALUE,
]
const origin = Buffer.alloc(NODE_ID_BYTES, 0xab)
const seed = Number(process.env.FUZZ_SEED ?? 20261204)

/** Numbers as a hostile peer would send them: special doubles, any double, plausible versions. */
const hostileNumber = fc.oneof(
  fc.constantFrom(...SPECIAL_DOUBLES),
  fc.double(),
  fc.integer({ min: -10, max: 10 }),
  fc.integer({ min: 0, max: 2 ** 31 }).map((ms) => (Date.now() + ms) * 4096),
)
const hostileName = fc.oneof(
  fc.constantFrom('n:', 't:group', 'k', 'n:users', 't:', '', '\u0001users\u00011'),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
)

/** Every byte-level mutation of `bytes`: flips, truncations, 0xff runs, a special double at an offset. */
function mutated(bytes: Buffer): fc.Arbitrary<Buffer> {
  const at = fc.nat({ max: Math.max(0, bytes.length - 1) })
  return fc.oneof(
    fc.tuple(at, fc.integer({ min: 1, max: 255 })).map(([i, mask]) => {
      const out = Buffer.from(bytes)
      if (out.length > 0) out[i] = out[i]! ^ mask
      return out
    }),
    fc.nat({ max: bytes.length }).map((length) => Buffer.from(bytes.subarray(0, length))),
    fc
      .tuple(at, fc.integer({ min: 1, max: 64 }))
      .map(([i, run]) => Buffer.concat([bytes.subarray(0, i), Buffer.alloc(run, 0xff), bytes.subarray(i)])),
    fc.tuple(at, fc.constantFrom(...SPECIAL_DOUBLES)).map(([i, value]) => {
      const out = Buffer.from(bytes)
      if (i + 8 <= out.length) out.writeDoubleBE(value, i)
      return out
    }),
    fc.uint8Array({ maxLength: 200 }).map((random) => Buffer.from(random)),
  )
}

/** A real message of either kind, with hostile names and numbers. */
const message = fc
  .tuple(
    fc.constantFrom(MessageKind.Keys, MessageKind.Stamps),
    fc.array(fc.tuple(hostileName, hostileNumber), { maxLength: 8 }),
  )
  .map(([kind, items]) =>
    encodeMessage({ kind, origin, names: items.map(([n]) => n), numbers: items.map(([, v]) => v) }),
  )
const busBytes = fc.oneof(
  message,
  message.chain(mutated),
  fc.jsonValue().map((report) => encodeHeartbeat(origin, JSON.stringify(report))),
  fc.string().map((body) => encodeHeartbeat(origin, body)),
)

/** A real envelope with hostile times, stamps and generations, its bytes mutated or not. */
const envelope = fc
  .record({
    writtenAt: hostileNumber,
    freshUntil: hostileNumber,
    staleUntil: hostileNumber,
    loadMs: fc.integer({ min: -5, max: 2 ** 33 }),
    namespacePath: fc.oneof(fc.constant(''), fc.constant('users'), fc.string({ maxLength: 10 })),
    stamps: fc.array(fc.tuple(hostileName, hostileNumber), { maxLength: 5 }),
    value: fc.oneof(fc.jsonValue(), fc.constant(undefined)),
  })
  .map((e) => {
    const now = Date.now()
    const fresh = { writtenAt: now, freshUntil: now + 60_000, staleUntil: now + 60_000 }
    return encodeEnvelope(
      {
        ...fresh,
        ...(Number.isNaN(e.writtenAt) ? {} : { writtenAt: e.writtenAt }),
        loadMs: e.loadMs,
        namespacePath: e.namespacePath,
        stampKeys: ['n:', ...e.stamps.map(([n]) => n)],
        stampGens: [0, ...e.stamps.map(([, g]) => g)],
      },
      encode(e.value ?? null),
    )
  })
const envelopeBytes = fc.oneof(envelope, envelope.chain(mutated))

/** Two nodes that share one L2 and one bus; `b` is the one fed hostile input. */
interface Pair {
  a: Cache
  b: Cache
  namespace: string
  inject: (bytes: Uint8Array) => Promise<void>
  close: () => Promise<void>
}

/** The fleet still works: writes land, invalidations, tags and clear reach the other node. */
async function fleetWorks({ a, b }: Pair, round: string): Promise<void> {
  const eventually = async (read: () => Promise<unknown>, expected: unknown) => {
    await expect.poll(read, { timeout: 5_000 }).toEqual(expected)
  }
  await a.set(`ok:${round}`, 'from a', { tags: ['fuzz'] })
  await eventually(() => b.get(`ok:${round}`), 'from a')
  await b.set(`ok:${round}`, 'from b', { tags: ['fuzz'] })
  await eventually(() => a.get(`ok:${round}`), 'from b')
  await eventually(() => b.get(`ok:${round}`), 'from b')
  await a.invalidateTags(['fuzz'])
  await eventually(() => b.get(`ok:${round}`), undefined)
  await b.set(`plain:${round}`, 1)
  await eventually(() => a.get(`plain:${round}`), 1)
  await a.clear()
  await eventually(() => b.get(`plain:${round}`), undefined)
  expect(b.stats().pending).toBe(0)
}

function heap(): number {
  gc()
  return process.memoryUsage().heapUsed
}

function memoryPair(): Pair {
  const l2 = memoryStore()
  const bus = memoryBus()
  const namespace = uniqueNamespace('fuzz')
  const a = createCache({ namespace, l2, bus })
  const b = createCache({ namespace, l2, bus })
  return {
    a,
    b,
    namespace,
    inject: async (bytes) => {
      await bus.publish(`coherent:${namespace}`, bytes)
      await settle()
    },
    close: () => Promise.all([a.close(), b.close()]).then(() => {}),
  }
}

describe('fuzzing bus messages', () => {
  it('random and mutated messages of every kind: nothing escapes, memory stays bounded, the fleet works', async () => {
    const pair = memoryPair()
    try {
      await Promise.all([pair.a.ready(), pair.b.ready()])
      await fleetWorks(pair, 'before')
      const before = heap()
      await fc.assert(
        fc.asyncProperty(fc.array(busBytes, { minLength: 1, maxLength: 5 }), async (batch) => {
          for (const bytes of batch) await pair.inject(bytes)
          // Every node still answers reads; its stats are numbers.
          await pair.b.get('k')
          const { bus } = pair.b.stats()
          for (const n of [bus.received, bus.dropped, bus.unknown, bus.rejected])
            expect(Number.isSafeInteger(n)).toBe(true)
        }),
        { seed, numRuns: 400 },
      )
      expect(pair.b.fleet().length).toBeLessThanOrEqual(1025)
      expect(heap() - before).toBeLessThan(64 << 20)
      await fleetWorks(pair, 'after')
    } finally {
      await pair.close()
    }
  }, 120_000)
})

describe('fuzzing L2 entries, envelopes and stamps (memoryStore)', () => {
  it('hostile entry bytes and versions, and hostile stamp values: reads never throw, writes still land', async () => {
    const pair = memoryPair()
    const l2 = (pair.a as unknown as { rt: { remote: { store: ReturnType<typeof memoryStore> } } }).rt.remote
      .store
    try {
      await Promise.all([pair.a.ready(), pair.b.ready()])
      await fc.assert(
        fc.asyncProperty(
          envelopeBytes,
          hostileNumber,
          fc.array(fc.tuple(fc.constantFrom('n:', 't:fuzz', 't:other'), hostileNumber), { maxLength: 3 }),
          async (bytes, version, stamps) => {
            const key = `${pair.namespace}:k`
            // Whatever the store holds, even numbers no correct node writes.
            await l2.set(key, bytes, Number.isFinite(version) ? Math.abs(Math.trunc(version)) : 0, 60_000)
            for (const [stamp, gen] of stamps) {
              await l2.bumpStamps(
                [`${pair.namespace}#${stamp}`],
                60_000,
                Number.isSafeInteger(gen) && gen >= 0 ? gen : 0,
              )
            }
            await expect(pair.b.get('k')).resolves.not.toThrow()
            await expect(pair.b.has('k')).resolves.toBeTypeOf('boolean')
            const loaded = await pair.b.getOrSet('k', async () => 'loaded')
            expect(loaded === 'loaded' || loaded !== undefined).toBe(true)
          },
        ),
        { seed, numRuns: 300 },
      )
      await fleetWorks(pair, 'after-l2')
    } finally {
      await pair.close()
    }
  }, 120_000)
})

describe('fuzzing L2 bytes on Redis', () => {
  let server: RedisServer
  let raw: ReturnType<typeof createClient>
  beforeAll(async () => {
    server = await startRedis()
    raw = createClient({ url: server.url })
    await raw.connect()
  })
  afterAll(async () => {
    await raw?.close()
    await server?.stop()
  })

  it('any value at entry and stamp keys, any header: nothing escapes, the key heals on the next write', async () => {
    const namespace = uniqueNamespace('fuzzredis')
    const conn = { url: server.url }
    const a = createCache({ namespace, l2: redisStore(conn), bus: redisBus(conn) })
    const b = createCache({ namespace, l2: redisStore(conn), bus: redisBus(conn) })
    const pair: Pair = {
      a,
      b,
      namespace,
      inject: async (bytes) => {
        await raw.publish(`coherent:${namespace}`, Buffer.from(bytes))
      },
      close: () => Promise.all([a.close(), b.close()]).then(() => {}),
    }
    try {
      await Promise.all([a.ready(), b.ready()])
      const header = fc.oneof(
        fc.constantFrom('ffffffffffffffff', '001fffffffffffff', 'tfffffffffffffff', 'zzzzzzzzzzzzzzzz', ''),
        fc
          .integer({ min: 0, max: 2 ** 31 })
          .map((ms) => ((Date.now() + ms) * 4096).toString(16).padStart(16, '0')),
      )
      const stampText = fc.oneof(
        fc.constantFrom('NaN', 'Infinity', '-1', '1e300', '9007199254740993', '', '12.5', 'abc'),
        hostileNumber.map(String),
      )
      await fc.assert(
        fc.asyncProperty(header, envelopeBytes, stampText, busBytes, async (head, body, stamp, bus) => {
          await raw.set(`${namespace}:k`, Buffer.concat([Buffer.from(head, 'latin1'), body]))
          await raw.set(`${namespace}#t:fuzz`, stamp)
          await pair.inject(bus)
          await expect(b.get('k')).resolves.not.toThrow()
          await b.set('k', 'healed', { tags: ['fuzz'] })
          expect(b.stats().pending).toBe(0)
          expect(await a.get('k')).toBe('healed')
        }),
        { seed, numRuns: 150 },
      )
      await fleetWorks(pair, 'after-redis')
    } finally {
      await pair.close()
    }
  }, 180_000)
})

describe('fuzzing options', () => {
  const names = [
    'namespace',
    'ttl',
    'jitter',
    'l1',
    'grace',
    'lock',
    'loader',
    'l2Timeout',
    'circuitBreaker',
    'loaderTimeout',
    'maxPendingWrites',
    'failSafeThrottle',
    'refreshAhead',
    'earlyRefresh',
    'distributedLock',
    'fleet',
    'random',
    'unknown',
  ]
  const value = fc.oneof(
    fc.anything(),
    fc.constantFrom(...SPECIAL_DOUBLES),
    fc.constantFrom('200000000000d', '30d', '1e300ms', '-5s', '5m', 'tinylfu', 'distributed', ''),
    fc.record({
      maxEntries: fc.anything(),
      policy: fc.anything(),
      ttl: fc.anything(),
      isolation: fc.anything(),
    }),
    fc.record({ soft: fc.anything(), hard: fc.anything() }),
  )

  it('createCache either makes a cache or throws E_INVALID_OPTION naming the option, nothing else', async () => {
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.constantFrom(...names), value, { maxKeys: 4 }), async (options) => {
        let cache: Cache | undefined
        try {
          cache = createCache(options as CacheOptions)
        } catch (err) {
          expect(err).toBeInstanceOf(CoherentError)
          expect((err as CoherentError).code).toBe('E_INVALID_OPTION')
          return
        }
        // A cache that was made works, whatever it was given.
        await cache.set('k', 1).catch((err) => {
          expect(err).toBeInstanceOf(CoherentError)
        })
        await cache.close()
      }),
      { seed, numRuns: 500 },
    )
  })
})
