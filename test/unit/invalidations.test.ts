/**
 * The bus handler (Invalidations) with real parts around it and a bus the test drives: it hands the
 * handler raw bytes and connection statuses directly, so every outcome is decided by the test, not by
 * timing (issue 16, found by mutation testing).
 */
import diagnosticsChannel from 'node:diagnostics_channel'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Bus, BusStatus } from '../../src/bus/bus.js'
import { Invalidations } from '../../src/bus/invalidations.js'
import {
  encodeHeartbeat,
  encodeMessage,
  type HeartbeatMessage,
  MAX_MESSAGE_BYTES,
  MessageKind,
  WIRE_VERSION,
} from '../../src/bus/wire.js'
import { ManualClock } from '../../src/clock.js'
import { Coherence } from '../../src/coherence/coherence.js'
import { Lifetimes } from '../../src/coherence/lifetimes.js'
import { Stamps } from '../../src/coherence/stamps.js'
import { createEntry } from '../../src/entry/entry.js'
import { L1Entries } from '../../src/entry/l1-entries.js'
import { L1Writer } from '../../src/entry/l1-writer.js'
import { KeyNames, ROOT_NAMESPACE } from '../../src/keys.js'
import { CircuitBreaker } from '../../src/remote/circuit-breaker.js'
import { StatsCounters } from '../../src/stats/stats.js'
import { UnsentWrites } from '../../src/write/unsent-writes.js'

const other = Buffer.from('0102030405060708', 'hex')

afterEach(() => {
  vi.useRealTimers()
})

function setUp(options: { bus?: boolean; breaker?: boolean } = {}) {
  const clock = new ManualClock()
  const keys = new KeyNames('inv')
  const coherence = new Coherence(clock, options.bus !== false)
  const unsent = new UnsentWrites()
  const counters = new StatsCounters()
  const tier = new L1Entries({
    maxEntries: 100,
    maxBytes: undefined,
    policy: 'tinylfu',
    clock,
    sweepIntervalMs: 0,
  })
  const l1 = new L1Writer(tier, coherence, unsent, counters, clock, 60_000, true)
  const stamps = new Stamps({
    coherence,
    remote: undefined,
    keys,
    unsent,
    lifetimes: new Lifetimes(60_000, 300_000),
    counters,
    clock,
    clearL1: () => l1.clear(),
  })
  const driven = {
    onMessage: undefined as ((bytes: Uint8Array) => void) | undefined,
    onStatus: undefined as ((status: BusStatus) => void) | undefined,
    publish: vi.fn(async (_channel: string, _bytes: Uint8Array) => {}),
    unsubscribe: vi.fn(async () => {}),
  }
  const bus: Bus = {
    name: 'driven',
    subscribe: async (_channel, onMessage, onStatus) => {
      driven.onMessage = onMessage
      driven.onStatus = onStatus
      return { unsubscribe: driven.unsubscribe }
    },
    publish: (channel, bytes) => driven.publish(channel, bytes),
    close: async () => {},
  }
  const breaker = options.breaker
    ? new CircuitBreaker('bus', { failureThreshold: 2, openMs: 60_000 }, clock, () => {})
    : undefined
  const events = {
    heartbeats: [] as HeartbeatMessage[],
    written: [] as string[],
    reconnected: 0,
    closed: false,
  }
  const invalidations = new Invalidations({
    bus: options.bus === false ? undefined : bus,
    breaker,
    channel: keys.channel,
    namespace: 'inv',
    publishTimeoutMs: 500,
    storeAnnounces: false,
    coherence,
    stamps,
    l1,
    unsent,
    counters,
    clock,
    onHeartbeat: (message) => events.heartbeats.push(message),
    onKeyWritten: (rel) => events.written.push(rel),
    onReconnected: () => events.reconnected++,
    isClosed: () => events.closed,
  })
  const entry = (value: string, version: number, stampKeys = ROOT_NAMESPACE.stampKeys, stampGens = [0]) =>
    createEntry({
      value,
      freeze: false,
      version,
      writtenAt: clock.now(),
      loadMs: 0,
      freshUntil: clock.now() + 60_000,
      staleUntil: clock.now() + 60_000,
      namespaceStamps: 1,
      stampKeys,
      stampGens,
    })
  /** Puts `value` at `version` in L1 (as a fill that nothing overtook). */
  const put = (rel: string, version: number) =>
    l1.store(rel, entry(rel, version), 10, Number.MAX_SAFE_INTEGER)
  const deliver = (bytes: Uint8Array) => driven.onMessage!(bytes)
  const keysMessage = (names: string[], numbers: number[], origin: Buffer = other) =>
    encodeMessage({ kind: MessageKind.Keys, origin, names, numbers })
  const stampsMessage = (names: string[], numbers: number[]) =>
    encodeMessage({ kind: MessageKind.Stamps, origin: other, names, numbers })
  return {
    clock,
    coherence,
    counters,
    tier,
    unsent,
    breaker,
    driven,
    events,
    invalidations,
    put,
    deliver,
    keysMessage,
    stampsMessage,
  }
}

