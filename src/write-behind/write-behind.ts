/**
 * Write-behind (guarantee 6): `writeBehind(key, value)` makes the value visible at once on every node and
 * hands the database write to a durable queue, from which `write(batch)` receives it later, batched,
 * coalesced per key, in order per key, retried, and dead-lettered when it keeps failing.
 * (The queue's bytes are in entries.ts, its retry delays in backoff.ts and its storage behind QueueLog; what
 * stays here, accepting, the turn under a lease, scheduling and draining, is one state machine per
 * partition, which is why it is one module of several hundred lines.)
 *
 * Accepting a write: first the queue (XADD to the key's partition stream), then the cache write, and only
 * then does writeBehind resolve. Queue first, so that a cache never shows a value that is not on its way
 * to the database (a failed append rejects the call and writes nothing). The cache write is ordered by the
 * queue position (RemoteStore.setIf with a 'queue' order): of two nodes writing one key at once, the cache
 * keeps the value that is last in the stream, which is also the one the database gets last.
 *
 * The queue: `partitions` streams (keys.ts), a key always in the same one (xxHash32 of its name), on a
 * Redis Cluster spread over the shards by hash tags. Each stream has one consumer group. Per-key order
 * needs one consumer per stream at a time: entries of one stream handed to two consumers could be written
 * in either order. So a node consumes a partition only while it holds the partition's lease (SET NX PX,
 * renewed every leaseTtl/3 while it works, released when the partition is drained). A node that dies
 * stops renewing; once its lease expires another node takes the partition and, before reading anything
 * new, claims every entry the dead node had read but not acknowledged (XAUTOCLAIM from 0-0): those are
 * older than anything unread, so the order per key holds across the takeover. The lease's expiry is the
 * idle time after which a dead node's entries are claimed.
 *
 * A turn on a partition (turn()): claim, then read (XREADGROUP >) into buckets, one per key, each holding
 * the newest value (highest version) and the ids of every entry it replaced (coalescing); write the ready
 * buckets, at most batchSize, oldest first; acknowledge and delete what was written (XACK + XDEL, one
 * script); a bucket that failed waits (exponential backoff with jitter, backoff.ts) and takes in whatever
 * newer values of its key arrive meanwhile, so nothing of that key is written past it; after maxRetries it
 * moves to the partition's dead-letter stream (one script with the acknowledgement), an event fires and
 * stats() counts it. One batch at a time per partition, `concurrency` partitions at a time per node.
 *
 * At least once, in order per key: an entry is acknowledged only after `write` returned, so a crash in
 * between writes it again (the same or a newer value, never an older one, since a key's values are
 * delivered newest-first-wins and its older entries are acknowledged with it). Limits (README): a node
 * that stalls longer than leaseTtl while holding a lease (a long GC pause, a frozen VM) can write a batch
 * after its successor wrote newer values of the same keys; a re-driven dead letter is older than what the
 * database may hold by then (its `version` says so); and durability is Redis': what Redis loses (no
 * appendonly, a failover to a replica that had not received the entry) is lost. With an in-process queue
 * (memoryStore, or no L2), nothing survives the process.
 */
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { FlushTimeoutError, InvalidOptionError, QueueUnavailableError } from '../errors.js'
import type { NamespaceState } from '../keys.js'
import type { ResolvedWriteBehind, WriteBehindItem, WriteOptions } from '../options.js'
import { xxh32String } from '../ring/xxhash32.js'
import type { CacheRuntime } from '../runtime.js'
import { decode } from '../serialization/codec.js'
import { writeBehindChannel } from '../stats/events.js'
import { MemoryQueueLog } from '../stores/memory-queue.js'
import { backoffDelay } from './backoff.js'
import {
  acceptedAtOf,
  type BuriedWrite,
  consumerVersionOf,
  decodeBuried,
  decodeQueued,
  encodeBuried,
  encodeQueued,
  type QueuedWrite,
  versionOf,
} from './entries.js'
import type { QueueEntry, QueueLog } from './queue-log.js'

