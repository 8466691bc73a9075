/**
 * Redis outage: what do callers see while the Redis under a cache is down or hung, and how soon is Redis
 * used again once it is back?
 *
 * Per contender, one after another, each on a Redis server of its own: 8 async workers call getOrSet on
 * random keys out of 1,000 (uniform, seeded) with an L1 that holds only 100 of them.
 * - Dead Redis: a 1 ms loader. Phases: 2 s warm with Redis up; Redis killed (server.kill()) and left down
 *   3 s; restarted (server.start(), empty: no persistence) and watched until the contender is answered
 *   from Redis again.
 * - Hung Redis: the loader is a primary-key SELECT on the machine's PostgreSQL (127.0.0.1:5432, user
 *   postgres, database test; a 1 ms sleep when it cannot be reached). Phases: 2 s warm; Redis stopped
 *   with SIGSTOP (its connections stay open, nothing answers) for 3 s; SIGCONT, and watched until the
 *   contender is answered from Redis again. coherent-cache runs with its defaults and with other
 *   l2Timeout / failureThreshold pairs, to choose the defaults (docs/decisions.md). The same run measures
 *   the SELECT alone (8 workers, no cache) before and after the hung runs: what a call costs when the
 *   cache is not there at all.
 *
 * Contenders and their configuration:
 * - coherent-cache: l1 { maxEntries: 100 }, Redis L2 + Redis bus, l2Timeout '100ms', circuitBreaker
 *   defaults (5 failures, open 2 s), grace '1h'.
 * - BentoCache: memory L1 { maxItems: 100 } + Redis L2 + Redis bus (ioredis with its defaults), grace '1h',
 *   l2CircuitBreakerDuration '2s' (its documented circuit breaker; off by default), timeouts at their
 *   defaults (soft timeout 0, no hard timeout).
 * - cache-manager: two stores, a Keyv on a 100-entry LRU map and a Keyv on @keyv/redis with its defaults
 *   (node-redis offline queue, @keyv/redis reconnect strategy, errors not thrown); cache-manager has no
 *   timeouts of its own.
 * Run: npm run bench:outage   (about 25 s)
 */
import diagnosticsChannel from 'node:diagnostics_channel'
import { EventEmitter } from 'node:events'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import KeyvRedis from '@keyv/redis'
import { BentoCache, bentostore } from 'bentocache'
import { memoryDriver } from 'bentocache/drivers/memory'
import { redisBusDriver, redisDriver } from 'bentocache/drivers/redis'
import { createCache as createCacheManager } from 'cache-manager'
import { Keyv } from 'keyv'
import { LRUCache } from 'lru-cache'
import pg from 'pg'
import { type CacheOptions, createCache } from '../src/index.js'
import { resolveOptions } from '../src/options.js'
import { redisBus, redisStore } from '../src/redis.js'
import { mulberry32 } from '../tools/random.js'
import type { RedisServer } from '../tools/redis-server.js'
import {
  formatMs,
  machineLine,
  markdownTable,
  percentiles,
  redisCommandsProcessed,
  sleep,
  withRedisServers,
} from './support/harness.js'

const KEYS = 1_000
const L1_ENTRIES = 100
const WORKERS = 8
const LOAD_MS = 1
const WARM_MS = 2_000
/** Longer in the hung scenario: it also counts false alarms (breaker trips while Redis answers). */
const HUNG_WARM_MS = 5_000
const DOWN_MS = 3_000
/** Give up waiting for a contender to use Redis again after this long. */
const RECOVERY_CAP_MS = 15_000
const SEED = 7
/** coherent-cache's target: no call waits longer than l2Timeout + 20 ms while Redis is down. */
const L2_TIMEOUT_MS = 100
const TARGET_MS = L2_TIMEOUT_MS + 20

interface Value {
  key: string
  rows: number[]
}

