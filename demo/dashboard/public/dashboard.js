// The dashboard page: charts of the demo's figures per node (uPlot), the fleet table and the scenes,
// kept up to date from the server's event stream (/events). Plain browser JavaScript, no build step.
/* global uPlot */

const COLORS = ['#3b6fd8', '#e0702b', '#2f9e62', '#b03fb8', '#c9a227', '#1fa3b8', '#d23f4f', '#6b5bd6']
const FLEET_COLOR = '#1d2330'

/** The charts: what each plots for a node (and for the fleet as a whole). */
const CHARTS = [
  {
    id: 'requests',
    title: 'Requests per second',
    about: 'HTTP requests each node answered; dashed: the fleet',
    pick: (f) => f.requestsPerSec,
  },
  {
    id: 'db',
    title: 'Database queries per second',
    about: 'queries each node sent to the database; compare with requests per second',
    pick: (f) => f.dbQueriesPerSec,
  },
  {
    id: 'l1',
    title: 'L1 hit rate (%)',
    about: 'reads answered from the node’s own memory',
    pick: (f) => (f.l1HitRate === null ? null : f.l1HitRate * 100),
    range: [0, 100],
  },
  {
    id: 'l2',
    title: 'L2 hit rate (%)',
    about: 'reads L1 did not answer that the shared tier (Redis) did',
    pick: (f) => (f.l2HitRate === null ? null : f.l2HitRate * 100),
    range: [0, 100],
  },
  {
    id: 'lag',
    title: 'Invalidation lag p99 (ms, log scale)',
    about: 'update on another node → this node returns the new version (last 5 s of probes)',
    pick: (f) => f.lagP99,
    log: true,
  },
  {
    id: 'stale',
    title: 'Stale reads observed',
    about: 'reads older than an update already acknowledged (per half-second)',
    pick: (f) => f.staleReads,
  },
]

const state = { info: null, scenes: [], samples: [], notes: [], fleet: [], summary: null }
const charts = []

const $ = (selector) => document.querySelector(selector)
const pct = (x) => (x === null || x === undefined ? '–' : `${(x * 100).toFixed(1)}%`)
const num = (x) => (x === null || x === undefined ? '–' : Math.round(x).toLocaleString('en-US'))
const cell = (text, className) => {
  const td = document.createElement('td')
  td.textContent = text
  if (className) td.className = className
  return td
}

/** The stretches while Redis was down: [from, to] in seconds (to: now, while it still is). */
function outages() {
  const stretches = []
  for (const note of state.notes) {
    if (note.tag === 'outage-start') stretches.push([note.t, null])
    if (note.tag === 'outage-end' && stretches.length > 0) stretches.at(-1)[1] = note.t
  }
  const now = state.samples.at(-1)?.t ?? 0
  return stretches.map(([from, to]) => [from, to ?? now])
}

/** A uPlot plugin that draws a dashed line and the id where each scene starts, and shades outages. */
function sceneMarkers() {
  return {
    hooks: {
      draw: [
        (u) => {
          const { ctx, bbox } = u
          const ratio = window.devicePixelRatio || 1
          ctx.save()
          ctx.font = `${11 * ratio}px system-ui, sans-serif`
          ctx.textAlign = 'left'
          ctx.textBaseline = 'alphabetic'
          for (const [from, to] of outages()) {
            const x0 = Math.max(bbox.left, u.valToPos(from, 'x', true))
            const x1 = Math.min(bbox.left + bbox.width, u.valToPos(to, 'x', true))
            if (x1 <= x0) continue
            ctx.fillStyle = 'rgba(211, 63, 79, 0.10)'
            ctx.fillRect(x0, bbox.top, x1 - x0, bbox.height)
            ctx.fillStyle = '#b3261e'
            ctx.fillText('Redis down', x0 + 4 * ratio, bbox.top + bbox.height - 6 * ratio)
          }
          ctx.strokeStyle = '#9aa3b5'
          ctx.fillStyle = '#59607a'
          ctx.lineWidth = ratio
          ctx.setLineDash([4 * ratio, 4 * ratio])
          for (const scene of state.scenes) {
            const x = Math.round(u.valToPos(scene.t, 'x', true))
            if (x < bbox.left || x > bbox.left + bbox.width) continue
            ctx.beginPath()
            ctx.moveTo(x, bbox.top)
            ctx.lineTo(x, bbox.top + bbox.height)
            ctx.stroke()
            ctx.fillText(scene.id, x + 4 * ratio, bbox.top + 12 * ratio)
          }
          ctx.restore()
        },
      ],
    },
  }
}

/** One legend for every chart: the nodes' colours and the fleet's dashed line. */
function createLegend() {
  const legend = $('#legend')
  const entry = (label, color, dashed) => {
    const item = document.createElement('span')
    const swatch = document.createElement('i')
    swatch.style.borderTop = `2px ${dashed ? 'dashed' : 'solid'} ${color}`
    item.append(swatch, document.createTextNode(label))
    return item
  }
  legend.replaceChildren(
    ...state.info.nodes.map((id, i) => entry(id, COLORS[i % COLORS.length], false)),
    entry('fleet', FLEET_COLOR, true),
  )
}

const xRange = () => [0, Math.max(1, state.info.durationMs / 1000, state.samples.at(-1)?.t ?? 0)]