const GROUP = 'coherent-cache'
const MAX_HELD = 10_000 // entries a turn holds (read, not yet written) before it stops reading: bounds memory, and the window coalescing works over
const READ_CHUNK = 1_000 // entries per XREADGROUP
const TURN_BATCHES = 16 // batches a turn writes before yielding its slot to a partition that waits
const IDLE_POLLS = 2 // empty polls (flushInterval apart) before a turn gives its partition up
const FLUSH_POLL_MS = 20 // how often flush() looks at the streams
const DEAD_PAGE = 100 // dead letters read per call when listing or re-driving them all

/** A dead letter: a write that failed maxRetries + 1 times. */
export interface DeadLetter {
  /** Its handle for redriveDeadLetters / discardDeadLetters: `<partition>:<stream id>`. */
  id: string
  key: string
  namespace: string
  value: unknown
  version: number
  acceptedAt: number
  attempts: number
  /** The last failure: the error write() threw, or that it reported the key as not written. */
  error: string
  deadAt: number
}

interface Partition {
  index: number
  stream: string
  dead: string
  lease: string
  /** Wakes the turn's current wait (set while one runs). */
  wake: (() => void) | undefined
  /** A turn found the lease held by another node: don't try again before this (performance.now()). */
  elsewhereUntil: number
}

/** What a turn holds of one key: the newest value, and every entry id it stands for. */
interface Bucket {
  id: string
  write: QueuedWrite
  ids: string[]
  firstId: string
  /** When this node first saw an entry of the bucket (its clock): a partial batch waits flushInterval from it. */
  seenAt: number
  failures: number
  retryAt: number
  error: string
}

export class WriteBehind {
  readonly durable: boolean
  /** Entries in the queue at the last poll (all partitions, every node's). */
  depth = 0
  private readonly log: QueueLog
  private readonly partitions: Partition[]
  private readonly running = new Map<number, Promise<void>>()
  private readonly lastLengths: number[]
  private readonly consumer: string
  private readonly timer: NodeJS.Timeout
  private cursor = 0
  private flushes = 0
  private stopped = false

  constructor(
    private readonly rt: CacheRuntime,
    private readonly o: ResolvedWriteBehind,
  ) {
    this.log = rt.options.l2?.queue ?? new MemoryQueueLog(rt.options.clock)
    this.durable = this.log.durable
    this.consumer = `${rt.coherence.nodeId.toString('hex')}-${process.pid}`
    this.partitions = Array.from({ length: o.partitions }, (_, index) => ({
      index,
      ...rt.keys.writeBehind(index),
      wake: undefined,
      elsewhereUntil: 0,
    }))
    this.lastLengths = this.partitions.map(() => 0)
    this.timer = setInterval(() => void this.schedule(), o.flushInterval)
    this.timer.unref()
  }

  // ---- accepting ------------------------------------------------------------------------------------

  /** Queues the database write of `value` (durably, before resolving), then writes the cache. */
  async accept(
    rel: string,
    key: string,
    ns: NamespaceState,
    value: unknown,
    payload: Uint8Array,
    opts: WriteOptions,
  ): Promise<void> {
    const rt = this.rt
    const p = this.partitions[xxh32String(rel) % this.partitions.length]!
    const bytes = encodeQueued({ namespace: ns.path, key, payload, version: 0, acceptedAt: 0 })
    let id: string
    try {
      id = await this.call('writeBehind append', () => this.log.append(p.stream, bytes), rt.deadline())
    } catch (cause) {
      rt.counters.l2Errors++
      throw new QueueUnavailableError(key, { cause })
    }
    rt.counters.wbAccepted++
    const version = versionOf(id)
    const { remote } = rt
    if (remote?.conditional && version !== undefined) {
      const condition = {
        order: { domain: 'queue' as const, value: BigInt(version) },
        tombstoneTtlMs: rt.lifetimes.tombstoneTtl(),
      }
      await rt.writes.writeIf(
        rel,
        value,
        payload,
        opts,
        ns,
        { condition, ifUnreachable: 'retry' },
        rt.deadline(),
      )
    } else if (remote !== undefined && version === undefined) {
      // No order to write by (see versionOf): the safe cache write is a delete.
      await rt.writes.deleteMany([rel])
    } else {
      await rt.writes.write(rel, value, payload, opts, ns, undefined, rt.deadline()).done
    }
    this.kick(p)
  }

