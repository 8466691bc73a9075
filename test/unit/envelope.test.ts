import { describe, expect, it } from 'vitest'
import {
  decodeEnvelope,
  type EnvelopeHeader,
  encodeEnvelope,
  stampGenOffsets,
} from '../../src/coherence/envelope.js'

const header: EnvelopeHeader = {
  writtenAt: 1_700_000_000_123,
  loadMs: 42,
  freshUntil: 1_700_000_060_123,
  staleUntil: 1_700_003_600_123,
  namespacePath: 'users:admins',
  stampKeys: ['n:', 'n:users', 'n:users:admins', 't:org:7'],
  stampGens: [0, 3, 1, 12],
}
const payload = Buffer.from([1, 2, 3, 4, 5])

describe('entry envelope', () => {
  it('round-trips every header field and the payload', () => {
    const decoded = decodeEnvelope(encodeEnvelope(header, payload))
    const { payload: got, namespaceStamps, maxStampGen, ...rest } = decoded
    expect(rest).toEqual(header)
    expect(namespaceStamps).toBe(3)
    expect(maxStampGen).toBe(12)
    expect(Buffer.from(got).equals(payload)).toBe(true)
  })

  it('decodes a plain Uint8Array view at an offset as it decodes a Buffer', () => {
    const encoded = encodeEnvelope({ ...header, stampGens: [7, 3, 1, 2] }, payload)
    const chunk = new Uint8Array(encoded.length + 9)
    chunk.set(encoded, 9)
    const decoded = decodeEnvelope(chunk.subarray(9))
    expect(decoded).toMatchObject({ ...header, stampGens: [7, 3, 1, 2], maxStampGen: 7 })
    expect(Array.from(decoded.payload)).toEqual([...payload])
  })

  it('stampGenOffsets names where each generation is: a store that rewrites them there changes only them', () => {
    const header: EnvelopeHeader = {
      writtenAt: 1,
      loadMs: 2,
      freshUntil: 3,
      staleUntil: 4,
      namespacePath: 'shop:eu',
      stampKeys: ['n:', 'n:shop', 'n:shop:eu', 't:größe', 't:x'],
      stampGens: [0, 5, 0, 7, 9],
    }
    const payload = Buffer.from('payload')
    const bytes = encodeEnvelope(header, payload)
    const offsets = stampGenOffsets(header)
    expect(offsets.map((at) => bytes.readDoubleBE(at))).toEqual([0, 5, 0, 7, 9])
    const rewritten = [11, 12, 13, 14, 15]
    offsets.forEach((at, i) => {
      bytes.writeDoubleBE(rewritten[i]!, at)
    })
    const decoded = decodeEnvelope(bytes)
    expect(decoded.stampGens).toEqual(rewritten)
    expect(decoded.stampKeys).toEqual(header.stampKeys)
    expect(decoded.namespacePath).toBe('shop:eu')
    expect(Buffer.from(decoded.payload).toString()).toBe('payload')
  })

  it('keeps Infinity for entries that never go stale, and clamps loadMs to its field', () => {
    const forever = { ...header, freshUntil: Number.POSITIVE_INFINITY, staleUntil: Number.POSITIVE_INFINITY }
    expect(decodeEnvelope(encodeEnvelope(forever, payload)).staleUntil).toBe(Number.POSITIVE_INFINITY)
    expect(decodeEnvelope(encodeEnvelope({ ...header, loadMs: -5 }, payload)).loadMs).toBe(0)
    expect(decodeEnvelope(encodeEnvelope({ ...header, loadMs: 2 ** 40 }, payload)).loadMs).toBe(0xffffffff)
  })

  it('decodes alternating envelopes with different namespaces and stamps correctly (the tail cache)', () => {
    const other: EnvelopeHeader = { ...header, namespacePath: '', stampKeys: ['n:'], stampGens: [5] }
    const a = encodeEnvelope(header, payload)
    const b = encodeEnvelope(other, payload)
    for (let i = 0; i < 3; i++) {
      expect(decodeEnvelope(a)).toMatchObject({ namespacePath: 'users:admins', stampGens: [0, 3, 1, 12] })
      expect(decodeEnvelope(b)).toMatchObject({ namespacePath: '', stampKeys: ['n:'], stampGens: [5] })
    }
    // Same tail, other generations: not mistaken for the cached one.
    const bumped = encodeEnvelope({ ...header, stampGens: [0, 3, 1, 13] }, payload)
    expect(decodeEnvelope(a).stampGens).toEqual([0, 3, 1, 12])
    expect(decodeEnvelope(bumped).stampGens).toEqual([0, 3, 1, 13])
  })

  it('the decoded tail does not alias the input bytes (they may be a reused socket chunk)', () => {
    const bytes = encodeEnvelope(header, payload)
    const first = decodeEnvelope(bytes)
    bytes.fill(0, 30) // the chunk is reused for something else
    expect(first.stampKeys).toEqual(header.stampKeys)
    expect(decodeEnvelope(encodeEnvelope(header, payload)).stampKeys).toEqual(header.stampKeys)
  })

  it('rejects an unknown format byte and every truncation of the header as E_CORRUPT_ENTRY', () => {
    const bytes = encodeEnvelope(header, payload)
    const wrong = Buffer.from(bytes)
    wrong[0] = 2
    expect(() => decodeEnvelope(wrong)).toThrow(expect.objectContaining({ code: 'E_CORRUPT_ENTRY' }))
    const headerEnd = bytes.length - payload.length
    for (let cut = 0; cut < headerEnd; cut++) {
      expect(() => decodeEnvelope(bytes.subarray(0, cut)), `cut at ${cut}`).toThrow(
        expect.objectContaining({ code: 'E_CORRUPT_ENTRY' }),
      )
    }
  })
})
