/**
 * Throwaway Redis servers for tests and demos: `startRedis()` for one standalone server, `startCluster()`
 * for a Redis Cluster (masters + replicas) built with `redis-cli --cluster create`. It lives in tools/,
 * beside neither test/ nor bench/, because both use it: the vitest global setup, tests that need a server
 * of their own (outages, restarts), the Redis benchmarks, the demo's --own-redis and scripts/redis-cluster.ts.
 *
 * Every process started here is registered (tools/child-processes.ts): `stop()` kills it, and exit and
 * signal hooks and a watchdog kill whatever is still running and remove the temporary directories, so an
 * aborted test run leaves nothing behind. Servers listen on loopback only, on ports the kernel reports free.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort, HOST, makeTempDir, removeTempDir, track } from './child-processes.js'

export { freePort } from './child-processes.js'

export interface RedisServer {
  readonly host: string
  readonly port: number
  /** `redis://127.0.0.1:<port>` */
  readonly url: string
  /** Pid of the current process (a restart changes it). */
  readonly pid: number
  /** Whether the process is currently running. */
  readonly running: boolean
  /** Stops the server (SIGTERM, then SIGKILL) and removes its temporary directory. Idempotent. */
  stop(): Promise<void>
  /** SHUTDOWN NOSAVE, wait `downMs`, start again on the same port (an outage of the same server). */
  restart(options?: { downMs?: number }): Promise<void>
  /** Stops the process but keeps the port and directory so `start()` can bring it back. */
  kill(signal?: NodeJS.Signals): Promise<void>
  /** Starts a killed server again on the same port. */
  start(): Promise<void>
}

export interface StartRedisOptions {
  /** Extra `redis-server` arguments, e.g. `['--requirepass', 'secret']`. */
  args?: readonly string[]
  /**
   * Contents of a configuration file, written to the server's directory and passed first (a sentinel
   * needs one it can rewrite). Called with the port the server will listen on.
   */
  config?: (port: number) => string
  /** How long to wait for PING to answer. @default 10_000 */
  startTimeoutMs?: number
}

export interface RedisNodeAddress {
  host: string
  port: number
}

export interface RedisTestCluster {
  /** Every node, masters first, in the order given to `redis-cli --cluster create`. */
  readonly nodes: RedisNodeAddress[]
  readonly servers: RedisServer[]
  /** Pids of all running node processes. */
  readonly pids: number[]
  stop(): Promise<void>
}

export interface StartClusterOptions {
  /** @default 3 */
  masters?: number
  /** @default 1 */
  replicasPerMaster?: number
  /** `cluster-node-timeout`: how long before a silent node is considered failing; it also paces gossip, so a low value makes the cluster form faster. @default 2000 */
  nodeTimeoutMs?: number
  /** How long to wait for `cluster_state:ok` everywhere. @default 30_000 */
  startTimeoutMs?: number
  /** Extra `redis-server` arguments for every node, e.g. `['--appendonly', 'yes']`. */
  args?: readonly string[]
}

const LOG_LINES = 40

// ---------------------------------------------------------------------------------------------------------
// A minimal RESP client (no dependency on the client library under test)

export type RespValue = string | number | null | RespValue[]

class RespError extends Error {}

/** Parses one RESP2 reply from `buf` at `offset`; undefined when incomplete. */
function parseResp(buf: Buffer, offset: number): { value: RespValue | RespError; next: number } | undefined {
  const lineEnd = buf.indexOf('\r\n', offset)
  if (lineEnd === -1) return undefined
  const type = String.fromCharCode(buf[offset]!)
  const line = buf.toString('utf8', offset + 1, lineEnd)
  const afterLine = lineEnd + 2
  switch (type) {
    case '+':
      return { value: line, next: afterLine }
    case '-':
      return { value: new RespError(line), next: afterLine }
    case ':':
      return { value: Number(line), next: afterLine }
    case '$': {
      const length = Number(line)
      if (length < 0) return { value: null, next: afterLine }
      if (buf.length < afterLine + length + 2) return undefined
      return { value: buf.toString('utf8', afterLine, afterLine + length), next: afterLine + length + 2 }
    }
    case '*': {
      const count = Number(line)
      if (count < 0) return { value: null, next: afterLine }
      const items: RespValue[] = []
      let next = afterLine
      for (let i = 0; i < count; i++) {
        const item = parseResp(buf, next)
        if (!item) return undefined
        if (item.value instanceof RespError) return { value: item.value, next: item.next }
        items.push(item.value)
        next = item.next
      }
      return { value: items, next }
    }
    default:
      return { value: new RespError(`unexpected RESP type ${JSON.stringify(type)}`), next: buf.length }
  }
}

