/**
 * The L2 wire format of a cached value: `encode` runs on every `set`, `decode` on every L2 hit.
 * One module of about a thousand lines on purpose: the encoder, the decoder and the slow diagnosing walk
 * must agree tag by tag, and keeping them side by side is what keeps them agreeing.
 *
 * Format (version 1). Byte 0 is FORMAT_VERSION; then exactly one value; then nothing. A value is a
 * one-byte tag and a payload. All multi-byte numbers are little-endian; counts and byte lengths are
 * unsigned LEB128 varints.
 *
 *   0x80-0xff  integer 0..127 in the tag itself       0x40-0x7f  string, UTF-8 length 0..63 in the tag
 *   0x00 undefined  0x01 null  0x02 false  0x03 true
 *   0x04 int8  0x05 int16  0x06 int32  0x07 float64 (NaN, ±Infinity and -0 keep their bits)
 *   0x08 / 0x09 / 0x0a  string, UTF-8 byte length as u8 / u16 / u32, then the bytes
 *   0x0b  string that is not well-formed UTF-16 (lone surrogates): varint code units, then UTF-16LE
 *   0x0c  array: varint length, then elements; a run of holes is 0x10 + varint count
 *   0x0d / 0x0e  plain / null-prototype object: (string key, value)* then 0x0f
 *   0x11  Date: float64 time value (NaN for an invalid Date)
 *   0x12 / 0x13  Map / Set: varint size, then key, value (Map) or value (Set), in insertion order
 *   0x14  BigInt in int64 range: 8 bytes      0x15  other BigInt: sign byte, varint n, n hex digits
 *   0x16 Buffer / 0x17 Uint8Array: varint byte length, bytes
 *   0x18  other typed array: kind byte (index in TYPED_ARRAYS), varint byte length, element bytes
 *
 * Why a hand-written binary codec. Measured with `npx tsx bench/isolation.ts` (Node 20, x64) on a
 * short string, a 5-field object and a ~1 KB order; speed relative to this codec, encode / decode:
 *   (b) JSON + replacer/reviver tagging     0.19-0.30x / 0.09-0.14x
 *   (c) v8.serialize + validating pre-walk  0.07-0.34x / 0.06-0.38x
 *   untagged JSON (lossy; for scale only)   0.34-0.68x / 0.35-0.71x
 * and the bytes are 20-25% smaller than JSON. (msgpackr, measured outside the repository, is on a
 * par for speed but loses -0, lone surrogates, holes and null prototypes and silently accepts
 * functions and class instances, so it would need the same pre-walk.) Beyond speed:
 *  - the format is ours: the bytes do not change when Node or V8 is upgraded. `v8.serialize` writes
 *    the running V8's format version, which an older V8 refuses to read, so during a rolling upgrade
 *    the old half of a fleet would see every entry written by the new half as corrupt;
 *  - it keeps what the others lose: structuredClone turns a Buffer into a Uint8Array; TextEncoder
 *    replaces lone surrogates with U+FFFD (we write such strings as UTF-16 instead);
 *  - validation is the encoding walk itself: no separate pre-walk on the happy path.
 *
 * Speed notes: one growing scratch buffer is reused across calls and the result is copied out
 * (Buffer.allocUnsafe, so small results come from Node's pool); objects are walked with for...in,
 * which reads properties through V8's enum cache; short strings are UTF-8 encoded and decoded in JS
 * (a native call costs more than the work below ~20 chars); object keys go through a small
 * decoder-side cache so repeated keys are neither re-decoded nor re-internalized; the happy path
 * tracks no paths and checks no cycles. The one check that costs (~15% of encode on objects) is
 * Object.getOwnPropertySymbols per object, to reject symbol keys. When encoding fails, a second,
 * slow walk (`diagnose`) finds the first problem in the same order and names its path. Cycles are
 * caught by the depth limit: a circular structure is infinitely deep.
 *
 * Documented behaviour:
 *  - Object key order is preserved (as JavaScript orders keys: integer-like keys first).
 *  - Only own enumerable string-keyed properties are data (as in JSON.stringify and structuredClone):
 *    non-enumerable properties are skipped, an enumerable symbol-keyed property is rejected, getters
 *    are read as values. Extra non-index properties on arrays, and own properties on Date/Map/Set/
 *    typed arrays, are not stored.
 *  - Sparse arrays keep their holes (`[, 1]` comes back with index 0 absent, not undefined).
 *  - Shared references are not preserved: an object reachable twice comes back as two equal copies.
 *  - Nesting is limited to MAX_DEPTH levels of containers; deeper values (and circular ones) are
 *    rejected with UnserializableValueError, never a RangeError.
 *  - There is no checksum: truncation, trailing bytes, unknown tags, impossible lengths and an
 *    unknown version are detected (CorruptEntryError); a flipped bit inside string bytes is not
 *    (Redis and TCP already checksum what they carry).
 */
import { CorruptEntryError, UnserializableValueError } from '../errors.js'

