/**
 * Write-through: `cache.writeThrough(key, writer, { ttl, tags, version })`. The writer (the database
 * write) runs first; only if it succeeds does its result go to L2 and L1 under a new version, and out
 * to every other node. If it throws, nothing was written anywhere (L2 was only read) and the error
 * reaches the caller.
 *
 * The race this module exists for: two nodes write one key at nearly the same time. Their database
 * writes commit in one order, their cache writes may land in the other, and the cache must not end up
 * with the value of the write that committed first. A version taken before the writer runs does not
 * order the commits (A may start after B and commit before it), and one taken after does not either (A
 * may commit first and reach L2 last). Two rules, one per kind of writer:
 *
 * (a) Ordered, when the caller passes `version: (result) => commit order` (a row version raised by each
 *     UPDATE, a sequence taken under the row lock): the order is stored beside the entry, and L2 writes
 *     only over a lower order (RemoteStore.setIf compares them atomically). Whatever the arrival order,
 *     the highest commit stays.
 * (b) Unordered: before the writer runs, note what L2 holds for the key (its version, or a tombstone's,
 *     or nothing: RemoteStore.head). Afterwards, write only if L2 still holds exactly that, atomically;
 *     otherwise delete the key instead, so the next read loads from the database. Why this is enough:
 *     if the cache ends holding W's value, nothing landed in L2 between W's note and W's write. Any
 *     write W' that committed after W did so after W's note, and lands in L2 (its write or delete) after
 *     its commit; not before W's write (W would have deleted), so after it, replacing or deleting W's
 *     value. (a) falls back to (b) when L2 holds an entry without an order of its own.
 *
 * Limits, stated in the README: a writer that commits and whose process dies before its cache write
 * leaves the previous value cached until it expires (no protocol on the cache's side can see that commit);
 * a load on a node whose clock runs ahead, that began before the commit and lands after the cache write,
 * can replace it (loads are fenced by version, as for set). Without a way to compare (L2 unreachable when
 * noting, or a store without setIf), the key is invalidated instead of written. Without an L2, it is a
 * set after the writer.
 */
import { InvalidOptionError } from '../errors.js'
import type { NamespaceState } from '../keys.js'
import type { WriteThroughWrite } from '../options.js'
import type { CacheRuntime } from '../runtime.js'
import { encode } from '../serialization/codec.js'
import type { WriteCondition } from '../stores/store.js'
import type { WriteOutcome } from './write-path.js'

const MAX_ORDER = (1n << 64n) - 1n

export class WriteThrough {
  constructor(private readonly rt: CacheRuntime) {}

  async run<T>(
    rel: string,
    writer: () => T | Promise<T>,
    opts: WriteThroughWrite<T>,
    ns: NamespaceState,
  ): Promise<T> {
    const rt = this.rt
    const { remote, counters } = rt
    // (b): what L2 holds before the writer runs. Only read: a failing writer leaves no trace.
    let noted: number | null | undefined
    if (remote?.conditional) {
      try {
        const head = await remote.head(rt.keys.entry(rel), [], rt.deadline())
        noted =
          head.version !== undefined && rt.coherence.versions.plausible(head.version) ? head.version : null
      } catch {
        counters.l2Errors++
        noted = undefined
      }
    }
    const result = await writer()
    counters.writeThroughs++
    if (result === undefined) {
      // Nothing to cache (the row is gone, say): what was cached must go.
      await this.invalidate(rel)
      return result
    }
    let payload: Uint8Array
    let order: bigint | undefined
    try {
      payload = encode(result)
      order = opts.version === undefined ? undefined : commitOrder(opts.version(result))
    } catch (err) {
      // The database has the write; the cache cannot take it: nothing may keep the value it replaced.
      await this.invalidate(rel)
      throw err
    }
    // A fresh L2 budget: the writer may have taken longer than the caller's.
    const deadline = rt.deadline()
    if (remote === undefined) {
      await rt.writes.write(rel, result, payload, opts, ns, undefined, deadline).done
      return result
    }
    if (!remote.conditional || noted === undefined) {
      // Nothing to compare with: the safe write is a delete.
      await this.invalidate(rel)
      return result
    }
    const condition: WriteCondition = {
      expected: noted,
      tombstoneTtlMs: rt.lifetimes.tombstoneTtl(),
      ...(order !== undefined && { order: { domain: 'commit', value: order } }),
    }
    const outcome = await rt.writes.writeIf(
      rel,
      result,
      payload,
      opts,
      ns,
      { condition, ifUnreachable: 'invalidate' },
      deadline,
    )
    this.count(outcome)
    return result
  }

  private async invalidate(rel: string): Promise<void> {
    this.rt.counters.writeThroughsInvalidated++
    await this.rt.writes.deleteMany([rel])
  }

  private count(outcome: WriteOutcome): void {
    const { counters } = this.rt
    if (outcome === 'deleted' || outcome === 'queued') counters.writeThroughsInvalidated++
    else if (outcome === 'superseded') counters.writeThroughsSuperseded++
  }
}

/** The commit order a `version` function returned: a non-negative integer below 2^64 (number, bigint or decimal). */
function commitOrder(given: unknown): bigint {
  let order: bigint | undefined
  if (typeof given === 'number' && Number.isSafeInteger(given) && given >= 0) order = BigInt(given)
  else if (typeof given === 'bigint') order = given
  else if (typeof given === 'string' && /^\d{1,20}$/.test(given)) order = BigInt(given)
  if (order === undefined || order < 0n || order > MAX_ORDER) {
    throw new InvalidOptionError(
      'version',
      `must return the write's commit order, an integer from 0 to 2^64 - 1 (number, bigint or decimal string), got ${String(given)}; the database write went through and the key was invalidated`,
    )
  }
  return order
}
