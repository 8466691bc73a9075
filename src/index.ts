export type { Bus, BusStatus, BusSubscription } from './bus/bus.js'
export { memoryBus } from './bus/memory-bus.js'
export { Cache, createCache } from './cache.js'
export { type Clock, ManualClock, systemClock } from './clock.js'
export type { Duration } from './duration.js'
export {
  CacheClosedError,
  CoherentError,
  type CoherentErrorCode,
  CorruptEntryError,
  FlushTimeoutError,
  InvalidKeyError,
  InvalidOptionError,
  LoaderTimeoutError,
  LockTimeoutError,
  QueueUnavailableError,
  ShardUnavailableError,
  UnconfirmedReadError,
  UnserializableValueError,
} from './errors.js'
export type { NodeReport } from './fleet/fleet.js'
export type { EvictionPolicy } from './local/types.js'
export type {
  CacheOptions,
  Consistency,
  DistributedLockOptions,
  GetOptions,
  GetOrSetOptions,
  L1Options,
  Loader,
  SetOptions,
  WriteBehindItem,
  WriteBehindOptions,
  WriteBehindWriter,
  WriteThroughOptions,
} from './options.js'
export { CircuitOpenError, type CircuitState } from './remote/circuit-breaker.js'
export { L2TimeoutError } from './remote/remote-tier.js'
export { HashRing, type HashRingOptions, type RingMember } from './ring/hash-ring.js'
export type { LagSummary } from './stats/lag.js'
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
export type {
  ConditionalWrite,
  EntryHead,
  OrderDomain,
  RemoteStore,
  StoredEntry,
  WriteCondition,
} from './stores/store.js'
export type { QueueEntry, QueueLog } from './write-behind/queue-log.js'
export type { DeadLetter } from './write-behind/write-behind.js'
