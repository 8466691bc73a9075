import { afterEach, describe, expect, it } from 'vitest'
import { type Cache, createCache, memoryStore } from '../src/index.js'

const caches: Cache[] = []
afterEach(async () => {
  await Promise.all(caches.splice(0).map((c) => c.close()))
})

const samples: [string, unknown, (v: unknown) => void][] = [
  ['null', null, () => {}],
  ['booleans', [true, false], () => {}],
  [
    'special numbers',
    [0, -0, 1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 2 ** 53],
    (v) => {
      expect(Object.is((v as number[])[1], -0)).toBe(true)
    },
  ],
  ['strings', ['', 'héllo', '😀', '\u0000'], () => {}],
  ['a Date', new Date('2024-02-29T12:34:56.789Z'), (v) => expect(v).toBeInstanceOf(Date)],
  [
    'a Map',
    new Map<unknown, unknown>([
      ['a', 1],
      [2, { b: [3] }],
    ]),
    (v) => expect(v).toBeInstanceOf(Map),
  ],
  ['a Set', new Set([1, 'two', 3n]), (v) => expect(v).toBeInstanceOf(Set)],
  ['a BigInt', -(2n ** 100n) + 7n, (v) => expect(typeof v).toBe('bigint')],
  ['a Buffer', Buffer.from([0, 1, 2, 255]), (v) => expect(Buffer.isBuffer(v)).toBe(true)],
  [
    'a Uint8Array',
    new Uint8Array([9, 8, 7]),
    (v) => {
      expect(v).toBeInstanceOf(Uint8Array)
      expect(Buffer.isBuffer(v)).toBe(false)
    },
  ],
  [
    'undefined inside an object',
    { a: undefined, b: 1 },
    (v) => expect(Object.keys(v as object)).toEqual(['a', 'b']),
  ],
  ['undefined inside an array', [1, undefined, 3], () => {}],
  [
    'nested mix',
    {
      when: new Date(0),
      tags: new Set(['x']),
      meta: new Map([['n', 1n]]),
      raw: Buffer.from('hi'),
      list: [{ a: null }],
    },
    () => {},
  ],
]

describe.each(samples)('%s round-trips', (_name, value, checkType) => {
  it('from L1 and from L2, as equal values of the same types', async () => {
    const l2 = memoryStore()
    const writer = createCache({ namespace: 'values', l2 })
    const reader = createCache({ namespace: 'values', l2 })
    caches.push(writer, reader)
    await writer.set('k', value)
    const fromL1 = await writer.get('k')
    const fromL2 = await reader.get('k')
    expect(writer.stats().l1.hits).toBe(1)
    expect(reader.stats().l2.hits).toBe(1)
    for (const got of [fromL1, fromL2]) {
      expect(got).toStrictEqual(value)
      checkType(got)
    }
  })
})

