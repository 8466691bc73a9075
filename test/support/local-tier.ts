/**
 * Shared helpers for the local tier tests: an eviction recorder, the internal consistency check, and
 * a randomized model test that runs a LocalTier side by side with a simple reference.
 */
import { expect } from 'vitest'
import { ManualClock } from '../../src/clock.js'
import { LocalTier } from '../../src/local/local-tier.js'
import type { Policy, PolicyContext } from '../../src/local/policies/policy.js'
import type { TinyLfuPolicy } from '../../src/local/policies/tinylfu.js'
import { NIL } from '../../src/local/slots.js'
import type { EvictionCause, EvictionPolicy, LocalTierOptions } from '../../src/local/types.js'
import { mulberry32 } from '../../tools/random.js'
import { ReferenceTinyLfu } from './reference-tinylfu.js'

export type Eviction = [key: string, value: unknown, cause: EvictionCause]

/**
 * A LocalTier whose onEvict calls are recorded in `evictions`. No sweep timer, seeded random.
 * `policyFactory` builds the policy instead of `options.policy` (e.g. a TinyLfuPolicy with a fixed window).
 */
export function recordingTier<V>(
  options: Omit<LocalTierOptions<V>, 'onEvict'>,
  policyFactory?: (context: PolicyContext) => Policy,
): {
  tier: LocalTier<V>
  evictions: Eviction[]
  evicted: () => string[]
} {
  const evictions: Eviction[] = []
  const tier = new LocalTier<V>(
    {
      sweepIntervalMs: 0,
      random: seeded(12_345), // deterministic TinyLFU hashing unless a test brings its own
      ...options,
      onEvict: (key, value, cause) => evictions.push([key, value, cause]),
    },
    policyFactory,
  )
  return { tier, evictions, evicted: () => evictions.map(([key]) => key) }
}

/** Runs the tier's O(n) self-check: Map, slots, policy lists, byte and TTL counts all agree. */
export function checkInvariants<V>(tier: LocalTier<V>): void {
  ;(tier as unknown as { checkInvariants(): void }).checkInvariants()
}

/** The policy object inside a tier (for policy-specific diagnostics in tests). */
export function policyOf<P>(tier: object): P {
  return (tier as unknown as { policy: P }).policy
}

/** A seeded PRNG for the model tests. */
export const seeded = mulberry32

interface RefEntry {
  value: number
  size: number
  expiry: number
  /** LFU use count. */
  count: number
  /** LFU tie-break: when the entry reached its current count. */
  stamp: number
}

/**
 * The obvious, slow implementation of lru / fifo / lfu on a Map (insertion order = list order), with
 * the same rules as the tier: evict-before-insert (the written key is never the victim unless alone),
 * writes count as uses for lru and lfu, LFU ties go to the entry that reached the count first.
 */
class ReferenceCache {
  readonly entries = new Map<string, RefEntry>()
  private seq = 0

  constructor(
    private readonly policy: 'lru' | 'fifo' | 'lfu',
    private readonly maxEntries: number,
    private readonly maxBytes: number,
    private readonly onEvict: (key: string, value: number, cause: EvictionCause) => void,
  ) {}

  get(key: string, now: number): number | undefined {
    const entry = this.entries.get(key)
    if (entry === undefined) return undefined
    if (entry.expiry <= now) {
      this.entries.delete(key)
      this.onEvict(key, entry.value, 'expired')
      return undefined
    }
    this.use(key, entry)
    return entry.value
  }

  set(key: string, value: number, ttl: number, size: number, now: number): boolean {
    if (size > this.maxBytes || ttl <= 0) {
      this.entries.delete(key)
      return false
    }
    const expiry = ttl === Number.POSITIVE_INFINITY ? ttl : now + ttl
    const entry = this.entries.get(key)
    if (entry !== undefined) {
      entry.value = value
      entry.size = size
      entry.expiry = expiry
      this.use(key, entry)
    } else {
      this.entries.set(key, { value, size, expiry, count: 1, stamp: this.seq++ })
    }
    while (this.entries.size > this.maxEntries || this.bytes() > this.maxBytes) {
      const victim = this.victim(key)
      if (victim === undefined) break
      const evicted = this.entries.get(victim)!
      this.entries.delete(victim)
      this.onEvict(victim, evicted.value, 'size')
    }
    return this.entries.has(key)
  }

  delete(key: string): void {
    this.entries.delete(key)
  }

  sweep(now: number): void {
    for (const [key, entry] of this.entries) {
      if (entry.expiry <= now) {
        this.entries.delete(key)
        this.onEvict(key, entry.value, 'expired')
      }
    }
  }

  bytes(): number {
    let sum = 0
    for (const entry of this.entries.values()) sum += entry.size
    return sum
  }

