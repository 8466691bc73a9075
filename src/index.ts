export type { Bus, BusStatus, BusSubscription } from './bus/bus.js'
export { memoryBus } from './bus/memory-bus.js'
export { Cache, createCache, type GetOrSetOptions, type SetOptions } from './cache.js'
export { type Clock, ManualClock, systemClock } from './clock.js'
export type { Duration } from './duration.js'
export {
  CacheClosedError,
  CoherentError,
  type CoherentErrorCode,
  CorruptEntryError,
  InvalidKeyError,
  InvalidOptionError,
  ShardUnavailableError,
  UnserializableValueError,
} from './errors.js'
export type { EvictionPolicy } from './local/types.js'
export type { CacheOptions, L1Options, Loader } from './options.js'
export { L2TimeoutError } from './remote/remote-tier.js'
export { HashRing, type HashRingOptions, type RingMember } from './ring/hash-ring.js'
export type { CacheStats, TierStats } from './stats/stats.js'
export { type MemoryStoreOptions, memoryStore } from './stores/memory-store.js'
export {
  type ShardedStore,
  type ShardedStoreOptions,
  type ShardMember,
  type ShardState,
  type ShardStatus,
  shardedStore,
} from './stores/sharded-store.js'
export type { RemoteStore, StoredEntry } from './stores/store.js'
