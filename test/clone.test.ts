import { describe, expect, it } from 'vitest'
import { UnserializableValueError } from '../src/errors.js'
import { cloneValue } from '../src/serialization/clone.js'
import { MAX_DEPTH } from '../src/serialization/codec.js'

describe('cloneValue: primitives are returned as they are', () => {
  it.each([
    ['string', 'hello'],
    ['number', 42],
    ['-0', -0],
    ['NaN', Number.NaN],
    ['boolean', true],
    ['null', null],
    ['undefined', undefined],
    ['bigint', 2n ** 100n],
  ])('%s', (_label, v) => {
    expect(Object.is(cloneValue(v), v)).toBe(true)
  })
})

describe('cloneValue: mutation isolation per container type', () => {
  it('plain object: changing, adding and deleting keys on the copy leaves the original alone', () => {
    const original = { a: 1, b: 'two', nested: { c: 3 } }
    const copy = cloneValue(original)
    expect(copy).toStrictEqual(original)
    expect(copy).not.toBe(original)
    copy.a = 100
    ;(copy as Record<string, unknown>).added = true
    delete (copy as Partial<typeof copy>).nested
    expect(original).toStrictEqual({ a: 1, b: 'two', nested: { c: 3 } })
  })

  it('nested objects are copied at every level', () => {
    const original = { l1: { l2: { l3: { value: 'deep' } } } }
    const copy = cloneValue(original)
    copy.l1.l2.l3.value = 'changed'
    expect(original.l1.l2.l3.value).toBe('deep')
    expect(copy.l1).not.toBe(original.l1)
    expect(copy.l1.l2.l3).not.toBe(original.l1.l2.l3)
  })

  it('keeps key order, undefined values and an own "__proto__" key', () => {
    const original = JSON.parse('{"z": 1, "__proto__": {"x": 1}, "a": null, "5": 5}') as Record<
      string,
      unknown
    >
    original.u = undefined
    const copy = cloneValue(original)
    expect(Object.keys(copy)).toEqual(['5', 'z', '__proto__', 'a', 'u'])
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype)
    expect(Object.hasOwn(copy, 'u')).toBe(true)
    const PROTO = '__proto__' // a variable key reads the own data property, not the accessor
    ;(copy[PROTO] as { x: number }).x = 2
    expect((original[PROTO] as { x: number }).x).toBe(1)
  })

  it('null-prototype object', () => {
    const original = Object.assign(Object.create(null) as Record<string, unknown>, { a: { b: 1 } })
    const copy = cloneValue(original)
    expect(Object.getPrototypeOf(copy)).toBeNull()
    ;(copy.a as { b: number }).b = 2
    copy.extra = 1
    expect(original.a).toEqual({ b: 1 })
    expect('extra' in original).toBe(false)
  })

  it('array: push, splice, sort and element changes on the copy leave the original alone', () => {
    const original = [3, 1, 2, { id: 1 }, [9]]
    const copy = cloneValue(original)
    expect(copy).toStrictEqual(original)
    ;(copy[3] as { id: number }).id = 99
    ;(copy[4] as number[]).push(10)
    copy.push(4)
    copy.splice(0, 1)
    expect(original).toStrictEqual([3, 1, 2, { id: 1 }, [9]])
  })

  it('sparse array keeps its holes and copies what is present', () => {
    // biome-ignore lint/suspicious/noSparseArray: the holes are the point
    const original: unknown[] = [, { a: 1 }, , [2]]
    const copy = cloneValue(original)
    expect(copy).toStrictEqual(original)
    expect(0 in copy).toBe(false)
    ;(copy[1] as { a: number }).a = 5
    ;(copy[3] as number[])[0] = 5
    expect(original[1]).toEqual({ a: 1 })
    expect(original[3]).toEqual([2])
  })

  it('huge sparse array is copied by its present indices', () => {
    const original: unknown[] = []
    original[3] = { a: 1 }
    original[3_000_000_000] = { far: true }
    const started = performance.now()
    const copy = cloneValue(original)
    expect(performance.now() - started).toBeLessThan(1000)
    expect(copy.length).toBe(original.length)
    ;(copy[3_000_000_000] as { far: boolean }).far = false
    ;(copy[3] as { a: number }).a = 2
    expect(original[3_000_000_000]).toEqual({ far: true })
    expect(original[3]).toEqual({ a: 1 })
  })

  it('Date: setTime on the copy leaves the original alone (freezing would not)', () => {
    const original = { at: new Date(1000) }
    const copy = cloneValue(original)
    expect(copy.at).toBeInstanceOf(Date)
    expect(copy.at).not.toBe(original.at)
    copy.at.setTime(0)
    expect(original.at.getTime()).toBe(1000)
    const invalid = cloneValue(new Date(Number.NaN))
    expect(Number.isNaN(invalid.getTime())).toBe(true)
  })

  it('Map: set, delete and changes to values and object keys on the copy leave the original alone', () => {
    const key = { k: 1 }
    const original = new Map<unknown, unknown>([
      ['a', { n: 1 }],
      [key, [1]],
      ['b', 2],
    ])
    const copy = cloneValue(original)
    expect(copy).toBeInstanceOf(Map)
    expect([...copy.keys()].slice(0, 1)).toEqual(['a'])
    expect(copy).toStrictEqual(original)
    ;(copy.get('a') as { n: number }).n = 2
    const copiedKey = [...copy.keys()][1] as { k: number }
    expect(copiedKey).not.toBe(key)
    copiedKey.k = 5
    copy.set('c', 3)
    copy.delete('b')
    expect(original.get('a')).toEqual({ n: 1 })
    expect(key.k).toBe(1)
    expect(original.has('c')).toBe(false)
    expect(original.get('b')).toBe(2)
  })

  it('Set: add, delete and changes to member objects on the copy leave the original alone', () => {
    const member = { m: 1 }
    const original = new Set<unknown>(['x', member, 3])
    const copy = cloneValue(original)
    expect(copy).toBeInstanceOf(Set)
    expect(copy).toStrictEqual(original)
    const copiedMember = [...copy][1] as { m: number }
    expect(copiedMember).not.toBe(member)
    copiedMember.m = 2
    copy.add('y')
    copy.delete('x')
    expect(member.m).toBe(1)
    expect([...original]).toEqual(['x', { m: 1 }, 3])
  })

  it('Buffer: writes to the copy leave the original alone, and it stays a Buffer', () => {
    const original = Buffer.from('hello')
    const copy = cloneValue(original)
    expect(Buffer.isBuffer(copy)).toBe(true)
    copy[0] = 0x4a
    expect(original.toString()).toBe('hello')
    expect(copy.toString()).toBe('Jello')
  })

  it('Uint8Array: writes to the copy leave the original alone, and it is not a Buffer', () => {
    const backing = new Uint8Array([9, 1, 2, 3, 9])
    const original = backing.subarray(1, 4)
    const copy = cloneValue(original)
    expect(Buffer.isBuffer(copy)).toBe(false)
    expect(Object.getPrototypeOf(copy)).toBe(Uint8Array.prototype)
    expect(copy).toStrictEqual(new Uint8Array([1, 2, 3]))
    copy[0] = 100
    expect(backing).toStrictEqual(new Uint8Array([9, 1, 2, 3, 9]))
  })

  it.each([
    new Float32Array([1.5, 2.5]),
    new Int32Array([-1, 1]),
    new BigInt64Array([1n, -1n]),
    new Uint8ClampedArray([255]),
  ])('%s: same type, separate memory', (original) => {
    const copy = cloneValue(original)
    expect(Object.getPrototypeOf(copy)).toBe(Object.getPrototypeOf(original))
    expect(copy).toStrictEqual(original)
    expect(copy.buffer).not.toBe(original.buffer)
  })

  it('shared references become separate copies', () => {
    const shared = { n: 1 }
    const copy = cloneValue({ a: shared, b: shared })
    copy.a.n = 2
    expect(copy.b.n).toBe(1)
    expect(shared.n).toBe(1)
  })

  it('getters are read as values', () => {
    const original = {
      get computed() {
        return { n: 1 }
      },
    }
    const copy = cloneValue(original)
    expect(Object.getOwnPropertyDescriptor(copy, 'computed')?.value).toEqual({ n: 1 })
  })

  it('still copies only own keys when Object.prototype is polluted', () => {
    const proto = Object.prototype as Record<string, unknown>
    proto.polluted = { evil: true }
    proto.pollutedNumber = 7
    try {
      const copy = cloneValue({ a: { b: 1 } })
      expect(Object.keys(copy)).toEqual(['a'])
      expect(Object.hasOwn(copy, 'polluted')).toBe(false)
      expect(Object.hasOwn(copy, 'pollutedNumber')).toBe(false)
      expect(Object.keys(copy.a)).toEqual(['b'])
      expect(copy.a).not.toBe((copy as unknown as { polluted: unknown }).polluted)
    } finally {
      delete proto.polluted
      delete proto.pollutedNumber
    }
  })

  it(`copies ${MAX_DEPTH} levels of nesting`, () => {
    let v: unknown = 'leaf'
    for (let i = 0; i < MAX_DEPTH; i++) v = i % 2 ? [v] : { v }
    expect(cloneValue(v)).toStrictEqual(v)
  })

  it('refuses what encode() would reject', () => {
    class Foo {}
    expect(() => cloneValue(new Foo())).toThrow(UnserializableValueError)
  })
})
