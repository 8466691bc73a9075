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
