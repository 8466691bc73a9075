import { NIL, SlotList, type SlotStore } from '../slots.js'
import type { EvictionHost, Policy, PolicyContext } from './policy.js'

/**
 * First in, first out: one list in insertion order. Reads do not reorder; replacing the value of a
 * key keeps its original position (the key was not re-inserted). Eviction takes the head.
 */
export class FifoPolicy implements Policy {
  private readonly list: SlotList
  private readonly host: EvictionHost
  private readonly store: SlotStore<unknown>

  constructor(context: PolicyContext) {
    this.list = new SlotList(context.store)
    this.host = context.host
    this.store = context.store
  }

  onInsert(slot: number): void {
    this.list.pushTail(slot)
  }

  /** Reads do not reorder a FIFO. */
  onHits(): void {}

  onUpdate(slot: number, oldSize: number): void {
    this.list.resized(slot, oldSize)
  }

  onRemove(slot: number): void {
    this.list.unlink(slot)
  }

  evict(written: number): void {
    const host = this.host
    const list = this.list
    while (host.overBounds()) {
      let victim = list.head
      // An updated entry keeps its place and may be the head; evict-before-insert semantics skip it.
      if (victim === written) victim = this.store.links[4 * victim + 1]!
      if (victim === NIL) return
      host.evictSlot(victim)
    }
  }

  grow(): void {}

  clear(): void {
    this.list.clear()
  }

  check(): number[] {
    return this.list.check('fifo')
  }
}
