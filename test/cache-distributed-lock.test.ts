import { afterEach, describe, expect, it } from 'vitest'
import { deferred } from './support/deferred.js'
import { memoryFleet, settle } from './support/nodes.js'

// The embedded fleet shares one memoryStore (which implements leases) and one memoryBus. The same
// scenarios against real Redis are in redis-stampede.test.ts.
let fleet: ReturnType<typeof memoryFleet>
afterEach(async () => {
  await fleet?.close()
})

describe("lock: 'distributed' on the embedded store", () => {
  it('one loader call for a cold key across all nodes; waiters are woken by the bus', async () => {
    fleet = memoryFleet(4, {
      lock: 'distributed',
      distributedLock: { pollInterval: '10s', waitTimeout: '20s' },
    })
    await fleet.ready()
    let calls = 0
    const loader = async () => {
      calls++
      await new Promise((resolve) => setTimeout(resolve, 20))
      return { loaded: true }
    }
    const answers = await Promise.all(
      fleet.nodes.flatMap((node) => Array.from({ length: 50 }, () => node.getOrSet('cold', loader))),
    )
    expect(calls).toBe(1)
    expect(answers.every((a) => a.loaded)).toBe(true)
    const stats = fleet.nodes.map((n) => n.stats().loads)
    expect(stats.reduce((sum, s) => sum + s.leasesAcquired, 0)).toBe(1)
    // The poll interval is 10 s: only the bus notification can have woken the waiters this fast.
    expect(stats.reduce((sum, s) => sum + s.leaseWaits, 0)).toBe(3)
  })

  it("with lock: 'local' each node loads once", async () => {
    // Every load is held open until each node has started its own: then exactly one call per node, which
    // neither a fleet-wide lock (one call in all) nor no lock (one per caller) would give.
    fleet = memoryFleet(4, { lock: 'local' })
    await fleet.ready()
    const perNode = fleet.nodes.map(() => 0)
    const gate = deferred<void>()
    const answers = Promise.all(
      fleet.nodes.flatMap((node, i) =>
        Array.from({ length: 50 }, () =>
          node.getOrSet('cold', async () => {
            perNode[i]!++
            await gate.promise
            return 1
          }),
        ),
      ),
    )
    await expect.poll(() => perNode.every((n) => n > 0), { timeout: 10_000 }).toBe(true)
    gate.resolve()
    expect(await answers).toEqual(Array.from({ length: 200 }, () => 1))
    expect(perNode).toEqual([1, 1, 1, 1])
    for (const node of fleet.nodes) expect(node.stats().loads).toMatchObject({ calls: 1, coalesced: 49 })
  })

  it('a waiter past waitTimeout loads by itself (onTimeout: load)', async () => {
    fleet = memoryFleet(2, {
      lock: 'distributed',
      distributedLock: { waitTimeout: '50ms', pollInterval: '10ms', leaseTtl: '10s' },
    })
    await fleet.ready()
    const [a, b] = fleet.nodes
    let release!: () => void
    const slow = a!.getOrSet(
      'k',
      () =>
        new Promise<string>((resolve) => {
          release = () => resolve('from a')
        }),
    )
    await settle()
    expect(await b!.getOrSet('k', async () => 'from b')).toBe('from b')
    release()
    expect(await slow).toBe('from a')
  })
})
