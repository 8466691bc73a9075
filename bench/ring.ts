/**
 * Consistent hashing: lookup cost, balance and movement of our HashRing (default 1,000 points per member,
 * and at 160), a transcription of the first seed's ConsistentHashRing, and the `hashring` package
 * (ketama: MD5, 160 points per server, an LRU of 5,000 recent lookups), with two reference schemes we
 * compared them with: jump consistent hash and rendezvous (highest random weight) hashing.
 * Run: npm run bench:ring
 */
import LegacyHashRing from 'hashring'
import { HashRing } from '../src/ring/hash-ring.js'
import { xxh32String } from '../src/ring/xxhash32.js'
import { type Contender, compare, machineLine, markdownTable } from './support/harness.js'

interface Ring {
  get(key: string): string
  add(name: string): void
  remove(name: string): void
}

/** The first seed's ConsistentHashRing, as written there (its sort, hash and findIndex included). */
class SeedRing {
  replicas: number
  ring = new Map<number, string>()
  sortedKeys: number[] = []
  constructor(nodes: string[] = [], replicas = 150) {
    this.replicas = replicas
    for (const node of nodes) this.addNode(node)
  }
  addNode(node: string) {
    for (let i = 0; i < this.replicas; i++) {
      const key = this.hash(`${node}:${i}`)
      this.ring.set(key, node)
      this.sortedKeys.push(key)
    }
    this.sortedKeys.sort()
  }
  removeNode(node: string) {
    for (let i = 0; i < this.replicas; i++) {
      const key = this.hash(`${node}:${i}`)
      this.ring.delete(key)
      this.sortedKeys = this.sortedKeys.filter((k) => k !== key)
    }
  }
  getNode(key: string) {
    if (this.sortedKeys.length === 0) return null
    const hash = this.hash(key)
    const index = this.sortedKeys.findIndex((k) => k >= hash)
    if (index === 0) return this.ring.get(this.sortedKeys[0]!)
    if (index === -1) return this.ring.get(this.sortedKeys[this.sortedKeys.length - 1]!)
    return this.ring.get(this.sortedKeys[index]!)
  }
  hash(str: string) {
    let hash = 0
    for (let i = 0; i < str.length; i++) {
      const char = str.charCodeAt(i)
      hash = (hash << 5) - hash + char
      hash = hash & hash // Convert to 32-bit integer
    }
    return hash
  }
}

/** Jump consistent hash (Lamping & Veach 2014), with mulberry32 seeded by the key's xxHash32 as its random source. */
class JumpRing {
  constructor(private members: string[]) {}
  get(key: string): string {
    let state = xxh32String(key) | 0
    let b = -1
    let j = 0
    const n = this.members.length
    while (j < n) {
      b = j
      state = (state + 0x6d2b79f5) | 0
      let t = Math.imul(state ^ (state >>> 15), 1 | state)
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
      const r = (((t ^ (t >>> 14)) >>> 0) + 1) / 4294967296 // (0, 1]
      j = Math.floor((b + 1) / r)
    }
    return this.members[b]!
  }
  add(name: string) {
    this.members.push(name)
  }
  /** Jump hash can only drop the last bucket: a member in the middle cannot leave. */
  remove(name: string) {
    if (this.members[this.members.length - 1] !== name)
      throw new Error('jump hash removes the last member only')
    this.members.pop()
  }
}

/** Rendezvous hashing (Thaler & Ravishankar 1998): the member with the highest hash of (key, member) wins; O(n). */
class RendezvousRing {
  private seeds: number[]
  constructor(private members: string[]) {
    this.seeds = members.map((m) => xxh32String(m))
  }
  get(key: string): string {
    const h = xxh32String(key)
    let best = -1
    let winner = 0
    for (let i = 0; i < this.seeds.length; i++) {
      // murmur3's fmix32 of key hash ^ member seed: a cheap, well-mixed score per member
      let x = h ^ this.seeds[i]!
      x = Math.imul(x ^ (x >>> 16), 0x85ebca6b)
      x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35)
      x = (x ^ (x >>> 16)) >>> 0
      if (x > best) {
        best = x
        winner = i
      }
    }
    return this.members[winner]!
  }
  add(name: string) {
    this.members.push(name)
    this.seeds.push(xxh32String(name))
  }
  remove(name: string) {
    const i = this.members.indexOf(name)
    this.members.splice(i, 1)
    this.seeds.splice(i, 1)
  }
}

