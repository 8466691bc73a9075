/**
 * A throwaway Redis Sentinel deployment for tests: a master, its replicas and three sentinels
 * (`redis-server <config> --sentinel`), all on free loopback ports, started and stopped through
 * redis-server.ts (so its process registry, exit hooks and watchdog clean them up as well).
 *
 * Waits are polls for a condition with an overall timeout: the group is ready once every sentinel sees
 * the master, every replica and the other sentinels; a failover is done once every sentinel names the new
 * master and that node's ROLE says master.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import {
  type RedisNodeAddress,
  type RedisServer,
  type RespValue,
  redisCommand,
  startRedis,
} from '../../tools/redis-server.js'

export interface StartSentinelOptions {
  /** The master's name. @default 'cache' */
  name?: string
  /** @default 1 */
  replicas?: number
  /** @default 3 */
  sentinels?: number
  /** How long a silent master takes to be seen down (then failed over). @default 1000 */
  downAfterMs?: number
  /** Password of the data nodes (requirepass and masterauth); sentinels authenticate with it. */
  password?: string
  /** Password of the sentinels themselves (their requirepass and sentinel-pass). */
  sentinelPassword?: string
  /** How long to wait for the group to be ready. @default 30_000 */
  startTimeoutMs?: number
}

export interface SentinelGroup {
  readonly name: string
  /** Addresses of the sentinels. */
  readonly sentinels: RedisNodeAddress[]
  readonly sentinelServers: RedisServer[]
  /** The data nodes: the first master first, then the replicas. */
  readonly servers: RedisServer[]
  readonly password: string | undefined
  /** The data node the sentinels name as master now. */
  master(): Promise<RedisServer>
  /** Runs a command on a data node (with the data password). */
  command(server: RedisServer, args: readonly string[]): Promise<RespValue>
  /**
   * `SENTINEL FAILOVER <name>` on one sentinel; resolves to the new master once every sentinel names it
   * and it says it is one.
   */
  failover(timeoutMs?: number): Promise<RedisServer>
  /** Resolves to the new master once every sentinel names a master other than `old` and it is one. */
  waitForNewMaster(old: RedisServer, timeoutMs?: number): Promise<RedisServer>
  /** Waits until the master has `count` replicas online and every sentinel sees them. */
  waitForReplicas(count: number, timeoutMs?: number): Promise<void>
  /** Pids of every running process of the group. */
  readonly pids: number[]
  stop(): Promise<void>
}

/** A flat RESP2 map (`[k1, v1, k2, v2, ...]`) as a Map. */
function fields(reply: RespValue): Map<string, string> {
  const map = new Map<string, string>()
  if (!Array.isArray(reply)) return map
  for (let i = 0; i + 1 < reply.length; i += 2) map.set(String(reply[i]), String(reply[i + 1]))
  return map
}

async function waitFor(probe: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      if (await probe()) return
    } catch (error) {
      lastError = error
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: lastError })
    }
    await sleep(25)
  }
}

