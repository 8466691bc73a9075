/**
 * The cache's L1 packs each entry into the local tier's slots (value, five numbers, a shared stamps
 * record): what goes in must come out whole, and entries written under the same stamps share one record.
 */
import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../src/clock.js'
import { createEntry, type L1Entry } from '../../src/entry/entry.js'
import { L1Entries } from '../../src/entry/l1-entries.js'
import { NIL } from '../../src/local/slots.js'

const clock = new ManualClock(1_000_000)

function entries(bounds: { maxEntries?: number; maxBytes?: number } = { maxEntries: 100 }): L1Entries {
  return new L1Entries({
    maxEntries: bounds.maxEntries,
    maxBytes: bounds.maxBytes,
    policy: 'tinylfu',
    clock,
    sweepIntervalMs: 0,
  })
}

function entry(
  value: unknown,
  version: number,
  stamps: { keys?: string[]; gens?: number[]; freeze?: boolean } = {},
): L1Entry {
  const stampKeys = stamps.keys ?? ['ns:']
  return createEntry({
    value,
    freeze: stamps.freeze ?? false,
    version,
    writtenAt: 999_000 + version,
    loadMs: version / 4,
    freshUntil: 1_060_000 + version,
    staleUntil: 1_120_000 + version,
    namespaceStamps: 1,
    stampKeys,
    stampGens: stamps.gens ?? stampKeys.map(() => 0),
  })
}

const put = (l1: L1Entries, rel: string, e: L1Entry) => l1.set(rel, e, 60_000, 10, undefined, 0)

describe('L1Entries', () => {
  it('gives back every field of what it stored, with the value itself (not a copy)', () => {
    const l1 = entries()
    const value = { id: 1 }
    const stored = entry(value, 7, { keys: ['ns:', 't:a'], gens: [2, 5] })
    expect(put(l1, 'k', stored)).toBe(true)
    const got = l1.get('k')!
    expect(got).toEqual({ ...stored, lendable: false })
    expect(got.value).toBe(value)
    expect(l1.peek('k')).toEqual(got)
    expect(l1.versionOf('k')).toBe(7)
    expect(l1.holds('k', value)).toBe(true)
    expect(l1.holds('k', { id: 1 })).toBe(false) // an equal value is not the one L1 holds
    const slot = l1.getSlot('k')
    expect([l1.valueAt(slot), l1.freshUntilAt(slot), l1.staleUntilAt(slot)]).toEqual([
      value,
      stored.freshUntil,
      stored.staleUntil,
    ])
  })

  it('answers nothing for a key it does not hold', () => {
    const l1 = entries()
    expect([l1.get('k'), l1.peek('k'), l1.versionOf('k'), l1.holds('k', undefined)]).toEqual([
      undefined,
      undefined,
      -1,
      false,
    ])
    expect(l1.getSlot('k')).toBe(NIL)
    put(l1, 'k', entry('v', 3))
    l1.delete('k')
    expect([l1.get('k'), l1.versionOf('k')]).toEqual([undefined, -1])
  })

  it('entries under the same stamps share one record; other generations, keys or freezing get their own', () => {
    const l1 = entries()
    put(l1, 'a', entry('a', 1, { keys: ['ns:', 't:x'], gens: [0, 3] }))
    put(l1, 'b', entry('b', 2, { keys: ['ns:', 't:x'], gens: [0, 3] })) // equal lists, other arrays
    put(l1, 'c', entry('c', 3, { keys: ['ns:', 't:x'], gens: [0, 4] }))
    put(l1, 'd', entry('d', 4, { keys: ['ns:', 't:y'], gens: [0, 3] }))
    put(l1, 'e', entry({ e: 1 }, 5, { keys: ['ns:', 't:x'], gens: [0, 3], freeze: true }))
    put(l1, 'f', entry('f', 6, { keys: ['ns:', 't:x'], gens: [0, 3] })) // after others: found in the table
    const record = (rel: string) => l1.stampsAt(l1.getSlot(rel))
    expect(record('b')).toBe(record('a'))
    expect(record('f')).toBe(record('a'))
    for (const other of ['c', 'd', 'e']) expect(record(other)).not.toBe(record('a'))
    expect(record('c').stampGens).toEqual([0, 4])
    expect(record('d').stampKeys).toEqual(['ns:', 't:y'])
    expect([record('a').frozen, record('e').frozen]).toEqual([false, true])
  })

  it('keeps apart stamp lists that join to the same text', () => {
    const l1 = entries()
    put(l1, 'a', entry('a', 1, { keys: ['ns:', 't:a\nt:', 't:b'] }))
    put(l1, 'b', entry('b', 2, { keys: ['ns:', 't:a', 't:\nt:b'] }))
    expect(l1.get('a')!.stampKeys).toEqual(['ns:', 't:a\nt:', 't:b'])
    expect(l1.get('b')!.stampKeys).toEqual(['ns:', 't:a', 't:\nt:b'])
  })

  it('every entry keeps its own numbers and record through slot reuse and growth', () => {
    // maxBytes alone: the tier starts small and doubles several times while this fills it.
    const l1 = entries({ maxBytes: 1e9 })
    const n = 5_000
    for (let i = 0; i < n; i++) put(l1, `k${i}`, entry(`v${i}`, i + 1, { keys: ['ns:', `t:${i % 7}`] }))
    for (let i = 0; i < n; i += 3) l1.delete(`k${i}`)
    for (let i = 0; i < n; i += 3)
      put(l1, `r${i}`, entry(`w${i}`, n + i + 1, { keys: ['ns:', `t:${i % 5}`] }))
    for (let i = 0; i < n; i++) {
      const kept = i % 3 !== 0
      const got = l1.peek(kept ? `k${i}` : `r${i}`)!
      const want = kept
        ? entry(`v${i}`, i + 1, { keys: ['ns:', `t:${i % 7}`] })
        : entry(`w${i}`, n + i + 1, { keys: ['ns:', `t:${i % 5}`] })
      expect(got).toEqual(want)
    }
    expect(l1.size).toBe(n)
  })
})
