import { afterEach, describe, expect, it } from 'vitest'
import { type Cache, createCache, ManualClock, memoryStore } from '../src/index.js'

let cache: Cache
afterEach(async () => {
  await cache?.close()
})

describe.each([
  ['L1 only', () => ({})],
  ['L1 + memory L2', () => ({ l2: memoryStore() })],
  ['memory L2 only', () => ({ l1: false as const, l2: memoryStore() })],
])('cache basics (%s)', (_name, tiers) => {
  it('returns undefined for a missing key and the value after set', async () => {
    cache = createCache({ namespace: 'basic', ...tiers() })
    expect(await cache.get('missing')).toBeUndefined()
    await cache.set('a', { n: 1 })
    expect(await cache.get('a')).toEqual({ n: 1 })
    expect(await cache.has('a')).toBe(true)
    expect(await cache.has('missing')).toBe(false)
  })

  it('overwrites, deletes and deletes many (read-your-writes)', async () => {
    cache = createCache({ namespace: 'basic', ...tiers() })
    await cache.set('a', 1)
    await cache.set('a', 2)
    expect(await cache.get('a')).toBe(2)
    await cache.delete('a')
    expect(await cache.get('a')).toBeUndefined()
    await cache.set('x', 'x')
    await cache.set('y', 'y')
    await cache.set('z', 'z')
    await cache.deleteMany(['x', 'y'])
    expect(await cache.get('x')).toBeUndefined()
    expect(await cache.get('y')).toBeUndefined()
    expect(await cache.get('z')).toBe('z')
  })

  it('clear() empties its namespace and children, not siblings', async () => {
    cache = createCache({ namespace: 'basic', ...tiers() })
    const users = cache.namespace('users')
    const admins = users.namespace('admins')
    const posts = cache.namespace('posts')
    await users.set('1', 'ada')
    await admins.set('1', 'root')
    await posts.set('1', 'hello')
    await cache.set('top', true)
    await users.clear()
    expect(await users.get('1')).toBeUndefined()
    expect(await admins.get('1')).toBeUndefined()
    expect(await posts.get('1')).toBe('hello')
    expect(await cache.get('top')).toBe(true)
    await users.set('1', 'grace')
    expect(await users.get('1')).toBe('grace')
    await cache.clear()
    expect(await posts.get('1')).toBeUndefined()
    expect(await users.get('1')).toBeUndefined()
    expect(await cache.get('top')).toBeUndefined()
  })

  it('namespaces isolate keys', async () => {
    cache = createCache({ namespace: 'basic', ...tiers() })
    await cache.namespace('a').set('k', 'in a')
    await cache.namespace('b').set('k', 'in b')
    expect(await cache.namespace('a').get('k')).toBe('in a')
    expect(await cache.namespace('b').get('k')).toBe('in b')
    expect(await cache.get('k')).toBeUndefined()
  })

  it('invalidateTags drops tagged entries only', async () => {
    cache = createCache({ namespace: 'basic', ...tiers() })
    await cache.set('u1', 'ada', { tags: ['user:1', 'users'] })
    await cache.set('u2', 'bob', { tags: ['user:2', 'users'] })
    await cache.set('other', 'keep')
    await cache.invalidateTags(['user:1'])
    expect(await cache.get('u1')).toBeUndefined()
    expect(await cache.get('u2')).toBe('bob')
    await cache.invalidateTags(['users'])
    expect(await cache.get('u2')).toBeUndefined()
    expect(await cache.get('other')).toBe('keep')
    // Writes after the invalidation are visible again.
    await cache.set('u1', 'ada2', { tags: ['user:1'] })
    expect(await cache.get('u1')).toBe('ada2')
  })

  it('entries read many times between invalidations stay exactly as current as their tags', async () => {
    // Hits answer from a shortcut that is valid until any stamp rises; each round reads every entry
    // twice (the second read takes the shortcut renewed by the first), then invalidates one tag.
    cache = createCache({ namespace: 'basic', ...tiers() })
    const tags = ['a', 'b', 'c', 'd']
    for (const tag of tags) await cache.set(tag, `value ${tag}`, { tags: [tag] })
    await cache.set('untagged', 'stays')
    const invalidated = new Set<string>()
    for (const victim of tags) {
      for (let read = 0; read < 2; read++) {
        for (const tag of tags) {
          expect(await cache.get(tag)).toBe(invalidated.has(tag) ? undefined : `value ${tag}`)
        }
        expect(await cache.get('untagged')).toBe('stays')
      }
      await cache.invalidateTags([victim])
      invalidated.add(victim)
    }
    for (const tag of tags) expect(await cache.get(tag)).toBeUndefined()
    const ns = cache.namespace('child')
    await ns.set('x', 1)
    expect(await ns.get('x')).toBe(1)
    expect(await ns.get('x')).toBe(1)
    await ns.clear()
    expect(await ns.get('x')).toBeUndefined()
  })
})

describe('TTL', () => {
  it('expires entries under an injected clock, with and without L2', async () => {
    for (const l2 of [undefined, 'memory'] as const) {
      const clock = new ManualClock()
      cache = createCache({ namespace: 'ttl', clock, ttl: '10s', l2: l2 && memoryStore({ clock }) })
      await cache.set('a', 1)
      await cache.set('b', 2, { ttl: '30s' })
      clock.advance(9_999)
      expect(await cache.get('a')).toBe(1)
      clock.advance(1)
      expect(await cache.get('a')).toBeUndefined()
      expect(await cache.get('b')).toBe(2)
      clock.advance(20_000)
      expect(await cache.get('b')).toBeUndefined()
      await cache.close()
    }
  })

  it('spreads TTLs with jitter using the injected random source', async () => {
    const clock = new ManualClock()
    const draws = [0, 0.5, 0.999]
    cache = createCache({
      namespace: 'jitter',
      clock,
      ttl: 10_000,
      jitter: 0.1,
      random: () => draws.shift() ?? 0.5,
    })
    await cache.set('low', 1) // 10s × 0.9 = 9s
    await cache.set('mid', 1) // 10s × 1.0
    await cache.set('high', 1) // ≈ 10s × 1.1
    clock.advance(9_000)
    expect(await cache.get('low')).toBeUndefined()
    expect(await cache.get('mid')).toBe(1)
    clock.advance(1_000)
    expect(await cache.get('mid')).toBeUndefined()
    expect(await cache.get('high')).toBe(1)
    clock.advance(1_000)
    expect(await cache.get('high')).toBeUndefined()
  })
})

describe('read-through loader', () => {
  it('get() loads a miss with the configured loader and caches it', async () => {
    let calls = 0
    cache = createCache({
      namespace: 'rt',
      loader: async (key) => {
        calls++
        return `value of ${key}`
      },
    })
    expect(await cache.get('k')).toBe('value of k')
    expect(await cache.get('k')).toBe('value of k')
    expect(calls).toBe(1)
  })

  it('a loader returning undefined caches nothing', async () => {
    let calls = 0
    cache = createCache({ namespace: 'rt' })
    const load = async () => {
      calls++
      return undefined
    }
    expect(await cache.getOrSet('k', load)).toBeUndefined()
    expect(await cache.getOrSet('k', load)).toBeUndefined()
    expect(calls).toBe(2)
  })
})

describe('close', () => {
  it('rejects calls after close with E_CACHE_CLOSED', async () => {
    cache = createCache({ namespace: 'closed' })
    await cache.close()
    await expect(cache.get('a')).rejects.toMatchObject({ code: 'E_CACHE_CLOSED' })
    await expect(cache.set('a', 1)).rejects.toMatchObject({ code: 'E_CACHE_CLOSED' })
  })
})
