import { afterEach, describe, expect, it } from 'vitest'
import { runChecker } from './support/coherence-checker.js'
import { startCpuHog } from './support/cpu-hog.js'
import { connection, killPubSub, ports, redisFleet, TOPOLOGIES } from './support/redis-fleet.js'

// K nodes run random get / set / delete / invalidateTags / clear for DURATION_MS with every bus
// subscription killed every few seconds and random delays on some nodes' L2 replies (so fills race
// invalidations); the recorded history is checked against guarantees 1-3 (see coherence-checker.ts).
const DURATION_MS = Number(process.env.COHERENCE_CHECK_MS ?? 30_000)
const NODES = 4
const L1_TTL_MS = 2_000
const PROPAGATION_MS = 500 // generous for a loaded 2-core CI box; the benchmark measures the real p99
// COHERENCE_CHECK_HOG=1: spinners on every core for the whole run (the checker under CPU load).
const HOG = process.env.COHERENCE_CHECK_HOG === '1'

let fleet: ReturnType<typeof redisFleet> | undefined
afterEach(async () => {
  await fleet?.close()
  fleet = undefined
})

describe.each(TOPOLOGIES)('randomized coherence checker (%s)', (topology) => {
  it(
    `${NODES} nodes, random operations with bus disconnects: 0 violations`,
    async () => {
      fleet = redisFleet(NODES, connection(topology), {
        ttl: '10m',
        l1: { maxEntries: 1_000, ttl: L1_TTL_MS },
      })
      await fleet.ready()
      let seed = 7
      const delay = () => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31
        return seed % 4 // 0-3 ms
      }
      for (const index of [1, 3]) {
        const store = (
          fleet.nodes[index] as unknown as {
            rt: { remote: { store: { get: (k: string) => Promise<unknown> } } }
          }
        ).rt.remote.store
        const realGet = store.get.bind(store)
        store.get = async (key: string) => {
          const reply = await realGet(key)
          await new Promise((resolve) => setTimeout(resolve, delay()))
          return reply
        }
      }
      const hog = HOG ? startCpuHog({ maxMs: DURATION_MS * 3 }) : undefined
      const report = await runChecker({
        nodes: fleet.nodes,
        durationMs: DURATION_MS,
        keys: 40,
        disrupt: () => killPubSub(ports(topology)),
        disruptEveryMs: 3_000,
        disruptionWindowMs: L1_TTL_MS,
        propagationMs: PROPAGATION_MS,
        l1TtlMs: L1_TTL_MS,
        seed: topology === 'standalone' ? 1 : 2,
      }).finally(() => hog?.stop())
      const reconnects = fleet.nodes.map((node) => node.stats().bus.reconnects)
      console.log(
        `coherence checker (${topology}): ${report.operations} operations (${report.reads} reads, ${report.writes} writes), ` +
          `${report.disruptions} bus disconnects, reconnects per node ${reconnects.join('/')}, ` +
          `${report.degradedReads} degraded reads, ${report.violations.length} violations`,
      )
      for (const v of report.violations.slice(0, 5)) console.log(JSON.stringify(v))
      expect(report.operations).toBeGreaterThan(1_000)
      expect(report.disruptions).toBeGreaterThan(0)
      expect(Math.min(...reconnects)).toBeGreaterThan(report.disruptions / 2)
      expect(report.violations).toEqual([])
    },
    DURATION_MS * 3 + 30_000,
  )
})
