/**
 * The load generator: what the users of the application do. It sends requests at a steady rate to the
 * nodes in turn (as a load balancer would): Zipf-distributed reads of users, some updates, and, when a
 * scene asks for it, reads of the slow report. Between requests it keeps two measurements of its own:
 *
 * - **Stale reads observed**: a read that started after an update of that user had been acknowledged
 *   (its PUT answered, with the new version) and still returned an older version. The generator knows
 *   every version it was told of, so it checks every read, on every node.
 * - **Invalidation lag**: a probe that every `probeEveryMs` updates a user on one node (A) and then reads
 *   it on another node (B) until B returns the new version; the lag is the time from A's answer to B's
 *   first answer with the new version (it includes one HTTP request to B on loopback). B read the user
 *   just before the update, so it had it cached. B is asked again at once, then after pauses growing
 *   to PROBE_MAX_PAUSE_MS, so a lag of more than a few milliseconds is measured to within that pause.
 *
 * Requests are open-loop (the rate does not drop when answers are slow) up to `maxInFlight` at once;
 * past that, the request is counted as skipped instead of queued, so a slow fleet sees no burst later.
 */
import http from 'node:http'
import { zipfGenerator } from '../tools/zipf.js'
import type { User } from './database/database.js'
import type { WriteStrategy } from './node/service.js'

export interface LoadProfile {
  /** Requests per second, over all nodes. */
  rate: number
  /** Share of requests that update a user (0..1). */
  updateShare: number
  /** Share of requests that read the slow report, the hot key (0..1). */
  reportShare: number
  /** Pause between two invalidation-lag probes. */
  probeEveryMs: number
  /** How the nodes apply updates (see writeStrategies in node/service.ts). */
  writeStrategy: WriteStrategy
}

export interface LoadTarget {
  readonly id: string
  readonly url: string
}

/** What the generator saw on one node since the last window. */
export interface NodeWindow {
  requests: number
  errors: number
  staleReads: number
  /** Invalidation lags measured with this node as the reader (B), in ms. */
  lags: number[]
  /** Probes whose new version this node had not returned after PROBE_TIMEOUT_MS. */
  lagTimeouts: number
}

export interface LoadWindow {
  /** Requests not sent because maxInFlight were already waiting. */
  skipped: number
  nodes: Map<string, NodeWindow>
}

export interface LoadOptions {
  users: number
  /** Zipf exponent. @default 1 */
  zipfExponent?: number
  /** @default 64 */
  maxInFlight?: number
  /** @default Math.random */
  random?: () => number
}

const TICK_MS = 10
// A probe gives up on a node that has not shown the new version after this long (longer than the nodes'
// l1.ttl, the bound on staleness when invalidations cannot arrive).
const PROBE_TIMEOUT_MS = 15_000
// A probe reads again at once, then backs off up to this pause, so a long lag does not flood the node.
const PROBE_MAX_PAUSE_MS = 50
const REQUEST_TIMEOUT_MS = 5_000
// The first failed requests are kept, to say what went wrong.
const MAX_FAILURES_KEPT = 10

