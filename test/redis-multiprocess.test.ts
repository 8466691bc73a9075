import { type ChildProcess, spawn } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import type { CacheOptions } from '../src/index.js'
import type { RedisConnectionOptions } from '../src/redis.js'
import { connection, TOPOLOGIES, uniqueNamespace } from './support/redis-fleet.js'
import { eventually } from './support/store-conformance.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const READY_TIMEOUT_MS = 20_000
const REQUEST_TIMEOUT_MS = 15_000

type Op = 'set' | 'get' | 'delete' | 'invalidateTags' | 'clear' | 'getOrSet' | 'stats' | 'close'

interface Request {
  key?: string
  value?: unknown
  tags?: string[]
  hang?: boolean
}

interface NodeStats {
  loaderCalls: number
  pending: number
  loads: { leasesAcquired: number; leaseWaits: number }
  bus: { connected: boolean }
}

/** A cache node in a child process (test/fixtures/cache-node.ts), driven over IPC. */
class CacheNode {
  private nextId = 0
  private readonly waiting = new Map<
    number,
    { resolve: (value: unknown) => void; reject: (error: Error) => void }
  >()
  private readonly events: { event: string; key?: string }[] = []
  private readonly output: string[] = []
  readonly exited: Promise<void>

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    const collect = (chunk: Buffer) => {
      this.output.push(chunk.toString('utf8'))
      if (this.output.length > 50) this.output.shift()
    }
    child.stdout?.on('data', collect)
    child.stderr?.on('data', collect)
    child.on('message', (message: { id?: number; result?: unknown; error?: { message: string } }) => {
      if (message.id === undefined) {
        this.events.push(message as { event: string })
        return
      }
      const waiter = this.waiting.get(message.id)
      if (waiter === undefined) return
      this.waiting.delete(message.id)
      if (message.error) waiter.reject(new Error(`${name}: ${message.error.message}`))
      else waiter.resolve(message.result)
    })
    this.exited = new Promise((resolve) => {
      child.once('exit', () => {
        for (const waiter of this.waiting.values()) {
          waiter.reject(new Error(`${name} exited before answering\n${this.log()}`))
        }
        this.waiting.clear()
        resolve()
      })
    })
  }

  static spawn(name: string, conn: RedisConnectionOptions, namespace: string, options: CacheOptions = {}) {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/cache-node.ts'], {
      cwd: ROOT,
      env: {
        ...process.env,
        CACHE_CONNECTION: JSON.stringify(conn),
        CACHE_NAMESPACE: namespace,
        CACHE_OPTIONS: JSON.stringify(options),
      },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    })
    return new CacheNode(name, child)
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  log(): string {
    return this.output.join('')
  }

  sawEvent(event: string, key?: string): boolean {
    return this.events.some((e) => e.event === event && (key === undefined || e.key === key))
  }

  async ready(): Promise<void> {
    await eventually(
      () => {
        if (!this.alive) throw new Error(`${this.name} exited during start-up\n${this.log()}`)
        return this.sawEvent('ready')
      },
      READY_TIMEOUT_MS,
      `${this.name} to be ready`,
    )
  }

  request<T = unknown>(op: Op, request: Request = {}): Promise<T> {
    if (!this.alive || !this.child.connected) return Promise.reject(new Error(`${this.name} is not running`))
    const id = ++this.nextId
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id)
        reject(new Error(`${this.name}: no answer to ${op} within ${REQUEST_TIMEOUT_MS} ms\n${this.log()}`))
      }, REQUEST_TIMEOUT_MS)
      this.waiting.set(id, {
        resolve: (value) => {
          clearTimeout(timer)
          resolve(value as T)
        },
        reject: (error) => {
          clearTimeout(timer)
          reject(error)
        },
      })
      this.child.send({ id, op, ...request })
    })
  }

  get<T = unknown>(key: string): Promise<T | null> {
    return this.request<T | null>('get', { key })
  }

  stats(): Promise<NodeStats> {
    return this.request<NodeStats>('stats')
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.alive) this.child.kill(signal)
    await this.exited
  }

  /** Closes the cache and ends the process; SIGKILL if it does not go within a few seconds. */
  async stop(): Promise<void> {
    if (!this.alive) return
    const closed = this.child.connected ? this.request('close').catch(() => {}) : Promise.resolve()
    const gone = await Promise.race([
      closed.then(() => this.exited).then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5000)),
    ])
    if (!gone) await this.kill('SIGKILL')
  }
}

let nodes: CacheNode[] = []
afterEach(async () => {
  await Promise.allSettled(nodes.map((node) => node.stop()))
  // Whatever did not stop is killed: no child outlives its test.
  await Promise.allSettled(nodes.map((node) => node.kill('SIGKILL')))
  nodes = []
})

async function startNodes(count: number, conn: RedisConnectionOptions, options: CacheOptions = {}) {
  const namespace = uniqueNamespace('proc')
  const started = Array.from({ length: count }, (_, i) =>
    CacheNode.spawn(`node${i}`, conn, namespace, options),
  )
  nodes.push(...started)
  await Promise.all(started.map((node) => node.ready()))
  return started
}

