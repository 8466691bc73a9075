import { randomUUID } from 'node:crypto'
import { createClient } from 'redis'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { type NodeRedisClient, redisStore } from '../src/redis.js'
import { MemoryQueueLog } from '../src/stores/memory-queue.js'
import type { RemoteStore } from '../src/stores/store.js'
import { compareIds, type QueueLog } from '../src/write-behind/queue-log.js'
import { eventually } from './support/store-conformance.js'

// The write-behind queue contract (write-behind/queue-log.ts), the same for every implementation: the
// in-process one of memoryStore and Redis Streams (standalone, Cluster, and a RESP3 client passed in).

const redisUrl = inject('redisUrl')
const clusterNodes = inject('redisCluster')
let resp3: NodeRedisClient | undefined

interface Case {
  name: string
  open: () => Promise<{ log: QueueLog; close: () => Promise<void> }>
}

const fromStore = (store: RemoteStore) => ({ log: store.queue!, close: () => store.close() })

const cases: Case[] = [
  {
    name: 'memoryStore',
    open: async () => ({ log: new MemoryQueueLog({ now: Date.now }), close: async () => {} }),
  },
  { name: 'redisStore({ url })', open: async () => fromStore(redisStore({ url: redisUrl })) },
  {
    name: 'redisStore({ cluster })',
    open: async () => fromStore(redisStore({ cluster: clusterNodes.slice(0, 1) })),
  },
  {
    name: 'redisStore({ client }) speaking RESP3',
    open: async () => {
      if (resp3 === undefined) {
        const client = createClient({ url: redisUrl, RESP: 3 }) as unknown as NodeRedisClient
        client.on('error', () => {})
        await client.connect()
        resp3 = client
      }
      return fromStore(redisStore({ client: resp3 }))
    },
  },
]

afterAll(async () => {
  await resp3?.close()
})

const bytes = (text: string) => Buffer.from(text)
const texts = (entries: { bytes: Uint8Array }[]) =>
  entries.map((entry) => Buffer.from(entry.bytes).toString())

