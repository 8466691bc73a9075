import { availableParallelism } from 'node:os'
import { type RedisServer, redisCommand, startRedis } from '../../tools/redis-server.js'
/**
 * A minimal benchmark harness: every contender runs the same pre-generated workload in the same
 * process, a few rounds each, interleaved so that machine noise hits all of them alike; the median round
 * is reported. Results are meant to be read as ratios between contenders of one run. Run under
 * `node --expose-gc` so that every timed run starts on a collected heap.
 */
export interface Contender {
  name: string
  /**
   * Runs the whole workload once; returns the number of operations done. `round.warmup` is true for the
   * rounds that are not reported (a contender that records latencies skips those).
   */
  run: (round: RoundInfo) => number | Promise<number>
  /** Untimed, before each round's run: builds what the run uses (so only this contender's data is live). */
  prepare?: () => void | Promise<void>
  /** Untimed, after each round's run: drops what prepare built. */
  release?: () => void | Promise<void>
}

export interface RoundInfo {
  /** 0-based, warmup rounds included. */
  round: number
  warmup: boolean
}

export interface Result {
  name: string
  opsPerSec: number
}

const collectGarbage = (globalThis as { gc?: () => void }).gc

export async function compare(contenders: Contender[], { rounds = 5, warmup = 1 } = {}): Promise<Result[]> {
  const samples = new Map<string, number[]>(contenders.map((c) => [c.name, []]))
  for (let round = 0; round < warmup + rounds; round++) {
    for (const contender of contenders) {
      await contender.prepare?.()
      // With --expose-gc, each timed run starts on a collected heap: no contender pays for another's garbage.
      collectGarbage?.()
      const start = process.hrtime.bigint()
      const ops = await contender.run({ round, warmup: round < warmup })
      const seconds = Number(process.hrtime.bigint() - start) / 1e9
      await contender.release?.()
      if (round >= warmup) samples.get(contender.name)!.push(ops / seconds)
    }
  }
  return contenders.map((c) => ({ name: c.name, opsPerSec: median(samples.get(c.name)!) }))
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}

/** Several percentiles of `values` with one sort (same rank rule as percentile()). */
export function percentiles(values: ArrayLike<number>, ps: readonly number[]): number[] {
  if (values.length === 0) return ps.map(() => Number.NaN)
  const sorted = Float64Array.from(values).sort()
  return ps.map((p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!)
}

/**
 * A closed loop of `callers` concurrent async callers sharing one sequence of `calls` operations: each
 * caller starts its next operation (`op(i)`, i = 0 .. calls-1) as soon as its previous one resolved, so
 * at most `callers` are in flight. When `latencies` is given, each operation's latency in milliseconds
 * (from calling `op` to its promise resolving, as the caller sees it) is appended to it. Returns `calls`.
 */
export async function closedLoop(
  callers: number,
  calls: number,
  op: (i: number) => Promise<unknown>,
  latencies?: number[],
): Promise<number> {
  let next = 0
  const caller = async () => {
    if (latencies === undefined) {
      for (let i = next++; i < calls; i = next++) await op(i)
      return
    }
    for (let i = next++; i < calls; i = next++) {
      const start = performance.now()
      await op(i)
      latencies.push(performance.now() - start)
    }
  }
  await Promise.all(Array.from({ length: Math.min(callers, calls) }, caller))
  return calls
}

/** A compare() contender over closedLoop() that keeps per-call latencies of the measured rounds. */
export interface LatencyContender extends Contender {
  /** Latency in ms of every call of the measured (non-warmup) rounds. */
  readonly latencies: number[]
  /** Calls that resolved to null or undefined (a read benchmark expects none). */
  readonly misses: number
}

/**
 * A contender whose round is `calls` reads from `callers` concurrent callers (closedLoop); `read(i)` is
 * the i-th call. Latencies are recorded in measured rounds only; null/undefined results count as misses.
 */
export function closedLoopContender(
  name: string,
  { callers, calls }: { callers: number; calls: number },
  read: (i: number) => Promise<unknown>,
): LatencyContender {
  const latencies: number[] = []
  let misses = 0
  const op = async (i: number) => {
    if ((await read(i)) == null) misses++
  }
  return {
    name,
    latencies,
    get misses() {
      return misses
    },
    run: ({ warmup }) => closedLoop(callers, calls, op, warmup ? undefined : latencies),
  }
}

export function markdownTable(headers: string[], rows: (string | number)[][]): string {
  const lines = [`| ${headers.join(' | ')} |`, `| ${headers.map(() => '---').join(' | ')} |`]
  for (const row of rows) lines.push(`| ${row.join(' | ')} |`)
  return lines.join('\n')
}

export function formatOps(opsPerSec: number): string {
  if (opsPerSec >= 1e6) return `${(opsPerSec / 1e6).toFixed(2)}M/s`
  if (opsPerSec >= 1e3) return `${(opsPerSec / 1e3).toFixed(0)}k/s`
  return `${opsPerSec.toFixed(0)}/s`
}

/** Milliseconds with a precision that suits sub-millisecond latencies. */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a'
  if (ms < 10) return `${ms.toFixed(2)} ms`
  return `${ms.toFixed(1)} ms`
}

