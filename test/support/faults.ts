/**
 * Fault wrappers for tests, written once: a store whose calls can be held at a gate (before they reach
 * the inner store, or after it answered, before the reply reaches the cache), or failed. They wrap real
 * stores; what they change is only when (and whether) a call's outcome reaches the cache.
 */
import type { Bus, BusStatus } from '../../src/bus/bus.js'
import type { RemoteStore } from '../../src/stores/store.js'
import { deferred } from './deferred.js'

type StoreOperation = Exclude<keyof RemoteStore, 'name' | 'close' | 'onReconnect' | 'guardsMembers'>

/** A gate armed for the next call of one operation. */
export interface Gate {
  /** Resolves when the call reached the gate: before the inner call ('before'), or after it ('after'). */
  readonly reached: Promise<void>
  /** Lets the call go on. */
  release(): void
}

export interface GatedStore {
  readonly store: RemoteStore
  /**
   * Holds the next call of `operation`: 'before' it reaches the inner store, or 'after' the inner store
   * answered (the reply waits). Gates armed for one operation are taken by its calls in order.
   */
  gate(operation: StoreOperation, when?: 'before' | 'after'): Gate
  /** Makes every call of `operation` fail with `error` (undefined: stop failing). */
  fail(operation: StoreOperation, error: Error | undefined): void
  /** How many calls of each operation reached the wrapper. */
  readonly calls: Partial<Record<StoreOperation, number>>
}

export function gatedStore(inner: RemoteStore): GatedStore {
  const armed = new Map<
    StoreOperation,
    { when: 'before' | 'after'; reached: () => void; released: Promise<void> }[]
  >()
  const failing = new Map<StoreOperation, Error>()
  const calls: Partial<Record<StoreOperation, number>> = {}
  const wrap =
    (operation: StoreOperation) =>
    async (...args: unknown[]): Promise<unknown> => {
      calls[operation] = (calls[operation] ?? 0) + 1
      const gate = armed.get(operation)?.shift()
      if (gate?.when === 'before') {
        gate.reached()
        await gate.released
      }
      const error = failing.get(operation)
      if (error !== undefined) throw error
      const reply = await (inner[operation] as (...a: unknown[]) => Promise<unknown>).apply(inner, args)
      if (gate?.when === 'after') {
        gate.reached()
        await gate.released
      }
      return reply
    }
  const store: RemoteStore = {
    name: `gated ${inner.name}`,
    get: wrap('get') as RemoteStore['get'],
    set: wrap('set') as RemoteStore['set'],
    setIfNewer: wrap('setIfNewer') as RemoteStore['setIfNewer'],
    delete: wrap('delete') as RemoteStore['delete'],
    deleteIfNewer: wrap('deleteIfNewer') as RemoteStore['deleteIfNewer'],
    getStamps: wrap('getStamps') as RemoteStore['getStamps'],
    bumpStamps: wrap('bumpStamps') as RemoteStore['bumpStamps'],
    ...(inner.queue && { queue: inner.queue }),
    ...(inner.head && { head: wrap('head') as RemoteStore['head'] }),
    ...(inner.setIf && { setIf: wrap('setIf') as RemoteStore['setIf'] }),
    ...(inner.acquireLease && { acquireLease: wrap('acquireLease') as RemoteStore['acquireLease'] }),
    ...(inner.releaseLease && { releaseLease: wrap('releaseLease') as RemoteStore['releaseLease'] }),
    close: () => inner.close(),
  }
  return {
    store,
    calls,
    gate(operation, when = 'before') {
      const reached = deferred<void>()
      const released = deferred<void>()
      const queue = armed.get(operation) ?? []
      queue.push({ when, reached: () => reached.resolve(), released: released.promise })
      armed.set(operation, queue)
      return { reached: reached.promise, release: () => released.resolve() }
    },
    fail(operation, error) {
      if (error === undefined) failing.delete(operation)
      else failing.set(operation, error)
    },
  }
}

export interface FaultyBus {
  readonly bus: Bus
  /**
   * From now on, deliveries to this node's subscribers are dropped. `report: 'disconnected'` also tells the
   * cache that the subscription is gone, and holds off its return: 'connected' from the inner bus is not
   * passed on until heal(). `report: 'nothing'` drops silently (a lost message the cache cannot notice).
   */
  cut(report: 'disconnected' | 'nothing'): void
  /** Deliveries pass again, and a cut that reported 'disconnected' now reports 'connected'. */
  heal(): void
  /** Messages dropped since the first cut. */
  readonly dropped: number
}

/** A bus wrapper whose deliveries to this node can be cut (publishing is never affected). */
export function faultyBus(inner: Bus): FaultyBus {
  let cut: 'disconnected' | 'nothing' | undefined
  let dropped = 0
  const statusListeners = new Set<(status: BusStatus) => void>()
  const bus: Bus = {
    name: `faulty ${inner.name}`,
    async subscribe(channel, onMessage, onStatus) {
      statusListeners.add(onStatus)
      const subscription = await inner.subscribe(
        channel,
        (message) => {
          if (cut === undefined) onMessage(message)
          else dropped++
        },
        (status) => {
          if (cut !== 'disconnected') onStatus(status)
        },
      )
      return {
        unsubscribe: async () => {
          statusListeners.delete(onStatus)
          await subscription.unsubscribe()
        },
      }
    },
    publish: (channel, message) => inner.publish(channel, message),
    close: () => inner.close(),
  }
  return {
    bus,
    get dropped() {
      return dropped
    },
    cut(report) {
      cut = report
      if (report === 'disconnected') for (const listener of statusListeners) listener('disconnected')
    },
    heal() {
      const was = cut
      cut = undefined
      if (was === 'disconnected') for (const listener of statusListeners) listener('connected')
    },
  }
}
