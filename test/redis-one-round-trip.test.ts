import { randomUUID } from 'node:crypto'
import { createClient } from 'redis'
import { afterEach, describe, expect, inject, it } from 'vitest'
import { decodeMessage, MessageKind } from '../src/bus/wire.js'
import { type Cache, createCache, memoryBus } from '../src/index.js'
import type { NodeRedisClient } from '../src/redis/connection.js'
import { redisBus, redisStore } from '../src/redis.js'
import { faultyBus } from './support/faults.js'
import { eventually } from './support/store-conformance.js'

// The write path in one round trip (docs/decisions.md, "One round trip per write"): on a single Redis
// server (or a Sentinel master) that carries both the L2 and the bus, a set, delete, invalidateTags or
// clear is one script that reads the stamps, writes, and publishes the invalidation. Counted here as the
// commands the writing node's client sends, and checked by what another node sees.

const redisUrl = inject('redisUrl')
const clusterNodes = inject('redisCluster')

const closes: (() => Promise<unknown>)[] = []
afterEach(async () => {
  await Promise.allSettled(closes.splice(0).map((close) => close()))
})

/** A client of the application whose commands are recorded (command name and arguments as text). */
async function recordingClient(): Promise<{ client: NodeRedisClient; sent: string[][] }> {
  const client = createClient({ url: redisUrl }) as unknown as NodeRedisClient
  client.on('error', () => {})
  await client.connect()
  closes.push(() => client.close())
  const sent: string[][] = []
  const send = client.sendCommand.bind(client)
  client.sendCommand = ((args: readonly unknown[], options?: unknown) => {
    sent.push(args.map((arg) => (Buffer.isBuffer(arg) ? arg.toString('latin1') : String(arg))))
    return send(args as never, options as never)
  }) as typeof client.sendCommand
  return { client, sent }
}

/** Node A over `client` (store and bus share it), node B over its own connections; no heartbeats. */
async function twoNodes(client: NodeRedisClient, namespace = `rt-${randomUUID().slice(0, 8)}`) {
  const node = (a: boolean) =>
    createCache({
      namespace,
      ttl: '1h',
      fleet: false,
      l2: a ? redisStore({ client }) : redisStore({ url: redisUrl }),
      bus: a ? redisBus({ client }) : redisBus({ url: redisUrl }),
    })
  const a = node(true)
  const b = node(false)
  closes.push(
    () => a.close(),
    () => b.close(),
  )
  await Promise.all([a.ready(), b.ready()])
  return { a, b }
}

/** Runs `write` and returns the commands it sent. */
async function commandsOf(sent: string[][], write: () => Promise<unknown>): Promise<string[][]> {
  sent.length = 0
  await write()
  return sent.splice(0)
}

/** B holds `key` in its L1 (a second read is an L1 hit). */
async function heldByB(b: Cache, key: string, expected: unknown): Promise<void> {
  expect(await b.get(key)).toEqual(expected)
  const hits = b.stats().l1.hits
  expect(await b.get(key)).toEqual(expected)
  expect(b.stats().l1.hits).toBe(hits + 1)
}