describe.each(TOPOLOGIES)('three cache nodes in separate processes (%s)', (topology) => {
  it('a set, delete, invalidateTags or clear on one process is seen by the others', async () => {
    const [a, b, c] = (await startNodes(3, connection(topology))) as [CacheNode, CacheNode, CacheNode]

    await a.request('set', { key: 'user:1', value: { name: 'Ada' }, tags: ['users'] })
    expect(await b.get('user:1')).toEqual({ name: 'Ada' })
    expect(await c.get('user:1')).toEqual({ name: 'Ada' })
    expect(await b.get('user:1')).toEqual({ name: 'Ada' }) // now from B's L1

    // set: B and C hold the old value in L1; A's invalidation must reach them.
    await a.request('set', { key: 'user:1', value: { name: 'Ada Lovelace' }, tags: ['users'] })
    for (const node of [b, c]) {
      await eventually(
        async () => (await node.get<{ name: string }>('user:1'))?.name === 'Ada Lovelace',
        3000,
        `${node.name} to see the set`,
      )
    }

    // delete on another process
    expect(await a.get('user:1')).toEqual({ name: 'Ada Lovelace' })
    await b.request('delete', { key: 'user:1' })
    for (const node of [a, c]) {
      await eventually(
        async () => (await node.get('user:1')) === null,
        3000,
        `${node.name} to see the delete`,
      )
    }

    // invalidateTags
    await c.request('set', { key: 'user:2', value: 'Bob', tags: ['users'] })
    await c.request('set', { key: 'other', value: 'kept', tags: ['others'] })
    for (const node of [a, b]) {
      expect(await node.get('user:2')).toBe('Bob')
      expect(await node.get('other')).toBe('kept')
    }
    await a.request('invalidateTags', { tags: ['users'] })
    for (const node of [b, c]) {
      await eventually(
        async () => (await node.get('user:2')) === null,
        3000,
        `${node.name} to see the tag invalidation`,
      )
    }
    for (const node of [a, b, c]) expect(await node.get('other')).toBe('kept')

    // clear
    await a.request('set', { key: 'k', value: 1 })
    for (const node of [b, c]) expect(await node.get('k')).toBe(1)
    await c.request('clear')
    for (const node of [a, b]) {
      await eventually(async () => (await node.get('k')) === null, 3000, `${node.name} to see the clear`)
      expect(await node.get('other')).toBeNull()
    }

    // Every node still works after all that.
    await b.request('set', { key: 'k', value: 2 })
    for (const node of [a, c]) {
      await eventually(async () => (await node.get('k')) === 2, 3000, `${node.name} to see the last set`)
    }
  })
})

describe('a lease holder killed with SIGKILL', () => {
  it('another process loads the key once the lease expires; nothing deadlocks', async () => {
    const [holder, b, c] = (await startNodes(3, connection('standalone'), {
      lock: 'distributed',
      // waitTimeout far above the lease: answers before it can only come from taking over the lease.
      distributedLock: { leaseTtl: '500ms', waitTimeout: '30s', pollInterval: '50ms' },
    })) as [CacheNode, CacheNode, CacheNode]

    const hung = holder.request('getOrSet', { key: 'hot', value: 'from the holder', hang: true })
    hung.catch(() => {}) // rejected when the process dies
    await eventually(() => holder.sawEvent('loaderStarted', 'hot'), 5000, 'the holder to start loading')
    const holderStats = await holder.stats()
    expect(holderStats.loads.leasesAcquired).toBe(1)

    // B and C ask while the holder is alive: they wait for its lease instead of loading.
    const started = Date.now()
    const fromB = b.request<string>('getOrSet', { key: 'hot', value: 'from b' })
    const fromC = c.request<string>('getOrSet', { key: 'hot', value: 'from c' })
    await eventually(
      async () => (await b.stats()).loads.leaseWaits === 1 && (await c.stats()).loads.leaseWaits === 1,
      5000,
      'B and C to wait for the lease',
    )
    expect((await b.stats()).loaderCalls + (await c.stats()).loaderCalls).toBe(0)

    await holder.kill('SIGKILL')
    await expect(hung).rejects.toThrow(/exited/)

    const [answerB, answerC] = await Promise.all([fromB, fromC])
    const took = Date.now() - started
    // One of them took over after the lease expired and loaded; the other got its value.
    expect(['from b', 'from c']).toContain(answerB)
    expect(answerC).toBe(answerB)
    const [statsB, statsC] = await Promise.all([b.stats(), c.stats()])
    expect(statsB.loaderCalls + statsC.loaderCalls).toBe(1)
    // Well before waitTimeout (30 s): the lease expiry, not a timeout, let them go.
    expect(took).toBeLessThan(15_000)

    // Nothing is stuck: the key is served from the cache, and both survivors keep working.
    expect(await b.request('getOrSet', { key: 'hot', value: 'again' })).toBe(answerB)
    expect(await c.request('getOrSet', { key: 'hot', value: 'again' })).toBe(answerB)
    await b.request('set', { key: 'hot', value: 'written' })
    await eventually(async () => (await c.get('hot')) === 'written', 3000, 'C to see the write')
    expect((await b.stats()).loaderCalls + (await c.stats()).loaderCalls).toBe(1)
  })
})