interface Instance {
  getOrSet(key: string, loader: (key: string) => Promise<Value>): Promise<unknown>
  /** Answers that came from Redis (L2 hits) so far. */
  l2Hits(): number
  /** Extra facts for the notes below the table; `at(t)` turns a performance.now() time into phase time. */
  describe?(at: (t: number) => string): string
  /** coherent-cache: the longest single L2 call (store call under timeout and breaker) since `since`. */
  longestL2Call?(since: number): { ms: number; what: string } | undefined
  /** coherent-cache: how often the L2 circuit opened between `from` and `to` (performance.now() times). */
  circuitOpens?(from: number, to: number): number
  close(): Promise<void>
}

interface Contender {
  name: string
  create(server: RedisServer): Promise<Instance>
}

const keys = Array.from({ length: KEYS }, (_, i) => `item:${i}`)

// ---- contenders -------------------------------------------------------------------------------------

/** coherent-cache with `options` on top of the bench's (grace 1h, L1 of 100, Redis L2 and bus). */
const coherentWith = (name: string, options: CacheOptions): Contender => ({
  name,
  async create(server) {
    const cache = createCache({
      namespace: 'outage',
      ttl: '10m',
      grace: '1h',
      l1: { maxEntries: L1_ENTRIES },
      l2: redisStore({ url: server.url }),
      bus: redisBus({ url: server.url }),
      ...options,
    })
    await cache.ready()
    // The public diagnostics channels: when the L2 circuit and the bus changed state.
    const events: { time: number; what: string }[] = []
    const onCircuit = (message: unknown) => {
      const { namespace, target, state } = message as { namespace: string; target: string; state: string }
      if (namespace === 'outage') events.push({ time: performance.now(), what: `${target} circuit ${state}` })
    }
    const onBus = (message: unknown) => {
      const { namespace, status } = message as { namespace: string; status: string }
      if (namespace === 'outage') events.push({ time: performance.now(), what: `bus ${status}` })
    }
    diagnosticsChannel.subscribe('coherent-cache:circuit', onCircuit)
    diagnosticsChannel.subscribe('coherent-cache:bus', onBus)
    // Every L2 call goes through RemoteTier.call (timeout + breaker): time each one, to tell a wait for
    // Redis from a wait for the event loop.
    const remote = (
      cache as unknown as {
        rt: { remote: { call<T>(op: string, start: () => Promise<T>, deadline?: number): Promise<T> } }
      }
    ).rt.remote
    const l2Calls: { started: number; ms: number; what: string }[] = []
    const call = remote.call.bind(remote)
    remote.call = <T>(op: string, start: () => Promise<T>, deadline?: number): Promise<T> => {
      const started = performance.now()
      const promise = call(op, start, deadline)
      const done = (outcome: string) => () => {
        const ms = performance.now() - started
        if (ms >= 5) l2Calls.push({ started, ms, what: `${op} ${outcome}` })
      }
      promise.then(done('answered'), (error: unknown) =>
        done(`failed (${(error as object)?.constructor?.name})`)(),
      )
      return promise
    }
    return {
      circuitOpens: (from, to) =>
        events.filter((event) => event.what === 'l2 circuit open' && event.time >= from && event.time < to)
          .length,
      longestL2Call(since) {
        let longest: { ms: number; what: string } | undefined
        for (const l2Call of l2Calls) {
          if (l2Call.started >= since && l2Call.ms > (longest?.ms ?? 0)) longest = l2Call
        }
        return longest
      },
      getOrSet: (key, loader) => cache.getOrSet(key, loader),
      l2Hits: () => cache.stats().l2.hits,
      describe(at) {
        const { l2, pending, recovered, staleServed } = cache.stats()
        const timeline = events.map((event) => `${event.what} ${at(event.time)}`).join(', ')
        return `L2 errors ${l2.errors}; stale served ${staleServed}; writes queued ${pending}, recovered ${recovered} (when Redis was in use again); timeline: ${timeline}`
      },
      close: async () => {
        diagnosticsChannel.unsubscribe('coherent-cache:circuit', onCircuit)
        diagnosticsChannel.unsubscribe('coherent-cache:bus', onBus)
        await cache.close()
      },
    }
  },
})
const coherent = coherentWith('coherent-cache', { l2Timeout: `${L2_TIMEOUT_MS}ms` })

