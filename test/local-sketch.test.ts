import { describe, expect, it } from 'vitest'
import { FrequencySketch, hashKey } from '../src/local/frequency-sketch.js'
import { seeded } from './support/local-tier.js'
import { ReferenceSketch } from './support/reference-tinylfu.js'

describe('FrequencySketch', () => {
  it('counts occurrences up to 15 and reports saturation', () => {
    const sketch = new FrequencySketch(1000)
    const key = hashKey('key', 0)
    expect(sketch.frequency(key)).toBe(0)
    for (let i = 1; i <= 15; i++) {
      expect(sketch.increment(key)).toBe(true)
      expect(sketch.frequency(key)).toBe(i)
    }
    expect(sketch.increment(key)).toBe(false)
    expect(sketch.frequency(key)).toBe(15)
  })

  it('keeps distinct keys apart when the table is not crowded', () => {
    const sketch = new FrequencySketch(1000)
    const keys = Array.from({ length: 100 }, (_, i) => hashKey(`k${i}`, 42))
    keys.forEach((key, i) => {
      for (let n = 0; n < i % 10; n++) sketch.increment(key)
    })
    const exact = keys.filter((key, i) => sketch.frequency(key) === i % 10).length
    // count-min never under-estimates; with 16 counters per expected entry, nearly all are exact
    keys.forEach((key, i) => {
      expect(sketch.frequency(key)).toBeGreaterThanOrEqual(i % 10)
    })
    expect(exact).toBeGreaterThanOrEqual(95)
  })

  it('halves every counter after the sample period (20 x capacity additions)', () => {
    const sketch = new FrequencySketch(1) // sample period: 20 additions
    const a = hashKey('a', 1)
    const b = hashKey('b', 1)
    for (let i = 0; i < 15; i++) sketch.increment(a) // 15 additions
    for (let i = 0; i < 20; i++) sketch.increment(a) // saturated: no additions
    expect(sketch.epoch).toBe(1)
    for (let i = 0; i < 4; i++) sketch.increment(b) // 19 additions
    expect(sketch.frequency(a)).toBe(15)
    expect(sketch.epoch).toBe(1)
    sketch.increment(b) // 20th: reset
    expect(sketch.epoch).toBe(2)
    expect(sketch.frequency(a)).toBe(7)
    expect(sketch.frequency(b)).toBe(2)
  })

  it('halves each counter on its own: no bit leaks between neighbouring counters', () => {
    const sketch = new FrequencySketch(4) // one 64-byte block, sample period 80
    const keys = Array.from({ length: 40 }, (_, i) => hashKey(`k${i}`, 3))
    let round = 0
    while (sketch.epoch === 1) sketch.increment(keys[round++ % keys.length]!)
    // right after a reset no counter can exceed 15 >> 1
    expect(Math.max(...keys.map((key) => sketch.frequency(key)))).toBeLessThanOrEqual(7)
    expect(Math.max(...keys.map((key) => sketch.frequency(key)))).toBeGreaterThan(0)
  })

  it('grows on ensureCapacity (forgetting counts) and never shrinks', () => {
    const sketch = new FrequencySketch(16)
    const key = hashKey('x', 0)
    sketch.increment(key)
    sketch.ensureCapacity(8)
    expect(sketch.capacity).toBe(16)
    expect(sketch.frequency(key)).toBe(1)
    sketch.ensureCapacity(1000)
    expect(sketch.capacity).toBe(1000)
    expect(sketch.frequency(key)).toBe(0)
    expect(sketch.epoch).toBe(2)
  })

  it('hashes keys deterministically, differently per seed', () => {
    expect(hashKey('user:1', 7)).toBe(hashKey('user:1', 7))
    expect(hashKey('user:1', 7)).not.toBe(hashKey('user:1', 8))
    expect(hashKey('user:1', 7)).not.toBe(hashKey('user:2', 7))
    expect(Number.isInteger(hashKey('', 0))).toBe(true)
  })

  it('agrees with a plain one-byte-per-counter reference on every estimate, across halvings and resizes', () => {
    for (const [capacity, keys, seed] of [
      [1, 8, 1],
      [4, 40, 2],
      [100, 600, 3],
      [500, 2000, 4],
    ] as const) {
      const random = seeded(seed)
      const sketch = new FrequencySketch(capacity)
      const reference = new ReferenceSketch(capacity)
      const hashes = Array.from({ length: keys }, (_, i) => hashKey(`k${i}`, seed))
      const where = (step: number) => `capacity ${capacity}, step ${step}`
      let resets = 0
      for (let step = 0; step < 60 * capacity + 2000; step++) {
        const hash = hashes[Math.floor(keys * random())]!
        const epoch = sketch.epoch
        expect(sketch.increment(hash), where(step)).toBe(reference.increment(hash))
        if (sketch.epoch !== epoch) resets++
        expect(sketch.frequency(hash), where(step)).toBe(reference.frequency(hash))
        if (step % 97 === 0)
          for (let i = step % keys, n = 0; n < 64; i = (i + 1) % keys, n++)
            expect(sketch.frequency(hashes[i]!), where(step)).toBe(reference.frequency(hashes[i]!))
        if (step === 20 * capacity) {
          // A resize forgets every count, in both.
          sketch.ensureCapacity(2 * capacity)
          reference.ensureCapacity(2 * capacity)
        }
      }
      expect(resets, `capacity ${capacity}: halvings`).toBeGreaterThan(0)
    }
  })
})
