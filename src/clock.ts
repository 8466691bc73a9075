/**
 * The source of time for every TTL, grace period, timeout and sweep. Inject a fake one in tests.
 * `now()` returns milliseconds since the epoch: versions and expiry times are compared across processes,
 * so a monotonic-only clock would not do.
 */
export interface Clock {
  now(): number
}

export const systemClock: Clock = { now: Date.now }

/** A manually advanced clock for deterministic tests and simulations. */
export class ManualClock implements Clock {
  private current: number
  constructor(start = 1_700_000_000_000) {
    this.current = start
  }
  now(): number {
    return this.current
  }
  advance(ms: number): void {
    this.current += ms
  }
  set(ms: number): void {
    this.current = ms
  }
}