const bento: Contender = {
  name: 'BentoCache',
  async create(server) {
    const connection = { host: server.host, port: server.port }
    const emitter = new EventEmitter()
    let hits = 0
    emitter.on('cache:hit', (event: { layer?: string; graced?: boolean }) => {
      if (event.layer === 'l2' && !event.graced) hits++
    })
    const instance = new BentoCache({
      default: 'cache',
      prefix: 'outage-bento',
      grace: '1h',
      l2CircuitBreakerDuration: '2s',
      emitter,
      stores: {
        cache: bentostore()
          .useL1Layer(memoryDriver({ maxItems: L1_ENTRIES }))
          .useL2Layer(redisDriver({ connection }))
          .useBus(redisBusDriver({ connection })),
      },
    })
    return {
      getOrSet: (key, loader) => instance.getOrSet({ key, factory: () => loader(key), ttl: '10m' }),
      l2Hits: () => hits,
      close: () => instance.disconnect(),
    }
  },
}

const cacheManager: Contender = {
  name: 'cache-manager',
  async create(server) {
    // Keyv takes any Map-like store; lru-cache's set() wants an options object where Keyv passes a TTL
    // (Keyv keeps the expiry in the value itself), hence the adapter.
    const lru = new LRUCache<string, NonNullable<unknown>>({ max: L1_ENTRIES })
    const memory = new Keyv({
      store: {
        get: (key: string) => lru.get(key),
        set: (key: string, value: unknown) => {
          lru.set(key, value as NonNullable<unknown>)
          return true
        },
        delete: (key: string) => lru.delete(key),
        clear: () => lru.clear(),
      },
    })
    const redis = new Keyv({ store: new KeyvRedis(server.url), namespace: 'outage-cm' })
    redis.on('error', () => {})
    let hits = 0
    const get = redis.get.bind(redis) as (...args: unknown[]) => Promise<unknown>
    ;(redis as unknown as { get: typeof get }).get = async (...args) => {
      const value = await get(...args)
      if (value !== undefined) hits++
      return value
    }
    const instance = createCacheManager({ stores: [memory, redis] })
    return {
      getOrSet: (key, loader) => instance.wrap(key, () => loader(key), 600_000),
      l2Hits: () => hits,
      close: () => instance.disconnect().then(() => {}),
    }
  },
}

const contenders = [coherent, bento, cacheManager]

/** The defaults as resolveOptions() gives them, for the labels. */
const defaults = resolveOptions({})
const breakerLabel = (options: ReturnType<typeof resolveOptions>) =>
  options.circuitBreaker === false
    ? 'no breaker'
    : `failureThreshold ${options.circuitBreaker.failureThreshold}`
const DEFAULTS_LABEL = `l2Timeout ${defaults.l2Timeout} ms, ${breakerLabel(defaults)}`
/** coherent-cache configurations for a hung Redis: the defaults, then the pairs they were chosen among. */
const HUNG_CONFIGS: { l2TimeoutMs: number; failureThreshold: number }[] = [
  { l2TimeoutMs: 1000, failureThreshold: 5 },
  { l2TimeoutMs: 250, failureThreshold: 5 },
  { l2TimeoutMs: 100, failureThreshold: 5 },
  { l2TimeoutMs: 100, failureThreshold: 3 },
  { l2TimeoutMs: 50, failureThreshold: 5 },
  { l2TimeoutMs: 50, failureThreshold: 3 },
]
const isDefault = ({ l2TimeoutMs, failureThreshold }: (typeof HUNG_CONFIGS)[number]) =>
  defaults.l2Timeout === l2TimeoutMs &&
  defaults.circuitBreaker !== false &&
  defaults.circuitBreaker.failureThreshold === failureThreshold
