/**
 * The demo from start to end: picks the mode, starts the database, the Redis (or its in-memory stand-in)
 * and the nodes, the dashboard and the terminal view, runs the scenes under load, and prints the
 * summary. Everything it started is stopped at the end, also when it fails or is interrupted.
 *
 * Modes:
 * - embedded (no environment): nodes in this process on memoryStore() and memoryBus(), PGlite.
 * - separate processes (REDIS_URL and DATABASE_URL, or --own-redis and DATABASE_URL): each node a child
 *   process on Redis (redisStore, redisBus) and PostgreSQL (pg).
 */
import { randomBytes } from 'node:crypto'
import { memoryBus, memoryStore } from '../src/index.js'
import { startDashboard } from './dashboard/server.js'
import { REPORT_QUERY_MS } from './database/database.js'
import { pgliteDatabase } from './database/pglite.js'
import { createDemoSchema } from './database/postgres.js'
import { faultSwitch } from './faults.js'
import { type DemoNode, fleetOf } from './fleet.js'
import { LoadGenerator, type LoadProfile } from './load.js'
import { Recorder, type Summary } from './metrics.js'
import { startInProcessFleet } from './node/in-process.js'
import { startProcessFleet } from './node/processes.js'
import { noOutage, type OutageControl, redisServerOutage, simulatedOutage } from './outage.js'
import { planScenes, reportTtlFor, type SceneContext, scenes } from './scenes.js'
import { attachView, type Output } from './view.js'

export interface DemoOptions {
  /** Seconds. @default 60 */
  duration?: number
  /** @default 3 */
  nodes?: number
  /** Dashboard port; 0 picks a free one. @default 0 */
  port?: number
  /** Requests per second of the load generator. @default 800 */
  rate?: number
  /** Users in the database. @default 2_000 */
  users?: number
  /** Start a redis-server of the demo's own (needs DATABASE_URL); the outage scene can then stop it. */
  ownRedis?: boolean
  redisUrl?: string
  databaseUrl?: string
  /** Where the terminal view goes. @default process.stdout */
  output?: Output
  /** Called with the dashboard's address once it listens. */
  onDashboard?: (url: string) => void
  /** Ends the run early (the summary is still printed). */
  signal?: AbortSignal
}

export type Mode =
  | { kind: 'embedded'; why?: string }
  | { kind: 'processes'; redis: 'given' | 'own'; redisUrl: string | undefined; databaseUrl: string }

export class DemoUsageError extends Error {}

/** Which mode the options and environment ask for. */
export function resolveMode(options: Pick<DemoOptions, 'ownRedis' | 'redisUrl' | 'databaseUrl'>): Mode {
  const { ownRedis, redisUrl, databaseUrl } = options
  if (ownRedis) {
    if (!databaseUrl) {
      throw new DemoUsageError(
        '--own-redis runs the nodes as separate processes, which need a PostgreSQL to share: set DATABASE_URL',
      )
    }
    return { kind: 'processes', redis: 'own', redisUrl: undefined, databaseUrl }
  }
  if (redisUrl && databaseUrl) return { kind: 'processes', redis: 'given', redisUrl, databaseUrl }
  if (redisUrl)
    return {
      kind: 'embedded',
      why: 'REDIS_URL is set but DATABASE_URL is not; set both for separate processes',
    }
  if (databaseUrl)
    return {
      kind: 'embedded',
      why: 'DATABASE_URL is set but REDIS_URL is not; set both for separate processes',
    }
  return { kind: 'embedded' }
}

