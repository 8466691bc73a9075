/**
 * shardedStore: one L2 made of several independent stores (Redis servers, memcached servers, any
 * RemoteStore), each key on one member chosen by a HashRing, for fleets that outgrow one server but
 * cannot run Redis Cluster.
 * Long because routing, the fleet-wide member generations and the stamp registers depend on each other
 * (a key's name carries the generations, stamps are read from a majority); the ring itself is in
 * src/ring/ and each member's resilience in its RemoteTier.
 *
 * Per member: every call goes through the member's own RemoteTier (timeout `memberTimeout`) and
 * CircuitBreaker, so a failing member fails fast without touching the others. The store says so with
 * `guardsMembers`, and the cache gives it no breaker of its own (one dead member must not open a breaker
 * around the whole ring).
 *
 * Failover (default): when a member's breaker opens, the node *ejects* it for the whole fleet, and its
 * keys are served by the next member clockwise on the ring until some node's health check finds it
 * answering again and *re-admits* it. The hard part is a member that comes back holding values older
 * than writes its keys received elsewhere meanwhile. The rule that prevents serving them:
 *
 * 1. Generations. Each member has a generation, even while it is in, odd while it is out, stored as a
 *    register (an entry whose version is the generation) on EVERY member; a node reads all of them and
 *    takes the highest. Ejecting or re-admitting raises it by one (setIfNewer on every member that
 *    answers), so a member that was away, and missed the raise, cannot lower it.
 * 2. Keys carry the generations they were written under: a key of member M is stored as `<g(M)>|key`
 *    on M while M is in, and as `<g(M)>/<sum of all generations>|key` on the member serving it while M
 *    is out. Every ejection or re-admission of any member changes the names of the keys it affects, so
 *    what a member held before it left, and what a fallback held for it, can never be read again.
 * 3. Switching. A node that learns a new generation (or makes one) keeps away from the keys it affects
 *    for `viewTtl + memberTimeout`: their calls fail fast (the cache degrades: loader, stale, outage
 *    queue). A node trusts its view of the generations for `viewTtl` after it asked for it and refreshes
 *    it every viewTtl / 4, so by the time anyone uses the new names, no node uses the old ones. A node
 *    that starts treats generations written in the last viewTtl + memberTimeout (by the writer's clock,
 *    plus a second for skew) the same way.
 *
 * Stamps (tag and namespace generation counters) are not sharded: every member holds every stamp, as a
 * max-register (an entry `s|<name>` whose version is the stamp's value). A bump reads the stamp from
 * every member, takes the highest value, and raises every member to max(highest + 1, proposed)
 * (setIfNewer), as store.ts asks; a read takes the highest value. Both need a majority of all members to answer, so a read shares a member with
 * every bump that succeeded and never sees a lower value; counters (INCR) would not do, as members that
 * missed different bumps would each be ahead of the others. A member that comes back empty has lost the
 * history of every stamp: a node that had read its stamp epoch register (on every member, with the
 * member's boot id) finds it gone or re-made, and raises the epoch first, to a version-clock reading
 * (hlc.ts); values are at least the epoch, so every later value is above every earlier one (a full miss
 * of what was cached, never a stale hit). An invalidation stays O(1) in the number of keys: one register per member.
 *
 * Limits: a node that can reach only members that missed a transition (a partition that cuts it off
 * from every member that recorded it) routes by the old generations; a member that applies a register
 * write more than memberTimeout after it was sent can be seen late; a member that loses stamps without
 * losing the epoch register (eviction under memory pressure), or restarts empty while no running node
 * had read from it, goes unnoticed; with fewer than a majority
 * of members answering, stamps cannot be read or bumped (the cache degrades); a lease
 * taken before a transition is not seen after it (two loaders may run once); tombstones do not follow a
 * key to its new name, so a load that started before a delete and ends after a transition can write its
 * older value. An asymmetric partition (one node cannot reach a member that others can) makes the member
 * flap between in and out, every readmitAfter, each time with the loss of its cached keys.
 *
 * Without failover (`failover: false`) a failing member's keys fail fast until it answers again (the
 * cache's loader and outage queue take over), keys keep their names, and no registers are used.
 */
