import { CorruptEntryError } from '../errors.js'
import { MAX_NAMESPACE_DEPTH, namespaceChain } from '../keys.js'

/**
 * The L2 representation of one cache entry: what every node needs to judge it (freshness, grace, the
 * stamp generations it was written under) followed by the encoded value. The version travels beside it
 * (the store keeps it where its scripts can compare it).
 *
 *   u8  ENVELOPE_FORMAT
 *   f64 writtenAt    epoch ms when the value was written (refresh-ahead measures from it)
 *   u32 loadMs       how long the loader took to produce it (0 for set); early refresh scales with it
 *   f64 freshUntil   epoch ms; after it the entry is stale
 *   f64 staleUntil   epoch ms; until then a stale entry may be served within grace
 *   u16 namespace path length, then UTF-8 ('' for the root namespace)
 *   u16 stamp count, then per stamp: u16 length, UTF-8 stamp key ('n:<path>' or 't:<tag>'), f64 generation
 *   ... the value, as produced by serialization/codec.ts
 *
 * The bytes come from L2 and are untrusted (guarantee 7): decoding checks that the times are numbers in
 * order (never NaN), that the namespace path is one the cache could have written, that the stamps are
 * exactly its namespace chain followed by at most MAX_TAGS tags (an entry without the root stamp would
 * survive clear(); thousands of stamps would make each read ask L2 for thousands), and that every
 * generation is a non-negative safe integer. Anything else is a CorruptEntryError.
 */
const ENVELOPE_FORMAT = 1
const FIXED_BYTES = 1 + 8 + 4 + 8 + 8 + 2 // up to and including the namespace length
/** Tags per entry (options.ts, validateTags, allows no more). */
export const MAX_TAGS = 1000
const NAMESPACE_PATH_RE = /^[A-Za-z0-9_.-]{1,128}(?::[A-Za-z0-9_.-]{1,128})*$/

export interface EnvelopeHeader {
  writtenAt: number
  loadMs: number
  freshUntil: number
  staleUntil: number
  namespacePath: string
  stampKeys: readonly string[]
  stampGens: readonly number[]
}

/** Decoded envelopes may share their stampKeys and stampGens arrays: never mutate them. */
export interface DecodedEnvelope extends EnvelopeHeader {
  /** How many of stampKeys are the namespace chain; the rest are tags. */
  namespaceStamps: number
  /**
   * The highest of stampGens (0 when there are none): all of them are non-negative safe integers, so a
   * bound on numbers from outside (VersionClock.plausible) holds for all of them if it holds for this one.
   */
  maxStampGen: number
  /** The codec bytes of the value (a view into the envelope, not a copy). */
  payload: Uint8Array
}

export function encodeEnvelope(header: EnvelopeHeader, payload: Uint8Array): Buffer {
  const nsBytes = Buffer.byteLength(header.namespacePath)
  let size = FIXED_BYTES + nsBytes + 2 + payload.length
  for (const key of header.stampKeys) size += 2 + Buffer.byteLength(key) + 8
  const out = Buffer.allocUnsafe(size)
  let at = out.writeUInt8(ENVELOPE_FORMAT, 0)
  at = out.writeDoubleBE(header.writtenAt, at)
  at = out.writeUInt32BE(Math.min(0xffffffff, Math.max(0, Math.round(header.loadMs))), at)
  at = out.writeDoubleBE(header.freshUntil, at)
  at = out.writeDoubleBE(header.staleUntil, at)
  at = out.writeUInt16BE(nsBytes, at)
  at += out.write(header.namespacePath, at)
  at = out.writeUInt16BE(header.stampKeys.length, at)
  for (let i = 0; i < header.stampKeys.length; i++) {
    const key = header.stampKeys[i]!
    at = out.writeUInt16BE(Buffer.byteLength(key), at)
    at += out.write(key, at)
    at = out.writeDoubleBE(header.stampGens[i]!, at)
  }
  out.set(payload, at)
  return out
}

/**
 * Where encodeEnvelope puts each stamp's generation (a big-endian f64): byte offsets into its output, for a
 * store that fills in the generations it reads in the same operation as the write (RemoteStore.setStamped).
 */
export function stampGenOffsets(header: Pick<EnvelopeHeader, 'namespacePath' | 'stampKeys'>): number[] {
  let at = FIXED_BYTES + Buffer.byteLength(header.namespacePath) + 2
  const offsets: number[] = new Array(header.stampKeys.length)
  for (let i = 0; i < header.stampKeys.length; i++) {
    at += 2 + Buffer.byteLength(header.stampKeys[i]!)
    offsets[i] = at
    at += 8
  }
  return offsets
}

/**
 * The namespace and stamp part of the last envelope decoded. Nearly every entry of a cache carries the
 * same one (same namespace, same tags, generations that rarely move), so a read that finds the same bytes
 * again reuses its strings and arrays instead of decoding them: the L2 read path allocates less.
 */
let lastTail:
  | {
      bytes: Buffer
      namespacePath: string
      namespaceStamps: number
      stampKeys: string[]
      stampGens: number[]
      maxStampGen: number
    }
  | undefined

