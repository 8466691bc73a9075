import { NIL, SlotList } from '../slots.js'
import type { EvictionHost, Policy, PolicyContext } from './policy.js'

/** Least recently used: one list in access order; a hit moves the entry to the tail, eviction takes the head. */
export class LruPolicy implements Policy {
  private readonly list: SlotList
  private readonly host: EvictionHost

  constructor(context: PolicyContext) {
    this.list = new SlotList(context.store)
    this.host = context.host
  }

  onInsert(slot: number): void {
    this.list.pushTail(slot)
  }

  onHits(slots: Int32Array, count: number): void {
    const list = this.list
    for (let i = 0; i < count; i++) list.moveToTail(slots[i]!)
  }

  /** Writing a key counts as using it, as in lru-cache. */
  onUpdate(slot: number, oldSize: number): void {
    this.list.resized(slot, oldSize)
    this.list.moveToTail(slot)
  }

  onRemove(slot: number): void {
    this.list.unlink(slot)
  }

  evict(written: number): void {
    const host = this.host
    const list = this.list
    while (host.overBounds()) {
      const victim = list.head
      // The written entry is the tail, so it is the head only when it is alone (and then it fits).
      if (victim === NIL || victim === written) return
      host.evictSlot(victim)
    }
  }

  grow(): void {}

  clear(): void {
    this.list.clear()
  }

  check(): number[] {
    return this.list.check('lru')
  }
}