/** The first byte of every encoded value. Bump it when the format changes incompatibly. */
export const FORMAT_VERSION = 1
/** Containers may nest this many levels deep (the root container is level 1). */
export const MAX_DEPTH = 1000
/** An encoded value may not exceed this many bytes (Redis refuses values over 512 MiB). */
export const MAX_ENCODED_BYTES = 512 * 1024 * 1024

const T_UNDEFINED = 0x00
const T_NULL = 0x01
const T_FALSE = 0x02
const T_TRUE = 0x03
const T_INT8 = 0x04
const T_INT16 = 0x05
const T_INT32 = 0x06
const T_FLOAT64 = 0x07
const T_STR8 = 0x08
const T_STR16 = 0x09
const T_STR32 = 0x0a
const T_STR_UTF16 = 0x0b
const T_ARRAY = 0x0c
const T_OBJECT = 0x0d
const T_OBJECT_NULL = 0x0e
const T_END = 0x0f
const T_HOLES = 0x10
const T_DATE = 0x11
const T_MAP = 0x12
const T_SET = 0x13
const T_BIGINT64 = 0x14
const T_BIGINT = 0x15
const T_BUFFER = 0x16
const T_UINT8ARRAY = 0x17
const T_TYPED = 0x18
const T_FIXSTR = 0x40
const T_FIXINT = 0x80

/** Longest string (in UTF-16 code units) encoded in JS into a fixstr: 21 * 3 bytes <= 63. */
const SHORT_STRING = 21

// ---------------------------------------------------------------------------------------------
// Classification shared by encode, diagnose and cloneValue.

/** Typed arrays other than Uint8Array; the index is the kind byte on the wire. Never reorder. */
export const TYPED_ARRAYS = [
  Int8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
] as const
export type OtherTypedArray = InstanceType<(typeof TYPED_ARRAYS)[number]>

export const K_OBJECT = 0
export const K_ARRAY = 1
export const K_NULL_OBJECT = 2
export const K_DATE = 3
export const K_MAP = 4
export const K_SET = 5
export const K_BUFFER = 6
export const K_UINT8ARRAY = 7
/** K_TYPED + i is TYPED_ARRAYS[i]. */
export const K_TYPED = 8
export const K_UNSUPPORTED = -1

const typedKinds = new Map<object, number>(TYPED_ARRAYS.map((ctor, i) => [ctor.prototype, K_TYPED + i]))
const ArrayPrototype: object = Array.prototype
const ObjectPrototype: object = Object.prototype

