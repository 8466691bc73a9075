/**
 * A consistent-hash ring: maps keys to named members so that adding a member moves only the keys it
 * takes over, and removing one moves only the keys it held.
 *
 * Idea: each member owns `vnodes × weight` points ("virtual nodes") on a 32-bit circle, at the
 * xxHash32 of `<name>\0<i>`; a key belongs to the first point at or after its own hash, wrapping
 * around. A member's share is the sum of the arcs before its points, so its load is proportional to
 * its weight and the spread shrinks as 1/sqrt(points): 160 points leave about ±8% per member, and the
 * most loaded of 10 members about 12% above the mean. The default of 1,000 points per unit of weight
 * keeps the most loaded of 10 members within 10% of the mean for any member names (a spread of ±3%):
 * docs/decisions.md has the comparison with jump hash, rendezvous and bounded-load hashing, and
 * `npm run bench:ring` the figures.
 *
 * Invariants: the mapping depends only on the set of (name, weight) pairs and `vnodes`, never on the
 * order members were added in: points with equal hashes are ordered by member name. A member's identity
 * is its name. Keys and names are hashed as UTF-8, so every process and Node version agrees.
 *
 * Layout: points are packed as `hash × 2^16 + member id` (exact in a double) in 2^b buckets by their top
 * b bits, each bucket sorted, with b kept near log2(points / 2). A lookup is one hash, one bucket and a
 * scan of its two or three points (O(1) expected, O(log n) at worst through the bucket). Adding or
 * removing a member touches only the buckets of its own points (O(points of that member) expected);
 * the buckets are rebuilt only when the number of points has doubled or halved (amortized O(1) per
 * point). The seed's ring scanned every point on each lookup and filtered the whole ring once per point
 * on removal.
 *
 * Source: Karger et al., "Consistent Hashing and Random Trees", STOC 1997; libketama's points per server.
 */
import { InvalidOptionError } from '../errors.js'
import { xxh32String } from './xxhash32.js'

export interface RingMember {
  name: string
  /** Relative share of keys. @default 1 */
  weight?: number
}

export interface HashRingOptions {
  /** Points on the ring per unit of weight. @default 1000 */
  vnodes?: number
}

/** Points per unit of weight: keeps the most loaded of 10 equal members within 10% of the mean. */
export const DEFAULT_VNODES = 1000
const ID_SPACE = 65_536 // member ids fit in the low 16 bits of a packed point
const MIN_BITS = 4
const MAX_BITS = 20

interface Member {
  readonly name: string
  readonly id: number
  readonly weight: number
  /** Hashes of its points. */
  readonly hashes: number[]
}

/** The ring position of a key: xxHash32 of its UTF-8 bytes. */
export function ringHash(key: string): number {
  return xxh32String(key)
}

export class HashRing {
  readonly vnodes: number
  private readonly byName = new Map<string, Member>()
  private names: string[] = []
  private readonly freeIds: number[] = []
  private buckets: number[][] = []
  private bits = MIN_BITS
  private shift = 32 - MIN_BITS
  private points = 0

  constructor(members: Iterable<string | RingMember> = [], options: HashRingOptions = {}) {
    const vnodes = options.vnodes ?? DEFAULT_VNODES
    if (!Number.isInteger(vnodes) || vnodes < 1 || vnodes > 100_000) {
      throw new InvalidOptionError('vnodes', `expected an integer from 1 to 100000, got ${String(vnodes)}`)
    }
    this.vnodes = vnodes
    this.buckets = Array.from({ length: 1 << MIN_BITS }, () => [])
    let i = 0
    for (const member of members) {
      const { name, weight } = typeof member === 'string' ? { name: member, weight: 1 } : member
      if (this.byName.has(name))
        throw new InvalidOptionError(`members[${i}].name`, `duplicate member ${name}`)
      this.add(name, weight ?? 1, `members[${i}]`)
      i++
    }
  }

  /** How many members the ring has. */
  get size(): number {
    return this.byName.size
  }

  has(name: string): boolean {
    return this.byName.has(name)
  }

  /** Member names, sorted. */
  members(): string[] {
    return [...this.byName.keys()].sort()
  }

  weight(name: string): number | undefined {
    return this.byName.get(name)?.weight
  }

