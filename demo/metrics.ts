/**
 * The figures of the demo, per node and per sample: what the terminal view prints, what the dashboard
 * charts, and what the summary adds up. A sample turns two things into rates over its window (about
 * half a second): the difference between two reports of each node (NodeReport: the cache's stats() and
 * the application's counters) and what the load generator saw meanwhile (stale reads, invalidation lag).
 *
 * nodeFigures() is the one place that reads stats(): a counter that stats() gains (sets, deletes,
 * refreshes, the library's own invalidation-lag percentiles) becomes a figure with a line there, a column
 * in view.ts and a chart in dashboard/public/dashboard.js.
 */
import type { LoadWindow, NodeWindow } from './load.js'
import type { NodeReport } from './node/service.js'

export interface NodeFigures {
  requestsPerSec: number
  dbQueriesPerSec: number
  /** L1 hits / L1 reads in the window; null when there were no reads. */
  l1HitRate: number | null
  /** L2 hits / L2 reads (the reads L1 did not answer) in the window. */
  l2HitRate: number | null
  loadsPerSec: number
  /** Expired values served while they were refreshed (grace), in the window. */
  staleServed: number
  /** Reads older than an acknowledged update, seen by the load generator in the window. */
  staleReads: number
  /** Requests that failed (5xx or no answer), in the window. */
  errors: number
  /** Invalidation lag with this node as the reader, ms, over the last LAG_WINDOW_S; null without a probe. */
  lagP50: number | null
  lagP99: number | null
  busConnected: boolean
  l2Circuit: string
}

/** Notes the dashboard draws on its charts: the stretch while Redis is down is shaded. */
export type NoteTag = 'outage-start' | 'outage-end'

/** Lag percentiles in a sample are taken over the probes of the last few seconds (a window has few). */
export const LAG_WINDOW_S = 5

export interface Sample {
  /** Seconds since the demo started. */
  t: number
  /** Length of the window, seconds. */
  dt: number
  scene: string
  nodes: Record<string, NodeFigures>
  fleet: NodeFigures
}

export interface SceneMark {
  id: string
  title: string
  about: string
  /** Seconds since the demo started. */
  t: number
  durationMs: number
  /** What the scene showed, in one line, once it has ended. */
  result?: string
}

/** Sums over a stretch of time (a scene, or a node's whole run). */
export interface Totals {
  seconds: number
  requests: number
  dbQueries: number
  l1Hits: number
  l1Misses: number
  l2Hits: number
  l2Misses: number
  loads: number
  staleServed: number
  staleReads: number
  errors: number
  lags: number[]
  lagTimeouts: number
}

export interface Summary {
  scenes: { mark: SceneMark; totals: Totals }[]
  nodes: { id: string; totals: Totals; report: NodeReport | undefined }[]
  fleet: Totals
}

export type DemoEvent =
  | { type: 'scene'; scene: SceneMark }
  | { type: 'sample'; sample: Sample; fleet: NodeReport[] }
  | { type: 'note'; t: number; text: string; tag?: NoteTag }
  | { type: 'end'; summary: Summary }

const emptyTotals = (): Totals => ({
  seconds: 0,
  requests: 0,
  dbQueries: 0,
  l1Hits: 0,
  l1Misses: 0,
  l2Hits: 0,
  l2Misses: 0,
  loads: 0,
  staleServed: 0,
  staleReads: 0,
  errors: 0,
  lags: [],
  lagTimeouts: 0,
})

