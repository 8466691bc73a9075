import type { Clock } from '../clock.js'

/**
 * Versions order writes to the same key across the fleet; stamp generations order the invalidations of a
 * tag or namespace. Both are hybrid logical clock readings: wall-clock milliseconds × 4096 plus a counter,
 * so they stay close to real time (a node that restarts, a key deleted and written again, or a stamp that
 * Redis lost and that is bumped again, still gets a larger number than before) while strictly increasing
 * on each node. Every number a node accepts from the bus or from L2 is `observe`d, so a node whose clock
 * lags still proposes numbers above everything it has seen: causally later writes always carry larger
 * versions, and only truly concurrent writes are ordered by clock. L2 has the last word on both
 * (coherence.ts, point 1).
 *
 * Numbers from outside are untrusted (guarantee 7). Only `plausible` ones are observed: non-negative safe
 * integers no further ahead of this node's clock than MAX_LEAD_MS. Observing anything larger (2^53,
 * Infinity, 1e300, or a reading years ahead) would make every later proposal of this node fail the
 * store's checks or overflow, for the life of the process; a node whose clock really is that far ahead
 * is misconfigured, and what it writes is treated as corrupt.
 *
 * Versions stay below 2^53 until the year 2255, so they are exact as JS numbers and as Lua doubles.
 */
const COUNTER_SPACE = 4096 // versions per millisecond before the clock runs ahead of wall time
/** How far ahead of this node's clock a version or generation may be and still be believed. */
export const MAX_LEAD_MS = 3_600_000
/** MAX_LEAD_MS in version units: stores treat a stored version this far above a proposal as garbage. */
export const MAX_VERSION_LEAD = MAX_LEAD_MS * COUNTER_SPACE

export class VersionClock {
  private last = 0
  constructor(private readonly clock: Clock) {}

  next(): number {
    const wall = Math.floor(this.clock.now()) * COUNTER_SPACE
    this.last = wall > this.last ? wall : this.last + 1
    return this.last
  }

  /** Raises this clock to `version` if it is plausible; false (and nothing observed) if it is not. */
  observe(version: number): boolean {
    if (!this.plausible(version)) return false
    if (version > this.last) this.last = version
    return true
  }

  /** A non-negative safe integer no further than MAX_LEAD_MS ahead of this node's clock. */
  plausible(version: number): boolean {
    return (
      Number.isSafeInteger(version) &&
      version >= 0 &&
      version <= (Math.floor(this.clock.now()) + MAX_LEAD_MS) * COUNTER_SPACE
    )
  }
}
