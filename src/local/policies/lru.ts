import { ListPolicy } from './list-policy.js'
import type { PolicyContext } from './policy.js'

/** Least recently used: one list in access order; a hit moves the entry to the tail, eviction takes the head. */
export class LruPolicy extends ListPolicy {
  constructor(context: PolicyContext) {
    super(context, 'lru')
  }

  onHits(slots: Int32Array, count: number): void {
    const list = this.list
    for (let i = 0; i < count; i++) list.moveToTail(slots[i]!)
  }

  /** Writing a key counts as using it, as in lru-cache. */
  override onUpdate(slot: number, oldSize: number): void {
    super.onUpdate(slot, oldSize)
    this.list.moveToTail(slot)
  }
}
