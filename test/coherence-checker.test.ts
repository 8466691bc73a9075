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
    expect(check(stale(50), [{ at: 40 }], bounds)).toEqual([])
    expect(check(stale(50), [{ at: 40, nodes: [0] }], bounds)).toMatchObject([{ guarantee: 2 }]) // not node 1
    expect(check(stale(150), [{ at: 40 }], { ...bounds, disruptionWindowMs: 0 })).toMatchObject([
      { guarantee: 2 },
    ])
    // A fault lasting 100 ms, then the window: l1.ttl applies from 40 until 40 + 100 + 20.
    const long = { ...bounds, l1TtlMs: 200, disruptionWindowMs: 20 }
    expect(check(stale(150), [{ at: 40, durationMs: 100 }], long)).toEqual([])
    expect(check(stale(170), [{ at: 40, durationMs: 100 }], long)).toMatchObject([{ guarantee: 2 }])
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

  it('holds other nodes to the bound again once the writer is back in step (a clean operation)', () => {
    const degraded = { ...op(0, 'set', 'k1', '0:2', 2, 3), degraded: true }
    const inStep = { ...op(0, 'get', 'k9', undefined, 20, 21), clean: true }
    const history = [op(0, 'set', 'k1', '0:1', 0, 1), degraded, inStep, op(1, 'get', 'k1', '0:1', 25, 26)]
    expect(check(history, [], bounds)).toEqual([]) // within 21 + propagation + bound
    expect(check([...history, op(1, 'get', 'k1', '0:1', 45, 46)], [], bounds)).toMatchObject([
      { guarantee: 2, read: { start: 45 } },
    ])
  })

  it("lets another node's degraded removal land after later writes, but never the node's own", () => {
    const tags = { ...op(1, 'tags', '', undefined, 0, 1), tags: ['mod3:1'], degraded: true }
    // Node 0 writes after node 1's invalidation resolved; it lands when node 1 is back in step (at 30).
    const history = [
      tags,
      op(0, 'set', 'k1', '0:1', 5, 6),
      { ...op(1, 'get', 'k9', undefined, 29, 30), clean: true },
    ]
    expect(check([...history, op(0, 'get', 'k1', undefined, 35, 36)], [], bounds)).toEqual([])
    // After it surely landed (30 + propagation), nothing explains a miss of a later write.
    expect(
      check(
        [...history, op(0, 'set', 'k1', '0:2', 50, 51), op(0, 'get', 'k1', undefined, 55, 56)],
        [],
        bounds,
      ),
    ).toMatchObject([{ guarantee: 1 }])
    // The node's own degraded invalidation is in effect for it at once: it cannot remove its later write.
    const own = [{ ...tags, node: 0 }, op(0, 'set', 'k1', '0:1', 5, 6), op(0, 'get', 'k1', undefined, 8, 9)]
    expect(check(own, [], bounds)).toMatchObject([{ guarantee: 1 }])
  })

  it('lets a write made out of step be ordered after invalidations it could not know of', () => {
    const inStep = { ...op(0, 'get', 'k9', undefined, 0, 1), clean: true }
    const tags = { ...op(1, 'tags', '', undefined, 20, 21), tags: ['mod3:1'] }
    const blind = { ...op(0, 'set', 'k1', '0:1', 30, 31), degraded: true }
    expect(check([inStep, tags, blind, op(0, 'get', 'k1', undefined, 40, 41)], [], bounds)).toEqual([])
    // Had node 0 been in step after the invalidation, its write would have recorded it.
    const knew = { ...op(0, 'get', 'k9', undefined, 32, 33), clean: true }
    const later = { ...blind, start: 35, end: 36 }
    expect(
      check([inStep, tags, knew, later, op(0, 'get', 'k1', undefined, 40, 41)], [], bounds),
    ).toMatchObject([{ guarantee: 1 }])
  })

  it("explains a miss of a node's write that another write replaced and a late invalidation removed", () => {
    // Node 1's invalidation could not reach Redis; node 0 writes; node 2 replaces it; node 1's invalidation
    // lands only once node 1 is in step again (at 60), so it may remove node 2's write.
    const tags = { ...op(1, 'tags', '', undefined, 0, 1), tags: ['mod3:1'], degraded: true }
    const history = [
      tags,
      op(0, 'set', 'k1', '0:1', 5, 6),
      op(2, 'set', 'k1', '2:2', 7, 8),
      op(0, 'get', 'k1', undefined, 12, 13),
      { ...op(1, 'get', 'k9', undefined, 59, 60), clean: true },
    ]
    expect(check(history, [], bounds)).toEqual([])
    // Without the late invalidation, node 0 must see a value.
    expect(check(history.slice(1), [], bounds)).toMatchObject([{ guarantee: 1 }])
  })
})
