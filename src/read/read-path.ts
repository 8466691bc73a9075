/**
 * The read path after an L1 miss (the L1 hit path itself is in cache.ts): find the best entry for a
 * key in L1, this node's unsent writes and L2; share one L2 read among concurrent callers of a key; judge
 * what L2 answered (expired? written under stamps that moved since?) and copy a current entry into L1.
 *
 * Rules enforced here:
 * - read-your-writes (guarantee 1): this node's own write that L2 has not got yet answers until its
 *   retry lands; a caller never joins a shared read that began before this node wrote or invalidated the
 *   key;
 * - no stale fill (guarantee 3): every L2 read is a fill (Coherence.fill) and enters L1 only if no
 *   invalidation overtook it (L1Writer.store);
 * - trust (guarantee 2): while the bus is down L1 is not read, except when L2 cannot answer either;
 * - degradation (guarantee 5): an L2 failure is answered from what this node has, marked degraded.
 */
import type { Channel } from 'node:diagnostics_channel'
import { stillCurrent } from '../coherence/coherence.js'
import type { DecodedEnvelope } from '../coherence/envelope.js'
import { decodeEnvelope } from '../coherence/envelope.js'
import { createEntry, handOut, type L1Entry } from '../entry/entry.js'
import { CorruptEntryError } from '../errors.js'
import { splitRel } from '../keys.js'
import type { CacheRuntime } from '../runtime.js'
import { decode } from '../serialization/codec.js'
import { hitChannel, missChannel, staleChannel } from '../stats/events.js'
import type { StoredEntry } from '../stores/store.js'
import type { UnsentWrite } from '../write/unsent-writes.js'
import type { Written } from '../write/write-path.js'

/**
 * The best entry a read found. `degraded`: L2 could not be asked (down, slow, or absent while the bus
 * is not trusted), so the entry comes from this node's L1 without the usual guarantees.
 */
export type Lookup = { entry: L1Entry; fresh: boolean; degraded: boolean } | undefined

/** An L2 read in flight that other callers of the same key may join (see readL2Shared). */
interface SharedRead {
  /** The fill token the read began with: a caller joins only if nothing touched the key since. */
  token: number
  /** Callers that joined (besides the one that started it), if any; they get the same answer. */
  joiners: { resolve: (found: Lookup) => void; reject: (err: unknown) => void }[] | undefined
}

const DONE: Promise<void> = Promise.resolve()

/** beforeL2's answer when L2 must be read: the L1 entry that answers if L2 cannot, and the time. */
class NeedsL2 {
  constructor(
    readonly candidate: L1Entry | undefined,
    readonly now: number,
  ) {}
}

export class ReadPath {
  /** L2 reads in flight by key, with the fill token each began with. */
  private readonly shared = new Map<string, SharedRead>()

  constructor(private readonly rt: CacheRuntime) {}

  /**
   * get() without a loader, past L1: a fresh value, or a stale one within grace when L2 cannot answer.
   * Every L1 miss comes here, so the L2 read is followed by one continuation that both judges the lookup
   * and answers (lookupTiers, awaited, would add a step per call).
   */
  get(rel: string): Promise<unknown> {
    const deadline = this.rt.deadline()
    const own = this.rt.unsent.get(rel)
    if (own !== undefined) return this.lookupOwn(rel, own, deadline).then((found) => this.answer(rel, found))
    const before = this.beforeL2(rel)
    if (!(before instanceof NeedsL2)) return Promise.resolve(this.answer(rel, before))
    return this.rt.coherence
      .fill((token) => this.readL2Shared(rel, token, deadline))
      .then(
        (fromL2) => this.answer(rel, this.afterL2(rel, before, fromL2)),
        (err: unknown) => this.answer(rel, this.afterL2Failed(rel, before, err)),
      )
  }

