/**
 * mulberry32: a tiny, fast, seeded 32-bit PRNG (Tommy Ettinger's public-domain generator).
 * Deterministic across runs and platforms, which is all a benchmark trace needs; not for cryptography.
 * Returns a function producing floats uniform in [0, 1).
 */
export function mulberry32(seed: number): () => number {
  let state = seed | 0
  return () => {
    state = (state + 0x6d2b79f5) | 0
    let t = Math.imul(state ^ (state >>> 15), 1 | state)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