  // ---- flushing and closing -------------------------------------------------------------------------

  /** Resolves once every entry in the queue when it was called is written (or dead-lettered). */
  async flush(timeoutMs = Number.POSITIVE_INFINITY): Promise<void> {
    const until = performance.now() + timeoutMs
    const marks = await this.retrying(until, timeoutMs, () =>
      Promise.all(this.partitions.map((p) => this.call('flush', () => this.log.lastId(p.stream)))),
    )
    this.flushes++
    try {
      for (const [i, mark] of marks.entries()) {
        if (mark === undefined) continue
        const p = this.partitions[i]!
        for (;;) {
          const holds = await this.retrying(until, timeoutMs, () =>
            this.call('flush', () => this.log.holdsUpTo(p.stream, mark)),
          )
          if (!holds) break
          if (performance.now() >= until) throw new FlushTimeoutError(timeoutMs)
          if (this.running.has(i)) p.wake?.()
          else this.start(p)
          await sleep(Math.min(FLUSH_POLL_MS, Math.max(1, until - performance.now())))
        }
      }
    } finally {
      this.flushes--
    }
  }

  /** Drains the queue (at most closeTimeout), then stops every turn and the timer. */
  async close(): Promise<void> {
    const until = performance.now() + this.o.closeTimeout
    try {
      await this.flush(this.o.closeTimeout)
    } catch {
      // Not drained in time (or Redis is away): a durable queue keeps it for the next node.
    }
    this.stopped = true
    clearInterval(this.timer)
    for (const p of this.partitions) p.wake?.()
    // Turns end after their batch in flight; a write() that hangs is not waited for past closeTimeout
    // (what it holds stays pending, and is written again by the next node to take the partition).
    const turns = Promise.allSettled([...this.running.values()])
    const left = until - performance.now()
    if (left === Number.POSITIVE_INFINITY) await turns
    else await Promise.race([turns, sleep(Math.max(0, left), undefined, { ref: false })])
  }

  // ---- dead letters ---------------------------------------------------------------------------------

  /** Up to `limit` dead letters, oldest first. */
  async deadLetters(limit = DEAD_PAGE): Promise<DeadLetter[]> {
    const found: DeadLetter[] = []
    for (const p of this.partitions) {
      const entries = await this.call('dead letters', () => this.log.range(p.dead, limit))
      for (const entry of entries) {
        const letter = this.letter(p, entry)
        if (letter !== undefined) found.push(letter)
      }
    }
    return found.sort((a, b) => a.deadAt - b.deadAt).slice(0, limit)
  }

  /** Puts dead letters (all of them without `ids`) back into their queues; resolves to how many. */
  redrive(ids?: readonly string[]): Promise<number> {
    return this.eachDead(ids, async (p, entry) => {
      const buried = decodeBuried(entry.bytes)
      const bytes = encodeQueued({
        namespace: buried.namespace,
        key: buried.key,
        payload: buried.payload,
        // Its own order, not the new queue position's: write() can tell it from newer writes of the key.
        version: buried.version,
        acceptedAt: buried.acceptedAt,
      })
      const id = await this.call('redrive', () => this.log.revive(p.dead, entry.id, p.stream, bytes))
      if (id !== undefined) this.kick(p)
      return id !== undefined
    })
  }