  private use(key: string, entry: RefEntry): void {
    if (this.policy === 'lru') {
      this.entries.delete(key)
      this.entries.set(key, entry)
    } else if (this.policy === 'lfu') {
      entry.count++
      entry.stamp = this.seq++
    }
  }

  private victim(written: string): string | undefined {
    let best: string | undefined
    let bestEntry: RefEntry | undefined
    for (const [key, entry] of this.entries) {
      if (key === written) continue
      if (this.policy !== 'lfu') return key
      if (
        bestEntry === undefined ||
        entry.count < bestEntry.count ||
        (entry.count === bestEntry.count && entry.stamp < bestEntry.stamp)
      ) {
        best = key
        bestEntry = entry
      }
    }
    return best
  }
}

export interface ModelOptions {
  seed: number
  ops: number
  keys: number
  maxEntries?: number
  maxBytes?: number
  /** Use random sizes 1..maxSize (default: always the default size 1). */
  maxSize?: number
  /** Share of sets with a finite TTL (default 0.2). */
  ttlShare?: number
  /** tinylfu: every this many steps, aim the window at a random share (so it walks both ways). */
  aimEvery?: number
  /**
   * First set k0..k(prefill-1), size 1, no TTL (checked like every other step). Not shortened under
   * mutation testing, so a run that must grow the tier's slot arrays (1,024 to start when bounded by
   * bytes only) still does.
   */
  prefill?: number
}

/**
 * Drives a LocalTier with a random mix of get / set / delete / peek / has / sweep / clock advances and
 * checks, after every step: the Map, slots and policy lists agree (checkInvariants); size <= maxEntries
 * and bytes <= maxBytes; every value returned was the last one set for that key and not deleted or
 * evicted since (the tier's contents are tracked exactly through delete and onEvict); size, bytes and
 * keys() match that tracking. It also checks every eviction, every returned value and the contents
 * against a reference (ReferenceCache for lru / fifo / lfu, ReferenceTinyLfu for tinylfu): the exact
 * eviction order. Returns the tier and the reference as the run left them, and how many size evictions
 * there were.
 */
