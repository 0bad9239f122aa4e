// How long a simulated service takes to answer. Pure: each sample is exactly one draw
// from a Random (one normal deviate or one uniform), whatever the distribution, so a
// service's later dice (calls, errors) sit at the same place in its stream.
//
//   lognormal (default)  fitted to p50 and p99:
//                          p50 = e^mu               → mu    = ln p50
//                          p99 = e^(mu + z99·sigma)  → sigma = ln(p99 / p50) / z99
//   exponential          mean m:  p50 = m·ln 2,  p99 = m·ln 100   (M/M/c's service time)
//   constant             always m
//   empirical            the given samples' quantile function, linearly interpolated
//                        between order statistics (not a resample of the list): a few
//                        recorded latencies give a continuous distribution whose p50
//                        and p99 are the ones `empiricalQuantile` reports.

import type {LatencyDistribution} from '../config/types.js'
import type {Random} from '../time/random.js'

/** Every distribution a latency may name; absent is lognormal. */
export const LATENCY_DISTRIBUTIONS = ['lognormal', 'exponential', 'constant', 'empirical'] as const satisfies readonly LatencyDistribution[]

/** The standard normal's 99th percentile. */
export const Z99 = 2.3263

/** Below this a p50 of 0 is treated as "as fast as possible"; ln(0) has no fit. */
const MIN_P50_MS = 0.01

export interface LatencyModel {
  readonly distribution: LatencyDistribution
  readonly p50Ms: number
  readonly p99Ms: number
  /** The distribution's mean: what capacity (ρ = λ·mean / c) is computed from. */
  readonly meanMs: number
  /** One latency in milliseconds (>= 0). */
  sample(random: Random): number
}

export interface LatencySpec {
  p50Ms: number
  p99Ms: number
  distribution?: LatencyDistribution
  meanMs?: number
  samplesMs?: number[]
}

/** An exponential's percentiles from its mean: P(X > t) = e^(-t/m). */
export function exponentialPercentiles(meanMs: number): {p50Ms: number; p99Ms: number} {
  return {p50Ms: meanMs * Math.LN2, p99Ms: meanMs * Math.log(100)}
}

/** Quantile q (0..1) of ascending `sorted` by linear interpolation between order statistics. */
export function empiricalQuantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) throw new RangeError('an empirical latency needs at least one sample')
  const position = Math.min(Math.max(q, 0), 1) * (sorted.length - 1)
  const lo = Math.floor(position)
  const hi = Math.min(lo + 1, sorted.length - 1)
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (position - lo)
}

export function latencyModel(spec: LatencySpec): LatencyModel {
  const {p50Ms, p99Ms} = spec
  if (!Number.isFinite(p50Ms) || !Number.isFinite(p99Ms) || p50Ms < 0 || p99Ms < 0) {
    throw new RangeError(`latency percentiles must be finite and >= 0, got p50=${p50Ms}ms p99=${p99Ms}ms`)
  }
  switch (spec.distribution ?? 'lognormal') {
    case 'exponential':
      return exponential(nonNegative('mean', spec.meanMs ?? p50Ms / Math.LN2))
    case 'constant':
      return constant(nonNegative('mean', spec.meanMs ?? p50Ms), 'constant')
    case 'empirical':
      return empirical(spec.samplesMs ?? [])
    case 'lognormal':
      return lognormal(p50Ms, p99Ms)
  }
}

function nonNegative(what: string, ms: number): number {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`latency ${what} must be finite and >= 0, got ${ms}ms`)
  return ms
}

function constant(ms: number, distribution: LatencyDistribution): LatencyModel {
  return {
    distribution,
    p50Ms: ms,
    p99Ms: ms,
    meanMs: ms,
    // Still draws once, so a constant latency does not shift the random stream
    // of the calls and errors decided after it.
    sample(random) {
      random.normal()
      return ms
    },
  }
}

function lognormal(p50Ms: number, p99Ms: number): LatencyModel {
  // p99 <= p50 has no spread to fit (the validator rejects p99 < p50); answer a constant.
  if (p99Ms <= p50Ms || p99Ms === 0) return {...constant(p50Ms, 'lognormal'), p99Ms}
  const median = Math.max(p50Ms, MIN_P50_MS)
  const mu = Math.log(median)
  const sigma = Math.log(p99Ms / median) / Z99
  return {
    distribution: 'lognormal',
    p50Ms,
    p99Ms,
    meanMs: Math.exp(mu + (sigma * sigma) / 2),
    sample(random) {
      return Math.exp(mu + sigma * random.normal())
    },
  }
}

function exponential(meanMs: number): LatencyModel {
  if (meanMs === 0) return constant(0, 'exponential')
  return {
    distribution: 'exponential',
    ...exponentialPercentiles(meanMs),
    meanMs,
    sample(random) {
      // Inverse CDF; next() is in [0, 1), so 1 - u is never 0.
      return -meanMs * Math.log(1 - random.next())
    },
  }
}

function empirical(samplesMs: readonly number[]): LatencyModel {
  if (samplesMs.length === 0) throw new RangeError('an empirical latency needs at least one sample')
  for (const s of samplesMs) nonNegative('sample', s)
  const sorted = [...samplesMs].sort((a, b) => a - b)
  const last = sorted.length - 1
  // The interpolated quantile function is piecewise linear: its mean is the mean of the segments' midpoints.
  let meanMs = sorted[0]
  if (last > 0) {
    let sum = 0
    for (let i = 0; i < last; i++) sum += (sorted[i] + sorted[i + 1]) / 2
    meanMs = sum / last
  }
  return {
    distribution: 'empirical',
    p50Ms: empiricalQuantile(sorted, 0.5),
    p99Ms: empiricalQuantile(sorted, 0.99),
    meanMs,
    sample(random) {
      const position = random.next() * last
      const lo = Math.floor(position)
      return lo >= last ? sorted[last] : sorted[lo] + (sorted[lo + 1] - sorted[lo]) * (position - lo)
    },
  }
}
