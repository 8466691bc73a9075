/**
 * Zipf-distributed ranks: P(rank = k) is proportional to 1 / (k + 1)^s for k in 0..n-1, so rank 0 is
 * the most popular. Exact inverse-CDF sampling: the cumulative distribution is tabulated once (n
 * doubles) and each draw is a binary search over it, driven by `random` (uniform in [0, 1)), so a
 * seeded `random` gives a reproducible trace.
 */
export function zipfGenerator(n: number, s: number, random: () => number): () => number {
  if (!(Number.isInteger(n) && n > 0))
    throw new RangeError(`zipfGenerator: n must be a positive integer, got ${n}`)
  if (!(s >= 0)) throw new RangeError(`zipfGenerator: s must be >= 0, got ${s}`)
  const cdf = new Float64Array(n)
  let total = 0
  for (let k = 0; k < n; k++) {
    total += 1 / (k + 1) ** s
    cdf[k] = total
  }
  for (let k = 0; k < n; k++) cdf[k] = cdf[k]! / total
  return () => {
    const u = random()
    let lo = 0
    let hi = n - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (cdf[mid]! > u) hi = mid
      else lo = mid + 1
    }
    return lo
  }
}