import { randomBytes } from 'node:crypto'
import { type Clock, systemClock } from '../clock.js'
import { MAX_VERSION_LEAD } from '../coherence/hlc.js'
import { type Duration, parseDuration } from '../duration.js'
import { InvalidOptionError, ShardUnavailableError } from '../errors.js'
import { CircuitBreaker, type CircuitState } from '../remote/circuit-breaker.js'
import { RemoteTier } from '../remote/remote-tier.js'
import { HashRing } from '../ring/hash-ring.js'
import type { ConditionalWrite, EntryHead, RemoteStore, StoredEntry, WriteCondition } from './store.js'

export interface ShardMember {
  /** The member's identity on the ring: the same name must mean the same server on every node. */
  name: string
  store: RemoteStore
  /** Relative share of keys. @default 1 */
  weight?: number
}

export interface ShardedStoreOptions {
  /** Ring points per unit of weight (see HashRing). @default 1000 */
  vnodes?: number
  /** Upper bound on each call to one member; past it the call counts as failed. @default '500ms' */
  memberTimeout?: Duration
  /** Each member's circuit breaker. @default { failureThreshold: 5, openDuration: '2s' } */
  circuitBreaker?: { failureThreshold?: number; openDuration?: Duration }
  /** Serve an ejected member's keys from the next member on the ring (true) or fail them fast. @default true */
  failover?: boolean
  /** How long a node trusts what it read of the members' generations. @default '2s' */
  viewTtl?: Duration
  /** How often members that are out, or whose breaker is open, are probed. @default '1s' */
  healthCheckInterval?: Duration
  /** How long a member stays out before a successful health check may re-admit it. @default '5s' */
  readmitAfter?: Duration
  /** Prefix of the generation registers on each member. @default 'coherent-ring' */
  prefix?: string
  /** @default systemClock */
  clock?: Clock
}

export type ShardState = 'in' | 'out'

export interface ShardStatus {
  name: string
  /** Whether the fleet routes the member's keys to it (in) or to the next member (out). */
  state: ShardState
  /** Its generation (even: in, odd: out). */
  generation: number
  /** True while this node keeps away from the keys the member's last transition affects. */
  switching: boolean
  /** This node's breaker for the member. */
  circuit: CircuitState
  /** How many times this node's breaker for the member opened. */
  circuitOpened: number
}

/** A sharded store; `status()` tells how each member is seen from this node. */
export interface ShardedStore extends RemoteStore {
  readonly guardsMembers: true
  status(): ShardStatus[]
}

const FOREVER_MS = 365 * 86_400_000 // registers never expire
const SKEW_MARGIN_MS = 1_000 // a starting node allows this much clock skew against a register's writer

interface Shard {
  readonly index: number
  readonly name: string
  readonly store: RemoteStore
  readonly tier: RemoteTier
  readonly breaker: CircuitBreaker
  /** The generation this node routes by. */
  used: number
  /** The highest generation this node has learned. */
  latest: number
  /** Until then this node keeps away from the keys the member's last transition affects. */
  switchAt: number
  /** When this node learned that the member is out (for readmitAfter). */
  outSince: number
  /** A transition of this member is being written. */
  proposing: boolean
  stopReconnect: (() => void) | undefined
}

interface Route {
  shard: Shard
  key: string
}

