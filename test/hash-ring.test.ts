import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { HashRing, ringHash } from '../src/ring/hash-ring.js'
import { xxh32, xxh32String } from '../src/ring/xxhash32.js'

const KEYS = 1_000_000

/** How many of `keys` keys each member of `ring` owns. */
function loads(ring: HashRing, keys = KEYS): Map<string, number> {
  const counts = new Map<string, number>(ring.members().map((name) => [name, 0]))
  for (let i = 0; i < keys; i++) {
    const owner = ring.get(`user:${i}`)!
    counts.set(owner, counts.get(owner)! + 1)
  }
  return counts
}

function owners(ring: HashRing, keys: number): string[] {
  return Array.from({ length: keys }, (_, i) => ring.get(`user:${i}`)!)
}

describe('xxHash32', () => {
  it('matches the published vectors of the reference implementation', () => {
    // xxHash's own sanity test (cli/xsum_sanity_check.c): a buffer from a multiplicative byte generator,
    // hashed at several lengths with seed 0 and seed PRIME32_1.
    const prime32 = 0x9e3779b1
    const buffer = new Uint8Array(256)
    let gen = BigInt(prime32)
    for (let i = 0; i < buffer.length; i++) {
      buffer[i] = Number(gen >> 56n)
      gen = (gen * 11400714785074694797n) & 0xffffffffffffffffn
    }
    const vectors: [number, number, number][] = [
      [0, 0, 0x02cc5d05],
      [0, prime32, 0x36b78ae7],
      [1, 0, 0xcf65b03e],
      [1, prime32, 0xb4545aa4],
      [14, 0, 0x1208e7e2],
      [14, prime32, 0x6af1d1fe],
      [222, 0, 0x5bd11dbd],
      [222, prime32, 0x58803c5f],
    ]
    for (const [length, seed, expected] of vectors) expect(xxh32(buffer, length, seed)).toBe(expected)
  })

  it('hashes strings as UTF-8, as `xxhsum -H0` does', () => {
    // Each value is what `printf '<string>' | xxhsum -H0` (xxhsum 0.8.1) prints.
    const vectors: [string, number][] = [
      ['', 0x02cc5d05],
      ['a', 0x550d7456],
      ['abc', 0x32d153ff],
      ['0123456789abcde', 0x1dbdfa0f],
      ['0123456789abcdef', 0xc2c45b69],
      ['Nobody inspects the spammish repetition', 0xe2293b2f],
      ['The quick brown fox jumps over the lazy dog', 0xe85ea4de],
      ['héllo wörld — ✓ 😀', 0x5ffb220c],
      // a lone surrogate is hashed as U+FFFD (EF BF BD), as TextEncoder encodes it
      ['abc\ud800', 0x5927c313],
    ]
    for (const [input, expected] of vectors) expect(xxh32String(input)).toBe(expected)
    const all = Uint8Array.from({ length: 256 }, (_, i) => i)
    expect(xxh32(all)).toBe(0x59441253)
    expect(ringHash('abc')).toBe(0x32d153ff)
  })

  it('agrees with TextEncoder on long and mixed strings', () => {
    const samples = ['x'.repeat(1000), 'é'.repeat(300), '😀'.repeat(200), 'k:\u0000\u07ff\u0800\uffff']
    for (const s of samples) expect(xxh32String(s)).toBe(xxh32(new TextEncoder().encode(s)))
  })
})

