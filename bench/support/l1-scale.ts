/**
 * The scale rows of bench:l1: ns per hit at 10k, 100k, 1M and 10M entries, for lru-cache, the bare L1 tier
 * and `await cache.get()` (against an awaited lru-cache), on Zipf 0.99 keys over the entries and the same
 * value shape as the main table. Each size runs in a child process of its own (run this file with the size
 * as argument), so a size's heap never holds another's entries; in the child each contender is built,
 * filled and measured (median of ROUNDS runs of GETS gets) and dropped before the next.
 * Run: npm run bench:l1:scale (needs a large heap: 10M entries of `cache.get` take several GB).
 */
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { LRUCache } from 'lru-cache'
import { createCache } from '../../src/index.js'
import { LocalTier } from '../../src/local/local-tier.js'
import { mulberry32 } from '../../tools/random.js'
import { zipfGenerator } from '../../tools/zipf.js'
import { machineLine, markdownTable, median } from './harness.js'

export const SIZES = [10_000, 100_000, 1_000_000, 10_000_000]
const GETS = 1_000_000
const ROUNDS = 5
const SKEW = 0.99

interface Row {
  size: number
  lru: number
  tier: number
  lruAwaited: number
  cache: number
}

const collectGarbage = (globalThis as { gc?: () => void }).gc

async function measureSize(size: number): Promise<Row> {
  const keys = Array.from({ length: size }, (_, i) => `user:${i}`)
  const value = (i: number) => ({ id: i, name: `user ${i}`, active: true })
  const next = zipfGenerator(size, SKEW, mulberry32(42))
  const trace = Array.from({ length: GETS }, () => keys[next()]!)
  let sink = 0
  const nsPerGet = async (run: () => void | Promise<void>): Promise<number> => {
    const samples: number[] = []
    for (let round = 0; round < ROUNDS + 1; round++) {
      collectGarbage?.()
      const start = process.hrtime.bigint()
      await run()
      const ns = Number(process.hrtime.bigint() - start) / GETS
      if (round > 0) samples.push(ns) // the first round warms up
    }
    return median(samples)
  }

  let lru: LRUCache<string, object> | undefined = new LRUCache<string, object>({ max: size })
  for (let i = 0; i < size; i++) lru.set(keys[i]!, value(i))
  const lruNs = await nsPerGet(() => {
    for (let i = 0; i < GETS; i++) if (lru!.get(trace[i]!) !== undefined) sink++
  })
  const lruAwaitedNs = await nsPerGet(async () => {
    for (let i = 0; i < GETS; i++) if ((await lru!.get(trace[i]!)) !== undefined) sink++
  })
  lru = undefined

  let tier: LocalTier<object> | undefined = new LocalTier<object>({ maxEntries: size, sweepIntervalMs: 0 })
  for (let i = 0; i < size; i++) tier.set(keys[i]!, value(i), Number.POSITIVE_INFINITY, 1)
  const tierNs = await nsPerGet(() => {
    for (let i = 0; i < GETS; i++) if (tier!.get(trace[i]!) !== undefined) sink++
  })
  tier = undefined

  let cache: ReturnType<typeof createCache> | undefined = createCache({
    namespace: 'scale',
    ttl: '1h',
    l1: { maxEntries: size },
  })
  for (let i = 0; i < size; i++) await cache.set(keys[i]!, value(i))
  const cacheNs = await nsPerGet(async () => {
    for (let i = 0; i < GETS; i++) if ((await cache!.get(trace[i]!)) !== undefined) sink++
  })
  await cache.close()
  cache = undefined
  if (sink % 7 === 8) console.log('unreachable')
  return { size, lru: lruNs, tier: tierNs, lruAwaited: lruAwaitedNs, cache: cacheNs }
}

/** Runs every size in a child process and prints the scale table. */
export function printScaleTable(): void {
  const self = fileURLToPath(import.meta.url)
  const rows: Row[] = []
  for (const size of SIZES) {
    const out = execFileSync(
      process.execPath,
      [
        ...process.execArgv.filter((a) => !a.startsWith('--max-old-space-size')),
        '--max-old-space-size=16384',
        self,
        String(size),
      ],
      { encoding: 'utf8', maxBuffer: 1 << 24 },
    )
    const row = JSON.parse(out.trim().split('\n').pop()!) as Row
    rows.push(row)
    // Progress on stderr, so a long run that is stopped still shows the sizes it measured.
    console.error(JSON.stringify(row))
  }
  const first = rows[0]!
  const last = rows[rows.length - 1]!
  const ns = (x: number) => x.toFixed(1)
  const growth = (f: (r: Row) => number) => `${(f(last) / f(first)).toFixed(2)}×`
  console.log(`## L1 hit cost by size\n`)
  console.log(
    `ns per hit (lower is better), Zipf ${SKEW} over the entries, ${GETS.toLocaleString('en-US')} gets per round, median of ${ROUNDS} rounds; values \`{ id, name, active }\`; each size in its own process. ${machineLine()}.\n`,
  )
  console.log(
    markdownTable(
      [
        'entries',
        'lru-cache get',
        'L1 tier get (bare)',
        'tier / lru-cache',
        'lru-cache get (awaited)',
        'await cache.get()',
        'cache / lru-cache awaited',
      ],
      [
        ...rows.map((r) => [
          r.size.toLocaleString('en-US'),
          ns(r.lru),
          ns(r.tier),
          `${(r.tier / r.lru).toFixed(2)}×`,
          ns(r.lruAwaited),
          ns(r.cache),
          `${(r.cache / r.lruAwaited).toFixed(2)}×`,
        ]),
        [
          `growth ${first.size.toLocaleString('en-US')} → ${last.size.toLocaleString('en-US')}`,
          growth((r) => r.lru),
          growth((r) => r.tier),
          '',
          growth((r) => r.lruAwaited),
          growth((r) => r.cache),
          '',
        ],
      ],
    ),
  )
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const size = Number(process.argv[2])
  if (!Number.isInteger(size) || size <= 0) throw new Error('usage: l1-scale.ts <entries>')
  console.log(JSON.stringify(await measureSize(size)))
}
