import { describe, expect, it } from 'vitest'
import { UnsentWrites } from '../../src/write/unsent-writes.js'

describe('UnsentWrites', () => {
  it('keeps the newest write of a key; an older one does not replace it', () => {
    const unsent = new UnsentWrites()
    const first = unsent.keep('k', 10, undefined)
    expect(unsent.get('k')).toBe(first)
    const same = unsent.keep('k', 10, undefined)
    expect(same).not.toBe(first) // the same version: the later call's record
    expect(unsent.get('k')).toBe(same)
    expect(unsent.keep('k', 9, undefined)).toBe(same)
    expect(unsent.get('k')).toEqual({ version: 10, entry: undefined })
    const newer = unsent.keep('k', 11, undefined)
    expect(unsent.get('k')).toBe(newer)
    expect(unsent.get('other')).toBeUndefined()
  })

  it('forget removes only the record it is given, not a newer one kept since', () => {
    const unsent = new UnsentWrites()
    const old = unsent.keep('k', 10, undefined)
    const newer = unsent.keep('k', 11, undefined)
    unsent.forget('k', old)
    expect(unsent.get('k')).toBe(newer)
    unsent.forget('k', newer)
    expect(unsent.get('k')).toBeUndefined()
  })

  it('supersede drops records up to the version that reached L2, not newer ones', () => {
    const unsent = new UnsentWrites()
    unsent.keep('a', 10, undefined)
    unsent.keep('b', 10, undefined)
    unsent.keep('c', 10, undefined)
    unsent.supersede('a', 10)
    unsent.supersede('b', 9)
    unsent.supersede('c', 11)
    unsent.supersede('none', 11)
    expect(unsent.get('a')).toBeUndefined()
    expect(unsent.get('b')).toBeDefined()
    expect(unsent.get('c')).toBeUndefined()
  })

  it('clear forgets writes and stamps', () => {
    const unsent = new UnsentWrites()
    unsent.keep('k', 1, undefined)
    unsent.stamps.set('t:x', 5)
    unsent.clear()
    expect(unsent.get('k')).toBeUndefined()
    expect(unsent.stamps.size).toBe(0)
  })
})
