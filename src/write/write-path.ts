/**
 * The write path: versioned writes of values (set, and the writes of loads), deletes, and stamp bumps
 * (invalidateTags, clear). The order is always L2 first, then this node's L1, then the bus: a node that
 * hears of a write must find it in L2 (coherence.ts, point 2), and the invalidation is published only
 * once L2 has it. What fails against an unreachable Redis goes to the outage queue, and this node keeps
 * seeing its own write meanwhile (guarantee 1).
 *
 * Versions (coherence.ts, point 1): a set proposes one and L2 gives it max(proposed, stored + 1), so a
 * set always wins in L2's order. A load is fenced instead: its version was taken before the loader
 * started, it is dropped if an invalidation of the key arrived while loading, and L2 refuses it if
 * anything newer is stored; either way its value is still returned to the callers that waited for it.
 */
import { encodeEnvelope, stampGenOffsets } from '../coherence/envelope.js'
import { FOREVER_MS } from '../coherence/lifetimes.js'
import { createEntry, type L1Entry } from '../entry/entry.js'
import { entryStampKeys, type NamespaceState } from '../keys.js'
import type { WriteOptions } from '../options.js'
import type { CacheRuntime } from '../runtime.js'
import { cloneValue } from '../serialization/clone.js'
import { deleteChannel, setChannel } from '../stats/events.js'
import type { ConditionalWrite, WriteCondition } from '../stores/store.js'

/**
 * What an ordered or conditional write (writeIf) did: `written`; `deleted` (L2 held something other than
 * what the writer noted: the key was invalidated instead); `superseded` (L2 holds a write of a higher
 * order: left alone); `queued` (L2 unreachable: retried later, see Conditional.ifUnreachable).
 */
export type WriteOutcome = 'written' | 'deleted' | 'superseded' | 'queued'

/** How writeIf writes to L2 (RemoteStore.setIf), and what it does when L2 cannot be reached. */
export interface Conditional {
  condition: WriteCondition
  /**
   * 'retry': this node keeps its write and retries it as a plain write (write-behind: the value is in the
   * durable queue already). 'invalidate': the key is deleted here at once and in L2 on retry (write-through:
   * a value written without its condition could be older than another node's).
   */
  ifUnreachable: 'retry' | 'invalidate'
}

/** What a write produced: the entry its callers get at once, and the write that stores it in the tiers. */
export interface Written {
  entry: L1Entry
  /** Settles when the entry has landed in L2, L1 and the bus, or was queued for retry. Never rejects. */
  done: Promise<void>
}

/** A load's identity: its fill token and the version taken before the loader started (for fencing). */
export interface LoadTicket {
  token: number
  version: number
  loadMs: number
}

const DONE: Promise<void> = Promise.resolve()

/** Runs `then` once `written` has landed (or was queued), or at once if nothing was written. */
export function afterLanding(written: Written | undefined, then: () => void): void {
  if (written === undefined) then()
  else written.done.finally(then).catch(() => {})
}

export class WritePath {
  /**
   * The L2 keys of a namespace's stamp chain and their generation slots in its entries' envelopes, for
   * setStamped: the same for every untagged entry of the namespace, so computed once per chain.
   */
  private readonly chainSlots = new WeakMap<readonly string[], { keys: string[]; offsets: number[] }>()

  constructor(private readonly rt: CacheRuntime) {}

