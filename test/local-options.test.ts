import { describe, expect, it } from 'vitest'
import { CoherentError, InvalidOptionError } from '../src/errors.js'
import { LocalTier } from '../src/local/local-tier.js'
import type { LocalTierOptions } from '../src/local/types.js'

function rejects(options: unknown, option: string): void {
  let error: unknown
  try {
    new LocalTier(options as LocalTierOptions<unknown>).close()
  } catch (e) {
    error = e
  }
  expect(error, `${JSON.stringify(options)} should be rejected`).toBeInstanceOf(InvalidOptionError)
  expect(error).toBeInstanceOf(CoherentError)
  expect((error as InvalidOptionError).code).toBe('E_INVALID_OPTION')
  expect((error as InvalidOptionError).option).toBe(option)
  expect((error as Error).message).toContain(`\`${option}\``)
}

describe('LocalTier options', () => {
  it('requires a bound', () => {
    rejects({}, 'l1.maxEntries')
    rejects({ policy: 'lru' }, 'l1.maxEntries')
  })

  it('rejects a bad maxEntries', () => {
    for (const maxEntries of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '10', 2 ** 31]) {
      rejects({ maxEntries }, 'l1.maxEntries')
    }
  })

  it('rejects a bad maxBytes', () => {
    for (const maxBytes of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '1kb', null]) {
      rejects({ maxBytes }, 'l1.maxBytes')
    }
    rejects({ maxEntries: 10, maxBytes: 0 }, 'l1.maxBytes')
  })

  it('rejects an unknown policy', () => {
    for (const policy of ['LRU', 'arc', '', 7, 'toString']) rejects({ maxEntries: 10, policy }, 'l1.policy')
  })

  it('rejects a bad sweepIntervalMs', () => {
    for (const sweepIntervalMs of [-1, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, '1s']) {
      rejects({ maxEntries: 10, sweepIntervalMs }, 'l1.sweepIntervalMs')
    }
  })

  it('rejects a bad clock, onEvict or random source', () => {
    rejects({ maxEntries: 10, clock: {} }, 'l1.clock')
    rejects({ maxEntries: 10, clock: Date.now }, 'l1.clock')
    rejects({ maxEntries: 10, onEvict: 'log' }, 'l1.onEvict')
    rejects({ maxEntries: 10, random: 4 }, 'l1.random')
  })

  it('rejects bad entry fields, and a set without the numbers they ask for', () => {
    for (const entryFields of [
      null,
      3,
      { numbers: -1, record: false },
      { numbers: 1.5, record: true },
      { numbers: 65, record: false },
      { numbers: 2 },
      { record: true },
    ]) {
      rejects({ maxEntries: 10, entryFields }, 'l1.entryFields')
    }
    const tier = new LocalTier<string>({
      maxEntries: 10,
      sweepIntervalMs: 0,
      entryFields: { numbers: 2, record: false },
    })
    expect(() => tier.set('k', 'v', Number.POSITIVE_INFINITY, 1)).toThrow(RangeError)
    expect(() => tier.set('k', 'v', Number.POSITIVE_INFINITY, 1, undefined, 0, undefined, [1])).toThrow(
      RangeError,
    )
    expect(tier.size).toBe(0) // nothing half-stored
    expect(tier.set('k', 'v', Number.POSITIVE_INFINITY, 1, undefined, 0, undefined, [1, 2])).toBe(true)
    expect(tier.numberAt(tier.peekSlot('k'), 1)).toBe(2)
    tier.close()
  })

  it('rejects a missing options object', () => {
    rejects(undefined, 'l1')
    rejects(null, 'l1')
  })

  it('accepts every valid combination', () => {
    for (const policy of ['lru', 'lfu', 'fifo', 'tinylfu'] as const) {
      new LocalTier({ maxEntries: 1, policy, sweepIntervalMs: 0 }).close()
      new LocalTier({ maxBytes: 0.5, policy }).close()
      new LocalTier({ maxEntries: 10, maxBytes: 1e12, policy, sweepIntervalMs: 10 }).close()
    }
  })
})
