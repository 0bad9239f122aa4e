import {describe, expect, it} from 'vitest'
import {empiricalQuantile, exponentialPercentiles, latencyModel} from '../../src/sim/model/latency-model.js'
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

  const draw = (model: ReturnType<typeof latencyModel>, n: number, seed = 42) => {
    const random = new SeededRandom(seed)
    return Array.from({length: n}, () => model.sample(random))
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length

  it('reports a log-normal\'s mean, e^(mu + sigma²/2), which its samples agree with', () => {
    const model = latencyModel({p50Ms: 20, p99Ms: 120})
    expect(model.distribution).toBe('lognormal')
    expect(model.meanMs).toBeCloseTo(20 * Math.exp((Math.log(6) / 2.3263) ** 2 / 2), 9)
    expect(mean(draw(model, 200_000)) / model.meanMs).toBeGreaterThan(0.98)
    expect(mean(draw(model, 200_000)) / model.meanMs).toBeLessThan(1.02)
  })

  it('draws an exponential from its mean: mean, p50 = m·ln2 and p99 = m·ln100 within 3% over 200k seeded samples', () => {
    const model = latencyModel({p50Ms: 0, p99Ms: 0, distribution: 'exponential', meanMs: 40})
    expect(model.meanMs).toBe(40)
    expect(model.p50Ms).toBeCloseTo(40 * Math.LN2, 9)
    expect(model.p99Ms).toBeCloseTo(40 * Math.log(100), 9)
    expect(exponentialPercentiles(40)).toEqual({p50Ms: model.p50Ms, p99Ms: model.p99Ms})
    const samples = draw(model, 200_000).sort((a, b) => a - b)
    expect(Math.abs(mean(samples) / 40 - 1)).toBeLessThan(0.03)
    expect(Math.abs(percentile(samples, 0.5) / model.p50Ms - 1)).toBeLessThan(0.03)
    expect(Math.abs(percentile(samples, 0.99) / model.p99Ms - 1)).toBeLessThan(0.03)
    expect(samples[0]).toBeGreaterThanOrEqual(0)
  })

  it('draws exactly one uniform per exponential or empirical sample, and one normal per constant one', () => {
    const cases: Array<[Parameters<typeof latencyModel>[0], (r: SeededRandom) => void]> = [
      [{p50Ms: 0, p99Ms: 0, distribution: 'exponential', meanMs: 10}, (r) => r.next()],
      [{p50Ms: 0, p99Ms: 0, distribution: 'empirical', samplesMs: [1, 5, 9]}, (r) => r.next()],
      [{p50Ms: 7, p99Ms: 7, distribution: 'constant', meanMs: 7}, (r) => r.normal()],
    ]
    for (const [spec, once] of cases) {
      const model = latencyModel(spec)
      const random = new SeededRandom(5)
      const reference = new SeededRandom(5)
      for (let i = 0; i < 9; i++) {
        model.sample(random)
        once(reference)
      }
      expect(random.next()).toBe(reference.next())
    }
  })

  it('is a constant for distribution: constant', () => {
    const model = latencyModel({p50Ms: 12, p99Ms: 12, distribution: 'constant', meanMs: 12})
    expect(new Set(draw(model, 100))).toEqual(new Set([12]))
    expect([model.p50Ms, model.p99Ms, model.meanMs]).toEqual([12, 12, 12])
  })

  it('interpolates an empirical list\'s quantiles: values between the samples, never outside them, p50/p99 as empiricalQuantile says', () => {
    const samplesMs = [30, 10, 20, 40, 100]
    const model = latencyModel({p50Ms: 0, p99Ms: 0, distribution: 'empirical', samplesMs})
    expect(empiricalQuantile([10, 20, 30, 40, 100], 0.5)).toBe(30)
    expect(empiricalQuantile([10, 20, 30, 40, 100], 0.99)).toBeCloseTo(40 + 60 * 0.96, 9)
    expect(empiricalQuantile([10, 20], 0.25)).toBe(12.5)
    expect(model.p50Ms).toBe(30)
    expect(model.p99Ms).toBeCloseTo(97.6, 9)
    // Segments' midpoints 15, 25, 35, 70 → 36.25.
    expect(model.meanMs).toBe(36.25)
    const samples = draw(model, 100_000).sort((a, b) => a - b)
    expect(samples[0]).toBeGreaterThanOrEqual(10)
    expect(samples.at(-1)).toBeLessThanOrEqual(100)
    expect(samples.filter((s) => !samplesMs.includes(s)).length).toBeGreaterThan(99_000)
    expect(Math.abs(percentile(samples, 0.5) - 30)).toBeLessThan(0.5)
    expect(Math.abs(mean(samples) / 36.25 - 1)).toBeLessThan(0.01)
    expect(latencyModel({p50Ms: 0, p99Ms: 0, distribution: 'empirical', samplesMs: [8]}).sample(new SeededRandom(1))).toBe(8)
  })

  it('refuses an empirical model without samples and a negative mean', () => {
    expect(() => latencyModel({p50Ms: 0, p99Ms: 0, distribution: 'empirical', samplesMs: []})).toThrow(/at least one sample/)
    expect(() => latencyModel({p50Ms: 0, p99Ms: 0, distribution: 'exponential', meanMs: -3})).toThrow(RangeError)
  })
})