/** What an object is, by its prototype (exact prototypes only: subclasses are not supported). */
export function kindOf(proto: object | null): number {
  if (proto === ObjectPrototype) return K_OBJECT
  if (proto === ArrayPrototype) return K_ARRAY
  if (proto === null) return K_NULL_OBJECT
  if (proto === Date.prototype) return K_DATE
  if (proto === Map.prototype) return K_MAP
  if (proto === Set.prototype) return K_SET
  if (proto === Buffer.prototype) return K_BUFFER
  if (proto === Uint8Array.prototype) return K_UINT8ARRAY
  return typedKinds.get(proto) ?? K_UNSUPPORTED
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

/** Reverses the bytes of each element in place (the wire is little-endian; only big-endian hosts). */
function swapElements(bytes: Uint8Array, size: number): void {
  for (let i = 0; i < bytes.length; i += size) bytes.subarray(i, i + size).reverse()
}

// ---------------------------------------------------------------------------------------------
// Encoder. State is module-level: encode is synchronous; a getter that calls encode re-enters
// through encodeNested, which swaps in a fresh buffer.

const INITIAL_BYTES = 16 * 1024
/** After a big value, the scratch buffer shrinks back instead of pinning its peak size. */
const RETAINED_BYTES = 1024 * 1024

let out = Buffer.allocUnsafeSlow(INITIAL_BYTES)
let view = new DataView(out.buffer, out.byteOffset, out.byteLength)
let pos = 0
let busy = false
/** Set per call: enumerate with Object.keys instead of for...in (see prototypeIsPolluted). */
let ownKeysOnly = false

/** Thrown on the happy path's failure; `diagnose` then finds what and where. Never escapes. */
const REJECTED = new Error('coherent-cache: value rejected')
class TooLarge extends Error {}

function grow(need: number): void {
  const required = pos + need
  if (required > MAX_ENCODED_BYTES) throw new TooLarge()
  let size = out.length * 2
  while (size < required) size *= 2
  const next = Buffer.allocUnsafeSlow(Math.min(size, MAX_ENCODED_BYTES))
  out.copy(next, 0, 0, pos)
  out = next
  view = new DataView(out.buffer, out.byteOffset, out.byteLength)
}

/**
 * Encodes a value into the L2 wire format (see the module comment). The result is a Buffer.
 * Throws UnserializableValueError (synchronously, naming the path) for anything that would not
 * come back as an equal value of the same type.
 */
export function encode(value: unknown): Uint8Array {
  if (value === undefined) {
    throw new UnserializableValueError(
      '$',
      'undefined cannot be cached as a value: use delete() to remove a key, or null to cache an absence',
    )
  }
  if (busy) return encodeNested(value)
  busy = true
  pos = 0
  ownKeysOnly = prototypeIsPolluted()
  try {
    out[pos++] = FORMAT_VERSION
    writeValue(value, 0)
    // From Node's Buffer pool (a fresh ArrayBuffer costs several times more); a loop beats the
    // native copy call for the smallest results.
    const result = Buffer.allocUnsafe(pos)
    if (pos <= 32) for (let i = 0; i < pos; i++) result[i] = out[i]!
    else out.copy(result, 0, 0, pos)
    return result
  } catch (err) {
    throw explain(value, err)
  } finally {
    busy = false
    if (out.length > RETAINED_BYTES) {
      out = Buffer.allocUnsafeSlow(INITIAL_BYTES)
      view = new DataView(out.buffer, out.byteOffset, out.byteLength)
    }
  }
}

function encodeNested(value: unknown): Uint8Array {
  const savedOut = out
  const savedView = view
  const savedPos = pos
  out = Buffer.allocUnsafeSlow(256)
  view = new DataView(out.buffer, out.byteOffset, out.byteLength)
  busy = false
  try {
    return encode(value)
  } finally {
    out = savedOut
    view = savedView
    pos = savedPos
    busy = true
  }
}

function writeValue(v: unknown, depth: number): void {
  switch (typeof v) {
    case 'string':
      writeString(v as string)
      return
    case 'number':
      writeNumber(v as number)
      return
    case 'object':
      if (v === null) {
        if (pos >= out.length) grow(1)
        out[pos++] = T_NULL
      } else writeObject(v as object, depth)
      return
    case 'boolean':
      if (pos >= out.length) grow(1)
      out[pos++] = v ? T_TRUE : T_FALSE
      return
    case 'undefined':
      if (pos >= out.length) grow(1)
      out[pos++] = T_UNDEFINED
      return
    case 'bigint':
      writeBigInt(v as bigint)
      return
    default:
      throw REJECTED // function, symbol
  }
}

function writeNumber(v: number): void {
  if (pos + 9 > out.length) grow(9)
  if ((v | 0) === v && (v !== 0 || 1 / v > 0)) {
    if (v >= 0 && v < 128) out[pos++] = T_FIXINT | v
    else if (v >= -128 && v < 128) {
      out[pos++] = T_INT8
      out[pos++] = v & 0xff
    } else if (v >= -32768 && v < 32768) {
      out[pos++] = T_INT16
      out[pos++] = v & 0xff
      out[pos++] = (v >> 8) & 0xff
    } else {
      out[pos++] = T_INT32
      out[pos++] = v & 0xff
      out[pos++] = (v >> 8) & 0xff
      out[pos++] = (v >> 16) & 0xff
      out[pos++] = (v >> 24) & 0xff
    }
  } else {
    out[pos++] = T_FLOAT64
    view.setFloat64(pos, v, true)
    pos += 8
  }
}

/** Caller reserved 5 bytes. */
function writeVarint(n: number): void {
  while (n > 0x7f) {
    out[pos++] = (n & 0x7f) | 0x80
    n = Math.floor(n / 128)
  }
  out[pos++] = n
}

function writeString(s: string): void {
  const len = s.length
  if (len <= SHORT_STRING) {
    if (pos + 64 > out.length) grow(64)
    const start = pos
    let p = start + 1
    for (let i = 0; i < len; i++) {
      const c = s.charCodeAt(i)
      if (c < 0x80) out[p++] = c
      else if (c < 0x800) {
        out[p++] = 0xc0 | (c >> 6)
        out[p++] = 0x80 | (c & 0x3f)
      } else if (c < 0xd800 || c > 0xdfff) {
        out[p++] = 0xe0 | (c >> 12)
        out[p++] = 0x80 | ((c >> 6) & 0x3f)
        out[p++] = 0x80 | (c & 0x3f)
      } else {
        const d = i + 1 < len ? s.charCodeAt(i + 1) : 0
        if (c > 0xdbff || d < 0xdc00 || d > 0xdfff) {
          writeUtf16(s) // a lone surrogate: UTF-8 cannot carry it
          return
        }
        i++
        const cp = ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000
        out[p++] = 0xf0 | (cp >> 18)
        out[p++] = 0x80 | ((cp >> 12) & 0x3f)
        out[p++] = 0x80 | ((cp >> 6) & 0x3f)
        out[p++] = 0x80 | (cp & 0x3f)
      }
    }
    out[start] = T_FIXSTR + (p - start - 1)
    pos = p
    return
  }
  if (!(s as unknown as { isWellFormed(): boolean }).isWellFormed()) {
    writeUtf16(s)
    return
  }
  const max = len > 0x10000 ? Buffer.byteLength(s, 'utf8') : len * 3
  const header = max <= 0xff ? 2 : max <= 0xffff ? 3 : 5
  if (pos + header + max > out.length) grow(header + max)
  const n = out.write(s, pos + header, max, 'utf8')
  if (header === 2) {
    out[pos] = T_STR8
    out[pos + 1] = n
  } else if (header === 3) {
    out[pos] = T_STR16
    out[pos + 1] = n & 0xff
    out[pos + 2] = n >> 8
  } else {
    out[pos] = T_STR32
    view.setUint32(pos + 1, n, true)
  }
  pos += header + n
}

function writeUtf16(s: string): void {
  const bytes = s.length * 2
  if (pos + 6 + bytes > out.length) grow(6 + bytes)
  out[pos++] = T_STR_UTF16
  writeVarint(s.length)
  pos += out.write(s, pos, bytes, 'utf16le')
}

const MIN_INT64 = -(2n ** 63n)
const MAX_INT64 = 2n ** 63n - 1n

function writeBigInt(v: bigint): void {
  if (v >= MIN_INT64 && v <= MAX_INT64) {
    if (pos + 9 > out.length) grow(9)
    out[pos++] = T_BIGINT64
    view.setBigInt64(pos, v, true)
    pos += 8
    return
  }
  const negative = v < 0n
  const hex = (negative ? -v : v).toString(16)
  if (pos + 7 + hex.length > out.length) grow(7 + hex.length)
  out[pos++] = T_BIGINT
  out[pos++] = negative ? 1 : 0
  writeVarint(hex.length)
  pos += out.write(hex, pos, hex.length, 'latin1')
}

function writeObject(v: object, depth: number): void {
  if (depth >= MAX_DEPTH) throw REJECTED
  const kind = kindOf(Object.getPrototypeOf(v))
  switch (kind) {
    case K_OBJECT:
      writePlainObject(v as Record<string, unknown>, T_OBJECT, depth)
      return
    case K_ARRAY:
      writeArray(v as unknown[], depth)
      return
    case K_NULL_OBJECT:
      writePlainObject(v as Record<string, unknown>, T_OBJECT_NULL, depth)
      return
    case K_DATE:
      if (pos + 9 > out.length) grow(9)
      out[pos++] = T_DATE
      view.setFloat64(pos, (v as Date).getTime(), true)
      pos += 8
      return
    case K_MAP: {
      const map = v as Map<unknown, unknown>
      if (pos + 6 > out.length) grow(6)
      out[pos++] = T_MAP
      writeVarint(map.size)
      for (const [key, value] of map) {
        writeValue(key, depth + 1)
        writeValue(value, depth + 1)
      }
      return
    }
    case K_SET: {
      const set = v as Set<unknown>
      if (pos + 6 > out.length) grow(6)
      out[pos++] = T_SET
      writeVarint(set.size)
      for (const value of set) writeValue(value, depth + 1)
      return
    }
    case K_BUFFER:
    case K_UINT8ARRAY: {
      const bytes = v as Uint8Array
      const n = bytes.length
      if (pos + 6 + n > out.length) grow(6 + n)
      out[pos++] = kind === K_BUFFER ? T_BUFFER : T_UINT8ARRAY
      writeVarint(n)
      out.set(bytes, pos)
      pos += n
      return
    }
    case K_UNSUPPORTED:
      throw REJECTED
    default: {
      const ta = v as OtherTypedArray
      const n = ta.byteLength
      if (pos + 7 + n > out.length) grow(7 + n)
      out[pos++] = T_TYPED
      out[pos++] = kind - K_TYPED
      writeVarint(n)
      out.set(new Uint8Array(ta.buffer, ta.byteOffset, n), pos)
      if (!LITTLE_ENDIAN) swapElements(out.subarray(pos, pos + n), ta.BYTES_PER_ELEMENT)
      pos += n
    }
  }
}

/**
 * True when Object.prototype has an enumerable property (someone polluted it): then `for...in`
 * would visit inherited keys, and the walks below fall back to Object.keys. Costs ~2 ns.
 */
export function prototypeIsPolluted(): boolean {
  for (const _ in ObjectPrototype) return true
  return false
}

function writePlainObject(obj: Record<string, unknown>, tag: number, depth: number): void {
  if (pos >= out.length) grow(1)
  out[pos++] = tag
  if (ownKeysOnly && tag === T_OBJECT) {
    const keys = Object.keys(obj)
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!
      writeString(key)
      writeValue(obj[key], depth + 1)
    }
  } else {
    // for...in over an object with no inherited enumerable keys visits exactly Object.keys(obj), in
    // the same order, and V8 reads `obj[key]` through the enum cache: 3-4x faster than Object.keys.
    for (const key in obj) {
      writeString(key)
      writeValue(obj[key], depth + 1)
    }
  }
  if (Object.getOwnPropertySymbols(obj).length !== 0 && enumerableSymbol(obj) !== undefined) throw REJECTED
  if (pos >= out.length) grow(1)
  out[pos++] = T_END
}

