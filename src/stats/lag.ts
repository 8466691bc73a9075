/**
 * Invalidation lag: how long after a write on one node its invalidation arrived on this one. Kept as a
 * histogram of fixed, roughly logarithmic buckets (a few dozen integers, nothing per message beyond an
 * increment), from which stats() reads percentiles and exporters read the buckets when scraped.
 *
 * A version (and a stamp generation) is the writer's clock reading in milliseconds × 4096 (hlc.ts), so
 * the lag is this node's clock minus that: millisecond resolution, and it includes the clock skew between
 * the two servers (negative readings count as 0).
 */

/** Upper bounds of the buckets, in ms; a last bucket takes everything above. */
export const LAG_BUCKETS_MS: readonly number[] = [
  1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000,
]

export interface LagSummary {
  /** Invalidations measured. */
  count: number
  /** Estimated from the buckets (the upper bound of the bucket the rank falls in); 0 with no samples. */
  p50: number
  p99: number
  /** The largest lag seen, exactly. */
  max: number
  /** Sum of all lags, in ms. */
  sum: number
  /** Cumulative counts: how many lags were <= each bound (ms; the last bound is Infinity). */
  buckets: { le: number; count: number }[]
}

export class LagHistogram {
  /** counts[i]: samples <= LAG_BUCKETS_MS[i] (and above the previous bound); the last: above them all. */
  readonly counts = new Array<number>(LAG_BUCKETS_MS.length + 1).fill(0)
  count = 0
  sum = 0
  max = 0

  record(lagMs: number): void {
    const lag = Math.max(0, lagMs)
    let i = 0
    while (i < LAG_BUCKETS_MS.length && lag > LAG_BUCKETS_MS[i]!) i++
    this.counts[i]!++
    this.count++
    this.sum += lag
    if (lag > this.max) this.max = lag
  }

  summary(): LagSummary {
    let cumulative = 0
    const buckets = this.counts.map((n, i) => {
      cumulative += n
      return {
        le: i < LAG_BUCKETS_MS.length ? LAG_BUCKETS_MS[i]! : Number.POSITIVE_INFINITY,
        count: cumulative,
      }
    })
    const { count, max, sum } = this
    return { count, p50: this.quantile(0.5), p99: this.quantile(0.99), max, sum, buckets }
  }

  private quantile(q: number): number {
    if (this.count === 0) return 0
    const rank = Math.ceil(q * this.count)
    let seen = 0
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!
      if (seen >= rank) return i < LAG_BUCKETS_MS.length ? Math.min(LAG_BUCKETS_MS[i]!, this.max) : this.max
    }
    return this.max
  }
}
