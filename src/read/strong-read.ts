/**
 * Strong reads: `get(key, { consistency: 'strong' })` and the same option of getOrSet. A strong read never
 * returns a value older than the newest one L2 held when the call began, whatever this node's bus and L1
 * know (a lost invalidation, a bus that is down, a tag bump not heard of yet).
 *
 * The idea: L2 is the authority, so ask it, but cheaply. An L1 entry is served only after one round trip
 * (RemoteStore.head: the first 16 bytes of the entry key, GETRANGE 0 15, pipelined with a read of the
 * entry's stamps, which the strong reads of one tick share) shows that L2 still holds exactly that
 * version, not a tombstone, and that none of the entry's stamps (its tags and namespaces) has moved since
 * it was written. Anything else (a newer or deleted
 * version, a moved stamp, nothing in L2 at all) is not a confirmation, and the read goes to L2 itself:
 * a read of its own (it joins no shared read that began before the call, which could return an older
 * value), judged against the stamps L2 holds now, not those this node knows.
 *
 * Invariants:
 * - what a strong read returns is, at some instant after the call began, L2's entry for the key (same
 *   version, current stamps), or this node's own write that L2 has not got yet (read-your-writes);
 * - L1 is used even while the bus is down (untrusted): the check makes trust unnecessary;
 * - when L2 cannot be asked, the call fails with UnconfirmedReadError instead of guessing; a caller that
 *   passes `grace` accepts a guess: the read then answers as a plain read would, with values at most
 *   `grace` past their expiry.
 *
 * Without an L2 there is nothing to be stronger than: a strong read is a plain read.
 */
import type { L1Entry } from '../entry/entry.js'
import { CorruptEntryError, UnconfirmedReadError } from '../errors.js'
import type { CacheRuntime } from '../runtime.js'
import type { EntryHead } from '../stores/store.js'
import type { Lookup } from './read-path.js'

export class StrongReads {
  /** The stamp read the strong reads of this tick share (see stampsNow), until it is sent. */
  private batch: { names: Map<string, number>; gens: Promise<number[]> } | undefined

  constructor(private readonly rt: CacheRuntime) {}

  /**
   * The generations of stamps `names` as L2 holds them now. Strong reads made in one tick share one read:
   * it is sent once the tick's synchronous work is done, so after each of them began (what they need),
   * and concurrent strong reads of entries under the same namespace cost one stamp read, not one each.
   */
  private stampsNow(names: readonly string[], deadline: number | undefined): Promise<number[]> {
    let batch = this.batch
    if (batch === undefined) {
      const created: { names: Map<string, number>; gens: Promise<number[]> } = {
        names: new Map(),
        gens: Promise.resolve().then(() => {
          this.batch = undefined
          const { keys } = this.rt
          return this.rt.remote!.getStamps(
            [...created.names.keys()].map((name) => keys.stamp(name)),
            deadline,
          )
        }),
      }
      batch = this.batch = created
    }
    const at = names.map((name) => {
      let i = batch.names.get(name)
      if (i === undefined) {
        i = batch.names.size
        batch.names.set(name, i)
      }
      return i
    })
    return batch.gens.then((gens) => at.map((i) => gens[i]!))
  }

  /**
   * The entry a strong read answers with (see the module comment). `grace`: the caller's, to answer when L2
   * cannot confirm; undefined makes that an UnconfirmedReadError.
   */
  async lookup(
    rel: string,
    key: string,
    deadline: number | undefined,
    grace: number | undefined,
  ): Promise<Lookup> {
    const rt = this.rt
    const { l1, remote, coherence, counters, options } = rt
    if (remote === undefined) return rt.reads.lookup(rel, deadline)
    counters.strongReads++
    const candidate = l1 === undefined ? undefined : coherence.trusted ? l1.get(rel) : l1.peek(rel)
    if (
      candidate !== undefined &&
      options.clock.now() < candidate.staleUntil &&
      coherence.isCurrent(candidate.stampKeys, candidate.stampGens)
    ) {
      let head: EntryHead
      try {
        const [entryHead, stamps] = await Promise.all([
          remote.head(rt.keys.entry(rel), [], deadline),
          this.stampsNow(candidate.stampKeys, deadline),
        ])
        head = { version: entryHead.version, deleted: entryHead.deleted, stamps }
      } catch (err) {
        counters.l2Errors++
        return this.unconfirmed(rel, key, err, grace)
      }
      if (confirms(head, candidate)) {
        counters.strongConfirmed++
        counters.l1Hits++
        return { entry: candidate, fresh: options.clock.now() < candidate.freshUntil, degraded: false }
      }
    }
    // Taken before reading, as a plain lookup does: a retry that lands meanwhile may postdate the read.
    const own = rt.unsent.get(rel)
    let found: Lookup
    try {
      found = await rt.reads.readStrong(rel, deadline)
    } catch (err) {
      if (!(err instanceof CorruptEntryError)) {
        counters.l2Errors++
        return this.unconfirmed(rel, key, err, grace)
      }
      // L2 answered, with garbage (guarantee 7): nothing it holds can be served.
      counters.l2Corrupt++
      found = undefined
    }
    if (found?.fresh) counters.l2Hits++
    else counters.l2Misses++
    if (own?.entry !== undefined && (found === undefined || found.entry.version < own.version)) {
      // This node's write that L2 has not got yet (read-your-writes), unless an invalidation made here since voids it.
      const entry = own.entry
      if (coherence.isCurrent(entry.stampKeys, entry.stampGens)) {
        return { entry, fresh: options.clock.now() < entry.freshUntil, degraded: false }
      }
    }
    return found
  }

  /** L2 could not be asked: an error, or with the caller's grace, what a plain read has (degraded). */
  private unconfirmed(rel: string, key: string, cause: unknown, grace: number | undefined): Lookup {
    const rt = this.rt
    rt.counters.strongUnconfirmed++
    if (grace === undefined) throw new UnconfirmedReadError(key, { cause })
    const now = rt.options.clock.now()
    const own = rt.unsent.get(rel)?.entry
    const entry: L1Entry | undefined = own ?? rt.l1?.peek(rel)
    if (entry === undefined || !rt.coherence.isCurrent(entry.stampKeys, entry.stampGens)) return undefined
    if (now >= entry.freshUntil + grace) return undefined
    return { entry, fresh: now < entry.freshUntil, degraded: true }
  }
}

/** L2 holds exactly this entry's version, live, and none of its stamps moved (nor went missing) since. */
function confirms(head: EntryHead, entry: L1Entry): boolean {
  if (head.deleted || head.version !== entry.version) return false
  const { stampGens } = entry
  for (let i = 0; i < stampGens.length; i++) if (head.stamps[i] !== stampGens[i]) return false
  return true
}