class ShardedStoreImpl implements ShardedStore {
  readonly name = 'sharded'
  readonly guardsMembers = true as const
  private readonly shards: Shard[]
  private readonly byName = new Map<string, Shard>()
  private readonly ring: HashRing
  private readonly clock: Clock
  private readonly failover: boolean
  private readonly memberTimeoutMs: number
  private readonly viewTtlMs: number
  private readonly switchDelayMs: number
  private readonly healthMs: number
  private readonly readmitMs: number
  private readonly prefix: string
  /** Members a stamp read or bump must reach. */
  private readonly majority: number
  /** When the view in use was asked for (clock ms); the view is trusted until viewAt + viewTtl. */
  private viewAt = Number.NEGATIVE_INFINITY
  /** Sum of the generations in use (names fallback keys). */
  private generationSum = 0
  /** The latest switchAt of any member. */
  private switchingUntil = 0
  /** The earliest switchAt of a member whose new generation is not in use yet. */
  private pendingAt = Number.POSITIVE_INFINITY
  private refreshing: Promise<void> | undefined
  /** The boot id this node last saw in each member's stamp epoch register, and that register's epoch. */
  private readonly boots = new Map<number, { id: string; epoch: number }>()
  /** The last bump of each stamp in flight from this process. */
  private readonly bumping = new Map<string, Promise<void>>()
  private timers: NodeJS.Timeout[] = []
  private started = false
  private closed = false

  constructor(members: readonly ShardMember[], options: ShardedStoreOptions) {
    if (!Array.isArray(members) || members.length === 0) {
      throw new InvalidOptionError('members', 'shardedStore needs a non-empty array of { name, store }')
    }
    this.clock = options.clock ?? systemClock
    this.failover = options.failover ?? true
    if (typeof this.failover !== 'boolean') throw new InvalidOptionError('failover', 'expected a boolean')
    this.memberTimeoutMs = parseDuration(options.memberTimeout ?? 500, 'memberTimeout', { allowZero: false })
    this.viewTtlMs = parseDuration(options.viewTtl ?? 2_000, 'viewTtl', { allowZero: false })
    this.healthMs = parseDuration(options.healthCheckInterval ?? 1_000, 'healthCheckInterval', {
      allowZero: false,
    })
    this.readmitMs = parseDuration(options.readmitAfter ?? 5_000, 'readmitAfter')
    this.switchDelayMs = this.viewTtlMs + this.memberTimeoutMs
    this.prefix = options.prefix ?? 'coherent-ring'
    if (typeof this.prefix !== 'string' || this.prefix.length === 0) {
      throw new InvalidOptionError('prefix', 'expected a non-empty string')
    }
    const breaker = options.circuitBreaker ?? {}
    const failureThreshold = breaker.failureThreshold ?? 5
    if (!Number.isInteger(failureThreshold) || failureThreshold < 1) {
      throw new InvalidOptionError('circuitBreaker.failureThreshold', 'expected a positive integer')
    }
    const openMs = parseDuration(breaker.openDuration ?? 2_000, 'circuitBreaker.openDuration')
    this.ring = new HashRing(
      members.map((member, i) => {
        if (member === null || typeof member !== 'object' || typeof member.store?.get !== 'function') {
          throw new InvalidOptionError(`members[${i}]`, 'expected { name, store, weight? }')
        }
        return { name: member.name, weight: member.weight }
      }),
      { vnodes: options.vnodes },
    )
    this.shards = members.map((member, index) => {
      let shard: Shard | undefined
      const breaker = new CircuitBreaker(
        `member ${member.name} of shardedStore`,
        { failureThreshold, openMs },
        this.clock,
        (state) => this.onCircuit(shard!, state),
      )
      shard = {
        index,
        name: member.name,
        store: member.store,
        breaker,
        tier: new RemoteTier(member.store, this.memberTimeoutMs, breaker),
        used: 0,
        latest: 0,
        switchAt: 0,
        outSince: 0,
        proposing: false,
        stopReconnect: undefined,
      }
      this.byName.set(member.name, shard)
      return shard
    })
    this.majority = Math.floor(this.shards.length / 2) + 1
    if (!this.failover) this.viewAt = Number.POSITIVE_INFINITY
  }

  // ---- entries -------------------------------------------------------------------------------------

  get(key: string): Promise<StoredEntry | undefined> {
    const route = this.route(key)
    if (route instanceof Promise) return route.then((r) => r.shard.tier.get(r.key))
    return route.shard.tier.get(route.key)
  }

  set(key: string, bytes: Uint8Array, version: number, ttlMs: number, deadline?: number): Promise<number> {
    return this.onRoute(key, (shard, name) => shard.tier.set(name, bytes, version, ttlMs, deadline))
  }