  /**
   * Writes a value through the tiers (see the module comment): with a `ticket`, as a fenced load.
   * Returns the entry at once (a load's callers need only its value) and `done`, which settles when the
   * write has landed in every tier or has been queued for retry (L2 and bus failures do not reject it).
   */
  write(
    rel: string,
    value: unknown,
    payload: Uint8Array,
    opts: WriteOptions,
    ns: NamespaceState,
    ticket: LoadTicket | undefined,
    deadline: number | undefined,
  ): Written {
    const rt = this.rt
    const entry = this.entryFor(value, opts, ns, ticket)
    if (ticket !== undefined) {
      if (!rt.coherence.fillAllowed(rel, ticket.token, ticket.version)) {
        rt.counters.staleFillsRefused++
        return { entry, done: DONE }
      }
      return { entry, done: this.writeTiers(rel, entry, ns, payload, ticket, ticket.token, deadline) }
    }
    // A set: fills of this key in flight must not land over it, and it is itself a fill of L1.
    rt.counters.sets++
    rt.coherence.markKey(rel, Number.POSITIVE_INFINITY)
    return {
      entry,
      done: rt.coherence.fill((token) =>
        rt.remote?.stamped
          ? this.setTiers(rel, entry, ns, payload, token, deadline)
          : this.writeTiers(rel, entry, ns, payload, undefined, token, deadline),
      ),
    }
  }

  /**
   * A write whose L2 part is RemoteStore.setIf (write-through, write-behind): it lands in L1 and is
   * announced only if L2 took it; a `deleted` outcome invalidates the key everywhere instead. Needs a
   * store with setIf, or no L2 at all (then it is a plain write here and on the bus).
   */
  writeIf(
    rel: string,
    value: unknown,
    payload: Uint8Array,
    opts: WriteOptions,
    ns: NamespaceState,
    conditional: Conditional,
    deadline: number | undefined,
  ): Promise<WriteOutcome> {
    const rt = this.rt
    const entry = this.entryFor(value, opts, ns, undefined)
    rt.coherence.markKey(rel, Number.POSITIVE_INFINITY)
    return rt.coherence.fill((token) =>
      this.writeTiersIf(rel, entry, ns, payload, token, deadline, conditional),
    )
  }

  /** Deletes `rels` in every tier and on every node. */
  async deleteMany(rels: readonly string[]): Promise<void> {
    const { coherence, remote, l1Writer, outage, unsent, lifetimes, keys, invalidations } = this.rt
    const proposed = coherence.versions.next()
    const versions = rels.map(() => proposed)
    this.rt.counters.deletes += rels.length
    for (const rel of rels) {
      coherence.markKey(rel, Number.POSITIVE_INFINITY)
      l1Writer.delete(rel)
    }
    // Deletes the store announced itself (RemoteStore.canAnnounce) are not published again.
    const delivered: number[] = []
    let announced = 0
    if (remote === undefined) {
      for (let i = 0; i < rels.length; i++) delivered.push(i)
    } else {
      const tombstoneTtl = lifetimes.tombstoneTtl()
      const deadline = remote.deadline()
      await Promise.all(
        rels.map(async (rel, i) => {
          const announce = invalidations.keyAnnouncement(rel)
          try {
            versions[i] = await remote.delete(keys.entry(rel), proposed, tombstoneTtl, deadline, announce)
            coherence.versions.observe(versions[i]!)
            // Fills of the key in flight may have read L2 before the delete landed (see writeTiers).
            coherence.markKey(rel, versions[i]!)
            unsent.supersede(rel, versions[i]!)
            if (announce === undefined) delivered.push(i)
            else announced++
          } catch {
            this.rt.counters.l2Errors++
            outage.queueDelete(rel, proposed)
          }
          if (deleteChannel.hasSubscribers) this.rt.reads.event(deleteChannel, rel, {})
        }),
      )
    }
    invalidations.announced(announced)
    // Publish only what reached L2: the rest is published when its retry succeeds.
    if (delivered.length === 0) return
    await outage.announceKeys(
      delivered.map((i) => rels[i]!),
      delivered.map((i) => versions[i]!),
    )
  }

