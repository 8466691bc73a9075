/**
 * The script of the demo: scenes that run one after the other, each announced on screen and marked on
 * the dashboard's charts. A scene sets the load (LoadProfile), may act on the fleet (take Redis away),
 * waits its share of the run, and says in one line what it showed.
 *
 * The running time is shared out by weight among the scenes that can run. The write-through and
 * write-behind scenes set `writeStrategy` to their entry of writeStrategies (node/service.ts) for their
 * stretch and report what their updates cost the database.
 */
import type { DemoNode } from './fleet.js'
import type { LoadGenerator, LoadProfile } from './load.js'
import { type NoteTag, percentile, type Recorder, ratio } from './metrics.js'
import type { NodeReport } from './node/service.js'
import type { OutageControl } from './outage.js'

export interface SceneContext {
  load: LoadGenerator
  nodes: readonly DemoNode[]
  recorder: Recorder
  outage: OutageControl
  /** The load between scenes. */
  baseProfile: LoadProfile
  reportTtlMs: number
  reportQueryMs: number
  /** Prints a line under the scene's title (and puts it on the dashboard; a tag is drawn on its charts). */
  say(text: string, tag?: NoteTag): void
  /** Waits `ms`, or less if the demo is being stopped. */
  wait(ms: number): Promise<void>
  fleet(): Promise<NodeReport[]>
}

export interface Scene {
  id: string
  title: string
  /** One line on what to look at. */
  about(ctx: SceneContext): string
  /** Share of the running time. */
  weight: number
  /** Why the scene cannot run here, or undefined when it can. */
  unavailable?(ctx: SceneContext): string | undefined
  /** Runs for about `ms`; resolves to what it showed, in one line. */
  run(ctx: SceneContext, ms: number): Promise<string>
}

const pct = (x: number | null) => (x === null ? 'n/a' : `${(x * 100).toFixed(1)}%`)
const ms = (x: number | null) => (x === null ? 'n/a' : `${x.toFixed(2)} ms`)
const int = (x: number) => Math.round(x).toLocaleString('en-US')
const sum = (reports: readonly NodeReport[], pick: (report: NodeReport) => number) =>
  reports.reduce((total, report) => total + pick(report), 0)

const warmUp: Scene = {
  id: 'warm-up',
  title: 'Warm-up',
  weight: 1.5,
  about: () => 'every cache starts empty: reads go to the database until L1 and L2 fill',
  async run(ctx, duration) {
    ctx.load.setProfile(ctx.baseProfile)
    await ctx.wait(duration)
    const samples = ctx.recorder.samples.filter((s) => s.scene === this.id && s.fleet.requestsPerSec > 0)
    const first = samples[0]?.fleet
    const last = samples.at(-1)?.fleet
    if (!first || !last) return 'too short to measure'
    return (
      `database queries per request fell from ${pct(ratio(first.dbQueriesPerSec, first.requestsPerSec))} ` +
      `to ${pct(ratio(last.dbQueriesPerSec, last.requestsPerSec))} as the caches filled`
    )
  },
}

const steady: Scene = {
  id: 'steady',
  title: 'Steady state',
  weight: 1.5,
  about: () => 'Zipf reads over all users, 1% updates: L1 answers most reads, L2 most of the rest',
  async run(ctx, duration) {
    ctx.load.setProfile(ctx.baseProfile)
    await ctx.wait(duration)
    const t = ctx.recorder.sceneSoFar(this.id)
    return (
      `${int(t.requests / t.seconds)} requests/s, ${int(t.dbQueries / t.seconds)} database queries/s: ` +
      `the database saw ${pct(ratio(t.dbQueries, t.requests))} of the requests; ` +
      `L1 answered ${pct(ratio(t.l1Hits, t.l1Hits + t.l1Misses))} of reads, L2 ${pct(ratio(t.l2Hits, t.l2Hits + t.l2Misses))} of the rest`
    )
  },
}

const hotKey: Scene = {
  id: 'hot-key',
  title: 'A hot key expiring under load',
  weight: 2,
  about: (ctx) =>
    `a quarter of the requests read one slow report (${ctx.reportQueryMs} ms query, TTL ${(ctx.reportTtlMs / 1000).toFixed(1)} s); ` +
    `when it expires every node misses at once, and lock: 'distributed' lets one node in the fleet query`,
  async run(ctx, duration) {
    const before = await ctx.fleet()
    ctx.load.setProfile({ ...ctx.baseProfile, reportShare: 0.25 })
    await ctx.wait(duration)
    ctx.load.setProfile(ctx.baseProfile)
    const after = await ctx.fleet()
    const loads = sum(after, (r) => r.app.reportLoads) - sum(before, (r) => r.app.reportLoads)
    const waits = sum(after, (r) => r.stats.loads.leaseWaits) - sum(before, (r) => r.stats.loads.leaseWaits)
    const expiries = Math.ceil(duration / (ctx.reportTtlMs + ctx.reportQueryMs))
    const nodes = ctx.nodes.length
    return (
      `the report expired about ${expiries} times in ${(duration / 1000).toFixed(0)} s and was computed ${loads} times ` +
      `for ${nodes} nodes (lock: 'local' would compute it once per node, about ${expiries * nodes} times); ` +
      `${int(waits)} times a node waited for another node's query instead (lease waits)`
    )
  },
}

