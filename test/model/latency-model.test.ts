import {describe, expect, it} from 'vitest'
import {latencyModel} from '../../src/sim/model/latency-model.js'
import {SeededRandom} from '../../src/sim/time/random.js'

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]
}

describe('latencyModel', () => {
  it('fits a log-normal whose p50 and p99 are the configured ones (100k seeded samples, within 3%)', () => {
    const model = latencyModel({p50Ms: 20, p99Ms: 120})
    const random = new SeededRandom(42)
    const samples = Array.from({length: 100_000}, () => model.sample(random)).sort((a, b) => a - b)
    expect(percentile(samples, 0.5)).toBeGreaterThan(20 * 0.97)
    expect(percentile(samples, 0.5)).toBeLessThan(20 * 1.03)
    expect(percentile(samples, 0.99)).toBeGreaterThan(120 * 0.97)
    expect(percentile(samples, 0.99)).toBeLessThan(120 * 1.03)
    expect(samples[0]).toBeGreaterThan(0)
  })

  it('replays the same samples for the same seed, and different ones for another', () => {
    const model = latencyModel({p50Ms: 5, p99Ms: 40})
    const run = (seed: number) => {
      const random = new SeededRandom(seed)
      return Array.from({length: 1000}, () => model.sample(random))
    }
    expect(run(7)).toEqual(run(7))
    expect(run(7)).not.toEqual(run(8))
  })

  it('is a constant when p50 equals p99, and still draws so later dice do not shift', () => {
    const model = latencyModel({p50Ms: 15, p99Ms: 15})
    const random = new SeededRandom(1)
    const reference = new SeededRandom(1)
    for (let i = 0; i < 10; i++) {
      expect(model.sample(random)).toBe(15)
      reference.normal()
    }
    expect(random.next()).toBe(reference.next())
  })

  it('answers 0ms for a zero latency and rejects negative percentiles', () => {
    expect(latencyModel({p50Ms: 0, p99Ms: 0}).sample(new SeededRandom(3))).toBe(0)
    expect(() => latencyModel({p50Ms: -1, p99Ms: 10})).toThrow(RangeError)
  })
})