  /** Deletes dead letters (all of them without `ids`); resolves to how many. */
  discard(ids?: readonly string[]): Promise<number> {
    return this.eachDead(
      ids,
      async (p, entry) => (await this.call('discard', () => this.log.remove(p.dead, [entry.id]))) === 1,
    )
  }

  // ---- scheduling -----------------------------------------------------------------------------------

  /** Starts turns on partitions that hold entries, while this node has free slots. */
  private async schedule(): Promise<void> {
    if (this.stopped) return
    let lengths: number[]
    try {
      lengths = await this.call('writeBehind poll', () =>
        this.log.lengths(this.partitions.map((p) => p.stream)),
      )
    } catch {
      return // Redis is away; the next tick tries again
    }
    this.depth = lengths.reduce((sum, n) => sum + n, 0)
    const count = this.partitions.length
    for (let i = 0; i < count; i++) this.lastLengths[i] = lengths[i] ?? 0
    for (let k = 0; k < count && this.running.size < this.o.concurrency; k++) {
      const i = (this.cursor + k) % count
      if (this.lastLengths[i]! > 0) this.start(this.partitions[i]!)
    }
    this.cursor = (this.cursor + 1) % count
  }

  /** A write was appended to `p`: wake its turn, or start one if a slot is free. */
  private kick(p: Partition): void {
    if (this.running.has(p.index)) p.wake?.()
    else this.start(p)
  }

  private start(p: Partition): void {
    if (this.stopped || this.running.has(p.index) || this.running.size >= this.o.concurrency) return
    if (performance.now() < p.elsewhereUntil) return
    const run = this.turn(p)
      .catch(() => {})
      .then((worked) => {
        this.running.delete(p.index)
        // A turn that wrote may have left other partitions waiting for its slot.
        if (worked === true && !this.stopped) void this.schedule()
      })
    this.running.set(p.index, run)
  }

  /** Whether a partition this node does not work on held entries at the last poll. */
  private othersWaiting(p: Partition): boolean {
    return this.partitions.some(
      (q) => q !== p && !this.running.has(q.index) && this.lastLengths[q.index]! > 0,
    )
  }

  // ---- one turn on a partition ----------------------------------------------------------------------

  /** Works partition `p` while this node holds its lease (see the module comment); true if it got it. */
  private async turn(p: Partition): Promise<boolean> {
    const { log, o } = this
    const token = randomBytes(12).toString('hex')
    if (!(await this.call('writeBehind lease', () => log.acquire(p.lease, token, o.leaseTtl)))) {
      p.elsewhereUntil = performance.now() + o.flushInterval
      return false
    }
    let lost = false
    const renew = () =>
      this.call('writeBehind lease', () => log.renew(p.lease, token, o.leaseTtl)).then(
        (held) => {
          if (!held) lost = true
          return held
        },
        () => {
          lost = true
          return false
        },
      )
    const renewer = setInterval(() => void renew(), Math.max(1, Math.floor(o.leaseTtl / 3)))
    renewer.unref()
    const buckets = new Map<string, Bucket>()
    try {
      await this.call('writeBehind group', () => log.ensureGroup(p.stream, GROUP))
      await this.hold(
        p,
        buckets,
        await this.call('writeBehind claim', () => log.claim(p.stream, GROUP, this.consumer)),
      )
      let batches = 0
      let emptyPolls = 0
      for (;;) {
        if (lost || this.stopped) return true
        // Read all there is (up to MAX_HELD): the more a turn holds, the more it coalesces.
        let read = 0
        let full = false
        for (let held = heldEntries(buckets); ; ) {
          if (held >= MAX_HELD) {
            full = true
            break
          }
          const count = Math.min(READ_CHUNK, MAX_HELD - held)
          const entries = await this.call('writeBehind read', () =>
            log.read(p.stream, GROUP, this.consumer, count),
          )
          read += entries.length
          held += entries.length
          await this.hold(p, buckets, entries)
          if (entries.length < count) break
        }
        const now = this.rt.options.clock.now()
        const ready = readyBuckets(buckets, now, o.batchSize)
        if (ready.length === 0) {
          if (buckets.size === 0 && read === 0 && (this.flushes > 0 || ++emptyPolls >= IDLE_POLLS))
            return true
          await this.wait(p, nextWait(buckets, now, o.flushInterval))
          continue
        }
        emptyPolls = 0
        // A partial batch waits up to flushInterval (from its oldest entry) for more to coalesce, unless
        // the turn cannot read more, or a flush waits.
        if (ready.length < o.batchSize && !full && this.flushes === 0) {
          const waited = now - Math.min(...ready.map((b) => b.seenAt))
          if (waited < o.flushInterval) {
            await this.wait(p, o.flushInterval - waited)
            continue
          }
        }
        // Still ours? A batch written after the lease passed to another node could overtake its writes.
        if (!(await renew())) return true
        await this.writeBatch(p, buckets, ready)
        batches++
        if (buckets.size === 0 && batches >= TURN_BATCHES && this.othersWaiting(p)) return true
      }
    } finally {
      clearInterval(renewer)
      p.wake = undefined
      // What this turn still holds stays pending in the group: the next turn (here or elsewhere) claims it.
      if (!lost) await this.call('writeBehind lease', () => log.release(p.lease, token)).catch(() => {})
    }
  }

