import diagnosticsChannel from 'node:diagnostics_channel'
import { afterEach, describe, expect, it } from 'vitest'
import {
  type Cache,
  type CacheOptions,
  createCache,
  ManualClock,
  memoryBus,
  memoryStore,
  type RemoteStore,
  shardedStore,
  type WriteBehindItem,
  type WriteBehindOptions,
} from '../src/index.js'
import { deferred } from './support/deferred.js'
import { gatedStore } from './support/faults.js'
import { settle } from './support/nodes.js'
import { eventually } from './support/store-conformance.js'

/** Every batch write() was called with, as [key, value, attempt] triples. */
type Calls = [string, unknown, number][][]

function recorder() {
  const calls: Calls = []
  const write = async (batch: WriteBehindItem[]) => {
    calls.push(batch.map((item) => [item.key, item.value, item.attempt]))
  }
  return { calls, write }
}

function fleet(
  count: number,
  writeBehind: Partial<WriteBehindOptions> & Pick<WriteBehindOptions, 'write'>,
  options: CacheOptions = {},
  wrap?: (store: RemoteStore, node: number) => RemoteStore,
) {
  const clock = new ManualClock()
  const l2 = memoryStore({ clock })
  const bus = memoryBus()
  const nodes = Array.from({ length: count }, (_, i) =>
    createCache({
      namespace: 'wb',
      clock,
      l2: wrap ? wrap(l2, i) : l2,
      bus,
      random: () => 0.5,
      // A partial batch waits an hour: only flush() (or a full batch) writes it.
      // Leases live a day: tests advance the clock by minutes, and a lease that lapsed would pass its partition on.
      writeBehind: { flushInterval: '1h', partitions: 4, leaseTtl: '1d', ...writeBehind },
      ...options,
    }),
  )
  caches = nodes
  return { clock, l2, nodes }
}

let caches: Cache[] = []
afterEach(async () => {
  await Promise.all(caches.map((cache) => cache.close()))
  caches = []
})