export function decodeEnvelope(bytes: Uint8Array): DecodedEnvelope {
  try {
    const n = bytes.length
    if (n === 0) throw truncated()
    if (bytes[0] !== ENVELOPE_FORMAT) {
      throw new CorruptEntryError(`Unknown entry envelope format ${bytes[0]} (expected ${ENVELOPE_FORMAT})`)
    }
    if (n < FIXED_BYTES + 2) throw truncated()
    const writtenAt = f64At(bytes, 1)
    const loadMs = bytes[9]! * 0x1000000 + ((bytes[10]! << 16) | (bytes[11]! << 8) | bytes[12]!)
    const freshUntil = f64At(bytes, 13)
    const staleUntil = f64At(bytes, 21)
    // NaN fails every comparison: an entry carrying it would never expire.
    if (!(Number.isFinite(writtenAt) && writtenAt <= freshUntil && freshUntil <= staleUntil)) {
      throw new CorruptEntryError('Entry read from L2 has times out of order or not numbers')
    }
    // The tail: namespace length and bytes, stamp count, stamps. Measured first, decoded only if new.
    const tailStart = FIXED_BYTES - 2
    let at = FIXED_BYTES + u16At(bytes, tailStart)
    if (at + 2 > n) throw truncated()
    const count = u16At(bytes, at)
    at += 2
    if (count > MAX_NAMESPACE_DEPTH + 1 + MAX_TAGS) {
      throw new CorruptEntryError(`Entry read from L2 lists ${count} stamps`)
    }
    for (let i = 0; i < count; i++) {
      if (at + 2 > n) throw truncated()
      at += 2 + u16At(bytes, at) + 8
    }
    if (at > n) throw truncated()
    const cached = lastTail
    const tail =
      cached !== undefined && sameBytes(cached.bytes, bytes, tailStart, at)
        ? cached
        : decodeTail(asBuffer(bytes), tailStart, at, count)
    return {
      writtenAt,
      loadMs,
      freshUntil,
      staleUntil,
      namespacePath: tail.namespacePath,
      namespaceStamps: tail.namespaceStamps,
      stampKeys: tail.stampKeys,
      stampGens: tail.stampGens,
      maxStampGen: tail.maxStampGen,
      payload: bytes.subarray(at),
    }
  } catch (err) {
    if (err instanceof CorruptEntryError) throw err
    throw new CorruptEntryError('Entry read from L2 is truncated or corrupt', { cause: err })
  }
}

// The fixed part of every envelope is read on every L2 hit: by hand, on any Uint8Array, after one length
// check, rather than through Buffer's read methods (each checks its offset again; together they cost half
// of decodeEnvelope, which cost more than a tenth of an L2 hit).
const scratch = new Float64Array(1)
const scratchBytes = new Uint8Array(scratch.buffer)
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

/** The big-endian f64 at `at` (the caller checked that 8 bytes are there). */
function f64At(bytes: Uint8Array, at: number): number {
  if (LITTLE_ENDIAN) for (let i = 0; i < 8; i++) scratchBytes[7 - i] = bytes[at + i]!
  else for (let i = 0; i < 8; i++) scratchBytes[i] = bytes[at + i]!
  return scratch[0]!
}

/** The big-endian u16 at `at` (the caller checked that 2 bytes are there). */
function u16At(bytes: Uint8Array, at: number): number {
  return (bytes[at]! << 8) | bytes[at + 1]!
}

/** Whether bytes[start, end) equal `expected` (a short tail: a loop beats a native compare). */
function sameBytes(expected: Uint8Array, bytes: Uint8Array, start: number, end: number): boolean {
  if (expected.length !== end - start) return false
  for (let i = 0; i < expected.length; i++) if (expected[i] !== bytes[start + i]) return false
  return true
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

function truncated(): CorruptEntryError {
  return new CorruptEntryError('Entry read from L2 is truncated or corrupt')
}

function decodeTail(buf: Buffer, start: number, end: number, count: number): NonNullable<typeof lastTail> {
  const nsLen = buf.readUInt16BE(start)
  let at = start + 2
  const namespacePath = buf.toString('utf8', at, at + nsLen)
  if (namespacePath !== '' && !NAMESPACE_PATH_RE.test(namespacePath)) {
    throw new CorruptEntryError('Entry read from L2 names an impossible namespace')
  }
  const chain = namespaceChain(namespacePath)
  if (chain.length > MAX_NAMESPACE_DEPTH + 1 || count < chain.length) {
    throw new CorruptEntryError('Entry read from L2 does not carry its namespace chain')
  }
  at += nsLen + 2
  const stampKeys: string[] = new Array(count)
  const stampGens: number[] = new Array(count)
  let maxStampGen = 0
  for (let i = 0; i < count; i++) {
    const len = buf.readUInt16BE(at)
    at += 2
    const key = buf.toString('utf8', at, at + len)
    // The namespace chain first, in order, then tags: nothing else judges an entry.
    if (i < chain.length ? key !== chain[i] : !(key.startsWith('t:') && key.length > 2)) {
      throw new CorruptEntryError('Entry read from L2 carries stamps the cache does not write')
    }
    stampKeys[i] = key
    at += len
    const gen = buf.readDoubleBE(at)
    if (!(Number.isSafeInteger(gen) && gen >= 0)) {
      throw new CorruptEntryError(
        'Entry read from L2 carries a generation that is not a non-negative integer',
      )
    }
    stampGens[i] = gen
    if (gen > maxStampGen) maxStampGen = gen
    at += 8
  }
  // A copy: `buf` may be a view into a socket chunk that must not be kept alive.
  const tail = {
    bytes: Buffer.from(buf.subarray(start, end)),
    namespacePath,
    namespaceStamps: chain.length,
    stampKeys,
    stampGens,
    maxStampGen,
  }
  lastTail = tail
  return tail
}
