import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Bus } from '../../src/bus/bus.js'
import { Invalidations } from '../../src/bus/invalidations.js'
import { memoryBus } from '../../src/bus/memory-bus.js'
import {
  decodeMessage,
  HEARTBEAT_KIND,
  type InvalidationMessage,
  MAX_ITEMS,
  UNKNOWN_KIND,
} from '../../src/bus/wire.js'
import { ManualClock } from '../../src/clock.js'
import { Coherence } from '../../src/coherence/coherence.js'
import { Lifetimes } from '../../src/coherence/lifetimes.js'
import { Stamps } from '../../src/coherence/stamps.js'
import { createEntry } from '../../src/entry/entry.js'
import { L1Entries } from '../../src/entry/l1-entries.js'
import { L1Writer } from '../../src/entry/l1-writer.js'
import { KeyNames, ROOT_NAMESPACE } from '../../src/keys.js'
import { RemoteTier } from '../../src/remote/remote-tier.js'
import { StatsCounters } from '../../src/stats/stats.js'
import { memoryStore } from '../../src/stores/memory-store.js'
import { OutageQueue } from '../../src/write/outage-queue.js'
import { UnsentWrites } from '../../src/write/unsent-writes.js'
import { gatedStore } from '../support/faults.js'

const down = new Error('Redis is down')

let stop: (() => void) | undefined
afterEach(() => {
  stop?.()
  stop = undefined
  vi.useRealTimers()
})

/** The outage queue with real parts around it: a memoryStore (whose calls can fail) and a bus whose publishes can fail. */
async function setUp(limit = 100, withL2 = true) {
  const clock = new ManualClock()
  const inner = memoryStore({ clock })
  const gated = gatedStore(inner)
  const remote = withL2 ? new RemoteTier(gated.store, 1_000, undefined) : undefined
  const keys = new KeyNames('oq')
  const coherence = new Coherence(clock, true)
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
  const lifetimes = new Lifetimes(60_000, 300_000)
  const stamps = new Stamps({
    coherence,
    remote,
    keys,
    unsent,
    lifetimes,
    counters,
    clock,
    clearL1: () => l1.clear(),
  })
  const bus = memoryBus()
  const published: InvalidationMessage[] = []
  await bus.subscribe(
    keys.channel,
    (bytes) => {
      const message = decodeMessage(bytes)
      if (message !== UNKNOWN_KIND && message.kind !== HEARTBEAT_KIND) published.push(message)
    },
    () => {},
  )
  const busState = { failing: false }
  const flakyBus: Bus = {
    name: 'flaky',
    subscribe: (...args) => bus.subscribe(...args),
    publish: (channel, message) => (busState.failing ? Promise.reject(down) : bus.publish(channel, message)),
    close: () => bus.close(),
  }
  const invalidations = new Invalidations({
    bus: flakyBus,
    breaker: undefined,
    channel: keys.channel,
    namespace: 'oq',
    publishTimeoutMs: 1_000,
    storeAnnounces: false,
    coherence,
    stamps,
    l1,
    unsent,
    counters,
    clock,
    onHeartbeat: () => {},
    onKeyWritten: () => {},
    onReconnected: () => {},
    isClosed: () => false,
  })
  const queue = new OutageQueue({
    remote,
    keys,
    coherence,
    stamps,
    unsent,
    l1,
    lifetimes,
    counters,
    invalidations,
    limit,
  })
  const ns = ROOT_NAMESPACE
  const entry = (value: string, version: number) =>
    createEntry({
      value,
      freeze: false,
      version,
      writtenAt: clock.now(),
      loadMs: 0,
      freshUntil: clock.now() + 60_000,
      staleUntil: clock.now() + 60_000,
      namespaceStamps: 1,
      stampKeys: ns.stampKeys,
      stampGens: [0],
    })
  /** Lets the memory bus deliver. */
  const delivered = () => new Promise((resolve) => setImmediate(resolve))
  stop = () => {
    queue.stop()
    tier.close()
  }
  return {
    clock,
    inner,
    gated,
    keys,
    coherence,
    unsent,
    counters,
    tier,
    queue,
    busState,
    published,
    entry,
    delivered,
  }
}

