import type { Cache } from '../../src/index.js'
import { mulberry32 } from '../../tools/random.js'

/**
 * A randomized coherence checker. K nodes run random get / set / delete / invalidateTags / clear on a
 * small key space; every operation's start and end (one monotonic clock, all nodes in this process) and
 * result are recorded, and the history is checked afterwards:
 *
 * - Guarantee 1 (read-your-writes): a read on node N that starts after N's change C of key k resolved
 *   never returns a value written before C (a value whose write took effect before C started), nor
 *   undefined while nothing could have removed N's last write of k.
 * - Guarantee 2 (bounded staleness): a read that starts more than `bound` after a change C of k took
 *   effect on another node never returns a value written before C. `bound` is `propagationMs`, or
 *   `l1TtlMs` while the reading node is disrupted (a fault on it, and `disruptionWindowMs` after it ends).
 * - Guarantee 3 (no stale fill) is what makes 2 hold at all under the injected L2 delays: a fill that an
 *   invalidation overtook would sit in L1 and fail check 2 on every later read.
 *
 * When a change takes effect. A change that Redis took while it ran took effect by its end. A degraded
 * one (an L2 or bus call failed, or it queued work: guarantee 5) took effect on its own node by its end
 * (guarantee 1), and in Redis, for the other nodes, somewhere between its start and the moment its node
 * was next seen in step (nothing queued, bus connected: `Op.clean`) plus `propagationMs`. So:
 * - a degraded write holds other nodes to no bound until then, and may be ordered after changes other
 *   nodes made before it landed;
 * - a degraded removal (delete, tags, clear) may remove writes other nodes made until then;
 * - a write that a node made while it could not reach Redis records only the invalidations that node
 *   knew of: one made elsewhere after the node was last in step may be ordered after it (a miss, never an
 *   older value).
 * Program order on one node always holds: a node's own earlier change never removes its later write.
 *
 * Values are unique per write ("node:seq"), so every read can be traced to the write that produced it.
 */
export interface Op {
  node: number
  kind: 'get' | 'set' | 'delete' | 'tags' | 'clear'
  key: string
  /** For set: the value written. For get: the value read. */
  value: string | undefined
  tags?: string[]
  start: number
  end: number
  /** An L2 or bus call of this node failed during the operation, or it queued work for Redis. */
  degraded?: boolean
  /** After the operation the node had nothing queued for Redis and its bus was connected. */
  clean?: boolean
}

/** What `disrupt` did: which nodes it affects (every node when undefined), and for how long. */
export interface Disruption {
  nodes?: number[]
  /** 0 for an instant event (a connection kill), else how long the fault lasts. */
  durationMs?: number
}

export interface DisruptionRecord extends Disruption {
  at: number
}

export interface CheckerOptions {
  nodes: Cache[]
  durationMs: number
  keys: number
  /** Called every `disruptEveryMs`; returns once the disruption is under way, saying what it disrupts. */
  disrupt?: () => Promise<Disruption | undefined | void>
  disruptEveryMs?: number
  /**
   * How long after a disruption ends its nodes' reads may still lag by up to l1.ttl (detection, resubscribe,
   * breaker probe). Keep it shorter than `disruptEveryMs`: most reads must be judged by `propagationMs`.
   */
  disruptionWindowMs?: number
  propagationMs: number
  l1TtlMs: number
  /**
   * Disruptions lose data, for up to this long after each one (an L2 server restarted empty, a
   * shardedStore member re-admitted under a new generation some time after it was killed): a read may
   * miss a value whose write began before such a loss could happen. It must still never return an older
   * value.
   */
  lossWindowMs?: number
  seed?: number
  concurrency?: number
}

export interface Violation {
  guarantee: 1 | 2
  read: Op
  because: Op
}

export interface Judged {
  /** Reads held to `propagationMs` for other nodes' changes. */
  propagation: number
  /** Reads of a disrupted node, held to `l1TtlMs`. */
  l1Ttl: number
  /** Reads of nothing that were checked (a degraded read may miss, and is not). */
  misses: number
}

export interface CheckerReport {
  operations: number
  reads: number
  /** Reads during which the node could not reach L2: they may miss a value they cannot see. */
  degradedReads: number
  writes: number
  /** Writes and invalidations that were degraded. */
  degradedWrites: number
  disruptions: number
  /**
   * The share of the run during which a node was held to l1.ttl (its disruptions' faults and windows),
   * averaged over the nodes: the rest of the time every read of it is held to the propagation bound.
   */
  disruptedShare: number
  judged: Judged
  violations: Violation[]
}

const now = () => performance.now()

