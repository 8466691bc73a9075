/**
 * Stamp generations as this node learns them: from L2 (the authority), from the bus, and from its own
 * bumps that L2 has not got yet. The table itself (and the rule "an entry is current while none of its
 * stamps moved past the generation it recorded") is in coherence.ts; this module fetches what the table
 * does not know and raises it.
 */
import type { Clock } from '../clock.js'
import { sharedGens, zeroGens } from '../entry/entry.js'
import type { KeyNames } from '../keys.js'
import type { RemoteTier } from '../remote/remote-tier.js'
import type { UnsentWrites } from '../write/unsent-writes.js'
import type { Coherence } from './coherence.js'

export class Stamps {
  constructor(
    private readonly coherence: Coherence,
    private readonly remote: RemoteTier | undefined,
    private readonly keys: KeyNames,
    private readonly unsent: UnsentWrites,
    private readonly clock: Clock,
  ) {}

  /**
   * The generations of `stampKeys`: from L2 when `fromL2` (or the local table is not trusted), else from
   * the local table, fetching from L2 only the stamps it does not know. May throw: L2 unreachable.
   */
  async gens(stampKeys: readonly string[], deadline?: number, fromL2 = false): Promise<readonly number[]> {
    const { coherence, remote } = this
    if (remote !== undefined) {
      const unknown =
        fromL2 || !coherence.trusted ? stampKeys : stampKeys.filter((key) => !coherence.stamps.has(key))
      if (unknown.length > 0) {
        const gens = await remote.getStamps(
          unknown.map((key) => this.keys.stamp(key)),
          deadline,
        )
        const now = this.clock.now()
        for (let i = 0; i < unknown.length; i++) coherence.raiseStamp(unknown[i]!, gens[i] ?? 0, now)
      }
    }
    return this.local(stampKeys)
  }

  /** The generations of `stampKeys` in the local table (0 for stamps it does not know). */
  local(stampKeys: readonly string[]): readonly number[] {
    return sharedGens(stampKeys.map((key) => this.coherence.stampGen(key)))
  }

  /**
   * The generations of `stampKeys` from the local table, or undefined if it cannot answer (not trusted, or
   * a stamp it has not learned yet). The synchronous path of gens() for reads: no await, no arrays.
   */
  known(stampKeys: readonly string[]): readonly number[] | undefined {
    const { coherence } = this
    if (!coherence.trusted) return undefined
    const stamps = coherence.stamps
    let gens: number[] | undefined
    for (let i = 0; i < stampKeys.length; i++) {
      const stamp = stamps.get(stampKeys[i]!)
      if (stamp === undefined) return undefined
      if (stamp.gen !== 0) {
        gens ??= new Array<number>(stampKeys.length).fill(0)
        gens[i] = stamp.gen
      }
    }
    return gens ?? zeroGens(stampKeys.length)
  }

  /** Raises stamps in the local table: an invalidation by tag or namespace takes effect here. */
  raise(stampKeys: readonly string[], gens: readonly number[]): void {
    const now = this.clock.now()
    for (let i = 0; i < stampKeys.length; i++) this.coherence.raiseStamp(stampKeys[i]!, gens[i]!, now)
  }

  /** Stamps bumped here but not yet in L2 stay raised, even when the stamp table is forgotten or pruned. */
  restoreUnsent(): void {
    if (this.unsent.stamps.size === 0) return
    const now = this.clock.now()
    for (const [key, gen] of this.unsent.stamps) this.coherence.raiseStamp(key, gen, now)
  }
}
