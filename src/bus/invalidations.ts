/**
 * Invalidation messages: building them, publishing them (bounded by l2Timeout and a circuit breaker),
 * and applying those other nodes publish, plus the trust rule that rides on the subscription
 * (coherence.ts, point 5; guarantee 2): while the bus is down this node does not trust its L1, and when it
 * is back it forgets what it may have missed before trusting it again.
 *
 * A message of a kind this node does not know (a newer node in a rolling upgrade) is ignored and counted
 * in `unknown`; bytes that are not a message, or more than MAX_MESSAGE_BYTES of them, are dropped and
 * counted in `dropped` (wire.ts). Numbers in a message are untrusted (guarantee 7): a version or generation
 * that is not plausible (hlc.ts) is never observed and counted in `rejected`; the key it names is still
 * invalidated here (a miss is harmless), a stamp is left as it is.
 */

import type { Clock } from '../clock.js'
import type { Coherence } from '../coherence/coherence.js'
import type { Stamps } from '../coherence/stamps.js'
import type { L1Writer } from '../entry/l1-writer.js'
import { isNamespaceStamp, ROOT_STAMP, splitRel } from '../keys.js'
import type { CircuitBreaker } from '../remote/circuit-breaker.js'
import { L2TimeoutError } from '../remote/remote-tier.js'
import { busChannel, invalidationChannel } from '../stats/events.js'
import type { StatsCounters } from '../stats/stats.js'
import type { Announcement } from '../stores/store.js'
import { withTimeout } from '../timeouts.js'
import type { UnsentWrites } from '../write/unsent-writes.js'
import type { Bus, BusStatus, BusSubscription } from './bus.js'
import {
  decodeMessage,
  encodeMessage,
  HEARTBEAT_KIND,
  type HeartbeatMessage,
  type InvalidationMessage,
  MAX_MESSAGE_BYTES,
  MessageKind,
  UNKNOWN_KIND,
} from './wire.js'

export interface InvalidationsParts {
  bus: Bus | undefined
  breaker: CircuitBreaker | undefined
  /** The bus channel (KeyNames.channel). */
  channel: string
  /** The cache's namespace, for diagnostics events. */
  namespace: string
  publishTimeoutMs: number
  /**
   * The L2 store publishes this node's invalidations itself, in the script that writes (same Redis
   * server: RemoteStore.canAnnounce), so that a write and its announcement cost one round trip.
   */
  storeAnnounces: boolean
  coherence: Coherence
  stamps: Stamps
  l1: L1Writer
  unsent: UnsentWrites
  counters: StatsCounters
  clock: Clock
  /** Another node wrote or deleted `rel` (wakes lease waiters). */
  onKeyWritten: (rel: string) => void
  /** A heartbeat of another node (fleet/fleet.ts). */
  onHeartbeat: (message: HeartbeatMessage) => void
  /** The subscription is live again after it was lost (or live for the first time): retry what waits. */
  onReconnected: () => void
  isClosed: () => boolean
}

export class Invalidations {
  /** The subscription is live. */
  connected = false
  private subscription: BusSubscription | undefined

  constructor(private readonly parts: InvalidationsParts) {}

  get breaker(): CircuitBreaker | undefined {
    return this.parts.breaker
  }

  keys(rels: readonly string[], versions: readonly number[]): InvalidationMessage {
    return { kind: MessageKind.Keys, origin: this.parts.coherence.nodeId, names: rels, numbers: versions }
  }

  stamps(stamps: readonly string[], gens: readonly number[]): InvalidationMessage {
    return { kind: MessageKind.Stamps, origin: this.parts.coherence.nodeId, names: stamps, numbers: gens }
  }

  /**
   * What the L2 store publishes with a write of `rel` (RemoteStore.delete, setStamped), if it publishes
   * for this node at all: a keys message whose version the store fills in. Call announced() once the
   * write succeeded.
   */
  keyAnnouncement(rel: string): Announcement | undefined {
    if (!this.parts.storeAnnounces) return undefined
    return { channel: this.parts.channel, message: encodeMessage(this.keys([rel], [0])) }
  }

  /** As keyAnnouncement, for bumps of `stamps` (RemoteStore.bumpStamps): one message per stamp. */
  stampAnnouncements(stamps: readonly string[]): Announcement[] | undefined {
    if (!this.parts.storeAnnounces) return undefined
    const { channel } = this.parts
    return stamps.map((stamp) => ({ channel, message: encodeMessage(this.stamps([stamp], [0])) }))
  }

  /** `count` messages were published by the store with the writes they announce. */
  announced(count: number): void {
    this.parts.counters.busPublished += count
  }

  /** Publishes an invalidation; false (and counted) if the bus could not take it. */
  async publish(message: InvalidationMessage): Promise<boolean> {
    const { bus, counters } = this.parts
    if (bus === undefined) return true
    const sent = await this.publishRaw(encodeMessage(message))
    if (sent) counters.busPublished++
    else counters.busPublishErrors++
    return sent
  }

