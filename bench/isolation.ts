/**
 * What does mutation isolation cost per read, and which wire format is fastest?
 *
 *   npx tsx bench/isolation.ts            (about 25 s; `--quick` for a rough 8 s run)
 *
 * Part 1, per-read cost of each way the in-process tier can stop one caller's mutation from
 * reaching the next caller: returning the stored reference (no isolation: the baseline),
 * structuredClone, cloneValue, decode() of stored bytes, and a deep freeze at set time (reads then
 * return the reference; Object.freeze does not protect the contents of a Map, Set or Date).
 *
 * Part 2, encode and decode throughput of the codec against JSON (untagged: fast but lossy, and
 * tagged with a replacer/reviver so Date, Map, Set, BigInt, Buffer, undefined, NaN and -0 survive)
 * and v8.serialize behind a validating pre-walk (v8 itself would accept class instances and cycles).
 *
 * Inputs are deterministic; ops/s vary by machine, the ratios are what to read.
 */
import v8 from 'node:v8'
import { cloneValue } from '../src/serialization/clone.js'
import { decode, encode } from '../src/serialization/codec.js'

const quick = process.argv.includes('--quick')
const MEASURE_MS = quick ? 80 : 220
const WARMUP_MS = quick ? 20 : 60

// ---------------------------------------------------------------------------------------------
// Inputs

const FIXED_TIME = Date.UTC(2024, 0, 15, 12, 30, 0)

function makeOrder(): Record<string, unknown> {
  const items = []
  for (let i = 0; i < 6; i++) {
    items.push({
      sku: `SKU-${1000 + i * 7}`,
      name: ['Widget', 'Gadget', 'Sprocket', 'Flange', 'Gear', 'Bolt'][i],
      qty: (i % 3) + 1,
      price: 9.99 + i * 2.5,
      tags: ['hardware', i % 2 ? 'sale' : 'new'],
      dims: [10 + i, 20, 5.5],
    })
  }
  return {
    id: 987654,
    status: 'shipped',
    customer: { id: 42, name: 'Grace Hopper', email: 'grace@example.com', vip: true },
    items,
    totals: { subtotal: 134.44, tax: 10.76, shipping: 0, currency: 'EUR' },
    history: [
      [FIXED_TIME, 'created'],
      [FIXED_TIME + 60_000, 'paid'],
      [FIXED_TIME + 3_600_000, 'shipped'],
    ],
    notes: null,
  }
}

const shapes: { name: string; value: unknown }[] = [
  { name: 'short string', value: 'session:4f3c2a1b' },
  {
    name: 'small object',
    value: {
      id: 123,
      name: 'Ada Lovelace',
      email: 'ada@example.com',
      tags: ['a', 'b'],
      createdAt: new Date(FIXED_TIME),
    },
  },
  { name: '~1 KB object', value: makeOrder() },
]

// ---------------------------------------------------------------------------------------------
// Harness

let sink: unknown

function measure(fn: () => unknown): number {
  let batch = 1
  for (;;) {
    const t = performance.now()
    for (let i = 0; i < batch; i++) sink = fn()
    if (performance.now() - t > 2) break
    batch *= 2
  }
  const warmEnd = performance.now() + WARMUP_MS
  while (performance.now() < warmEnd) for (let i = 0; i < batch; i++) sink = fn()
  let ops = 0
  const start = performance.now()
  let now = start
  do {
    for (let i = 0; i < batch; i++) sink = fn()
    ops += batch
    now = performance.now()
  } while (now - start < MEASURE_MS)
  return (ops * 1000) / (now - start)
}

function fmtOps(ops: number): string {
  if (ops >= 1e6) return `${(ops / 1e6).toFixed(2)} M`
  if (ops >= 1e3) return `${(ops / 1e3).toFixed(0)} k`
  return ops.toFixed(0)
}

function fmtNs(ops: number): string {
  const ns = 1e9 / ops
  return ns >= 100 ? ns.toFixed(0) : ns.toFixed(1)
}

