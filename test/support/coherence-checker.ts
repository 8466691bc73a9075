import { mulberry32 } from '../../bench/support/random.js'
import type { Cache } from '../../src/index.js'

/**
 * A randomized coherence checker. K nodes run random get / set / delete / invalidateTags / clear on a
 * small key space; every operation's start and end (one monotonic clock, all nodes in this process) and
 * result are recorded, and the history is checked afterwards:
 *
 * - Guarantee 1 (read-your-writes): a read on node N that starts after N's write W of key k resolved
 *   never returns a value older than W (a value whose write ended before W started), nor undefined while
 *   no invalidation of k could explain it.
 * - Guarantee 2 (bounded staleness): a read that starts more than `bound` after a write or invalidation
 *   W' of k resolved on another node never returns a value written before W' started. `bound` is
 *   `propagationMs` normally and `l1TtlMs` when the reading node's bus was cut during that window.
 * - Guarantee 3 (no stale fill) is what makes 2 hold at all under the injected L2 delays: a fill that an
 *   invalidation overtook would sit in L1 and fail check 2 on every later read.
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
  /**
   * An L2 call of this node failed during the operation, or it queued work for Redis. A degraded read may
   * miss (guarantee 5). A degraded write or invalidation reaches other nodes only once Redis is back for
   * this node (guarantee 5: failed invalidations are retried when Redis returns), so no propagation bound
   * applies to it (guarantee 2); read-your-writes on this node still does (guarantee 1).
   */
  degraded?: boolean
}

export interface CheckerOptions {
  nodes: Cache[]
  durationMs: number
  keys: number
  /** Called every `disruptEveryMs` with the time; returns once the disruption is under way. */
  disrupt?: () => Promise<void>
  disruptEveryMs?: number
  /** How long after a disruption the checker treats nodes as possibly cut off. */
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

export interface CheckerReport {
  operations: number
  reads: number
  /** Reads during which the node could not reach L2: they may miss a value they cannot see. */
  degradedReads: number
  writes: number
  disruptions: number
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
  const disruptions: number[] = []
  const deadline = now() + durationMs
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
      const degraded = () => {
        const after = cache.stats()
        return (
          after.l2.errors !== before.l2.errors ||
          after.bus.publishErrors !== before.bus.publishErrors ||
          after.pending > before.pending
        )
      }
      if (dice < 0.6) {
        const value = await cache.get<string>(key)
        const failed = cache.stats().l2.errors !== before.l2.errors
        history.push({ node, kind: 'get', key, value, start, end: now(), degraded: failed })
      } else if (dice < 0.85) {
        const value = `${node}:${++seq}`
        await cache.set(key, value, { tags: tagsOf(key) })
        history.push({ node, kind: 'set', key, value, start, end: now(), degraded: degraded() })
      } else if (dice < 0.95) {
        await cache.delete(key)
        history.push({ node, kind: 'delete', key, value: undefined, start, end: now(), degraded: degraded() })
      } else if (dice < 0.995) {
        const tag = random() < 0.5 ? `mod3:${Math.floor(random() * 3)}` : `mod4:${Math.floor(random() * 4)}`
        await cache.invalidateTags([tag])
        const end = now()
        history.push({
          node,
          kind: 'tags',
          key: '',
          value: undefined,
          tags: [tag],
          start,
          end,
          degraded: degraded(),
        })
      } else {
        await cache.clear()
        history.push({
          node,
          kind: 'clear',
          key: '',
          value: undefined,
          start,
          end: now(),
          degraded: degraded(),
        })
      }
    }
  }

  async function disruptor(): Promise<void> {
    if (!options.disrupt || !options.disruptEveryMs) return
    while (now() + options.disruptEveryMs < deadline) {
      await new Promise((resolve) => setTimeout(resolve, options.disruptEveryMs))
      disruptions.push(now())
      await options.disrupt()
    }
  }

  const concurrency = options.concurrency ?? 2
  const workers: Promise<void>[] = []
  for (let n = 0; n < nodes.length; n++) for (let c = 0; c < concurrency; c++) workers.push(worker(n))
  await Promise.all([...workers, disruptor()])
  return {
    operations: history.length,
    reads: history.filter((op) => op.kind === 'get').length,
    degradedReads: history.filter((op) => op.degraded).length,
    writes: history.filter((op) => op.kind !== 'get').length,
    disruptions: disruptions.length,
    violations: check(history, disruptions, options),
  }
}

/** True if `op` invalidates what a write of `key` stored. */
function affects(op: Op, key: string): boolean {
  if (op.kind === 'set' || op.kind === 'delete') return op.key === key
  if (op.kind === 'clear') return true
  if (op.kind === 'tags') return tagsOf(key).some((tag) => op.tags!.includes(tag))
  return false
}

/**
 * Changes (writes, deletes, tag invalidations, clears) that affect one key, sorted by end time, with
 * prefix maxima of their start times: "the change that began latest among those that ended before t"
 * is one binary search. Removals keep suffix minima of start times for the read-undefined check.
 */
