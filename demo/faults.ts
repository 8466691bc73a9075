/**
 * A switch that takes the embedded L2 and bus away, for the outage scene of the embedded mode.
 *
 * In embedded mode "Redis" is memoryStore() and memoryBus(), which cannot fail by themselves. The switch
 * wraps them so that, while it is down, they behave as a Redis that has gone away does for the cache:
 * every store call fails at once (a refused connection), every publish fails, messages are not
 * delivered, and every bus subscriber is told 'disconnected' (so each node stops trusting its L1, as it
 * would when its Redis subscription drops). When the switch comes back up, subscribers are told
 * 'connected' and the store reports a reconnect, as the Redis store does, so the cache probes at once.
 * The data in the wrapped store survives the outage (a Redis restarted empty would not).
 */
import type { Bus, BusStatus, BusSubscription, RemoteStore } from '../src/index.js'

export class OutageError extends Error {
  constructor(what: string) {
    super(`${what} is down (demo outage)`)
    this.name = 'OutageError'
  }
}

export interface FaultSwitch {
  readonly isDown: boolean
  /** Wraps a store: it fails every call while the switch is down. */
  store(store: RemoteStore): RemoteStore
  /** Wraps a bus: it drops and fails everything while the switch is down. */
  bus(bus: Bus): Bus
  down(): void
  up(): void
}

export function faultSwitch(): FaultSwitch {
  let isDown = false
  const reconnectListeners = new Set<() => void>()
  const statusListeners = new Set<(status: BusStatus) => void>()

  const guard = <A extends unknown[], R>(what: string, call: (...args: A) => Promise<R>) => {
    return (...args: A): Promise<R> => (isDown ? Promise.reject(new OutageError(what)) : call(...args))
  }

  return {
    get isDown() {
      return isDown
    },

    store(inner) {
      const store: RemoteStore = {
        name: inner.name,
        get: guard('L2', (key) => inner.get(key)),
        set: guard('L2', (key, bytes, version, ttlMs) => inner.set(key, bytes, version, ttlMs)),
        setIfNewer: guard('L2', (key, bytes, version, ttlMs) => inner.setIfNewer(key, bytes, version, ttlMs)),
        delete: guard('L2', (key, version, ttlMs) => inner.delete(key, version, ttlMs)),
        deleteIfNewer: guard('L2', (key, version, ttlMs) => inner.deleteIfNewer(key, version, ttlMs)),
        getStamps: guard('L2', (keys) => inner.getStamps(keys)),
        bumpStamps: guard('L2', (keys, ttlMs, proposed) => inner.bumpStamps(keys, ttlMs, proposed)),
        onReconnect(listener) {
          reconnectListeners.add(listener)
          return () => reconnectListeners.delete(listener)
        },
        close: () => inner.close(),
      }
      if (inner.acquireLease && inner.releaseLease) {
        store.acquireLease = guard('L2', inner.acquireLease.bind(inner))
        store.releaseLease = guard('L2', inner.releaseLease.bind(inner))
      }
      if (inner.head) store.head = guard('L2', inner.head.bind(inner))
      if (inner.setIf) store.setIf = guard('L2', inner.setIf.bind(inner))
      if (inner.queue) {
        // The write-behind queue lives in "Redis" too: it is away while the switch is down.
        const queue = inner.queue
        const guarded = {} as Record<string, unknown>
        for (const name of Object.getOwnPropertyNames(Object.getPrototypeOf(queue))) {
          const method = (queue as unknown as Record<string, unknown>)[name]
          if (name !== 'constructor' && typeof method === 'function') {
            guarded[name] = guard('L2', (method as (...args: unknown[]) => Promise<unknown>).bind(queue))
          }
        }
        ;(store as { queue?: unknown }).queue = { ...guarded, durable: queue.durable }
      }
      return store
    },

    bus(inner) {
      return {
        name: inner.name,
        async subscribe(channel, onMessage, onStatus): Promise<BusSubscription> {
          if (isDown) throw new OutageError('bus')
          statusListeners.add(onStatus)
          const subscription = await inner.subscribe(
            channel,
            (message) => {
              if (!isDown) onMessage(message)
            },
            onStatus,
          )
          return {
            unsubscribe: async () => {
              statusListeners.delete(onStatus)
              await subscription.unsubscribe()
            },
          }
        },
        publish: guard('bus', (channel, message) => inner.publish(channel, message)),
        close: () => inner.close(),
      }
    },

    down() {
      if (isDown) return
      isDown = true
      for (const listener of [...statusListeners]) listener('disconnected')
    },

    up() {
      if (!isDown) return
      isDown = false
      for (const listener of [...statusListeners]) listener('connected')
      for (const listener of [...reconnectListeners]) listener()
    },
  }
}
