import { mulberry32 } from '../../tools/random.js'
import { jsonRecord } from './harness.js'

/**
 * The L2 read workload shared by bench/l2-throughput.ts and bench/cluster.ts, so that both measure the
 * same thing: uniform gets over a warm key set of ~1 KB JSON-like values from 64 concurrent callers.
 */
export const KEYS = 10_000
export const CALLS = 100_000 // per round and contender
export const CALLERS = 64
export const VALUE_BYTES = 1024
export const SEED = 42

const random = mulberry32(SEED)
/** Key index of each call. */
export const trace = Uint32Array.from({ length: CALLS }, () => Math.floor(random() * KEYS))
/** The value of each key, as an object (for caches) and as its JSON string (for raw clients). */
export const records = Array.from({ length: KEYS }, (_, i) => jsonRecord(i, VALUE_BYTES))
export const strings = records.map((record) => JSON.stringify(record))
