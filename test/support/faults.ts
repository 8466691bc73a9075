/**
 * Fault wrappers for tests, written once: a store whose calls can be held at a gate (before they reach
 * the inner store, or after it answered, before the reply reaches the cache), or failed. They wrap real
 * stores; what they change is only when (and whether) a call's outcome reaches the cache.
 */
import type { Bus, BusStatus } from '../../src/bus/bus.js'
import { decodeMessage, HEARTBEAT_KIND, UNKNOWN_KIND } from '../../src/bus/wire.js'
import type { RemoteStore } from '../../src/stores/store.js'
import { deferred } from './deferred.js'

type StoreOperation = Exclude<
  keyof RemoteStore,
  'name' | 'close' | 'onReconnect' | 'guardsMembers' | 'canAnnounce' | 'queue'
>

/** Every operation gatedStore wraps (failing them all makes the store unreachable for its node). */
export const STORE_OPERATIONS = [
  'get',
  'set',
  'setStamped',
  'setIfNewer',
  'delete',
  'deleteIfNewer',
  'getStamps',
  'bumpStamps',
  'head',
  'setIf',
  'acquireLease',
  'releaseLease',
] as const satisfies readonly StoreOperation[]

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

/**
 * `omit`: optional operations of `inner` the wrapper leaves out, so that the cache takes the path of a
 * store without them (e.g. `setStamped`: the cache then reads the stamps with getStamps and writes with set).
 */
export function gatedStore(
  inner: RemoteStore,
  { omit = [] }: { omit?: readonly StoreOperation[] } = {},
): GatedStore {
  const has = (operation: StoreOperation) => inner[operation] !== undefined && !omit.includes(operation)
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
    ...(has('setStamped') && { setStamped: wrap('setStamped') as RemoteStore['setStamped'] }),
    ...(has('head') && { head: wrap('head') as RemoteStore['head'] }),
    ...(has('setIf') && { setIf: wrap('setIf') as RemoteStore['setIf'] }),
    ...(has('acquireLease') && { acquireLease: wrap('acquireLease') as RemoteStore['acquireLease'] }),
    ...(has('releaseLease') && { releaseLease: wrap('releaseLease') as RemoteStore['releaseLease'] }),
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
   * cache that the subscription is gone, through the status callback a real bus uses, and holds off its
   * return: 'connected' from the inner bus is not passed on until heal(). `report: 'nothing'` drops
   * silently (a lost message the cache cannot notice).
   */
  cut(report: 'disconnected' | 'nothing'): void
  /**
   * Deliveries pass again, and a cut that reported 'disconnected' now reports 'connected' (at once if the
   * inner bus is connected, else when it reports its return).
   */
  heal(): void
  /** Messages dropped since the first cut (heartbeats included). */
  readonly dropped: number
  /** Invalidations (not heartbeats) dropped since the first cut. */
  readonly droppedInvalidations: number
  /**
   * Every status the inner bus reported, in order, whether or not the cut passed it on: shows that a real
   * bus lost its connection and resubscribed by itself while the cut held the cache's view.
   */
  readonly innerReports: readonly BusStatus[]
  /**
   * Runs `action`, then waits until `messages` more invalidations were dropped by the cut: a message
   * published while cut may still be on its way (Redis delivers on another connection), and one that
   * arrives after heal() would be delivered, so a test that means "missed while cut" waits for this before
   * healing. Polls with a deadline; the outcome of the test never rests on the wait.
   */
  missed(action: () => unknown, messages?: number, timeoutMs?: number): Promise<void>
}

/**
 * A bus wrapper whose deliveries to this node can be cut (publishing is never affected), around any bus:
 * memoryBus() or a real redisBus(). The cut is the harness's command, not a real connection drop, so the
 * untrusted window lasts exactly from cut() to heal() whatever the machine's load.
 */
export function faultyBus(inner: Bus): FaultyBus {
  let cut: 'disconnected' | 'nothing' | undefined
  let dropped = 0
  let droppedInvalidations = 0
  const innerReports: BusStatus[] = []
  const subscribers = new Set<{ onStatus: (status: BusStatus) => void; innerConnected: boolean }>()
  const bus: Bus = {
    name: `faulty ${inner.name}`,
    async subscribe(channel, onMessage, onStatus) {
      const subscriber = { onStatus, innerConnected: false }
      subscribers.add(subscriber)
      const subscription = await inner.subscribe(
        channel,
        (message) => {
          if (cut === undefined) {
            onMessage(message)
            return
          }
          dropped++
          if (isInvalidation(message)) droppedInvalidations++
        },
        (status) => {
          subscriber.innerConnected = status === 'connected'
          innerReports.push(status)
          if (cut !== 'disconnected') onStatus(status)
        },
      )
      subscriber.innerConnected = true
      return {
        unsubscribe: async () => {
          subscribers.delete(subscriber)
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
    get droppedInvalidations() {
      return droppedInvalidations
    },
    innerReports,
    cut(report) {
      cut = report
      if (report === 'disconnected') for (const { onStatus } of subscribers) onStatus('disconnected')
    },
    heal() {
      const was = cut
      cut = undefined
      if (was !== 'disconnected') return
      for (const { onStatus, innerConnected } of subscribers) if (innerConnected) onStatus('connected')
    },
    async missed(action, messages = 1, timeoutMs = 15_000) {
      if (cut === undefined) throw new Error('missed() needs a cut bus')
      const before = droppedInvalidations
      await action()
      const deadline = Date.now() + timeoutMs
      while (droppedInvalidations < before + messages) {
        if (Date.now() > deadline) throw new Error(`no invalidation dropped within ${timeoutMs} ms`)
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
    },
  }
}

/** An invalidation message (what a cut makes a node miss), as opposed to a heartbeat or garbage. */
function isInvalidation(message: Uint8Array): boolean {
  try {
    const decoded = decodeMessage(message)
    return decoded !== UNKNOWN_KIND && decoded.kind !== HEARTBEAT_KIND
  } catch {
    return false
  }
}
