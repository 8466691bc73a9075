import { describe, expect, it } from 'vitest'
import { check, type Op } from './support/coherence-checker.js'

// The checker is evidence only if it can fail: synthetic histories with known violations.
const bounds = { propagationMs: 10, l1TtlMs: 100 }
const op = (
  node: number,
  kind: Op['kind'],
  key: string,
  value: string | undefined,
  start: number,
  end: number,
): Op => ({
  node,
  kind,
  key,
  value,
  start,
  end,
})

describe('coherence checker', () => {
  it('accepts a history where every read is fresh enough', () => {
    const history = [
      op(0, 'set', 'k1', '0:1', 0, 1),
      op(1, 'get', 'k1', '0:1', 2, 3),
      op(0, 'set', 'k1', '0:2', 4, 5),
      op(1, 'get', 'k1', '0:1', 6, 7), // within the propagation bound
      op(1, 'get', 'k1', '0:2', 20, 21),
    ]
    expect(check(history, [], bounds)).toEqual([])
  })

  it('flags a node reading an older value after its own write (guarantee 1)', () => {
    const history = [
      op(0, 'set', 'k1', '0:1', 0, 1),
      op(0, 'set', 'k1', '0:2', 2, 3),
      op(0, 'get', 'k1', '0:1', 4, 5),
    ]
    expect(check(history, [], bounds)).toMatchObject([{ guarantee: 1 }])
  })

  it('flags another node still reading the old value past the bound (guarantee 2)', () => {
    const history = [
      op(0, 'set', 'k1', '0:1', 0, 1),
      op(0, 'set', 'k1', '0:2', 2, 3),
      op(1, 'get', 'k1', '0:1', 50, 51),
    ]
    expect(check(history, [], bounds)).toMatchObject([{ guarantee: 2 }])
  })

  it('allows l1.ttl of staleness near a bus disruption, and no more', () => {
    const stale = (at: number) => [
      op(0, 'set', 'k1', '0:1', 0, 1),
      op(0, 'set', 'k1', '0:2', 2, 3),
      op(1, 'get', 'k1', '0:1', at, at + 1),
    ]
    expect(check(stale(50), [40], bounds)).toEqual([])
    expect(check(stale(150), [40], { ...bounds, disruptionWindowMs: 0 })).toMatchObject([{ guarantee: 2 }])
  })

  it('flags a value resurrected after a delete, and after a tag invalidation', () => {
    const del = [
      op(0, 'set', 'k1', '0:1', 0, 1),
      op(0, 'delete', 'k1', undefined, 2, 3),
      op(1, 'get', 'k1', '0:1', 50, 51),
    ]
    expect(check(del, [], bounds)).toHaveLength(1)
    const tags = [
      op(0, 'set', 'k1', '0:1', 0, 1),
      { ...op(1, 'tags', '', undefined, 2, 3), tags: ['mod3:1'] },
      op(1, 'get', 'k1', '0:1', 50, 51),
    ]
    expect(check(tags, [], bounds)).toHaveLength(1)
  })

  it('flags a read of nothing after a write that nothing removed', () => {
    const history = [op(0, 'set', 'k1', '0:1', 0, 1), op(0, 'get', 'k1', undefined, 5, 6)]
    expect(check(history, [], bounds)).toMatchObject([{ guarantee: 1 }])
    expect(
      check([...history.slice(0, 1), op(1, 'delete', 'k1', undefined, 2, 3), history[1]!], [], bounds),
    ).toEqual([])
  })

  it('does not order concurrent writes', () => {
    const history = [
      op(0, 'set', 'k1', '0:1', 0, 10),
      op(1, 'set', 'k1', '1:2', 5, 6),
      op(1, 'get', 'k1', '0:1', 50, 51),
    ]
    expect(check(history, [], bounds)).toEqual([])
  })
})

describe('coherence checker: writes that Redis did not take at once', () => {
  it('holds other nodes to no bound for a degraded write, and its own node to read-your-writes', () => {
    const degraded = { ...op(0, 'set', 'k1', '0:2', 2, 3), degraded: true }
    const history = [op(0, 'set', 'k1', '0:1', 0, 1), degraded, op(1, 'get', 'k1', '0:1', 50, 51)]
    expect(check(history, [], bounds)).toEqual([]) // it reaches node 1 only once Redis is back for node 0
    expect(check([...history, op(0, 'get', 'k1', '0:1', 52, 53)], [], bounds)).toMatchObject([
      { guarantee: 1, read: { node: 0 } },
    ])
    const missing = [
      { ...op(0, 'set', 'k1', '0:1', 0, 1), degraded: true },
      op(1, 'get', 'k1', undefined, 50, 51),
    ]
    expect(check(missing, [], bounds)).toEqual([])
    expect(check([...missing, op(0, 'get', 'k1', undefined, 52, 53)], [], bounds)).toMatchObject([
      { guarantee: 1 },
    ])
  })
})