  /** invalidateTags and clear: bump generation counters in L2, locally, and on every node. */
  async bumpStamps(stamps: readonly string[]): Promise<void> {
    const { coherence, remote, outage, unsent, lifetimes, keys } = this.rt
    coherence.markAll()
    // The generation this bump proposes, from the version clock: above every generation this node has
    // seen, so that a stamp that L2 lost comes back above what other nodes remember of it (coherence.ts,
    // point 3). It also ranks the bump in the outage queue.
    const rank = coherence.versions.next()
    if (remote === undefined) {
      const gens = stamps.map(() => rank)
      this.rt.stamps.raise(stamps, gens)
      await outage.announceStamps(stamps, gens, rank)
      return
    }
    const announce = this.rt.invalidations.stampAnnouncements(stamps)
    let gens: number[]
    try {
      gens = await remote.bumpStamps(
        stamps.map((stamp) => keys.stamp(stamp)),
        lifetimes.stampTtl(),
        rank,
        remote.deadline(),
        false,
        announce,
      )
    } catch {
      this.rt.counters.l2Errors++
      outage.queueStampBump(stamps, rank)
      return
    }
    for (const stamp of stamps) unsent.stamps.delete(stamp)
    this.rt.stamps.raise(stamps, gens)
    if (announce !== undefined) this.rt.invalidations.announced(announce.length)
    else await outage.announceStamps(stamps, gens, rank)
  }

  private async writeTiers(
    rel: string,
    entry: L1Entry,
    ns: NamespaceState,
    payload: Uint8Array,
    ticket: LoadTicket | undefined,
    token: number,
    deadline: number | undefined,
  ): Promise<void> {
    const rt = this.rt
    const { coherence, remote, counters, l1Writer } = rt
    // The generations the entry is written under. A set asks L2, the authority: an invalidation that
    // resolved before this set began may not have reached this node yet, and recording the older
    // generation would let it invalidate this newer write (read-your-writes). A load uses what this node
    // knows: a generation that moved while it loaded must not validate what it loaded before. If L2
    // cannot answer, the local ones do: an older generation only makes an entry look invalid.
    entry.stampGens = await rt.stamps
      .gens(entry.stampKeys, deadline, ticket === undefined)
      .catch(() => rt.stamps.local(entry.stampKeys))
    if (remote !== undefined) {
      const l2Key = rt.keys.entry(rel)
      const bytes = envelopeOf(entry, ns, payload)
      const l2Ttl = l2TtlOf(entry)
      try {
        if (ticket !== undefined) {
          const newer = await remote.setIfNewer(l2Key, bytes, entry.version, l2Ttl, deadline)
          if (newer !== undefined) {
            // Someone wrote the key while we loaded: their value stays, ours only answers our callers.
            coherence.versions.observe(newer)
            rt.unsent.supersede(rel, newer)
            l1Writer.dropOlder(rel, newer)
            counters.staleFillsRefused++
            return
          }
        } else {
          entry.version = await remote.set(l2Key, bytes, entry.version, l2Ttl, deadline)
          coherence.versions.observe(entry.version)
        }
        rt.unsent.supersede(rel, entry.version)
      } catch {
        counters.l2Errors++
        this.keepForRetry(rel, entry, bytes, l2Ttl, payload.length, token, ticket === undefined)
        return
      }
    }
    await this.landed(rel, entry, payload.length, token, ticket === undefined, false)
  }

