import { describe, expect, it } from 'vitest'
import {
  decodeMessage,
  encodeMessage,
  type InvalidationMessage,
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