class ChangeIndex {
  private readonly ends: number[]
  private readonly latest: Op[] // latest[i]: the op with the greatest start among ops[0..i]
  constructor(ops: Op[]) {
    const sorted = [...ops].sort((a, b) => a.end - b.end)
    this.ends = sorted.map((op) => op.end)
    this.latest = []
    let best: Op | undefined
    for (const op of sorted) {
      if (best === undefined || op.start > best.start) best = op
      this.latest.push(best)
    }
  }
  /** The change with the greatest start among those that ended before `t`. */
  latestEndedBefore(t: number): Op | undefined {
    let lo = 0
    let hi = this.ends.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (this.ends[mid]! < t) lo = mid + 1
      else hi = mid
    }
    return lo === 0 ? undefined : this.latest[lo - 1]
  }
}

export function check(
  history: Op[],
  disruptions: number[],
  options: Pick<CheckerOptions, 'propagationMs' | 'l1TtlMs' | 'disruptionWindowMs' | 'lossWindowMs'>,
): Violation[] {
  const writesByValue = new Map<string, Op>()
  const keys = new Set<string>()
  const global: Op[] = []
  const perKey = new Map<string, Op[]>()
  for (const op of history) {
    if (op.kind === 'set') writesByValue.set(op.value!, op)
    if (op.kind === 'get' || op.kind === 'set' || op.kind === 'delete') keys.add(op.key)
    if (op.kind === 'tags' || op.kind === 'clear') global.push(op)
    else if (op.kind !== 'get') perKey.set(op.key, [...(perKey.get(op.key) ?? []), op])
  }
  // Per key: all changes; per key and node: that node's changes (read-your-writes has no delay).
  const all = new Map<string, ChangeIndex>()
  const byNode = new Map<string, ChangeIndex>()
  const sets = new Map<string, ChangeIndex>()
  const undegradedSets = new Map<string, ChangeIndex>()
  const removals = new Map<string, Op[]>()
  for (const key of keys) {
    const changes = [...(perKey.get(key) ?? []), ...global.filter((op) => affects(op, key))]
    // Other nodes are held to a bound only by changes that reached Redis (see Op.degraded).
    all.set(key, new ChangeIndex(changes.filter((op) => !op.degraded)))
    for (const node of new Set(changes.map((op) => op.node))) {
      byNode.set(`${node}|${key}`, new ChangeIndex(changes.filter((op) => op.node === node)))
    }
    sets.set(key, new ChangeIndex(changes.filter((op) => op.kind === 'set')))
    undegradedSets.set(key, new ChangeIndex(changes.filter((op) => op.kind === 'set' && !op.degraded)))
    removals.set(
      key,
      changes.filter((op) => op.kind !== 'set'),
    )
  }
  const window = options.disruptionWindowMs ?? options.l1TtlMs
  const sortedDisruptions = [...disruptions].sort((a, b) => a - b)
  // A read near a bus disruption may lag by up to l1.ttl (guarantee 2's hard bound).
  const disrupted = (t: number) => sortedDisruptions.some((d) => d <= t && t <= d + window + options.l1TtlMs)

  const violations: Violation[] = []
  for (const read of history) {
    if (read.kind !== 'get') continue
    const otherBound = disrupted(read.start) ? options.l1TtlMs : options.propagationMs
    if (read.value !== undefined) {
      const source = writesByValue.get(read.value)
      if (source === undefined) continue // written by a set still in flight at the end of the run
      // A change that began after our value was written, and resolved long enough before the read.
      for (const [index, bound, guarantee] of [
        [byNode.get(`${read.node}|${read.key}`), 0, 1],
        [all.get(read.key), otherBound, 2],
      ] as const) {
        const change = index?.latestEndedBefore(read.start - bound)
        if (change !== undefined && change.start > source.end) {
          violations.push({ guarantee, read, because: change })
          break
        }
      }
      continue
    }
    // Read undefined: stale only if a set resolved long enough ago and nothing could have removed it, and
    // the read could ask L2 (a read that reaches neither L1 nor L2 may miss: guarantee 5).
    if (read.degraded) continue
    for (const [bound, guarantee] of [
      [0, 1],
      [otherBound, 2],
    ] as const) {
      const set = (guarantee === 1 ? sets : undegradedSets)
        .get(read.key)
        ?.latestEndedBefore(read.start - bound)
      if (set === undefined || (guarantee === 1 && set.node !== read.node)) continue
      const loss = options.lossWindowMs
      if (loss !== undefined && sortedDisruptions.some((d) => d <= read.end && d + loss >= set.start))
        continue
      const removed = removals.get(read.key)!.some((op) => op.end > set.start && op.start < read.end)
      if (!removed) {
        violations.push({ guarantee, read, because: set })
        break
      }
    }
  }
  return violations
}
