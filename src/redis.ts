/**
 * `coherent-cache/redis`: the Redis L2 store and invalidation bus (node-redis v5), kept out of the main
 * entry point so that applications without Redis never load a Redis client.
 */
export { type RedisBusOptions, redisBus } from './bus/redis-bus.js'
export type {
  NodeAddressMap,
  NodeRedisClient,
  NodeRedisCluster,
  RedisClientConnectionOptions,
  RedisClusterConnectionOptions,
  RedisClusterSocketOptions,
  RedisCommonOptions,
  RedisConnectionOptions,
  RedisNodeAddress,
  RedisSentinelConnectionOptions,
  RedisSentinelOptions,
  RedisSocketOptions,
  RedisUrlOptions,
} from './redis/connection.js'
export { type RedisStoreOptions, redisStore } from './stores/redis-store.js'