const MEMBERS = Array.from({ length: 10 }, (_, i) => `10.0.0.${i + 1}:6379`)
const contenders: { name: string; make: (members: string[]) => Ring }[] = [
  { name: 'coherent-cache HashRing (1,000 points per member)', make: (m) => ring(new HashRing(m)) },
  { name: 'coherent-cache HashRing at 160 points', make: (m) => ring(new HashRing(m, { vnodes: 160 })) },
  {
    name: 'seed ConsistentHashRing (150 replicas)',
    make: (m) => {
      const seed = new SeedRing(m)
      return { get: (k) => seed.getNode(k)!, add: (n) => seed.addNode(n), remove: (n) => seed.removeNode(n) }
    },
  },
  {
    name: '`hashring` 3.2 (ketama, 160 points)',
    make: (m) => {
      let legacy = new LegacyHashRing(m)
      return {
        get: (k) => legacy.get(k),
        add: (n) => {
          legacy.add(n)
        },
        remove: (n) => {
          legacy = legacy.remove(n)
        },
      }
    },
  },
  { name: '(reference) jump hash', make: (m) => new JumpRing([...m]) },
  { name: '(reference) rendezvous hashing, O(n)', make: (m) => new RendezvousRing([...m]) },
]

function ring(r: HashRing): Ring {
  return { get: (k) => r.get(k)!, add: (n) => void r.add(n), remove: (n) => void r.remove(n) }
}

const LOOKUPS = 1_000_000
const DISTINCT = 100_000 // more than hashring's 5,000-entry lookup cache holds
const keys = Array.from({ length: DISTINCT }, (_, i) => `user:${i}:profile`)

// ---- lookup cost, interleaved ------------------------------------------------------------------------
const rings = contenders.map((c) => ({ name: c.name, ring: c.make([...MEMBERS]) }))
let sink = 0
const timed: Contender[] = rings.map(({ name, ring: r }) => ({
  name,
  run: () => {
    for (let i = 0; i < LOOKUPS; i++) sink += r.get(keys[i % DISTINCT]!).length
    return LOOKUPS
  },
}))
const lookups = new Map((await compare(timed)).map((r) => [r.name, r.opsPerSec]))
if (sink === 0) throw new Error('no lookups')

// ---- balance and movement ----------------------------------------------------------------------------
const BALANCE_KEYS = 1_000_000
const balanceKeys = Array.from({ length: BALANCE_KEYS }, (_, i) => `key:${i}`)
function owners(r: Ring): string[] {
  return balanceKeys.map((k) => r.get(k))
}
function maxOverMean(list: string[], members: number): number {
  const counts = new Map<string, number>()
  for (const owner of list) counts.set(owner, (counts.get(owner) ?? 0) + 1)
  return Math.max(...counts.values()) / (list.length / members)
}

const rows: (string | number)[][] = []
const ours = lookups.get(contenders[0]!.name)!
for (const contender of contenders) {
  const r = contender.make([...MEMBERS])
  const before = owners(r)
  const balance = maxOverMean(before, MEMBERS.length)
  r.add('10.0.0.11:6379')
  const added = owners(r)
  let moved = 0
  let movedElsewhere = 0
  for (let i = 0; i < before.length; i++) {
    if (before[i] === added[i]) continue
    moved++
    if (added[i] !== '10.0.0.11:6379') movedElsewhere++
  }
  // Remove a member from the middle of the list (jump hash can only remove the last one).
  const leaving = contender.name.includes('jump') ? '10.0.0.11:6379' : '10.0.0.4:6379'
  r.remove(leaving)
  const removed = owners(r)
  let removedMoved = 0
  let removedWrong = 0
  for (let i = 0; i < added.length; i++) {
    if (added[i] === removed[i]) continue
    removedMoved++
    if (added[i] !== leaving) removedWrong++
  }
  const ops = lookups.get(contender.name)!
  rows.push([
    contender.name,
    `${(1e9 / ops).toFixed(0)} ns`,
    `${(ops / ours).toFixed(2)}×`,
    balance.toFixed(3),
    `${((100 * moved) / BALANCE_KEYS).toFixed(1)}%`,
    `${((100 * movedElsewhere) / Math.max(1, moved)).toFixed(1)}%`,
    `${((100 * removedMoved) / BALANCE_KEYS).toFixed(1)}%${contender.name.includes('jump') ? ' (last member)' : ''}`,
    `${((100 * removedWrong) / Math.max(1, removedMoved)).toFixed(1)}%`,
  ])
}

console.log('## Consistent hashing: lookup, balance, movement\n')
console.log(
  `10 members. Lookup: ${LOOKUPS.toLocaleString()} lookups over ${DISTINCT.toLocaleString()} distinct keys per round, median of 5 interleaved rounds. Balance and movement: ${BALANCE_KEYS.toLocaleString()} keys; an 11th member added (ideal: 1/11 = 9.1% of keys move, all to it), then a member removed (ideal: only its keys move). ${machineLine()}.\n`,
)
console.log(
  markdownTable(
    [
      'ring',
      'lookup',
      'lookups vs ours',
      'max/mean load',
      'moved on add',
      'of which not to the new member',
      'moved on remove',
      'of which not from the removed member',
    ],
    rows,
  ),
)