  setIfNewer(key: string, bytes: Uint8Array, version: number, ttlMs: number): Promise<number | undefined> {
    return this.onRoute(key, (shard, name) => shard.tier.setIfNewer(name, bytes, version, ttlMs))
  }

  delete(key: string, version: number, tombstoneTtlMs: number, deadline?: number): Promise<number> {
    return this.onRoute(key, (shard, name) => shard.tier.delete(name, version, tombstoneTtlMs, deadline))
  }

  deleteIfNewer(key: string, version: number, tombstoneTtlMs: number): Promise<number | undefined> {
    return this.onRoute(key, (shard, name) => shard.tier.deleteIfNewer(name, version, tombstoneTtlMs))
  }

  /** The member's head of the key (under its current name) and the stamps from a majority, together. */
  async head(key: string, stampKeys: readonly string[]): Promise<EntryHead> {
    const [head, stamps] = await Promise.all([
      this.onRoute(key, (shard, name) => shard.tier.head(name, [])),
      this.getStamps(stampKeys),
    ])
    return { version: head.version, deleted: head.deleted, stamps }
  }

  /**
   * On the member that holds the key. A key that moved since the writer noted what it held has another
   * name now, which holds something else (or nothing): the write then turns into a delete, as it should.
   * A member without setIf deletes the key instead.
   */
  setIf(
    key: string,
    bytes: Uint8Array,
    version: number,
    ttlMs: number,
    condition: WriteCondition,
  ): Promise<ConditionalWrite> {
    return this.onRoute(key, async (shard, name) => {
      if (shard.tier.conditional) return shard.tier.setIf(name, bytes, version, ttlMs, condition)
      const deleted = await shard.tier.delete(name, version, condition.tombstoneTtlMs)
      return { outcome: 'deleted', version: deleted }
    })
  }

  async acquireLease(key: string, token: string, ttlMs: number): Promise<boolean> {
    return this.onRoute(key, (shard, name) => {
      const { store } = shard
      if (!store.acquireLease) return Promise.reject(new Error(`member ${shard.name} has no leases`))
      return shard.tier.call('acquireLease', () => store.acquireLease!(name, token, ttlMs))
    })
  }

  async releaseLease(key: string, token: string): Promise<boolean> {
    return this.onRoute(key, (shard, name) => {
      const { store } = shard
      if (!store.releaseLease) return Promise.reject(new Error(`member ${shard.name} has no leases`))
      return shard.tier.call('releaseLease', () => store.releaseLease!(name, token))
    })
  }

  // ---- stamps: on every member, highest wins ---------------------------------------------------------

  async getStamps(keys: readonly string[]): Promise<number[]> {
    if (keys.length === 0) return []
    return (await this.readStamps(keys, versionNow(this.clock))).map((stamp) => stamp.value)
  }

  async bumpStamps(keys: readonly string[], ttlMs: number, proposed = 0, raise = false): Promise<number[]> {
    if (keys.length === 0) return []
    if (!Number.isFinite(ttlMs)) return Promise.reject(new RangeError(`ttlMs must be finite, got ${ttlMs}`))
    if (!(Number.isSafeInteger(proposed) && proposed >= 0)) {
      return Promise.reject(new RangeError(`proposed must be a non-negative safe integer, got ${proposed}`))
    }
    // Bumps of one stamp from this process run one after the other (each reads, then raises), so each
    // resolves to a value of its own.
    const prior = keys.map((key) => this.bumping.get(key)).filter((p) => p !== undefined)
    const run = (prior.length === 0 ? Promise.resolve() : Promise.all(prior)).then(() =>
      this.bump(keys, ttlMs, proposed, raise),
    )
    const done = run.then(
      () => {},
      () => {},
    )
    for (const key of keys) this.bumping.set(key, done)
    void done.then(() => {
      for (const key of keys) if (this.bumping.get(key) === done) this.bumping.delete(key)
    })
    return run
  }