  /** Adds a member (or changes the weight of one already there). */
  add(name: string, weight = 1, option = 'member'): this {
    if (typeof name !== 'string' || name.length === 0) {
      throw new InvalidOptionError(`${option}.name`, 'a member needs a non-empty string name')
    }
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight <= 0) {
      throw new InvalidOptionError(`${option}.weight`, `expected a positive number, got ${String(weight)}`)
    }
    const existing = this.byName.get(name)
    if (existing !== undefined) {
      if (existing.weight === weight) return this
      this.remove(name)
    }
    if (this.byName.size >= ID_SPACE) throw new InvalidOptionError(option, `at most ${ID_SPACE} members`)
    const id = this.freeIds.pop() ?? this.names.length
    const count = Math.max(1, Math.round(this.vnodes * weight))
    const hashes = new Array<number>(count)
    for (let i = 0; i < count; i++) hashes[i] = xxh32String(`${name}\u0000${i}`)
    const member: Member = { name, id, weight, hashes }
    this.byName.set(name, member)
    this.names[id] = name
    this.points += count
    if (this.resize()) return this
    for (const hash of hashes) this.insert(hash, member)
    return this
  }

  /** Removes a member; false if it was not there. */
  remove(name: string): boolean {
    const member = this.byName.get(name)
    if (member === undefined) return false
    this.byName.delete(name)
    this.points -= member.hashes.length
    this.freeIds.push(member.id)
    if (!this.resize()) {
      const { id } = member
      for (const hash of member.hashes) {
        const bucket = this.buckets[hash >>> this.shift]!
        const at = bucket.indexOf(hash * ID_SPACE + id)
        if (at >= 0) bucket.splice(at, 1)
      }
    }
    this.names[member.id] = ''
    return true
  }

  /** The member that owns `key`; undefined when the ring is empty. */
  get(key: string): string | undefined {
    if (this.points === 0) return undefined
    return this.names[this.ownerAt(xxh32String(key))]
  }

  /**
   * The first member clockwise from `key`'s position that `accept` takes (the owner first, then the
   * members of the following points, each asked once); undefined if none does.
   */
  find(key: string, accept: (member: string) => boolean): string | undefined {
    if (this.points === 0) return undefined
    const hash = xxh32String(key)
    const target = hash * ID_SPACE
    const asked = new Set<number>()
    const { buckets } = this
    const mask = buckets.length - 1
    const first = hash >>> this.shift
    // One lap: the start bucket's points at or after the key, every other bucket, then the start
    // bucket's points before the key.
    for (let lap = 0; lap <= buckets.length; lap++) {
      const bucket = buckets[(first + lap) & mask]!
      for (let i = 0; i < bucket.length; i++) {
        const point = bucket[i]!
        if (lap === 0 && point < target) continue
        if (lap === buckets.length && point >= target) break
        const id = point % ID_SPACE
        if (asked.has(id)) continue
        asked.add(id)
        const name = this.names[id]!
        if (accept(name)) return name
        if (asked.size === this.byName.size) return undefined
      }
    }
    return undefined
  }

  /** Id of the member owning the first point at or after `hash`. */
  private ownerAt(hash: number): number {
    const { buckets } = this
    const start = hash >>> this.shift
    const bucket = buckets[start]!
    const target = hash * ID_SPACE
    for (let i = 0; i < bucket.length; i++) {
      const point = bucket[i]!
      if (point >= target) return point % ID_SPACE
    }
    const mask = buckets.length - 1
    for (let n = 1; ; n++) {
      const next = buckets[(start + n) & mask]!
      if (next.length > 0) return next[0]! % ID_SPACE
    }
  }

  /** Puts one point in its bucket: ordered by hash, equal hashes by member name. */
  private insert(hash: number, member: Member): void {
    const bucket = this.buckets[hash >>> this.shift]!
    const point = hash * ID_SPACE + member.id
    let lo = 0
    let hi = bucket.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.before(bucket[mid]!, hash, member.name)) lo = mid + 1
      else hi = mid
    }
    bucket.splice(lo, 0, point)
  }

  /** Whether packed point `point` comes before a point of `name` at `hash`. */
  private before(point: number, hash: number, name: string): boolean {
    const pointHash = Math.floor(point / ID_SPACE)
    if (pointHash !== hash) return pointHash < hash
    return this.names[point % ID_SPACE]! < name
  }

  /**
   * Keeps about two points per bucket: rebuilds every bucket when the number of points has moved a
   * factor of four away from that. Returns true if it rebuilt (the points are then all in place).
   */
  private resize(): boolean {
    const wanted = Math.min(MAX_BITS, Math.max(MIN_BITS, Math.round(Math.log2(Math.max(1, this.points / 2)))))
    if (Math.abs(wanted - this.bits) < 2 && this.points > 0) return false
    if (wanted === this.bits && this.points === 0) return false
    this.bits = wanted
    this.shift = 32 - wanted
    const all: { hash: number; member: Member }[] = []
    for (const member of this.byName.values()) for (const hash of member.hashes) all.push({ hash, member })
    all.sort((a, b) => a.hash - b.hash || (a.member.name < b.member.name ? -1 : 1))
    const buckets: number[][] = Array.from({ length: 1 << wanted }, () => [])
    for (const { hash, member } of all) buckets[hash >>> this.shift]!.push(hash * ID_SPACE + member.id)
    this.buckets = buckets
    return true
  }
}