const hungContenders: Contender[] = [
  coherentWith(`coherent-cache, defaults (${DEFAULTS_LABEL})`, {}),
  ...HUNG_CONFIGS.filter((config) => !isDefault(config)).map(({ l2TimeoutMs, failureThreshold }) =>
    coherentWith(`coherent-cache, l2Timeout ${l2TimeoutMs} ms, failureThreshold ${failureThreshold}`, {
      l2Timeout: l2TimeoutMs,
      circuitBreaker: { failureThreshold },
    }),
  ),
  bento,
  cacheManager,
]

// ---- the database the loader reads (hung scenario) ----------------------------------------------------

const PG = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test', max: WORKERS }
const TABLE = 'coherent_cache_bench_items'

interface Database {
  load(key: string): Promise<Value>
  /** `WORKERS` callers SELECT random rows for `ms` (no cache): the latencies. */
  measure(ms: number): Promise<number[]>
  describe: string
  close(): Promise<void>
}

async function openDatabase(): Promise<Database> {
  const pool = new pg.Pool({ ...PG, connectionTimeoutMillis: 2000 })
  pool.on('error', () => {})
  try {
    await pool.query(`CREATE TABLE IF NOT EXISTS ${TABLE} (id integer PRIMARY KEY, name text, price integer)`)
    await pool.query(
      `INSERT INTO ${TABLE} SELECT i, 'item ' || i, i % 997 FROM generate_series(0, ${KEYS - 1}) AS i ON CONFLICT DO NOTHING`,
    )
  } catch (error) {
    await pool.end().catch(() => {})
    console.error(
      `(PostgreSQL at ${PG.host}:${PG.port} unavailable: ${String(error)}; the loader sleeps 1 ms)`,
    )
    return {
      load: async (key) => {
        await sleep(LOAD_MS)
        return { key, rows: [1, 2, 3] }
      },
      measure: async () => [],
      describe: 'a 1 ms sleep (PostgreSQL unavailable)',
      close: async () => {},
    }
  }
  const select = (id: number) =>
    pool.query({
      name: 'bench-item',
      text: `SELECT id, name, price FROM ${TABLE} WHERE id = $1`,
      values: [id],
    })
  return {
    async load(key) {
      const id = Number(key.slice(key.indexOf(':') + 1)) // 'item:<n>'; the warm-up key 'connect' reads row 0
      const { rows } = await select(Number.isInteger(id) ? id : 0)
      return { key, rows: [rows[0].id, rows[0].price] }
    },
    async measure(ms) {
      const latencies: number[] = []
      const deadline = performance.now() + ms
      const random = mulberry32(SEED)
      await Promise.all(
        Array.from({ length: WORKERS }, async () => {
          while (performance.now() < deadline) {
            const started = performance.now()
            await select(Math.floor(random() * KEYS))
            latencies.push(performance.now() - started)
          }
        }),
      )
      return latencies
    },
    describe: `a primary-key SELECT on PostgreSQL (${PG.host}:${PG.port}, ${KEYS.toLocaleString()} rows, pool of ${WORKERS})`,
    async close() {
      await pool.query(`DROP TABLE IF EXISTS ${TABLE}`).catch(() => {})
      await pool.end()
    },
  }
}

// ---- one outage -------------------------------------------------------------------------------------

type Phase = 'warm' | 'down' | 'back'
/** 'kill': Redis dies and comes back empty; 'hang': Redis stops answering (SIGSTOP), then resumes. */
type Fault = 'kill' | 'hang'

interface PhaseRecord {
  latencies: number[]
  threw: number
  /** Loader calls made during the phase (the database load the cache let through). */
  loads: number
}

interface Outcome {
  /** coherent-cache: L2 circuit openings while Redis was up and answering (warm phase): false alarms. */
  falseTrips: number | undefined
  name: string
  /** Event-loop delay (perf_hooks) while Redis was down: how late timers and I/O callbacks ran. */
  loopDelayMaxMs: number
  /** coherent-cache: the longest L2 call that started while Redis was down. */
  longestL2Call: { ms: number; what: string } | undefined
  phases: Record<Phase, PhaseRecord>
  maxAnyMs: number
  /** From Redis answering PING again to the first command the contender sent it. */
  reconnectMs: number | undefined
  /** From Redis answering PING again to the first answer the contender got from it (an L2 hit). */
  recoverMs: number | undefined
  firstError: unknown
  notes: string
}