  private async bump(
    keys: readonly string[],
    ttlMs: number,
    proposed: number,
    raise: boolean,
  ): Promise<number[]> {
    if (new Set(keys).size !== keys.length) {
      // A stamp named twice is bumped twice, as Redis does: one key at a time.
      const values: number[] = []
      for (const key of keys) values.push(...(await this.bump([key], ttlMs, proposed, raise)))
      return values
    }
    const stamps = await this.readStamps(keys, proposed)
    const now = this.clock.now()
    return Promise.all(
      keys.map(async (key, i) => {
        const target = Math.max(raise ? stamps[i]!.value : stamps[i]!.value + 1, proposed)
        // The TTL becomes max(remaining, ttl), whatever a member that missed earlier bumps says.
        const expiresAt = Math.max(stamps[i]!.expiresAt, now + ttlMs)
        const bytes = new TextEncoder().encode(String(expiresAt))
        const raised = await this.onMajority((shard) =>
          shard.tier.setIfNewer(stampName(key), bytes, target, Math.max(1, expiresAt - now)),
        )
        // Refused by a member that holds a higher value (another node's bump): that value stands.
        return raised.reduce<number>((highest, { value }) => Math.max(highest, value ?? target), target)
      }),
    )
  }

  /**
   * Reads `keys` from every member, with each member's stamp epoch register. A value is the highest any
   * member holds, and at least the epoch (the highest register version: a version-clock reading taken
   * when it was raised, so above every value handed out before). A member value more than
   * MAX_VERSION_LEAD above `proposed` (a bump's version-clock reading; for a plain read, this node's) is
   * garbage and not believed (store.ts).
   *
   * A member that lost its data (a restart without persistence) lost what it knew of every stamp, and a
   * majority that includes it may read values lower than ones given before. So the epoch is raised on
   * every member first, and every value from then on is above every value given before (entries written
   * before become invalid: a full miss, never a stale hit). A loss is told from a fleet that is starting
   * by the boot id in each member's register: a node that has seen a member's boot id and then finds the
   * register gone, or another boot id that no raise accounted for, raises the epoch; a register that no
   * node here has seen is only initialized (when a fleet starts, its nodes race to do that).
   */
  private async readStamps(
    keys: readonly string[],
    proposed: number,
  ): Promise<{ value: number; expiresAt: number }[]> {
    const ceiling = (proposed > 0 ? proposed : versionNow(this.clock)) + MAX_VERSION_LEAD
    this.start()
    const answers = await this.onMajority((shard) =>
      Promise.all([
        shard.tier.get(EPOCH_REGISTER(this.prefix)),
        ...keys.map((key) => shard.tier.get(stampName(key))),
      ]),
    )
    let epoch = -1
    for (const { value } of answers)
      if (value[0] !== undefined && value[0].version > epoch && value[0].version <= ceiling)
        epoch = value[0].version
    let lost = false
    const missing: Shard[] = []
    for (const { shard, value } of answers) {
      const register = value[0]
      const known = this.boots.get(shard.index)
      if (register === undefined) {
        missing.push(shard)
        if (known !== undefined) lost = true
        continue
      }
      const boot = parseBoot(register.bytes)
      if (known !== undefined && known.id !== boot.id && boot.raisedTo <= known.epoch) lost = true
      this.boots.set(shard.index, { id: boot.id, epoch: Math.max(register.version, known?.epoch ?? -1) })
    }
    if (lost) epoch = await this.raiseEpoch(answers, Math.max(epoch + 1, versionNow(this.clock)))
    else if (missing.length > 0) await this.initialize(missing, Math.max(epoch, 0))
    if (epoch < 0) epoch = 0
    return keys.map((_, i) => {
      let value = epoch
      let expiresAt = 0
      for (const answer of answers) {
        const stamp = answer.value[i + 1]
        if (stamp === undefined || stamp.version > ceiling) continue
        if (stamp.version > value) value = stamp.version
        expiresAt = Math.max(expiresAt, writtenAtOf(stamp.bytes))
      }
      return { value, expiresAt }
    })
  }