describe('mutation isolation', () => {
  it('mutating a value returned by get does not change what the next caller gets', async () => {
    const cache = createCache({ namespace: 'iso', l2: memoryStore() })
    caches.push(cache)
    const original = { user: { name: 'Ada', roles: ['admin'] }, seen: new Set([1]), when: new Date(0) }
    await cache.set('k', original)
    original.user.name = 'changed by the writer after set'
    const first = (await cache.get('k')) as typeof original
    first.user.name = 'changed by a reader'
    first.user.roles.push('root')
    first.seen.add(2)
    first.when.setTime(42)
    const second = (await cache.get('k')) as typeof original
    expect(second).toStrictEqual({
      user: { name: 'Ada', roles: ['admin'] },
      seen: new Set([1]),
      when: new Date(0),
    })
  })

  it('each getOrSet waiter gets its own copy, and the loader keeps no reference into the cache', async () => {
    const cache = createCache({ namespace: 'iso' })
    caches.push(cache)
    const loaded = { list: [1, 2] }
    const [a, b] = await Promise.all([
      cache.getOrSet('k', async () => loaded),
      cache.getOrSet('k', async () => loaded),
    ])
    a!.list.push(3)
    loaded.list.push(4)
    expect(b!.list).toEqual([1, 2])
    expect(await cache.get('k')).toEqual({ list: [1, 2] })
  })

  it('with l1: false, callers that share one L2 read each get their own object', async () => {
    // A value read from L2 that no tier keeps is handed to a lone caller without a copy; callers that
    // joined the same read must still not see each other's mutations.
    const cache = createCache({ namespace: 'iso', l1: false, l2: memoryStore() })
    caches.push(cache)
    await cache.set('k', { list: [1] })
    const [a, b, c] = (await Promise.all([cache.get('k'), cache.get('k'), cache.get('k')])) as {
      list: number[]
    }[]
    expect(cache.stats().l2.sharedReads).toBe(2)
    a!.list.push(2)
    b!.list.push(3)
    expect(c!.list).toEqual([1])
    expect(new Set([a, b, c]).size).toBe(3)
    const alone = (await cache.get('k')) as { list: number[] }
    alone.list.push(4)
    expect(await cache.get('k')).toEqual({ list: [1] })
  })
})

describe("l1.isolation: 'freeze'", () => {
  it('shares one deep-frozen copy of plain data; mutating it throws and changes nothing', async () => {
    const cache = createCache({
      namespace: 'freeze',
      l1: { maxEntries: 10, isolation: 'freeze' },
      l2: memoryStore(),
    })
    caches.push(cache)
    const original = { user: { name: 'Ada', roles: ['admin'] } }
    await cache.set('k', original)
    expect(Object.isFrozen(original)).toBe(false) // the caller's object is left alone
    const first = (await cache.get('k')) as typeof original
    const second = (await cache.get('k')) as typeof original
    expect(first).toBe(second) // no copy
    expect(Object.isFrozen(first.user.roles)).toBe(true)
    expect(() => {
      first.user.name = 'changed'
    }).toThrow(TypeError)
    expect(() => first.user.roles.push('root')).toThrow(TypeError)
    expect(await cache.get('k')).toEqual({ user: { name: 'Ada', roles: ['admin'] } })
  })

  it('hits follow writes, deletes and tag invalidations of the shared frozen value', async () => {
    const cache = createCache({ namespace: 'freeze', l1: { maxEntries: 10, isolation: 'freeze' } })
    caches.push(cache)
    await cache.set('k', { v: 1 }, { tags: ['t'] })
    await cache.set('u', { v: 'untagged' })
    expect(await cache.get('k')).toEqual({ v: 1 })
    await cache.set('k', { v: 2 }, { tags: ['t'] })
    expect(await cache.get('k')).toEqual({ v: 2 })
    expect(await cache.get('k')).toBe(await cache.get('k'))
    await cache.invalidateTags(['t'])
    expect(await cache.get('k')).toBeUndefined()
    expect(await cache.get('u')).toEqual({ v: 'untagged' })
    await cache.delete('u')
    expect(await cache.get('u')).toBeUndefined()
  })

  it('still copies values that freezing cannot protect (Map, Set, Date, binary)', async () => {
    const cache = createCache({ namespace: 'freeze', l1: { maxEntries: 10, isolation: 'freeze' } })
    caches.push(cache)
    await cache.set('k', { seen: new Set([1]), when: new Date(0) })
    const first = (await cache.get('k')) as { seen: Set<number>; when: Date }
    first.seen.add(2)
    first.when.setTime(5)
    expect(await cache.get('k')).toEqual({ seen: new Set([1]), when: new Date(0) })
  })

  it('rejects an unknown isolation mode', () => {
    expect(() => createCache({ l1: { isolation: 'share' as never } })).toThrow(
      expect.objectContaining({ code: 'E_INVALID_OPTION', option: 'l1.isolation' }),
    )
  })
})