describe.each(cases)('$name conforms to QueueLog', ({ open }) => {
  let log: QueueLog
  let close: () => Promise<void>
  const run = randomUUID()
  let n = 0
  /** Keys of one partition (one hash tag), unique to the test. */
  const partition = () => {
    const tag = `{queue-test:${run}:${n++}}`
    return { stream: `s${tag}`, dead: `d${tag}`, lease: `l${tag}` }
  }

  beforeAll(async () => {
    ;({ log, close } = await open())
  })
  afterAll(async () => {
    await close?.()
  })

  it('appends with increasing ids; lengths, lastId and holdsUpTo follow', async () => {
    const { stream } = partition()
    expect(await log.lengths([stream])).toEqual([0])
    expect(await log.lastId(stream)).toBeUndefined()
    const ids: string[] = []
    for (let i = 0; i < 5; i++) ids.push(await log.append(stream, bytes(`e${i}`)))
    expect([...ids].sort(compareIds)).toEqual(ids)
    expect(new Set(ids).size).toBe(5)
    expect(await log.lengths([stream, partition().stream])).toEqual([5, 0])
    expect(await log.lastId(stream)).toBe(ids[4])
    expect(await log.holdsUpTo(stream, ids[0]!)).toBe(true)
    expect(texts(await log.range(stream, 10))).toEqual(['e0', 'e1', 'e2', 'e3', 'e4'])
    expect(texts(await log.range(stream, 2, ids[1]))).toEqual(['e2', 'e3'])
  })

  it('reads each entry once per group, in order; ack deletes; claim takes what others left pending', async () => {
    const { stream } = partition()
    await log.ensureGroup(stream, 'g')
    await log.ensureGroup(stream, 'g') // twice is fine
    const ids = [await log.append(stream, bytes('a')), await log.append(stream, bytes('b'))]
    ids.push(await log.append(stream, bytes('c')))
    expect(texts(await log.read(stream, 'g', 'one', 2))).toEqual(['a', 'b'])
    expect(texts(await log.read(stream, 'g', 'two', 10))).toEqual(['c'])
    expect(await log.read(stream, 'g', 'one', 10)).toEqual([])
    await log.ack(stream, 'g', [ids[0]!])
    expect(await log.lengths([stream])).toEqual([2])
    expect(await log.holdsUpTo(stream, ids[0]!)).toBe(false)
    expect(await log.holdsUpTo(stream, ids[1]!)).toBe(true)
    // 'three' takes over everything pending (b from one, c from two), in id order.
    const claimed = await log.claim(stream, 'g', 'three')
    expect(claimed.map((entry) => entry.id)).toEqual([ids[1], ids[2]])
    expect(texts(claimed)).toEqual(['b', 'c'])
    await log.ack(stream, 'g', [ids[1]!, ids[2]!])
    expect(await log.claim(stream, 'g', 'three')).toEqual([])
    expect(await log.lengths([stream])).toEqual([0])
  })

  it('reads the entries appended before the group existed, and claims past entries deleted meanwhile', async () => {
    const { stream } = partition()
    const early = await log.append(stream, bytes('early'))
    await log.ensureGroup(stream, 'g')
    const late = await log.append(stream, bytes('late'))
    expect((await log.read(stream, 'g', 'c', 10)).map((entry) => entry.id)).toEqual([early, late])
    await log.remove(stream, [early])
    expect(texts(await log.claim(stream, 'g', 'other'))).toEqual(['late'])
  })

  it('acknowledges many ids at once', async () => {
    const { stream } = partition()
    await log.ensureGroup(stream, 'g')
    for (let i = 0; i < 1_500; i++) void log.append(stream, bytes(String(i)))
    await log.append(stream, bytes('last'))
    const read = await log.read(stream, 'g', 'c', 2_000)
    expect(read).toHaveLength(1_501)
    await log.ack(
      stream,
      'g',
      read.map((entry) => entry.id),
    )
    expect(await log.lengths([stream])).toEqual([0])
    expect(await log.claim(stream, 'g', 'c')).toEqual([])
  })

  it('buries entries in a dead-letter stream atomically, and revives a dead letter once', async () => {
    const { stream, dead } = partition()
    await log.ensureGroup(stream, 'g')
    const ids = [await log.append(stream, bytes('x1')), await log.append(stream, bytes('x2'))]
    await log.read(stream, 'g', 'c', 10)
    const deadId = await log.bury(stream, 'g', ids, dead, bytes('dead x'))
    expect(await log.lengths([stream, dead])).toEqual([0, 1])
    expect(await log.claim(stream, 'g', 'c')).toEqual([])
    expect((await log.range(dead, 10)).map((entry) => entry.id)).toEqual([deadId])
    const revived = await log.revive(dead, deadId, stream, bytes('again'))
    expect(revived).toBeDefined()
    expect(await log.revive(dead, deadId, stream, bytes('twice'))).toBeUndefined()
    expect(texts(await log.read(stream, 'g', 'c', 10))).toEqual(['again'])
    expect(await log.lengths([dead])).toEqual([0])
    const other = await log.bury(stream, 'g', [revived!], dead, bytes('dead again'))
    expect(await log.remove(dead, [other, other])).toBe(1)
  })

  it('grants a lease to one token, renews and releases it only for that token, and lets it expire', async () => {
    const { lease } = partition()
    expect(await log.acquire(lease, 'a', 60_000)).toBe(true)
    expect(await log.acquire(lease, 'b', 60_000)).toBe(false)
    expect(await log.renew(lease, 'b', 60_000)).toBe(false)
    expect(await log.release(lease, 'b')).toBe(false)
    expect(await log.renew(lease, 'a', 100)).toBe(true)
    await eventually(() => log.acquire(lease, 'b', 60_000), 3000, 'the lease to expire')
    expect(await log.renew(lease, 'a', 60_000)).toBe(false)
    expect(await log.release(lease, 'a')).toBe(false)
    expect(await log.release(lease, 'b')).toBe(true)
    expect(await log.acquire(lease, 'c', 60_000)).toBe(true)
  })
})
