import { afterEach, expect, it } from 'vitest'
import { memoryFleet } from './support/nodes.js'

let fleet: ReturnType<typeof memoryFleet>
afterEach(async () => {
  await fleet?.close()
})

it('a value copied from L2 into L1 keeps its remaining TTL, not a fresh full TTL', async () => {
  fleet = memoryFleet(2, { ttl: '10s', l1: { maxEntries: 100, ttl: '1h' } })
  await fleet.ready()
  const [a, b] = fleet.nodes as [NonNullable<(typeof fleet.nodes)[0]>, NonNullable<(typeof fleet.nodes)[0]>]
  await a.set('k', 'v')
  fleet.clock.advance(6_000)
  expect(await b.get('k')).toBe('v') // from L2 into B's L1, 4 s left
  expect(b.stats().l2.hits).toBe(1)
  fleet.clock.advance(3_999)
  expect(await b.get('k')).toBe('v') // from B's L1
  expect(b.stats().l1.hits).toBe(1)
  fleet.clock.advance(1)
  expect(await b.get('k')).toBeUndefined() // a fresh full TTL would have kept it until 16 s
})

it('l1.ttl bounds how long L1 keeps an entry, whatever its TTL', async () => {
  fleet = memoryFleet(1, { ttl: '1h', l1: { maxEntries: 100, ttl: '5s' } })
  await fleet.ready()
  const [a] = fleet.nodes
  await a!.set('k', 'v')
  expect(await a!.get('k')).toBe('v')
  expect(a!.stats().l1.hits).toBe(1)
  fleet.clock.advance(5_000)
  expect(await a!.get('k')).toBe('v') // L1 dropped it; L2 (1 h TTL) answers
  expect(a!.stats().l2.hits).toBe(1)
})