  /** What get() hands out for what a lookup found. */
  private answer(rel: string, found: Lookup): unknown {
    if (found === undefined) return undefined
    if (found.fresh) return handOut(found.entry)
    if (!found.degraded) return undefined
    // Fail-safe: L2 cannot answer, so a stale value within grace is better than nothing.
    this.rt.counters.staleServed++
    if (staleChannel.hasSubscribers) this.event(staleChannel, rel, { reason: 'l2-unavailable' })
    return handOut(found.entry)
  }

  /** Publishes a diagnostics event about `rel` (callers check hasSubscribers first). */
  event(channel: Channel, rel: string, fields: object): void {
    channel.publish({ namespace: this.rt.options.namespace, ...splitRel(rel), ...fields })
  }

  /**
   * Finds the best entry for `rel`: a fresh one from L1 (when trusted) or L2, else a stale one within
   * grace. When L2 cannot be reached, L1 answers even while untrusted (degradation beats failure).
   */
  lookup(rel: string, deadline: number | undefined): Promise<Lookup> {
    // Taken before reading: if the retry lands while we read, what we read may predate it.
    const own = this.rt.unsent.get(rel)
    return own === undefined ? this.lookupTiers(rel, deadline) : this.lookupOwn(rel, own, deadline)
  }

  /**
   * A strong read of L2 (read/strong-read.ts): a read of its own, joining none that began earlier, and
   * judged by the stamps L2 holds now rather than by what this node knows of them. May throw: L2
   * unreachable, or garbage (CorruptEntryError).
   */
  readStrong(rel: string, deadline: number | undefined): Promise<Lookup> {
    return this.rt.coherence.fill((token) => this.readL2(rel, token, deadline, undefined, true))
  }

  /** A fresh entry from L2 (copied into L1), or undefined if there is none or L2 cannot answer. */
  async readFresh(rel: string): Promise<Written | undefined> {
    const { coherence, counters } = this.rt
    try {
      const found = await coherence.fill((token) => this.readL2(rel, token, undefined))
      return found?.fresh ? { entry: found.entry, done: DONE } : undefined
    } catch (err) {
      if (err instanceof CorruptEntryError) counters.l2Corrupt++
      else counters.l2Errors++
      return undefined
    }
  }

  /** lookup() while this node holds a write of `rel` that L2 has not got yet. */
  private async lookupOwn(rel: string, own: UnsentWrite, deadline: number | undefined): Promise<Lookup> {
    const found = await this.lookupTiers(rel, deadline)
    if (found !== undefined && found.entry.version >= own.version) return found
    // This node's own write that L2 had not got yet (Redis was unreachable): it answers until its retry
    // lands (read-your-writes), unless a tag or namespace invalidation made here since voids it.
    const entry = own.entry
    if (entry === undefined || !this.rt.coherence.isCurrent(entry.stampKeys, entry.stampGens)) {
      return undefined
    }
    return { entry, fresh: this.rt.options.clock.now() < entry.freshUntil, degraded: false }
  }

  private async lookupTiers(rel: string, deadline: number | undefined): Promise<Lookup> {
    const before = this.beforeL2(rel)
    if (!(before instanceof NeedsL2)) return before
    let fromL2: Lookup
    try {
      fromL2 = await this.rt.coherence.fill((token) => this.readL2Shared(rel, token, deadline))
    } catch (err) {
      return this.afterL2Failed(rel, before, err)
    }
    return this.afterL2(rel, before, fromL2)
  }

  /** lookupTiers up to the L2 read: an answer from L1 (or none, without L2), or what the read needs. */
  private beforeL2(rel: string): Lookup | NeedsL2 {
    const rt = this.rt
    const { l1, remote, coherence, counters } = rt
    const now = rt.options.clock.now()
    let candidate: L1Entry | undefined
    if (l1 !== undefined) {
      const entry = coherence.trusted ? l1.get(rel) : l1.peek(rel)
      if (entry !== undefined && coherence.isCurrent(entry.stampKeys, entry.stampGens)) {
        if (coherence.trusted && now < entry.freshUntil) {
          counters.l1Hits++
          if (hitChannel.hasSubscribers) this.event(hitChannel, rel, { tier: 'l1' })
          return { entry, fresh: true, degraded: false }
        }
        candidate = entry
      }
      counters.l1Misses++
    }
    if (remote === undefined) {
      if (candidate === undefined) {
        if (missChannel.hasSubscribers) this.event(missChannel, rel, {})
        return undefined
      }
      const trusted = coherence.trusted
      if (!trusted) counters.l1DegradedHits++
      return { entry: candidate, fresh: trusted && now < candidate.freshUntil, degraded: !trusted }
    }
    return new NeedsL2(candidate, now)
  }