function enumerableSymbol(obj: object): symbol | undefined {
  for (const sym of Object.getOwnPropertySymbols(obj)) {
    if (Object.prototype.propertyIsEnumerable.call(obj, sym)) return sym
  }
  return undefined
}

function writeArray(arr: unknown[], depth: number): void {
  const n = arr.length
  if (pos + 6 > out.length) grow(6)
  out[pos++] = T_ARRAY
  writeVarint(n)
  for (let i = 0; i < n; i++) {
    const e = arr[i]
    if (e === undefined && !(i in arr)) {
      writeSparseTail(arr, i, depth)
      return
    }
    writeValue(e, depth + 1)
  }
}

/** From the first hole on, walks only the indices that exist (a sparse array may be huge). */
function writeSparseTail(arr: unknown[], from: number, depth: number): void {
  const n = arr.length
  let next = from
  for (const key of Object.keys(arr)) {
    const i = Number(key)
    if (!(i >= next && i < n) || String(i) !== key) continue // before `from`, or not an index
    if (i > next) writeHoles(i - next)
    writeValue(arr[i], depth + 1)
    next = i + 1
  }
  if (next < n) writeHoles(n - next)
}

function writeHoles(count: number): void {
  if (pos + 6 > out.length) grow(6)
  out[pos++] = T_HOLES
  writeVarint(count)
}