  /** Gives members without a register one (a new boot id) at `epoch`, raising nothing. */
  private async initialize(members: Shard[], epoch: number): Promise<void> {
    await Promise.allSettled(
      members.map(async (shard) => {
        const id = randomBootId()
        const refused = await shard.tier.setIfNewer(
          EPOCH_REGISTER(this.prefix),
          bootBytes(id, -1),
          epoch,
          FOREVER_MS,
        )
        // Refused: another node initialized it first; its boot id is learned at the next read.
        if (refused === undefined) this.boots.set(shard.index, { id, epoch })
      }),
    )
  }

  /**
   * Raises the stamp epoch to `target` on every member that answered (keeping each one's boot id, and
   * giving members without a register a new one); a majority must take it.
   */
  private async raiseEpoch(
    answers: { shard: Shard; value: (StoredEntry | undefined)[] }[],
    target: number,
  ): Promise<number> {
    const raised = await this.onMajority(async (shard) => {
      const answer = answers.find((a) => a.shard === shard)
      if (answer === undefined) throw new ShardUnavailableError(`member ${shard.name} did not answer`)
      const register = answer.value[0]
      const id = register === undefined ? randomBootId() : parseBoot(register.bytes).id
      const refused = await shard.tier.setIfNewer(
        EPOCH_REGISTER(this.prefix),
        bootBytes(id, target),
        target,
        FOREVER_MS,
      )
      this.boots.set(shard.index, { id, epoch: Math.max(target, refused ?? target) })
      return refused
    })
    return raised.reduce<number>((highest, { value }) => Math.max(highest, value ?? target), target)
  }

  /**
   * Runs `call` on every member (those with an open circuit fail at once) and returns the answers; fails
   * unless a majority of all members answered. A write taken by a majority and a read answered by a
   * majority share at least one member, so no read misses a write that succeeded.
   */
  private async onMajority<T>(call: (shard: Shard) => Promise<T>): Promise<{ shard: Shard; value: T }[]> {
    const outcomes = await Promise.allSettled(this.shards.map(call))
    const answers: { shard: Shard; value: T }[] = []
    let failure: unknown
    outcomes.forEach((outcome, i) => {
      if (outcome.status === 'fulfilled') answers.push({ shard: this.shards[i]!, value: outcome.value })
      else failure ??= outcome.reason
    })
    if (answers.length < this.majority) {
      throw new ShardUnavailableError(
        `shardedStore: stamps need a majority of members (${this.majority} of ${this.shards.length}), ${answers.length} answered: ${String(failure)}`,
      )
    }
    return answers
  }

  // ---- routing -------------------------------------------------------------------------------------

  private onRoute<T>(key: string, call: (shard: Shard, name: string) => Promise<T>): Promise<T> {
    const route = this.route(key)
    if (route instanceof Promise) return route.then((r) => call(r.shard, r.key))
    return call(route.shard, route.key)
  }