/** Fills in flight: voided (token below the floor, or the key marked) or not. */
function fillAllowedAfter(t: ReturnType<typeof setUp>, act: () => void, rel = 'k', version = 1): boolean {
  let allowed = false
  void t.coherence.fill(async (token) => {
    act()
    allowed = t.coherence.fillAllowed(rel, token, version)
  })
  return allowed
}

describe('Invalidations: the subscription and trust', () => {
  it('trusts L1 only once subscribed, and counts that as a (re)connection', async () => {
    const t = setUp()
    expect(t.coherence.trusted).toBe(false)
    expect(t.invalidations.connected).toBe(false)
    await t.invalidations.subscribe()
    expect(t.coherence.trusted).toBe(true)
    expect(t.invalidations.connected).toBe(true)
    expect(t.counters.busReconnects).toBe(1)
    expect(t.events.reconnected).toBe(1)
  })

  it('stops trusting L1 on disconnect; on reconnect forgets L1, stamps and fills in flight before trusting again', async () => {
    const t = setUp()
    await t.invalidations.subscribe()
    const version = t.coherence.versions.next()
    t.put('k', version)
    t.coherence.raiseStamp('t:x', t.coherence.versions.next(), t.clock.now())
    t.unsent.stamps.set('t:mine', 77)
    t.driven.onStatus!('disconnected')
    expect(t.invalidations.connected).toBe(false)
    expect(t.coherence.trusted).toBe(false)
    expect(t.tier.peek('k')).toBeDefined() // kept until the bus is back, only not trusted
    let allowed = true
    void t.coherence.fill(async (token) => {
      t.driven.onStatus!('connected')
      allowed = t.coherence.fillAllowed('other', token, 1)
    })
    expect(allowed).toBe(false)
    expect(t.tier.peek('k')).toBeUndefined()
    expect(t.coherence.stampGen('t:x')).toBe(0)
    expect(t.coherence.stampGen('t:mine')).toBe(77) // a bump of its own not in L2 yet stays in effect
    expect(t.coherence.trusted).toBe(true)
    expect(t.invalidations.connected).toBe(true)
    expect(t.counters.busReconnects).toBe(2)
    expect(t.events.reconnected).toBe(2)
  })

  it("a 'connected' while connected changes nothing", async () => {
    const t = setUp()
    await t.invalidations.subscribe()
    t.put('k', t.coherence.versions.next())
    expect(fillAllowedAfter(t, () => t.driven.onStatus!('connected'))).toBe(true)
    expect(t.tier.peek('k')).toBeDefined()
    expect(t.counters.busReconnects).toBe(1)
    expect(t.events.reconnected).toBe(1)
  })

  it("a 'connected' after the cache closed does not trust L1 again", async () => {
    const t = setUp()
    await t.invalidations.subscribe()
    t.driven.onStatus!('disconnected')
    t.events.closed = true
    t.put('k', t.coherence.versions.next())
    t.driven.onStatus!('connected')
    expect(t.coherence.trusted).toBe(false)
    expect(t.invalidations.connected).toBe(false)
    expect(t.tier.peek('k')).toBeDefined()
    expect(t.events.reconnected).toBe(1)
  })

  it('reports every status on the bus diagnostics channel', async () => {
    const t = setUp()
    const seen: unknown[] = []
    const listen = (message: unknown) => seen.push(message)
    diagnosticsChannel.subscribe('coherent-cache:bus', listen)
    try {
      await t.invalidations.subscribe()
      t.driven.onStatus!('disconnected')
    } finally {
      diagnosticsChannel.unsubscribe('coherent-cache:bus', listen)
    }
    expect(seen).toEqual([
      { namespace: 'inv', status: 'connected' },
      { namespace: 'inv', status: 'disconnected' },
    ])
  })

  it('unsubscribe ends the subscription; without a bus, subscribing does nothing', async () => {
    const t = setUp()
    await t.invalidations.subscribe()
    await t.invalidations.unsubscribe()
    expect(t.driven.unsubscribe).toHaveBeenCalledTimes(1)
    const none = setUp({ bus: false })
    await none.invalidations.subscribe()
    await none.invalidations.unsubscribe()
    expect(none.invalidations.connected).toBe(false)
    expect(none.coherence.trusted).toBe(true)
  })
})