function fmtRatio(r: number): string {
  return r >= 10 ? `${r.toFixed(0)}x` : `${r.toFixed(2)}x`
}

function table(head: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n')
}

// ---------------------------------------------------------------------------------------------
// Contenders

function deepFreeze<T>(v: T): T {
  if (typeof v !== 'object' || v === null || Object.isFrozen(v)) return v
  if (v instanceof Map) {
    for (const [k, x] of v) {
      deepFreeze(k)
      deepFreeze(x)
    }
  } else if (v instanceof Set) {
    for (const x of v) deepFreeze(x)
  } else if (!ArrayBuffer.isView(v)) {
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k])
  }
  // Typed arrays with elements cannot be frozen, and Map/Set/Date internals stay mutable anyway.
  if (!ArrayBuffer.isView(v)) Object.freeze(v)
  return v
}

/** JSON with a replacer/reviver that tags what JSON cannot carry. Bench-only: no `$t` key escaping. */
function tagReplacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const raw = this[key]
  switch (typeof raw) {
    case 'number':
      return Number.isFinite(raw) && !Object.is(raw, -0) ? raw : { $t: 'n', v: String(raw) }
    case 'bigint':
      return { $t: 'b', v: raw.toString() }
    case 'undefined':
      return { $t: 'u' }
    case 'object':
      if (raw === null) return null
      if (raw instanceof Date) return { $t: 'd', v: raw.getTime() }
      if (raw instanceof Map) return { $t: 'm', v: [...raw] }
      if (raw instanceof Set) return { $t: 's', v: [...raw] }
      if (Buffer.isBuffer(raw)) return { $t: 'B', v: raw.toString('base64') }
      if (raw instanceof Uint8Array) return { $t: 'U', v: Buffer.from(raw).toString('base64') }
      return value
    default:
      return value
  }
}

function tagReviver(_key: string, value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value
  const t = (value as { $t?: unknown }).$t
  if (t === undefined) return value
  const v = (value as { v: unknown }).v
  switch (t) {
    case 'n':
      return Number(v)
    case 'b':
      return BigInt(v as string)
    case 'u':
      return undefined // note: the reviver deletes the key: one more way tagged JSON loses data
    case 'd':
      return new Date(v as number)
    case 'm':
      return new Map(v as [unknown, unknown][])
    case 's':
      return new Set(v as unknown[])
    case 'B':
      return Buffer.from(v as string, 'base64')
    case 'U':
      return new Uint8Array(Buffer.from(v as string, 'base64'))
    default:
      return value
  }
}

const jsonTagged = {
  encode: (v: unknown) => Buffer.from(JSON.stringify({ v }, tagReplacer)),
  decode: (b: Uint8Array) =>
    (JSON.parse(Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString(), tagReviver) as { v: unknown })
      .v,
}

const jsonPlain = {
  encode: (v: unknown) => Buffer.from(JSON.stringify(v)),
  decode: (b: Uint8Array) =>
    JSON.parse(Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString()) as unknown,
}

/** The same acceptance rules as encode (no paths): what v8.serialize would need in front of it. */
function validate(v: unknown, depth: number): void {
  if (typeof v === 'function' || typeof v === 'symbol') throw new TypeError('unsupported')
  if (typeof v !== 'object' || v === null) return
  if (depth > 1000) throw new TypeError('too deep or circular')
  const proto = Object.getPrototypeOf(v)
  if (proto === Object.prototype || proto === null) {
    const o = v as Record<string, unknown>
    for (const k of Object.keys(o)) validate(o[k], depth + 1)
    if (Object.getOwnPropertySymbols(o).length) throw new TypeError('symbol key')
  } else if (proto === Array.prototype) {
    const a = v as unknown[]
    for (let i = 0; i < a.length; i++) validate(a[i], depth + 1)
  } else if (proto === Map.prototype) {
    for (const [k, x] of v as Map<unknown, unknown>) {
      validate(k, depth + 1)
      validate(x, depth + 1)
    }
  } else if (proto === Set.prototype) {
    for (const x of v as Set<unknown>) validate(x, depth + 1)
  } else if (proto !== Date.prototype && !ArrayBuffer.isView(v)) throw new TypeError('class instance')
}