  /**
   * Publishes bytes (an invalidation, or a heartbeat, which is not counted with them); false if the bus
   * could not take them. Bounded like every L2 call: a bus that accepts the connection but never answers
   * (a frozen Redis) must not hang the write that announces, nor a load's single flight that waits for it.
   */
  async publishRaw(bytes: Uint8Array): Promise<boolean> {
    const { bus, breaker, channel, publishTimeoutMs } = this.parts
    if (bus === undefined) return false
    const send = () =>
      withTimeout(
        bus.publish(channel, bytes),
        publishTimeoutMs,
        () => new L2TimeoutError('bus publish', publishTimeoutMs),
      )
    try {
      await (breaker ? breaker.run(send) : send())
      return true
    } catch {
      return false
    }
  }

  /** Subscribes; resolves once the subscription is live (until then L1 is not trusted). */
  async subscribe(): Promise<void> {
    const { bus, channel } = this.parts
    if (bus === undefined) return
    this.subscription = await bus.subscribe(
      channel,
      (message) => this.receive(message),
      (status) => this.onStatus(status),
    )
    this.onStatus('connected')
  }

  async unsubscribe(): Promise<void> {
    await this.subscription?.unsubscribe()
  }

  private onStatus(status: BusStatus): void {
    const { coherence, namespace, counters } = this.parts
    if (busChannel.hasSubscribers) busChannel.publish({ namespace, status })
    if (status === 'disconnected') {
      this.connected = false
      coherence.trusted = false
      return
    }
    if (this.connected || this.parts.isClosed()) return
    // Back (or connected for the first time): anything published while we were away may be lost, so
    // forget everything L1 and the stamp table hold and void fills in flight before trusting L1 again.
    this.connected = true
    counters.busReconnects++
    this.parts.l1.clear()
    coherence.forgetStamps()
    this.parts.stamps.restoreUnsent()
    coherence.markAll()
    coherence.trusted = true
    this.parts.onReconnected()
  }

  private receive(bytes: Uint8Array): void {
    const { counters, coherence } = this.parts
    if (bytes.length > MAX_MESSAGE_BYTES) {
      counters.busDropped++
      return
    }
    let message: InvalidationMessage | HeartbeatMessage | typeof UNKNOWN_KIND
    try {
      message = decodeMessage(bytes)
    } catch {
      counters.busDropped++
      return
    }
    if (message === UNKNOWN_KIND) {
      counters.busUnknown++
      return
    }
    if (message.origin.equals(coherence.nodeId)) return
    if (message.kind === HEARTBEAT_KIND) {
      this.parts.onHeartbeat(message)
      return
    }
    counters.busReceived++
    this.apply(message)
  }

  /** Applies an invalidation received from another node to L1 and the stamp table. */
  private apply(message: InvalidationMessage): void {
    const { coherence, l1, unsent, counters, stamps } = this.parts
    const { names, numbers } = message
    // Lag: this node's clock against the writer's, which its version or generation carries (lag.ts).
    const written =
      numbers.length > 0 && coherence.versions.plausible(numbers[0]!) ? numbers[0]! / 4096 : undefined
    if (written !== undefined) counters.lag.record(this.parts.clock.now() - Math.floor(written))
    if (invalidationChannel.hasSubscribers) {
      invalidationChannel.publish({
        namespace: this.parts.namespace,
        kind: message.kind === MessageKind.Keys ? 'keys' : 'stamps',
        names: message.kind === MessageKind.Keys ? names.map(splitRel) : names,
        lagMs: written === undefined ? undefined : Math.max(0, this.parts.clock.now() - Math.floor(written)),
      })
    }
    if (message.kind === MessageKind.Keys) {
      for (let i = 0; i < names.length; i++) {
        const rel = names[i]!
        const version = numbers[i]!
        if (coherence.versions.observe(version)) {
          coherence.markKey(rel, version)
          unsent.supersede(rel, version)
          l1.invalidate(rel, version)
        } else {
          // A number no correct node sends: the key is still dropped here, whatever version L1 holds.
          counters.busRejected++
          coherence.markKey(rel, Number.POSITIVE_INFINITY)
          l1.delete(rel)
        }
        this.parts.onKeyWritten(rel)
      }
      return
    }
    const raised: string[] = []
    const gens: number[] = []
    for (let i = 0; i < names.length; i++) {
      const name = names[i]!
      if ((isNamespaceStamp(name) || name.startsWith('t:')) && stamps.accept(numbers[i]!)) {
        raised.push(name)
        gens.push(numbers[i]!)
      } else {
        counters.busRejected++
      }
    }
    const root = coherence.stampGen(ROOT_STAMP)
    if (!stamps.raise(raised, gens)) return // nothing moved: no entry or fill became stale
    // A root clear: every entry is invalid now, so free L1 at once.
    if (coherence.stampGen(ROOT_STAMP) > root) l1.clear()
    coherence.markAll()
  }
}