  /**
   * writeTiers for a set when the store reads the stamps as it writes (RemoteStore.setStamped), and
   * publishes the invalidation with it where it can (RemoteStore.canAnnounce): one round trip. The entry
   * records the higher of L2's generations and this node's (the local ones alone could be older than an
   * invalidation that resolved before this set began: see writeTiers).
   */
  private async setTiers(
    rel: string,
    entry: L1Entry,
    ns: NamespaceState,
    payload: Uint8Array,
    token: number,
    deadline: number | undefined,
  ): Promise<void> {
    const rt = this.rt
    const { coherence, remote, counters, invalidations, keys } = rt
    // What this node knows, its own bumps that L2 has not got included; if L2 cannot be reached, these
    // stay (an older generation only makes an entry look invalid).
    entry.stampGens = rt.stamps.local(entry.stampKeys)
    const bytes = envelopeOf(entry, ns, payload)
    const l2Ttl = l2TtlOf(entry)
    const announce = invalidations.keyAnnouncement(rel)
    try {
      const slots = this.slotsOf(entry.stampKeys, ns)
      const stamps = { ...slots, known: entry.stampGens, ttlMs: rt.lifetimes.stampTtl() }
      const done = await remote!.setStamped(
        keys.entry(rel),
        bytes,
        entry.version,
        l2Ttl,
        stamps,
        deadline,
        announce,
      )
      entry.version = done.version
      coherence.versions.observe(done.version)
      entry.stampGens = rt.stamps.learnWritten(entry.stampKeys, done.gens, done.restored)
      rt.unsent.supersede(rel, entry.version)
    } catch {
      counters.l2Errors++
      this.keepForRetry(rel, entry, bytes, l2Ttl, payload.length, token, true)
      return
    }
    await this.landed(rel, entry, payload.length, token, true, announce !== undefined)
  }

  /**
   * L2 could not take the write (unreachable, or slow): this node keeps it (read-your-writes) and retries
   * it later, unless L2 holds something newer by then. `isSet`: a set, which has its diagnostics event.
   */
  private keepForRetry(
    rel: string,
    entry: L1Entry,
    bytes: Uint8Array,
    l2Ttl: number,
    payloadBytes: number,
    token: number,
    isSet: boolean,
  ): void {
    const rt = this.rt
    rt.outage.queueSet(rel, entry, bytes, l2Ttl)
    rt.l1Writer.store(rel, entry, payloadBytes, token)
    if (isSet && setChannel.hasSubscribers) {
      rt.reads.event(setChannel, rel, { version: entry.version, queued: true })
    }
  }

  /**
   * The write is in L2 (or there is none): into L1, the key marked, and announced, unless the store
   * published it with the write (`announced`). `isSet`: a set, which has its diagnostics event.
   */
  private landed(
    rel: string,
    entry: L1Entry,
    payloadBytes: number,
    token: number,
    isSet: boolean,
    announced: boolean,
  ): Promise<void> {
    const rt = this.rt
    rt.l1Writer.store(rel, entry, payloadBytes, token)
    // A fill of the key in flight may have read L2 before the write landed: it must not enter L1 now,
    // even where L1 no longer holds this entry to compare it with (its store was refused because a tag
    // invalidation, clear or bus reconnect voided fills meanwhile; l1.clear(); eviction). The mark taken
    // when the write began does not cover such a fill, which may have started after it. Without this, a
    // read that began during the write could land the older value in L1 after the write resolved, and
    // this node's next read would return it (guarantee 1). Marked after the store above, which the mark
    // would otherwise refuse.
    rt.coherence.markKey(rel, entry.version)
    if (isSet && setChannel.hasSubscribers) {
      rt.reads.event(setChannel, rel, { version: entry.version, queued: false })
    }
    if (!announced) return rt.outage.announceKeys([rel], [entry.version])
    rt.invalidations.announced(1)
    return DONE
  }

  /** The L2 keys of `stampKeys` and their slots in the envelope (see chainSlots). */
  private slotsOf(stampKeys: readonly string[], ns: NamespaceState): { keys: string[]; offsets: number[] } {
    let slots = stampKeys === ns.stampKeys ? this.chainSlots.get(stampKeys) : undefined
    if (slots === undefined) {
      slots = {
        keys: stampKeys.map((stamp) => this.rt.keys.stamp(stamp)),
        offsets: stampGenOffsets({ namespacePath: ns.path, stampKeys }),
      }
      if (stampKeys === ns.stampKeys) this.chainSlots.set(stampKeys, slots)
    }
    return slots
  }

