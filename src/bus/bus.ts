/**
 * The contract between the cache and an invalidation bus. A bus moves opaque bytes (see bus/wire.ts)
 * on one channel per root namespace and reports whether its subscription is live: the cache stops
 * trusting its L1 when it is not (coherence/coherence.ts explains why).
 */
export type BusStatus = 'connected' | 'disconnected'

export interface BusSubscription {
  /** Stops delivery to this subscriber. */
  unsubscribe(): Promise<void>
}

export interface Bus {
  readonly name: string
  /**
   * Subscribes to `channel`. Resolves once the subscription is live. `onStatus('disconnected')` is
   * called when the connection that carries the subscription drops, and `onStatus('connected')` once
   * it has resubscribed; messages published in between may have been lost.
   */
  subscribe(
    channel: string,
    onMessage: (message: Uint8Array) => void,
    onStatus: (status: BusStatus) => void,
  ): Promise<BusSubscription>
  /** Publishes to every subscriber of `channel` (including the publisher's own subscription). */
  publish(channel: string, message: Uint8Array): Promise<void>
  close(): Promise<void>
}