export async function startSentinels(options: StartSentinelOptions = {}): Promise<SentinelGroup> {
  const name = options.name ?? 'cache'
  const replicaCount = options.replicas ?? 1
  const sentinelCount = options.sentinels ?? 3
  const downAfterMs = options.downAfterMs ?? 1000
  const startTimeoutMs = options.startTimeoutMs ?? 30_000
  const { password, sentinelPassword } = options
  const servers: RedisServer[] = []
  const sentinelServers: RedisServer[] = []
  const stop = async () => {
    await Promise.all([...sentinelServers, ...servers].map((server) => server.stop()))
  }
  const dataArgs = [
    // Replicas sync at once (diskless, no 5 s delay) and report their offset every second.
    '--repl-diskless-sync-delay',
    '0',
    '--repl-ping-replica-period',
    '1',
    ...(password === undefined ? [] : ['--requirepass', password, '--masterauth', password]),
  ]
  const data = (server: RedisServer, args: readonly string[]) =>
    redisCommand(server.port, args, { timeoutMs: 1000, ...(password !== undefined && { password }) })
  const ask = (sentinel: RedisServer, args: readonly string[]) =>
    redisCommand(sentinel.port, args, {
      timeoutMs: 1000,
      ...(sentinelPassword !== undefined && { password: sentinelPassword }),
    })
  /** The port every reachable sentinel names as master; undefined while they disagree or none answers. */
  const agreedMasterPort = async (): Promise<number | undefined> => {
    const running = sentinelServers.filter((sentinel) => sentinel.running)
    const ports = await Promise.all(
      running.map(async (sentinel) => {
        const reply = await ask(sentinel, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name])
        return Array.isArray(reply) ? Number(reply[1]) : undefined
      }),
    )
    const first = ports[0]
    return first !== undefined && ports.every((port) => port === first) ? first : undefined
  }
  const isMaster = async (server: RedisServer) => {
    const role = await data(server, ['ROLE'])
    return Array.isArray(role) && role[0] === 'master'
  }
  const byPort = (port: number | undefined) => servers.find((server) => server.port === port)

  try {
    const master = await startRedis({ args: dataArgs })
    servers.push(master)
    for (let i = 0; i < replicaCount; i++) {
      servers.push(await startRedis({ args: [...dataArgs, '--replicaof', master.host, String(master.port)] }))
    }
    const group = {
      async waitForReplicas(count: number, timeoutMs = startTimeoutMs) {
        await waitFor(
          async () => {
            const current = byPort(await agreedMasterPort())
            if (current === undefined) return false
            const info = await data(current, ['INFO', 'replication'])
            const online = typeof info === 'string' ? (info.match(/state=online/g) ?? []).length : 0
            if (online < count) return false
            const seen = await Promise.all(
              sentinelServers.map(async (sentinel) => {
                const replicas = await ask(sentinel, ['SENTINEL', 'REPLICAS', name])
                if (!Array.isArray(replicas)) return 0
                return replicas
                  .map(fields)
                  .filter((replica) => !/s_down|disconnected/.test(replica.get('flags') ?? '')).length
              }),
            )
            return seen.every((n) => n >= count)
          },
          timeoutMs,
          `${count} replica(s) online and seen by every sentinel`,
        )
      },
    }
    await waitFor(
      async () => {
        const info = await data(master, ['INFO', 'replication'])
        return typeof info === 'string' && (info.match(/state=online/g) ?? []).length === replicaCount
      },
      startTimeoutMs,
      'the replicas to sync',
    )
    for (let i = 0; i < sentinelCount; i++) {
      const config = () =>
        [
          `sentinel monitor ${name} ${master.host} ${master.port} 2`,
          `sentinel down-after-milliseconds ${name} ${downAfterMs}`,
          `sentinel failover-timeout ${name} 10000`,
          `sentinel parallel-syncs ${name} 1`,
          ...servers
            .slice(1)
            .map((replica) => `sentinel known-replica ${name} ${replica.host} ${replica.port}`),
          ...(password === undefined ? [] : [`sentinel auth-pass ${name} ${password}`]),
          ...(sentinelPassword === undefined
            ? []
            : [`requirepass ${sentinelPassword}`, `sentinel sentinel-pass ${sentinelPassword}`]),
          '',
        ].join('\n')
      sentinelServers.push(await startRedis({ config, args: ['--sentinel'] }))
    }
    // Sentinels find each other through the master's hello channel (every 2 s).
    await waitFor(
      async () => {
        const views = await Promise.all(
          sentinelServers.map(async (sentinel) => fields(await ask(sentinel, ['SENTINEL', 'MASTER', name]))),
        )
        return views.every(
          (view) =>
            view.get('flags') === 'master' &&
            view.get('num-other-sentinels') === String(sentinelCount - 1) &&
            view.get('num-slaves') === String(replicaCount),
        )
      },
      startTimeoutMs,
      'every sentinel to see the master, its replicas and the other sentinels',
    )
    await group.waitForReplicas(replicaCount)

    /** What the sentinels think and log, for the message of a failover that did not happen in time. */
    const diagnosis = async () => {
      const views = await Promise.all(
        sentinelServers.map(async (sentinel) => {
          const view = await ask(sentinel, ['SENTINEL', 'MASTER', name]).then(fields, () => new Map())
          const log = (sentinel as unknown as { recentLog?: () => string }).recentLog?.() ?? ''
          return `sentinel ${sentinel.port}: master ${view.get('ip')}:${view.get('port')} flags ${view.get('flags')}, ${view.get('num-slaves')} replica(s)\n${log.split('\n').slice(-8).join('\n')}`
        }),
      )
      return views.join('\n')
    }
    const waitForNewMaster = async (old: RedisServer, timeoutMs = startTimeoutMs) => {
      let found: RedisServer | undefined
      try {
        await waitFor(
          async () => {
            const port = await agreedMasterPort()
            found = port === old.port ? undefined : byPort(port)
            return found !== undefined && (await isMaster(found))
          },
          timeoutMs,
          `a failover away from port ${old.port}`,
        )
      } catch (error) {
        throw new Error(`${(error as Error).message}\n${await diagnosis()}`, { cause: error })
      }
      return found!
    }
    return {
      name,
      sentinels: sentinelServers.map((sentinel) => ({ host: sentinel.host, port: sentinel.port })),
      sentinelServers,
      servers,
      password,
      async master() {
        let found: RedisServer | undefined
        await waitFor(
          async () => {
            found = byPort(await agreedMasterPort())
            return found !== undefined
          },
          startTimeoutMs,
          'the sentinels to agree on a master',
        )
        return found!
      },
      command: data,
      async failover(timeoutMs = startTimeoutMs) {
        const old = byPort(await agreedMasterPort())
        if (old === undefined) throw new Error('the sentinels do not agree on a master')
        // A sentinel refuses while a previous failover of this master is still being wrapped up (INPROG).
        await waitFor(
          async () => (await ask(sentinelServers[0]!, ['SENTINEL', 'FAILOVER', name])) === 'OK',
          timeoutMs,
          'SENTINEL FAILOVER to be accepted',
        )
        return waitForNewMaster(old, timeoutMs)
      },
      waitForNewMaster,
      waitForReplicas: group.waitForReplicas,
      get pids() {
        return [...servers, ...sentinelServers].filter((server) => server.running).map((server) => server.pid)
      },
      stop,
    }
  } catch (error) {
    await stop()
    throw error
  }
}