async function outage(
  contender: Contender,
  server: RedisServer,
  fault: Fault = 'kill',
  load: (key: string) => Promise<Value> = async (key) => {
    await sleep(LOAD_MS)
    return { key, rows: [1, 2, 3] }
  },
): Promise<Outcome> {
  const instance = await contender.create(server)
  const phases: Record<Phase, PhaseRecord> = {
    warm: { latencies: [], threw: 0, loads: 0 },
    down: { latencies: [], threw: 0, loads: 0 },
    back: { latencies: [], threw: 0, loads: 0 },
  }
  let phase: Phase = 'warm'
  let stop = false
  let maxAnyMs = 0
  let firstError: unknown
  const loader = async (key: string): Promise<Value> => {
    phases[phase].loads++
    return load(key)
  }
  let stopped = false
  /** Every call, for the calls in flight while Redis was down (started before it came back, ended after it went). */
  const starts: number[] = []
  const durations: number[] = []
  const worker = async (id: number) => {
    const random = mulberry32(SEED + id)
    for (let n = 1; !stop; n++) {
      const key = keys[Math.floor(random() * KEYS)]!
      const record = phases[phase]
      const started = performance.now()
      try {
        await instance.getOrSet(key, loader)
      } catch (error) {
        record.threw++
        firstError ??= error
      }
      const ms = performance.now() - started
      record.latencies.push(ms)
      starts.push(started)
      durations.push(ms)
      if (ms > maxAnyMs) maxAnyMs = ms
      // A worker answered from L1 never leaves the microtask queue: let timers and I/O run now and then.
      if (n % 64 === 0) await new Promise((resolve) => setImmediate(resolve))
    }
  }
  let workers: Promise<void>[] = []
  try {
    // Connections open before the clock starts.
    await instance.getOrSet('connect', loader)
    workers = Array.from({ length: WORKERS }, (_, id) => worker(id))
    const warmFrom = performance.now()
    await sleep(fault === 'hang' ? HUNG_WARM_MS : WARM_MS)
    phase = 'down'
    const killedAt = performance.now()
    const falseTrips = instance.circuitOpens?.(warmFrom, killedAt)
    const loopDelay = monitorEventLoopDelay({ resolution: 5 })
    loopDelay.enable()
    if (fault === 'kill') await server.kill()
    else {
      process.kill(server.pid, 'SIGSTOP')
      stopped = true
    }
    await sleep(DOWN_MS)
    phase = 'back'
    loopDelay.disable()
    const longestL2Call = instance.longestL2Call?.(killedAt)
    const hitsBefore = instance.l2Hits()
    if (fault === 'kill') await server.start()
    else {
      process.kill(server.pid, 'SIGCONT')
      stopped = false
    }
    const upAt = performance.now()
    const at = (time: number) =>
      time < upAt ? `at kill + ${formatMs(time - killedAt)}` : `at Redis back + ${formatMs(time - upAt)}`
    let reconnectMs: number | undefined
    let recoverMs: number | undefined
    while (
      performance.now() - upAt < RECOVERY_CAP_MS &&
      (reconnectMs === undefined || recoverMs === undefined)
    ) {
      if (recoverMs === undefined && instance.l2Hits() > hitsBefore) recoverMs = performance.now() - upAt
      // A resumed server has its counters (and connections) still: only a restart starts from 0.
      if (fault === 'hang') reconnectMs = 0
      else if (reconnectMs === undefined && (await redisCommandsProcessed(server.port)) > 0)
        reconnectMs = performance.now() - upAt
      await sleep(5)
    }
    stop = true
    await Promise.all(workers)
    // "While down" is every call that was in flight at some moment of the outage, those that started
    // before it included: a call that started just before the kill and waited for Redis belongs there.
    phases.down.latencies = durations.filter((ms, i) => starts[i]! < upAt && starts[i]! + ms > killedAt)
    return {
      name: contender.name,
      falseTrips,
      loopDelayMaxMs: loopDelay.max / 1e6,
      longestL2Call,
      phases,
      maxAnyMs,
      reconnectMs,
      recoverMs,
      firstError,
      notes: instance.describe?.(at) ?? '',
    }
  } finally {
    if (stopped) process.kill(server.pid, 'SIGCONT')
    stop = true
    await Promise.allSettled(workers)
    await instance.close().catch(() => {})
  }
}

