/**
 * The terminal view. On a terminal it redraws a live panel in place (log-update) under the lines that
 * stay (scene titles, what each scene showed); elsewhere (CI, a pipe, a test) it prints one plain
 * progress line a second instead. Both end with the same summary tables.
 */
import { createLogUpdate } from 'log-update'
import type { DemoEvent, NodeFigures, Recorder, Sample, Summary, Totals } from './metrics.js'
import { percentile, ratio } from './metrics.js'

export interface ViewInfo {
  /** e.g. 'embedded mode: 3 nodes in this process, ...' */
  mode: string
  dashboardUrl: string
  durationMs: number
  sceneCount: number
}

export interface Output {
  write(text: string): unknown
  isTTY?: boolean
  columns?: number
}

const pct = (x: number | null) => (x === null ? '-' : `${(x * 100).toFixed(1)}%`)
const lagMs = (x: number | null) => (x === null ? '-' : `${x.toFixed(2)} ms`)
const num = (x: number, digits = 0) =>
  x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })

/** Left-aligns the first column, right-aligns the others. */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((header, i) =>
    Math.max(header.length, ...rows.map((row) => (row[i] ?? '').length)),
  )
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join('  ')
      .trimEnd()
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n')
}

const NODE_HEADERS = [
  'node',
  'req/s',
  'db q/s',
  'L1 hit',
  'L2 hit',
  'loads/s',
  'stale reads',
  'lag p50',
  'lag p99',
  'bus',
  'L2',
]

function nodeRow(name: string, f: NodeFigures, staleReads: number): string[] {
  return [
    name,
    num(f.requestsPerSec),
    num(f.dbQueriesPerSec, 1),
    pct(f.l1HitRate),
    pct(f.l2HitRate),
    num(f.loadsPerSec, 1),
    num(staleReads),
    lagMs(f.lagP50),
    lagMs(f.lagP99),
    f.busConnected ? 'up' : 'DOWN',
    f.l2Circuit,
  ]
}

function progressBar(fraction: number, width: number): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width)
  return `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`
}

function plainLine(sample: Sample, staleSoFar: number, durationS: number): string {
  const f = sample.fleet
  return (
    `[${String(Math.floor(sample.t)).padStart(3)}s/${durationS.toFixed(0)}s] ${sample.scene.padEnd(8)} ` +
    `${num(f.requestsPerSec).padStart(6)} req/s · db ${num(f.dbQueriesPerSec, 1).padStart(6)} q/s ` +
    `(${pct(ratio(f.dbQueriesPerSec, f.requestsPerSec))}) · L1 ${pct(f.l1HitRate)} · L2 ${pct(f.l2HitRate)} · ` +
    `stale reads ${staleSoFar} · lag p50 ${lagMs(f.lagP50)} p99 ${lagMs(f.lagP99)}` +
    (f.errors > 0 ? ` · ${f.errors} errors` : '') +
    (f.busConnected ? '' : ' · bus DOWN') +
    (f.l2Circuit === 'closed' ? '' : ` · L2 circuit ${f.l2Circuit}`)
  )
}

