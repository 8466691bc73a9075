/**
 * Separate-process mode: each node is a child process (child.ts) with its own Redis connections and its
 * own PostgreSQL pool, as servers of a real fleet would be. The parent runs the load generator and asks
 * each node for its report over HTTP.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { DemoNode } from '../fleet.js'
import type { ChildMessage, ChildNodeConfig } from './child.js'
import type { NodeReport } from './service.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const CHILD = fileURLToPath(new URL('./child.ts', import.meta.url))
const START_TIMEOUT_MS = 20_000

export interface ProcessFleetOptions {
  count: number
  namespace: string
  redisUrl: string
  databaseUrl: string
  schema: string
  reportTtlMs: number
}

export async function startProcessFleet(options: ProcessFleetOptions): Promise<DemoNode[]> {
  const { count, ...shared } = options
  const started = await Promise.allSettled(
    Array.from({ length: count }, (_, i) => startChild({ ...shared, id: `node-${i + 1}` })),
  )
  const nodes = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []))
  const failed = started.find((result) => result.status === 'rejected')
  if (failed) {
    await Promise.allSettled(nodes.map((node) => node.close()))
    throw (failed as PromiseRejectedResult).reason
  }
  return nodes
}

function startChild(config: ChildNodeConfig): Promise<DemoNode> {
  // TypeScript sources run through tsx, as the demo itself does.
  const child = fork(CHILD, [], {
    cwd: ROOT,
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, DEMO_NODE: JSON.stringify(config) },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  })
  const log: string[] = []
  child.stderr?.on('data', (chunk: Buffer) => {
    log.push(chunk.toString('utf8'))
    if (log.length > 50) log.shift()
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  return new Promise<DemoNode>((resolve, reject) => {
    const fail = (reason: string) => {
      clearTimeout(timer)
      child.kill('SIGKILL')
      reject(new Error(`${config.id} (pid ${child.pid}) ${reason}\n${log.join('')}`))
    }
    const timer = setTimeout(() => fail('did not start in time'), START_TIMEOUT_MS)
    const onExit = (code: number | null, signal: string | null) =>
      fail(`exited during start-up (${signal ?? code})`)
    child.once('exit', onExit)
    child.on('message', (message: ChildMessage) => {
      if (message.event === 'failed') fail(`failed to start: ${message.error}`)
      if (message.event !== 'listening') return
      clearTimeout(timer)
      child.removeListener('exit', onExit)
      resolve(childNode(config.id, message.url, child, exited))
    })
  })
}

function childNode(id: string, url: string, child: ChildProcess, exited: Promise<void>): DemoNode {
  return {
    id,
    url,
    pid: child.pid!,
    async report() {
      const response = await fetch(`${url}/_report`)
      if (!response.ok) throw new Error(`${id}: GET /_report answered ${response.status}`)
      return (await response.json()) as NodeReport
    },
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return
      if (child.connected) child.send('close')
      const ended = await Promise.race([exited.then(() => true), sleep(5_000).then(() => false)])
      if (!ended) {
        child.kill('SIGKILL')
        await exited
      }
    },
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