const updates: Scene = {
  id: 'updates',
  title: 'Updates on one node, seen by the others',
  weight: 2,
  about: () =>
    '10% of requests update a user on one node; a probe updates a user on node A and reads it on node B until B has it',
  async run(ctx, duration) {
    ctx.load.setProfile({ ...ctx.baseProfile, updateShare: 0.1, probeEveryMs: 40 })
    await ctx.wait(duration)
    ctx.load.setProfile(ctx.baseProfile)
    const t = ctx.recorder.sceneSoFar(this.id)
    return (
      `invalidation lag p50 ${ms(percentile(t.lags, 50))}, p99 ${ms(percentile(t.lags, 99))}, ` +
      `max ${ms(percentile(t.lags, 100))} over ${t.lags.length} probes; stale reads observed: ${t.staleReads}`
    )
  },
}

/**
 * Runs `strategy` for the scene's stretch; resolves to the database queries per update (the reads the
 * cache let through included), the scene's totals, and write-behind's accepted and written counts.
 */
async function updatesWith(
  ctx: SceneContext,
  scene: Scene,
  strategy: LoadProfile['writeStrategy'],
  duration: number,
): Promise<{
  perUpdate: string
  totals: ReturnType<Recorder['sceneSoFar']>
  accepted: number
  written: number
}> {
  const updateShare = 0.1
  const before = await ctx.fleet()
  ctx.load.setProfile({ ...ctx.baseProfile, updateShare, probeEveryMs: 40, writeStrategy: strategy })
  await ctx.wait(duration)
  ctx.load.setProfile(ctx.baseProfile)
  const after = await ctx.fleet()
  const t = ctx.recorder.sceneSoFar(scene.id)
  const delta = (pick: (report: NodeReport) => number) => sum(after, pick) - sum(before, pick)
  // Per update, the reads included (an update that deletes costs a reload later); next to the same figure
  // of the updates scene (same share of updates, the invalidate strategy), when it ran.
  const perUpdate = (totals: ReturnType<Recorder['sceneSoFar']>) => {
    const updates = totals.requests * updateShare
    return updates === 0 ? undefined : (totals.dbQueries / updates).toFixed(2)
  }
  const mine = perUpdate(t) ?? 'n/a'
  const invalidate = perUpdate(ctx.recorder.sceneSoFar(updates.id))
  return {
    perUpdate: invalidate === undefined ? mine : `${mine} (invalidate, in the updates scene: ${invalidate})`,
    totals: t,
    accepted: delta((r) => r.stats.writeBehind.accepted),
    written: delta((r) => r.stats.writeBehind.written),
  }
}

const writeThrough: Scene = {
  id: 'write-through',
  title: 'Write-through: the database, then the cache',
  weight: 1.5,
  about: () =>
    '10% of requests update a user with writeThrough: the UPDATE, then the new row in every cache (ordered by the row version), so no read has to load it again',
  async run(ctx, duration) {
    const { perUpdate, totals: t } = await updatesWith(ctx, this, 'writeThrough', duration)
    return (
      `database queries per update, reads included: ${perUpdate}; ` +
      `invalidation lag p50 ${ms(percentile(t.lags, 50))}, p99 ${ms(percentile(t.lags, 99))}; stale reads observed: ${t.staleReads}`
    )
  },
}

const writeBehind: Scene = {
  id: 'write-behind',
  title: 'Write-behind: the cache now, the database in batches',
  weight: 1.5,
  about: () =>
    '10% of requests update a user with writeBehind: every cache has the new row at once, and the database gets it from a durable queue, a batch per statement, coalesced per user',
  async run(ctx, duration) {
    const { perUpdate, totals: t, accepted, written } = await updatesWith(ctx, this, 'writeBehind', duration)
    return (
      `database queries per update, reads included: ${perUpdate}; ${int(accepted)} updates accepted, ${int(written)} rows written ` +
      `(${written === 0 ? 'n/a' : (accepted / written).toFixed(2)}× coalesced); stale reads observed: ${t.staleReads}`
    )
  },
}

