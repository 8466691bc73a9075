/**
 * The dashboard: a page on localhost that charts every figure per node as the demo runs (uPlot, served
 * from node_modules: no CDN, nothing leaves the machine), with the fleet table and a marker where each
 * scene starts. The page gets the whole run so far when it connects and every sample after that over
 * Server-Sent Events (GET /events); GET /api/state answers the same snapshot as JSON.
 */
import { readFileSync } from 'node:fs'
import type { ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import Fastify from 'fastify'
import type { DemoEvent, Recorder } from '../metrics.js'

export interface DashboardInfo {
  mode: string
  nodes: readonly string[]
  durationMs: number
  /** Every scene of the script, in order, with why it is skipped if it is. */
  plan: readonly { id: string; title: string; skipped?: string }[]
}

export interface Dashboard {
  /** `http://127.0.0.1:<port>/` */
  readonly url: string
  close(): Promise<void>
}

const require = createRequire(import.meta.url)
const here = (file: string) => new URL(`./public/${file}`, import.meta.url)

/** Every file the page needs, read once. */
const FILES: Record<string, { type: string; path: URL | string }> = {
  '/': { type: 'text/html; charset=utf-8', path: here('index.html') },
  '/dashboard.js': { type: 'text/javascript; charset=utf-8', path: here('dashboard.js') },
  '/dashboard.css': { type: 'text/css; charset=utf-8', path: here('dashboard.css') },
  '/vendor/uPlot.iife.min.js': {
    type: 'text/javascript; charset=utf-8',
    path: require.resolve('uplot/dist/uPlot.iife.min.js'),
  },
  '/vendor/uPlot.min.css': {
    type: 'text/css; charset=utf-8',
    path: require.resolve('uplot/dist/uPlot.min.css'),
  },
}

export async function startDashboard(
  recorder: Recorder,
  info: DashboardInfo,
  options: { port?: number; host?: string } = {},
): Promise<Dashboard> {
  const app = Fastify({ logger: false, forceCloseConnections: true })
  const clients = new Set<ServerResponse>()

  const snapshot = () => ({
    info,
    scenes: recorder.scenes,
    samples: recorder.samples,
    notes: recorder.notes,
    fleet: recorder.fleet,
    summary: recorder.finished,
  })

  for (const [route, file] of Object.entries(FILES)) {
    const body = readFileSync(file.path)
    app.get(route, async (_request, reply) =>
      reply.type(file.type).header('cache-control', 'no-cache').send(body),
    )
  }

  app.get('/favicon.ico', async (_request, reply) => reply.code(204).send())
  app.get('/api/state', async () => snapshot())

  app.get('/events', (request, reply) => {
    reply.hijack()
    const res = reply.raw
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    })
    const send = (type: string, data: unknown) =>
      res.write(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`)
    send('state', snapshot())
    const off = recorder.on((event: DemoEvent) => send(event.type, event))
    clients.add(res)
    request.raw.on('close', () => {
      off()
      clients.delete(res)
    })
  })

  await app.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 0 })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('the dashboard did not get a TCP port')
  return {
    url: `http://127.0.0.1:${address.port}/`,
    async close() {
      for (const res of clients) res.end()
      clients.clear()
      await app.close()
    },
  }
}
