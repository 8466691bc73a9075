import { afterEach, describe, expect, it } from 'vitest'
import { type Cache, CoherentError, createCache, memoryStore } from '../src/index.js'

let cache: Cache
afterEach(async () => {
  await cache?.close()
})

describe('invalid options', () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['unknown policy', { l1: { policy: 'mru' } }, 'l1.policy'],
    ['negative ttl', { ttl: -5 }, 'ttl'],
    ['zero ttl', { ttl: 0 }, 'ttl'],
    ['unparsable ttl', { ttl: '10 minutes' }, 'ttl'],
    ['ttl of the wrong type', { ttl: {} }, 'ttl'],
    ['NaN ttl', { ttl: Number.NaN }, 'ttl'],
    ['maxEntries 0', { l1: { maxEntries: 0 } }, 'l1.maxEntries'],
    ['fractional maxEntries', { l1: { maxEntries: 1.5 } }, 'l1.maxEntries'],
    ['negative maxBytes', { l1: { maxBytes: -1 } }, 'l1.maxBytes'],
    ['jitter above 1', { jitter: 1.5 }, 'jitter'],
    ['negative jitter', { jitter: -0.1 }, 'jitter'],
    ['jitter not a number', { jitter: '10%' }, 'jitter'],
    ['negative grace', { grace: '-1s' }, 'grace'],
    ['unknown lock', { lock: 'global' }, 'lock'],
    ['distributed lock without L2', { lock: 'distributed' }, 'lock'],
    ['loader not a function', { loader: 42 }, 'loader'],
    ['bad namespace', { namespace: 'a:b' }, 'namespace'],
    ['empty namespace', { namespace: '' }, 'namespace'],
    ['l2 not a store', { l2: {} }, 'l2'],
    ['bus not a bus', { bus: 'redis://' }, 'bus'],
    ['unknown option', { ttlMs: 5 }, 'ttlMs'],
    ['unknown l1 option', { l1: { size: 5 } }, 'l1.size'],
    ['bad l1.ttl', { l1: { ttl: '1 hour' } }, 'l1.ttl'],
  ]
  it.each(cases)('%s throws E_INVALID_OPTION naming the option', (_name, options, option) => {
    let thrown: unknown
    try {
      createCache(options as never)
    } catch (err) {
      thrown = err
    }
    expect(thrown).toBeInstanceOf(CoherentError)
    expect(thrown).toMatchObject({ code: 'E_INVALID_OPTION', option })
    expect((thrown as Error).message).toContain(option)
  })

  it('accepts every duration form', () => {
    for (const ttl of [250, '250ms', '30s', '10m', '2h', '1d', '1.5s']) {
      const c = createCache({ ttl: ttl as never })
      void c.close()
    }
  })
})

describe('invalid keys', () => {
  const cases: [string, unknown][] = [
    ['a number', 42],
    ['undefined', undefined],
    ['null', null],
    ['an object', { id: 1 }],
    ['an empty string', ''],
    ['a string over 1 KiB', 'k'.repeat(1025)],
    ['a string over 1 KiB in UTF-8 only', 'é'.repeat(513)],
  ]
  it.each(cases)('%s is rejected by every operation with E_INVALID_KEY', async (_name, key) => {
    cache = createCache({ namespace: 'keys', l2: memoryStore() })
    const k = key as string
    await cache.set('ok', 'kept')
    for (const call of [
      () => cache.get(k),
      () => cache.set(k, 1),
      () => cache.has(k),
      () => cache.delete(k),
      () => cache.deleteMany(['ok', k]),
      () => cache.getOrSet(k, async () => 1),
    ]) {
      await expect(call()).rejects.toMatchObject({ code: 'E_INVALID_KEY' })
    }
    // deleteMany validated every key before touching any.
    expect(await cache.get('ok')).toBe('kept')
  })

  it('a key of exactly 1 KiB is accepted', async () => {
    cache = createCache({ namespace: 'keys' })
    await cache.set('k'.repeat(1024), 1)
    expect(await cache.get('k'.repeat(1024))).toBe(1)
  })
})

describe('unserializable values', () => {
  const circular: Record<string, unknown> = { a: 1 }
  circular.self = circular
  class Point {
    constructor(
      public x: number,
      public y: number,
    ) {}
  }
  const cases: [string, unknown][] = [
    ['a function', () => 1],
    ['a nested function', { user: { callback: () => 1 } }],
    ['a symbol', Symbol('s')],
    ['a circular structure', circular],
    ['a class instance', { p: new Point(1, 2) }],
    ['top-level undefined', undefined],
  ]
  it.each(cases)(
    '%s is rejected with E_UNSERIALIZABLE_VALUE and nothing is written',
    async (_name, value) => {
      cache = createCache({ namespace: 'values', l2: memoryStore() })
      await cache.set('k', 'before')
      await expect(cache.set('k', value)).rejects.toMatchObject({ code: 'E_UNSERIALIZABLE_VALUE' })
      expect(await cache.get('k')).toBe('before')
      if (value !== undefined) {
        await expect(cache.getOrSet('other', async () => value)).rejects.toMatchObject({
          code: 'E_UNSERIALIZABLE_VALUE',
        })
        expect(await cache.get('other')).toBeUndefined()
      }
    },
  )
})

describe('invalid per-call options', () => {
  it('rejects bad ttl and tags at the call', async () => {
    cache = createCache({ namespace: 'calls' })
    await expect(cache.set('k', 1, { ttl: -1 })).rejects.toMatchObject({
      code: 'E_INVALID_OPTION',
      option: 'ttl',
    })
    await expect(cache.set('k', 1, { tags: 'user:1' as never })).rejects.toMatchObject({
      code: 'E_INVALID_OPTION',
      option: 'tags',
    })
    await expect(cache.invalidateTags([''])).rejects.toMatchObject({ code: 'E_INVALID_OPTION' })
    await expect(cache.getOrSet('k', 'not a function' as never)).rejects.toMatchObject({
      code: 'E_INVALID_OPTION',
    })
    expect(await cache.get('k')).toBeUndefined()
  })
})