describe('Invalidations: what arrives', () => {
  it('drops bytes past MAX_MESSAGE_BYTES unread, and corrupt bytes; ignores and counts unknown kinds', async () => {
    const t = setUp()
    await t.invalidations.subscribe()
    const version = t.coherence.versions.next()
    t.put('k', version)
    const huge = Buffer.alloc(MAX_MESSAGE_BYTES + 1)
    t.keysMessage(['k'], [version]).copy(huge)
    t.deliver(huge)
    expect(t.counters.busDropped).toBe(1)
    t.deliver(Buffer.from([WIRE_VERSION]))
    expect(t.counters.busDropped).toBe(2)
    const unknown = t.keysMessage(['k'], [version])
    unknown[1] = 9
    t.deliver(unknown)
    expect(t.counters.busUnknown).toBe(1)
    expect(t.counters.busReceived).toBe(0)
    expect(t.tier.peek('k')).toBeDefined()
    expect(t.events.written).toEqual([])
    // At the bound it is read (trailing bytes after the items are ignored) and applied.
    const exactly = Buffer.alloc(MAX_MESSAGE_BYTES)
    t.keysMessage(['k'], [version]).copy(exactly)
    t.deliver(exactly)
    expect(t.counters.busReceived).toBe(1)
    expect(t.tier.peek('k')).toBeUndefined()
  })

  it("ignores this node's own messages", async () => {
    const t = setUp()
    await t.invalidations.subscribe()
    const version = t.coherence.versions.next()
    t.put('k', version)
    t.deliver(t.keysMessage(['k'], [version + 1], t.coherence.nodeId))
    expect(t.tier.peek('k')).toBeDefined()
    expect(t.counters.busReceived).toBe(0)
    t.deliver(encodeHeartbeat(t.coherence.nodeId, '{}'))
    expect(t.events.heartbeats).toEqual([])
  })

  it('hands heartbeats of other nodes to the fleet view, not counted as invalidations', async () => {
    const t = setUp()
    await t.invalidations.subscribe()
    t.deliver(encodeHeartbeat(other, '{"name":"b"}'))
    expect(t.events.heartbeats).toHaveLength(1)
    expect(t.events.heartbeats[0]!.body).toBe('{"name":"b"}')
    expect(t.counters.busReceived).toBe(0)
  })

  it('a key message drops L1 entries up to its version, voids older fills, and wakes lease waiters', async () => {
    const t = setUp()
    await t.invalidations.subscribe()
    const older = t.coherence.versions.next()
    const newer = t.coherence.versions.next()
    t.put('a', older)
    t.put('b', newer)
    t.put('c', older)
    t.unsent.keep('a', older, undefined)
    let fillA = true
    let fillC = false
    void t.coherence.fill(async (token) => {
      t.deliver(t.keysMessage(['a', 'b'], [older, older]))
      fillA = t.coherence.fillAllowed('a', token, older - 1)
      fillC = t.coherence.fillAllowed('c', token, older)
    })
    expect(t.counters.busReceived).toBe(1)
    expect(t.tier.peek('a')).toBeUndefined()
    expect(t.tier.peek('b')).toBeDefined() // newer than the message
    expect(t.tier.peek('c')).toBeDefined()
    expect(fillA).toBe(false)
    expect(fillC).toBe(true)
    expect(t.unsent.get('a')).toBeUndefined() // superseded by the other node's newer write
    expect(t.events.written).toEqual(['a', 'b'])
  })

  it("observes other nodes' versions, so that this node's next writes order after them", async () => {
    const t = setUp()
    await t.invalidations.subscribe()
    const ahead = (t.clock.now() + 5) * 4096
    t.deliver(t.keysMessage(['k'], [ahead]))
    expect(t.coherence.versions.next()).toBeGreaterThan(ahead)
  })

  it('a key message with a number no correct node sends still drops the key, whatever version L1 holds', async () => {
    const t = setUp()
    await t.invalidations.subscribe()
    const version = t.coherence.versions.next()
    t.put('k', version)
    t.put('j', version)
    let allowed = true
    void t.coherence.fill(async (token) => {
      t.deliver(t.keysMessage(['k'], [-1]))
      allowed = t.coherence.fillAllowed('k', token, version + 1000)
    })
    expect(t.counters.busRejected).toBe(1)
    expect(t.tier.peek('k')).toBeUndefined()
    expect(t.tier.peek('j')).toBeDefined()
    expect(allowed).toBe(false)
    expect(t.events.written).toEqual(['k'])
    expect(t.counters.lag.count).toBe(0) // an implausible number says nothing about lag
  })

  it("records the lag from the writer's clock reading, and reports it on the invalidation channel", async () => {
    const t = setUp()
    await t.invalidations.subscribe()
    const version = t.coherence.versions.next() // written now, by this clock
    t.clock.advance(30)
    const seen: Array<Record<string, unknown>> = []
    const listen = (message: unknown) => seen.push(message as Record<string, unknown>)
    diagnosticsChannel.subscribe('coherent-cache:invalidation', listen)
    try {
      t.deliver(t.keysMessage(['k', '\u0001users\u0001j'], [version, version]))
      t.deliver(t.stampsMessage(['t:x'], [version]))
      t.deliver(t.keysMessage(['late'], [(t.clock.now() + 10) * 4096]))
      t.deliver(t.keysMessage([], []))
    } finally {
      diagnosticsChannel.unsubscribe('coherent-cache:invalidation', listen)
    }
    expect(t.counters.lag.count).toBe(3)
    expect(t.counters.lag.max).toBe(30)
    expect(t.counters.lag.sum).toBe(60) // 30 + 30 + 0 (a reading ahead counts as no lag)
    expect(seen).toEqual([
      {
        namespace: 'inv',
        kind: 'keys',
        names: [
          { path: '', key: 'k' },
          { path: 'users', key: 'j' },
        ],
        lagMs: 30,
      },
      { namespace: 'inv', kind: 'stamps', names: ['t:x'], lagMs: 30 },
      { namespace: 'inv', kind: 'keys', names: [{ path: '', key: 'late' }], lagMs: 0 },
      { namespace: 'inv', kind: 'keys', names: [], lagMs: undefined },
    ])
  })

  it('a stamp message raises tag and namespace stamps and voids fills; a root clear empties L1', async () => {
    const t = setUp()
    await t.invalidations.subscribe()
    const version = t.coherence.versions.next()
    t.put('k', version)
    const gen = t.coherence.versions.next()
    expect(fillAllowedAfter(t, () => t.deliver(t.stampsMessage(['t:x', 'n:users'], [gen, gen])))).toBe(false)
    expect(t.coherence.stampGen('t:x')).toBe(gen)
    expect(t.coherence.stampGen('n:users')).toBe(gen)
    expect(t.tier.peek('k')).toBeDefined() // not a root clear: entries are judged on read
    expect(t.counters.busRejected).toBe(0)
    // The same generations again: nothing rose, fills in flight stand.
    expect(fillAllowedAfter(t, () => t.deliver(t.stampsMessage(['t:x'], [gen])))).toBe(true)
    const root = t.coherence.versions.next()
    t.deliver(t.stampsMessage(['n:'], [root]))
    expect(t.tier.peek('k')).toBeUndefined()
    expect(t.coherence.stampGen('n:')).toBe(root)
  })

  it('a stamp message that does not move the root stamp leaves L1 alone', async () => {
    const t = setUp()
    await t.invalidations.subscribe()
    const root = t.coherence.versions.next()
    t.deliver(t.stampsMessage(['n:'], [root]))
    t.put('k', t.coherence.versions.next())
    t.deliver(t.stampsMessage(['n:', 't:y'], [root, t.coherence.versions.next()]))
    expect(t.tier.peek('k')).toBeDefined()
  })

  it('rejects stamp names that are neither tags nor namespaces, and implausible generations', async () => {
    const t = setUp()
    await t.invalidations.subscribe()
    const gen = t.coherence.versions.next()
    expect(
      fillAllowedAfter(t, () => t.deliver(t.stampsMessage(['x:evil', 't:ok', 'n:ns'], [gen, -1, 2 ** 60]))),
    ).toBe(true)
    expect(t.counters.busRejected).toBe(3)
    expect(t.coherence.stampGen('x:evil')).toBe(0)
    expect(t.coherence.stampGen('t:ok')).toBe(0)
    expect(t.coherence.stampGen('n:ns')).toBe(0)
  })
})