function tagsOf(key: string): string[] {
  const n = Number(key.slice(1))
  return [`mod3:${n % 3}`, `mod4:${n % 4}`]
}

export async function runChecker(options: CheckerOptions): Promise<CheckerReport> {
  const { nodes, durationMs, keys } = options
  const random = mulberry32(options.seed ?? 1)
  const history: Op[] = []
  const disruptions: DisruptionRecord[] = []
  const began = now()
  const deadline = began + durationMs
  let seq = 0

  async function worker(node: number): Promise<void> {
    const cache = nodes[node]!
    while (now() < deadline) {
      // Yield to the event loop between operations, as request handlers do: an L1 hit resolves in a
      // microtask, and a loop of them alone would starve bus messages and timers.
      await new Promise((resolve) => setImmediate(resolve))
      const key = `k${Math.floor(random() * keys)}`
      const dice = random()
      const start = now()
      const before = cache.stats()
      const record = (op: Omit<Op, 'node' | 'start' | 'end' | 'degraded' | 'clean'>, readOnly: boolean) => {
        const end = now()
        const after = cache.stats()
        const degraded =
          after.l2.errors !== before.l2.errors ||
          (!readOnly &&
            (after.bus.publishErrors !== before.bus.publishErrors || after.pending > before.pending))
        const clean = !degraded && after.pending === 0 && after.bus.connected
        history.push({ ...op, node, start, end, degraded, clean })
      }
      if (dice < 0.6) {
        const value = await cache.get<string>(key)
        record({ kind: 'get', key, value }, true)
      } else if (dice < 0.85) {
        const value = `${node}:${++seq}`
        await cache.set(key, value, { tags: tagsOf(key) })
        record({ kind: 'set', key, value }, false)
      } else if (dice < 0.95) {
        await cache.delete(key)
        record({ kind: 'delete', key, value: undefined }, false)
      } else if (dice < 0.995) {
        const tag = random() < 0.5 ? `mod3:${Math.floor(random() * 3)}` : `mod4:${Math.floor(random() * 4)}`
        await cache.invalidateTags([tag])
        record({ kind: 'tags', key: '', value: undefined, tags: [tag] }, false)
      } else {
        await cache.clear()
        record({ kind: 'clear', key: '', value: undefined }, false)
      }
    }
  }

  async function disruptor(): Promise<void> {
    if (!options.disrupt || !options.disruptEveryMs) return
    while (now() + options.disruptEveryMs < deadline) {
      await new Promise((resolve) => setTimeout(resolve, options.disruptEveryMs))
      const at = now()
      const what = (await options.disrupt()) ?? {}
      disruptions.push({ at, ...what })
    }
  }

  const concurrency = options.concurrency ?? 2
  const workers: Promise<void>[] = []
  for (let n = 0; n < nodes.length; n++) for (let c = 0; c < concurrency; c++) workers.push(worker(n))
  await Promise.all([...workers, disruptor()])
  const ended = now()
  // COHERENCE_CHECK_DUMP=<directory>: keep every run's history and disruptions, to study a violation.
  const dump = process.env.COHERENCE_CHECK_DUMP
  if (dump !== undefined) {
    const { mkdirSync, writeFileSync } = await import('node:fs')
    mkdirSync(dump, { recursive: true })
    writeFileSync(
      `${dump}/history-${process.pid}-${Date.now()}.json`,
      JSON.stringify({ history, disruptions }),
    )
  }
  const { violations, judged } = checkHistory(history, disruptions, options)
  return {
    operations: history.length,
    reads: history.filter((op) => op.kind === 'get').length,
    degradedReads: history.filter((op) => op.kind === 'get' && op.degraded).length,
    writes: history.filter((op) => op.kind !== 'get').length,
    degradedWrites: history.filter((op) => op.kind !== 'get' && op.degraded).length,
    disruptions: disruptions.length,
    disruptedShare: disruptedShare(
      nodes.length,
      disruptions,
      began,
      ended,
      options.disruptionWindowMs ?? options.l1TtlMs,
    ),
    judged,
    violations,
  }
}

/** See CheckerReport.disruptedShare. */
function disruptedShare(
  nodeCount: number,
  disruptions: readonly DisruptionRecord[],
  from: number,
  to: number,
  windowMs: number,
): number {
  let total = 0
  for (let node = 0; node < nodeCount; node++) {
    const spans = disruptions
      .filter((d) => d.nodes === undefined || d.nodes.includes(node))
      .map((d) => [Math.max(from, d.at), Math.min(to, d.at + (d.durationMs ?? 0) + windowMs)] as const)
      .sort((a, b) => a[0] - b[0])
    let covered = 0
    let reach = from
    for (const [start, end] of spans) {
      if (end > reach) {
        covered += end - Math.max(start, reach)
        reach = end
      }
    }
    total += covered / (to - from)
  }
  return total / nodeCount
}