  /** Sorts `entries` into buckets per key (coalescing); undecodable ones are dropped and counted. */
  private async hold(
    p: Partition,
    buckets: Map<string, Bucket>,
    entries: readonly QueueEntry[],
  ): Promise<void> {
    const { counters, options } = this.rt
    const now = options.clock.now()
    const corrupt: string[] = []
    for (const entry of entries) {
      let queued: QueuedWrite
      try {
        queued = decodeQueued(entry.bytes)
      } catch {
        counters.wbCorrupt++
        corrupt.push(entry.id)
        continue
      }
      const write: QueuedWrite = {
        ...queued,
        version: queued.version || consumerVersionOf(entry.id),
        acceptedAt: queued.acceptedAt || acceptedAtOf(entry.id),
      }
      const id = `${write.namespace}\u0000${write.key}`
      const bucket = buckets.get(id)
      if (bucket === undefined) {
        buckets.set(id, {
          id,
          write,
          ids: [entry.id],
          firstId: entry.id,
          seenAt: now,
          failures: 0,
          retryAt: 0,
          error: '',
        })
        continue
      }
      // Coalesced: only the newest value of the key is written (a re-driven old one loses to it).
      bucket.ids.push(entry.id)
      counters.wbCoalesced++
      if (write.version >= bucket.write.version) bucket.write = write
    }
    if (corrupt.length > 0) await this.call('writeBehind ack', () => this.log.ack(p.stream, GROUP, corrupt))
  }

