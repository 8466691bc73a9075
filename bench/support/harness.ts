import { availableParallelism } from 'node:os'
/**
 * A minimal benchmark harness: every contender runs the same pre-generated workload in the same
 * process, a few rounds each, interleaved so that machine noise hits all of them alike; the median round
 * is reported. Results are meant to be read as ratios between contenders of one run.
 */
export interface Contender {
  name: string
  /** Runs the whole workload once; returns the number of operations done. */
  run: () => number | Promise<number>
}

export interface Result {
  name: string
  opsPerSec: number
}

export async function compare(contenders: Contender[], { rounds = 5, warmup = 1 } = {}): Promise<Result[]> {
  const samples = new Map<string, number[]>(contenders.map((c) => [c.name, []]))
  for (let round = 0; round < warmup + rounds; round++) {
    for (const contender of contenders) {
      const start = process.hrtime.bigint()
      const ops = await contender.run()
      const seconds = Number(process.hrtime.bigint() - start) / 1e9
      if (round >= warmup) samples.get(contender.name)!.push(ops / seconds)
    }
  }
  return contenders.map((c) => ({ name: c.name, opsPerSec: median(samples.get(c.name)!) }))
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}

export function markdownTable(headers: string[], rows: (string | number)[][]): string {
  const lines = [`| ${headers.join(' | ')} |`, `| ${headers.map(() => '---').join(' | ')} |`]
  for (const row of rows) lines.push(`| ${row.join(' | ')} |`)
  return lines.join('\n')
}

export function formatOps(opsPerSec: number): string {
  if (opsPerSec >= 1e6) return `${(opsPerSec / 1e6).toFixed(2)}M/s`
  if (opsPerSec >= 1e3) return `${(opsPerSec / 1e3).toFixed(0)}k/s`
  return `${opsPerSec.toFixed(0)}/s`
}

export function ratio(value: number, base: number): string {
  return `${(value / base).toFixed(2)}×`
}

export function machineLine(): string {
  return `Node ${process.version}, ${process.platform}/${process.arch}, ${availableParallelism()} cores`
}