describe('OutageQueue', () => {
  it('announceKeys: what the bus did not take is queued per key and published on retry', async () => {
    const t = await setUp()
    t.busState.failing = true
    await t.queue.announceKeys(['a', 'b'], [10, 11])
    expect(t.queue.size).toBe(2)
    await t.queue.retry()
    expect(t.queue.size).toBe(2) // still down
    t.busState.failing = false
    await t.queue.retry()
    await t.delivered()
    expect(t.queue.size).toBe(0)
    expect(t.queue.recovered).toBe(2)
    expect(t.published.map((m) => [m.names, m.numbers])).toEqual([
      [['a'], [10]],
      [['b'], [11]],
    ])
  })

  it('an announcement is dropped on retry if L2 shows a newer write of the key meanwhile', async () => {
    const t = await setUp()
    t.busState.failing = true
    await t.queue.announceKeys(['k'], [10])
    await t.inner.set(t.keys.entry('k'), new Uint8Array([1]), 20, 60_000) // someone wrote newer
    t.busState.failing = false
    await t.queue.retry()
    await t.delivered()
    expect(t.queue.size).toBe(0)
    expect(t.published).toEqual([])
  })

  it('queueSet: the node keeps its write, and the retry lands it in L2 and announces it', async () => {
    const t = await setUp()
    const mine = t.entry('mine', 100)
    t.queue.queueSet('k', mine, new Uint8Array([7]), 60_000)
    expect(t.unsent.get('k')).toEqual({ version: 100, entry: mine })
    t.gated.fail('setIfNewer', down)
    await t.queue.retry()
    expect(t.queue.size).toBe(1)
    expect(t.unsent.get('k')?.version).toBe(100)
    t.gated.fail('setIfNewer', undefined)
    await t.queue.retry()
    await t.delivered()
    expect(await t.inner.get(t.keys.entry('k'))).toEqual({ bytes: new Uint8Array([7]), version: 100 })
    expect(t.unsent.get('k')).toBeUndefined()
    expect(t.published.map((m) => [m.names, m.numbers])).toEqual([[['k'], [100]]])
  })

  it('queueSet superseded: L2 keeps the newer write, nothing is announced, the older L1 entry goes', async () => {
    const t = await setUp()
    const mine = t.entry('mine', 100)
    t.tier.set('k', mine, 60_000, 1, undefined, 0)
    t.queue.queueSet('k', mine, new Uint8Array([7]), 60_000)
    await t.inner.set(t.keys.entry('k'), new Uint8Array([9]), 200, 60_000)
    await t.queue.retry()
    await t.delivered()
    expect(await t.inner.get(t.keys.entry('k'))).toEqual({ bytes: new Uint8Array([9]), version: 200 })
    expect(t.published).toEqual([])
    expect(t.unsent.get('k')).toBeUndefined()
    expect(t.tier.peek('k')).toBeUndefined()
  })

  it('queueSet whose first attempt landed although its reply was lost: announced with the version L2 gave it', async () => {
    const t = await setUp()
    const bytes = new Uint8Array([5])
    // The write reached L2 (which gave it version 150, above the 120 stored before), but its reply was lost.
    await t.inner.set(t.keys.entry('k'), new Uint8Array([1]), 120, 60_000)
    await t.inner.set(t.keys.entry('k'), bytes, 100, 60_000)
    t.queue.queueSet('k', t.entry('mine', 100), bytes, 60_000)
    await t.queue.retry()
    await t.delivered()
    expect(t.published.map((m) => [m.names, m.numbers])).toEqual([[['k'], [121]]])
  })

  it('queueDelete superseded: a newer write that reached L2 meanwhile is not wiped when Redis returns', async () => {
    const t = await setUp()
    t.queue.queueDelete('k', 100)
    expect(t.unsent.get('k')).toEqual({ version: 100, entry: undefined })
    // Another node's newer write reaches L2 before the retry.
    await t.inner.set(t.keys.entry('k'), new Uint8Array([9]), 200, 60_000)
    await t.queue.retry()
    await t.delivered()
    expect(await t.inner.get(t.keys.entry('k'))).toEqual({ bytes: new Uint8Array([9]), version: 200 })
    expect(t.published).toEqual([])
    expect(t.unsent.get('k')).toBeUndefined()
    expect(t.queue.recovered).toBe(1)
  })

  it('queueDelete not superseded: the retry writes the tombstone and announces its version', async () => {
    const t = await setUp()
    await t.inner.set(t.keys.entry('k'), new Uint8Array([9]), 50, 60_000)
    t.queue.queueDelete('k', 100)
    await t.queue.retry()
    await t.delivered()
    expect(await t.inner.get(t.keys.entry('k'))).toBeUndefined()
    expect(t.published.map((m) => [m.names, m.numbers])).toEqual([[['k'], [100]]])
  })

  it('newer work of a key replaces older work; older work does not replace newer', async () => {
    const t = await setUp()
    t.queue.queueSet('k', t.entry('v2', 200), new Uint8Array([2]), 60_000)
    t.queue.queueSet('k', t.entry('v1', 100), new Uint8Array([1]), 60_000)
    expect(t.queue.size).toBe(1)
    await t.queue.retry()
    expect(await t.inner.get(t.keys.entry('k'))).toEqual({ bytes: new Uint8Array([2]), version: 200 })
    t.queue.queueSet('j', t.entry('v1', 100), new Uint8Array([1]), 60_000)
    t.queue.queueDelete('j', 300)
    await t.queue.retry()
    expect(await t.inner.get(t.keys.entry('j'))).toBeUndefined()
  })

  it('queueStampBump: in effect here at once, then bumped in L2 with the same proposal and announced', async () => {
    const t = await setUp()
    const gen = t.coherence.versions.next()
    t.queue.queueStampBump(['t:a'], gen)
    expect(t.coherence.stampGen('t:a')).toBe(gen)
    expect(t.unsent.stamps.get('t:a')).toBe(gen)
    await t.queue.retry()
    await t.delivered()
    // Entries written meanwhile recorded `gen`: L2 got the same, so they stay valid.
    expect(await t.inner.getStamps([t.keys.stamp('t:a')])).toEqual([gen])
    expect(t.coherence.stampGen('t:a')).toBe(gen)
    expect(t.unsent.stamps.has('t:a')).toBe(false)
    expect(t.published.map((m) => [m.names, m.numbers])).toEqual([[['t:a'], [gen]]])
  })

  it('queueStampBump: the retry raises the stamp to the proposal, never past what L2 holds', async () => {
    const t = await setUp()
    const gen = t.coherence.versions.next()
    t.queue.queueStampBump(['t:a'], gen)
    // The first attempt landed although its reply was lost: the retry changes nothing.
    await t.inner.bumpStamps([t.keys.stamp('t:a')], 60_000, gen)
    await t.queue.retry()
    await t.delivered()
    expect(await t.inner.getStamps([t.keys.stamp('t:a')])).toEqual([gen])
    expect(t.coherence.stampGen('t:a')).toBe(gen)
  })

  it('queueStampBump: another node bumped past the proposal meanwhile: its bump stands', async () => {
    const t = await setUp()
    const gen = t.coherence.versions.next()
    t.queue.queueStampBump(['t:a'], gen)
    // Entries written since recorded gen + 10: the retry must not invalidate them.
    await t.inner.bumpStamps([t.keys.stamp('t:a')], 60_000, gen + 10)
    await t.queue.retry()
    await t.delivered()
    expect(await t.inner.getStamps([t.keys.stamp('t:a')])).toEqual([gen + 10])
    expect(t.coherence.stampGen('t:a')).toBe(gen + 10)
  })

  it('past the limit, all queued work becomes one clear() of the cache, in effect here at once', async () => {
    const t = await setUp(2)
    t.tier.set('x', t.entry('x', 1), 60_000, 1, undefined, 0)
    t.queue.queueSet('a', t.entry('a', 10), new Uint8Array([1]), 60_000)
    t.queue.queueSet('b', t.entry('b', 11), new Uint8Array([1]), 60_000)
    expect(t.counters.pendingDropped).toBe(0)
    t.queue.queueDelete('c', 12)
    expect(t.counters.pendingDropped).toBe(3)
    expect(t.queue.size).toBe(1) // the clear
    expect(t.unsent.get('a')).toBeUndefined()
    expect(t.tier.size).toBe(0)
    const gen = t.coherence.stampGen('n:')
    expect(gen).toBeGreaterThan(0)
    await t.queue.retry()
    await t.delivered()
    expect(await t.inner.getStamps([t.keys.stamp('n:')])).toEqual([gen])
    expect(await t.inner.get(t.keys.entry('a'))).toBeUndefined()
    expect(t.published.map((m) => [m.names, m.numbers])).toEqual([[['n:'], [gen]]])
  })

  it('retries on its timer while work waits, and stops the timer once nothing does', async () => {
    vi.useFakeTimers()
    const t = await setUp()
    const others = vi.getTimerCount() // L1's sweep timer
    t.busState.failing = true
    await t.queue.announceKeys(['k'], [1])
    expect(vi.getTimerCount()).toBe(others + 1)
    await vi.advanceTimersByTimeAsync(1_000)
    expect(t.queue.size).toBe(1)
    t.busState.failing = false
    await vi.advanceTimersByTimeAsync(1_000)
    expect(t.queue.size).toBe(0)
    expect(vi.getTimerCount()).toBe(others)
  })
})

