/**
 * The bytes of write-behind's queue entries and dead letters, and the order of a write taken from its
 * queue position. Queue bytes come back from Redis and are untrusted (guarantee 7): decoding checks every
 * length and number, and anything else is a CorruptEntryError (the worker drops and counts such an
 * entry; it was not written by a correct node).
 *
 *   u8  format (1 entry, 2 dead letter)
 *   f64 version      the write's order among the writes of its key (0: its queue position gives it)
 *   f64 acceptedAt   epoch ms (0: its queue position gives it)
 *   u16 length, UTF-8  namespace path ('' for the root)
 *   u16 length, UTF-8  key
 *   dead letters only:
 *     u32 attempts, f64 deadAt, u16 length + UTF-8 error message, u8 length + Latin-1 original id
 *   u32 length, bytes  the value (serialization/codec.ts)
 */
import { CorruptEntryError } from '../errors.js'
import { splitId } from './queue-log.js'

const ENTRY_FORMAT = 1
const DEAD_FORMAT = 2
const MAX_ERROR_CHARS = 1000 // of an error message kept with a dead letter
/** Versions from queue positions: milliseconds × this + sequence (the version clock's units, hlc.ts). */
const SEQUENCES_PER_MS = 4096

export interface QueuedWrite {
  namespace: string
  key: string
  /** The value, as serialization/codec.ts encodes it. */
  payload: Uint8Array
  /** 0 when the queue position gives it (see versionOf). */
  version: number
  /** 0 when the queue position gives it. */
  acceptedAt: number
}

export interface BuriedWrite extends QueuedWrite {
  attempts: number
  deadAt: number
  error: string
  /** The id the write had in its stream. */
  origin: string
}

/**
 * The order of a write appended as `id`: milliseconds × 4096 + sequence, so that the writes of one key
 * (all in one stream) have increasing versions in the order they were accepted; undefined for a sequence
 * of 4096 or more in one millisecond (no Redis appends that fast to one stream; the caller then treats
 * the write as unordered).
 */
export function versionOf(id: string): number | undefined {
  const [ms, seq] = splitId(id)
  if (
    !(Number.isSafeInteger(ms) && ms >= 0 && Number.isSafeInteger(seq) && seq >= 0 && seq < SEQUENCES_PER_MS)
  ) {
    return undefined
  }
  const version = ms * SEQUENCES_PER_MS + seq
  return Number.isSafeInteger(version) ? version : undefined
}

/**
 * The version a consumer orders the write appended as `id` by: versionOf(id), or for an id versionOf
 * cannot order, the highest version of its millisecond (it is at least as new as everything before it).
 */
export function consumerVersionOf(id: string): number {
  const version = versionOf(id)
  if (version !== undefined) return version
  const [ms] = splitId(id)
  return Number.isSafeInteger(ms) && ms >= 0 ? ms * SEQUENCES_PER_MS + SEQUENCES_PER_MS - 1 : 0
}

/** When the write appended as `id` was accepted (the milliseconds of its id). */
export function acceptedAtOf(id: string): number {
  const [ms] = splitId(id)
  return Number.isFinite(ms) ? ms : 0
}

export function encodeQueued(write: QueuedWrite): Buffer {
  return encode(ENTRY_FORMAT, write, undefined)
}

export function encodeBuried(write: BuriedWrite): Buffer {
  return encode(DEAD_FORMAT, write, write)
}

export function decodeQueued(bytes: Uint8Array): QueuedWrite {
  return decode(bytes, ENTRY_FORMAT)
}

export function decodeBuried(bytes: Uint8Array): BuriedWrite {
  return decode(bytes, DEAD_FORMAT) as BuriedWrite
}

function encode(format: number, write: QueuedWrite, dead: BuriedWrite | undefined): Buffer {
  const ns = Buffer.from(write.namespace)
  const key = Buffer.from(write.key)
  const error = dead === undefined ? undefined : Buffer.from(dead.error.slice(0, MAX_ERROR_CHARS))
  const origin = dead === undefined ? undefined : Buffer.from(dead.origin, 'latin1')
  const size =
    1 +
    16 +
    2 +
    ns.length +
    2 +
    key.length +
    4 +
    write.payload.length +
    (dead === undefined ? 0 : 4 + 8 + 2 + error!.length + 1 + origin!.length)
  const out = Buffer.allocUnsafe(size)
  let at = out.writeUInt8(format, 0)
  at = out.writeDoubleBE(write.version, at)
  at = out.writeDoubleBE(write.acceptedAt, at)
  at = out.writeUInt16BE(ns.length, at)
  at += ns.copy(out, at)
  at = out.writeUInt16BE(key.length, at)
  at += key.copy(out, at)
  if (dead !== undefined) {
    at = out.writeUInt32BE(Math.min(0xffffffff, dead.attempts), at)
    at = out.writeDoubleBE(dead.deadAt, at)
    at = out.writeUInt16BE(error!.length, at)
    at += error!.copy(out, at)
    at = out.writeUInt8(origin!.length, at)
    at += origin!.copy(out, at)
  }
  at = out.writeUInt32BE(write.payload.length, at)
  out.set(write.payload, at)
  return out
}

function decode(bytes: Uint8Array, format: number): QueuedWrite | BuriedWrite {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  try {
    if (buf.readUInt8(0) !== format)
      throw new CorruptEntryError(`unknown write-behind entry format ${buf[0]}`)
    const version = buf.readDoubleBE(1)
    const acceptedAt = buf.readDoubleBE(9)
    if (!(Number.isSafeInteger(version) && version >= 0 && Number.isFinite(acceptedAt) && acceptedAt >= 0)) {
      throw new CorruptEntryError('write-behind entry with impossible numbers')
    }
    let at = 17
    const nsLength = buf.readUInt16BE(at)
    const namespace = utf8(buf, at + 2, nsLength)
    at += 2 + nsLength
    const keyLength = buf.readUInt16BE(at)
    const key = utf8(buf, at + 2, keyLength)
    if (key.length === 0) throw new CorruptEntryError('write-behind entry without a key')
    at += 2 + keyLength
    let dead: Omit<BuriedWrite, keyof QueuedWrite> | undefined
    if (format === DEAD_FORMAT) {
      const attempts = buf.readUInt32BE(at)
      const deadAt = buf.readDoubleBE(at + 4)
      const errorLength = buf.readUInt16BE(at + 12)
      const error = utf8(buf, at + 14, errorLength)
      at += 14 + errorLength
      const originLength = buf.readUInt8(at)
      const origin = latin1(buf, at + 1, originLength)
      at += 1 + originLength
      dead = { attempts, deadAt, error, origin }
    }
    const payloadLength = buf.readUInt32BE(at)
    at += 4
    if (at + payloadLength !== buf.length)
      throw new CorruptEntryError('write-behind entry of the wrong length')
    const payload = buf.subarray(at)
    return { namespace, key, payload, version, acceptedAt, ...dead }
  } catch (err) {
    if (err instanceof CorruptEntryError) throw err
    throw new CorruptEntryError('write-behind entry is truncated', { cause: err })
  }
}

function utf8(buf: Buffer, at: number, length: number): string {
  if (at + length > buf.length) throw new RangeError('runs past the end')
  return buf.toString('utf8', at, at + length)
}

function latin1(buf: Buffer, at: number, length: number): string {
  if (at + length > buf.length) throw new RangeError('runs past the end')
  return buf.toString('latin1', at, at + length)
}