describe('HashRing', () => {
  it.each([3, 5, 10])('spreads 1M keys over %i members within 10%% of the mean', (n) => {
    const ring = new HashRing(Array.from({ length: n }, (_, i) => `redis-${i + 1}`))
    const counts = [...loads(ring).values()]
    expect(counts).toHaveLength(n)
    expect(Math.max(...counts)).toBeLessThanOrEqual(1.1 * (KEYS / n))
  })

  it('gives weighted members load in proportion to their weight', () => {
    const ring = new HashRing([
      { name: 'small', weight: 1 },
      { name: 'medium', weight: 2 },
      { name: 'large', weight: 4 },
    ])
    const counts = loads(ring)
    const unit = KEYS / 7
    expect(counts.get('small')! / unit).toBeCloseTo(1, 0)
    expect(counts.get('medium')! / (2 * unit)).toBeGreaterThan(0.93)
    expect(counts.get('medium')! / (2 * unit)).toBeLessThan(1.07)
    expect(counts.get('large')! / (4 * unit)).toBeGreaterThan(0.95)
    expect(counts.get('large')! / (4 * unit)).toBeLessThan(1.05)
    expect(counts.get('small')! / unit).toBeGreaterThan(0.9)
    expect(counts.get('small')! / unit).toBeLessThan(1.1)
    // changing a weight moves keys only to or from that member
    const before = owners(ring, 100_000)
    ring.add('small', 2)
    const after = owners(ring, 100_000)
    for (let i = 0; i < before.length; i++) if (before[i] !== after[i]) expect(after[i]).toBe('small')
  })

  it.each([3, 5, 10])('adding an %i+1th member moves about 1/(N+1) of the keys, all to it', (n) => {
    const names = Array.from({ length: n }, (_, i) => `node-${i}`)
    const ring = new HashRing(names)
    const keys = 200_000
    const before = owners(ring, keys)
    ring.add('newcomer')
    const after = owners(ring, keys)
    let moved = 0
    for (let i = 0; i < keys; i++) {
      if (before[i] === after[i]) continue
      moved++
      expect(after[i]).toBe('newcomer')
    }
    expect(moved / keys).toBeGreaterThan((1 / (n + 1)) * 0.9)
    expect(moved / keys).toBeLessThan((1 / (n + 1)) * 1.1)
  })

  it('removing a member moves only its keys, and adding it back restores the mapping', () => {
    const ring = new HashRing(['a', 'b', 'c', 'd', 'e'])
    const keys = 200_000
    const before = owners(ring, keys)
    expect(ring.remove('c')).toBe(true)
    expect(ring.remove('c')).toBe(false)
    const after = owners(ring, keys)
    for (let i = 0; i < keys; i++) {
      if (before[i] === 'c') expect(after[i]).not.toBe('c')
      else expect(after[i]).toBe(before[i])
    }
    ring.add('c')
    expect(owners(ring, keys)).toEqual(before)
  })

  it('maps by member names, whatever order they were added in', () => {
    const names = Array.from({ length: 12 }, (_, i) => `shard-${i}`)
    const forward = new HashRing(names)
    const backward = new HashRing([...names].reverse())
    const incremental = new HashRing()
    for (const name of [...names].sort(() => 0.5 - Math.random())) incremental.add(name)
    // built up through adds and removes that cross bucket resizes
    const churned = new HashRing(['x1', 'x2', 'x3', ...names.slice(0, 4)])
    for (const name of names.slice(4)) churned.add(name)
    for (const name of ['x1', 'x2', 'x3']) churned.remove(name)
    const expected = owners(forward, 50_000)
    expect(owners(backward, 50_000)).toEqual(expected)
    expect(owners(incremental, 50_000)).toEqual(expected)
    expect(owners(churned, 50_000)).toEqual(expected)
  })

  it('computes the same mapping in a child process', () => {
    const names = ['10.0.0.1:6379', '10.0.0.2:6379', '10.0.0.3:6379', 'cache-é', 'cache-😀']
    const script = `
      import { HashRing } from './src/ring/hash-ring.ts'
      const ring = new HashRing(${JSON.stringify(names)}.map((name, i) => ({ name, weight: 1 + (i % 2) })))
      const out = []
      for (let i = 0; i < 20000; i++) out.push(ring.get('user:' + i))
      process.stdout.write(JSON.stringify(out))
    `
    const child = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: new URL('..', import.meta.url).pathname,
      encoding: 'utf8',
      maxBuffer: 16 << 20,
    })
    const ring = new HashRing(names.map((name, i) => ({ name, weight: 1 + (i % 2) })))
    expect(JSON.parse(child)).toEqual(owners(ring, 20_000))
  })

  it('finds the next accepted member clockwise, each member asked once', () => {
    const ring = new HashRing(['a', 'b', 'c', 'd'])
    for (let i = 0; i < 300; i++) {
      const key = `k${i}`
      const asked: string[] = []
      const found = ring.find(key, (member) => {
        asked.push(member)
        return member !== ring.get(key)
      })
      expect(asked[0]).toBe(ring.get(key))
      expect(new Set(asked).size).toBe(asked.length)
      expect(found).not.toBe(ring.get(key))
      // what the ring without the owner says
      const without = new HashRing(ring.members().filter((m) => m !== ring.get(key)))
      expect(found).toBe(without.get(key))
    }
    expect(ring.find('k', () => false)).toBeUndefined()
    expect(new HashRing().find('k', () => true)).toBeUndefined()
    expect(new HashRing().get('k')).toBeUndefined()
  })

  it('validates its options', () => {
    expect(() => new HashRing([], { vnodes: 0 })).toThrow(/vnodes/)
    expect(() => new HashRing(['a', 'a'])).toThrow(/members\[1\]\.name/)
    expect(() => new HashRing([{ name: 'a', weight: 0 }])).toThrow(/members\[0\]\.weight/)
    expect(() => new HashRing([''])).toThrow(/members\[0\]\.name/)
    const ring = new HashRing(['a'])
    expect(() => ring.add('b', Number.NaN)).toThrow(/weight/)
    expect(ring.size).toBe(1)
    expect(ring.has('a')).toBe(true)
    expect(ring.weight('a')).toBe(1)
  })
})