/** True if `op` invalidates what a write of `key` stored. */
function affects(op: Op, key: string): boolean {
  if (op.kind === 'set' || op.kind === 'delete') return op.key === key
  if (op.kind === 'clear') return true
  if (op.kind === 'tags') return tagsOf(key).some((tag) => op.tags!.includes(tag))
  return false
}

/** The first index in `sorted` (ascending by `at`) whose value is >= t. */
function lowerBound<T>(sorted: ArrayLike<T>, t: number, at: (item: T) => number): number {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (at(sorted[mid]!) < t) lo = mid + 1
    else hi = mid
  }
  return lo
}

type CheckOptions = Pick<CheckerOptions, 'propagationMs' | 'l1TtlMs' | 'disruptionWindowMs' | 'lossWindowMs'>

export function check(history: Op[], disruptions: DisruptionRecord[], options: CheckOptions): Violation[] {
  return checkHistory(history, disruptions, options).violations
}

export function checkHistory(
  history: Op[],
  disruptions: DisruptionRecord[],
  options: CheckOptions,
): { violations: Violation[]; judged: Judged } {
  const { propagationMs, l1TtlMs } = options
  const window = options.disruptionWindowMs ?? l1TtlMs
  // Per node, the ends of its operations after which it was in step with Redis, ascending.
  const cleanEnds = new Map<number, number[]>()
  for (const op of history) {
    if (!op.clean) continue
    const ends = cleanEnds.get(op.node) ?? []
    ends.push(op.end)
    cleanEnds.set(op.node, ends)
  }
  for (const ends of cleanEnds.values()) ends.sort((a, b) => a - b)
  /** When a change surely took effect in Redis (for other nodes): see the module comment. */
  const landed = new Map<Op, number>()
  const landedBy = (op: Op): number => {
    if (!op.degraded) return op.end
    let at = landed.get(op)
    if (at === undefined) {
      const ends = cleanEnds.get(op.node) ?? []
      const i = lowerBound(ends, op.end, (t) => t)
      at = i < ends.length ? ends[i]! + propagationMs : Number.POSITIVE_INFINITY
      landed.set(op, at)
    }
    return at
  }
  /** The end of the node's last clean operation before `t` (what it last knew for sure). */
  const lastInStep = (node: number, t: number): number => {
    const ends = cleanEnds.get(node) ?? []
    const i = lowerBound(ends, t, (x) => x)
    return i === 0 ? Number.NEGATIVE_INFINITY : ends[i - 1]!
  }
  const disruptedAt = (node: number, t: number) =>
    disruptions.some(
      (d) =>
        (d.nodes === undefined || d.nodes.includes(node)) &&
        d.at <= t &&
        t <= d.at + (d.durationMs ?? 0) + window,
    )

  const writesByValue = new Map<string, Op>()
  const keys = new Set<string>()
  const global: Op[] = []
  const perKey = new Map<string, Op[]>()
  let nodeCount = 0
  for (const op of history) {
    nodeCount = Math.max(nodeCount, op.node + 1)
    if (op.kind === 'set') writesByValue.set(op.value!, op)
    if (op.kind === 'get' || op.kind === 'set' || op.kind === 'delete') keys.add(op.key)
    if (op.kind === 'tags' || op.kind === 'clear') global.push(op)
    else if (op.kind !== 'get') {
      const ops = perKey.get(op.key)
      if (ops === undefined) perKey.set(op.key, [op])
      else ops.push(op)
    }
  }
  // Per key: its changes by start, and its sets by start.
  const changesOf = new Map<string, Op[]>()
  const setsOf = new Map<string, Op[]>()
  for (const key of keys) {
    const changes = [...(perKey.get(key) ?? []), ...global.filter((op) => affects(op, key))]
    changes.sort((a, b) => a.start - b.start)
    changesOf.set(key, changes)
    setsOf.set(
      key,
      changes.filter((op) => op.kind === 'set'),
    )
  }
  const sortedDisruptions = [...disruptions].sort((a, b) => a.at - b.at)
  // The longest any change took to take effect (or to run): a change that started earlier than that
  // before a moment took effect before it.
  let maxLag = 0
  for (const changes of changesOf.values()) {
    for (const op of changes) {
      const lag = landedBy(op) - op.start
      if (Number.isFinite(lag)) maxLag = Math.max(maxLag, lag, op.end - op.start)
    }
  }
  // Per key, its removals (deletes, tag invalidations, clears) by start, with prefix maxima per node n
  // over the first i of them: the latest a removal by another node surely took effect (Infinity: never
  // surely), and the latest a removal by n itself ended. removedAfter() below asks them in O(log n).
  interface Removals {
    starts: Float64Array
    otherLanded: Float64Array[]
    ownEnd: Float64Array[]
  }
  const removalsOf = new Map<string, Removals>()
  for (const [key, changes] of changesOf) {
    const removals = changes.filter((op) => op.kind !== 'set')
    const starts = Float64Array.from(removals, (op) => op.start)
    const otherLanded: Float64Array[] = []
    const ownEnd: Float64Array[] = []
    for (let n = 0; n < nodeCount; n++) {
      const other = new Float64Array(removals.length + 1).fill(Number.NEGATIVE_INFINITY)
      const own = new Float64Array(removals.length + 1).fill(Number.NEGATIVE_INFINITY)
      removals.forEach((op, i) => {
        other[i + 1] = op.node === n ? other[i]! : Math.max(other[i]!, landedBy(op))
        own[i + 1] = op.node === n ? Math.max(own[i]!, op.end) : own[i]!
      })
      otherLanded.push(other)
      ownEnd.push(own)
    }
    removalsOf.set(key, { starts, otherLanded, ownEnd })
  }

  const violations: Violation[] = []
  const judged: Judged = { propagation: 0, l1Ttl: 0, misses: 0 }
  for (const read of history) {
    if (read.kind !== 'get') continue
    const disrupted = disruptedAt(read.node, read.start)
    const bound = disrupted ? l1TtlMs : propagationMs
    /** By when `change` surely took effect where `read` ran, and which guarantee that is. */
    const visibleBy = (change: Op): [number, 1 | 2] =>
      change.node === read.node ? [change.end, 1] : [landedBy(change) + bound, 2]
    if (read.value !== undefined) {
      const source = writesByValue.get(read.value)
      if (source === undefined) continue // written by a set still in flight at the end of the run
      if (disrupted) judged.l1Ttl++
      else judged.propagation++
      // A change that surely took effect after the value's write did, and surely before the read.
      const changes = changesOf.get(read.key)!
      for (let i = lowerBound(changes, source.end, (op) => op.start); i < changes.length; i++) {
        const change = changes[i]!
        if (change.start >= read.start) break
        if (change === source) continue
        const after = change.node === source.node ? source.end : landedBy(source)
        if (change.start <= after) continue
        const [by, guarantee] = visibleBy(change)
        if (by < read.start) {
          violations.push({ guarantee, read, because: change })
          break
        }
      }
      continue
    }
    // Read nothing: wrong only if a write surely took effect here before the read, and nothing could have
    // removed it (or every write that may have followed it) since. A read that reached neither L1 nor L2
    // may miss (guarantee 5).
    if (read.degraded) continue
    judged.misses++
    const sets = setsOf.get(read.key) ?? []
    let latest: Op | undefined
    let latestGuarantee: 1 | 2 = 1
    for (let i = lowerBound(sets, read.start, (op) => op.start) - 1; i >= 0; i--) {
      const [by, guarantee] = visibleBy(sets[i]!)
      if (by < read.start) {
        latest = sets[i]!
        latestGuarantee = guarantee
        break
      }
    }
    if (latest === undefined) continue
    const set = latest
    const loss = options.lossWindowMs
    if (loss !== undefined && sortedDisruptions.some((d) => d.at <= read.end && d.at + loss >= set.start))
      continue
    const { starts, otherLanded, ownEnd } = removalsOf.get(read.key)!
    // The removals that started before the read ended: the first `begun` of them.
    const begun = lowerBound(starts, read.end, (t) => t)
    /**
     * True if a removal may have taken effect after `write` and before the read ended: one of the
     * write's own node that ended after the write started, or one of another node that did not surely
     * take effect before the write did (or, for a degraded write, before its node was last in step).
     */
    const removedAfter = (write: Op): boolean => {
      const horizon = write.degraded ? lastInStep(write.node, write.start) - propagationMs : write.start
      return otherLanded[write.node]![begun]! > horizon || ownEnd[write.node]![begun]! > write.start
    }
    let explained = removedAfter(set)
    // Or a later write replaced it and was itself removed (for instance by an invalidation that lands late).
    for (
      let i = lowerBound(sets, set.start - maxLag, (op) => op.start);
      !explained && i < sets.length && sets[i]!.start < read.end;
      i++
    ) {
      const next = sets[i]!
      const follows =
        next.node === set.node ? next.start > set.end : next !== set && landedBy(next) > set.start
      if (follows && removedAfter(next)) explained = true
    }
    if (!explained) violations.push({ guarantee: latestGuarantee, read, because: set })
  }
  return { violations, judged }
}
