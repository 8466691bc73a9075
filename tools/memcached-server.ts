/**
 * Throwaway memcached servers for tests and benchmarks (Debian's `memcached` binary), in the manner of
 * redis-server.ts: loopback only, on ports the kernel reports free, every process registered with
 * tools/child-processes.ts, so that `stop()`, the exit and signal hooks or the watchdog end it.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort, HOST, track } from './child-processes.js'

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
    this.exited = track(child, (error) => {
      this.log += String(error)
    })
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