describe('OutageQueue: edges found by mutation testing', () => {
  it('announces more than MAX_ITEMS keys in messages of at most MAX_ITEMS, in order', async () => {
    const t = await setUp()
    const rels = Array.from({ length: 2 * MAX_ITEMS + 1 }, (_, i) => `k${i}`)
    const versions = rels.map((_, i) => i + 1)
    await t.queue.announceKeys(rels, versions)
    await t.delivered()
    expect(t.published.map((m) => m.names.length)).toEqual([MAX_ITEMS, MAX_ITEMS, 1])
    expect(t.published.flatMap((m) => m.names)).toEqual(rels)
    expect(t.published.flatMap((m) => m.numbers)).toEqual(versions)
    expect(t.queue.size).toBe(0)
  })

  it('exactly MAX_ITEMS keys go in one message', async () => {
    const t = await setUp()
    const rels = Array.from({ length: MAX_ITEMS }, (_, i) => `k${i}`)
    await t.queue.announceKeys(
      rels,
      rels.map(() => 1),
    )
    await t.delivered()
    expect(t.published.map((m) => m.names.length)).toEqual([MAX_ITEMS])
  })

  it('a stamp announcement the bus did not take is queued once and published on retry', async () => {
    const t = await setUp()
    t.busState.failing = true
    await t.queue.announceStamps(['t:a', 't:b'], [5, 6], 5)
    expect(t.queue.size).toBe(1)
    t.busState.failing = false
    await t.queue.retry()
    await t.delivered()
    expect(t.published.map((m) => [m.names, m.numbers])).toEqual([
      [
        ['t:a', 't:b'],
        [5, 6],
      ],
    ])
    expect(t.queue.size).toBe(0)
  })

  it('an announcement is re-made on retry while L2 holds the same version of the key', async () => {
    const t = await setUp()
    t.busState.failing = true
    await t.queue.announceKeys(['k'], [10])
    await t.inner.set(t.keys.entry('k'), new Uint8Array([1]), 10, 60_000)
    t.busState.failing = false
    await t.queue.retry()
    await t.delivered()
    expect(t.published.map((m) => [m.names, m.numbers])).toEqual([[['k'], [10]]])
  })

  it('L2 done but the bus still down: only the announcement is retried, the L2 write is not redone', async () => {
    const t = await setUp()
    t.busState.failing = true
    t.queue.queueDelete('k', 100)
    await t.queue.retry()
    expect(t.gated.calls.deleteIfNewer).toBe(1)
    expect(t.queue.size).toBe(1)
    expect(t.queue.recovered).toBe(0)
    expect(t.unsent.get('k')).toBeUndefined() // L2 has it: reads no longer need the record
    await t.inner.set(t.keys.entry('k'), new Uint8Array([9]), 200, 60_000)
    t.busState.failing = false
    await t.queue.retry()
    await t.delivered()
    expect(t.gated.calls.deleteIfNewer).toBe(1)
    expect(t.published.map((m) => [m.names, m.numbers])).toEqual([[['k'], [100]]])
    expect(t.queue.recovered).toBe(1)
    expect(await t.inner.get(t.keys.entry('k'))).toEqual({ bytes: new Uint8Array([9]), version: 200 })
  })

  it('a retry while one runs does nothing; work queued during a retry waits for the next', async () => {
    const t = await setUp()
    t.queue.queueDelete('a', 100)
    const gate = t.gated.gate('deleteIfNewer')
    const first = t.queue.retry()
    await gate.reached
    t.queue.queueDelete('a', 200) // newer work of the same key while the older one is in flight
    await t.queue.retry() // returns at once: a retry is running
    expect(t.gated.calls.deleteIfNewer).toBe(1)
    gate.release()
    await first
    // The finished older work does not remove the newer one.
    expect(t.queue.size).toBe(1)
    expect(t.unsent.get('a')?.version).toBe(200)
    await t.queue.retry()
    await t.delivered()
    expect(t.gated.calls.deleteIfNewer).toBe(2)
    expect(t.queue.size).toBe(0)
    expect(t.published.map((m) => m.numbers)).toEqual([[100], [200]])
  })

  it('work replaced while its publish is failing keeps the newer work', async () => {
    const t = await setUp()
    t.queue.queueDelete('a', 100)
    t.busState.failing = true
    const gate = t.gated.gate('deleteIfNewer', 'after')
    const first = t.queue.retry()
    await gate.reached
    t.queue.queueDelete('a', 200)
    gate.release()
    await first
    t.busState.failing = false
    await t.queue.retry()
    await t.delivered()
    // The newer delete was redone in L2 (not replaced by the older one's announcement).
    expect(t.gated.calls.deleteIfNewer).toBe(2)
    expect(t.published.map((m) => m.numbers)).toEqual([[200]])
  })

  it('after stop() queued work starts no retry timer', async () => {
    vi.useFakeTimers()
    const t = await setUp()
    const others = vi.getTimerCount()
    t.queue.stop()
    t.busState.failing = true
    await t.queue.announceKeys(['k'], [1])
    expect(t.queue.size).toBe(1)
    expect(vi.getTimerCount()).toBe(others)
  })

  it('the retry timer does not keep the process alive', async () => {
    const spy = vi.spyOn(globalThis, 'setInterval')
    const t = await setUp()
    t.busState.failing = true
    await t.queue.announceKeys(['k'], [1])
    const timer = spy.mock.results.at(-1)!.value as NodeJS.Timeout
    expect(timer.hasRef()).toBe(false)
    spy.mockRestore()
  })

  it('a multiple of MAX_ITEMS keys makes exactly that many messages, no empty one', async () => {
    const t = await setUp()
    const rels = Array.from({ length: 2 * MAX_ITEMS }, (_, i) => `k${i}`)
    await t.queue.announceKeys(
      rels,
      rels.map(() => 1),
    )
    await t.delivered()
    expect(t.published.map((m) => m.names.length)).toEqual([MAX_ITEMS, MAX_ITEMS])
  })

  it('queueSet refused and L2 shows the same bytes under another version than it reported: not announced', async () => {
    const t = await setUp()
    const bytes = new Uint8Array([5])
    await t.inner.set(t.keys.entry('k'), new Uint8Array([1]), 120, 60_000)
    t.queue.queueSet('k', t.entry('mine', 100), bytes, 60_000)
    const gate = t.gated.gate('get')
    const retry = t.queue.retry()
    await gate.reached
    // Between the refusal (version 120) and the read, another node writes the same bytes at 130.
    await t.inner.set(t.keys.entry('k'), bytes, 130, 60_000)
    gate.release()
    await retry
    await t.delivered()
    expect(t.published).toEqual([])
    expect(t.unsent.get('k')).toBeUndefined()
  })

  it('queueStampBump records exactly the bumped stamps as unsent, and forgets them once L2 has them', async () => {
    const t = await setUp()
    const gen = t.coherence.versions.next()
    t.queue.queueStampBump(['t:a', 't:b'], gen)
    expect([...t.unsent.stamps]).toEqual([
      ['t:a', gen],
      ['t:b', gen],
    ])
    await t.queue.retry()
    expect(t.unsent.stamps.size).toBe(0)
  })

  it('work replaced while a retry works on other keys is not redone in its old form', async () => {
    const t = await setUp()
    t.queue.queueDelete('a', 100)
    t.queue.queueDelete('b', 100)
    const gate = t.gated.gate('deleteIfNewer')
    const retry = t.queue.retry()
    await gate.reached // a's redo
    t.queue.queueDelete('b', 200)
    gate.release()
    await retry
    expect(t.gated.calls.deleteIfNewer).toBe(1)
    expect(t.queue.recovered).toBe(1)
    await t.queue.retry()
    await t.delivered()
    expect(t.published.map((m) => [m.names, m.numbers])).toEqual([
      [['a'], [100]],
      [['b'], [200]],
    ])
  })

  it('of two pieces of work with the same rank, the later replaces the earlier', async () => {
    const t = await setUp()
    t.queue.queueSet('k', t.entry('first', 100), new Uint8Array([1]), 60_000)
    t.queue.queueSet('k', t.entry('second', 100), new Uint8Array([2]), 60_000)
    await t.queue.retry()
    expect(await t.inner.get(t.keys.entry('k'))).toEqual({ bytes: new Uint8Array([2]), version: 100 })
  })

  it('one retry timer however much work waits', async () => {
    vi.useFakeTimers()
    const t = await setUp()
    const others = vi.getTimerCount()
    t.busState.failing = true
    await t.queue.announceKeys(['a'], [1])
    await t.queue.announceKeys(['b'], [2])
    t.queue.queueDelete('c', 3)
    expect(vi.getTimerCount()).toBe(others + 1)
  })

  it('without L2, the overflow clear is in effect here at once and announced when the bus takes it', async () => {
    const t = await setUp(1, false)
    t.busState.failing = true
    await t.queue.announceKeys(['a'], [10])
    await t.queue.announceKeys(['b'], [11])
    expect(t.counters.pendingDropped).toBe(2)
    const gen = t.coherence.stampGen('n:')
    expect(gen).toBeGreaterThan(0)
    expect(t.queue.size).toBe(1)
    t.busState.failing = false
    await t.queue.retry()
    await t.delivered()
    expect(t.published.map((m) => [m.names, m.numbers])).toEqual([[['n:'], [gen]]])
  })
})
