import { NIL, SlotList, type SlotStore } from '../slots.js'
import type { EvictionHost, Policy, PolicyContext } from './policy.js'

/**
 * The part LRU and FIFO share: every entry on one list, new entries at the tail, eviction from the head.
 * They differ only in whether using an entry (a hit, or writing its key again) moves it to the tail.
 */
export abstract class ListPolicy implements Policy {
  protected readonly list: SlotList
  private readonly host: EvictionHost
  private readonly store: SlotStore<unknown>

  constructor(
    context: PolicyContext,
    private readonly name: string,
  ) {
    this.list = new SlotList(context.store)
    this.host = context.host
    this.store = context.store
  }

  abstract onHits(slots: Int32Array, count: number): void

  onInsert(slot: number): void {
    this.list.pushTail(slot)
  }

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
      // Evict-before-insert: the entry just written is skipped. It is the head only when FIFO kept an
      // updated entry in place, or when it is alone (then the next slot is NIL and it fits).
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
    return this.list.check(this.name)
  }
}