// ---- main -------------------------------------------------------------------------------------------

// ioredis (under BentoCache and its bus) prints every connection error of a client that has no 'error'
// listener, and BentoCache adds none: count those lines instead of printing them.
let ioredisErrors = 0
const consoleError = console.error.bind(console)
console.error = (...args: unknown[]) => {
  if (typeof args[0] === 'string' && args[0].startsWith('[ioredis] Unhandled error event')) ioredisErrors++
  else consoleError(...args)
}

const outcomes: Outcome[] = []
for (const contender of contenders) {
  outcomes.push(await withRedisServers(1, ([server]) => outage(contender, server!)))
}

const database = await openDatabase()
const dbBefore = await database.measure(2_000)
const hungOutcomes: Outcome[] = []
for (const contender of hungContenders) {
  hungOutcomes.push(
    await withRedisServers(1, ([server]) => outage(contender, server!, 'hang', database.load)),
  )
}
const dbAfter = await database.measure(2_000)
await database.close()

const orCap = (ms: number | undefined) => (ms === undefined ? `> ${RECOVERY_CAP_MS / 1000} s` : formatMs(ms))
console.log('## Redis outage\n')
console.log(
  `${WORKERS} async workers per contender call getOrSet on random keys out of ${KEYS.toLocaleString()} (L1 holds ${L1_ENTRIES}; loader ${LOAD_MS} ms): ${WARM_MS / 1000} s with Redis up, ${DOWN_MS / 1000} s with Redis killed, then Redis restarted (empty). Contenders run one after another, each against a Redis server of its own. "While down": every call in flight at some moment between kill and restart (started before the restart, ended after the kill). "After restart": from Redis answering PING again to the first command the contender sent it, and to its first answer from Redis (an L2 hit). "Event-loop delay": how late this process ran its timers while Redis was down (perf_hooks), so a call about that slow waited for the CPU, not for Redis. ${machineLine()}.\n`,
)
console.log(
  markdownTable(
    [
      'contender',
      'calls while down',
      'loader calls while down',
      'threw (while down / whole run)',
      'p50 while down',
      'p99 while down',
      'max while down',
      'max, whole run',
      'event-loop delay max while down',
      'first command after restart',
      'first L2 hit after restart',
    ],
    outcomes.map((outcome) => {
      const down = outcome.phases.down
      const [p50, p99] = percentiles(down.latencies, [50, 99])
      const threw = outcome.phases.warm.threw + down.threw + outcome.phases.back.threw
      return [
        outcome.name,
        down.latencies.length.toLocaleString(),
        down.loads.toLocaleString(),
        `${down.threw} / ${threw}`,
        formatMs(p50!),
        formatMs(p99!),
        formatMs(percentiles(down.latencies, [100])[0]!),
        formatMs(outcome.maxAnyMs),
        formatMs(outcome.loopDelayMaxMs),
        orCap(outcome.reconnectMs),
        orCap(outcome.recoverMs),
      ]
    }),
  ),
)
console.log('')
for (const outcome of outcomes) {
  const warm = outcome.phases.warm.latencies
  const [warmP99] = percentiles(warm, [99])
  const l2Call = outcome.longestL2Call
  const longest =
    outcome.name === coherent.name
      ? `; longest L2 call started while Redis was down: ${l2Call === undefined ? 'none took 5 ms or more' : `${formatMs(l2Call.ms)} (${l2Call.what})`}`
      : ''
  console.log(
    `- ${outcome.name}: ${warm.length.toLocaleString()} calls in the warm phase (p99 ${formatMs(warmP99!)})${longest}${outcome.notes ? `; ${outcome.notes}` : ''}${outcome.firstError ? `; first error: ${String(outcome.firstError)}` : ''}`,
  )
}
if (ioredisErrors > 0)
  console.log(`- (ioredis under BentoCache logged ${ioredisErrors} connection errors, not shown)`)