describe('Invalidations: publishing', () => {
  it('publishes encoded messages on its channel and counts them; without a bus, publish is a no-op', async () => {
    const t = setUp()
    const message = t.invalidations.keys(['k'], [5])
    expect(message).toEqual({
      kind: MessageKind.Keys,
      origin: t.coherence.nodeId,
      names: ['k'],
      numbers: [5],
    })
    expect(await t.invalidations.publish(message)).toBe(true)
    expect(t.driven.publish).toHaveBeenCalledWith(new KeyNames('inv').channel, encodeMessage(message))
    expect(t.counters.busPublished).toBe(1)
    const stamps = t.invalidations.stamps(['t:x'], [6])
    expect(stamps).toEqual({
      kind: MessageKind.Stamps,
      origin: t.coherence.nodeId,
      names: ['t:x'],
      numbers: [6],
    })
    const none = setUp({ bus: false })
    expect(await none.invalidations.publish(message)).toBe(true)
    expect(none.counters.busPublished).toBe(0)
    expect(await none.invalidations.publishRaw(new Uint8Array([1]))).toBe(false)
  })

  it('a publish the bus refuses is false and counted as an error', async () => {
    const t = setUp()
    t.driven.publish.mockRejectedValueOnce(new Error('down'))
    expect(await t.invalidations.publish(t.invalidations.keys(['k'], [5]))).toBe(false)
    expect(t.counters.busPublishErrors).toBe(1)
    expect(t.counters.busPublished).toBe(0)
  })

  it('a publish the bus never answers is false after publishTimeoutMs', async () => {
    vi.useFakeTimers()
    const t = setUp()
    t.driven.publish.mockImplementationOnce(() => new Promise<void>(() => {}))
    let sent: boolean | undefined
    void t.invalidations.publishRaw(new Uint8Array([1])).then((ok) => {
      sent = ok
    })
    await vi.advanceTimersByTimeAsync(499)
    expect(sent).toBeUndefined()
    await vi.advanceTimersByTimeAsync(1)
    expect(sent).toBe(false)
  })

  it('publishes through the bus breaker: once it opens, the bus is not called', async () => {
    const t = setUp({ breaker: true })
    expect(t.invalidations.breaker).toBe(t.breaker)
    t.driven.publish.mockRejectedValue(new Error('down'))
    expect(await t.invalidations.publishRaw(new Uint8Array([1]))).toBe(false)
    expect(await t.invalidations.publishRaw(new Uint8Array([1]))).toBe(false)
    expect(t.breaker!.state).toBe('open')
    expect(await t.invalidations.publishRaw(new Uint8Array([1]))).toBe(false)
    expect(t.driven.publish).toHaveBeenCalledTimes(2)
  })
})
