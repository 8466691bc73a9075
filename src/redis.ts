/**
 * `coherent-cache/redis`: the Redis L2 store and invalidation bus (node-redis v5), kept out of the main
 * entry point so that applications without Redis never load a Redis client.
 */
export { type RedisBusOptions, redisBus } from './bus/redis-bus.js'
export {
  type NodeRedisClient,
  type NodeRedisCluster,
  type RedisClientConnectionOptions,
  type RedisClusterConnectionOptions,
  type RedisClusterSocketOptions,
  type RedisCommonOptions,
  type RedisConnectionOptions,
  type RedisNodeAddress,
  type RedisSocketOptions,
  type RedisStoreOptions,
  type RedisUrlOptions,
  redisStore,
} from './stores/redis-store.js'