/** Nearest-rank percentile (p in 0..100) of `values`; null when there are none. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

export const ratio = (part: number, whole: number): number | null => (whole === 0 ? null : part / whole)

/** What changed on one node between two of its reports, as counts. */
function delta(previous: NodeReport | undefined, current: NodeReport, seen: NodeWindow | undefined): Totals {
  const before = previous?.stats
  const now = current.stats
  return {
    seconds: 0,
    requests: current.app.requests - (previous?.app.requests ?? 0),
    dbQueries: current.app.dbQueries - (previous?.app.dbQueries ?? 0),
    l1Hits: now.l1.hits - (before?.l1.hits ?? 0),
    l1Misses: now.l1.misses - (before?.l1.misses ?? 0),
    l2Hits: now.l2.hits - (before?.l2.hits ?? 0),
    l2Misses: now.l2.misses - (before?.l2.misses ?? 0),
    loads: now.loads.calls - (before?.loads.calls ?? 0),
    staleServed: now.staleServed - (before?.staleServed ?? 0),
    staleReads: seen?.staleReads ?? 0,
    errors: seen?.errors ?? 0,
    lags: seen?.lags ?? [],
    lagTimeouts: seen?.lagTimeouts ?? 0,
  }
}

function add(into: Totals, more: Totals): void {
  into.seconds += more.seconds
  into.requests += more.requests
  into.dbQueries += more.dbQueries
  into.l1Hits += more.l1Hits
  into.l1Misses += more.l1Misses
  into.l2Hits += more.l2Hits
  into.l2Misses += more.l2Misses
  into.loads += more.loads
  into.staleServed += more.staleServed
  into.staleReads += more.staleReads
  into.errors += more.errors
  into.lags.push(...more.lags)
  into.lagTimeouts += more.lagTimeouts
}

/** The figures of some counts over `seconds`. */
export function figures(
  totals: Totals,
  seconds: number,
  health: { busConnected: boolean; l2Circuit: string },
): NodeFigures {
  const perSec = (n: number) => (seconds > 0 ? n / seconds : 0)
  return {
    requestsPerSec: perSec(totals.requests),
    dbQueriesPerSec: perSec(totals.dbQueries),
    l1HitRate: ratio(totals.l1Hits, totals.l1Hits + totals.l1Misses),
    l2HitRate: ratio(totals.l2Hits, totals.l2Hits + totals.l2Misses),
    loadsPerSec: perSec(totals.loads),
    staleServed: totals.staleServed,
    staleReads: totals.staleReads,
    errors: totals.errors,
    lagP50: percentile(totals.lags, 50),
    lagP99: percentile(totals.lags, 99),
    ...health,
  }
}

/** A node's figures over one window. */
export function nodeFigures(
  previous: NodeReport | undefined,
  current: NodeReport,
  seen: NodeWindow | undefined,
  seconds: number,
): { figures: NodeFigures; counts: Totals } {
  const counts = delta(previous, current, seen)
  counts.seconds = seconds
  const health = { busConnected: current.stats.bus.connected, l2Circuit: current.stats.l2.circuit }
  return { figures: figures(counts, seconds, health), counts }
}

/**
 * Keeps every sample, scene and note of a run and tells listeners (the terminal view, the dashboard)
 * about each as it happens.
 */
export class Recorder {
  readonly samples: Sample[] = []
  readonly scenes: SceneMark[] = []
  readonly notes: { t: number; text: string; tag?: NoteTag }[] = []
  /** The latest report of every node. */
  fleet: NodeReport[] = []
  private readonly listeners = new Set<(event: DemoEvent) => void>()
  private readonly previous = new Map<string, NodeReport>()
  private readonly sceneTotals = new Map<string, Totals>()
  private readonly nodeTotals = new Map<string, Totals>()
  /** The lag probes of the last LAG_WINDOW_S: when recorded (s), on which reader, how long they took (ms). */
  private lagLog: { t: number; node: string; ms: number }[] = []
  private lastSampleAt: number
  private summary: Summary | undefined

  constructor(
    readonly nodeIds: readonly string[],
    private readonly now: () => number = () => performance.now(),
    private readonly startedAt = now(),
  ) {
    this.lastSampleAt = startedAt
    for (const id of nodeIds) this.nodeTotals.set(id, emptyTotals())
  }

  /** Seconds since the start. */
  elapsed(): number {
    return (this.now() - this.startedAt) / 1000
  }

