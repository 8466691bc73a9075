import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { describe, expect, inject, it } from 'vitest'
import {
  processAlive,
  type RedisServer,
  redisCommand,
  startCluster,
  startRedis,
} from '../tools/redis-server.js'
import { eventually } from './support/store-conformance.js'

function parseNodes(text: string) {
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const [id, address, flags, master, , , , , ...slots] = line.split(' ')
      return { id, address, flags: flags!.split(','), master, slots }
    })
}

describe('the global Redis Cluster', () => {
  const nodes = inject('redisCluster')

  it('has 3 masters with one replica each and covers all 16384 slots', async () => {
    expect(nodes).toHaveLength(6)
    const info = String(await redisCommand(nodes[0]!.port, ['CLUSTER', 'INFO']))
    expect(info).toContain('cluster_state:ok')
    expect(info).toContain('cluster_slots_assigned:16384')
    expect(info).toContain('cluster_slots_ok:16384')
    const described = parseNodes(String(await redisCommand(nodes[0]!.port, ['CLUSTER', 'NODES'])))
    const masters = described.filter((node) => node.flags.includes('master'))
    const replicas = described.filter((node) => node.flags.includes('slave'))
    expect(masters).toHaveLength(3)
    expect(replicas).toHaveLength(3)
    expect(new Set(replicas.map((replica) => replica.master))).toEqual(
      new Set(masters.map((master) => master.id)),
    )
    const slots = (await redisCommand(nodes[0]!.port, ['CLUSTER', 'SLOTS'])) as [
      number,
      number,
      ...unknown[],
    ][]
    const covered = slots.reduce((sum, [from, to]) => sum + (to - from + 1), 0)
    expect(covered).toBe(16384)
  })

  it('listens on loopback only', async () => {
    for (const node of nodes) {
      expect(node.host).toBe('127.0.0.1')
      const bind = await redisCommand(node.port, ['CONFIG', 'GET', 'bind'])
      expect(bind).toEqual(['bind', '127.0.0.1'])
    }
  })
})

describe('startRedis()', () => {
  it('starts a server that answers, restarts it on the same port, and stop() kills it', async () => {
    let server: RedisServer | undefined
    try {
      server = await startRedis()
      expect(server.url).toBe(`redis://127.0.0.1:${server.port}`)
      expect(await redisCommand(server.port, ['PING'])).toBe('PONG')
      expect(await redisCommand(server.port, ['CONFIG', 'GET', 'save'])).toEqual(['save', ''])
      expect(await redisCommand(server.port, ['CONFIG', 'GET', 'appendonly'])).toEqual(['appendonly', 'no'])
      await redisCommand(server.port, ['SET', 'k', 'v'])
      const firstPid = server.pid
      await server.restart()
      expect(server.pid).not.toBe(firstPid)
      expect(processAlive(firstPid)).toBe(false)
      expect(await redisCommand(server.port, ['PING'])).toBe('PONG')
      // SHUTDOWN NOSAVE without persistence: the data is gone
      expect(await redisCommand(server.port, ['GET', 'k'])).toBeNull()
      const pid = server.pid
      await server.stop()
      expect(processAlive(pid)).toBe(false)
      expect(server.running).toBe(false)
      await expect(redisCommand(server.port, ['PING'], { timeoutMs: 500 })).rejects.toThrow()
    } finally {
      await server?.stop()
    }
  })

  it('gives every server its own port', async () => {
    const servers = await Promise.all([startRedis(), startRedis(), startRedis()])
    try {
      expect(new Set(servers.map((server) => server.port)).size).toBe(3)
    } finally {
      await Promise.all(servers.map((server) => server.stop()))
    }
  })
})

describe('startCluster()', () => {
  it('starts a healthy cluster whose stop() kills every process and removes its files', async () => {
    const started = Date.now()
    const cluster = await startCluster({ masters: 3, replicasPerMaster: 1 })
    const elapsed = Date.now() - started
    const pids = cluster.pids
    let configFile = ''
    try {
      expect(elapsed).toBeLessThan(15_000)
      expect(cluster.nodes).toHaveLength(6)
      expect(pids).toHaveLength(6)
      for (const pid of pids) expect(processAlive(pid)).toBe(true)
      for (const node of cluster.nodes) {
        expect(String(await redisCommand(node.port, ['CLUSTER', 'INFO']))).toContain('cluster_state:ok')
      }
      const config = (await redisCommand(cluster.nodes[0]!.port, [
        'CONFIG',
        'GET',
        'cluster-config-file',
      ])) as string[]
      configFile = config[1]!
      expect(configFile).toContain(`nodes-${cluster.nodes[0]!.port}.conf`)
      expect(existsSync(configFile)).toBe(true)
    } finally {
      await cluster.stop()
    }
    for (const pid of pids) expect(processAlive(pid)).toBe(false)
    expect(cluster.pids).toEqual([])
    expect(cluster.servers.every((server) => !server.running)).toBe(true)
    expect(existsSync(configFile)).toBe(false)
    await expect(redisCommand(cluster.nodes[0]!.port, ['PING'], { timeoutMs: 500 })).rejects.toThrow()
  })
})

describe('the process exit hooks', () => {
  /**
   * A child process starts a server and then ends without stopping it (process.exit, or a signal):
   * the harness hooks must kill the server and remove its directory. SIGKILL runs no hook at all: the
   * watchdog process does it.
   */
  it.each(['exit', 'SIGINT', 'SIGTERM', 'SIGKILL'] as const)(
    'kill servers left behind on %s',
    async (how) => {
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          '-e',
          `import('./tools/redis-server.ts').then(async ({ startRedis }) => {
          const server = await startRedis()
          const dir = (await import('./tools/redis-server.ts')).redisCommand(server.port, ['CONFIG', 'GET', 'dir'])
          console.log(JSON.stringify({ pid: server.pid, dir: (await dir)[1] }))
          if (${JSON.stringify(how)} === 'exit') process.exit(0)
          setInterval(() => {}, 1000)
        })`,
        ],
        { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'inherit'] },
      )
      let pid = -1
      try {
        let output = ''
        const started = new Promise<void>((resolve) => {
          child.stdout.on('data', (chunk) => {
            output += chunk
            if (output.includes('\n')) resolve()
          })
        })
        // 'close', not 'exit': stdout may still hold the line when the process has exited
        const exited = new Promise((resolve) => child.once('close', resolve))
        await Promise.race([started, exited])
        const reported = JSON.parse(output.trim()) as { pid: number; dir: string }
        pid = reported.pid
        if (how !== 'exit') {
          // (with 'exit' the child may already be gone, and its server with it)
          expect(processAlive(pid)).toBe(true)
          child.kill(how)
        }
        await exited
        // SIGKILL is asynchronous: the server may take a moment to die after its parent is gone.
        await eventually(() => !processAlive(pid), 5000, 'the server to die')
        // the watchdog (SIGKILL case) removes the directory just after killing the server
        await eventually(() => !existsSync(reported.dir), 5000, 'the directory to be removed')
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
        if (pid > 0 && processAlive(pid)) process.kill(pid, 'SIGKILL')
      }
    },
  )
})
