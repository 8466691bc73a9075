import { afterEach, describe, expect, it } from 'vitest'
import type { Cache, CacheOptions } from '../src/index.js'
import { connection, redisFleet, TOPOLOGIES } from './support/redis-fleet.js'
import { eventually } from './support/store-conformance.js'

// Issue 4: stampede control on real Redis. 8 nodes x 200 concurrent callers of one cold key.

const NODES = 8
const CALLERS_PER_NODE = 200

let fleet: ReturnType<typeof redisFleet> | undefined
afterEach(async () => {
  await fleet?.close()
  fleet = undefined
})

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** A loader that returns `value` only when `release()` is called (or never). */
function hangingLoader<T>(value: T) {
  let started = false
  let release!: () => void
  const returned = new Promise<void>((resolve) => {
    release = resolve
  })
  return {
    get started() {
      return started
    },
    release: () => release(),
    loader: async () => {
      started = true
      await returned
      return value
    },
  }
}

/** Rejects if `promise` has not settled within `ms` (a deadlock shows up as a clear failure). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}

describe.each(TOPOLOGIES)('stampede control on real Redis (%s)', (topology) => {
  async function stampede(options: CacheOptions, loaderDelayMs = 50) {
    fleet = redisFleet(NODES, connection(topology), { ttl: '1m', ...options })
    await fleet.ready()
    let calls = 0
    const loader = async () => {
      calls++
      await sleep(loaderDelayMs)
      return { loaded: calls }
    }
    const answers = await Promise.all(
      fleet.nodes.flatMap((node) =>
        Array.from({ length: CALLERS_PER_NODE }, () => node.getOrSet('cold', loader)),
      ),
    )
    expect(answers).toHaveLength(NODES * CALLERS_PER_NODE)
    return { calls, answers, stats: fleet.nodes.map((node) => node.stats()) }
  }

  it(`lock: 'distributed': ${NODES} nodes x ${CALLERS_PER_NODE} callers of a cold key make exactly one loader call`, async () => {
    const { calls, answers, stats } = await stampede({
      lock: 'distributed',
      distributedLock: { leaseTtl: '5s', waitTimeout: '20s', pollInterval: '100ms' },
    })
    expect(calls).toBe(1)
    // Everyone got the one loaded value.
    expect(answers.every((answer) => answer.loaded === 1)).toBe(true)
    expect(stats.reduce((sum, s) => sum + s.loads.calls, 0)).toBe(1)
    // Within each node, callers shared one flight instead of each asking for the lease.
    for (const s of stats) expect(s.loads.coalesced).toBeGreaterThan(0)
  })

  it(`lock: 'local': the same stampede makes between 1 and ${NODES} loader calls (one per node at most)`, async () => {
    const { calls, stats } = await stampede({ lock: 'local' })
    expect(calls).toBeGreaterThanOrEqual(1)
    expect(calls).toBeLessThanOrEqual(NODES)
    for (const s of stats) expect(s.loads.calls).toBeLessThanOrEqual(1)
  })

  it("lock: 'distributed' with a loader slower than l2Timeout: still one loader call, and its value reaches L2 and every node", async () => {
    // The caller's L2 budget (100 ms) is spent while the loader runs (300 ms): the holder's write needs a
    // budget of its own, or it fails, the lease is released with nothing in L2, and the next node loads.
    const { calls, answers, stats } = await stampede(
      {
        lock: 'distributed',
        l2Timeout: '100ms',
        distributedLock: { leaseTtl: '10s', waitTimeout: '20s', pollInterval: '50ms' },
      },
      300,
    )
    expect(calls).toBe(1)
    expect(answers.every((answer) => answer.loaded === 1)).toBe(true)
    expect(stats.reduce((sum, s) => sum + s.l2.errors, 0)).toBe(0)
    expect(stats.reduce((sum, s) => sum + s.pending, 0)).toBe(0)
  })

  describe('a lease holder whose loader hangs', () => {
    const LEASE: CacheOptions = {
      lock: 'distributed',
      ttl: '1m',
      // waitTimeout far above the lease: an answer before it can only come from taking over the lease.
      distributedLock: { leaseTtl: '300ms', waitTimeout: '30s', pollInterval: '50ms' },
    }

    it('closed while loading: another node loads after the lease expires; the late value does not reach L2', async () => {
      fleet = redisFleet(3, connection(topology), LEASE)
      await fleet.ready()
      const [holder, waiter, reader] = fleet.nodes as [Cache, Cache, Cache]
      const hung = hangingLoader('stale')
      const holderCall = holder.getOrSet('k', hung.loader)
      holderCall.catch(() => {})
      await eventually(() => hung.started, 5000, "the holder's loader to start")
      expect(holder.stats().loads.leasesAcquired).toBe(1)

      const started = Date.now()
      let waiterCalls = 0
      const waiterCall = waiter.getOrSet('k', async () => {
        waiterCalls++
        return 'fresh'
      })
      // close() does not wait for the hung load.
      await within(holder.close(), 5000, "the holder's close()")

      expect(await within(waiterCall, 10_000, "the waiter's getOrSet")).toBe('fresh')
      expect(Date.now() - started).toBeLessThan(10_000) // long before waitTimeout (30 s)
      expect(waiterCalls).toBe(1)
      expect(waiter.stats().loads.leaseWaits).toBe(1)

      // The hung loader finally returns its (now stale) value.
      hung.release()
      await holderCall.catch(() => {})
      await sleep(200) // whatever the closed holder still tries to do with it, it has done
      // L2, read through a third node with a cold L1, still has the newer value; nothing loads again.
      expect(await reader.getOrSet('k', async () => 'from the reader')).toBe('fresh')
      expect(reader.stats().l2.hits).toBe(1)
      expect(reader.stats().loads.calls).toBe(0)
      expect(await waiter.get('k')).toBe('fresh')
    })

    it('alive but past its lease: its late write is fenced by version and does not replace the newer value', async () => {
      fleet = redisFleet(3, connection(topology), LEASE)
      await fleet.ready()
      const [holder, waiter, reader] = fleet.nodes as [Cache, Cache, Cache]
      const hung = hangingLoader('stale')
      const holderCall = holder.getOrSet('k', hung.loader)
      await eventually(() => hung.started, 5000, "the holder's loader to start")

      const waiterCall = waiter.getOrSet('k', async () => 'fresh')
      expect(await within(waiterCall, 10_000, "the waiter's getOrSet")).toBe('fresh')

      // The holder outlived its lease; when its loader returns, its value answers its own callers only.
      const refused = holder.stats().staleFillsRefused
      hung.release()
      expect(await within(holderCall, 5000, "the holder's getOrSet")).toBe('stale')
      expect(holder.stats().staleFillsRefused).toBe(refused + 1)
      expect(holder.stats().pending).toBe(0) // refused by L2, not queued for a retry

      // L2, read through a third node with a cold L1, keeps the newer value; and so does every node.
      expect(await reader.get('k')).toBe('fresh')
      expect(reader.stats().l2.hits).toBe(1)
      expect(await reader.getOrSet('k', async () => 'from the reader')).toBe('fresh')
      expect(reader.stats().loads.calls).toBe(0)
      await eventually(
        async () => (await holder.get('k')) === 'fresh',
        3000,
        'the holder to read the newer value',
      )
      expect(await waiter.get('k')).toBe('fresh')
    })
  })
})
