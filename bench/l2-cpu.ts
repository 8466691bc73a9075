/**
 * Where an L2 hit's time goes in Node, without Redis: the workload of bench/l2-throughput.ts (uniform gets
 * of 10k warm 1 KiB values, 64 concurrent callers, L1 off), with Redis replaced by a stub client that
 * answers each GET at once with the exact bytes a real redis-server holds for the key (the bench fills one
 * and reads them back first). What is left is Node-side CPU per get, the part of bench:l2 that this library
 * controls; Redis, the socket and node-redis' RESP parsing cost the same for every contender and are not in it.
 *
 * Rows build up from the floor (the stub's GET of the 1 KiB JSON string, then JSON.parse) to a whole
 * coherent-cache get over the stub, so that each row's step costs the difference to the row above.
 * This is a diagnosis, not a Redis benchmark: bench:l2 is the claim, this says why it lands where it does.
 * Run: npm run bench:l2:cpu
 */
import { createClient, RESP_TYPES } from 'redis'
import { decodeEnvelope } from '../src/coherence/envelope.js'
import { createCache } from '../src/index.js'
import { redisStore } from '../src/redis.js'
import { decode } from '../src/serialization/codec.js'
import { startRedis } from '../tools/redis-server.js'
import {
  closedLoop,
  closedLoopContender,
  compare,
  machineLine,
  markdownTable,
  ratio,
} from './support/harness.js'
import { CALLERS, KEYS, records, strings, trace } from './support/l2-workload.js'

const CALLS = 100_000

// The bytes a real Redis holds for each key, as coherent-cache wrote them.
const server = await startRedis()
const held: Buffer[] = new Array(KEYS)
try {
  const client = createClient({ url: server.url })
  await client.connect()
  const writer = createCache({ namespace: 'bench', ttl: '1h', l1: false, l2: redisStore({ client }) })
  await closedLoop(CALLERS, KEYS, (i) => writer.set(`item:${i}`, records[i]!))
  const buffers = client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer })
  for (let i = 0; i < KEYS; i++) held[i] = (await buffers.get(`bench:item:${i}`)) as unknown as Buffer
  await writer.close()
  await client.close()
} finally {
  await server.stop()
}

/** The key's index: the digits after its last colon. */
const indexOf = (key: string) => Number(key.slice(key.lastIndexOf(':') + 1))
/** A connected node-redis client as redisStore({ client }) uses it, answering every GET at once. */
const stub = {
  isOpen: true,
  isReady: true,
  sendCommand(args: string[]): Promise<unknown> {
    if (args[0] === 'GET') return Promise.resolve(held[indexOf(args[1]!)] ?? null)
    // The namespace stamp, read once when the first entry is judged: never bumped here.
    if (args[0] === 'MGET') return Promise.resolve(args.slice(1).map(() => null))
    return Promise.reject(new Error(`the stub answers GET and MGET only, not ${args[0]}`))
  },
  duplicate: () => stub,
  on: () => stub,
  off: () => stub,
}
const cache = createCache({
  namespace: 'bench',
  ttl: '1h',
  l1: false,
  // A stub in place of the node-redis client type.
  l2: redisStore({ client: stub as never }),
})
await cache.ready()

// Each key's envelope as redisStore reads it past its version header (its own parsing, over the stub).
const store = redisStore({ client: stub as never })
const envelopes: Uint8Array[] = []
for (let i = 0; i < KEYS; i++) envelopes[i] = (await store.get(`bench:item:${i}`))!.bytes
await store.close()
/** Each value's codec bytes alone (copied out of its envelope): the decoder's share, like JSON.parse's. */
const values = envelopes.map((bytes) => decodeEnvelope(bytes).payload.slice())
const contender = (name: string, read: (i: number) => Promise<unknown>) =>
  closedLoopContender(name, { callers: CALLERS, calls: CALLS }, read)
const contenders = [
  contender('stub GET + JSON.parse (floor)', async (i) =>
    JSON.parse(await Promise.resolve(strings[trace[i]!]!)),
  ),
  contender('stub GET + codec decode of the value', async (i) =>
    decode(await Promise.resolve(values[trace[i]!]!)),
  ),
  contender('stub GET + envelope + codec decode', async (i) =>
    decode(decodeEnvelope(await Promise.resolve(envelopes[trace[i]!]!)).payload),
  ),
  contender('coherent-cache get (l1: false) over the stub', (i) => cache.get(`item:${trace[i]}`)),
]
try {
  const results = await compare(contenders, { rounds: 9 })
  for (const c of contenders) if (c.misses > 0) throw new Error(`${c.name}: ${c.misses} misses`)
  const floor = results[0]!.opsPerSec
  console.log('## L2 hit CPU in Node (Redis replaced by a stub)\n')
  console.log(
    `Workload of bench:l2 (${KEYS.toLocaleString()} keys, 1 KiB values, ${CALLERS} callers, ${CALLS.toLocaleString()} gets per round), Redis replaced by a stub that answers at once with the bytes a real Redis held. ${machineLine()}. Median of 9 interleaved rounds.\n`,
  )
  console.log(
    markdownTable(
      ['step', 'CPU per get vs floor', 'gets/s vs floor'],
      results.map((r) => [r.name, ratio(floor, r.opsPerSec), ratio(r.opsPerSec, floor)]),
    ),
  )
} finally {
  await cache.close()
}