// ---------------------------------------------------------------------------------------------
// Error path: turn a failed encode into an UnserializableValueError with the path of the problem.

function explain(value: unknown, err: unknown): UnserializableValueError {
  if (err instanceof UnserializableValueError) return err
  if (err instanceof TooLarge) {
    return new UnserializableValueError('$', `the encoded value would exceed ${MAX_ENCODED_BYTES} bytes`)
  }
  let found: UnserializableValueError | undefined
  try {
    found = diagnose(value)
  } catch (diagnoseErr) {
    return new UnserializableValueError('$', `encoding failed: ${describeError(diagnoseErr)}`, {
      cause: diagnoseErr,
    })
  }
  if (found) return found
  const cause = err === REJECTED ? undefined : err
  return new UnserializableValueError('$', `encoding failed: ${describeError(err)}`, { cause })
}

function describeError(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err)
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/

function keySegment(key: string): string {
  return IDENTIFIER.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`
}

/**
 * Walks `root` with the encoder's rules, tracking the path and the ancestors, and returns an error
 * for the first problem in encoding order (undefined if it finds none).
 */
export function diagnose(root: unknown): UnserializableValueError | undefined {
  const ancestors: object[] = []
  const ancestorPaths: string[] = []

  const read = (path: string, get: () => unknown): { value: unknown } | UnserializableValueError => {
    try {
      return { value: get() }
    } catch (err) {
      return new UnserializableValueError(path, `reading this property threw ${describeError(err)}`, {
        cause: err,
      })
    }
  }

  const walk = (v: unknown, path: string, depth: number): UnserializableValueError | undefined => {
    if (typeof v === 'function') {
      const name = v.name ? ` (\`${v.name}\`)` : ''
      return new UnserializableValueError(path, `a function${name} cannot be cached: pass plain data`)
    }
    if (typeof v === 'symbol') {
      return new UnserializableValueError(path, `a symbol (${String(v)}) cannot be cached`)
    }
    if (typeof v !== 'object' || v === null) return undefined
    const seen = ancestors.indexOf(v)
    if (seen !== -1) {
      return new UnserializableValueError(
        path,
        `circular reference: this is the same object as its ancestor at ${ancestorPaths[seen]}`,
      )
    }
    if (depth >= MAX_DEPTH) {
      return new UnserializableValueError(path, `nesting deeper than ${MAX_DEPTH} levels cannot be cached`)
    }
    const kind = kindOf(Object.getPrototypeOf(v))
    if (kind === K_UNSUPPORTED) return new UnserializableValueError(path, unsupportedMessage(v))
    ancestors.push(v)
    ancestorPaths.push(path)
    try {
      if (kind === K_OBJECT || kind === K_NULL_OBJECT) {
        const obj = v as Record<string, unknown>
        for (const key of Object.keys(obj)) {
          const keyPath = path + keySegment(key)
          const got = read(keyPath, () => obj[key])
          if (got instanceof UnserializableValueError) return got
          const problem = walk(got.value, keyPath, depth + 1)
          if (problem) return problem
        }
        const sym = enumerableSymbol(obj)
        if (sym !== undefined) {
          return new UnserializableValueError(
            `${path}[${String(sym)}]`,
            'symbol-keyed properties cannot be cached: use a string key',
          )
        }
      } else if (kind === K_ARRAY) {
        const arr = v as unknown[]
        for (const key of Object.keys(arr)) {
          const i = Number(key)
          if (!(i < arr.length) || String(i) !== key) continue
          const itemPath = `${path}[${i}]`
          const got = read(itemPath, () => arr[i])
          if (got instanceof UnserializableValueError) return got
          const problem = walk(got.value, itemPath, depth + 1)
          if (problem) return problem
        }
      } else if (kind === K_MAP) {
        let i = 0
        for (const [key, value] of v as Map<unknown, unknown>) {
          const problem =
            walk(key, `${path}<map key ${i}>`, depth + 1) ?? walk(value, `${path}<map value ${i}>`, depth + 1)
          if (problem) return problem
          i++
        }
      } else if (kind === K_SET) {
        let i = 0
        for (const value of v as Set<unknown>) {
          const problem = walk(value, `${path}<set value ${i}>`, depth + 1)
          if (problem) return problem
          i++
        }
      }
      return undefined
    } finally {
      ancestors.pop()
      ancestorPaths.pop()
    }
  }

  if (root === undefined) {
    return new UnserializableValueError(
      '$',
      'undefined cannot be cached as a value: use delete() to remove a key, or null to cache an absence',
    )
  }
  return walk(root, '$', 0)
}