const coherentOutcome = outcomes[0]!
const coherentDown = coherentOutcome.phases.down
const coherentMax = percentiles(coherentDown.latencies, [100])[0]!
const longestL2 = coherentOutcome.longestL2Call?.ms ?? 0
console.log(
  `\nTarget: no coherent-cache call waits longer than l2Timeout + 20 ms = ${TARGET_MS} ms while Redis is down: ${coherentMax <= TARGET_MS && coherentDown.threw === 0 ? 'met' : 'missed'} (max ${formatMs(coherentMax)}, ${coherentDown.threw} threw; longest L2 call ${formatMs(longestL2)}, event-loop delay up to ${formatMs(coherentOutcome.loopDelayMaxMs)}).`,
)

// ---- hung Redis -------------------------------------------------------------------------------------

console.log('\n## Hung Redis (SIGSTOP)\n')
console.log(
  `${WORKERS} async workers per contender call getOrSet on random keys out of ${KEYS.toLocaleString()} (L1 holds ${L1_ENTRIES}); the loader is ${database.describe}. ${HUNG_WARM_MS / 1000} s with Redis up, ${DOWN_MS / 1000} s with Redis stopped (SIGSTOP: connections open, no answers), then SIGCONT. "While hung": every call in flight at some moment between SIGSTOP and SIGCONT. "Recovered": from SIGCONT to the first answer from Redis (an L2 hit). ${machineLine()}.\n`,
)
const [dbP50, dbP99, dbMax] = percentiles([...dbBefore, ...dbAfter], [50, 99, 100])
console.log(
  markdownTable(
    [
      'contender',
      'calls while hung',
      'threw (while hung / whole run)',
      'p50 while hung',
      'p99 while hung',
      'max while hung',
      'mean while hung',
      'longest L2 call while hung',
      'recovered after SIGCONT',
      `breaker trips while Redis was up (${HUNG_WARM_MS / 1000} s)`,
    ],
    [
      ...hungOutcomes.map((outcome) => {
        const down = outcome.phases.down
        const [p50, p99, max] = percentiles(down.latencies, [50, 99, 100])
        const mean = down.latencies.reduce((sum, ms) => sum + ms, 0) / Math.max(1, down.latencies.length)
        const threw = outcome.phases.warm.threw + down.threw + outcome.phases.back.threw
        return [
          outcome.name,
          down.latencies.length.toLocaleString(),
          `${down.threw} / ${threw}`,
          formatMs(p50!),
          formatMs(p99!),
          formatMs(max!),
          formatMs(mean),
          outcome.longestL2Call === undefined ? '—' : formatMs(outcome.longestL2Call.ms),
          orCap(outcome.recoverMs),
          outcome.falseTrips === undefined ? '—' : String(outcome.falseTrips),
        ]
      }),
      [
        `(reference) the SELECT alone, no cache (${(dbBefore.length + dbAfter.length).toLocaleString()} calls, before and after)`,
        '—',
        '—',
        formatMs(dbP50!),
        formatMs(dbP99!),
        formatMs(dbMax!),
        formatMs(
          [...dbBefore, ...dbAfter].reduce((sum, ms) => sum + ms, 0) /
            Math.max(1, dbBefore.length + dbAfter.length),
        ),
        '—',
        '—',
        '—',
      ],
    ],
  ),
)
console.log('')
for (const outcome of hungOutcomes) {
  console.log(
    `- ${outcome.name}: ${outcome.notes || 'no notes'}${outcome.firstError ? `; first error: ${String(outcome.firstError)}` : ''}`,
  )
}
console.log(
  '\nFinal numbers should be taken on a quiet machine: this one is shared, read the rows as ratios.',
)
