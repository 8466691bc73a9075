/**
 * Benchmark results as JSON, so that a later run can be compared with an earlier one
 * (`npm run bench:compare A.json B.json`, bench/compare.ts). A file records the machine, the commit and,
 * for every row, its throughput and its ratio to the benchmark's reference row: ratios within one run
 * are the result, absolute numbers move with the machine.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { availableParallelism, cpus } from 'node:os'
import path from 'node:path'
import type { Result } from './harness.js'

export interface ResultRow {
  name: string
  opsPerSec: number
  /** opsPerSec / the reference row's opsPerSec. */
  ratio: number
  /** A coherent-cache row (bench:compare flags these when they regress), not an anchor. */
  ours: boolean
}

export interface ResultsFile {
  bench: string
  reference: string
  commit: string
  /** The working tree had uncommitted changes when the run was made. */
  dirty: boolean
  date: string
  machine: { node: string; platform: string; arch: string; cores: number; cpu: string }
  rows: ResultRow[]
}

const RESULTS_DIR = path.join(import.meta.dirname, '..', 'results')

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: import.meta.dirname, encoding: 'utf8' }).trim()
  } catch {
    return ''
  }
}

/**
 * Writes `results` of benchmark `bench` to bench/results/<bench>-<date>-<commit>.json and returns the path.
 * `reference` names the row every ratio is taken against; rows whose name starts with "coherent-cache"
 * are ours.
 */
export function writeResults(bench: string, reference: string, results: readonly Result[]): string {
  const base = results.find((r) => r.name === reference)
  if (base === undefined) throw new Error(`writeResults: no row named ${JSON.stringify(reference)}`)
  const commit = git(['rev-parse', '--short', 'HEAD']) || 'unknown'
  const file: ResultsFile = {
    bench,
    reference,
    commit,
    dirty: git(['status', '--porcelain', '--', 'src', 'bench']) !== '',
    date: new Date().toISOString(),
    machine: {
      node: process.version,
      platform: process.platform,
      arch: process.arch,
      cores: availableParallelism(),
      cpu: cpus()[0]?.model ?? 'unknown',
    },
    rows: results.map((r) => ({
      name: r.name,
      opsPerSec: r.opsPerSec,
      ratio: r.opsPerSec / base.opsPerSec,
      ours: r.name.startsWith('coherent-cache'),
    })),
  }
  mkdirSync(RESULTS_DIR, { recursive: true })
  const stamp = file.date.replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-')
  const target = path.join(RESULTS_DIR, `${bench}-${stamp}-${commit}${file.dirty ? '-dirty' : ''}.json`)
  writeFileSync(target, `${JSON.stringify(file, null, 2)}\n`)
  return target
}
