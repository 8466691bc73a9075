import {
  type Cache,
  type CacheOptions,
  createCache,
  ManualClock,
  memoryBus,
  memoryStore,
} from '../../src/index.js'

/**
 * Several cache instances ("nodes") in one process sharing an embedded L2 and bus, all on one
 * ManualClock. Used by facade tests; Redis behaviour is tested against real Redis elsewhere.
 */
export function memoryFleet(count: number, options: CacheOptions = {}) {
  const clock = new ManualClock()
  const l2 = memoryStore({ clock })
  const bus = memoryBus()
  const nodes: Cache[] = []
  for (let i = 0; i < count; i++) nodes.push(createCache({ namespace: 'fleet', clock, l2, bus, ...options }))
  return {
    clock,
    l2,
    bus,
    nodes,
    async ready() {
      await Promise.all(nodes.map((node) => node.ready()))
    },
    async close() {
      await Promise.all(nodes.map((node) => node.close()))
    },
  }
}

/** Lets queued microtasks and already-due I/O callbacks run (memoryBus delivers in a microtask). */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

/** Every bus message a node has taken in: applied or rejected (`received`), dropped unread, or of an unknown kind. */
function busIntake(node: Cache): number {
  const bus = node.stats().bus
  return bus.received + bus.dropped + bus.unknown
}

/**
 * Runs `action`, then waits until each of `receivers` has taken in `messages` more bus messages. Redis
 * delivers on another connection, so unlike memoryBus one turn of the event loop is not enough: on a
 * loaded machine the delivery may come many milliseconds later.
 */
export async function untilDelivered(
  receivers: readonly Cache[],
  action: () => unknown,
  messages = 1,
  timeoutMs = 15_000,
): Promise<void> {
  const before = receivers.map(busIntake)
  await action()
  const deadline = Date.now() + timeoutMs
  while (receivers.some((node, i) => busIntake(node) < before[i]! + messages)) {
    if (Date.now() > deadline) throw new Error(`bus messages not delivered within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}
