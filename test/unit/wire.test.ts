import { describe, expect, it } from 'vitest'
import {
  decodeMessage,
  encodeHeartbeat,
  encodeMessage,
  HEARTBEAT_KIND,
  type HeartbeatMessage,
  type InvalidationMessage,
  MAX_HEARTBEAT_BYTES,
  MAX_ITEMS,
  MessageKind,
  NODE_ID_BYTES,
  UNKNOWN_KIND,
  WIRE_VERSION,
} from '../../src/bus/wire.js'
import { createCache, memoryBus } from '../../src/index.js'
import { settle } from '../support/nodes.js'

const origin = Buffer.from('0102030405060708', 'hex')

describe('bus wire format', () => {
  it('round-trips both kinds, with any names and numbers', () => {
    const messages: InvalidationMessage[] = [
      { kind: MessageKind.Keys, origin, names: ['a', 'ключ', '🔑', ''], numbers: [1, 2 ** 52, 0, 7] },
      { kind: MessageKind.Stamps, origin, names: ['t:x', 'n:users'], numbers: [3, 4] },
      { kind: MessageKind.Keys, origin, names: [], numbers: [] },
    ]
    for (const message of messages) {
      const decoded = decodeMessage(encodeMessage(message))
      expect(decoded).not.toBe(UNKNOWN_KIND)
      const { kind, names, numbers } = decoded as InvalidationMessage
      expect({ kind, names, numbers }).toEqual({
        kind: message.kind,
        names: message.names,
        numbers: message.numbers,
      })
      expect((decoded as InvalidationMessage).origin.equals(origin)).toBe(true)
    }
  })

  it('a kind this node does not know is UNKNOWN_KIND, not corrupt, whatever its body', () => {
    const bytes = encodeMessage({ kind: MessageKind.Keys, origin, names: ['k'], numbers: [1] })
    for (const kind of [0, 4, 9, 255]) {
      const unknown = Buffer.from(bytes)
      unknown[1] = kind
      expect(decodeMessage(unknown)).toBe(UNKNOWN_KIND)
      // The body of a new kind may be anything: cut it short, or replace it.
      expect(decodeMessage(unknown.subarray(0, 2 + NODE_ID_BYTES))).toBe(UNKNOWN_KIND)
      expect(decodeMessage(Buffer.concat([unknown.subarray(0, 10), Buffer.alloc(50, 0xff)]))).toBe(
        UNKNOWN_KIND,
      )
    }
  })

  it('a newer wire version is UNKNOWN_KIND; version 0 and short bytes are corrupt', () => {
    const bytes = encodeMessage({ kind: MessageKind.Keys, origin, names: ['k'], numbers: [1] })
    const newer = Buffer.from(bytes)
    newer[0] = WIRE_VERSION + 1
    expect(decodeMessage(newer)).toBe(UNKNOWN_KIND)
    const zero = Buffer.from(bytes)
    zero[0] = 0
    expect(() => decodeMessage(zero)).toThrow(expect.objectContaining({ code: 'E_CORRUPT_ENTRY' }))
    expect(() => decodeMessage(Buffer.alloc(0))).toThrow(expect.objectContaining({ code: 'E_CORRUPT_ENTRY' }))
    expect(() => decodeMessage(bytes.subarray(0, 5))).toThrow(
      expect.objectContaining({ code: 'E_CORRUPT_ENTRY' }),
    )
  })

  it('a truncated known message is corrupt', () => {
    const bytes = encodeMessage({ kind: MessageKind.Stamps, origin, names: ['t:x', 't:y'], numbers: [1, 2] })
    for (let cut = 2 + NODE_ID_BYTES; cut < bytes.length; cut++) {
      expect(() => decodeMessage(bytes.subarray(0, cut))).toThrow(
        expect.objectContaining({ code: 'E_CORRUPT_ENTRY' }),
      )
    }
  })

  it('a cache ignores and counts a message of an unknown kind, and keeps applying the known ones', async () => {
    const bus = memoryBus()
    const a = createCache({ namespace: 'wire', bus })
    const b = createCache({ namespace: 'wire', bus })
    try {
      await Promise.all([a.ready(), b.ready()])
      await b.set('k', 'b')
      const newer = encodeMessage({
        kind: MessageKind.Keys,
        origin,
        names: ['k'],
        numbers: [Number.MAX_SAFE_INTEGER],
      })
      newer[1] = 4 // a kind from a newer node: it would have invalidated k, were it a keys message
      await bus.publish('coherent:wire', newer)
      await bus.publish('coherent:wire', Buffer.from([WIRE_VERSION, MessageKind.Keys, 1, 2])) // corrupt
      await settle()
      expect(b.stats().bus).toMatchObject({ unknown: 1, dropped: 1, received: 0 })
      expect(await b.get('k')).toBe('b')
      await a.set('k', 'a') // known messages still apply
      await settle()
      expect(await b.get('k')).toBeUndefined()
      expect(b.stats().bus).toMatchObject({ unknown: 1, dropped: 1, received: 1 })
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })
})

/** The error decodeMessage throws for `bytes` (failing the test if it does not throw). */
function corrupt(bytes: Uint8Array): Error & { code?: string } {
  try {
    decodeMessage(bytes)
  } catch (err) {
    return err as Error & { code?: string }
  }
  throw new Error('decoded without an error')
}

describe('bus wire format: limits and what each corrupt message says', () => {
  it('at most MAX_ITEMS items in a message', () => {
    const names = (n: number) => Array.from({ length: n }, (_, i) => `k${i}`)
    const ok = encodeMessage({
      kind: MessageKind.Keys,
      origin,
      names: names(MAX_ITEMS),
      numbers: names(MAX_ITEMS).map(() => 1),
    })
    expect((decodeMessage(ok) as InvalidationMessage).names).toHaveLength(MAX_ITEMS)
    const over = encodeMessage({
      kind: MessageKind.Keys,
      origin,
      names: names(MAX_ITEMS + 1),
      numbers: names(MAX_ITEMS + 1).map(() => 1),
    })
    const error = corrupt(over)
    expect(error).toMatchObject({
      code: 'E_CORRUPT_ENTRY',
      message: expect.stringContaining('truncated or corrupt'),
    })
    expect(error.cause).toBeInstanceOf(RangeError)
    expect((error.cause as Error).message).toContain(`more than ${MAX_ITEMS}`)
  })

  it('says why: no wire version, too short, truncated', () => {
    const bytes = encodeMessage({ kind: MessageKind.Keys, origin, names: ['k'], numbers: [1] })
    const zero = Buffer.from(bytes)
    zero[0] = 0
    expect(corrupt(zero).message).toContain('no wire version')
    expect(corrupt(bytes.subarray(0, 5)).message).toContain('too short')
    expect(corrupt(bytes.subarray(0, bytes.length - 1)).message).toContain('truncated or corrupt')
  })

  it('heartbeats round-trip, the empty one included, up to MAX_HEARTBEAT_BYTES', () => {
    for (const body of ['', '{"name":"a"}', 'x'.repeat(MAX_HEARTBEAT_BYTES)]) {
      const decoded = decodeMessage(encodeHeartbeat(origin, body)) as HeartbeatMessage
      expect(decoded.kind).toBe(HEARTBEAT_KIND)
      expect(decoded.body).toBe(body)
      expect(decoded.origin.equals(origin)).toBe(true)
    }
  })

  it('a heartbeat that is cut short, too long, or not the length it says is corrupt', () => {
    const beat = encodeHeartbeat(origin, '{"name":"a"}')
    for (const cut of [2 + NODE_ID_BYTES, 2 + NODE_ID_BYTES + 3]) {
      const error = corrupt(beat.subarray(0, cut))
      expect(error).toMatchObject({
        code: 'E_CORRUPT_ENTRY',
        message: expect.stringContaining('Heartbeat is truncated'),
      })
    }
    const wrong = [
      beat.subarray(0, beat.length - 1),
      Buffer.concat([beat, Buffer.from([0x20])]),
      encodeHeartbeat(origin, 'x'.repeat(MAX_HEARTBEAT_BYTES + 1)),
    ]
    for (const bytes of wrong) {
      expect(corrupt(bytes)).toMatchObject({
        code: 'E_CORRUPT_ENTRY',
        message: expect.stringContaining('Heartbeat has the wrong length'),
      })
    }
  })
})