  /** Where `key` lives now, and under which name; a promise when the view must be read first. */
  private route(key: string): Route | Promise<Route> {
    this.start()
    if (!this.failover) return { shard: this.byName.get(this.ring.get(key)!)!, key }
    try {
      if (this.clock.now() > this.viewAt + this.viewTtlMs)
        return this.refreshed().then(() => this.routeNow(key))
      return this.routeNow(key)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  private routeNow(key: string): Route {
    const now = this.clock.now()
    if (now > this.viewAt + this.viewTtlMs) {
      throw new ShardUnavailableError('shardedStore: no member answered the membership refresh in time')
    }
    if (now >= this.pendingAt) this.settle(now)
    const home = this.byName.get(this.ring.get(key)!)!
    if (now < home.switchAt) throw this.switching(home)
    if ((home.used & 1) === 0) return { shard: home, key: `${home.used}|${key}` }
    // Out: the next member that is in. Fallback names change with every transition of any member.
    if (now < this.switchingUntil) throw this.switching(home)
    const serving = this.ring.find(key, (name) => (this.byName.get(name)!.used & 1) === 0)
    if (serving === undefined) throw new ShardUnavailableError('shardedStore: every member is out')
    return { shard: this.byName.get(serving)!, key: `${home.used}/${this.generationSum}|${key}` }
  }

  private switching(shard: Shard): ShardUnavailableError {
    return new ShardUnavailableError(
      `shardedStore: member ${shard.name} is ${(shard.latest & 1) === 0 ? 'being re-admitted' : 'being ejected'}; its keys are unavailable for a moment`,
    )
  }

  /** Adopts the generations whose switching period is over. */
  private settle(now: number): void {
    let sum = 0
    let until = 0
    let pending = Number.POSITIVE_INFINITY
    for (const shard of this.shards) {
      if (shard.used !== shard.latest) {
        if (now >= shard.switchAt) shard.used = shard.latest
        else if (shard.switchAt < pending) pending = shard.switchAt
      }
      sum += shard.used
      if (shard.switchAt > until) until = shard.switchAt
    }
    this.generationSum = sum
    this.switchingUntil = until
    this.pendingAt = pending
  }

  /** Learns generation `gen` of `shard` (written at `writtenAt` by its writer's clock, if known). */
  private learn(shard: Shard, gen: number, now: number, writtenAt?: number, first = false): void {
    if (gen <= shard.latest && !first) return
    if (first) {
      shard.used = gen
      shard.latest = gen
      // Written recently: other nodes may still be switching to it.
      if (writtenAt !== undefined && now - writtenAt < this.switchDelayMs + SKEW_MARGIN_MS) {
        shard.switchAt = now + this.switchDelayMs
      }
    } else {
      shard.latest = gen
      shard.switchAt = now + this.switchDelayMs
    }
    if ((gen & 1) === 1) shard.outSince = now
    this.settle(now)
  }

  private register(shard: Shard): string {
    return `${this.prefix}:generation:${shard.name}`
  }

  private refreshed(): Promise<void> {
    this.refreshing ??= this.refresh().finally(() => {
      this.refreshing = undefined
    })
    return this.refreshing
  }

  /** Reads every member's generation from every member; the highest wins. */
  private async refresh(): Promise<void> {
    const startedAt = this.clock.now()
    const first = this.viewAt === Number.NEGATIVE_INFINITY
    const best = this.shards.map(() => ({ gen: -1, writtenAt: 0 }))
    const answered = await Promise.all(
      this.shards.map(async (reader) => {
        try {
          const entries = await Promise.all(this.shards.map((shard) => reader.tier.get(this.register(shard))))
          entries.forEach((entry, i) => {
            const gen = entry?.version ?? 0
            if (gen > best[i]!.gen) best[i] = { gen, writtenAt: entry ? writtenAtOf(entry.bytes) : 0 }
          })
          return true
        } catch {
          return false
        }
      }),
    )
    if (!answered.includes(true)) return
    const now = this.clock.now()
    for (const [i, shard] of this.shards.entries())
      this.learn(shard, best[i]!.gen, now, best[i]!.writtenAt, first)
    if (startedAt > this.viewAt || first) this.viewAt = startedAt
  }

  /** Raises `shard`'s generation to the next one that means `state`, on every member that answers. */
  private async propose(shard: Shard, state: ShardState): Promise<void> {
    if (!this.failover || this.closed || shard.proposing) return
    const isOut = (shard.latest & 1) === 1
    if ((state === 'out') === isOut) return
    shard.proposing = true
    try {
      const target = shard.latest + 1
      const bytes = new TextEncoder().encode(String(this.clock.now()))
      const key = this.register(shard)
      const outcomes = await Promise.allSettled(
        this.shards.map((member) => member.tier.setIfNewer(key, bytes, target, FOREVER_MS)),
      )
      let highest = -1
      for (const outcome of outcomes) {
        if (outcome.status === 'fulfilled') highest = Math.max(highest, outcome.value ?? target)
      }
      if (highest >= target) this.learn(shard, highest, this.clock.now())
    } finally {
      shard.proposing = false
    }
  }

  private onCircuit(shard: Shard, state: CircuitState): void {
    if (state === 'open' && (shard.latest & 1) === 0) void this.propose(shard, 'out')
  }

  /** Probes members that are out or failing; re-admits those that answer once readmitAfter has passed. */
  private async healthCheck(): Promise<void> {
    const now = this.clock.now()
    await Promise.all(
      this.shards.map(async (shard) => {
        const out = this.failover && (shard.latest & 1) === 1
        if (!out && shard.breaker.state === 'closed') return
        if (shard.breaker.state !== 'closed') shard.breaker.probeNow()
        let answered: boolean
        try {
          await shard.tier.call('health check', () => shard.store.get(this.register(shard)))
          answered = true
        } catch {
          answered = false
        }
        if (!this.failover) return
        if (answered && out && now - shard.outSince >= this.readmitMs) await this.propose(shard, 'in')
        else if (!answered && !out && shard.breaker.state === 'open') await this.propose(shard, 'out')
      }),
    )
  }

  /** Timers start with the first call, so a store that is never used runs none. */
  private start(): void {
    if (this.started || this.closed) return
    this.started = true
    const every = (ms: number, run: () => Promise<void>) => {
      let running = false
      const timer = setInterval(() => {
        if (running) return
        running = true
        run()
          .catch(() => {})
          .finally(() => {
            running = false
          })
      }, ms)
      timer.unref()
      this.timers.push(timer)
    }
    if (this.failover) every(Math.max(1, Math.floor(this.viewTtlMs / 4)), () => this.refreshed())
    every(this.healthMs, () => this.healthCheck())
    for (const shard of this.shards) {
      // A member's connection is back: probe it now rather than at its breaker's next half-open.
      shard.stopReconnect = shard.store.onReconnect?.(() => {
        shard.tier.probe(() => shard.store.get(this.register(shard)))
      })
    }
  }

  status(): ShardStatus[] {
    const now = this.clock.now()
    return this.shards.map((shard) => ({
      name: shard.name,
      state: (shard.latest & 1) === 0 ? 'in' : 'out',
      generation: shard.latest,
      switching: now < shard.switchAt,
      circuit: shard.breaker.state,
      circuitOpened: shard.breaker.opened,
    }))
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const timer of this.timers) clearInterval(timer)
    for (const shard of this.shards) shard.stopReconnect?.()
    await Promise.allSettled(this.shards.map((shard) => shard.store.close()))
  }
}

const EPOCH_REGISTER = (prefix: string) => `${prefix}:stamp-epoch`

function randomBootId(): string {
  return randomBytes(9).toString('base64url')
}

/** A stamp epoch register's payload: the member's boot id, and the epoch raised when it was given (-1: none). */
function bootBytes(id: string, raisedTo: number): Uint8Array {
  return new TextEncoder().encode(`${id} ${raisedTo}`)
}

function parseBoot(bytes: Uint8Array): { id: string; raisedTo: number } {
  const [id = '', raisedTo = '-1'] = new TextDecoder().decode(bytes).split(' ')
  const n = Number(raisedTo)
  return { id, raisedTo: Number.isFinite(n) ? n : -1 }
}

/** The member entry that holds a stamp. */
function stampName(key: string): string {
  return `s|${key}`
}

function writtenAtOf(bytes: Uint8Array): number {
  const at = Number(new TextDecoder().decode(bytes))
  return Number.isFinite(at) ? at : 0
}

/**
 * An L2 spread over several stores by consistent hashing, with a breaker per member and failover to the
 * next member on the ring (see the README's "Sharding without Redis Cluster").
 *
 * @example
 * shardedStore([
 *   { name: 'cache-1', store: redisStore({ url: 'redis://10.0.0.1:6379' }) },
 *   { name: 'cache-2', store: redisStore({ url: 'redis://10.0.0.2:6379' }) },
 *   { name: 'cache-3', store: redisStore({ url: 'redis://10.0.0.3:6379' }), weight: 2 },
 * ])
 */
export function shardedStore(
  members: readonly ShardMember[],
  options: ShardedStoreOptions = {},
): ShardedStore {
  return new ShardedStoreImpl(members, options)
}

/** This node's version clock reading now (hlc.ts): what stamp epochs and ceilings are measured in. */
function versionNow(clock: Clock): number {
  return Math.floor(clock.now()) * 4096
}
