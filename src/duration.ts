import { InvalidOptionError } from './errors.js'

/** A duration: a number of milliseconds, or a string such as '250ms', '30s', '10m', '2h', '1d'. */
export type Duration = number | `${number}${'ms' | 's' | 'm' | 'h' | 'd'}`

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** The longest delay a Node timer takes (a signed 32-bit count of ms); longer ones fire after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1
/** The longest lifetime anything is given (a TTL, a grace period): 100 years. Redis takes it as PX. */
export const MAX_LIFETIME_MS = 100 * 365 * 86_400_000
const DURATION_RE = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/

/**
 * Parses a Duration into milliseconds. `option` names the option in the error message. Negative, NaN and
 * unparsable values throw. A duration above `max` (by default MAX_LIFETIME_MS; pass MAX_TIMER_MS for one
 * that a timer waits for) is clamped: to Infinity when `allowInfinite` ("no expiry", "no timeout"), else
 * to `max`. So `ttl: '200000000000d'` means what it says, never a PX Redis rejects, and `l2Timeout:
 * '30d'` never a timer that overflows and fires at once.
 */
export function parseDuration(
  value: unknown,
  option: string,
  {
    allowZero = true,
    allowInfinite = false,
    max = MAX_LIFETIME_MS,
  }: { allowZero?: boolean; allowInfinite?: boolean; max?: number } = {},
): number {
  let ms: number
  if (typeof value === 'number') {
    ms = value
  } else if (typeof value === 'string') {
    const match = DURATION_RE.exec(value.trim())
    if (!match) {
      throw new InvalidOptionError(
        option,
        `cannot parse duration ${JSON.stringify(value)}; use a number of milliseconds or a string like '250ms', '30s', '10m', '2h', '1d'`,
      )
    }
    ms = Number(match[1]) * UNIT_MS[match[2]!]!
  } else {
    throw new InvalidOptionError(
      option,
      `expected a duration (number of ms or a string like '30s'), got ${describe(value)}`,
    )
  }
  if (Number.isNaN(ms)) throw new InvalidOptionError(option, 'duration is NaN')
  if (ms < 0) throw new InvalidOptionError(option, `duration must not be negative, got ${ms}`)
  if (ms === 0 && !allowZero) throw new InvalidOptionError(option, 'duration must be greater than zero')
  if (ms > max) return allowInfinite ? Number.POSITIVE_INFINITY : max
  return ms
}

export function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'string')
    return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`
  if (typeof value === 'object') return `an object (${(value as object).constructor?.name ?? 'Object'})`
  return `${typeof value} ${String(value)}`
}
