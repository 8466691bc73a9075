/**
 * memoryStore's write-behind queue: streams with consumer groups and leases in this process, with the
 * semantics of the Redis one (redis-queue.ts), so that several caches sharing one memoryStore share one
 * queue as they would share Redis. Nothing here survives the process: write-behind says so
 * (`durable: false`), and the README too.
 */
import type { Clock } from '../clock.js'
import { compareIds, type QueueEntry, type QueueLog } from '../write-behind/queue-log.js'

interface Group {
  /** The id of the last entry delivered by read(). */
  lastDelivered: string
  /** Delivered, not acknowledged: id → consumer. */
  pending: Map<string, string>
}

interface Stream {
  /** By id, in id order (appends only ever add higher ids). */
  entries: Map<string, Uint8Array>
  lastMs: number
  lastSeq: number
  groups: Map<string, Group>
}

export class MemoryQueueLog implements QueueLog {
  readonly durable = false
  private readonly streams = new Map<string, Stream>()
  private readonly leases = new Map<string, { token: string; expiresAt: number }>()

  constructor(private readonly clock: Clock) {}

  async append(stream: string, bytes: Uint8Array): Promise<string> {
    return this.add(this.stream(stream), bytes)
  }

  async lengths(streams: readonly string[]): Promise<number[]> {
    return streams.map((name) => this.streams.get(name)?.entries.size ?? 0)
  }

  async lastId(stream: string): Promise<string | undefined> {
    let last: string | undefined
    for (const id of this.streams.get(stream)?.entries.keys() ?? []) last = id
    return last
  }

  async holdsUpTo(stream: string, id: string): Promise<boolean> {
    const first = this.streams.get(stream)?.entries.keys().next()
    return first !== undefined && first.done !== true && compareIds(first.value, id) <= 0
  }

  async ensureGroup(stream: string, group: string): Promise<void> {
    const s = this.stream(stream)
    if (!s.groups.has(group)) s.groups.set(group, { lastDelivered: '0-0', pending: new Map() })
  }

  async claim(stream: string, group: string, consumer: string): Promise<QueueEntry[]> {
    const s = this.stream(stream)
    const g = this.group(s, group)
    const claimed: QueueEntry[] = []
    for (const id of [...g.pending.keys()].sort(compareIds)) {
      const bytes = s.entries.get(id)
      if (bytes === undefined) {
        g.pending.delete(id)
        continue
      }
      g.pending.set(id, consumer)
      claimed.push({ id, bytes })
    }
    return claimed
  }

  async read(stream: string, group: string, consumer: string, count: number): Promise<QueueEntry[]> {
    const s = this.stream(stream)
    const g = this.group(s, group)
    const read: QueueEntry[] = []
    for (const [id, bytes] of s.entries) {
      if (read.length >= count) break
      if (compareIds(id, g.lastDelivered) <= 0) continue
      g.pending.set(id, consumer)
      g.lastDelivered = id
      read.push({ id, bytes })
    }
    return read
  }

  async ack(stream: string, group: string, ids: readonly string[]): Promise<void> {
    const s = this.stream(stream)
    const g = this.group(s, group)
    for (const id of ids) {
      g.pending.delete(id)
      s.entries.delete(id)
    }
  }

  async bury(
    stream: string,
    group: string,
    ids: readonly string[],
    dead: string,
    bytes: Uint8Array,
  ): Promise<string> {
    const id = this.add(this.stream(dead), bytes)
    await this.ack(stream, group, ids)
    return id
  }

  async range(stream: string, count: number, after?: string): Promise<QueueEntry[]> {
    const found: QueueEntry[] = []
    for (const [id, bytes] of this.streams.get(stream)?.entries ?? []) {
      if (found.length >= count) break
      if (after !== undefined && compareIds(id, after) <= 0) continue
      found.push({ id, bytes })
    }
    return found
  }

  async revive(dead: string, id: string, stream: string, bytes: Uint8Array): Promise<string | undefined> {
    const d = this.streams.get(dead)
    if (d === undefined || !d.entries.delete(id)) return undefined
    return this.add(this.stream(stream), bytes)
  }

  async remove(stream: string, ids: readonly string[]): Promise<number> {
    const s = this.streams.get(stream)
    let removed = 0
    for (const id of ids) if (s?.entries.delete(id)) removed++
    return removed
  }

  async acquire(key: string, token: string, ttlMs: number): Promise<boolean> {
    const now = this.clock.now()
    const lease = this.leases.get(key)
    if (lease !== undefined && lease.expiresAt > now) return false
    this.leases.set(key, { token, expiresAt: now + ttlMs })
    return true
  }

  async renew(key: string, token: string, ttlMs: number): Promise<boolean> {
    const now = this.clock.now()
    const lease = this.leases.get(key)
    if (lease === undefined || lease.token !== token || lease.expiresAt <= now) return false
    lease.expiresAt = now + ttlMs
    return true
  }

  async release(key: string, token: string): Promise<boolean> {
    const lease = this.leases.get(key)
    if (lease === undefined || lease.token !== token || lease.expiresAt <= this.clock.now()) return false
    this.leases.delete(key)
    return true
  }

  private stream(name: string): Stream {
    let s = this.streams.get(name)
    if (s === undefined) {
      s = { entries: new Map(), lastMs: 0, lastSeq: -1, groups: new Map() }
      this.streams.set(name, s)
    }
    return s
  }

  private group(s: Stream, name: string): Group {
    const g = s.groups.get(name)
    if (g === undefined) throw new Error(`NOGROUP no consumer group ${name}`)
    return g
  }

  /** An id as Redis makes one: the clock's milliseconds, or the last ones with the next sequence. */
  private add(s: Stream, bytes: Uint8Array): string {
    const now = Math.floor(this.clock.now())
    if (now > s.lastMs) {
      s.lastMs = now
      s.lastSeq = 0
    } else {
      s.lastSeq++
    }
    const id = `${s.lastMs}-${s.lastSeq}`
    // A copy: the caller may reuse its buffer.
    s.entries.set(id, Uint8Array.from(bytes))
    return id
  }
}
