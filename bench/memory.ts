/**
 * Memory: bytes per entry for 1M small entries (key `key:<i>`, value a short string), each contender
 * measured in its own child process as the growth of the V8 heap (after full GCs) while filling it.
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
] as const
type Contender = (typeof CONTENDERS)[number]

function heapUsed(): number {
  const gc = (globalThis as { gc?: () => void }).gc
  if (!gc) throw new Error('run with node --expose-gc')
  for (let i = 0; i < 3; i++) gc()
  return process.memoryUsage().heapUsed
}

async function measure(name: Contender): Promise<number> {
  // Keys and values exist before the measurement: only the cache's own overhead is counted.
  const keys = Array.from({ length: ENTRIES }, (_, i) => `key:${i}`)
  const values = Array.from({ length: ENTRIES }, (_, i) => `v${i}`)
  const before = heapUsed()
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
  }
  const after = heapUsed()
  if (holder === undefined || keys.length !== values.length) throw new Error('unreachable')
  return (after - before) / ENTRIES
}

const one = process.argv[2] as Contender | undefined
if (one !== undefined) {
  console.log(JSON.stringify({ bytesPerEntry: await measure(one) }))
  process.exit(0)
}

const self = fileURLToPath(import.meta.url)
const rows: (string | number)[][] = []
let base = 0
for (const name of CONTENDERS) {
  const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', self, name], {
    encoding: 'utf8',
  })
  const { bytesPerEntry } = JSON.parse(out.trim().split('\n').pop()!) as { bytesPerEntry: number }
  if (name === 'lru-cache') base = bytesPerEntry
  rows.push([name, Math.round(bytesPerEntry), `${(bytesPerEntry / base).toFixed(2)}×`])
}
console.log(`## Memory per entry\n`)
console.log(
  `${ENTRIES.toLocaleString()} entries, short string keys and values (allocated before measuring), heap growth after full GC. ${machineLine()}.\n`,
)
console.log(markdownTable(['contender', 'bytes/entry', 'vs lru-cache'], rows))