  /** writeTiers for writeIf: the L2 write is setIf, and its outcome decides what L1 and the bus get. */
  private async writeTiersIf(
    rel: string,
    entry: L1Entry,
    ns: NamespaceState,
    payload: Uint8Array,
    token: number,
    deadline: number | undefined,
    conditional: Conditional,
  ): Promise<WriteOutcome> {
    const rt = this.rt
    const { coherence, remote, counters, outage, l1Writer, unsent } = rt
    // From L2, as a set does (see writeTiers).
    entry.stampGens = await rt.stamps
      .gens(entry.stampKeys, deadline, true)
      .catch(() => rt.stamps.local(entry.stampKeys))
    if (remote === undefined) {
      await this.landed(rel, entry, payload.length, token, false, false)
      return 'written'
    }
    const bytes = envelopeOf(entry, ns, payload)
    const l2Ttl = l2TtlOf(entry)
    let done: ConditionalWrite
    try {
      done = await remote.setIf(
        rt.keys.entry(rel),
        bytes,
        entry.version,
        l2Ttl,
        conditional.condition,
        deadline,
      )
    } catch {
      counters.l2Errors++
      if (conditional.ifUnreachable === 'retry') {
        this.keepForRetry(rel, entry, bytes, l2Ttl, payload.length, token, false)
      } else {
        l1Writer.delete(rel)
        outage.queueDelete(rel, entry.version)
      }
      return 'queued'
    }
    coherence.versions.observe(done.version)
    unsent.supersede(rel, done.version)
    if (done.outcome === 'superseded') {
      // A write of a higher order is in L2: it stands, and whoever wrote it announced it.
      l1Writer.dropOlder(rel, done.version)
      coherence.markKey(rel, done.version)
      return 'superseded'
    }
    if (done.outcome === 'deleted') {
      l1Writer.delete(rel)
      coherence.markKey(rel, done.version)
      await outage.announceKeys([rel], [done.version])
      return 'deleted'
    }
    entry.version = done.version
    await this.landed(rel, entry, payload.length, token, false, false)
    return 'written'
  }

  /** The entry a write stores: the cache's own copy of `value`, versioned, with its TTL and stamps. */
  private entryFor(
    value: unknown,
    opts: WriteOptions,
    ns: NamespaceState,
    ticket: LoadTicket | undefined,
  ): L1Entry {
    const rt = this.rt
    const now = rt.options.clock.now()
    const ttl = this.jittered(opts.ttl)
    const stampKeys = opts.tags === undefined ? ns.stampKeys : entryStampKeys(ns, opts.tags)
    rt.lifetimes.note(ttl + opts.grace)
    return createEntry({
      // The cache's own copy: the caller keeps `value` and may mutate it after set() returns.
      value: cloneValue(value),
      freeze: rt.freezes,
      version: ticket?.version ?? rt.coherence.versions.next(),
      writtenAt: now,
      loadMs: ticket?.loadMs ?? 0,
      freshUntil: now + ttl,
      staleUntil: now + ttl + opts.grace,
      namespaceStamps: ns.stampKeys.length,
      stampKeys,
      stampGens: [],
    })
  }

  private jittered(ttl: number): number {
    const { jitter, random } = this.rt.options
    if (jitter === 0 || !Number.isFinite(ttl)) return ttl
    return Math.max(1, Math.round(ttl * (1 + (random() * 2 - 1) * jitter)))
  }
}

/** The L2 bytes of an entry: its envelope (coherence/envelope.ts) around the encoded value. */
function envelopeOf(entry: L1Entry, ns: NamespaceState, payload: Uint8Array): Uint8Array {
  return encodeEnvelope(
    {
      writtenAt: entry.writtenAt,
      loadMs: entry.loadMs,
      freshUntil: entry.freshUntil,
      staleUntil: entry.staleUntil,
      namespacePath: ns.path,
      stampKeys: entry.stampKeys,
      stampGens: entry.stampGens,
    },
    payload,
  )
}

/** How long L2 keeps an entry: until its grace ends. */
function l2TtlOf(entry: L1Entry): number {
  return Number.isFinite(entry.staleUntil) ? Math.max(1, entry.staleUntil - entry.writtenAt) : FOREVER_MS
}
