/**
 * The unsent overlay: this node's writes that did not reach L2 (Redis unreachable), until their retry
 * lands or a newer write supersedes them. Reads answer from them (read-your-writes, guarantee 1) whatever
 * L1 dropped meanwhile (a bus reconnect purges it) and whatever older value L2 still holds. Stamps this
 * node bumped that L2 has not got yet are kept with the generation assumed locally, so the bump stays in
 * effect here even when the stamp table is forgotten (bus reconnect) or pruned.
 *
 * Only the outage queue (outage-queue.ts) adds and removes records; reads and L1 fills consult them.
 */
import type { L1Entry } from '../entry/entry.js'

/** A write of this node that L2 has not got yet. `entry` undefined: a delete. */
export interface UnsentWrite {
  version: number
  entry: L1Entry | undefined
}

export class UnsentWrites {
  private readonly writes = new Map<string, UnsentWrite>()
  /** Stamps bumped here but not yet in L2, with the generation assumed locally. */
  readonly stamps = new Map<string, number>()

  get(rel: string): UnsentWrite | undefined {
    return this.writes.get(rel)
  }

  /** Records a write of `rel` that failed to reach L2 (unless a newer one is recorded); returns the record. */
  keep(rel: string, version: number, entry: L1Entry | undefined): UnsentWrite {
    const existing = this.writes.get(rel)
    if (existing !== undefined && existing.version > version) return existing
    const own = { version, entry }
    this.writes.set(rel, own)
    return own
  }

  /** `own` reached L2 (or was found superseded there): reads no longer need it. */
  forget(rel: string, own: UnsentWrite): void {
    if (this.writes.get(rel) === own) this.writes.delete(rel)
  }

  /** A write of `rel` with `version` reached L2: older unsent writes of this node are superseded. */
  supersede(rel: string, version: number): void {
    const own = this.writes.get(rel)
    if (own !== undefined && own.version <= version) this.writes.delete(rel)
  }

  clear(): void {
    this.writes.clear()
    this.stamps.clear()
  }
}