export class LoadGenerator {
  private profile: LoadProfile
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 64 })
  private readonly random: () => number
  private readonly pickUser: () => number
  private readonly pickHotUser: () => number
  private readonly maxInFlight: number
  /** The newest version of each user that an update has acknowledged. */
  private readonly acked = new Map<number, number>()
  private window: LoadWindow
  private timer: NodeJS.Timeout | undefined
  private running = false
  private budget = 0
  private last = 0
  private next = 0
  private readonly inFlight = new Set<Promise<void>>()
  private probing: Promise<void> | undefined
  /** The first failed requests (node, request, status and body or error). */
  readonly failures: string[] = []

  constructor(
    private readonly nodes: readonly LoadTarget[],
    profile: LoadProfile,
    options: LoadOptions,
  ) {
    this.profile = { ...profile }
    this.random = options.random ?? Math.random
    // User ids are 1..users, the most popular first; the generator draws ranks from 0.
    const exponent = options.zipfExponent ?? 1
    const ranks = zipfGenerator(options.users, exponent, this.random)
    const hotRanks = zipfGenerator(Math.min(100, options.users), exponent, this.random)
    this.pickUser = () => ranks() + 1
    this.pickHotUser = () => hotRanks() + 1
    this.maxInFlight = options.maxInFlight ?? 64
    this.window = this.emptyWindow()
  }

  start(): void {
    if (this.running) return
    this.running = true
    this.last = performance.now()
    this.timer = setInterval(() => this.tick(), TICK_MS)
    this.probing = this.probeLoop()
  }

  /** Changes the profile from now on (scenes call this). */
  setProfile(changes: Partial<LoadProfile>): void {
    Object.assign(this.profile, changes)
  }

  get currentProfile(): Readonly<LoadProfile> {
    return this.profile
  }

  /** What was seen since the last call. */
  takeWindow(): LoadWindow {
    const window = this.window
    this.window = this.emptyWindow()
    return window
  }

  /** Stops sending and waits for the requests in flight. */
  async stop(): Promise<void> {
    this.running = false
    clearInterval(this.timer)
    await this.probing
    await Promise.allSettled([...this.inFlight])
    this.agent.destroy()
  }

  private emptyWindow(): LoadWindow {
    const nodes = new Map<string, NodeWindow>()
    for (const node of this.nodes) {
      nodes.set(node.id, { requests: 0, errors: 0, staleReads: 0, lags: [], lagTimeouts: 0 })
    }
    return { skipped: 0, nodes }
  }

  private tick(): void {
    const now = performance.now()
    this.budget += ((now - this.last) / 1000) * this.profile.rate
    this.last = now
    for (; this.budget >= 1; this.budget--) {
      if (this.inFlight.size >= this.maxInFlight) {
        this.window.skipped++
        continue
      }
      const node = this.nodes[this.next++ % this.nodes.length]!
      const dice = this.random()
      const { updateShare, reportShare } = this.profile
      const request =
        dice < updateShare
          ? this.updateUser(node, this.pickUser())
          : dice < updateShare + reportShare
            ? this.readReport(node)
            : this.readUser(node, this.pickUser())
      const tracked: Promise<void> = request.then(
        () => {
          this.inFlight.delete(tracked)
        },
        () => {
          this.inFlight.delete(tracked)
        },
      )
      this.inFlight.add(tracked)
    }
  }

  /**
   * Reads a user on `node`; counts the read as stale if it is older than an acknowledged update (the
   * probe's reads are not counted: it measures how long staleness lasts, in reads of its own choosing).
   */
  private async readUser(node: LoadTarget, id: number, probing = false): Promise<number | undefined> {
    const required = this.acked.get(id) ?? 0
    const user = await this.send<User>(node, 'GET', `/users/${id}`)
    if (user === undefined) return undefined
    if (user.version < required && !probing) this.windowOf(node).staleReads++
    return user.version
  }

  private async updateUser(node: LoadTarget, id: number): Promise<number | undefined> {
    const user = await this.send<User>(node, 'PUT', `/users/${id}?strategy=${this.profile.writeStrategy}`)
    if (user === undefined) return undefined
    if (user.version > (this.acked.get(id) ?? 0)) this.acked.set(id, user.version)
    return user.version
  }

  private async readReport(node: LoadTarget): Promise<void> {
    await this.send(node, 'GET', '/report')
  }

  private async probeLoop(): Promise<void> {
    while (this.running) {
      await sleep(this.profile.probeEveryMs)
      if (!this.running) break
      const count = this.nodes.length
      const w = Math.floor(this.random() * count)
      const writer = this.nodes[w]!
      // Another node than the writer, when there is one.
      const reader =
        count === 1 ? writer : this.nodes[(w + 1 + Math.floor(this.random() * (count - 1))) % count]!
      await this.probe(writer, reader, this.pickHotUser()).catch(() => {})
    }
  }

  private async probe(writer: LoadTarget, reader: LoadTarget, id: number): Promise<void> {
    await this.readUser(reader, id, true)
    const version = await this.updateUser(writer, id)
    if (version === undefined) return
    const acknowledged = performance.now()
    for (let pause = 0; ; pause = Math.min(PROBE_MAX_PAUSE_MS, pause * 2 || 1)) {
      if (pause > 0) await sleep(pause)
      const seen = await this.readUser(reader, id, true)
      const elapsed = performance.now() - acknowledged
      if (seen !== undefined && seen >= version) {
        this.windowOf(reader).lags.push(elapsed)
        return
      }
      if (elapsed > PROBE_TIMEOUT_MS || !this.running) {
        this.windowOf(reader).lagTimeouts++
        return
      }
    }
  }

  private windowOf(node: LoadTarget): NodeWindow {
    return this.window.nodes.get(node.id)!
  }

  /** One request; undefined (and an error counted) for anything but a 2xx answer. */
  private async send<T>(node: LoadTarget, method: string, path: string): Promise<T | undefined> {
    this.windowOf(node).requests++
    let failure: string
    try {
      const { status, body } = await request(this.agent, method, node.url + path)
      if (status >= 200 && status < 300) return JSON.parse(body) as T
      failure = `${status} ${body.slice(0, 200)}`
    } catch (error) {
      failure = String((error as Error)?.message ?? error)
    }
    this.windowOf(node).errors++
    if (this.failures.length < MAX_FAILURES_KEPT)
      this.failures.push(`${node.id} ${method} ${path}: ${failure}`)
    return undefined
  }
}

function request(agent: http.Agent, method: string, url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      )
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`${method} ${url} timed out`)))
    req.on('error', reject)
    req.end()
  })
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