  /** lookupTiers once L2 failed: L2 is down or slow (the candidate answers, degraded), or sent garbage. */
  private afterL2Failed(rel: string, before: NeedsL2, err: unknown): Lookup {
    const { counters } = this.rt
    if (!(err instanceof CorruptEntryError)) {
      counters.l2Errors++
      // L2 is down or slow: answer from what this node has, trusted or not.
      const candidate = before.candidate
      if (candidate === undefined) return undefined
      counters.l1DegradedHits++
      return { entry: candidate, fresh: before.now < candidate.freshUntil, degraded: true }
    }
    // L2 answered with garbage (guarantee 7): dropped, counted, and read as a miss.
    counters.l2Corrupt++
    return this.afterL2(rel, before, undefined)
  }

  /** lookupTiers once L2 answered: counted, then the newer of the candidate and what L2 had. */
  private afterL2(rel: string, before: NeedsL2, fromL2: Lookup): Lookup {
    const { coherence, counters } = this.rt
    if (fromL2?.fresh) {
      counters.l2Hits++
      if (hitChannel.hasSubscribers) this.event(hitChannel, rel, { tier: 'l2' })
    } else {
      counters.l2Misses++
      if (missChannel.hasSubscribers) this.event(missChannel, rel, {})
    }
    const candidate = before.candidate
    if (candidate !== undefined && (fromL2 === undefined || candidate.version > fromL2.entry.version)) {
      // Only a stale (or untrusted) L1 entry remains, and L2 has nothing newer.
      return coherence.trusted && before.now < candidate.staleUntil
        ? { entry: candidate, fresh: false, degraded: false }
        : fromL2
    }
    return fromL2
  }

  /**
   * One L2 read per key at a time: a stampede of callers on a cold key asks L2 once, not once each. A
   * caller joins a read in flight only if nothing invalidated or wrote the key on this node since that
   * read began; otherwise it could get an answer older than a write it already knows of (read-your-writes).
   */
  private readL2Shared(rel: string, token: number, deadline: number | undefined): Promise<Lookup> {
    const { coherence, counters } = this.rt
    const running = this.shared.get(rel)
    if (running !== undefined && coherence.untouchedSince(rel, running.token)) {
      counters.l2ReadsShared++
      return new Promise<Lookup>((resolve, reject) => {
        const joiner = { resolve, reject }
        if (running.joiners === undefined) running.joiners = [joiner]
        else running.joiners.push(joiner)
      })
    }
    const shared: SharedRead = { token, joiners: undefined }
    this.shared.set(rel, shared)
    return this.readL2(rel, token, deadline, shared)
  }

  /**
   * Reads and judges an L2 entry; a current one is copied into L1 with its remaining TTL. With `shared`
   * (see readL2Shared), the read leaves the shared table as it ends, so that nobody joins it later, and its
   * joiners get the same answer. (Joiners wait on promises of their own: keeping the read's promise in
   * the table, where joiners could pick it up, cost a fifth of L2 hit throughput in bench:l2.)
   */
  private readL2(
    rel: string,
    token: number,
    deadline: number | undefined,
    shared?: SharedRead,
    strong = false,
  ): Promise<Lookup> {
    const rt = this.rt
    let read: Promise<StoredEntry | undefined>
    try {
      read = rt.remote!.get(rt.keys.entry(rel), deadline)
    } catch (err) {
      read = Promise.reject(err)
    }
    return read.then(
      (stored) => {
        let judged: Lookup | Promise<Lookup>
        try {
          judged = this.judge(rel, token, deadline, stored, strong)
        } catch (err) {
          return this.readFailed(rel, shared, err)
        }
        if (!(judged instanceof Promise)) return this.readDone(rel, shared, judged)
        return judged.then(
          (found) => this.readDone(rel, shared, found),
          (err: unknown) => this.readFailed(rel, shared, err),
        )
      },
      (err: unknown) => this.readFailed(rel, shared, err),
    )
  }

