/**
 * Retry delays of write-behind: exponential, capped, with "equal jitter" (half the delay fixed, half
 * random), so that keys that failed together do not all come back together, and no retry comes sooner
 * than half its step (full jitter would retry some at once, against a database that just failed).
 */

/** The delay before retry `attempt` (1 for the first): a value in [d/2, d], d = min(max, initial × 2^(attempt-1)). */
export function backoffDelay(
  attempt: number,
  initialMs: number,
  maxMs: number,
  random: () => number,
): number {
  const step = Math.min(maxMs, initialMs * 2 ** Math.max(0, attempt - 1))
  return step / 2 + random() * (step / 2)
}