describe('one round trip per write on a single Redis server', () => {
  it('set, delete, invalidateTags and clear each send one command, and another node sees each', async () => {
    const { client, sent } = await recordingClient()
    const { a, b } = await twoNodes(client)
    const published = () => a.stats().bus.published
    // The first use of each script on a server costs a second command once (NOSCRIPT, then EVAL).
    await a.delete('warm-up')
    await a.invalidateTags(['warm-up'])

    await a.set('k', { n: 1 }, { tags: ['t'] })
    await heldByB(b, 'k', { n: 1 })
    let before = published()
    const set = await commandsOf(sent, () => a.set('k', { n: 2 }, { tags: ['t'] }))
    expect(set.map((command) => command[0])).toEqual(['EVALSHA'])
    expect(published()).toBe(before + 1)
    await eventually(async () => (await b.get<{ n: number }>('k'))?.n === 2, 3000, 'B to see the set')

    await heldByB(b, 'k', { n: 2 })
    before = published()
    expect((await commandsOf(sent, () => a.delete('k'))).map((command) => command[0])).toEqual(['EVALSHA'])
    expect(published()).toBe(before + 1)
    await eventually(async () => (await b.get('k')) === undefined, 3000, 'B to see the delete')

    await a.set('tagged', 'v', { tags: ['t'] })
    await heldByB(b, 'tagged', 'v')
    before = published()
    const bump = await commandsOf(sent, () => a.invalidateTags(['t']))
    expect(bump.map((command) => command[0])).toEqual(['EVALSHA'])
    expect(published()).toBe(before + 1)
    await eventually(async () => (await b.get('tagged')) === undefined, 3000, 'B to see the tag invalidation')

    await a.set('cleared', 'v')
    await heldByB(b, 'cleared', 'v')
    expect((await commandsOf(sent, () => a.clear())).map((command) => command[0])).toEqual(['EVALSHA'])
    await eventually(async () => (await b.get('cleared')) === undefined, 3000, 'B to see the clear')

    // A's own later reads see its writes: the generations it recorded are those L2 holds.
    await a.set('after', 'mine', { tags: ['t'] })
    expect(await a.get('after')).toBe('mine')
    expect(await b.get('after')).toBe('mine')
  })

  it('deleteMany sends one command per key, all in one pipeline, and announces every key', async () => {
    const { client, sent } = await recordingClient()
    const { a, b } = await twoNodes(client)
    await Promise.all(['x', 'y', 'z'].map((key) => a.set(key, key)))
    for (const key of ['x', 'y', 'z']) await heldByB(b, key, key)
    const commands = await commandsOf(sent, () => a.deleteMany(['x', 'y', 'z']))
    expect(commands.map((command) => command[0])).toEqual(['EVALSHA', 'EVALSHA', 'EVALSHA'])
    await eventually(
      async () => (await Promise.all(['x', 'y', 'z'].map((key) => b.get(key)))).every((v) => v === undefined),
      3000,
      'B to see the deletes',
    )
  })

  it('a set records the generation another node gave a tag before it, so its value survives', async () => {
    // B invalidated tag t; A has not heard of it (its bus is cut): A's set must still record the
    // generation L2 holds, or A's next read (and every other node's) would find its own write invalid.
    const { client } = await recordingClient()
    const namespace = `rt-${randomUUID().slice(0, 8)}`
    const cutBus = faultyBus(redisBus({ client }))
    const a = createCache({ namespace, fleet: false, l2: redisStore({ client }), bus: cutBus.bus })
    const b = createCache({
      namespace,
      fleet: false,
      l2: redisStore({ url: redisUrl }),
      bus: redisBus({ url: redisUrl }),
    })
    closes.push(
      () => a.close(),
      () => b.close(),
    )
    await Promise.all([a.ready(), b.ready()])
    cutBus.cut('nothing')
    await a.set('k', 'old', { tags: ['t'] })
    await b.invalidateTags(['t'])
    await a.set('k', 'new', { tags: ['t'] })
    expect(await b.get('k')).toBe('new')
    expect(await a.get('k')).toBe('new')
  })

  it('publishes itself only when the bus is on the same server: another server, a Cluster or another bus publish separately', () => {
    const same = redisStore({ url: redisUrl })
    const url = new URL(redisUrl)
    const otherPort = redisStore({ url: `redis://${url.hostname}:${Number(url.port) + 1}` })
    const cluster = redisStore({ cluster: clusterNodes.slice(0, 1) })
    closes.push(
      () => same.close(),
      () => otherPort.close(),
      () => cluster.close(),
    )
    const bus = redisBus({ url: redisUrl })
    const clusterBus = redisBus({ cluster: clusterNodes.slice(0, 1) })
    closes.push(
      () => bus.close(),
      () => clusterBus.close(),
    )
    expect(same.canAnnounce?.(bus)).toBe(true)
    // The database number does not matter: pub/sub channels are server-wide.
    expect(redisStore({ url: `${redisUrl}/3` }).canAnnounce?.(bus)).toBe(true)
    expect(otherPort.canAnnounce?.(bus)).toBe(false)
    // Another ACL user may not be allowed to publish where the bus's may.
    const otherUser = new URL(redisUrl)
    otherUser.username = 'writer'
    expect(redisStore({ url: otherUser.toString() }).canAnnounce?.(bus)).toBe(false)
    expect(cluster.canAnnounce?.(clusterBus)).toBe(false)
    expect(cluster.setStamped).toBeUndefined()
    expect(same.canAnnounce?.(memoryBus())).toBe(false)
    // A wrapped bus is not ours to publish for: its wrapper may drop or delay what passes through it.
    expect(same.canAnnounce?.(faultyBus(bus).bus)).toBe(false)
  })

  it('the announcement carries the version the store gave the write, and is not sent when the write is refused', async () => {
    const store = redisStore({ url: redisUrl })
    const listener = createClient({ url: redisUrl })
    closes.push(
      () => store.close(),
      () => listener.close(),
    )
    await listener.connect()
    const channel = `rt-channel-${randomUUID()}`
    const heard: Buffer[] = []
    await listener.subscribe(channel, (message) => heard.push(message), true)
    const key = `rt-key-${randomUUID()}`
    const { encodeMessage } = await import('../src/bus/wire.js')
    const origin = Buffer.alloc(8, 7)
    const message = encodeMessage({ kind: MessageKind.Keys, origin, names: ['k'], numbers: [0] })
    const announce = { channel, message }
    await store.set(key, Buffer.from('v'), 40, 60_000)
    const written = await store.setStamped!(
      key,
      Buffer.from('v2'),
      10,
      60_000,
      { keys: [], known: [], offsets: [], ttlMs: 60_000 },
      undefined,
      announce,
    )
    expect(written.version).toBe(41) // max(proposed, stored + 1)
    const deleted = await store.delete(key, 5, 60_000, undefined, announce)
    expect(deleted).toBe(42)
    const stampKey = `rt-stamp-${randomUUID()}`
    const stampMessage = encodeMessage({ kind: MessageKind.Stamps, origin, names: ['t:x'], numbers: [0] })
    expect(
      await store.bumpStamps([stampKey], 60_000, 99, false, [{ channel, message: stampMessage }]),
    ).toEqual([99])
    // Refused: past its deadline, nothing is written and nothing is announced.
    await expect(store.delete(key, 5, 60_000, Date.now() - 1000, announce)).rejects.toThrow()
    await eventually(() => heard.length >= 3, 3000, 'three announcements')
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(heard).toHaveLength(3)
    const decoded = heard.map((bytes) => decodeMessage(bytes))
    expect(decoded).toEqual([
      { kind: MessageKind.Keys, origin, names: ['k'], numbers: [41] },
      { kind: MessageKind.Keys, origin, names: ['k'], numbers: [42] },
      { kind: MessageKind.Stamps, origin, names: ['t:x'], numbers: [99] },
    ])
  })
})
