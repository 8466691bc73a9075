import { ListPolicy } from './list-policy.js'
import type { PolicyContext } from './policy.js'

/**
 * First in, first out: one list in insertion order. Reads do not reorder; replacing the value of a
 * key keeps its original position (the key was not re-inserted). Eviction takes the head.
 */
export class FifoPolicy extends ListPolicy {
  constructor(context: PolicyContext) {
    super(context, 'fifo')
  }

  /** Reads do not reorder a FIFO. */
  onHits(): void {}
}