describe('writeBehind(key, value)', () => {
  it('makes the value visible at once on every node; write() gets it later', async () => {
    const { calls, write } = recorder()
    const { nodes } = fleet(2, { write })
    const [a, b] = nodes as [Cache, Cache]
    await Promise.all([a.ready(), b.ready()])
    await b.set('user:1', { name: 'old' })
    expect(await a.get('user:1')).toEqual({ name: 'old' })
    await a.writeBehind('user:1', { name: 'new' })
    await settle()
    expect(await b.get('user:1')).toEqual({ name: 'new' })
    expect(await a.get('user:1')).toEqual({ name: 'new' })
    expect(calls).toEqual([])
    await a.flush()
    expect(calls).toEqual([[['user:1', { name: 'new' }, 1]]])
    expect(a.stats().writeBehind).toMatchObject({ durable: false, accepted: 1, written: 1, batches: 1 })
  })

  it('coalesces per key within a batch: only the newest value of each key, with its namespace', async () => {
    const batches: WriteBehindItem[][] = []
    const { nodes } = fleet(1, { write: async (batch) => void batches.push(batch), partitions: 1 })
    const [a] = nodes as [Cache]
    const users = a.namespace('users')
    for (let i = 1; i <= 5; i++) await a.writeBehind('k', i)
    await a.writeBehind('j', 'only')
    await users.writeBehind('k', 'in users')
    await a.flush()
    expect(batches).toHaveLength(1)
    expect(batches[0]!.map(({ key, namespace, value }) => [namespace, key, value])).toEqual([
      ['', 'k', 5],
      ['', 'j', 'only'],
      ['users', 'k', 'in users'],
    ])
    const [k, j] = batches[0]!
    expect(k!.version).toBeGreaterThan(0)
    expect(j!.version).toBeGreaterThan(k!.version)
    expect(a.stats().writeBehind).toMatchObject({ accepted: 7, written: 3, coalesced: 4 })
  })

  it('a write that fails for one key of a batch loses none of the others, and retries that key alone', async () => {
    const { clock, nodes } = fleet(1, {
      partitions: 1,
      write: async (batch) => {
        seen.push(batch.map((item) => [item.key, item.value, item.attempt]))
        if (seen.length === 1) {
          failedOnce.resolve()
          return ['bad'] // reported as not written
        }
      },
    })
    const seen: Calls = []
    const failedOnce = deferred<void>()
    const [a] = nodes as [Cache]
    await a.writeBehind('good', 1)
    await a.writeBehind('bad', 'first')
    await a.writeBehind('also good', 2)
    const flushed = a.flush()
    await failedOnce.promise
    // While 'bad' waits for its retry, a newer value of it arrives: the retry writes that one.
    await a.writeBehind('bad', 'newer')
    expect(a.stats().writeBehind).toMatchObject({ written: 2, retries: 1 })
    clock.advance(60_000)
    await flushed
    expect(seen).toEqual([
      [
        ['good', 1, 1],
        ['bad', 'first', 1],
        ['also good', 2, 1],
      ],
      [['bad', 'newer', 2]],
    ])
    expect(a.stats().writeBehind).toMatchObject({ written: 3, retries: 1, coalesced: 1 })
  })

  it('retries a batch write() threw with exponential backoff and jitter, from the injected clock and random', async () => {
    const delays: number[] = []
    const onEvent = (message: unknown) => {
      const event = message as { event: string; delayMs: number }
      if (event.event === 'retry') delays.push(event.delayMs)
    }
    diagnosticsChannel.subscribe('coherent-cache:write-behind', onEvent)
    try {
      let attempts = 0
      const failing = deferred<void>()
      const { clock, nodes } = fleet(1, {
        partitions: 1,
        maxRetries: 10,
        retryDelay: { initial: '200ms', max: '1s' },
        write: async () => {
          attempts++
          if (attempts <= 5) {
            if (attempts === 5) failing.resolve()
            throw new Error('database unavailable')
          }
        },
      })
      const [a] = nodes as [Cache]
      await a.writeBehind('k', 'v')
      const flushed = a.flush()
      // Each retry waits for the clock: advance it until write() has been called five times.
      while (attempts < 5) {
        const before = attempts
        clock.advance(2_000)
        await eventually(() => attempts > before || attempts >= 5, 5000, 'the next attempt')
      }
      await failing.promise
      clock.advance(2_000)
      await flushed
      // random() = 0.5: half the step fixed, a quarter more; steps 200, 400, 800, 1000 (capped), 1000.
      expect(delays).toEqual([150, 300, 600, 750, 750])
      expect(a.stats().writeBehind).toMatchObject({ written: 1, retries: 5, deadLettered: 0 })
    } finally {
      diagnosticsChannel.unsubscribe('coherent-cache:write-behind', onEvent)
    }
  })

  it('moves a write to the dead letters after maxRetries, fires an event, counts it, lists and re-drives it', async () => {
    const events: unknown[] = []
    const onEvent = (message: unknown) => {
      if ((message as { event: string }).event === 'dead-letter') events.push(message)
    }
    diagnosticsChannel.subscribe('coherent-cache:write-behind', onEvent)
    try {
      let broken = true
      const written: [string, unknown, number, number][] = []
      const { clock, nodes } = fleet(1, {
        partitions: 2,
        maxRetries: 2,
        write: async (batch) => {
          if (broken) throw new Error('constraint violated')
          for (const item of batch) written.push([item.key, item.value, item.attempt, item.version])
        },
      })
      const [a] = nodes as [Cache]
      await a.writeBehind('poison', { n: 1 })
      const flushed = a.flush()
      await eventually(
        async () => {
          clock.advance(60_000)
          return a.stats().writeBehind.deadLettered === 1
        },
        5000,
        'the dead letter',
      )
      await flushed // a dead-lettered write no longer holds up flush()
      expect(a.stats().writeBehind).toMatchObject({ retries: 2, deadLettered: 1, written: 0 })
      expect(events).toEqual([
        expect.objectContaining({
          namespace: 'wb',
          key: 'poison',
          keyNamespace: '',
          attempts: 3,
          error: 'constraint violated',
        }),
      ])
      const [letter, ...others] = await a.deadLetters()
      expect(others).toEqual([])
      expect(letter).toMatchObject({
        key: 'poison',
        namespace: '',
        value: { n: 1 },
        attempts: 3,
        error: 'constraint violated',
      })
      expect(letter!.id).toBe((events[0] as { id: string }).id)
      broken = false
      expect(await a.redriveDeadLetters([letter!.id])).toBe(1)
      await a.flush()
      expect(written).toEqual([['poison', { n: 1 }, 1, letter!.version]])
      expect(await a.deadLetters()).toEqual([])
      expect(await a.redriveDeadLetters([letter!.id])).toBe(0)
      // discard: dead-letter another one, then drop it.
      broken = true
      await a.writeBehind('second', 2)
      const again = a.flush()
      await eventually(
        async () => {
          clock.advance(60_000)
          return a.stats().writeBehind.deadLettered === 2
        },
        5000,
        'the second dead letter',
      )
      await again
      expect(await a.discardDeadLetters()).toBe(1)
      expect(await a.deadLetters()).toEqual([])
    } finally {
      diagnosticsChannel.unsubscribe('coherent-cache:write-behind', onEvent)
    }
  })

  it('writes each key in order when two nodes accept and consume writes of the same keys', async () => {
    const applied = new Map<string, number[]>()
    const write = async (batch: WriteBehindItem[]) => {
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 3))
      for (const item of batch) {
        const list = applied.get(item.key) ?? []
        list.push(item.value as number)
        applied.set(item.key, list)
      }
    }
    const { nodes } = fleet(
      2,
      { write, partitions: 3, batchSize: 7, flushInterval: '5ms' },
      { clock: undefined },
    )
    const [a, b] = nodes as [Cache, Cache]
    const keys = ['a', 'b', 'c', 'd', 'e']
    const last = new Map<string, number>()
    for (let seq = 1; seq <= 60; seq++) {
      const key = keys[seq % keys.length]!
      await (seq % 2 === 0 ? a : b).writeBehind(key, seq)
      last.set(key, seq)
    }
    await Promise.all([a.flush(), b.flush()])
    for (const key of keys) {
      const values = applied.get(key)!
      expect(values, key).toEqual([...values].sort((x, y) => x - y))
      expect(values.at(-1), key).toBe(last.get(key))
      expect(await a.get(key)).toBe(last.get(key))
      expect(await b.get(key)).toBe(last.get(key))
    }
  })

  it('keeps in the cache the value last in the queue when two nodes write a key at once', async () => {
    const { calls, write } = recorder()
    let gateA: ReturnType<typeof gatedStore> | undefined
    const { clock, nodes } = fleet(2, { write, partitions: 1, flushInterval: '20ms' }, {}, (store, i) => {
      if (i !== 0) return store
      gateA = gatedStore(store)
      return gateA.store
    })
    const [a, b] = nodes as [Cache, Cache]
    await Promise.all([a.ready(), b.ready()])
    // A is queued first, but its cache write is held until B's has landed.
    const held = gateA!.gate('setIf')
    const first = a.writeBehind('k', 'from A')
    await held.reached
    await b.writeBehind('k', 'from B')
    held.release()
    await first
    await settle()
    expect(await a.get('k')).toBe('from B')
    expect(await b.get('k')).toBe('from B')
    // B's node consumes the partition; its partial batch is written once flushInterval has passed.
    clock.advance(20)
    await a.flush()
    expect(calls.flat()).toEqual([['k', 'from B', 1]])
  })

  it('works without an L2 (in-process) and drains at close()', async () => {
    const { calls, write } = recorder()
    const cache = createCache({ namespace: 'wb-local', writeBehind: { write, flushInterval: '1h' } })
    caches = [cache]
    await cache.writeBehind('k', 1)
    expect(await cache.get('k')).toBe(1)
    expect(cache.stats().writeBehind.durable).toBe(false)
    await cache.close()
    expect(calls).toEqual([[['k', 1, 1]]])
  })

  it('close() stops waiting for a write that never finishes after closeTimeout', async () => {
    const never = new Promise<void>(() => {})
    const cache = createCache({
      namespace: 'wb-hung',
      writeBehind: { write: () => never, closeTimeout: '50ms', flushInterval: '1h' },
    })
    caches = [cache]
    await cache.writeBehind('k', 1)
    await expect(cache.flush({ timeout: '30ms' })).rejects.toMatchObject({ code: 'E_FLUSH_TIMEOUT' })
    await cache.close()
  })

  it('is refused at createCache for stores without a queue, and validates its options', async () => {
    const sharded = shardedStore([{ name: 'm', store: memoryStore() }])
    const write = async () => {}
    expect(() => createCache({ l2: sharded, writeBehind: { write } })).toThrow(
      expect.objectContaining({ code: 'E_INVALID_OPTION', option: 'writeBehind' }),
    )
    await sharded.close()
    expect(() => createCache({ writeBehind: {} as WriteBehindOptions })).toThrow(
      expect.objectContaining({ option: 'writeBehind.write' }),
    )
    for (const [option, value] of [
      ['batchSize', 0],
      ['maxRetries', -1],
      ['concurrency', 1.5],
      ['partitions', 0],
      ['flushInterval', 'soon'],
      ['leaseTtl', 0],
      ['colour', 'blue'],
    ] as const) {
      expect(() => createCache({ writeBehind: { write, [option]: value } }), option).toThrow(
        expect.objectContaining({ option: `writeBehind.${option}` }),
      )
    }
    expect(() => createCache({ writeBehind: { write, retryDelay: { initial: '2s', max: '1s' } } })).toThrow(
      expect.objectContaining({ option: 'writeBehind.retryDelay.max' }),
    )
    const plain = createCache({ namespace: 'wb-none' })
    caches = [plain]
    await expect(plain.writeBehind('k', 1)).rejects.toMatchObject({ option: 'writeBehind' })
    await plain.flush()
    expect(await plain.deadLetters()).toEqual([])
  })
})
