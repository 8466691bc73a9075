import type { InvalidationMessage } from '../bus/wire.js'

/**
 * Writes that did not reach L2 or the bus because Redis was unreachable. They are retried (every
 * `intervalMs`, and whenever the bus reconnects) until they get through; for each key (or stamp) only the
 * newest pending write is kept. A retry redoes the L2 part first and decides what, if anything, to
 * publish: a write that L2 shows was superseded meanwhile is dropped, not re-announced.
 */
export interface PendingWrite {
  /** Newer pending writes of the same id replace older ones. */
  rank: number
  /** Redoes the L2 part; resolves to the invalidation to publish, or undefined if superseded. */
  redo: () => Promise<InvalidationMessage | undefined>
}

export class PendingWrites {
  private readonly pending = new Map<string, PendingWrite>()
  private timer: NodeJS.Timeout | undefined
  private running = false
  private stopped = false
  /** Pending writes that eventually went through (or were found superseded). */
  recovered = 0

  /**
   * @param limit how many pending writes to keep; one more calls `onOverflow`, which must bring the count
   *   back down (the cache replaces them all by one clear(): see CacheCore.dropPending).
   */
  constructor(
    private readonly publish: (message: InvalidationMessage) => Promise<boolean>,
    private readonly intervalMs: number,
    private readonly limit: number,
    private readonly onOverflow: () => void,
  ) {}

  get size(): number {
    return this.pending.size
  }

  add(id: string, write: PendingWrite): void {
    const existing = this.pending.get(id)
    if (existing !== undefined && existing.rank > write.rank) return
    this.pending.set(id, write)
    if (this.timer === undefined && !this.stopped) {
      this.timer = setInterval(() => void this.retry(), this.intervalMs)
      this.timer.unref()
    }
    if (this.pending.size > this.limit) this.onOverflow()
  }

  /** Forgets every pending write. */
  clear(): void {
    this.pending.clear()
  }

  /** Published, or L2 done but the bus failed: remember just the announcement. */
  addAnnouncement(
    id: string,
    rank: number,
    message: InvalidationMessage,
    stillCurrent?: () => Promise<boolean>,
  ): void {
    this.add(id, {
      rank,
      redo: async () => (stillCurrent === undefined || (await stillCurrent()) ? message : undefined),
    })
  }

  async retry(): Promise<void> {
    if (this.running || this.pending.size === 0) return
    this.running = true
    try {
      for (const [id, write] of [...this.pending]) {
        if (this.pending.get(id) !== write) continue
        let message: InvalidationMessage | undefined
        try {
          message = await write.redo()
        } catch {
          continue // still unreachable; next round
        }
        if (message !== undefined && !(await this.publish(message))) {
          // L2 is done; only the announcement is left to make.
          if (this.pending.get(id) === write)
            this.pending.set(id, { rank: write.rank, redo: async () => message })
          continue
        }
        if (this.pending.get(id) === write) this.pending.delete(id)
        this.recovered++
      }
    } finally {
      this.running = false
      if (this.pending.size === 0) this.stopTimer()
    }
  }

  stop(): void {
    this.stopped = true
    this.stopTimer()
  }

  private stopTimer(): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
  }
}