export function ratio(value: number, base: number): string {
  return `${(value / base).toFixed(2)}×`
}

export function machineLine(): string {
  return `Node ${process.version}, ${process.platform}/${process.arch}, ${availableParallelism()} cores`
}

/**
 * A JSON-like record of exactly `bytes` bytes of JSON (default 1 KiB): numbers, booleans, a nested
 * object, an array of strings and a text field padded to size, the shape of a typical cached row.
 */
export function jsonRecord(i: number, bytes = 1024): Record<string, unknown> {
  const record = {
    id: i,
    sku: `SKU-${String(i).padStart(8, '0')}`,
    name: `Product ${i}`,
    price: Math.round((i % 997) * 1.37 * 100) / 100,
    currency: 'EUR',
    inStock: i % 3 !== 0,
    rating: (i % 50) / 10,
    tags: ['catalog', `category-${i % 17}`, `brand-${i % 31}`, 'featured'],
    dimensions: { width: 120 + (i % 40), height: 80 + (i % 25), depth: 30, unit: 'mm' },
    updatedAt: new Date(1_700_000_000_000 + i * 60_000).toISOString(),
    description: '',
  }
  const filler = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor. '
  const missing = bytes - JSON.stringify(record).length
  record.description = filler.repeat(Math.ceil(Math.max(0, missing) / filler.length)).slice(0, missing)
  return record
}

// ---------------------------------------------------------------------------------------------------------
// Benchmarks against Redis (bench/stampede.ts, bench/outage.ts)

/** Resolves after `ms` milliseconds (a plain timer: the simulated database query of the Redis benchmarks). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** `median (min–max)` of several runs, each value formatted by `format`; just the value when all are equal. */
export function spread(values: number[], format: (value: number) => string = formatMs): string {
  if (values.length === 0) return 'n/a'
  const min = Math.min(...values)
  const max = Math.max(...values)
  if (min === max) return format(min)
  return `${format(median(values))} (${format(min)}–${format(max)})`
}

/**
 * Starts `count` throwaway redis-server processes (tools/redis-server.ts: loopback, free ports, never
 * a Redis already running), runs `fn` with them, and stops every one of them afterwards, also when `fn` throws.
 */
export async function withRedisServers<T>(
  count: number,
  fn: (servers: RedisServer[]) => Promise<T>,
): Promise<T> {
  const servers: RedisServer[] = []
  try {
    for (let i = 0; i < count; i++) servers.push(await startRedis())
    return await fn(servers)
  } finally {
    await Promise.allSettled(servers.map((server) => server.stop()))
  }
}

/**
 * How many commands the Redis on `port` has processed since it started, from INFO commandstats, leaving out
 * INFO and PING (what this function and the server harness send).
 */
export async function redisCommandsProcessed(port: number): Promise<number> {
  const info = await redisCommand(port, ['INFO', 'commandstats'], { timeoutMs: 1000 })
  let total = 0
  for (const line of String(info).split('\r\n')) {
    const match = /^cmdstat_([^:]+):calls=(\d+)/.exec(line)
    if (match && match[1] !== 'info' && match[1] !== 'ping') total += Number(match[2])
  }
  return total
}