export function runModel(
  policy: EvictionPolicy,
  options: ModelOptions,
): { tier: LocalTier<number>; reference: ReferenceCache | ReferenceTinyLfu; sizeEvictions: number } {
  const { seed, keys, maxEntries, maxBytes, maxSize, ttlShare = 0.2, aimEvery, prefill = 0 } = options
  // Under mutation testing (scripts/mutation.mjs sets MUTATION_MODULE) a tenth of the operations: these
  // runs check every invariant after every operation, and each mutant that reaches them runs them all.
  const ops = process.env.MUTATION_MODULE === undefined ? options.ops : Math.ceil(options.ops / 10)
  const random = seeded(seed)
  const clock = new ManualClock(1_000_000)
  const tierEvictions: Eviction[] = []
  const refEvictions: Eviction[] = []
  const tier = new LocalTier<number>({
    maxEntries,
    maxBytes,
    policy,
    clock,
    sweepIntervalMs: 0,
    random: seeded(seed + 1),
    onEvict: (key, value, cause) => tierEvictions.push([key, value, cause]),
    // Every entry also carries two numbers and a record (what the cache's L1 packs into its slots), which
    // must follow the entry through slot reuse and growth.
    entryFields: { numbers: 2, record: true },
  })
  const recordReference = (key: string, value: number, cause: EvictionCause) =>
    refEvictions.push([key, value, cause])
  const reference =
    policy === 'tinylfu'
      ? new ReferenceTinyLfu({
          maxEntries: maxEntries ?? Number.POSITIVE_INFINITY,
          maxBytes: maxBytes ?? Number.POSITIVE_INFINITY,
          random: seeded(seed + 1), // the same stream as the tier's
          target: () => policyOf<TinyLfuPolicy>(tier).adaptation().target,
          onEvict: recordReference,
        })
      : new ReferenceCache(
          policy,
          maxEntries ?? Number.POSITIVE_INFINITY,
          maxBytes ?? Number.POSITIVE_INFINITY,
          recordReference,
        )
  /** What the tier holds: key -> value, size and expiry, maintained from set, delete and onEvict. */
  const contents = new Map<string, { value: number; size: number; expiry: number }>()
  let nextValue = 0
  let sizeEvictions = 0

  // Skewed keys so that some are hot and eviction decisions matter.
  const pickKey = () => `k${Math.floor(keys * random() ** 2)}`

  for (let step = -prefill; step < ops; step++) {
    const roll = step < 0 ? 0.6 : random()
    const key = step < 0 ? `k${step + prefill}` : pickKey()
    const now = clock.now()
    const where = `seed ${seed}, step ${step}`
    if (aimEvery !== undefined && step >= 0 && step % aimEvery === 0)
      policyOf<TinyLfuPolicy>(tier).aimAt(random())
    let sweeping = false
    let storedKey: string | undefined
    let droppedKey: string | undefined
    if (roll < 0.5) {
      const got = tier.get(key)
      if (got !== undefined) {
        const held = contents.get(key)
        expect(held?.value, `${where}: get(${key}) returned a value that is not the live one`).toBe(got)
        expect(held!.expiry > now, `${where}: get(${key}) returned an expired value`).toBe(true)
        const slot = tier.peekSlot(key)
        expect(tier.valueAt(slot), `${where}: valueAt(peekSlot(${key}))`).toBe(got)
        expect([tier.numberAt(slot, 0), tier.numberAt(slot, 1)], `${where}: ${key}'s numbers`).toEqual([
          got,
          -got,
        ])
        expect(tier.recordAt(slot), `${where}: ${key}'s record`).toEqual({ value: got })
      } else {
        expect(tier.peekSlot(key), `${where}: peekSlot(${key}) after a miss`).toBe(NIL)
      }
      expect(got, `${where}: get(${key})`).toBe(reference.get(key, now))
    } else if (roll < 0.82) {
      const value = nextValue++
      const size = maxSize === undefined || step < 0 ? undefined : 1 + Math.floor(random() * maxSize)
      const ttl = step >= 0 && random() < ttlShare ? 1 + Math.floor(random() * 50) : Number.POSITIVE_INFINITY
      const stored = tier.set(key, value, ttl, size, undefined, 0, { value }, [value, -value])
      // Stored unless it can never fit; it may still be evicted at once (reported through onEvict).
      if ((size ?? 1) > (maxBytes ?? Number.POSITIVE_INFINITY)) contents.delete(key)
      else
        contents.set(key, {
          value,
          size: size ?? 1,
          expiry: ttl === Number.POSITIVE_INFINITY ? ttl : now + ttl,
        })
      storedKey = stored ? key : undefined
      droppedKey = stored ? undefined : key
      expect(stored, `${where}: set(${key})`).toBe(reference.set(key, value, ttl, size ?? 1, now))
    } else if (roll < 0.88) {
      expect(tier.delete(key), `${where}: delete(${key})`).toBe(contents.has(key))
      contents.delete(key)
      reference.delete(key)
    } else if (roll < 0.94) {
      const held = contents.get(key)
      const live = held !== undefined && held.expiry > now
      expect(tier.peek(key), `${where}: peek(${key})`).toBe(live ? held.value : undefined)
      expect(tier.has(key), `${where}: has(${key})`).toBe(live)
    } else if (roll < 0.98) {
      clock.advance(1 + Math.floor(random() * 20))
    } else {
      sweeping = true
      const removed = tier.sweep()
      reference.sweep(now)
      expect(removed, `${where}: sweep() count`).toBe(
        tierEvictions.filter(([, , cause]) => cause === 'expired').length,
      )
    }

    // Apply what the tier reported, then compare it with the reference's evictions.
    for (const [evictedKey, value] of tierEvictions) {
      expect(contents.get(evictedKey)?.value, `${where}: onEvict(${evictedKey}) with a stale value`).toBe(
        value,
      )
      contents.delete(evictedKey)
    }
    const order = (list: Eviction[]) => (sweeping ? [...list].sort((a, b) => a[0].localeCompare(b[0])) : list)
    expect(order(tierEvictions), `${where}: evictions`).toEqual(order(refEvictions))
    for (const [, , cause] of tierEvictions) if (cause === 'size') sizeEvictions++
    tierEvictions.length = 0
    refEvictions.length = 0
    if (storedKey !== undefined) expect(contents.has(storedKey), `${where}: set returned true`).toBe(true)
    if (droppedKey !== undefined) expect(contents.has(droppedKey), `${where}: set returned false`).toBe(false)

    checkInvariants(tier)
    let bytes = 0
    for (const held of contents.values()) bytes += held.size
    expect(tier.size, `${where}: size`).toBe(contents.size)
    expect(tier.bytes, `${where}: bytes`).toBe(bytes)
    if (maxEntries !== undefined) expect(tier.size).toBeLessThanOrEqual(maxEntries)
    if (maxBytes !== undefined) expect(tier.bytes).toBeLessThanOrEqual(maxBytes)
    expect([...reference.entries.keys()].sort(), `${where}: contents`).toEqual([...contents.keys()].sort())
    if (step % 50 === 0 || step === -1) {
      const live = [...contents].filter(([, held]) => held.expiry > clock.now()).map(([k]) => k)
      expect([...tier.keys()].sort(), `${where}: keys()`).toEqual(live.sort())
    }
  }
  return { tier, reference, sizeEvictions }
}