function createCharts() {
  createLegend()
  const container = $('#charts')
  const nodes = state.info.nodes
  for (const def of CHARTS) {
    const card = document.createElement('div')
    card.className = 'chart'
    card.dataset.chart = def.id
    card.innerHTML = `<h3></h3><p></p>`
    card.querySelector('h3').textContent = def.title
    card.querySelector('p').textContent = def.about
    container.appendChild(card)
    const width = Math.max(320, card.clientWidth - 20)
    const u = new uPlot(
      {
        width,
        height: 190,
        scales: {
          x: { time: false, range: xRange },
          y: def.log ? { distr: 3, log: 10 } : def.range ? { range: def.range } : {},
        },
        axes: [
          { label: 'seconds', size: 36, labelSize: 14, grid: { stroke: '#eceef2', width: 1 } },
          { size: 60, grid: { stroke: '#eceef2', width: 1 } },
        ],
        series: [
          { label: 't' },
          ...nodes.map((id, i) => ({ label: id, stroke: COLORS[i % COLORS.length], width: 1.5 })),
          { label: 'fleet', stroke: FLEET_COLOR, width: 1.5, dash: [6, 4] },
        ],
        legend: { show: false },
        plugins: [sceneMarkers()],
      },
      [[], ...nodes.map(() => []), []],
      card,
    )
    charts.push({ def, u })
  }
}

function chartData(def) {
  const nodes = state.info.nodes
  const x = state.samples.map((s) => s.t)
  const series = nodes.map((id) => state.samples.map((s) => (s.nodes[id] ? def.pick(s.nodes[id]) : null)))
  return [x, ...series, state.samples.map((s) => def.pick(s.fleet))]
}

function renderCharts() {
  for (const { def, u } of charts) u.setData(chartData(def), true)
}

function renderHeader() {
  const { info } = state
  $('#mode').textContent = info.mode
  const last = state.samples.at(-1)
  const elapsed = last ? last.t : 0
  $('#progress-bar').style.width = `${Math.min(100, (elapsed / (info.durationMs / 1000)) * 100)}%`
  const current = state.scenes.at(-1)
  $('#scene-now').textContent = state.summary
    ? `Finished after ${elapsed.toFixed(0)} s.`
    : current
      ? `Scene ${state.scenes.length}: ${current.title} · ${current.about}`
      : 'Starting…'
  const list = $('#scenes')
  list.replaceChildren(
    ...info.plan.map((scene) => {
      const li = document.createElement('li')
      li.textContent = scene.title
      const index = state.scenes.findIndex((s) => s.id === scene.id)
      if (scene.skipped) {
        li.className = 'skipped'
        li.title = scene.skipped
      } else if (index >= 0) {
        li.className = index === state.scenes.length - 1 && !state.summary ? 'running' : 'done'
      }
      return li
    }),
  )
}

function renderFleet() {
  const body = $('#fleet tbody')
  body.replaceChildren(
    ...state.fleet.map((report) => {
      const tr = document.createElement('tr')
      tr.dataset.node = report.node
      const { stats, app } = report
      tr.append(
        cell(report.node),
        cell(String(report.pid)),
        cell(`${(report.uptimeMs / 1000).toFixed(0)} s`),
        cell(report.version),
        cell(num(app.requests)),
        cell(num(app.dbQueries)),
        cell(pct(stats.l1.hitRate)),
        cell(pct(stats.l2.hitRate)),
        cell(num(stats.loads.calls)),
        cell(num(stats.loads.leaseWaits)),
        cell(num(stats.staleServed)),
        cell(num(stats.pending)),
        cell(stats.bus.connected ? 'connected' : 'down', stats.bus.connected ? '' : 'down'),
        cell(stats.l2.circuit, stats.l2.circuit === 'closed' ? '' : 'down'),
      )
      return tr
    }),
  )
}

function renderNotes() {
  const items = [...state.scenes.map((s) => ({ t: s.t, text: `▶ ${s.title}` })), ...state.notes].sort(
    (a, b) => a.t - b.t,
  )
  $('#notes').replaceChildren(
    ...items.map((item) => {
      const li = document.createElement('li')
      const t = document.createElement('span')
      t.className = 't'
      t.textContent = `${item.t.toFixed(1)} s`
      li.append(t, document.createTextNode(item.text))
      return li
    }),
  )
}

function render() {
  renderHeader()
  renderCharts()
  renderFleet()
  renderNotes()
  document.body.dataset.samples = String(state.samples.length)
  document.body.dataset.finished = String(state.summary !== null && state.summary !== undefined)
}

const events = new EventSource('/events')
events.addEventListener('state', (message) => {
  Object.assign(state, JSON.parse(message.data))
  if (charts.length === 0) createCharts()
  render()
})
events.addEventListener('sample', (message) => {
  const { sample, fleet } = JSON.parse(message.data)
  state.samples.push(sample)
  state.fleet = fleet
  render()
})
events.addEventListener('scene', (message) => {
  state.scenes.push(JSON.parse(message.data).scene)
  render()
})
events.addEventListener('note', (message) => {
  const { t, text, tag } = JSON.parse(message.data)
  state.notes.push({ t, text, tag })
  renderNotes()
  if (tag) renderCharts()
})
events.addEventListener('end', (message) => {
  state.summary = JSON.parse(message.data).summary
  render()
  events.close()
})

// For tests and the curious: what the page holds.
window.dashboard = {
  samples: () => state.samples.length,
  scenes: () => state.scenes.map((s) => s.id),
  points: () =>
    charts.map(({ def, u }) => ({
      chart: def.id,
      points: u.data[0].length,
      // Values that are not null, per series (the nodes, then the fleet).
      values: u.data.slice(1).map((series) => series.filter((v) => v !== null && v !== undefined).length),
    })),
  finished: () => Boolean(state.summary),
}

window.addEventListener('resize', () => {
  for (const { u } of charts)
    u.setSize({ width: Math.max(320, u.root.parentElement.clientWidth - 20), height: 190 })
})