/** A URL for the screen: without its password. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password) parsed.password = '***'
    return parsed.toString()
  } catch {
    return url
  }
}

const SAMPLE_MS = 500

export async function runDemo(options: DemoOptions = {}): Promise<Summary> {
  const durationMs = (options.duration ?? 60) * 1000
  const nodeCount = options.nodes ?? 3
  const users = options.users ?? 2_000
  const output = options.output ?? process.stdout
  const mode = resolveMode(options)
  const namespace = `demo-${randomBytes(3).toString('hex')}`
  const cleanups: (() => Promise<unknown>)[] = []
  const baseProfile: LoadProfile = {
    rate: options.rate ?? 800,
    updateShare: 0.01,
    reportShare: 0,
    probeEveryMs: 250,
    writeStrategy: 'invalidate',
  }

  try {
    let outage: OutageControl
    let nodes: DemoNode[]
    let modeLine: string
    let plan: ReturnType<typeof planScenes>
    if (mode.kind === 'embedded') {
      output.write(`Starting the embedded database (PGlite) and ${nodeCount} nodes…\n`)
      const db = await pgliteDatabase(users)
      cleanups.push(() => db.close())
      // One L2 and one bus for the whole fleet, as one Redis would be, behind the outage switch.
      const faults = faultSwitch()
      outage = simulatedOutage(faults)
      plan = planScenes(scenes, { outage }, durationMs)
      nodes = await startInProcessFleet({
        count: nodeCount,
        namespace,
        l2: faults.store(memoryStore()),
        bus: faults.bus(memoryBus()),
        db,
        reportTtlMs: reportTtlFor(plan),
      })
      cleanups.push(() => Promise.allSettled(nodes.map((node) => node.close())))
      modeLine =
        `embedded mode: ${nodeCount} nodes in this process on memoryStore() and memoryBus(), ` +
        `database ${db.name}` +
        (mode.why ? ` (${mode.why})` : '; set REDIS_URL and DATABASE_URL to run separate processes on them')
    } else {
      let redisUrl = mode.redisUrl
      let redisWhere = 'REDIS_URL'
      if (mode.redis === 'own') {
        // The throwaway redis-server helper the tests use: a free loopback port, stopped on exit.
        const { startRedis } = await import('../tools/redis-server.js')
        output.write('Starting a redis-server of the demo’s own…\n')
        const server = await startRedis()
        cleanups.push(() => server.stop())
        redisUrl = server.url
        redisWhere = 'started by the demo'
        outage = redisServerOutage(server)
      } else {
        outage = noOutage(
          'REDIS_URL is a Redis this demo did not start, so it will not take it away ' +
            '(run with --own-redis to let the demo start, stop and restart a redis-server of its own)',
        )
      }
      output.write(`Creating the demo's schema in PostgreSQL and starting ${nodeCount} node processes…\n`)
      const schema = await createDemoSchema(mode.databaseUrl, users)
      cleanups.push(() => schema.drop())
      plan = planScenes(scenes, { outage }, durationMs)
      nodes = await startProcessFleet({
        count: nodeCount,
        namespace,
        redisUrl: redisUrl!,
        databaseUrl: mode.databaseUrl,
        schema: schema.name,
        reportTtlMs: reportTtlFor(plan),
      })
      cleanups.push(() => Promise.allSettled(nodes.map((node) => node.close())))
      modeLine =
        `separate-process mode: ${nodeCount} node processes (pids ${nodes.map((n) => n.pid).join(', ')}) ` +
        `on Redis ${redact(redisUrl!)} (${redisWhere}) and PostgreSQL ${redact(mode.databaseUrl)} (schema ${schema.name})`
    }

    const recorder = new Recorder(nodes.map((node) => node.id))
    const dashboard = await startDashboard(
      recorder,
      {
        mode: modeLine,
        nodes: recorder.nodeIds,
        durationMs,
        plan: plan.map(({ scene, skipped }) => ({ id: scene.id, title: scene.title, skipped })),
      },
      { port: options.port ?? 0 },
    )
    cleanups.push(() => dashboard.close())
    const detach = attachView(output, recorder, {
      mode: modeLine,
      dashboardUrl: dashboard.url,
      durationMs,
      sceneCount: plan.filter((entry) => entry.skipped === undefined).length,
    })
    cleanups.push(async () => detach())
    options.onDashboard?.(dashboard.url)

    const load = new LoadGenerator(nodes, baseProfile, { users })
    const sampler = startSampler(recorder, nodes, load)
    load.start()
    const ctx: SceneContext = {
      load,
      nodes,
      recorder,
      outage,
      baseProfile,
      reportTtlMs: reportTtlFor(plan),
      reportQueryMs: REPORT_QUERY_MS,
      say: (text, tag) => recorder.note(text, tag),
      wait: (ms) => wait(ms, options.signal),
      fleet: () => fleetOf(nodes),
    }
    try {
      for (const { scene, ms, skipped } of plan) {
        if (options.signal?.aborted) break
        if (skipped !== undefined) {
          recorder.note(`skipped “${scene.title}”: ${skipped}`)
          continue
        }
        const mark = recorder.startScene({
          id: scene.id,
          title: scene.title,
          about: scene.about(ctx),
          durationMs: ms,
        })
        mark.result = await scene.run(ctx, ms)
        recorder.note(mark.result)
      }
    } finally {
      await load.stop()
      await sampler.stop()
    }
    if (load.failures.length > 0)
      recorder.note(`failed requests (the first ${load.failures.length}): ${load.failures.join('; ')}`)
    return recorder.finish()
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {})
  }
}

/** Samples the fleet every SAMPLE_MS until stopped; stop() takes one last sample. */
function startSampler(recorder: Recorder, nodes: readonly DemoNode[], load: LoadGenerator) {
  let running = true
  const sample = async () => {
    try {
      const reports = await fleetOf(nodes)
      recorder.record(reports, load.takeWindow())
    } catch {
      // A node that cannot answer now is asked again at the next sample.
    }
  }
  const loop = (async () => {
    while (running) {
      await wait(SAMPLE_MS)
      if (running) await sample()
    }
  })()
  return {
    async stop() {
      running = false
      await loop
      await sample()
    },
  }
}

/** Waits `ms`, or until `signal` aborts. */
function wait(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0 || signal?.aborted) return Promise.resolve()
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, { once: true })
  })
}
