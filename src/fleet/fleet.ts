/**
 * The fleet view: every node publishes a small heartbeat on the bus every `interval` (its id, name,
 * library version, uptime, bus health and a few counters), and `cache.fleet()` returns what every live
 * node last reported, this one included, so one node can show the whole fleet's hit rates and health.
 * A node that has not reported for `timeout` drops out.
 *
 * Heartbeats are a message kind of their own (bus/wire.ts, kind 3): nodes of an older version ignore
 * them as unknown, and they are not counted with invalidations. What another node reports is untrusted
 * (guarantee 7): a report is kept only if it has the expected shape with finite, non-negative numbers and
 * short strings, at most MAX_NODES nodes are remembered, and a body larger than MAX_HEARTBEAT_BYTES is
 * dropped unread; everything else is counted in stats().bus.dropped and ignored.
 */
import type { HeartbeatMessage } from '../bus/wire.js'
import { encodeHeartbeat, MAX_HEARTBEAT_BYTES } from '../bus/wire.js'
import type { Clock } from '../clock.js'
import type { CacheStats, StatsCounters } from '../stats/stats.js'
import { VERSION } from '../version.js'

/** Nodes remembered at most: past it, the one heard from longest ago is forgotten. */
const MAX_NODES = 1024
/** Strings in a report (name, version) are cut to this many characters. */
const MAX_STRING = 128

/** What one node reports of itself. */
export interface NodeReport {
  /** 16 hex digits: the node's id on the bus. */
  nodeId: string
  /** fleet.name, or '<hostname>:<pid>'. */
  name: string
  /** The coherent-cache version it runs. */
  version: string
  uptimeMs: number
  /** Milliseconds since this node heard the report (0 for this node itself). */
  ageMs: number
  /** This node itself. */
  self: boolean
  bus: { connected: boolean; reconnects: number; lagP50Ms: number; lagP99Ms: number }
  l1: { hits: number; misses: number; hitRate: number; size: number }
  l2: { hits: number; misses: number; hitRate: number; errors: number; circuit: string }
  loads: { calls: number; errors: number; coalesced: number }
  staleServed: number
  /** Writes waiting in the outage queue. */
  pending: number
}

type Report = Omit<NodeReport, 'ageMs' | 'self'>

export interface FleetParts {
  nodeId: Buffer
  name: string
  clock: Clock
  intervalMs: number
  timeoutMs: number
  counters: StatsCounters
  stats: () => CacheStats
  publish: (bytes: Uint8Array) => Promise<boolean>
}

export class Fleet {
  private readonly startedAt: number
  private readonly nodes = new Map<string, { report: Report; heardAt: number }>()
  private timer: NodeJS.Timeout | undefined

  constructor(private readonly parts: FleetParts) {
    this.startedAt = parts.clock.now()
  }

  /** Starts the heartbeat: one now, then every interval. */
  start(): void {
    if (this.timer !== undefined) return
    void this.beat()
    this.timer = setInterval(() => void this.beat(), this.parts.intervalMs)
    this.timer.unref()
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
  }

  /** What every live node last reported, this one first. */
  view(): NodeReport[] {
    const now = this.parts.clock.now()
    const reports: NodeReport[] = [{ ...this.report(), ageMs: 0, self: true }]
    for (const [id, { report, heardAt }] of this.nodes) {
      if (now - heardAt > this.parts.timeoutMs) {
        this.nodes.delete(id)
        continue
      }
      reports.push({ ...report, ageMs: Math.max(0, now - heardAt), self: false })
    }
    return reports
  }

  /** A heartbeat of another node. */
  receive(message: HeartbeatMessage): void {
    const report = parseReport(message)
    if (report === undefined) {
      this.parts.counters.busDropped++
      return
    }
    // Re-inserted so that the map's order is the order nodes were last heard from.
    this.nodes.delete(report.nodeId)
    this.nodes.set(report.nodeId, { report, heardAt: this.parts.clock.now() })
    if (this.nodes.size > MAX_NODES) this.nodes.delete(this.nodes.keys().next().value!)
  }

  private async beat(): Promise<void> {
    const body = JSON.stringify(this.report())
    if (Buffer.byteLength(body) <= MAX_HEARTBEAT_BYTES)
      await this.parts.publish(encodeHeartbeat(this.parts.nodeId, body))
  }

  private report(): Report {
    const stats = this.parts.stats()
    return {
      nodeId: this.parts.nodeId.toString('hex'),
      name: this.parts.name,
      version: VERSION,
      uptimeMs: this.parts.clock.now() - this.startedAt,
      bus: {
        connected: stats.bus.connected,
        reconnects: stats.bus.reconnects,
        lagP50Ms: stats.bus.lag.p50,
        lagP99Ms: stats.bus.lag.p99,
      },
      l1: { hits: stats.l1.hits, misses: stats.l1.misses, hitRate: stats.l1.hitRate, size: stats.l1.size },
      l2: {
        hits: stats.l2.hits,
        misses: stats.l2.misses,
        hitRate: stats.l2.hitRate,
        errors: stats.l2.errors,
        circuit: stats.l2.circuit,
      },
      loads: { calls: stats.loads.calls, errors: stats.loads.errors, coalesced: stats.loads.coalesced },
      staleServed: stats.staleServed,
      pending: stats.pending,
    }
  }
}

/** A report of the expected shape, or undefined. Nothing of the input is kept but checked fields. */
function parseReport(message: HeartbeatMessage): Report | undefined {
  let raw: unknown
  try {
    raw = JSON.parse(message.body)
  } catch {
    return undefined
  }
  const nodeId = message.origin.toString('hex')
  if (!isObject(raw) || raw.nodeId !== nodeId) return undefined
  const { bus, l1, l2, loads } = raw
  if (!isObject(bus) || !isObject(l1) || !isObject(l2) || !isObject(loads)) return undefined
  const count = (value: unknown) =>
    typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined
  const rate = (value: unknown) =>
    count(value) !== undefined && (value as number) <= 1 ? (value as number) : undefined
  const text = (value: unknown) => (typeof value === 'string' ? value.slice(0, MAX_STRING) : undefined)
  const report: Report = {
    nodeId,
    name: text(raw.name)!,
    version: text(raw.version)!,
    uptimeMs: count(raw.uptimeMs)!,
    bus: {
      connected: bus.connected === true,
      reconnects: count(bus.reconnects)!,
      lagP50Ms: count(bus.lagP50Ms)!,
      lagP99Ms: count(bus.lagP99Ms)!,
    },
    l1: {
      hits: count(l1.hits)!,
      misses: count(l1.misses)!,
      hitRate: rate(l1.hitRate)!,
      size: count(l1.size)!,
    },
    l2: {
      hits: count(l2.hits)!,
      misses: count(l2.misses)!,
      hitRate: rate(l2.hitRate)!,
      errors: count(l2.errors)!,
      circuit: text(l2.circuit)!,
    },
    loads: { calls: count(loads.calls)!, errors: count(loads.errors)!, coalesced: count(loads.coalesced)! },
    staleServed: count(raw.staleServed)!,
    pending: count(raw.pending)!,
  }
  return hasNoHoles(report) ? report : undefined
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Every field was present and valid (the checks above give undefined otherwise). */
function hasNoHoles(value: object): boolean {
  for (const field of Object.values(value)) {
    if (field === undefined) return false
    if (typeof field === 'object' && !hasNoHoles(field)) return false
  }
  return true
}