  /** readL2 answered: the read leaves the shared table, and its joiners get the same answer. */
  private readDone(rel: string, shared: SharedRead | undefined, found: Lookup): Lookup {
    if (shared === undefined) return found
    if (this.shared.get(rel) === shared) this.shared.delete(rel)
    const joiners = shared.joiners
    if (joiners === undefined) {
      // A value that L1 did not keep and that only this caller will see needs no copy for it.
      if (found !== undefined && !this.rt.l1?.holds(rel, found.entry.value)) found.entry.lendable = true
    } else {
      for (const joiner of joiners) joiner.resolve(found)
    }
    return found
  }

  /** readL2 failed: the read leaves the shared table, and its joiners fail with it. */
  private readFailed(rel: string, shared: SharedRead | undefined, err: unknown): never {
    if (shared !== undefined) {
      if (this.shared.get(rel) === shared) this.shared.delete(rel)
      if (shared.joiners !== undefined) for (const joiner of shared.joiners) joiner.reject(err)
    }
    throw err
  }

  /**
   * What an L2 reply means: a current entry (then copied into L1), or nothing. Async only to learn stamps
   * (`strong`: always from L2, since this node may not have heard of an invalidation yet).
   */
  private judge(
    rel: string,
    token: number,
    deadline: number | undefined,
    stored: StoredEntry | undefined,
    strong: boolean,
  ): Lookup | Promise<Lookup> {
    if (stored === undefined) return undefined
    const rt = this.rt
    const { versions } = rt.coherence
    // Observed before the value is decoded: a load that replaces an undecodable entry must propose a
    // version above its own, or the store would refuse it (loads are fenced) until the entry expires.
    if (!versions.observe(stored.version)) {
      throw new CorruptEntryError(`L2 entry has a version no correct node writes: ${stored.version}`)
    }
    const envelope = decodeEnvelope(stored.bytes)
    // Every generation is a non-negative safe integer (decodeEnvelope): if the highest is plausible, all are.
    if (!versions.plausible(envelope.maxStampGen)) {
      throw new CorruptEntryError(`L2 entry has an impossible generation: ${envelope.maxStampGen}`)
    }
    const now = rt.options.clock.now()
    if (envelope.staleUntil <= now) return undefined
    const gens = strong ? undefined : rt.stamps.known(envelope.stampKeys)
    if (gens !== undefined) return this.accept(rel, token, stored.version, envelope, gens, now)
    return rt.stamps
      .gens(envelope.stampKeys, deadline, strong)
      .then((learned) => this.accept(rel, token, stored.version, envelope, learned, rt.options.clock.now()))
  }

  private accept(
    rel: string,
    token: number,
    version: number,
    envelope: DecodedEnvelope,
    gens: readonly number[],
    now: number,
  ): Lookup {
    const rt = this.rt
    if (!stillCurrent(gens, envelope.stampGens)) return undefined
    const entry = createEntry({
      value: decode(envelope.payload),
      freeze: rt.freezes,
      version,
      writtenAt: envelope.writtenAt,
      loadMs: envelope.loadMs,
      freshUntil: envelope.freshUntil,
      staleUntil: envelope.staleUntil,
      namespaceStamps: envelope.namespaceStamps,
      stampKeys: envelope.stampKeys,
      stampGens: envelope.stampGens,
    })
    rt.l1Writer.store(rel, entry, envelope.payload.length, token)
    return { entry, fresh: now < entry.freshUntil, degraded: false }
  }
}
