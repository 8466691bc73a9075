/**
 * The server processes that tools/ starts (redis-server, memcached), and their temporary directories:
 * registered here so that none outlives the process that started it. `track(child)` registers a child
 * until it exits; a process `exit` / SIGINT / SIGTERM / SIGHUP hook kills whatever is still registered
 * and removes the directories. The hooks are prepended: vitest's own exit listener calls process.exit(),
 * which ends the process on the spot and skips every listener after it. For deaths that run no hook at all
 * (SIGKILL), a watchdog process cleans up once this process is gone (see startWatchdog).
 */
import type { ChildProcess } from 'node:child_process'
import { spawn } from 'node:child_process'
import { rmSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

export const HOST = '127.0.0.1'

/** Every running child, with a promise that settles when it has exited (and was reaped by us). */
const children = new Map<ChildProcess, Promise<void>>()
const tempDirs = new Set<string>()
let hooksInstalled = false
let watchdogState: string | undefined

function alive(child: ChildProcess): boolean {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null
}

function killAllSync(): void {
  for (const child of children.keys()) {
    try {
      if (alive(child)) process.kill(child.pid!, 'SIGKILL')
    } catch {
      // already gone
    }
  }
}

function removeTempDirsSync(): void {
  for (const dir of tempDirs) {
    try {
      rmSync(dir, { recursive: true, force: true })
    } catch {
      // best effort
    }
  }
  tempDirs.clear()
}

/**
 * The last line of defence: a `sh` process, in a process group of its own, blocked reading a pipe that
 * only this process holds. When this process is gone, however it died, the read returns and the watchdog
 * kills the pids listed in its state file (if they still are redis-server or memcached processes: a pid
 * may have been reused) and removes the listed directories. The state file always lists what is running
 * now (see recordState).
 */
function startWatchdog(): void {
  const stateFile = path.join(os.tmpdir(), `coherent-cache-watchdog-${process.pid}-${Date.now()}.txt`)
  writeFileSync(stateFile, '')
  const script = `read _ignored
while read -r kind value; do
  case "$kind" in
    pid) if ps -p "$value" -o comm= 2>/dev/null | grep -qE 'redis-server|memcached'; then kill -9 "$value" 2>/dev/null; fi ;;
    dir) rm -rf "$value" ;;
  esac
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
    watchdogState = stateFile
  } catch {
    rmSync(stateFile, { force: true })
  }
}

/** Writes what the watchdog must clean up if this process dies now. */
function recordState(): void {
  if (watchdogState === undefined) return
  const lines: string[] = []
  for (const child of children.keys()) if (alive(child)) lines.push(`pid ${child.pid}`)
  for (const dir of tempDirs) lines.push(`dir ${dir}`)
  try {
    writeFileSync(watchdogState, lines.length ? `${lines.join('\n')}\n` : '')
  } catch {
    // best effort
  }
}

/** Installs the exit and signal hooks and the watchdog, once per process. Call before spawning. */
export function installHooks(): void {
  if (hooksInstalled) return
  hooksInstalled = true
  startWatchdog()
  // On exit nothing asynchronous runs any more: kill, and let init reap the processes.
  process.prependOnceListener('exit', () => {
    killAllSync()
    removeTempDirsSync()
    children.clear()
    recordState()
  })
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.prependOnceListener(signal, () => {
      // On a signal we can still wait for the processes to exit, which also reaps them (no zombies on
      // systems whose PID 1 does not reap orphans).
      const exits = [...children.values()]
      killAllSync()
      Promise.race([Promise.all(exits), sleep(2000)]).finally(() => {
        removeTempDirsSync()
        recordState()
        // When we were the only listener, restore the default behaviour (terminate) by re-raising the
        // signal. Otherwise another listener (e.g. scripts/redis-cluster.ts) decides when to exit.
        if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
      })
    })
  }
}

/**
 * Registers a just-spawned server process until it exits, and detaches it from this process's event loop
 * (a forgotten server must not keep a test worker alive: the hooks kill it). Returns a promise that
 * settles once it has exited; `onError` hears a spawn error (which also counts as the exit).
 */
export function track(child: ChildProcess, onError: (error: Error) => void = () => {}): Promise<void> {
  installHooks()
  child.unref()
  for (const stream of [child.stdin, child.stdout, child.stderr]) (stream as net.Socket | null)?.unref?.()
  const exited = new Promise<void>((resolve) => {
    const gone = () => {
      children.delete(child)
      recordState()
      resolve()
    }
    child.once('exit', gone)
    child.once('error', (error) => {
      onError(error)
      gone()
    })
  })
  children.set(child, exited)
  recordState()
  return exited
}

/** A temporary directory removed by `removeTempDir`, or by the hooks and the watchdog if we die first. */
export async function makeTempDir(prefix: string): Promise<string> {
  installHooks()
  const dir = await mkdtemp(path.join(os.tmpdir(), `coherent-cache-${prefix}-`))
  tempDirs.add(dir)
  recordState()
  return dir
}

export async function removeTempDir(dir: string): Promise<void> {
  tempDirs.delete(dir)
  recordState()
  await rm(dir, { recursive: true, force: true })
}

/** A port the kernel reports free on loopback right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.once('error', reject)
    server.listen(0, HOST, () => {
      const address = server.address()
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port)
        else reject(new Error('could not allocate a port'))
      })
    })
  })
}
