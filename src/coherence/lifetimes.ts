/**
 * How long the things that judge entries must live. A stamp must outlive every entry written under an
 * older generation (or that entry would look current again once its stamp expired and read as 0); a
 * tombstone must outlive every L1 copy of what it deleted (so that a later write of the key still gets a
 * larger version); a stamp this node learned matters only while an entry it could judge may be in L1.
 */

const STAMP_TTL_MARGIN_MS = 60_000 // stamps outlive the entries they judge by at least this much
export const FOREVER_MS = 365 * 86_400_000 // what "no expiry" means for an L2 key or stamp

export class Lifetimes {
  private longestLifetimeMs: number

  constructor(
    /** How long an L1 entry (and so a stamp learned from the bus or L2) can live in this node. */
    readonly trustWindowMs: number,
    /** ttl + grace of the cache's defaults. */
    defaultLifetimeMs: number,
  ) {
    this.longestLifetimeMs = defaultLifetimeMs
  }

  /** An entry with this ttl + grace was written. */
  note(lifetimeMs: number): void {
    if (lifetimeMs > this.longestLifetimeMs) this.longestLifetimeMs = lifetimeMs
  }

  /** Stamps must outlive every entry written under an older generation. */
  stampTtl(): number {
    const ttl = this.longestLifetimeMs + STAMP_TTL_MARGIN_MS
    return Number.isFinite(ttl) ? ttl : FOREVER_MS
  }

  /** A tombstone must outlive every L1 copy of what it deleted, so later versions keep growing. */
  tombstoneTtl(): number {
    const ttl = this.stampMaxAge() + STAMP_TTL_MARGIN_MS
    return Number.isFinite(ttl) ? ttl : FOREVER_MS
  }

  /** How long a stamp this node learned can matter: the longest an entry it judges stays in this L1. */
  stampMaxAge(): number {
    return Math.min(this.trustWindowMs, this.longestLifetimeMs)
  }
}