/**
 * Sends one command to `host:port` on a fresh connection and resolves to its reply. A connection closed
 * without a reply resolves to null (what SHUTDOWN does).
 */
export function redisCommand(
  port: number,
  args: readonly string[],
  options: { host?: string; timeoutMs?: number; password?: string } = {},
): Promise<RespValue> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ host: options.host ?? HOST, port })
    let received = Buffer.alloc(0)
    let settled = false
    const finish = (error: Error | undefined, value?: RespValue) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      if (error) reject(error)
      else resolve(value ?? null)
    }
    const timer = setTimeout(
      () => finish(new Error(`redis ${HOST}:${port} did not answer ${args[0]} in time`)),
      options.timeoutMs ?? 2000,
    )
    socket.once('error', (error) => finish(error))
    socket.once('close', () => finish(undefined, null))
    // With a password, AUTH goes first and its reply is skipped (an error reply to it is the answer).
    let skip = options.password === undefined ? 0 : 1
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk])
      for (;;) {
        const reply = parseResp(received, 0)
        if (!reply) return
        received = received.subarray(reply.next)
        if (reply.value instanceof RespError) return finish(reply.value)
        if (skip > 0) {
          skip--
          continue
        }
        return finish(undefined, reply.value)
      }
    })
    const encode = (command: readonly string[]) => {
      let payload = `*${command.length}\r\n`
      for (const arg of command) payload += `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`
      return payload
    }
    socket.write((options.password === undefined ? '' : encode(['AUTH', options.password])) + encode(args))
  })
}

// ---------------------------------------------------------------------------------------------------------
// One redis-server process

class ServerProcess implements RedisServer {
  readonly host = HOST
  readonly url: string
  private child: ChildProcess | undefined
  private exited: Promise<void> = Promise.resolve()
  private readonly log: string[] = []
  private stopped = false

  constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly ownsDir: boolean,
    private readonly args: readonly string[],
    private readonly startTimeoutMs: number,
    /** Path of a configuration file to pass first (see StartRedisOptions.config). */
    private readonly configFile?: string,
  ) {
    this.url = `redis://${HOST}:${port}`
  }

  get pid(): number {
    return this.child?.pid ?? -1
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null
  }

  /** Starts the process and resolves once it answers PING; rejects with its log if it exits first. */
  async start(): Promise<void> {
    if (this.stopped) throw new Error(`redis ${this.url} was stopped`)
    if (this.running) return
    this.log.length = 0
    const child = spawn(
      'redis-server',
      [
        ...(this.configFile === undefined ? [] : [this.configFile]),
        '--port',
        String(this.port),
        '--bind',
        HOST,
        '--save',
        '',
        '--appendonly',
        'no',
        '--daemonize',
        'no',
        '--dir',
        this.dir,
        ...this.args,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    this.child = child
    const collect = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() === '') continue
        this.log.push(line)
        if (this.log.length > LOG_LINES) this.log.shift()
      }
    }
    child.stdout?.on('data', collect)
    child.stderr?.on('data', collect)
    this.exited = track(child, (error) => this.log.push(String(error)))
    const deadline = Date.now() + this.startTimeoutMs
    while (Date.now() < deadline) {
      if (!this.running) break
      try {
        if ((await redisCommand(this.port, ['PING'], { timeoutMs: 500 })) === 'PONG') return
      } catch (error) {
        // An error reply other than LOADING means it is up but wants AUTH (servers started with ACLs).
        if (error instanceof RespError && !error.message.startsWith('LOADING')) return
        // otherwise: not listening yet
      }
      await sleep(10)
    }
    const running = this.running
    await this.kill('SIGKILL')
    throw new Error(
      `redis-server on port ${this.port} ${running ? 'did not answer PING in time' : 'exited'}:\n${this.log.join('\n')}`,
    )
  }

  /** The last lines the server logged (for error messages). */
  recentLog(): string {
    return this.log.join('\n')
  }

  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child
    if (!child || !this.running) return
    child.kill(signal)
    const killed = await Promise.race([this.exited.then(() => true), sleep(3000).then(() => false)])
    if (!killed) {
      child.kill('SIGKILL')
      await this.exited
    }
  }

  async restart(options: { downMs?: number } = {}): Promise<void> {
    if (this.running) {
      try {
        await redisCommand(this.port, ['SHUTDOWN', 'NOSAVE'], { timeoutMs: 2000 })
      } catch {
        // connection reset by the shutdown, or unresponsive: kill below
      }
      const exited = await Promise.race([this.exited.then(() => true), sleep(3000).then(() => false)])
      if (!exited) await this.kill('SIGKILL')
    }
    if (options.downMs) await sleep(options.downMs)
    // The port was ours a moment ago; retry briefly in case the kernel has not released it yet.
    for (let attempt = 0; ; attempt++) {
      try {
        await this.start()
        return
      } catch (error) {
        if (attempt >= 5) throw error
        await sleep(100)
      }
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return
    await this.kill('SIGTERM')
    this.stopped = true
    if (this.ownsDir) await removeTempDir(this.dir)
  }
}

/** Allocates ports and starts a server, retrying with new ports when the kernel hands out one that is taken. */
async function startOnFreePort(
  build: (port: number) => Promise<ServerProcess> | ServerProcess,
  attempts = 5,
): Promise<ServerProcess> {
  let lastError: unknown
  for (let attempt = 0; attempt < attempts; attempt++) {
    const server = await build(await freePort())
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

/** Starts a standalone `redis-server` on a free loopback port. */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  return startOnFreePort(async (port) => {
    const dir = await makeTempDir(`redis-${port}`)
    let configFile: string | undefined
    if (options.config !== undefined) {
      configFile = path.join(dir, 'redis.conf')
      writeFileSync(configFile, options.config(port))
    }
    return new ServerProcess(
      port,
      dir,
      true,
      options.args ?? [],
      options.startTimeoutMs ?? 10_000,
      configFile,
    )
  })
}

// ---------------------------------------------------------------------------------------------------------
// Cluster

function runRedisCli(args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', args, { timeout: timeoutMs }, (error, stdout, stderr) => {
      if (error)
        reject(new Error(`redis-cli ${args.join(' ')} failed: ${error.message}\n${stdout}\n${stderr}`))
      else resolve(stdout)
    })
  })
}

function clusterInfo(text: RespValue): Map<string, string> {
  const info = new Map<string, string>()
  if (typeof text !== 'string') return info
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':')
    if (colon > 0) info.set(line.slice(0, colon), line.slice(colon + 1))
  }
  return info
}

/**
 * Whether every node reports a healthy cluster (all 16384 slots served, every node known) and sees every
 * node in its role, so a client discovering the topology from any node gets the same answer.
 */
async function clusterReady(servers: readonly ServerProcess[], replicas: number): Promise<boolean> {
  const nodeReady = async (server: ServerProcess) => {
    const info = clusterInfo(await redisCommand(server.port, ['CLUSTER', 'INFO'], { timeoutMs: 1000 }))
    if (
      info.get('cluster_state') !== 'ok' ||
      info.get('cluster_slots_ok') !== '16384' ||
      info.get('cluster_known_nodes') !== String(servers.length)
    ) {
      return false
    }
    const nodes = await redisCommand(server.port, ['CLUSTER', 'NODES'], { timeoutMs: 1000 })
    if (typeof nodes !== 'string') return false
    const flags = nodes
      .trim()
      .split('\n')
      .map((line) => line.split(' ')[2] ?? '')
    return flags.filter((flag) => /(^|,)slave(,|$)/.test(flag)).length === replicas
  }
  const ready = await Promise.all(servers.map((server) => nodeReady(server).catch(() => false)))
  return ready.every(Boolean)
}