const SUPPORTED =
  'pass plain data (plain objects, arrays, Map, Set, Date, BigInt, Buffer, Uint8Array and other typed arrays)'

function className(v: object): string | undefined {
  try {
    const ctor = (Object.getPrototypeOf(v) as { constructor?: unknown } | null)?.constructor
    return typeof ctor === 'function' && ctor.name ? ctor.name : undefined
  } catch {
    return undefined
  }
}

function unsupportedMessage(v: object): string {
  const name = className(v)
  if (v instanceof Promise) return 'a Promise cannot be cached: await it and cache the result'
  if (v instanceof WeakMap || v instanceof WeakSet || v instanceof WeakRef) {
    const what = v instanceof WeakMap ? 'WeakMap' : v instanceof WeakSet ? 'WeakSet' : 'WeakRef'
    return `a ${what} cannot be cached (its contents cannot be enumerated): use a Map or Set`
  }
  if (v instanceof ArrayBuffer || v instanceof SharedArrayBuffer || v instanceof DataView) {
    return `${name ?? 'this buffer'} instances are not supported: wrap the bytes in a Uint8Array or Buffer`
  }
  if (v instanceof String || v instanceof Number || v instanceof Boolean) {
    return `boxed ${name ?? 'primitive'} objects are not supported: pass the primitive value`
  }
  const base =
    v instanceof Map
      ? 'Map'
      : v instanceof Set
        ? 'Set'
        : v instanceof Date
          ? 'Date'
          : Array.isArray(v)
            ? 'Array'
            : ArrayBuffer.isView(v)
              ? 'typed array'
              : undefined
  if (name === 'Object' || name === 'Array') {
    return `this ${name} comes from another JavaScript realm (e.g. a vm context), which is not supported: ${SUPPORTED}`
  }
  if (base !== undefined) {
    return `${name ?? 'anonymous class'} instances (a subclass of ${base}) are not supported: ${SUPPORTED}`
  }
  if (name === undefined) return `instances of an anonymous class are not supported: ${SUPPORTED}`
  return `${name} instances are not supported: ${SUPPORTED}`
}

// ---------------------------------------------------------------------------------------------
// Decoder. Every read is bounds-checked: a read past the end yields `undefined` from the typed
// array, which no tag or length test accepts.

let src: Uint8Array = new Uint8Array(0)
let rpos = 0
let rend = 0

const f64 = new Float64Array(1)
const f64Bytes = new Uint8Array(f64.buffer)
const i64 = new BigInt64Array(1)
const i64Bytes = new Uint8Array(i64.buffer)
const fromCharCode = String.fromCharCode

/** Thrown inside the decoder; decode() turns it into a CorruptEntryError with the offset. */
class Corrupt extends Error {}

/** Decodes bytes produced by `encode`. Throws CorruptEntryError for anything else. */
export function decode(bytes: Uint8Array): unknown {
  if (!(bytes instanceof Uint8Array)) {
    throw new CorruptEntryError(`Cannot decode cache entry: expected a Uint8Array, got ${typeof bytes}`)
  }
  if (bytes.length === 0) throw new CorruptEntryError('Cannot decode cache entry: it is empty')
  if (bytes[0] !== FORMAT_VERSION) {
    throw new CorruptEntryError(
      `Cannot decode cache entry: unknown format version ${bytes[0]} (this version of coherent-cache reads version ${FORMAT_VERSION})`,
    )
  }
  const savedSrc = src
  const savedPos = rpos
  const savedEnd = rend
  src = bytes
  rpos = 1
  rend = bytes.length
  try {
    const value = readValue(0)
    if (rpos !== rend) throw new Corrupt(`${rend - rpos} unexpected trailing bytes`)
    return value
  } catch (err) {
    const at = Math.min(rpos, rend)
    const reason = err instanceof Corrupt ? err.message : describeError(err)
    throw new CorruptEntryError(`Cannot decode cache entry (${rend} bytes, at offset ${at}): ${reason}`, {
      cause: err instanceof Corrupt ? undefined : err,
    })
  } finally {
    src = savedSrc
    rpos = savedPos
    rend = savedEnd
  }
}

function truncated(): Corrupt {
  return new Corrupt('truncated')
}

function need(n: number): void {
  if (rpos + n > rend) throw truncated()
}

// Buffer's own slicers work on any Uint8Array (they are what Buffer#toString calls), so the input
// needs no Buffer wrapper; TextDecoder is the fallback should a Node version drop them.
type Slicer = (this: Uint8Array, start: number, end: number) => string
const bufferProto = Buffer.prototype as unknown as Record<string, Slicer | undefined>
const utf8Slice: Slicer =
  bufferProto.utf8Slice ??
  function (this: Uint8Array, start, end) {
    return new TextDecoder().decode(this.subarray(start, end))
  }
