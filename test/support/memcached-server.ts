/**
 * Throwaway memcached servers for tests and benchmarks (Debian's `memcached` binary), in the manner of
 * redis-server.ts: loopback only, on ports the kernel reports free, every process registered, killed by
 * `stop()`, by a process `exit` / SIGINT / SIGTERM / SIGHUP hook (prepended, so that vitest's own exit
 * listener cannot skip it), and, if this process dies without running any hook (SIGKILL), by a watchdog
 * process that outlives it.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from '../../tools/redis-server.js'

export interface MemcachedServer {
  readonly host: string
  readonly port: number
  /** `memcached://127.0.0.1:<port>` */
  readonly url: string
  readonly pid: number
  readonly running: boolean
  /** Kills the process (SIGKILL by default) but keeps the port, so `start()` can bring it back (empty). */
  kill(signal?: NodeJS.Signals): Promise<void>
  start(): Promise<void>
  /** Stops it for good. Idempotent. */
  stop(): Promise<void>
}

export interface StartMemcachedOptions {
  /** Largest item (`-I`). @default '4m' (the conformance suite stores 1 MiB values) */
  maxItemSize?: string
  /** Memory in MiB (`-m`). @default 64 */
  memoryMb?: number
}

const HOST = '127.0.0.1'
const children = new Set<ChildProcess>()
let hooked = false
let stateFile: string | undefined

function recordState(): void {
  if (stateFile === undefined) return
  const pids = [...children].filter((c) => c.exitCode === null && c.signalCode === null).map((c) => c.pid)
  try {
    writeFileSync(stateFile, pids.map((pid) => `${pid}\n`).join(''))
  } catch {
    // best effort
  }
}

function killAll(): void {
  for (const child of children) {
    try {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    } catch {
      // already gone
    }
  }
}

function installHooks(): void {
  if (hooked) return
  hooked = true
  // The watchdog: blocked reading a pipe only this process holds; when it returns, this process is gone.
  stateFile = path.join(os.tmpdir(), `coherent-cache-memcached-${process.pid}-${Date.now()}.txt`)
  writeFileSync(stateFile, '')
  const script = `read _ignored
while read -r pid; do
  if ps -p "$pid" -o comm= 2>/dev/null | grep -q memcached; then kill -9 "$pid" 2>/dev/null; fi
done < "$0"
rm -f "$0"`
  try {
    const watchdog = spawn('sh', ['-c', script, stateFile], {
      stdio: ['pipe', 'ignore', 'ignore'],
      detached: true,
    })
    watchdog.on('error', () => {})
    watchdog.stdin?.on('error', () => {})
    watchdog.unref()
    ;(watchdog.stdin as unknown as net.Socket | null)?.unref?.()
  } catch {
    rmSync(stateFile, { force: true })
    stateFile = undefined
  }
  process.prependOnceListener('exit', () => {
    killAll()
    children.clear()
    recordState()
  })
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.prependOnceListener(signal, () => {
      killAll()
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
    })
  }
}

/** Resolves when memcached answers `version` on `port`. */
function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.createConnection({ host: HOST, port })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(500, () => done(false))
    socket.once('error', () => done(false))
    socket.once('data', (chunk) => done(chunk.toString().startsWith('VERSION')))
    socket.once('connect', () => socket.write('version\r\n'))
  })
}

class MemcachedProcess implements MemcachedServer {
  readonly host = HOST
  readonly url: string
  private child: ChildProcess | undefined
  private exited: Promise<void> = Promise.resolve()
  private stopped = false
  private log = ''

  constructor(
    readonly port: number,
    private readonly options: StartMemcachedOptions,
  ) {
    this.url = `memcached://${HOST}:${port}`
  }

  get pid(): number {
    return this.child?.pid ?? -1
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null
  }

  async start(): Promise<void> {
    if (this.stopped) throw new Error(`memcached ${this.url} was stopped`)
    if (this.running) return
    installHooks()
    const args = ['-l', HOST, '-p', String(this.port), '-U', '0', '-I', this.options.maxItemSize ?? '4m']
    args.push('-m', String(this.options.memoryMb ?? 64))
    // memcached refuses to run as root unless told which user to be.
    if (process.getuid?.() === 0) args.push('-u', 'root')
    const child = spawn('memcached', args, { stdio: ['ignore', 'ignore', 'pipe'] })
    this.child = child
    this.log = ''
    child.stderr?.on('data', (chunk: Buffer) => {
      this.log = (this.log + chunk.toString()).slice(-4000)
    })
    child.unref()
    ;(child.stderr as net.Socket | null)?.unref?.()
    this.exited = new Promise((resolve) => {
      child.once('exit', () => {
        children.delete(child)
        recordState()
        resolve()
      })
      child.once('error', (error) => {
        this.log += String(error)
        children.delete(child)
        recordState()
        resolve()
      })
    })
    children.add(child)
    recordState()
    const deadline = Date.now() + 10_000
    while (Date.now() < deadline && this.running) {
      if (await answers(this.port)) return
      await sleep(10)
    }
    const running = this.running
    await this.kill('SIGKILL')
    throw new Error(
      `memcached on port ${this.port} ${running ? 'did not answer in time' : 'exited'}:\n${this.log}`,
    )
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child
    if (!child || !this.running) return
    child.kill(signal)
    const gone = await Promise.race([this.exited.then(() => true), sleep(3000).then(() => false)])
    if (!gone) {
      child.kill('SIGKILL')
      await this.exited
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    if (this.running) process.kill(this.pid, 'SIGCONT')
    await this.kill('SIGTERM')
  }
}

/** Starts a memcached on a free loopback port (retrying with another port if one was taken meanwhile). */
export async function startMemcached(options: StartMemcachedOptions = {}): Promise<MemcachedServer> {
  let lastError: unknown
  for (let attempt = 0; attempt < 5; attempt++) {
    const server = new MemcachedProcess(await freePort(), options)
    try {
      await server.start()
      return server
    } catch (error) {
      lastError = error
      await server.stop().catch(() => {})
    }
  }
  throw lastError
}