/** Prints the run as it happens; returns a function that stops listening. */
export function attachView(output: Output, recorder: Recorder, info: ViewInfo): () => void {
  const live = output.isTTY === true
  const durationS = info.durationMs / 1000
  const persist = live
    ? (() => {
        const update = createLogUpdate(output as NodeJS.WriteStream)
        return Object.assign((text: string) => update.persist(text), { update })
      })()
    : Object.assign((text: string) => output.write(`${text}\n`), { update: undefined })
  let lastPrinted = -1

  persist(`coherent-cache demo · ${info.mode}`)
  persist(`dashboard: ${info.dashboardUrl}`)

  const panel = (sample: Sample): string => {
    const scene = recorder.currentScene
    const index = recorder.scenes.length
    const rows = recorder.nodeIds.map((id) =>
      nodeRow(id, sample.nodes[id]!, recorder.nodeSoFar(id).staleReads),
    )
    const stale = recorder.nodeIds.reduce((total, id) => total + recorder.nodeSoFar(id).staleReads, 0)
    rows.push(nodeRow('fleet', sample.fleet, stale))
    const f = sample.fleet
    return [
      '',
      `scene ${index}/${info.sceneCount} · ${scene?.title ?? ''}   ${progressBar(sample.t / durationS, 30)} ${num(sample.t)} s / ${num(durationS)} s`,
      '',
      formatTable(NODE_HEADERS, rows),
      '',
      `requests/s ${num(f.requestsPerSec)} vs database queries/s ${num(f.dbQueriesPerSec, 1)}: ` +
        `the database sees ${pct(ratio(f.dbQueriesPerSec, f.requestsPerSec))} of the requests`,
      `stale reads observed: ${stale} · invalidation lag (last 5 s): p50 ${lagMs(f.lagP50)}, p99 ${lagMs(f.lagP99)}` +
        (f.errors > 0 ? ` · failed requests: ${f.errors}` : ''),
    ].join('\n')
  }

  const onEvent = (event: DemoEvent) => {
    switch (event.type) {
      case 'scene': {
        const s = event.scene
        persist(
          `\n▶ scene ${recorder.scenes.length}/${info.sceneCount}: ${s.title} (${num(s.durationMs / 1000, 1)} s)`,
        )
        persist(`  ${s.about}`)
        break
      }
      case 'note':
        persist(`  · ${event.text}`)
        break
      case 'sample': {
        if (persist.update) {
          persist.update(panel(event.sample))
        } else if (Math.floor(event.sample.t) > lastPrinted) {
          lastPrinted = Math.floor(event.sample.t)
          const stale = recorder.nodeIds.reduce((total, id) => total + recorder.nodeSoFar(id).staleReads, 0)
          persist(plainLine(event.sample, stale, durationS))
        }
        break
      }
      case 'end':
        persist.update?.clear()
        persist(`\n${formatSummary(event.summary, info)}`)
        break
    }
  }
  return recorder.on(onEvent)
}

function totalsRow(name: string, t: Totals): string[] {
  const perSec = (n: number) => (t.seconds > 0 ? n / t.seconds : 0)
  return [
    name,
    num(t.seconds, 1),
    num(perSec(t.requests)),
    num(perSec(t.dbQueries), 1),
    pct(ratio(t.dbQueries, t.requests)),
    pct(ratio(t.l1Hits, t.l1Hits + t.l1Misses)),
    pct(ratio(t.l2Hits, t.l2Hits + t.l2Misses)),
    num(t.staleReads),
    lagMs(percentile(t.lags, 50)),
    lagMs(percentile(t.lags, 99)),
    num(t.errors),
  ]
}

const TOTALS_HEADERS = [
  '',
  'seconds',
  'req/s',
  'db q/s',
  'db/req',
  'L1 hit',
  'L2 hit',
  'stale reads',
  'lag p50',
  'lag p99',
  'errors',
]

/** The summary at the end: one table per scene, one per node, and what each scene showed. */
export function formatSummary(summary: Summary, info: Pick<ViewInfo, 'mode'>): string {
  const scenes = formatTable(
    ['scene', ...TOTALS_HEADERS.slice(1)],
    [
      ...summary.scenes.map(({ mark, totals }) => totalsRow(mark.title, totals)),
      totalsRow('whole run', summary.fleet),
    ],
  )
  const nodes = formatTable(
    [
      'node',
      'requests',
      'db queries',
      'L1 hit',
      'L2 hit',
      'loads',
      'lease waits',
      'stale served',
      'stale reads',
      'lag p50',
      'lag p99',
      'errors',
    ],
    summary.nodes.map(({ id, totals, report }) => [
      id,
      num(report?.app.requests ?? totals.requests),
      num(report?.app.dbQueries ?? totals.dbQueries),
      pct(report ? report.stats.l1.hitRate : null),
      pct(report ? report.stats.l2.hitRate : null),
      num(report?.stats.loads.calls ?? totals.loads),
      num(report?.stats.loads.leaseWaits ?? 0),
      num(report?.stats.staleServed ?? totals.staleServed),
      num(totals.staleReads),
      lagMs(percentile(totals.lags, 50)),
      lagMs(percentile(totals.lags, 99)),
      num(totals.errors),
    ]),
  )
  const results = summary.scenes.map(({ mark }) => `  ${mark.title}: ${mark.result ?? '-'}`)
  return [`Summary · ${info.mode}`, '', scenes, '', nodes, '', 'What each scene showed:', ...results].join(
    '\n',
  )
}