const v8Validated = {
  encode: (v: unknown) => {
    validate(v, 0)
    return v8.serialize(v)
  },
  decode: (b: Uint8Array) => v8.deserialize(b) as unknown,
}

const codec = { encode, decode }

// ---------------------------------------------------------------------------------------------
// Part 1: isolation

measure(() => shapes) // warm the harness itself, so the first row is not penalised
const isoRows: string[][] = []
const setRows: string[][] = []
for (const { name, value } of shapes) {
  const stored = cloneValue(value)
  const bytes = encode(value)
  const frozen = deepFreeze(cloneValue(value))
  const base = measure(() => stored)
  const contenders: [string, () => unknown][] = [
    ['structuredClone', () => structuredClone(stored)],
    ['cloneValue', () => cloneValue(stored)],
    ['decode(bytes)', () => decode(bytes)],
    ['deep-freeze at set (read = reference)', () => frozen],
  ]
  isoRows.push([name, 'reference (no isolation)', fmtOps(base), fmtNs(base), '1.00x'])
  for (const [label, fn] of contenders) {
    const ops = measure(fn)
    isoRows.push([name, label, fmtOps(ops), fmtNs(ops), fmtRatio(base / ops)])
  }
  const setContenders: [string, () => unknown][] = [
    ['cloneValue', () => cloneValue(value)],
    ['encode', () => encode(value)],
    ['deep-freeze (fresh copy each time)', () => deepFreeze(cloneValue(value))],
  ]
  for (const [label, fn] of setContenders) {
    const ops = measure(fn)
    setRows.push([name, label, fmtOps(ops), fmtNs(ops)])
  }
}

console.log('## Isolation: cost per read (L1 hit)\n')
console.log(table(['value', 'isolation', 'reads/s', 'ns/read', 'cost vs reference'], isoRows))
console.log(
  '\nDeep-freeze reads return the stored reference, so their cost is the reference read (any difference' +
    " is noise); freezing costs at set time (below), freezes the caller's own object unless it is copied" +
    ' first, and leaves the contents of Map, Set, Date and typed arrays mutable.',
)
console.log('\n## Isolation: cost per set (copy or freeze what the caller passed)\n')
console.log(table(['value', 'at set', 'sets/s', 'ns/set'], setRows))

// ---------------------------------------------------------------------------------------------
// Part 2: wire formats

const formats: [string, { encode: (v: unknown) => Uint8Array; decode: (b: Uint8Array) => unknown }][] = [
  ['coherent codec', codec],
  ['JSON tagged (replacer/reviver)', jsonTagged],
  ['v8.serialize + pre-walk', v8Validated],
  ['JSON untagged (lossy)', jsonPlain],
]

const fmtRows: string[][] = []
for (const { name, value } of shapes) {
  let ourEnc = 0
  let ourDec = 0
  for (const [label, f] of formats) {
    const bytes = f.encode(value)
    const enc = measure(() => f.encode(value))
    const dec = measure(() => f.decode(bytes))
    if (label === 'coherent codec') {
      ourEnc = enc
      ourDec = dec
    }
    fmtRows.push([
      name,
      label,
      String(bytes.length),
      fmtOps(enc),
      fmtRatio(enc / ourEnc),
      fmtOps(dec),
      fmtRatio(dec / ourDec),
    ])
  }
}

console.log('\n## Wire formats: encode and decode (ratio = speed relative to the coherent codec)\n')
console.log(
  table(['value', 'format', 'bytes', 'encode ops/s', 'vs codec', 'decode ops/s', 'vs codec'], fmtRows),
)
if (sink === Symbol.for('never')) console.log(sink)
