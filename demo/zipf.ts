/**
 * Zipf-distributed ranks: rank k (1..n) comes up with probability proportional to 1 / k^s. With s = 1
 * and 10,000 users, the top 1% of users get about half of all reads, as in most real traffic.
 * Sampling is a binary search in the cumulative distribution (built once).
 */
export function zipf(n: number, s: number, random: () => number = Math.random): () => number {
  const cdf = new Float64Array(n)
  let sum = 0
  for (let k = 1; k <= n; k++) {
    sum += 1 / k ** s
    cdf[k - 1] = sum
  }
  return () => {
    const target = random() * sum
    let low = 0
    let high = n - 1
    while (low < high) {
      const mid = (low + high) >>> 1
      if (cdf[mid]! < target) low = mid + 1
      else high = mid
    }
    return low + 1
  }
}