  private async writeBatch(
    p: Partition,
    buckets: Map<string, Bucket>,
    batch: readonly Bucket[],
  ): Promise<void> {
    const { counters } = this.rt
    counters.wbBatches++
    const items: WriteBehindItem[] = []
    const sent: Bucket[] = []
    for (const bucket of batch) {
      const { write } = bucket
      let value: unknown
      try {
        value = decode(write.payload)
      } catch (err) {
        // A value no node can read back: retrying cannot help.
        bucket.failures = this.o.maxRetries + 1
        bucket.error = err instanceof Error ? err.message : String(err)
        await this.bury(p, buckets, bucket)
        continue
      }
      items.push({
        key: write.key,
        namespace: write.namespace,
        value,
        version: write.version,
        acceptedAt: write.acceptedAt,
        attempt: bucket.failures + 1,
      })
      sent.push(bucket)
    }
    if (items.length === 0) return
    let failed: Set<number>
    let error = 'write() reported it as not written'
    try {
      failed = failedOf(await this.o.write(items, { partition: p.index }), items)
    } catch (err) {
      failed = new Set(items.keys())
      error = err instanceof Error ? err.message : String(err)
    }
    const written = sent.filter((_, i) => !failed.has(i))
    if (written.length > 0) {
      // Written: acknowledged. If this fails, the entries stay pending and are written again (at least once).
      await this.call('writeBehind ack', () =>
        this.log.ack(
          p.stream,
          GROUP,
          written.flatMap((b) => b.ids),
        ),
      )
      for (const bucket of written) buckets.delete(bucket.id)
      counters.wbWritten += written.length
    }
    const now = this.rt.options.clock.now()
    for (const i of failed) {
      const bucket = sent[i]!
      bucket.failures++
      bucket.error = error
      if (bucket.failures > this.o.maxRetries) {
        await this.bury(p, buckets, bucket)
        continue
      }
      const delayMs = backoffDelay(
        bucket.failures,
        this.o.retryInitial,
        this.o.retryMax,
        this.rt.options.random,
      )
      bucket.retryAt = now + delayMs
      counters.wbRetries++
      if (writeBehindChannel.hasSubscribers) {
        writeBehindChannel.publish({
          namespace: this.rt.options.namespace,
          event: 'retry',
          key: bucket.write.key,
          keyNamespace: bucket.write.namespace,
          attempt: bucket.failures,
          delayMs,
          error,
        })
      }
    }
  }

  /** Moves a bucket's newest value to the dead letters, acknowledging every entry it stands for. */
  private async bury(p: Partition, buckets: Map<string, Bucket>, bucket: Bucket): Promise<void> {
    const { write } = bucket
    const dead: BuriedWrite = {
      ...write,
      attempts: bucket.failures,
      deadAt: this.rt.options.clock.now(),
      error: bucket.error,
      origin: bucket.ids.at(-1)!,
    }
    const id = await this.call('writeBehind dead letter', () =>
      this.log.bury(p.stream, GROUP, bucket.ids, p.dead, encodeBuried(dead)),
    )
    buckets.delete(bucket.id)
    this.rt.counters.wbDeadLettered++
    if (writeBehindChannel.hasSubscribers) {
      writeBehindChannel.publish({
        namespace: this.rt.options.namespace,
        event: 'dead-letter',
        key: write.key,
        keyNamespace: write.namespace,
        attempts: bucket.failures,
        error: bucket.error,
        id: `${p.index}:${id}`,
      })
    }
  }

