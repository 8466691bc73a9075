import { afterEach, describe, expect, it } from 'vitest'
import {
  type Cache,
  type CacheOptions,
  createCache,
  ManualClock,
  memoryBus,
  memoryStore,
  type RemoteStore,
} from '../src/index.js'
import { deferred } from './support/deferred.js'
import { gatedStore } from './support/faults.js'
import { settle } from './support/nodes.js'

interface Row {
  id: number
  name: string
  version: number
}

/** A database of one table: each update raises the row's version (its commit order). */
function database() {
  const rows = new Map<number, Row>()
  return {
    rows,
    update(id: number, name: string): Row {
      const row = { id, name, version: (rows.get(id)?.version ?? 0) + 1 }
      rows.set(id, row)
      return row
    },
  }
}

function fleet(options: CacheOptions = {}, store?: (shared: RemoteStore) => RemoteStore) {
  const clock = new ManualClock()
  const shared = memoryStore({ clock })
  const bus = memoryBus()
  const l2 = store ? store(shared) : shared
  const make = () => createCache({ namespace: 'wt', clock, l2, bus, circuitBreaker: false, ...options })
  return { clock, shared, nodes: [make(), make()] as const }
}

let caches: readonly Cache[] = []
afterEach(async () => {
  await Promise.all(caches.map((cache) => cache.close()))
  caches = []
})