/**
 * Starts a Redis Cluster of `masters` masters with `replicasPerMaster` replicas each (loopback only, in a
 * temporary directory) and resolves once `CLUSTER INFO` reports `cluster_state:ok` with all 16384 slots
 * covered on every node.
 */
export async function startCluster(options: StartClusterOptions = {}): Promise<RedisTestCluster> {
  const masters = options.masters ?? 3
  const replicasPerMaster = options.replicasPerMaster ?? 1
  if (masters < 3) throw new Error('a Redis Cluster needs at least 3 masters')
  const total = masters * (1 + replicasPerMaster)
  const startTimeoutMs = options.startTimeoutMs ?? 30_000
  const dir = await makeTempDir('cluster')
  const servers: ServerProcess[] = []
  const stop = async () => {
    await Promise.all(servers.map((server) => server.stop()))
    await removeTempDir(dir)
  }
  try {
    const started = await Promise.allSettled(
      Array.from({ length: total }, () =>
        startOnFreePort(async (port) => {
          // The cluster bus gets a port of its own: port + 10000 may be out of range or taken.
          const busPort = await freePort()
          return new ServerProcess(
            port,
            dir,
            false,
            [
              '--cluster-enabled',
              'yes',
              '--cluster-config-file',
              path.join(dir, `nodes-${port}.conf`),
              '--cluster-port',
              String(busPort),
              '--cluster-node-timeout',
              String(options.nodeTimeoutMs ?? 2000),
              // Let replicas sync at once (not after 5 s) and report a replication offset every second.
              '--repl-diskless-sync-delay',
              '0',
              '--repl-ping-replica-period',
              '1',
              // The nodes share one directory: their data files need names of their own.
              '--appenddirname',
              `appendonly-${port}`,
              '--dbfilename',
              `dump-${port}.rdb`,
              ...(options.args ?? []),
            ],
            10_000,
          )
        }),
      ),
    )
    for (const result of started) if (result.status === 'fulfilled') servers.push(result.value)
    const failed = started.find((result) => result.status === 'rejected')
    if (failed) throw (failed as PromiseRejectedResult).reason

    await runRedisCli(
      [
        '--cluster',
        'create',
        ...servers.map((server) => `${HOST}:${server.port}`),
        '--cluster-replicas',
        String(replicasPerMaster),
        '--cluster-yes',
      ],
      startTimeoutMs,
    )
    const deadline = Date.now() + startTimeoutMs
    while (!(await clusterReady(servers, masters * replicasPerMaster))) {
      if (Date.now() > deadline) throw new Error('the cluster did not reach cluster_state:ok in time')
      await sleep(25)
    }
  } catch (error) {
    await stop()
    throw error
  }
  return {
    nodes: servers.map((server) => ({ host: server.host, port: server.port })),
    servers,
    get pids() {
      return servers.filter((server) => server.running).map((server) => server.pid)
    },
    stop,
  }
}

/** Whether a process with this pid is running (a zombie, killed but not yet reaped, is not). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    // /proc/<pid>/stat: "pid (comm) state ...": Z is a zombie.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return true
  }
}

/** Kills (SIGKILL) the master that owns `key`'s slot in `cluster`; returns its port. */
export async function killKeyOwner(cluster: RedisTestCluster, key: string): Promise<number> {
  const port = cluster.nodes[0]!.port
  const slots = (await redisCommand(port, ['CLUSTER', 'SLOTS'])) as [number, number, [string, number]][]
  const slot = Number(await redisCommand(port, ['CLUSTER', 'KEYSLOT', key]))
  const ownerPort = slots.find(([from, to]) => from <= slot && slot <= to)![2][1]
  await cluster.servers.find((server) => server.port === ownerPort)!.kill('SIGKILL')
  return ownerPort
}
