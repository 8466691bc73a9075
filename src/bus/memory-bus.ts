import type { Bus, BusStatus, BusSubscription } from './bus.js'

type Subscriber = { onMessage: (message: Uint8Array) => void; onStatus: (status: BusStatus) => void }

/**
 * An in-process bus: every cache instance given the same memoryBus() sees the others' invalidations.
 * Delivery is asynchronous (a microtask later), as it would be over a network, and never lost.
 */
class MemoryBus implements Bus {
  readonly name = 'memory'
  private readonly channels = new Map<string, Set<Subscriber>>()

  async subscribe(
    channel: string,
    onMessage: (message: Uint8Array) => void,
    onStatus: (status: BusStatus) => void,
  ): Promise<BusSubscription> {
    const subscriber: Subscriber = { onMessage, onStatus }
    let subscribers = this.channels.get(channel)
    if (!subscribers) {
      subscribers = new Set()
      this.channels.set(channel, subscribers)
    }
    subscribers.add(subscriber)
    return {
      unsubscribe: async () => {
        subscribers.delete(subscriber)
      },
    }
  }

  async publish(channel: string, message: Uint8Array): Promise<void> {
    const subscribers = this.channels.get(channel)
    if (!subscribers) return
    for (const subscriber of subscribers) {
      queueMicrotask(() => subscriber.onMessage(message))
    }
  }

  /** Nothing to release: several caches may share one memory bus, each unsubscribes on its own. */
  async close(): Promise<void> {}
}

/** An in-process invalidation bus for several cache instances in one process. */
export function memoryBus(): Bus {
  return new MemoryBus()
}
