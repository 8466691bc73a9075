/**
 * Access traces for bench:hitrate: readers for the public trace files in bench/traces/ (see its README for
 * sources and licences), and generators for the workload classes those files do not cover.
 *
 * A trace is an Int32Array of integer keys; the benchmark turns them into strings once.
 * .gz files are read with Node's zlib; .xz with the `xz` binary (xz-utils, on every Debian machine), since
 * Node has no xz decoder and one file did not justify a dependency (docs/decisions.md).
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { gunzipSync } from 'node:zlib'
import { mulberry32 } from './random.js'
import { zipfGenerator } from './zipf.js'

const TRACES_DIR = path.join(import.meta.dirname, '..', 'bench', 'traces')

/** A LIRS trace: gzip text, one integer key per line; `*` lines are simulator checkpoints, not keys. */
export function readLirsTrace(file: string): Int32Array {
  const text = gunzipSync(readFileSync(path.join(TRACES_DIR, file))).toString('latin1')
  const keys: number[] = []
  for (const line of text.split('\n')) {
    const trimmed = line.trim()
    if (trimmed === '' || trimmed === '*') continue
    const key = Number(trimmed)
    if (!Number.isInteger(key)) throw new Error(`${file}: not an integer key: ${JSON.stringify(trimmed)}`)
    keys.push(key)
  }
  return Int32Array.from(keys)
}

/** A cache2k trace: xz-compressed big-endian 32-bit integer keys, back to back. */
export function readCache2kTrace(file: string): Int32Array {
  let raw: Buffer
  try {
    raw = execFileSync('xz', ['--decompress', '--stdout', path.join(TRACES_DIR, file)], {
      maxBuffer: 1 << 30,
    })
  } catch (error) {
    throw new Error(`${file}: could not run \`xz\` (apt-get install xz-utils): ${(error as Error).message}`)
  }
  if (raw.length % 4 !== 0) throw new Error(`${file}: ${raw.length} bytes is not a whole number of keys`)
  const keys = new Int32Array(raw.length / 4)
  for (let i = 0; i < keys.length; i++) keys[i] = raw.readInt32BE(4 * i)
  return keys
}

/**
 * Recency-biased workload (the class of Caffeine's Corda trace): `live` keys are in use at any time; each
 * access picks one of them at random. A key is used 1 to 2 × `meanUses` - 1 times (uniform, mean `meanUses`)
 * and then retired for good, replaced by a brand-new key. So keys are re-used a few times shortly after
 * their first use and never after: frequency says nothing, recency says everything. With a cache larger
 * than `live`, LRU hits every access but a key's first (1 - 1 / meanUses), which is also the optimum.
 * Keys are numbered from `firstKey`.
 */
export function recencyBiasedTrace(
  accesses: number,
  { live = 800, meanUses = 3, seed = 1, firstKey = 0 } = {},
): Int32Array {
  const random = mulberry32(seed)
  const keys = new Int32Array(live)
  const remaining = new Int32Array(live)
  let next = firstKey
  const uses = () => 1 + Math.floor(random() * (2 * meanUses - 1))
  for (let i = 0; i < live; i++) {
    keys[i] = next++
    remaining[i] = uses()
  }
  const trace = new Int32Array(accesses)
  for (let i = 0; i < accesses; i++) {
    const slot = Math.floor(random() * live)
    trace[i] = keys[slot]!
    if (--remaining[slot]! === 0) {
      keys[slot] = next++
      remaining[slot] = uses()
    }
  }
  return trace
}

/** `accesses` Zipf(`skew`) draws over `distinct` keys numbered from `firstKey` (key firstKey is the hottest). */
export function zipfTrace(
  accesses: number,
  { distinct, skew, seed, firstKey = 0 }: { distinct: number; skew: number; seed: number; firstKey?: number },
): Int32Array {
  const next = zipfGenerator(distinct, skew, mulberry32(seed))
  const trace = new Int32Array(accesses)
  for (let i = 0; i < accesses; i++) trace[i] = firstKey + next()
  return trace
}

/** Keys firstKey .. firstKey + length - 1, cyclically. */
export function loopTrace(accesses: number, length: number, firstKey = 0): Int32Array {
  const trace = new Int32Array(accesses)
  for (let i = 0; i < accesses; i++) trace[i] = firstKey + (i % length)
  return trace
}

/** Zipf runs of `zipfRun` accesses, each followed by a burst of `scanRun` never-repeated keys. */
export function zipfScanTrace(
  accesses: number,
  {
    distinct,
    skew,
    seed,
    zipfRun,
    scanRun,
  }: {
    distinct: number
    skew: number
    seed: number
    zipfRun: number
    scanRun: number
  },
): Int32Array {
  const next = zipfGenerator(distinct, skew, mulberry32(seed))
  const trace = new Int32Array(accesses)
  let scanned = distinct
  for (let i = 0; i < accesses; ) {
    for (let j = 0; j < zipfRun && i < accesses; j++) trace[i++] = next()
    for (let j = 0; j < scanRun && i < accesses; j++) trace[i++] = scanned++
  }
  return trace
}

/** The traces one after the other, each on keys of its own (so no key carries over from one phase to the next). */
export function phases(...parts: Int32Array[]): Int32Array {
  const total = parts.reduce((sum, part) => sum + part.length, 0)
  const trace = new Int32Array(total)
  let at = 0
  let offset = 0
  for (const part of parts) {
    let max = 0
    for (let i = 0; i < part.length; i++) {
      trace[at + i] = part[i]! + offset
      if (part[i]! > max) max = part[i]!
    }
    at += part.length
    offset += max + 1
  }
  return trace
}

/** Number of distinct keys in a trace. */
export function distinctKeys(trace: Int32Array): number {
  return new Set(trace).size
}