const outage: Scene = {
  id: 'outage',
  title: 'Redis taken away and brought back',
  weight: 3,
  about: (ctx) =>
    ctx.outage.available
      ? `down: ${ctx.outage.what}; requests keep being answered from L1, stale values and the database`
      : ctx.outage.reason,
  unavailable: (ctx) => (ctx.outage.available ? undefined : ctx.outage.reason),
  async run(ctx, duration) {
    const control = ctx.outage
    if (!control.available) return control.reason
    ctx.load.setProfile(ctx.baseProfile)
    await ctx.wait(duration * 0.2)
    const openedBefore = await ctx.fleet().then(
      (reports) => new Map(reports.map((r) => [r.node, r.stats.l2.circuitOpened])),
      () => new Map<string, number>(),
    )
    const downAt = ctx.recorder.elapsed()
    await control.takeDown()
    ctx.say('Redis is down', 'outage-start')
    const opened = await waitForBreakers(ctx, openedBefore, duration * 0.45)
    await ctx.wait(duration * 0.45 - opened)
    const upAt = ctx.recorder.elapsed()
    await control.bringBack()
    ctx.say('Redis is back', 'outage-end')
    const recovered = await waitForRecovery(ctx, duration * 0.35)
    await ctx.wait(duration * 0.35 - recovered)
    const down = ctx.recorder.samples.filter((s) => s.t > downAt && s.t <= upAt)
    const seconds = down.reduce((total, s) => total + s.dt, 0)
    const perSec = (pick: (s: (typeof down)[number]) => number) =>
      seconds === 0 ? 0 : down.reduce((total, s) => total + pick(s) * s.dt, 0) / seconds
    const errors = down.reduce((total, s) => total + s.fleet.errors, 0)
    const stale = down.reduce((total, s) => total + s.fleet.staleReads, 0)
    // Nodes serve stale copies until they are back on the bus, which is after Redis is: those count too.
    const staleAfter = ctx.recorder.samples
      .filter((s) => s.t > upAt && s.scene === this.id)
      .reduce((total, s) => total + s.fleet.staleReads, 0)
    return (
      `while down: ${int(perSec((s) => s.fleet.requestsPerSec))} requests/s answered, ${errors} failed, ` +
      `${int(perSec((s) => s.fleet.dbQueriesPerSec))} database queries/s, ${stale} stale reads ` +
      `(${staleAfter} more from its return to the end of the scene); ` +
      (opened < duration * 0.45
        ? `every node's L2 circuit opened within ${Math.max(1, Math.ceil(opened))} ms (from then on calls skipped Redis instead of trying it); `
        : "not every node's L2 circuit opened while Redis was down; ") +
      (recovered < duration * 0.35
        ? `every node was back on L2 and bus within ${Math.max(1, Math.ceil(recovered))} ms of Redis' return`
        : 'not every node was back on L2 and bus by the end of the scene')
    )
  },
}

/**
 * Waits until every node's L2 circuit has opened since `before` (each node's `circuitOpened` count then):
 * a Redis that is gone must make the nodes fail fast, not wait for it on every call. Resolves to the time
 * it took (ms), or `limitMs` when some node's circuit did not open.
 */
async function waitForBreakers(
  ctx: SceneContext,
  before: ReadonlyMap<string, number>,
  limitMs: number,
): Promise<number> {
  const started = performance.now()
  for (;;) {
    const reports = await ctx.fleet().catch(() => [])
    const open =
      reports.length > 0 && reports.every((r) => r.stats.l2.circuitOpened > (before.get(r.node) ?? 0))
    const elapsed = performance.now() - started
    if (open) return elapsed
    if (elapsed >= limitMs) return limitMs
    await ctx.wait(Math.min(25, limitMs - elapsed))
  }
}

/** Waits until every node's L2 circuit is closed and bus connected; resolves to the time it took (ms). */
async function waitForRecovery(ctx: SceneContext, limitMs: number): Promise<number> {
  const started = performance.now()
  for (;;) {
    const reports = await ctx.fleet().catch(() => [])
    const back =
      reports.length > 0 && reports.every((r) => r.stats.l2.circuit === 'closed' && r.stats.bus.connected)
    const elapsed = performance.now() - started
    if (back || elapsed >= limitMs) return elapsed
    await ctx.wait(Math.min(25, limitMs - elapsed))
  }
}

/** The script, in order. */
export const scenes: readonly Scene[] = [warmUp, steady, hotKey, updates, writeThrough, writeBehind, outage]

/** Shares `totalMs` out among the scenes that can run, by weight. */
export function planScenes(
  all: readonly Scene[],
  ctx: Pick<SceneContext, 'outage'>,
  totalMs: number,
): { scene: Scene; ms: number; skipped?: string }[] {
  const skipped = (scene: Scene) => scene.unavailable?.(ctx as SceneContext)
  const weight = all.reduce((total, scene) => total + (skipped(scene) === undefined ? scene.weight : 0), 0)
  return all.map((scene) => {
    const reason = skipped(scene)
    return reason === undefined
      ? { scene, ms: (totalMs * scene.weight) / weight }
      : { scene, ms: 0, skipped: reason }
  })
}

/** The report's TTL: short enough to expire about five times during its scene. */
export function reportTtlFor(plan: readonly { scene: Scene; ms: number }[]): number {
  const ms = plan.find((entry) => entry.scene.id === hotKey.id)?.ms ?? 10_000
  return Math.min(3_000, Math.max(300, Math.round(ms / 5)))
}
