import { describe, expect, it } from 'vitest'
import { CorruptEntryError } from '../../src/errors.js'
import { backoffDelay } from '../../src/write-behind/backoff.js'
import {
  acceptedAtOf,
  consumerVersionOf,
  decodeBuried,
  decodeQueued,
  encodeBuried,
  encodeQueued,
  versionOf,
} from '../../src/write-behind/entries.js'
import { compareIds } from '../../src/write-behind/queue-log.js'

describe('write-behind entries', () => {
  const queued = {
    namespace: 'users',
    key: 'user:ü',
    payload: Buffer.from([0, 1, 255]),
    version: 7,
    acceptedAt: 9,
  }

  it('round-trip a queued write and a dead letter', () => {
    expect(decodeQueued(encodeQueued(queued))).toEqual({ ...queued, payload: Buffer.from([0, 1, 255]) })
    const dead = {
      ...queued,
      attempts: 11,
      deadAt: 1_700_000_000_000,
      error: 'constraint ✗',
      origin: '1700000000000-3',
    }
    expect(decodeBuried(encodeBuried(dead))).toEqual(dead)
  })

  it('refuse bytes no correct node wrote', () => {
    const good = encodeQueued(queued)
    const cases: Buffer[] = [
      Buffer.alloc(0),
      Buffer.from([9]),
      good.subarray(0, good.length - 1),
      Buffer.concat([good, Buffer.from([0])]),
      encodeBuried({ ...queued, attempts: 1, deadAt: 0, error: '', origin: '' }), // the other format
      encodeQueued({ ...queued, key: '' }),
      encodeQueued({ ...queued, version: Number.NaN }),
      encodeQueued({ ...queued, version: 2 ** 60 }),
    ]
    for (const bytes of cases) expect(() => decodeQueued(bytes)).toThrow(CorruptEntryError)
  })

  it('take a version from a stream id that grows with it, and refuse ids they cannot order', () => {
    expect(versionOf('1700000000000-0')).toBe(1_700_000_000_000 * 4096)
    expect(versionOf('1700000000000-4095')).toBe(1_700_000_000_000 * 4096 + 4095)
    expect(versionOf('1700000000001-0')!).toBeGreaterThan(versionOf('1700000000000-4095')!)
    expect(versionOf('1700000000000-4096')).toBeUndefined()
    // ...which a consumer orders after every write of its millisecond, and before the next one's
    expect(consumerVersionOf('1700000000000-5000')).toBe(1_700_000_000_000 * 4096 + 4095)
    expect(consumerVersionOf('1700000000001-0')).toBe(1_700_000_000_001 * 4096)
    expect(versionOf('nonsense')).toBeUndefined()
    expect(acceptedAtOf('1700000000123-5')).toBe(1_700_000_000_123)
    expect(compareIds('10-2', '9-30')).toBe(1)
    expect(compareIds('10-2', '10-10')).toBe(-1)
    expect(compareIds('10-2', '10-2')).toBe(0)
  })
})

describe('backoffDelay', () => {
  it('doubles from the initial delay up to the cap, with jitter in [d/2, d]', () => {
    const low = () => 0
    const high = () => 0.999999
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(n, 100, 1_000, low))).toEqual([50, 100, 200, 400, 500])
    const highs = [1, 2, 3, 4, 5].map((n) => backoffDelay(n, 100, 1_000, high))
    expect(highs.map(Math.round)).toEqual([100, 200, 400, 800, 1000])
    expect(backoffDelay(60, 100, 30_000, low)).toBe(15_000)
  })
})
