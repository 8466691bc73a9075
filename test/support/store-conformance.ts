/**
 * The RemoteStore conformance suite: every L2 implementation (memory, Redis, Redis Cluster, a client
 * passed in, future sharded stores) must pass the same tests. Use it from a test file:
 *
 *   describe.each(cases)('$name', ({ name, factory }) => storeConformance(name, factory))
 *
 * Keys carry a random per-run prefix, so the suite can run against a shared server in parallel with
 * anything else. TTL checks use real, short TTLs with polling, identical for every store.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MAX_VERSION_LEAD } from '../../src/coherence/hlc.js'
import { InvalidOptionError } from '../../src/errors.js'
import { createCache } from '../../src/index.js'
import type { RemoteStore } from '../../src/stores/store.js'

export interface StoreConformanceOptions {
  /**
   * The store implements leases (acquireLease, releaseLease: lock: 'distributed'). Declared, not detected,
   * so that the lease cases are registered only for stores that have them; a case checks the declaration.
   * @default true
   */
  leases?: boolean
  /** The store notifies reconnects (onReconnect), as a store over a connection does. @default false */
  reconnects?: boolean
  /** The store reads an entry's stamps as it writes it (setStamped). @default false */
  stamped?: boolean
  /**
   * Runs after `close()` of a store made by the factory; e.g. checks that a client passed in by the
   * application is still open and usable.
   */
  afterClose?: () => Promise<void> | void
}

/** Polls `probe` until it returns true, or fails after `timeoutMs`. */
export async function eventually(
  probe: () => Promise<boolean> | boolean,
  timeoutMs = 3000,
  what = 'condition',
) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await probe()) return
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(10)
  }
}

function bytesOf(entry: { bytes: Uint8Array } | undefined): Buffer | undefined {
  return entry === undefined
    ? undefined
    : Buffer.from(entry.bytes.buffer, entry.bytes.byteOffset, entry.bytes.byteLength)
}

