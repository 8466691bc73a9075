/**
 * A small tour on embedded defaults (no Redis, no database needed): three "nodes" in one process share
 * an in-memory L2 and bus; a slow "database" sits behind them.
 * Run: npm run demo
 */
import { createCache, memoryBus, memoryStore } from '../src/index.js'

const l2 = memoryStore()
const bus = memoryBus()
const nodes = ['node-a', 'node-b', 'node-c'].map((name) => ({
  name,
  cache: createCache({ namespace: 'shop', ttl: '10m', grace: '1h', l1: { maxEntries: 1_000 }, l2, bus }),
}))
await Promise.all(nodes.map((n) => n.cache.ready()))

const db = new Map<string, { name: string; price: number }>([['product:1', { name: 'Teapot', price: 25 }]])
let dbReads = 0
async function loadProduct(key: string) {
  dbReads++
  await new Promise((resolve) => setTimeout(resolve, 50))
  return db.get(key)
}

const [a, b, c] = nodes as [(typeof nodes)[0], (typeof nodes)[0], (typeof nodes)[0]]
console.log('1. 300 concurrent requests for a cold key on three nodes (cache-aside, single flight per node)')
await Promise.all(
  nodes.flatMap((n) => Array.from({ length: 100 }, () => n.cache.getOrSet('product:1', loadProduct))),
)
console.log(`   database reads: ${dbReads} (at most one per node)`)

console.log('2. node-a changes the price; every node sees it at once')
db.set('product:1', { name: 'Teapot', price: 19 })
await a.cache.set('product:1', db.get('product:1'), { tags: ['products'] })
await new Promise((resolve) => setImmediate(resolve))
for (const n of nodes) console.log(`   ${n.name}:`, await n.cache.get('product:1'))

console.log('3. node-b invalidates the tag "products"; node-c loads again')
await b.cache.invalidateTags(['products'])
await new Promise((resolve) => setImmediate(resolve))
console.log('   node-c:', await c.cache.getOrSet('product:1', loadProduct), `(database reads: ${dbReads})`)

console.log('4. stats of node-c')
console.log(c.cache.stats())
await Promise.all(nodes.map((n) => n.cache.close()))
