/**
 * Memory: bytes per entry for 1M small entries (key `key:<i>`, value a short string), each contender
 * measured in its own child process as the growth of the V8 heap (after full GCs) while filling it, and
 * the growth of heap plus ArrayBuffer memory: typed arrays (the tier's slot arrays and sketch, lru-cache's
 * links) live outside the V8 heap, so the first column leaves them out.
 * Run: npm run bench:memory
 */
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { LRUCache } from 'lru-cache'
import { createCache } from '../src/index.js'
import { LocalTier } from '../src/local/local-tier.js'
import { machineLine, markdownTable } from './support/harness.js'

const ENTRIES = 1_000_000
const CONTENDERS = [
  'lru-cache',
  'coherent-cache L1 tier (tinylfu)',
  'coherent-cache L1 tier (lru)',
  'coherent-cache (L1 only)',
  'coherent-cache (L1 only), one tag on every entry',
  'coherent-cache (L1 only), a tag of its own per entry',
] as const
type Contender = (typeof CONTENDERS)[number]

function used(): { heap: number; all: number } {
  const gc = (globalThis as { gc?: () => void }).gc
  if (!gc) throw new Error('run with node --expose-gc')
  for (let i = 0; i < 3; i++) gc()
  const { heapUsed, arrayBuffers } = process.memoryUsage()
  return { heap: heapUsed, all: heapUsed + arrayBuffers }
}

async function measure(name: Contender): Promise<{ heap: number; all: number }> {
  // Keys and values exist before the measurement: only the cache's own overhead is counted.
  const keys = Array.from({ length: ENTRIES }, (_, i) => `key:${i}`)
  const values = Array.from({ length: ENTRIES }, (_, i) => `v${i}`)
  const before = used()
  let holder: unknown
  switch (name) {
    case 'lru-cache': {
      const c = new LRUCache<string, string>({ max: ENTRIES })
      for (let i = 0; i < ENTRIES; i++) c.set(keys[i]!, values[i]!)
      holder = c
      break
    }
    case 'coherent-cache L1 tier (tinylfu)':
    case 'coherent-cache L1 tier (lru)': {
      const c = new LocalTier<string>({
        maxEntries: ENTRIES,
        policy: name.includes('tinylfu') ? 'tinylfu' : 'lru',
        sweepIntervalMs: 0,
      })
      for (let i = 0; i < ENTRIES; i++) c.set(keys[i]!, values[i]!, Number.POSITIVE_INFINITY, 1)
      holder = c
      break
    }
    case 'coherent-cache (L1 only)': {
      const c = createCache({ namespace: 'mem', ttl: '1h', l1: { maxEntries: ENTRIES } })
      for (let i = 0; i < ENTRIES; i++) await c.set(keys[i]!, values[i]!)
      holder = c
      break
    }
    case 'coherent-cache (L1 only), one tag on every entry': {
      const c = createCache({ namespace: 'mem', ttl: '1h', l1: { maxEntries: ENTRIES } })
      const tags = ['products']
      for (let i = 0; i < ENTRIES; i++) await c.set(keys[i]!, values[i]!, { tags })
      holder = c
      break
    }
    case 'coherent-cache (L1 only), a tag of its own per entry': {
      // The tag strings exist before the measurement, like the keys: the cache's cost is what it adds.
      const tags = Array.from({ length: ENTRIES }, (_, i) => [`item:${i}`])
      const start = used()
      const c = createCache({ namespace: 'mem', ttl: '1h', l1: { maxEntries: ENTRIES } })
      for (let i = 0; i < ENTRIES; i++) await c.set(keys[i]!, values[i]!, { tags: tags[i] })
      holder = c
      const end = used()
      if (tags.length !== ENTRIES) throw new Error('unreachable')
      return { heap: (end.heap - start.heap) / ENTRIES, all: (end.all - start.all) / ENTRIES }
    }
  }
  const after = used()
  if (holder === undefined || keys.length !== values.length) throw new Error('unreachable')
  return { heap: (after.heap - before.heap) / ENTRIES, all: (after.all - before.all) / ENTRIES }
}

const one = process.argv[2] as Contender | undefined
if (one !== undefined) {
  console.log(JSON.stringify(await measure(one)))
  process.exit(0)
}

const self = fileURLToPath(import.meta.url)
const rows: (string | number)[][] = []
let base = { heap: 0, all: 0 }
for (const name of CONTENDERS) {
  const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', self, name], {
    encoding: 'utf8',
  })
  const bytes = JSON.parse(out.trim().split('\n').pop()!) as { heap: number; all: number }
  if (name === 'lru-cache') base = bytes
  rows.push([
    name,
    Math.round(bytes.heap),
    `${(bytes.heap / base.heap).toFixed(2)}×`,
    Math.round(bytes.all),
    `${(bytes.all / base.all).toFixed(2)}×`,
  ])
}
console.log(`## Memory per entry\n`)
console.log(
  `${ENTRIES.toLocaleString()} entries, short string keys and values (allocated before measuring), heap growth after full GC. ${machineLine()}.\n`,
)
console.log(
  markdownTable(
    ['contender', 'V8 heap bytes/entry', 'vs lru-cache', 'heap + typed arrays bytes/entry', 'vs lru-cache'],
    rows,
  ),
)