export function storeConformance(
  name: string,
  factory: () => RemoteStore | Promise<RemoteStore>,
  options: StoreConformanceOptions = {},
): void {
  describe(`${name} conforms to RemoteStore`, () => {
    let store: RemoteStore
    const prefix = `conformance:${randomUUID()}:`
    let counter = 0
    /** A key no other test (or run) uses. */
    const key = (label = 'k') => `${prefix}${label}:${counter++}`
    const later = 60_000
    const max = Number.MAX_SAFE_INTEGER

    beforeAll(async () => {
      store = await factory()
    })
    afterAll(async () => {
      await store?.close()
    })

    it('has a name', () => {
      expect(typeof store.name).toBe('string')
      expect(store.name.length).toBeGreaterThan(0)
    })

    it('resolves get() of a missing key to undefined', async () => {
      expect(await store.get(key('missing'))).toBeUndefined()
    })

    it('round-trips arbitrary bytes, including NUL and invalid UTF-8', async () => {
      const allBytes = Uint8Array.from({ length: 256 }, (_, i) => i)
      const samples: Uint8Array[] = [
        new Uint8Array([]),
        new Uint8Array([0x00]),
        new Uint8Array([0x74]), // 't', like a tombstone marker
        new Uint8Array([
          0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0xf0, 0x28, 0x8c, 0xbc, 0xff, 0xfe, 0x00, 0x00,
        ]),
        allBytes,
        // a view into a larger buffer: only the view is stored
        allBytes.subarray(100, 164),
        randomBytes(1 << 20),
      ]
      const keys = samples.map(() => key('bytes'))
      expect(await Promise.all(samples.map((bytes, i) => store.set(keys[i]!, bytes, 7, later)))).toEqual(
        samples.map(() => 7),
      )
      const viaSetIfNewer = samples.map(() => key('bytes'))
      expect(
        await Promise.all(samples.map((bytes, i) => store.setIfNewer(viaSetIfNewer[i]!, bytes, 8, later))),
      ).toEqual(samples.map(() => undefined))
      const entries = await Promise.all([...keys, ...viaSetIfNewer].map((k) => store.get(k)))
      entries.forEach((entry, i) => {
        expect(entry?.version).toBe(i < samples.length ? 7 : 8)
        expect(bytesOf(entry)?.equals(Buffer.from(samples[i % samples.length]!))).toBe(true)
      })
    })

    it('set() writes with max(proposed, stored + 1) and resolves to that version', async () => {
      const k = key('set')
      expect(await store.set(k, Buffer.from('ten'), 10, later)).toBe(10)
      // an older proposal still writes, after the stored version
      expect(await store.set(k, Buffer.from('five'), 5, later)).toBe(11)
      expect(await store.set(k, Buffer.from('equal'), 11, later)).toBe(12)
      expect(await store.set(k, Buffer.from('newer'), 20, later)).toBe(20)
      const entry = await store.get(k)
      expect(entry?.version).toBe(20)
      expect(bytesOf(entry)?.toString()).toBe('newer')
    })

    it('setIfNewer() writes a newer version and refuses an equal or older one', async () => {
      const k = key('if-newer')
      expect(await store.setIfNewer(k, Buffer.from('ten'), 10, later)).toBeUndefined()
      expect(await store.setIfNewer(k, Buffer.from('nine'), 9, later)).toBe(10)
      expect(await store.setIfNewer(k, Buffer.from('also ten'), 10, later)).toBe(10)
      expect(bytesOf(await store.get(k))?.toString()).toBe('ten')
      expect(await store.setIfNewer(k, Buffer.from('eleven'), 11, later)).toBeUndefined()
      const entry = await store.get(k)
      expect(entry?.version).toBe(11)
      expect(bytesOf(entry)?.toString()).toBe('eleven')
      // set() bumps past what setIfNewer wrote
      expect(await store.set(k, Buffer.from('set'), 3, later)).toBe(12)
    })

    it('compares and bumps versions up to 2^53 - 1 exactly', async () => {
      const k = key('big')
      // Proposals within MAX_VERSION_LEAD of what is stored: it is believed, and ordered after.
      const behind = max - 1_000_000
      expect(await store.set(k, Buffer.from('a'), max - 2, later)).toBe(max - 2)
      expect(await store.set(k, Buffer.from('b'), behind, later)).toBe(max - 1)
      expect(await store.setIfNewer(k, Buffer.from('c'), max - 1, later)).toBe(max - 1)
      expect(await store.setIfNewer(k, Buffer.from('d'), max, later)).toBeUndefined()
      expect(await store.setIfNewer(k, Buffer.from('e'), max - 1, later)).toBe(max)
      const entry = await store.get(k)
      expect(entry?.version).toBe(max)
      expect(bytesOf(entry)?.toString()).toBe('d')
      const tomb = key('big-delete')
      expect(await store.delete(tomb, max - 3, later)).toBe(max - 3)
      expect(await store.delete(tomb, behind, later)).toBe(max - 2)
      expect(await store.setIfNewer(tomb, Buffer.from('x'), max - 2, later)).toBe(max - 2)
      const zero = key('zero')
      expect(await store.set(zero, Buffer.from('z'), 0, later)).toBe(0)
      expect((await store.get(zero))?.version).toBe(0)
    })

    it('treats a stored version more than MAX_VERSION_LEAD above the proposal as garbage, and replaces it', async () => {
      const now = 1_700_000_000_000 * 4096 // a version-clock reading
      const poisoned = now + MAX_VERSION_LEAD + 1
      for (const write of ['set', 'setIfNewer', 'delete'] as const) {
        const k = key(`garbage-${write}`)
        expect(await store.set(k, Buffer.from('poison'), poisoned, later)).toBe(poisoned)
        const version =
          write === 'set'
            ? await store.set(k, Buffer.from('healed'), now, later)
            : write === 'setIfNewer'
              ? await store.setIfNewer(k, Buffer.from('healed'), now, later)
              : await store.delete(k, now, later)
        expect(version, write).toBe(write === 'setIfNewer' ? undefined : now)
        // Within the lead it is believed: the next write orders itself after it.
        expect(await store.set(k, Buffer.from('next'), now - 5, later)).toBe(now + 1)
      }
      const believed = key('believed')
      await store.set(believed, Buffer.from('ahead'), now + MAX_VERSION_LEAD, later)
      expect(await store.set(believed, Buffer.from('after'), now, later)).toBe(now + MAX_VERSION_LEAD + 1)
    })

    it('set() and delete() that reach the store after their deadline are not applied', async () => {
      const k = key('deadline')
      await store.set(k, Buffer.from('kept'), 5, later)
      const past = Date.now() - 1_000
      await expect(store.set(k, Buffer.from('late'), 9, later, past)).rejects.toThrow()
      await expect(store.delete(k, 9, later, past)).rejects.toThrow()
      expect(bytesOf(await store.get(k))?.toString()).toBe('kept')
      // Within the deadline they apply as usual.
      expect(await store.set(k, Buffer.from('in time'), 9, later, Date.now() + 60_000)).toBe(9)
      expect(await store.delete(k, 10, later, Date.now() + 60_000)).toBe(10)
    })

    it('delete() leaves a tombstone with max(proposed, stored + 1)', async () => {
      const k = key('delete')
      await store.set(k, Buffer.from('v5'), 5, later)
      expect(await store.delete(k, 3, later)).toBe(6)
      expect(await store.get(k)).toBeUndefined()
      // the tombstone keeps the version: loads of older data are refused, writes go past it
      expect(await store.setIfNewer(k, Buffer.from('stale load'), 6, later)).toBe(6)
      expect(await store.get(k)).toBeUndefined()
      expect(await store.delete(k, 2, later)).toBe(7)
      expect(await store.set(k, Buffer.from('after'), 1, later)).toBe(8)
      expect(bytesOf(await store.get(k))?.toString()).toBe('after')
      expect(await store.delete(k, 100, later)).toBe(100)
      expect(await store.setIfNewer(k, Buffer.from('newer load'), 101, later)).toBeUndefined()
      expect((await store.get(k))?.version).toBe(101)
    })

    it('deleteIfNewer() writes a tombstone over older data only, and refuses an equal or newer version', async () => {
      const k = key('delete-if-newer')
      expect(await store.deleteIfNewer(k, 5, later)).toBeUndefined() // nothing stored
      expect(await store.get(k)).toBeUndefined()
      expect(await store.setIfNewer(k, Buffer.from('old load'), 5, later)).toBe(5) // the tombstone keeps 5
      await store.set(k, Buffer.from('ten'), 10, later)
      expect(await store.deleteIfNewer(k, 9, later)).toBe(10) // a newer write survives the older delete
      expect(await store.deleteIfNewer(k, 10, later)).toBe(10)
      expect(bytesOf(await store.get(k))?.toString()).toBe('ten')
      expect(await store.deleteIfNewer(k, 11, later)).toBeUndefined()
      expect(await store.get(k)).toBeUndefined()
      expect(await store.set(k, Buffer.from('after'), 1, later)).toBe(12)
    })

    it('delete() of a missing key leaves a tombstone with the proposed version', async () => {
      const k = key('delete-missing')
      expect(await store.delete(k, 9, later)).toBe(9)
      expect(await store.get(k)).toBeUndefined()
      expect(await store.setIfNewer(k, Buffer.from('old'), 8, later)).toBe(9)
      expect(await store.setIfNewer(k, Buffer.from('new'), 10, later)).toBeUndefined()
    })

    it('expires tombstones after their TTL', async () => {
      const k = key('tombstone-ttl')
      await store.delete(k, 50, 100)
      expect(await store.setIfNewer(k, Buffer.from('refused'), 1, later)).toBe(50)
      await eventually(
        async () => (await store.setIfNewer(k, Buffer.from('accepted'), 1, later)) === undefined,
        3000,
        'the tombstone to expire',
      )
      expect((await store.get(k))?.version).toBe(1)
    })

    it('expires entries after their TTL', async () => {
      const k = key('ttl')
      const started = Date.now()
      await store.set(k, Buffer.from('short'), 1, 100)
      const fresh = await store.get(k)
      if (Date.now() - started < 80) expect(fresh?.version).toBe(1)
      await eventually(async () => (await store.get(k)) === undefined, 3000, 'the entry to expire')
      expect(Date.now() - started).toBeGreaterThanOrEqual(90)
      // an expired entry no longer orders later writes
      expect(await store.setIfNewer(k, Buffer.from('again'), 0, later)).toBeUndefined()
      expect(await store.set(k, Buffer.from('again'), 0, later)).toBe(1)
    })

    it('gives every write its own TTL', async () => {
      const [k, j] = [key('ttl-replace'), key('ttl-replace')]
      await store.set(k, Buffer.from('long'), 1, later)
      await store.set(k, Buffer.from('short'), 2, 80)
      await store.set(j, Buffer.from('long'), 1, later)
      await store.setIfNewer(j, Buffer.from('short'), 2, 80)
      await eventually(
        async () => (await store.get(k)) === undefined && (await store.get(j)) === undefined,
        3000,
        'the replacements to expire',
      )
    })

    it('keeps the TTL of an entry when setIfNewer() is refused', async () => {
      const k = key('ttl-refused')
      await store.set(k, Buffer.from('short'), 5, 100)
      expect(await store.setIfNewer(k, Buffer.from('older'), 4, later)).toBe(5)
      await eventually(async () => (await store.get(k)) === undefined, 3000, 'the entry to expire')
    })

    it('reads missing stamps as 0, in key order', async () => {
      const [a, b] = [key('stamp'), key('stamp')]
      expect(await store.getStamps([])).toEqual([])
      expect(await store.bumpStamps([], later)).toEqual([])
      expect(await store.getStamps([a, b])).toEqual([0, 0])
      expect(await store.bumpStamps([b], later)).toEqual([1])
      expect(await store.getStamps([a, b, a, b])).toEqual([0, 1, 0, 1])
    })

    it('bumps stamps by one and resolves to the new values', async () => {
      const [a, b, c] = [key('stamp'), key('stamp'), key('stamp')]
      expect(await store.bumpStamps([a, b], later)).toEqual([1, 1])
      expect(await store.bumpStamps([b, c], later)).toEqual([2, 1])
      expect(await store.bumpStamps([a, b, c], later)).toEqual([2, 3, 2])
      expect(await store.getStamps([a, b, c])).toEqual([2, 3, 2])
      const concurrent = await Promise.all(Array.from({ length: 20 }, () => store.bumpStamps([a], later)))
      expect(concurrent.flat().sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i + 3))
      expect(await store.getStamps([a])).toEqual([22])
    })

    it('bumps a stamp to max(stored + 1, proposed), and past garbage far above the proposal', async () => {
      const [a, b] = [key('stamp'), key('stamp')]
      const now = 1_700_000_000_000 * 4096
      expect(await store.bumpStamps([a], later, now)).toEqual([now])
      expect(await store.bumpStamps([a], later, now - 10)).toEqual([now + 1])
      expect(await store.bumpStamps([a, b], later, now + 5)).toEqual([now + 5, now + 5])
      expect(await store.getStamps([a, b])).toEqual([now + 5, now + 5])
      // A stamp lost by the store (or never written) starts again at the proposal, not at 1.
      expect(await store.bumpStamps([key('stamp')], later, now)).toEqual([now])
      const poisoned = key('stamp')
      await store.bumpStamps([poisoned], later, now + MAX_VERSION_LEAD + 1_000)
      expect(await store.bumpStamps([poisoned], later, now)).toEqual([now])
    })

    it('raises a stamp to max(stored, proposed): a repeated raise changes nothing', async () => {
      const [a, b] = [key('stamp'), key('stamp')]
      const now = 1_700_000_000_000 * 4096
      expect(await store.bumpStamps([a], later, now, true)).toEqual([now])
      expect(await store.bumpStamps([a], later, now, true)).toEqual([now]) // a retry that landed twice
      expect(await store.bumpStamps([a], later, now - 10, true)).toEqual([now]) // a later bump stands
      expect(await store.getStamps([a])).toEqual([now])
      expect(await store.bumpStamps([a, b], later, now + 5, true)).toEqual([now + 5, now + 5])
      expect(await store.bumpStamps([a], later, now + 5)).toEqual([now + 6]) // a bump still moves it
      expect(await store.getStamps([a, b])).toEqual([now + 6, now + 5])
    })

    it('extends a stamp TTL and never shortens it', async () => {
      const [extended, kept, short] = [key('stamp-ttl'), key('stamp-ttl'), key('stamp-ttl')]
      await store.bumpStamps([extended], 100)
      await store.bumpStamps([extended], later)
      await store.bumpStamps([kept], later)
      await store.bumpStamps([kept], 50)
      await store.bumpStamps([short], 80)
      await eventually(async () => (await store.getStamps([short]))[0] === 0, 3000, 'the stamp to expire')
      await sleep(150)
      expect(await store.getStamps([extended, kept, short])).toEqual([2, 2, 0])
      // an expired stamp starts again from 0
      expect(await store.bumpStamps([short], later)).toEqual([1])
    })

    it('handles many keys across slots in parallel', async () => {
      const keys = Array.from({ length: 300 }, (_, i) => key(`many-${i}`))
      const values = keys.map((k) => Buffer.from(`value of ${k}`))
      expect(await Promise.all(keys.map((k, i) => store.set(k, values[i]!, i + 1, later)))).toEqual(
        keys.map((_, i) => i + 1),
      )
      const entries = await Promise.all(keys.map((k) => store.get(k)))
      entries.forEach((entry, i) => {
        expect(entry?.version).toBe(i + 1)
        expect(bytesOf(entry)?.equals(values[i]!)).toBe(true)
      })
      const refused = await Promise.all(keys.map((k) => store.setIfNewer(k, Buffer.from('old'), 0, later)))
      expect(refused).toEqual(keys.map((_, i) => i + 1))
      const deleted = await Promise.all(
        keys.filter((_, i) => i % 2 === 0).map((k) => store.delete(k, 0, later)),
      )
      expect(deleted).toEqual(keys.filter((_, i) => i % 2 === 0).map((_, i) => 2 * i + 2))
      const after = await Promise.all(keys.map((k) => store.get(k)))
      expect(after.map((entry) => entry?.version)).toEqual(
        keys.map((_, i) => (i % 2 === 0 ? undefined : i + 1)),
      )

      const stampKeys = keys.map((k) => `${k}:stamp`)
      expect(await store.bumpStamps(stampKeys.slice(0, 200), later)).toEqual(
        stampKeys.slice(0, 200).map(() => 1),
      )
      const stamps = await store.getStamps(stampKeys)
      expect(stamps).toEqual(stampKeys.map((_, i) => (i < 200 ? 1 : 0)))
    })

    it('head() reads the version of an entry or tombstone without its value, and stamps alongside', async () => {
      expect(store.head).toBeTypeOf('function')
      const [k, s1, s2] = [key('head'), key('head-stamp'), key('head-stamp')]
      expect(await store.head!(k, [])).toEqual({ version: undefined, deleted: false, stamps: [] })
      await store.bumpStamps([s2], later)
      expect(await store.head!(k, [s1, s2])).toEqual({ version: undefined, deleted: false, stamps: [0, 1] })
      await store.set(k, randomBytes(2048), 41, later)
      expect(await store.head!(k, [s2, s1])).toEqual({ version: 41, deleted: false, stamps: [1, 0] })
      expect(await store.delete(k, 3, later)).toBe(42)
      expect(await store.head!(k, [])).toEqual({ version: 42, deleted: true, stamps: [] })
      const ordered = key('head-ordered')
      await store.setIf!(ordered, Buffer.from('x'), 7, later, {
        order: { domain: 'commit', value: 5n },
        tombstoneTtlMs: later,
      })
      expect(await store.head!(ordered, [])).toEqual({ version: 7, deleted: false, stamps: [] })
    })

    it('setIf() without a condition writes like set(), and the entry reads back', async () => {
      expect(store.setIf).toBeTypeOf('function')
      const k = key('setif-plain')
      const bytes = Uint8Array.from({ length: 256 }, (_, i) => i)
      expect(await store.setIf!(k, bytes, 10, later, { tombstoneTtlMs: later })).toEqual({
        outcome: 'written',
        version: 10,
      })
      expect(await store.setIf!(k, bytes, 4, later, { tombstoneTtlMs: later })).toEqual({
        outcome: 'written',
        version: 11,
      })
      const entry = await store.get(k)
      expect(entry?.version).toBe(11)
      expect(bytesOf(entry)?.equals(Buffer.from(bytes))).toBe(true)
    })

    it('setIf() with `expected` writes only if the key still holds it, and deletes it otherwise', async () => {
      const k = key('setif-expected')
      // nothing stored, nothing expected: written
      expect(
        await store.setIf!(k, Buffer.from('a'), 5, later, { expected: null, tombstoneTtlMs: later }),
      ).toEqual({ outcome: 'written', version: 5 })
      // the version noted: written after it
      expect(
        await store.setIf!(k, Buffer.from('b'), 5, later, { expected: 5, tombstoneTtlMs: later }),
      ).toEqual({
        outcome: 'written',
        version: 6,
      })
      // something else was written meanwhile: a tombstone instead
      expect(
        await store.setIf!(k, Buffer.from('c'), 9, later, { expected: 5, tombstoneTtlMs: later }),
      ).toEqual({
        outcome: 'deleted',
        version: 9,
      })
      expect(await store.get(k)).toBeUndefined()
      expect(await store.head!(k, [])).toMatchObject({ version: 9, deleted: true })
      // expecting nothing, but a tombstone is there: deleted again, after it
      expect(
        await store.setIf!(k, Buffer.from('d'), 1, later, { expected: null, tombstoneTtlMs: later }),
      ).toEqual({ outcome: 'deleted', version: 10 })
      // the tombstone noted: written
      expect(
        await store.setIf!(k, Buffer.from('e'), 1, later, { expected: 10, tombstoneTtlMs: later }),
      ).toEqual({
        outcome: 'written',
        version: 11,
      })
      expect(bytesOf(await store.get(k))?.toString()).toBe('e')
      // a key that holds an entry, when nothing was expected
      expect(
        await store.setIf!(k, Buffer.from('f'), 1, later, { expected: null, tombstoneTtlMs: later }),
      ).toEqual({ outcome: 'deleted', version: 12 })
    })

    it('setIf() keeps a tombstone for tombstoneTtlMs and an entry for ttlMs', async () => {
      const [gone, kept] = [key('setif-ttl'), key('setif-ttl')]
      await store.set(gone, Buffer.from('x'), 1, later)
      expect(
        (await store.setIf!(gone, Buffer.from('y'), 2, later, { expected: 0, tombstoneTtlMs: 80 })).outcome,
      ).toBe('deleted')
      await eventually(
        async () => (await store.head!(gone, [])).version === undefined,
        3000,
        'the tombstone to expire',
      )
      expect((await store.setIf!(kept, Buffer.from('z'), 2, 80, { tombstoneTtlMs: later })).outcome).toBe(
        'written',
      )
      await eventually(async () => (await store.get(kept)) === undefined, 3000, 'the entry to expire')
    })

    it('setIf() with an order writes only over a lower order of the same domain', async () => {
      const k = key('setif-order')
      const commit = (value: bigint, version: number, expected?: number | null) =>
        store.setIf!(k, Buffer.from(`c${value}`), version, later, {
          order: { domain: 'commit', value },
          expected,
          tombstoneTtlMs: later,
        })
      expect(await commit(5n, 100)).toEqual({ outcome: 'written', version: 100 })
      // a lower or equal order leaves the newer write alone
      expect(await commit(4n, 200)).toEqual({ outcome: 'superseded', version: 100 })
      expect(await commit(5n, 200)).toEqual({ outcome: 'superseded', version: 100 })
      expect(bytesOf(await store.get(k))?.toString()).toBe('c5')
      // a higher order writes, even where `expected` no longer matches
      expect(await commit(7n, 50, 1)).toEqual({ outcome: 'written', version: 101 })
      expect(bytesOf(await store.get(k))?.toString()).toBe('c7')
      // the other domain's orders are not comparable: without `expected` it writes
      expect(
        await store.setIf!(k, Buffer.from('q1'), 1, later, {
          order: { domain: 'queue', value: 1n },
          tombstoneTtlMs: later,
        }),
      ).toEqual({ outcome: 'written', version: 102 })
      // and now the commit order is gone: `expected` decides
      expect(await commit(3n, 1, 101)).toEqual({ outcome: 'deleted', version: 103 })
      expect(await commit(3n, 1, 103)).toEqual({ outcome: 'written', version: 104 })
      // set, setIfNewer and delete drop the order
      await store.set(k, Buffer.from('plain'), 1, later)
      expect(await commit(1n, 1)).toEqual({ outcome: 'written', version: 106 })
      expect(await store.setIfNewer(k, Buffer.from('load'), 107, later)).toBeUndefined()
      expect(await commit(1n, 1)).toEqual({ outcome: 'written', version: 108 })
      await store.delete(k, 1, later)
      expect(await commit(0n, 1)).toEqual({ outcome: 'written', version: 110 })
    })

    it('setIf() compares orders up to 2^64 - 1 exactly', async () => {
      const k = key('setif-big-order')
      const order = (value: bigint) =>
        store.setIf!(k, Buffer.from(String(value)), 1, later, {
          order: { domain: 'queue', value },
          tombstoneTtlMs: later,
        })
      const top = (1n << 64n) - 1n
      expect((await order(1n << 63n)).outcome).toBe('written')
      expect((await order((1n << 63n) - 1n)).outcome).toBe('superseded')
      expect((await order((1n << 63n) + 1n)).outcome).toBe('written')
      expect((await order(top - 1n)).outcome).toBe('written')
      expect((await order(top)).outcome).toBe('written')
      expect((await order(top)).outcome).toBe('superseded')
      expect(bytesOf(await store.get(k))?.toString()).toBe(String(top))
      await expect(order(top + 1n)).rejects.toThrow()
    })

    it('setIf() treats a stored version far above the proposal as nothing stored', async () => {
      const now = 1_700_000_000_000 * 4096
      const k = key('setif-garbage')
      await store.set(k, Buffer.from('poison'), now + MAX_VERSION_LEAD + 1, later)
      expect(
        await store.setIf!(k, Buffer.from('healed'), now, later, { expected: null, tombstoneTtlMs: later }),
      ).toEqual({ outcome: 'written', version: now })
    })

    const leases = options.leases ?? true
    const stamped = options.stamped ?? false
    const reconnects = options.reconnects ?? false

    it(`declares its capabilities truly: leases ${leases ? 'yes' : 'no'}, reconnect notifications ${reconnects ? 'yes' : 'no'}, stamped writes ${stamped ? 'yes' : 'no'}`, () => {
      expect(typeof store.acquireLease === 'function').toBe(leases)
      expect(typeof store.releaseLease === 'function').toBe(leases)
      expect(typeof store.onReconnect === 'function').toBe(reconnects)
      expect(typeof store.setStamped === 'function').toBe(stamped)
    })

    if (stamped) {
      /** 40 bytes of text with three f64 generation slots (at 4, 16 and 28) holding `known`. */
      const slotted = (known: readonly number[]) => {
        const bytes = Buffer.from('head____mid1________mid2________tail____', 'latin1')
        for (let i = 0; i < known.length; i++) bytes.writeDoubleBE(known[i]!, [4, 16, 28][i]!)
        return bytes
      }
      const offsets = [4, 16, 28]

      it('setStamped() records max(stored, known) per stamp, in the bytes too, restores what is below known, and writes like set()', async () => {
        const [a, b, c, k] = [key('stamp'), key('stamp'), key('stamp'), key('stamped')]
        await store.bumpStamps([a], later, 5)
        await store.bumpStamps([c], later, 3)
        const bytes = slotted([2, 0, 7])
        const copy = Buffer.from(bytes)
        const stamps = { keys: [a, b, c], known: [2, 0, 7], offsets, ttlMs: later }
        expect(await store.setStamped!(k, bytes, 10, later, stamps)).toEqual({
          version: 10,
          gens: [5, 0, 7],
          restored: 1,
        })
        expect(bytes.equals(copy)).toBe(true) // the caller's bytes are left alone
        const stored = await store.get(k)
        expect(stored?.version).toBe(10)
        expect(bytesOf(stored)?.equals(slotted([5, 0, 7]))).toBe(true)
        expect(await store.getStamps([a, b, c])).toEqual([5, 0, 7])
        // The version rule of set(): max(proposed, stored + 1).
        expect(
          (await store.setStamped!(k, slotted([5, 0, 7]), 3, later, { ...stamps, known: [5, 0, 7] })).version,
        ).toBe(11)
        expect(bytesOf(await store.get(k))?.equals(slotted([5, 0, 7]))).toBe(true)
        // Without stamps it is a set.
        const bare = key('stamped')
        expect(
          await store.setStamped!(bare, Buffer.from('bare'), 4, later, {
            keys: [],
            known: [],
            offsets: [],
            ttlMs: later,
          }),
        ).toEqual({ version: 4, gens: [], restored: 0 })
        expect(bytesOf(await store.get(bare))?.toString()).toBe('bare')
      })

      it('setStamped() raises a garbage stamp to the known generation, or to the proposal when that is 0', async () => {
        const [p, q, k] = [key('stamp'), key('stamp'), key('stamped')]
        const now = 1_700_000_000_000 * 4096
        await store.bumpStamps([p, q], later, now + MAX_VERSION_LEAD + 1_000)
        const done = await store.setStamped!(k, slotted([9, 0]), now, later, {
          keys: [p, q],
          known: [9, 0],
          offsets: offsets.slice(0, 2),
          ttlMs: later,
        })
        expect(done).toEqual({ version: now, gens: [9, now], restored: 2 })
        expect(await store.getStamps([p, q])).toEqual([9, now])
        expect(bytesOf(await store.get(k))?.equals(slotted([9, now]))).toBe(true)
      })

      it('setStamped() that reaches the store after its deadline changes nothing', async () => {
        const [a, k] = [key('stamp'), key('stamped')]
        const stamps = { keys: [a], known: [4], offsets: [4], ttlMs: later }
        await expect(
          store.setStamped!(k, slotted([4]), 5, later, stamps, Date.now() - 1_000),
        ).rejects.toThrow()
        expect(await store.get(k)).toBeUndefined()
        expect(await store.getStamps([a])).toEqual([0])
        expect(
          (await store.setStamped!(k, slotted([4]), 5, later, stamps, Date.now() + 60_000)).version,
        ).toBe(5)
      })
    }

    if (leases) {
      it('grants a lease to one holder at a time', async () => {
        const k = key('lease')
        expect(await store.acquireLease!(k, 'a', later)).toBe(true)
        expect(await store.acquireLease!(k, 'b', later)).toBe(false)
        expect(await store.releaseLease!(k, 'b')).toBe(false)
        expect(await store.releaseLease!(k, 'a')).toBe(true)
        expect(await store.releaseLease!(k, 'a')).toBe(false)
        expect(await store.acquireLease!(k, 'b', later)).toBe(true)
        const contested = key('lease-race')
        const contenders = await Promise.all(
          Array.from({ length: 10 }, (_, i) => store.acquireLease!(contested, `t${i}`, later)),
        )
        expect(contenders.filter(Boolean)).toHaveLength(1)
      })

      it('expires leases, after which the old holder cannot release the new one', async () => {
        const k = key('lease-ttl')
        expect(await store.acquireLease!(k, 'old', 80)).toBe(true)
        await eventually(() => store.acquireLease!(k, 'new', later), 3000, 'the lease to expire')
        expect(await store.releaseLease!(k, 'old')).toBe(false)
        expect(await store.acquireLease!(k, 'third', later)).toBe(false)
        expect(await store.releaseLease!(k, 'new')).toBe(true)
      })
    } else {
      it("without leases, a cache with lock: 'distributed' over it is refused (E_INVALID_OPTION)", () => {
        const build = () => createCache({ namespace: 'no-leases', l2: store, lock: 'distributed' })
        expect(build).toThrow(InvalidOptionError)
        expect(build).toThrow(expect.objectContaining({ code: 'E_INVALID_OPTION' }))
      })
    }

    if (reconnects) {
      it('calls no onReconnect listener for the first connection', async () => {
        const fresh = await factory()
        let calls = 0
        const unsubscribe = fresh.onReconnect!(() => calls++)
        expect(typeof unsubscribe).toBe('function')
        await fresh.set(key('reconnect'), Buffer.from('x'), 1, later)
        await sleep(50)
        expect(calls).toBe(0)
        unsubscribe()
        unsubscribe()
        await fresh.close()
        await options.afterClose?.()
      })
    }

    it('close() resolves for a store that was never used', async () => {
      const unused = await factory()
      await unused.close()
      await options.afterClose?.()
    })

    it('close() resolves after use, twice', async () => {
      const used = await factory()
      const k = key('close')
      await used.set(k, Buffer.from('x'), 1, later)
      expect((await used.get(k))?.version).toBe(1)
      await used.close()
      await used.close()
      await options.afterClose?.()
    })
  })
}