  /** Waits `ms` at most; a kick (a write appended here, a flush) ends the wait early. */
  private wait(p: Partition, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        if (p.wake === done) p.wake = undefined
        resolve()
      }
      const timer = setTimeout(done, Math.max(1, ms))
      timer.unref()
      p.wake = done
    })
  }

  // ---- helpers --------------------------------------------------------------------------------------

  /** A store call: through the L2's timeout and circuit breaker when the queue is in L2. */
  private call<T>(operation: string, start: () => Promise<T>, deadline?: number): Promise<T> {
    const remote = this.rt.remote
    return remote === undefined ? start() : remote.call(operation, start, deadline)
  }

  /** `attempt()` until it succeeds or `until` (performance.now()) passes; flush() rides out outages. */
  private async retrying<T>(until: number, timeoutMs: number, attempt: () => Promise<T>): Promise<T> {
    for (;;) {
      try {
        return await attempt()
      } catch (err) {
        if (performance.now() >= until) {
          if (timeoutMs === Number.POSITIVE_INFINITY) throw err
          throw new FlushTimeoutError(timeoutMs)
        }
        await sleep(Math.min(this.o.flushInterval, Math.max(1, until - performance.now())))
      }
    }
  }

  private letter(p: Partition, entry: QueueEntry): DeadLetter | undefined {
    let buried: BuriedWrite
    let value: unknown
    try {
      buried = decodeBuried(entry.bytes)
      value = decode(buried.payload)
    } catch {
      // Not ours (guarantee 7): left out of the list; discardDeadLetters() without ids removes it.
      this.rt.counters.wbCorrupt++
      return undefined
    }
    return {
      id: `${p.index}:${entry.id}`,
      key: buried.key,
      namespace: buried.namespace,
      value,
      version: buried.version,
      acceptedAt: buried.acceptedAt,
      attempts: buried.attempts,
      error: buried.error,
      deadAt: buried.deadAt,
    }
  }

  /** Runs `act` on the dead letters named by `ids` (every one without), counting the ones it did. */
  private async eachDead(
    ids: readonly string[] | undefined,
    act: (p: Partition, entry: QueueEntry) => Promise<boolean>,
  ): Promise<number> {
    let done = 0
    if (ids === undefined) {
      for (const p of this.partitions) {
        let after: string | undefined
        for (;;) {
          const page = await this.call('dead letters', () => this.log.range(p.dead, DEAD_PAGE, after))
          for (const entry of page) if (await act(p, entry)) done++
          if (page.length < DEAD_PAGE) break
          after = page.at(-1)!.id
        }
      }
      return done
    }
    if (!Array.isArray(ids)) throw new InvalidOptionError('ids', 'must be an array of dead letter ids')
    for (const handle of ids) {
      const colon = typeof handle === 'string' ? handle.indexOf(':') : -1
      const p = colon > 0 ? this.partitions[Number(handle.slice(0, colon))] : undefined
      if (p === undefined) throw new InvalidOptionError('ids', `not a dead letter id: ${String(handle)}`)
      const id = handle.slice(colon + 1)
      const [entry] = await this.call('dead letters', () => this.log.range(p.dead, 1, previousId(id)))
      if (entry !== undefined && entry.id === id && (await act(p, entry))) done++
    }
    return done
  }
}

function heldEntries(buckets: Map<string, Bucket>): number {
  let n = 0
  for (const bucket of buckets.values()) n += bucket.ids.length
  return n
}

/** Buckets due now (not waiting for a retry), oldest first, at most `limit`. */
function readyBuckets(buckets: Map<string, Bucket>, now: number, limit: number): Bucket[] {
  const ready: Bucket[] = []
  for (const bucket of buckets.values()) if (bucket.retryAt <= now) ready.push(bucket)
  // Map order is the order buckets were made in, which is stream order: already oldest first.
  return ready.slice(0, limit)
}

/** How long a turn with nothing ready waits: flushInterval, or until the next retry is due. */
function nextWait(buckets: Map<string, Bucket>, now: number, flushInterval: number): number {
  let wait = flushInterval
  for (const bucket of buckets.values()) if (bucket.retryAt > now) wait = Math.min(wait, bucket.retryAt - now)
  return wait
}

/** The indexes of the items write() reported as not written (items or keys it returned). */
function failedOf(result: unknown, items: readonly WriteBehindItem[]): Set<number> {
  const failed = new Set<number>()
  if (result === undefined || result === null || typeof result !== 'object' || !(Symbol.iterator in result)) {
    return failed
  }
  for (const reported of result as Iterable<unknown>) {
    items.forEach((item, i) => {
      if (reported === item || reported === item.key) failed.add(i)
    })
  }
  return failed
}

/** The stream id just below `id`, so that an exclusive range from it starts at `id`. */
function previousId(id: string): string | undefined {
  const dash = id.indexOf('-')
  const ms = Number(id.slice(0, dash))
  const seq = Number(id.slice(dash + 1))
  if (!(Number.isSafeInteger(ms) && Number.isSafeInteger(seq))) return undefined
  return seq > 0 ? `${ms}-${seq - 1}` : ms > 0 ? `${ms - 1}-18446744073709551615` : undefined
}
