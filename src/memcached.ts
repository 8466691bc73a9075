/**
 * `coherent-cache/memcached`: the memcached L2 store (on memjs, an optional peer dependency), kept out of
 * the main entry point so that applications without memcached never load a memcached client.
 */
export { type MemcachedStoreOptions, memcachedStore } from './stores/memcached-store.js'
