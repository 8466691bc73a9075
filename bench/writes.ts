/**
 * Write latency: one write at a time (a sequential loop, as a request handler writes), side by side with
 * what any cache that keeps a fleet coherent must send at least: a raw node-redis `SET` of the value and a
 * raw `PUBLISH` of its invalidation. Rows:
 * - the floors: raw `SET`, raw `PUBLISH`, and both one after the other (`SET` then `PUBLISH`, awaited);
 * - coherent-cache `set`, `delete` and `invalidateTags` of one tag (redisStore + redisBus on one Redis, a
 *   second node subscribed, so every invalidation has a listener);
 * - BentoCache `set`, `delete` and `deleteByTag` of one tag (memory L1, Redis L2, Redis bus, two nodes).
 * Each system runs in a phase of its own, its operations alternating with the floor's (one of each per
 * round), so that machine noise hits them alike and no system's background work lands in another's rows.
 * The ratio column divides each p50 by the sum of raw `SET` p50 and raw `PUBLISH` p50 of the same phase
 * (issue 14's target: `set` ≤ 1.2× that sum).
 * Run: npm run bench:writes
 */
import { createClient } from 'redis'
import { createCache } from '../src/index.js'
import { redisBus, redisStore } from '../src/redis.js'
import { type RedisServer, startRedis } from '../tools/redis-server.js'
import { bentoNode } from './support/bento.js'
import { formatMs, jsonRecord, machineLine, markdownTable, percentiles } from './support/harness.js'

const TRIALS = Number(process.env.WRITES_TRIALS ?? 2000) // measured, per row
const WARMUP = 200 // per row, not reported
const KEYS = 1000

interface Row {
  name: string
  /** One write of round `i`. */
  write(i: number): Promise<unknown>
}

const records = Array.from({ length: KEYS }, (_, i) => jsonRecord(i, 1024))
const strings = records.map((record) => JSON.stringify(record))

/** Runs `rows` alternating (one write of each per round) and returns each row's p50 and p99 in ms. */
async function phase(rows: Row[]): Promise<{ name: string; p50: number; p99: number }[]> {
  const times = rows.map(() => new Float64Array(TRIALS))
  for (let t = 0; t < WARMUP + TRIALS; t++) {
    for (let r = 0; r < rows.length; r++) {
      const start = performance.now()
      await rows[r]!.write(t)
      if (t >= WARMUP) times[r]![t - WARMUP] = performance.now() - start
    }
  }
  return rows.map((row, r) => {
    const [p50, p99] = percentiles(times[r]!, [50, 99])
    return { name: row.name, p50: p50!, p99: p99! }
  })
}

let server: RedisServer | undefined
const closes: (() => Promise<unknown>)[] = []
try {
  server = await startRedis()
  const { url, host, port } = server

  const raw = createClient({ url })
  closes.push(() => raw.close())
  await raw.connect()
  const listener = createClient({ url })
  closes.push(() => listener.close())
  await listener.connect()
  await listener.subscribe('floor:invalidations', () => {})

  const key = (i: number) => `k${i % KEYS}`
  const floorRows: Row[] = [
    {
      name: 'raw node-redis SET',
      write: (i) => raw.set(`raw:${key(i)}`, strings[i % KEYS]!, { PX: 3_600_000 }),
    },
    { name: 'raw node-redis PUBLISH', write: (i) => raw.publish('floor:invalidations', key(i)) },
    {
      name: 'raw node-redis SET, then PUBLISH',
      async write(i) {
        await raw.set(`raw2:${key(i)}`, strings[i % KEYS]!, { PX: 3_600_000 })
        await raw.publish('floor:invalidations', key(i))
      },
    },
  ]

  // Each system is measured in a phase of its own, its rows alternating with the floor's: a system's
  // background work (its second node applying the message, its timers, its garbage) then cannot land in
  // another system's rows. Its ratios are to the floor of its own phase.
  const node = () =>
    createCache({
      namespace: 'writes',
      ttl: '1h',
      l1: { maxEntries: 10_000 },
      l2: redisStore({ url }),
      bus: redisBus({ url }),
    })
  const coherentA = node()
  const coherentB = node()
  closes.push(
    () => coherentA.close(),
    () => coherentB.close(),
  )
  await Promise.all([coherentA.ready(), coherentB.ready()])
  const coherent = await phase([
    ...floorRows,
    { name: 'coherent-cache set', write: (i) => coherentA.set(key(i), records[i % KEYS]!) },
    { name: 'coherent-cache delete', write: (i) => coherentA.delete(key(i)) },
    {
      name: 'coherent-cache invalidateTags (one tag)',
      write: (i) => coherentA.invalidateTags([`tag${i % 10}`]),
    },
  ])
  await Promise.all([coherentA.close(), coherentB.close()])

  const bento = () => bentoNode(host, port)
  const bentoA = bento()
  const bentoB = bento()
  closes.push(
    () => bentoA.disconnect(),
    () => bentoB.disconnect(),
  )
  await Promise.all([bentoA.get({ key: 'probe' }), bentoB.get({ key: 'probe' })])
  const bentoPhase = await phase([
    ...floorRows,
    {
      name: 'BentoCache set',
      write: (i) => bentoA.set({ key: key(i), value: records[i % KEYS]!, ttl: '1h' }),
    },
    { name: 'BentoCache delete', write: (i) => bentoA.delete({ key: key(i) }) },
    {
      name: 'BentoCache deleteByTag (one tag)',
      write: (i) => bentoA.deleteByTag({ tags: [`tag${i % 10}`] }),
    },
  ])

  console.log(
    `## Write latency (bench:writes)\n\n${machineLine()}; one Redis on loopback, ${TRIALS} writes per row, 1 KiB values, one at a time. Each system in its own phase, alternating with the raw floor; ratios to raw SET p50 + raw PUBLISH p50 of the same phase.\n`,
  )
  const table: (string | number)[][] = []
  for (const [system, rows] of [
    ['coherent-cache', coherent],
    ['BentoCache', bentoPhase],
  ] as const) {
    const floor = rows[0]!.p50 + rows[1]!.p50
    const floorP99 = rows[0]!.p99 + rows[1]!.p99
    for (const row of rows) {
      table.push([
        system,
        row.name,
        formatMs(row.p50),
        formatMs(row.p99),
        `${(row.p50 / floor).toFixed(2)}×`,
        `${(row.p99 / floorP99).toFixed(2)}×`,
      ])
    }
  }
  console.log(
    markdownTable(
      ['phase', 'operation', 'p50', 'p99', 'p50 / (SET p50 + PUBLISH p50)', 'p99 / (SET p99 + PUBLISH p99)'],
      table,
    ),
  )
} finally {
  await Promise.allSettled(closes.map((close) => close()))
  await server?.stop()
}
