/**
 * Compares two benchmark results files (bench/support/results.ts) row by row: each row's ratio to the
 * reference in A and in B, and the change. A coherent-cache row more than THRESHOLD worse in B is flagged
 * and makes the command exit with status 1, so it can guard a change against regressions.
 * Run: npm run bench:compare -- bench/results/A.json bench/results/B.json
 */
import { readFileSync } from 'node:fs'
import { markdownTable } from './support/harness.js'
import type { ResultsFile } from './support/results.js'

const THRESHOLD = 0.05 // a row more than 5% worse in its ratio to the reference is a regression (issue 14's bar)

const [fileA, fileB] = process.argv.slice(2)
if (fileA === undefined || fileB === undefined) {
  console.error('usage: npm run bench:compare -- <before.json> <after.json>')
  process.exit(2)
}
const a = JSON.parse(readFileSync(fileA, 'utf8')) as ResultsFile
const b = JSON.parse(readFileSync(fileB, 'utf8')) as ResultsFile
if (a.bench !== b.bench) {
  console.error(`different benchmarks: ${a.bench} vs ${b.bench}`)
  process.exit(2)
}

const describe = (f: ResultsFile) =>
  `${f.commit}${f.dirty ? ' (dirty)' : ''}, ${f.date.slice(0, 16)}, Node ${f.machine.node}, ${f.machine.cores} cores`
console.log(`## bench:${a.bench}: ratios to ${JSON.stringify(a.reference)}\n`)
console.log(`A: ${describe(a)}  \nB: ${describe(b)}\n`)
const rowsB = new Map(b.rows.map((row) => [row.name, row]))
const flagged: string[] = []
const table = a.rows.map((rowA) => {
  const rowB = rowsB.get(rowA.name)
  if (rowB === undefined) return [rowA.name, rowA.ratio.toFixed(3), '—', '—', 'only in A']
  const change = rowB.ratio / rowA.ratio - 1
  const regressed = rowA.ours && change < -THRESHOLD
  if (regressed) flagged.push(rowA.name)
  const sign = change >= 0 ? '+' : ''
  return [
    rowA.name,
    rowA.ratio.toFixed(3),
    rowB.ratio.toFixed(3),
    `${sign}${(change * 100).toFixed(1)}%`,
    regressed ? `**more than ${THRESHOLD * 100}% worse**` : '',
  ]
})
for (const rowB of b.rows)
  if (!a.rows.some((r) => r.name === rowB.name))
    table.push([rowB.name, '—', rowB.ratio.toFixed(3), '—', 'only in B'])
console.log(markdownTable(['row', 'ratio A', 'ratio B', 'change', ''], table))
if (flagged.length > 0) {
  console.log(`\n${flagged.length} coherent-cache row(s) regressed by more than ${THRESHOLD * 100}%.`)
  process.exit(1)
}
console.log(`\nNo coherent-cache row is more than ${THRESHOLD * 100}% worse.`)