  on(listener: (event: DemoEvent) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  get currentScene(): SceneMark | undefined {
    return this.scenes.at(-1)
  }

  get finished(): Summary | undefined {
    return this.summary
  }

  startScene(scene: Omit<SceneMark, 't'>): SceneMark {
    const mark: SceneMark = { ...scene, t: this.elapsed() }
    this.scenes.push(mark)
    this.sceneTotals.set(mark.id, emptyTotals())
    this.emit({ type: 'scene', scene: mark })
    return mark
  }

  note(text: string, tag?: NoteTag): void {
    const note = { t: this.elapsed(), text, ...(tag && { tag }) }
    this.notes.push(note)
    this.emit({ type: 'note', ...note })
  }

  /** Turns the nodes' reports and the load generator's window into a sample. */
  record(reports: readonly NodeReport[], window: LoadWindow): Sample {
    const now = this.now()
    const dt = (now - this.lastSampleAt) / 1000
    this.lastSampleAt = now
    const scene = this.currentScene
    const t = (now - this.startedAt) / 1000
    for (const [node, seen] of window.nodes) for (const ms of seen.lags) this.lagLog.push({ t, node, ms })
    const recent = this.lagLog.filter((entry) => entry.t > t - LAG_WINDOW_S)
    this.lagLog = recent
    const fleetCounts = emptyTotals()
    const nodes: Record<string, NodeFigures> = {}
    for (const report of reports) {
      const { figures, counts } = nodeFigures(
        this.previous.get(report.node),
        report,
        window.nodes.get(report.node),
        dt,
      )
      const lags = recent.filter((entry) => entry.node === report.node).map((entry) => entry.ms)
      figures.lagP50 = percentile(lags, 50)
      figures.lagP99 = percentile(lags, 99)
      nodes[report.node] = figures
      add(fleetCounts, counts)
      add(this.nodeTotals.get(report.node) ?? emptyTotals(), counts)
      this.previous.set(report.node, report)
    }
    fleetCounts.seconds = dt
    if (scene) add(this.sceneTotals.get(scene.id)!, fleetCounts)
    const fleet = figures(fleetCounts, dt, {
      busConnected: reports.every((r) => r.stats.bus.connected),
      l2Circuit: reports.find((r) => r.stats.l2.circuit !== 'closed')?.stats.l2.circuit ?? 'closed',
    })
    const recentMs = recent.map((entry) => entry.ms)
    fleet.lagP50 = percentile(recentMs, 50)
    fleet.lagP99 = percentile(recentMs, 99)
    const sample: Sample = { t, dt, scene: scene?.id ?? '', nodes, fleet }
    this.samples.push(sample)
    this.fleet = [...reports]
    this.emit({ type: 'sample', sample, fleet: this.fleet })
    return sample
  }

  /** Sums over node `id`'s run so far. */
  nodeSoFar(id: string): Totals {
    return this.nodeTotals.get(id) ?? emptyTotals()
  }

  /** Sums over the scene `id` so far. */
  sceneSoFar(id: string): Totals {
    return this.sceneTotals.get(id) ?? emptyTotals()
  }

  finish(): Summary {
    const fleet = emptyTotals()
    for (const totals of this.nodeTotals.values()) add(fleet, totals)
    fleet.seconds = this.elapsed()
    for (const totals of this.nodeTotals.values()) totals.seconds = fleet.seconds
    this.summary = {
      scenes: this.scenes.map((mark) => ({ mark, totals: this.sceneSoFar(mark.id) })),
      nodes: this.nodeIds.map((id) => ({
        id,
        totals: this.nodeTotals.get(id)!,
        report: this.fleet.find((report) => report.node === id),
      })),
      fleet,
    }
    this.emit({ type: 'end', summary: this.summary })
    return this.summary
  }

  private emit(event: DemoEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event)
      } catch {
        // A listener that fails (a closed dashboard connection) must not stop the demo.
      }
    }
  }
}
