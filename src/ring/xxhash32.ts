/**
 * xxHash32 (Yann Collet), the 32-bit member of the xxHash family: fast on short inputs, passes SMHasher,
 * and specified byte for byte, so every process and every Node version computes the same value for the
 * same string. Strings are hashed as their UTF-8 bytes, encoded here (lone surrogates become U+FFFD, as
 * TextEncoder does) so the result does not depend on any runtime encoder.
 *
 * test/hash-ring.test.ts checks it against the published vectors and against `xxhsum -H0` (the reference
 * implementation's command-line tool). Source: the xxHash specification, doc/xxhash_spec.md in
 * github.com/Cyan4973/xxHash.
 */
const P1 = 0x9e3779b1
const P2 = 0x85ebca77
const P3 = 0xc2b2ae3d
const P4 = 0x27d4eb2f
const P5 = 0x165667b1

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r))
}

function round(acc: number, lane: number): number {
  return Math.imul(rotl((acc + Math.imul(lane, P2)) | 0, 13), P1)
}

function read32(b: Uint8Array, i: number): number {
  return b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)
}

/** xxHash32 of `bytes[0..length)` with `seed`, as an unsigned 32-bit integer. */
export function xxh32(bytes: Uint8Array, length = bytes.length, seed = 0): number {
  let i = 0
  let h: number
  if (length >= 16) {
    let v1 = (seed + P1 + P2) | 0
    let v2 = (seed + P2) | 0
    let v3 = seed | 0
    let v4 = (seed - P1) | 0
    const limit = length - 16
    while (i <= limit) {
      v1 = round(v1, read32(bytes, i))
      v2 = round(v2, read32(bytes, i + 4))
      v3 = round(v3, read32(bytes, i + 8))
      v4 = round(v4, read32(bytes, i + 12))
      i += 16
    }
    h = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) | 0
  } else {
    h = (seed + P5) | 0
  }
  h = (h + length) | 0
  while (i + 4 <= length) {
    h = Math.imul(rotl((h + Math.imul(read32(bytes, i), P3)) | 0, 17), P4)
    i += 4
  }
  while (i < length) {
    h = Math.imul(rotl((h + Math.imul(bytes[i]!, P5)) | 0, 11), P1)
    i++
  }
  h ^= h >>> 15
  h = Math.imul(h, P2)
  h ^= h >>> 13
  h = Math.imul(h, P3)
  h ^= h >>> 16
  return h >>> 0
}

let scratch = new Uint8Array(256)

/** Writes the UTF-8 encoding of `s` into the scratch buffer; returns its length. */
function encodeUtf8(s: string): number {
  if (scratch.length < s.length * 3) scratch = new Uint8Array(s.length * 3)
  const out = scratch
  let n = 0
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i)
    if (c < 0x80) {
      out[n++] = c
    } else if (c < 0x800) {
      out[n++] = 0xc0 | (c >> 6)
      out[n++] = 0x80 | (c & 0x3f)
    } else {
      if (c >= 0xd800 && c <= 0xdfff) {
        const next = i + 1 < s.length ? s.charCodeAt(i + 1) : 0
        if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00)
          i++
          out[n++] = 0xf0 | (c >> 18)
          out[n++] = 0x80 | ((c >> 12) & 0x3f)
          out[n++] = 0x80 | ((c >> 6) & 0x3f)
          out[n++] = 0x80 | (c & 0x3f)
          continue
        }
        c = 0xfffd // a lone surrogate
      }
      out[n++] = 0xe0 | (c >> 12)
      out[n++] = 0x80 | ((c >> 6) & 0x3f)
      out[n++] = 0x80 | (c & 0x3f)
    }
  }
  return n
}

/** xxHash32 of the UTF-8 bytes of `s`. */
export function xxh32String(s: string, seed = 0): number {
  const length = encodeUtf8(s) // may replace the scratch buffer: read it after
  return xxh32(scratch, length, seed)
}