const latin1Slice: Slicer =
  bufferProto.latin1Slice ??
  function (this: Uint8Array, start, end) {
    return new TextDecoder('latin1').decode(this.subarray(start, end))
  }
const ucs2Slice: Slicer =
  bufferProto.ucs2Slice ??
  function (this: Uint8Array, start, end) {
    return new TextDecoder('utf-16le').decode(this.subarray(start, end))
  }

function readVarint(): number {
  let result = 0
  let scale = 1
  for (let i = 0; i < 5; i++) {
    const b = src[rpos++]
    if (b === undefined) throw truncated()
    result += (b & 0x7f) * scale
    if (b < 0x80) return result
    scale *= 128
  }
  throw new Corrupt('varint longer than 5 bytes')
}

function readFloat64(): number {
  need(8)
  const s = src
  const p = rpos
  if (LITTLE_ENDIAN) for (let i = 0; i < 8; i++) f64Bytes[i] = s[p + i]!
  else for (let i = 0; i < 8; i++) f64Bytes[7 - i] = s[p + i]!
  rpos = p + 8
  return f64[0]!
}

function readValue(depth: number): unknown {
  const tag = src[rpos++]
  if (tag === undefined) throw truncated()
  if (tag >= T_FIXINT) return tag - T_FIXINT
  if (tag >= T_FIXSTR) return readString(tag - T_FIXSTR)
  switch (tag) {
    case T_UNDEFINED:
      return undefined
    case T_NULL:
      return null
    case T_FALSE:
      return false
    case T_TRUE:
      return true
    case T_INT8: {
      need(1)
      return (src[rpos++]! << 24) >> 24
    }
    case T_INT16: {
      need(2)
      const p = rpos
      rpos = p + 2
      return ((src[p]! | (src[p + 1]! << 8)) << 16) >> 16
    }
    case T_INT32: {
      need(4)
      const p = rpos
      rpos = p + 4
      return src[p]! | (src[p + 1]! << 8) | (src[p + 2]! << 16) | (src[p + 3]! << 24)
    }
    case T_FLOAT64:
      return readFloat64()
    case T_STR8: {
      need(1)
      return readString(src[rpos++]!)
    }
    case T_STR16: {
      need(2)
      const n = src[rpos]! | (src[rpos + 1]! << 8)
      rpos += 2
      return readString(n)
    }
    case T_STR32: {
      need(4)
      const p = rpos
      const n = (src[p]! | (src[p + 1]! << 8) | (src[p + 2]! << 16) | (src[p + 3]! << 24)) >>> 0
      rpos = p + 4
      return readString(n)
    }
    case T_STR_UTF16: {
      const units = readVarint()
      need(units * 2)
      const start = rpos
      rpos += units * 2
      return ucs2Slice.call(src, start, rpos)
    }
    case T_ARRAY:
      return readArray(depth)
    case T_OBJECT:
      return readObject({}, depth)
    case T_OBJECT_NULL:
      return readObject(Object.create(null), depth)
    case T_DATE:
      return new Date(readFloat64())
    case T_MAP: {
      if (depth >= MAX_DEPTH) throw new Corrupt('nested too deeply')
      const n = readVarint()
      const map = new Map<unknown, unknown>()
      for (let i = 0; i < n; i++) {
        const key = readValue(depth + 1)
        map.set(key, readValue(depth + 1))
      }
      return map
    }
    case T_SET: {
      if (depth >= MAX_DEPTH) throw new Corrupt('nested too deeply')
      const n = readVarint()
      const set = new Set<unknown>()
      for (let i = 0; i < n; i++) set.add(readValue(depth + 1))
      return set
    }
    case T_BIGINT64: {
      need(8)
      const s = src
      const p = rpos
      if (LITTLE_ENDIAN) for (let i = 0; i < 8; i++) i64Bytes[i] = s[p + i]!
      else for (let i = 0; i < 8; i++) i64Bytes[7 - i] = s[p + i]!
      rpos = p + 8
      return i64[0]!
    }
    case T_BIGINT: {
      need(1)
      const sign = src[rpos++]
      if (sign !== 0 && sign !== 1) throw new Corrupt('bad BigInt sign')
      const n = readVarint()
      need(n)
      const hex = latin1Slice.call(src, rpos, rpos + n)
      if (!/^[0-9a-f]+$/.test(hex)) throw new Corrupt('bad BigInt digits')
      rpos += n
      const magnitude = BigInt(`0x${hex}`)
      return sign === 1 ? -magnitude : magnitude
    }
    case T_BUFFER: {
      const n = readVarint()
      need(n)
      const b = Buffer.allocUnsafe(n)
      b.set(src.subarray(rpos, rpos + n))
      rpos += n
      return b
    }
    case T_UINT8ARRAY: {
      const n = readVarint()
      need(n)
      const u = new Uint8Array(n)
      u.set(src.subarray(rpos, rpos + n))
      rpos += n
      return u
    }
    case T_TYPED: {
      need(1)
      const Ctor = TYPED_ARRAYS[src[rpos++]!]
      if (Ctor === undefined) throw new Corrupt(`unknown typed array kind ${src[rpos - 1]}`)
      const n = readVarint()
      need(n)
      if (n % Ctor.BYTES_PER_ELEMENT !== 0) throw new Corrupt('typed array length is not whole elements')
      const ta = new Ctor(n / Ctor.BYTES_PER_ELEMENT)
      const bytes = new Uint8Array(ta.buffer)
      bytes.set(src.subarray(rpos, rpos + n))
      if (!LITTLE_ENDIAN) swapElements(bytes, Ctor.BYTES_PER_ELEMENT)
      rpos += n
      return ta
    }
    default:
      rpos--
      throw new Corrupt(`unknown tag 0x${tag.toString(16)}`)
  }
}

