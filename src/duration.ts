import { InvalidOptionError } from './errors.js'

/** A duration: a number of milliseconds, or a string such as '250ms', '30s', '10m', '2h', '1d'. */
export type Duration = number | `${number}${'ms' | 's' | 'm' | 'h' | 'd'}`

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }
const DURATION_RE = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/

/**
 * Parses a Duration into milliseconds. `option` names the option in the error message.
 * `Infinity` is accepted only when `allowInfinite` is set; negative, NaN and unparsable values throw.
 */
export function parseDuration(
  value: unknown,
  option: string,
  { allowZero = true, allowInfinite = false }: { allowZero?: boolean; allowInfinite?: boolean } = {},
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
  if (ms === Number.POSITIVE_INFINITY && allowInfinite) return ms
  if (!Number.isFinite(ms)) throw new InvalidOptionError(option, 'duration must be finite')
  if (ms < 0) throw new InvalidOptionError(option, `duration must not be negative, got ${ms}`)
  if (ms === 0 && !allowZero) throw new InvalidOptionError(option, 'duration must be greater than zero')
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
