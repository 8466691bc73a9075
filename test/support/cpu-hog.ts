/**
 * A CPU hog for tests that must hold on a loaded machine: child processes that spin, one per core by
 * default, until stop(). Each child also stops by itself after `maxMs` and as soon as its parent is gone,
 * and an exit hook kills whatever is still running, so a failed or aborted test leaves no spinner behind.
 *
 *   const hog = startCpuHog()
 *   try { ...the test... } finally { await hog.stop() }
 */
import { type ChildProcess, spawn } from 'node:child_process'
import os from 'node:os'

export interface CpuHog {
  readonly pids: number[]
  stop(): Promise<void>
}

export interface CpuHogOptions {
  /** @default os.availableParallelism() (every core) */
  processes?: number
  /** Each child ends by itself after this long, whatever happens to its parent. @default 600_000 */
  maxMs?: number
}

const running = new Set<ChildProcess>()
let hooked = false

/** Spins until the deadline, checking now and then that its parent is still there. */
const SPINNER = `
const deadline = Date.now() + Number(process.argv[1])
const parent = process.ppid
for (let i = 0; ; i++) {
  if ((i & 0xfffff) === 0 && (Date.now() > deadline || process.ppid !== parent)) process.exit(0)
}
`

export function startCpuHog(options: CpuHogOptions = {}): CpuHog {
  if (!hooked) {
    hooked = true
    process.prependOnceListener('exit', () => {
      for (const child of running) child.kill('SIGKILL')
    })
  }
  const count = options.processes ?? os.availableParallelism()
  const children: ChildProcess[] = []
  for (let i = 0; i < count; i++) {
    const child = spawn(process.execPath, ['-e', SPINNER, String(options.maxMs ?? 600_000)], {
      stdio: 'ignore',
    })
    child.unref()
    running.add(child)
    child.once('exit', () => running.delete(child))
    children.push(child)
  }
  return {
    pids: children.map((child) => child.pid!).filter((pid) => pid !== undefined),
    async stop() {
      await Promise.all(
        children.map(
          (child) =>
            new Promise<void>((resolve) => {
              if (child.exitCode !== null || child.signalCode !== null) return resolve()
              child.once('exit', () => resolve())
              child.kill('SIGKILL')
            }),
        ),
      )
    },
  }
}