function readArray(depth: number): unknown[] {
  if (depth >= MAX_DEPTH) throw new Corrupt('nested too deeply')
  const n = readVarint()
  if (n > 0xffffffff) throw new Corrupt('array length out of range')
  const arr: unknown[] = []
  let i = 0
  while (i < n) {
    if (src[rpos] === T_HOLES) {
      rpos++
      const count = readVarint()
      if (count === 0 || count > n - i) throw new Corrupt('bad run of array holes')
      i += count
      arr.length = i
    } else {
      arr.push(readValue(depth + 1))
      i++
    }
  }
  return arr
}

function readObject(obj: Record<string, unknown>, depth: number): Record<string, unknown> {
  if (depth >= MAX_DEPTH) throw new Corrupt('nested too deeply')
  for (;;) {
    const tag = src[rpos++]
    if (tag === T_END) return obj
    let key: string
    if (tag !== undefined && tag >= T_FIXSTR && tag < T_FIXINT) key = readKey(tag - T_FIXSTR)
    else if (tag === T_STR8 || tag === T_STR16 || tag === T_STR32 || tag === T_STR_UTF16) {
      rpos--
      key = readValue(depth) as string
    } else if (tag === undefined) throw truncated()
    else {
      rpos--
      throw new Corrupt(`object key has tag 0x${tag.toString(16)}, expected a string`)
    }
    const value = readValue(depth + 1)
    if (key === '__proto__') {
      Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true })
    } else obj[key] = value
  }
}

/** Strings this short are decoded in JS; longer ones by Buffer#toString (one native call). */
const JS_DECODE_MAX = 12

function readString(n: number): string {
  if (rpos + n > rend) throw truncated()
  const start = rpos
  rpos = start + n
  if (n <= JS_DECODE_MAX) {
    const s = asciiInJs(start, n)
    if (s !== undefined) return s
  }
  return utf8Slice.call(src, start, start + n)
}

/** The string if the n bytes at `start` are all ASCII, else undefined. */
function asciiInJs(start: number, n: number): string | undefined {
  const s = src
  let out = ''
  let all = 0
  let i = start
  const end = start + n
  for (; i + 4 <= end; i += 4) {
    const a = s[i]!
    const b = s[i + 1]!
    const c = s[i + 2]!
    const d = s[i + 3]!
    all |= a | b | c | d
    out += fromCharCode(a, b, c, d)
  }
  for (; i < end; i++) {
    const a = s[i]!
    all |= a
    out += fromCharCode(a)
  }
  return all < 0x80 ? out : undefined
}

// Object keys repeat (across the objects of one array, and across values): a direct-mapped cache
// from key bytes to the string already made for them skips decoding, and the cached string is
// already internalized, so using it as a property name skips V8's string-table lookup too.
const KEY_CACHE_BITS = 12
const KEY_CACHE_SLOTS = 1 << KEY_CACHE_BITS
const KEY_CACHE_MAX_BYTES = 32
const keyCacheStrings: (string | undefined)[] = new Array(KEY_CACHE_SLOTS).fill(undefined)
const keyCacheLengths = new Uint8Array(KEY_CACHE_SLOTS)
const keyCacheBytes = new Uint8Array(KEY_CACHE_SLOTS * KEY_CACHE_MAX_BYTES)

function readKey(n: number): string {
  if (n > KEY_CACHE_MAX_BYTES || n === 0) return readString(n)
  if (rpos + n > rend) throw truncated()
  const s = src
  const start = rpos
  // Hash a sample of the bytes (the comparison below checks them all): length, ends and middle.
  const h = Math.imul(
    (n << 24) ^
      (s[start]! << 16) ^
      (s[start + n - 1]! << 8) ^
      s[start + (n >> 1)]! ^
      ((n > 1 ? s[start + 1]! : 0) << 4),
    0x9e3779b1,
  )
  const slot = h >>> (32 - KEY_CACHE_BITS)
  const base = slot * KEY_CACHE_MAX_BYTES
  if (keyCacheLengths[slot] === n) {
    let i = 0
    while (i < n && keyCacheBytes[base + i] === s[start + i]) i++
    if (i === n) {
      rpos = start + n
      return keyCacheStrings[slot]!
    }
  }
  const key = readString(n)
  keyCacheLengths[slot] = n
  keyCacheBytes.set(s.subarray(start, start + n), base)
  keyCacheStrings[slot] = key
  return key
}
