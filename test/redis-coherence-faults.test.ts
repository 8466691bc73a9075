/**
 * The randomized coherence checker (test/support/coherence-checker.ts) with network faults between the
 * cache nodes and Redis: every node reaches Redis through TCP fault proxies of its own (proxied-fleet.ts),
 * and every few seconds one node, chosen at random, gets one of:
 * - a partition: every byte between it and Redis held (its L2 calls time out, its bus hears nothing, and
 *   both resume, with whatever was in flight, when it heals), for 1-2.5 s;
 * - a latency spike: 20-300 ms each way on all its connections, for 1-3 s;
 * - a connection reset: RST on every connection it has (store, publisher and subscribers).
 * The other nodes keep working meanwhile. The history is checked against guarantees 1-3; the faulted node
 * is treated as possibly cut off (staleness bound l1.ttl) while its fault lasts and DISRUPTION_WINDOW_MS
 * after; every other read is held to the propagation bound.
 *
 * Run time: COHERENCE_FAULTS_MS per topology (default 30 s); seed: COHERENCE_FAULTS_SEED; fault kinds:
 * COHERENCE_FAULTS_KINDS (comma-separated, default 'partition,latency,reset'). Under load:
 * COHERENCE_FAULTS_HOG=1 runs a CPU hog on every core for the duration.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { mulberry32 } from '../tools/random.js'
import { type Disruption, runChecker } from './support/coherence-checker.js'
import { startCpuHog } from './support/cpu-hog.js'
import { type ProxiedFleet, proxiedFleet } from './support/proxied-fleet.js'
import { TOPOLOGIES } from './support/redis-fleet.js'

const DURATION_MS = Number(process.env.COHERENCE_FAULTS_MS ?? 30_000)
const SEED = Number(process.env.COHERENCE_FAULTS_SEED ?? 11)
const HOG = process.env.COHERENCE_FAULTS_HOG === '1'
const KINDS = (process.env.COHERENCE_FAULTS_KINDS ?? 'partition,latency,reset').split(',')
const NODES = 4
const L1_TTL_MS = 2_000
const PROPAGATION_MS = 500
const DISRUPT_EVERY_MS = 2_500
/** After a fault ends, the time its aftermath takes (breaker probe, reconnect, resubscription). */
const DISRUPTION_WINDOW_MS = 1_500

let fleet: ProxiedFleet | undefined
afterEach(async () => {
  await fleet?.close()
  fleet = undefined
})

describe.each(TOPOLOGIES)('coherence checker with network faults (%s)', (topology) => {
  it(
    `${NODES} nodes through fault proxies, one node at a time partitioned, slowed or reset: 0 violations`,
    async () => {
      fleet = await proxiedFleet(NODES, topology, {
        ttl: '10m',
        l1: { maxEntries: 1_000, ttl: L1_TTL_MS },
        l2Timeout: '200ms',
      })
      await fleet.ready()
      const seed = topology === 'standalone' ? SEED : SEED + 1
      const random = mulberry32(seed)
      const faults: string[] = []
      const healers = new Set<NodeJS.Timeout>()
      const later = (ms: number, heal: () => void) => {
        const timer = setTimeout(() => {
          healers.delete(timer)
          heal()
        }, ms)
        healers.add(timer)
      }
      const disrupt = async (): Promise<Disruption> => {
        const node = Math.floor(random() * NODES)
        const proxies = fleet!.proxies[node]!
        const dice = random()
        // 40% partitions, 35% latency spikes, 25% resets, among the kinds chosen.
        const weights = { partition: 0.4, latency: 0.35, reset: 0.25 }
        const chosen = (Object.keys(weights) as (keyof typeof weights)[]).filter((kind) =>
          KINDS.includes(kind),
        )
        const total = chosen.reduce((sum, kind) => sum + weights[kind], 0)
        let point = dice * total
        let kind: (typeof chosen)[number] | undefined
        for (const candidate of chosen) {
          kind = candidate
          point -= weights[candidate]
          if (point < 0) break
        }
        if (kind === 'partition') {
          const ms = 1_000 + Math.floor(random() * 1_500)
          faults.push(`partition node ${node} ${ms} ms`)
          for (const proxy of proxies) proxy.partition()
          later(ms, () => {
            for (const proxy of proxies) proxy.heal()
          })
          return { nodes: [node], durationMs: ms }
        } else if (kind === 'latency') {
          const up = 20 + Math.floor(random() * 280)
          const down = 20 + Math.floor(random() * 280)
          const ms = 1_000 + Math.floor(random() * 2_000)
          faults.push(`latency node ${node} ${up}/${down} ms for ${ms} ms`)
          for (const proxy of proxies) proxy.latency({ up, down })
          later(ms, () => {
            for (const proxy of proxies) proxy.heal()
          })
          return { nodes: [node], durationMs: ms }
        }
        if (kind === 'reset') {
          faults.push(`reset node ${node}`)
          for (const proxy of proxies) proxy.reset()
          return { nodes: [node], durationMs: 0 }
        }
        faults.push('none') // COHERENCE_FAULTS_KINDS=none: the proxies alone, as a control
        return { nodes: [] }
      }
      const hog = HOG ? startCpuHog({ maxMs: DURATION_MS * 3 }) : undefined
      let report: Awaited<ReturnType<typeof runChecker>>
      try {
        report = await runChecker({
          nodes: fleet.nodes,
          durationMs: DURATION_MS,
          keys: 40,
          disrupt,
          disruptEveryMs: DISRUPT_EVERY_MS,
          disruptionWindowMs: DISRUPTION_WINDOW_MS,
          propagationMs: PROPAGATION_MS,
          l1TtlMs: L1_TTL_MS,
          seed,
        })
      } finally {
        for (const timer of healers) clearTimeout(timer)
        await hog?.stop()
      }
      const stats = fleet.nodes.map((node) => node.stats())
      console.log(
        `coherence checker with faults (${topology}, seed ${seed}${HOG ? ', CPU hog' : ''}): ${report.operations} operations ` +
          `(${report.reads} reads, ${report.writes} writes), ${report.disruptions} faults [${faults.join('; ')}], ` +
          `${report.degradedReads} degraded reads, ${report.degradedWrites} degraded writes, ` +
          `reads judged by propagation ${report.judged.propagation}, by l1.ttl ${report.judged.l1Ttl}, ` +
          `misses checked ${report.judged.misses}, nodes held to l1.ttl ${Math.round(report.disruptedShare * 100)}% ` +
          `of the time, L2 errors per node ${stats.map((s) => s.l2.errors).join('/')}, ` +
          `bus reconnects per node ${stats.map((s) => s.bus.reconnects).join('/')}, ${report.violations.length} violations`,
      )
      for (const v of report.violations.slice(0, 5)) console.log(JSON.stringify(v))
      expect(report.operations).toBeGreaterThan(1_000)
      expect(report.disruptions).toBeGreaterThan(0)
      // Only the faulted node, during its fault and shortly after, is held to l1.ttl; every other node to
      // the propagation bound. Many reads were judged by each rule.
      expect(report.disruptedShare).toBeLessThan(0.5)
      expect(report.judged.propagation).toBeGreaterThan(100)
      expect(report.judged.l1Ttl).toBeGreaterThan(20)
      expect(report.judged.misses).toBeGreaterThan(100)
      expect(report.violations).toEqual([])
    },
    DURATION_MS * 10 + 60_000, // a bound for a hang: judging the history takes minutes on a loaded machine
  )
})
