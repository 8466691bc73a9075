import type { Clock } from '../clock.js'

/**
 * Versions order writes to the same key across the fleet. A version is a hybrid logical clock
 * reading: wall-clock milliseconds × 4096 plus a counter, so it stays close to real time (a node that
 * restarts, or a key that was deleted and written again, still gets a larger version than before) while
 * strictly increasing on each node. Every version a node sees (from the bus or from L2) is `observe`d,
 * so a node whose clock lags still issues versions above everything it has seen: causally later writes
 * always carry larger versions, and only truly concurrent writes are ordered by clock.
 *
 * Versions stay below 2^53 until the year 2255, so they are exact as JS numbers and as Lua doubles.
 */
const COUNTER_SPACE = 4096 // versions per millisecond before the clock runs ahead of wall time

export class VersionClock {
  private last = 0
  constructor(private readonly clock: Clock) {}

  next(): number {
    const wall = Math.floor(this.clock.now()) * COUNTER_SPACE
    this.last = wall > this.last ? wall : this.last + 1
    return this.last
  }

  observe(version: number): void {
    if (version > this.last) this.last = version
  }
}