describe('writeThrough(key, writer)', () => {
  it('runs the writer first, then stores its result in every tier and invalidates the other nodes', async () => {
    const { nodes, shared } = fleet()
    caches = nodes
    const [a, b] = nodes
    const db = database()
    await Promise.all([a.ready(), b.ready()])
    await a.writeThrough('user:1', () => db.update(1, 'Ada'))
    expect(await b.get('user:1')).toEqual({ id: 1, name: 'Ada', version: 1 }) // now in B's L1
    const order: string[] = []
    const written = await a.writeThrough('user:1', async () => {
      order.push(`writer sees ${(await shared.head!('wt:user:1', [])).version}`)
      return db.update(1, 'Ada Lovelace')
    })
    expect(written).toEqual({ id: 1, name: 'Ada Lovelace', version: 2 })
    expect(order).toHaveLength(1)
    await settle()
    expect(await b.get('user:1')).toEqual(written)
    expect(await a.get('user:1')).toEqual(written)
    expect(a.stats().l1.hits).toBeGreaterThan(0)
    expect(a.stats().writeThrough).toEqual({ writes: 2, invalidated: 0, superseded: 0 })
  })

  it('leaves L1 and L2 untouched on every node when the writer throws, and the error reaches the caller', async () => {
    const { nodes, shared } = fleet()
    caches = nodes
    const [a, b] = nodes
    await Promise.all([a.ready(), b.ready()])
    await a.set('user:1', 'before', { tags: ['users'] })
    expect(await a.get('user:1')).toBe('before')
    expect(await b.get('user:1')).toBe('before')
    const head = await shared.head!('wt:user:1', ['wt#t:users'])
    const raw = await shared.get('wt:user:1')
    const published = a.stats().bus.published
    const received = b.stats().bus.received
    const failure = new Error('unique constraint violated')
    await expect(
      a.writeThrough(
        'user:1',
        async () => {
          throw failure
        },
        { tags: ['users'] },
      ),
    ).rejects.toBe(failure)
    await settle()
    expect(await shared.head!('wt:user:1', ['wt#t:users'])).toEqual(head)
    expect(await shared.get('wt:user:1')).toEqual(raw)
    expect(a.stats().bus.published).toBe(published)
    expect(b.stats().bus.received).toBe(received)
    const hits = [a.stats().l1.hits, b.stats().l1.hits]
    expect(await a.get('user:1')).toBe('before')
    expect(await b.get('user:1')).toBe('before')
    expect([a.stats().l1.hits, b.stats().l1.hits]).toEqual([hits[0]! + 1, hits[1]! + 1])
    expect(a.stats().writeThrough.writes).toBe(0)
  })

  it('invalidates instead of writing when another write lands while its writer runs (no commit order)', async () => {
    const { nodes, shared } = fleet()
    caches = nodes
    const [a, b] = nodes
    const db = database()
    await Promise.all([a.ready(), b.ready()])
    await a.writeThrough('user:1', () => db.update(1, 'v1'))
    // A's writer starts, B writes through meanwhile (B commits first), then A commits: A's value is the
    // database's, but B's cache write landed after A noted L2. A must not write over B's: it deletes.
    const started = deferred<void>()
    const proceed = deferred<void>()
    const slow = a.writeThrough('user:1', async () => {
      started.resolve()
      await proceed.promise
      return db.update(1, 'A (committed last)')
    })
    await started.promise
    await b.writeThrough('user:1', () => db.update(1, 'B (committed first)'))
    proceed.resolve()
    expect(await slow).toEqual({ id: 1, name: 'A (committed last)', version: 3 })
    await settle()
    expect(await shared.head!('wt:user:1', [])).toMatchObject({ deleted: true })
    expect(await a.get('user:1')).toBeUndefined()
    expect(await b.get('user:1')).toBeUndefined()
    const load = async () => db.rows.get(1)
    expect(await b.getOrSet('user:1', load)).toEqual(db.rows.get(1))
    expect(a.stats().writeThrough.invalidated).toBe(1)
  })

  it('with a commit order, concurrent write-throughs leave the highest commit whichever lands last', async () => {
    for (const lastToLand of ['older', 'newer'] as const) {
      const { nodes } = fleet()
      caches = nodes
      const [a, b] = nodes
      const db = database()
      await Promise.all([a.ready(), b.ready()])
      const version = (row: Row) => row.version
      await a.writeThrough('user:1', () => db.update(1, 'v1'), { version })
      const committed = deferred<void>()
      const proceed = deferred<void>()
      // A commits first (version 2); B commits next (version 3). The one named lands last.
      const first = a.writeThrough(
        'user:1',
        async () => {
          const row = db.update(1, 'A')
          committed.resolve()
          if (lastToLand === 'older') await proceed.promise
          return row
        },
        { version },
      )
      await committed.promise
      const second = b.writeThrough(
        'user:1',
        async () => {
          const row = db.update(1, 'B')
          if (lastToLand === 'newer') await proceed.promise
          return row
        },
        { version },
      )
      await (lastToLand === 'older' ? second : first)
      proceed.resolve()
      await Promise.all([first, second])
      await settle()
      expect(await a.get('user:1'), lastToLand).toEqual({ id: 1, name: 'B', version: 3 })
      expect(await b.get('user:1'), lastToLand).toEqual({ id: 1, name: 'B', version: 3 })
      if (lastToLand === 'older') expect(a.stats().writeThrough.superseded).toBe(1)
      await Promise.all(nodes.map((node) => node.close()))
    }
  })

  it('invalidates when the result cannot be cached, has no valid commit order, or is undefined', async () => {
    const { nodes, shared } = fleet()
    caches = nodes
    const [a] = nodes
    await a.set('k', 'old')
    await expect(a.writeThrough('k', () => ({ callback: () => {} }))).rejects.toMatchObject({
      code: 'E_UNSERIALIZABLE_VALUE',
    })
    expect(await shared.head!('wt:k', [])).toMatchObject({ deleted: true })
    await a.set('k', 'old')
    await expect(a.writeThrough('k', () => ({ v: 1 }), { version: () => -1 })).rejects.toMatchObject({
      code: 'E_INVALID_OPTION',
      option: 'version',
    })
    expect(await a.get('k')).toBeUndefined()
    await a.set('k', 'old')
    expect(await a.writeThrough('k', () => undefined)).toBeUndefined()
    expect(await a.get('k')).toBeUndefined()
    // orders as pg returns int8 (strings) and as bigints
    expect(await a.writeThrough('k', () => ({ v: 2 }), { version: () => '18446744073709551615' })).toEqual({
      v: 2,
    })
    expect(await a.writeThrough('k', () => ({ v: 1 }), { version: () => 5n })).toEqual({ v: 1 })
    expect(await a.get('k')).toEqual({ v: 2 })
  })

  it('invalidates when L2 cannot be asked before the writer, and retries the delete when L2 is back', async () => {
    let gated!: ReturnType<typeof gatedStore>
    const { nodes, shared } = fleet({}, (inner) => {
      gated = gatedStore(inner)
      return gated.store
    })
    caches = nodes
    const [a, b] = nodes
    await Promise.all([a.ready(), b.ready()])
    await a.set('k', 'old')
    expect(await b.get('k')).toBe('old')
    const down = new Error('connection refused')
    for (const op of ['head', 'delete', 'get'] as const) gated.fail(op, down)
    expect(await a.writeThrough('k', () => 'new')).toBe('new')
    expect(a.stats().pending).toBe(1)
    expect(await a.get('k')).toBeUndefined() // read-your-writes: the invalidation holds here meanwhile
    for (const op of ['head', 'delete', 'get'] as const) gated.fail(op, undefined)
    // The next write through gets L2 back; the retry of the delete went out first.
    await (a as unknown as { rt: { outage: { retry(): Promise<void> } } }).rt.outage.retry()
    expect(a.stats().pending).toBe(0)
    expect(await shared.head!('wt:k', [])).toMatchObject({ deleted: true })
    await settle()
    expect(await b.get('k')).toBeUndefined()
  })

  it('invalidates instead of writing on a store without setIf; is a set after the writer without an L2', async () => {
    const { nodes, shared } = fleet({}, (inner) => {
      // A store of the application's, written before setIf existed.
      const { setIf: _omitted, ...rest } = gatedStore(inner).store
      return rest
    })
    caches = nodes
    const [a] = nodes
    await a.set('k', 'old')
    expect(await a.writeThrough('k', () => 'new')).toBe('new')
    expect(await shared.head!('wt:k', [])).toMatchObject({ deleted: true })
    const local = createCache({ namespace: 'wt-local' })
    caches = [...nodes, local]
    expect(await local.writeThrough('k', () => 'v')).toBe('v')
    expect(await local.get('k')).toBe('v')
  })

  it('validates its arguments', async () => {
    const { nodes } = fleet()
    caches = nodes
    const [a] = nodes
    await expect(a.writeThrough('k', 'not a function' as never)).rejects.toMatchObject({ option: 'writer' })
    await expect(a.writeThrough('k', () => 1, { version: 3 as never })).rejects.toMatchObject({
      option: 'version',
    })
    await expect(a.writeThrough('', () => 1)).rejects.toMatchObject({ code: 'E_INVALID_KEY' })
  })
})
