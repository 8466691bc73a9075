import { CorruptEntryError } from '../errors.js'

/**
 * The bus's wire format: compact binary, made to grow. A fleet in the middle of a rolling upgrade may
 * hear message kinds (or a wire version) that only newer nodes know: a node ignores those and counts them
 * (stats().bus.unknown), never as corrupt, and never lets them change its state. New kinds are added
 * with new numbers; the layout of a known kind never changes.
 *
 *   u8   WIRE_VERSION
 *   u8   kind (1 = keys written or deleted, 2 = stamps raised: tags invalidated or namespaces cleared,
 *        3 = a heartbeat of the fleet view)
 *   8 B  origin node id (a node ignores its own messages)
 *   kinds 1, 2: u32 item count, then per item: u16 length, UTF-8 name, f64 number
 *        keys: name = key relative to the root namespace, number = the version L2 gave the write
 *        stamps: name = stamp key ('t:<tag>' or 'n:<path>', see keys.ts), number = its new generation
 *   kind 3: u32 length, then that many bytes of UTF-8 JSON (at most MAX_HEARTBEAT_BYTES; fleet/fleet.ts
 *        checks what it says)
 */
export const WIRE_VERSION = 1
export const NODE_ID_BYTES = 8
/** A larger message is dropped unread: it could only be an attack (a node sends at most MAX_ITEMS). */
export const MAX_MESSAGE_BYTES = 4 << 20
/** Items per message; a node splits larger invalidations (deleteMany) into several messages. */
export const MAX_ITEMS = 512

export const MessageKind = { Keys: 1, Stamps: 2 } as const
export type MessageKind = (typeof MessageKind)[keyof typeof MessageKind]
/** The kind of a heartbeat (added after 1 and 2: older nodes ignore it as an unknown kind). */
export const HEARTBEAT_KIND = 3
/** The largest heartbeat body a node sends or reads. */
export const MAX_HEARTBEAT_BYTES = 16 << 10

export interface HeartbeatMessage {
  kind: typeof HEARTBEAT_KIND
  origin: Buffer
  /** The JSON text of the report, not yet parsed or checked. */
  body: string
}

export interface InvalidationMessage {
  kind: MessageKind
  origin: Buffer
  names: readonly string[]
  /** One per name: a version (keys) or a generation (stamps). */
  numbers: readonly number[]
}

export function encodeMessage(message: InvalidationMessage): Buffer {
  let size = 2 + NODE_ID_BYTES + 4
  for (const name of message.names) size += 2 + Buffer.byteLength(name) + 8
  const out = Buffer.allocUnsafe(size)
  out[0] = WIRE_VERSION
  out[1] = message.kind
  message.origin.copy(out, 2, 0, NODE_ID_BYTES)
  let at = out.writeUInt32BE(message.names.length, 2 + NODE_ID_BYTES)
  for (let i = 0; i < message.names.length; i++) {
    const name = message.names[i]!
    const len = Buffer.byteLength(name)
    at = out.writeUInt16BE(len, at)
    at += out.write(name, at)
    at = out.writeDoubleBE(message.numbers[i]!, at)
  }
  return out
}

export function encodeHeartbeat(origin: Buffer, body: string): Buffer {
  const json = Buffer.from(body, 'utf8')
  const out = Buffer.allocUnsafe(2 + NODE_ID_BYTES + 4 + json.length)
  out[0] = WIRE_VERSION
  out[1] = HEARTBEAT_KIND
  origin.copy(out, 2, 0, NODE_ID_BYTES)
  out.writeUInt32BE(json.length, 2 + NODE_ID_BYTES)
  json.copy(out, 2 + NODE_ID_BYTES + 4)
  return out
}

/** A message of a kind (or wire version) this node does not know: ignored, and counted. */
export const UNKNOWN_KIND = Symbol('unknown message kind')

/**
 * Decodes a bus message: the message, UNKNOWN_KIND for a kind or wire version this node does not know,
 * or a CorruptEntryError for bytes that are not a message at all.
 */
export function decodeMessage(
  bytes: Uint8Array,
): InvalidationMessage | HeartbeatMessage | typeof UNKNOWN_KIND {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (buf.length < 2 + NODE_ID_BYTES || buf[0] === 0) {
    throw new CorruptEntryError('Bus message is too short or has no wire version')
  }
  if (buf[0]! > WIRE_VERSION) return UNKNOWN_KIND
  if (buf[0] !== WIRE_VERSION) {
    throw new CorruptEntryError(
      `Bus message has wire version ${buf[0]}; this node understands ${WIRE_VERSION}`,
    )
  }
  if (buf[1] === HEARTBEAT_KIND) return decodeHeartbeat(buf)
  const kind = buf[1] as MessageKind
  if (kind !== MessageKind.Keys && kind !== MessageKind.Stamps) return UNKNOWN_KIND
  try {
    const origin = buf.subarray(2, 2 + NODE_ID_BYTES)
    let at = 2 + NODE_ID_BYTES
    const count = buf.readUInt32BE(at)
    at += 4
    if (count > MAX_ITEMS) throw new RangeError(`${count} items, more than ${MAX_ITEMS}`)
    const names: string[] = []
    const numbers: number[] = []
    for (let i = 0; i < count; i++) {
      const len = buf.readUInt16BE(at)
      at += 2
      if (at + len + 8 > buf.length) throw new RangeError('item runs past the end')
      names.push(buf.toString('utf8', at, at + len))
      at += len
      numbers.push(buf.readDoubleBE(at))
      at += 8
    }
    return { kind, origin, names, numbers }
  } catch (err) {
    throw new CorruptEntryError('Bus message is truncated or corrupt', { cause: err })
  }
}

function decodeHeartbeat(buf: Buffer): HeartbeatMessage {
  const at = 2 + NODE_ID_BYTES
  if (buf.length < at + 4) throw new CorruptEntryError('Heartbeat is truncated')
  const length = buf.readUInt32BE(at)
  if (length > MAX_HEARTBEAT_BYTES || at + 4 + length !== buf.length) {
    throw new CorruptEntryError('Heartbeat has the wrong length')
  }
  return { kind: HEARTBEAT_KIND, origin: buf.subarray(2, at), body: buf.toString('utf8', at + 4) }
}
