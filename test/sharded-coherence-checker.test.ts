import { afterEach, describe, expect, inject, it } from 'vitest'
import { type Cache, createCache } from '../src/index.js'
import { redisBus, redisStore } from '../src/redis.js'
import { type ShardedStore, shardedStore } from '../src/stores/sharded-store.js'
import { type RedisServer, startRedis } from '../tools/redis-server.js'
import { runChecker } from './support/coherence-checker.js'
import { uniqueNamespace } from './support/redis-fleet.js'

// The randomized checker (see coherence-checker.ts) on a fleet whose L2 is shardedStore over 3
// redis-servers: every few seconds one member is killed and started again (empty) a moment later, so
// members are ejected, their keys served by the next member, and re-admitted under a new generation,
// all while the nodes read, write, delete and invalidate. Misses after a restart are expected (the data
// is gone); an older value is never allowed.
const DURATION_MS = Number(process.env.COHERENCE_CHECK_MS ?? 20_000)
const NODES = 4
const L1_TTL_MS = 2_000
const PROPAGATION_MS = 500
const DOWN_MS = 1_500

let servers: RedisServer[] = []
let nodes: Cache[] = []
afterEach(async () => {
  await Promise.allSettled(nodes.map((node) => node.close()))
  nodes = []
  await Promise.allSettled(servers.map((server) => server.stop()))
  servers = []
})

describe('randomized coherence checker (shardedStore over 3 redis-servers)', () => {
  it(
    `${NODES} nodes, random operations while members are killed and restarted: 0 violations`,
    async () => {
      servers = await Promise.all([startRedis(), startRedis(), startRedis()])
      const namespace = uniqueNamespace('sharded')
      const stores: ShardedStore[] = []
      for (let i = 0; i < NODES; i++) {
        const store = shardedStore(
          servers.map((server, m) => ({
            name: `m${m}`,
            store: redisStore({ url: server.url, maxReconnectDelay: 100 }),
          })),
          {
            memberTimeout: 200,
            viewTtl: 1_000,
            healthCheckInterval: 100,
            readmitAfter: 300,
            circuitBreaker: { failureThreshold: 2, openDuration: 200 },
          },
        )
        stores.push(store)
        nodes.push(
          createCache({
            namespace,
            l2: store,
            bus: redisBus({ url: inject('redisUrl') }),
            ttl: '10m',
            l2Timeout: 1_000,
            l1: { maxEntries: 1_000, ttl: L1_TTL_MS },
          }),
        )
      }
      await Promise.all(nodes.map((node) => node.ready()))
      let victim = 0
      const restarts: Promise<void>[] = []
      const report = await runChecker({
        nodes,
        durationMs: DURATION_MS,
        keys: 40,
        disrupt: async () => {
          const server = servers[victim++ % servers.length]!
          await server.kill('SIGKILL')
          restarts.push(new Promise((resolve) => setTimeout(resolve, DOWN_MS)).then(() => server.start()))
          return { durationMs: DOWN_MS } // every node uses the member
        },
        disruptEveryMs: 4_000,
        disruptionWindowMs: L1_TTL_MS,
        propagationMs: PROPAGATION_MS,
        l1TtlMs: L1_TTL_MS,
        // a killed member is ejected at once and re-admitted (empty, or under a new generation) once it is back
        lossWindowMs: DOWN_MS + 5_000,
        seed: 3,
      })
      await Promise.all(restarts)
      const opened = stores.map((store) => store.status().reduce((n, s) => n + s.circuitOpened, 0))
      const generations = stores[0]!.status().map((s) => s.generation)
      console.log(
        `coherence checker (sharded): ${report.operations} operations (${report.reads} reads, ${report.writes} writes), ` +
          `${report.disruptions} member kills, member generations ${generations.join('/')}, ` +
          `breakers opened per node ${opened.join('/')}, ${report.degradedReads} degraded reads, ` +
          `${report.degradedWrites} degraded writes; reads judged by propagation ${report.judged.propagation}, ` +
          `by l1.ttl ${report.judged.l1Ttl}, misses checked ${report.judged.misses}; nodes held to l1.ttl ` +
          `${Math.round(report.disruptedShare * 100)}% of the time; ` +
          `${report.violations.length} violations`,
      )
      for (const v of report.violations.slice(0, 5)) console.log(JSON.stringify(v))
      expect(report.operations).toBeGreaterThan(1_000)
      expect(report.disruptions).toBeGreaterThan(1)
      // members really were ejected and re-admitted during the run
      expect(Math.max(...generations)).toBeGreaterThanOrEqual(2)
      expect(report.judged.propagation + report.judged.l1Ttl).toBeGreaterThan(1_000)
      expect(report.judged.misses).toBeGreaterThan(100)
      expect(report.violations).toEqual([])
    },
    DURATION_MS * 10 + 60_000, // a bound for a hang: judging the history takes minutes on a loaded machine
  )
})
