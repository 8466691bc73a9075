/**
 * Belady's optimal policy (OPT, "MIN"), the ceiling for any cache of `capacity` equal-sized entries on a
 * trace known in advance: on a miss the cache keeps the `capacity` keys among its contents and the new key
 * whose next use comes soonest, so it evicts the one used furthest in the future. The new key itself may be
 * the one dropped (an admission policy like TinyLFU's may decline a key too, so that is the fair bound for
 * it). Belady, "A study of replacement algorithms for a virtual-storage computer", IBM Systems Journal 5(2),
 * 1966.
 *
 * O(n log capacity): next uses are precomputed in one backward pass; the residents sit in a max-heap by next
 * use. A hit changes a resident's next use, so it is pushed again and the stale heap entry skipped when it
 * surfaces (compared with the key's current next use).
 */
export function optimalHits(trace: Int32Array, capacity: number): number {
  const n = trace.length
  // Dense ids, so per-key state lives in typed arrays.
  const ids = new Int32Array(n)
  const idOf = new Map<number, number>()
  for (let i = 0; i < n; i++) {
    let id = idOf.get(trace[i]!)
    if (id === undefined) {
      id = idOf.size
      idOf.set(trace[i]!, id)
    }
    ids[i] = id
  }
  const never = n // "no next use": later than any index
  const nextUse = new Int32Array(n)
  const seen = new Int32Array(idOf.size).fill(never)
  for (let i = n - 1; i >= 0; i--) {
    nextUse[i] = seen[ids[i]!]!
    seen[ids[i]!] = i
  }
  const resident = new Uint8Array(idOf.size)
  const current = new Int32Array(idOf.size) // a resident's next use
  const heap = new MaxHeap(capacity + 1)
  let size = 0
  let hits = 0
  for (let i = 0; i < n; i++) {
    const id = ids[i]!
    const next = nextUse[i]!
    if (resident[id] === 1) {
      hits++
    } else {
      if (next === never) continue // never used again: keeping it cannot help
      resident[id] = 1
      size++
    }
    current[id] = next
    heap.push(next, id)
    if (size > capacity) {
      // Evict the resident used furthest in the future (perhaps the key just added).
      for (;;) {
        const top = heap.popId()
        if (resident[top] === 1 && current[top] === heap.lastPriority) {
          resident[top] = 0
          size--
          break
        }
      }
    }
    // Entries that are no longer anyone's current next use only take space: compact now and then.
    if (heap.length > 4 * (capacity + 1))
      heap.rebuild((id, priority) => resident[id] === 1 && current[id] === priority)
  }
  return hits
}

/** A binary max-heap of (priority, id) pairs in typed arrays. */
class MaxHeap {
  private priorities: Int32Array
  private ids: Int32Array
  length = 0
  /** Priority of the entry popIdLast returned. */
  lastPriority = 0

  constructor(initial: number) {
    this.priorities = new Int32Array(Math.max(16, initial))
    this.ids = new Int32Array(Math.max(16, initial))
  }

  push(priority: number, id: number): void {
    if (this.length === this.priorities.length) {
      const priorities = new Int32Array(this.length * 2)
      priorities.set(this.priorities)
      this.priorities = priorities
      const ids = new Int32Array(this.length * 2)
      ids.set(this.ids)
      this.ids = ids
    }
    let i = this.length++
    const p = this.priorities
    const d = this.ids
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (p[parent]! >= priority) break
      p[i] = p[parent]!
      d[i] = d[parent]!
      i = parent
    }
    p[i] = priority
    d[i] = id
  }

  /** Removes the entry with the highest priority; returns its id (its priority is in lastPriority). */
  popId(): number {
    const p = this.priorities
    const d = this.ids
    const topId = d[0]!
    this.lastPriority = p[0]!
    const last = --this.length
    const priority = p[last]!
    const id = d[last]!
    let i = 0
    for (;;) {
      let child = 2 * i + 1
      if (child >= last) break
      if (child + 1 < last && p[child + 1]! > p[child]!) child++
      if (p[child]! <= priority) break
      p[i] = p[child]!
      d[i] = d[child]!
      i = child
    }
    p[i] = priority
    d[i] = id
    return topId
  }

  /** Keeps only the entries for which `keep` holds, and restores the heap order. */
  rebuild(keep: (id: number, priority: number) => boolean): void {
    const p = this.priorities
    const d = this.ids
    let kept = 0
    for (let i = 0; i < this.length; i++) {
      if (keep(d[i]!, p[i]!)) {
        p[kept] = p[i]!
        d[kept] = d[i]!
        kept++
      }
    }
    this.length = 0
    for (let i = 0; i < kept; i++) this.push(p[i]!, d[i]!)
  }
}
