// How long a simulated service takes to answer: a log-normal fitted to the two
// percentiles a user declares (p50, p99). Pure: each sample is one draw from a Random.
//
//   p50 = e^mu              → mu    = ln p50
//   p99 = e^(mu + z99·sigma) → sigma = ln(p99 / p50) / z99

import type {Random} from '../time/random.js'

/** The standard normal's 99th percentile. */
export const Z99 = 2.3263

/** Below this a p50 of 0 is treated as "as fast as possible"; ln(0) has no fit. */
const MIN_P50_MS = 0.01

export interface LatencyModel {
  readonly p50Ms: number
  readonly p99Ms: number
  /** One latency in milliseconds (>= 0). */
  sample(random: Random): number
}

export function latencyModel({p50Ms, p99Ms}: {p50Ms: number; p99Ms: number}): LatencyModel {
  if (!Number.isFinite(p50Ms) || !Number.isFinite(p99Ms) || p50Ms < 0 || p99Ms < 0) {
    throw new RangeError(`latency percentiles must be finite and >= 0, got p50=${p50Ms}ms p99=${p99Ms}ms`)
  }
  // p99 <= p50 has no spread to fit (the validator rejects p99 < p50); answer a constant.
  if (p99Ms <= p50Ms || p99Ms === 0) {
    return {
      p50Ms,
      p99Ms,
      // Still draws once, so a constant latency does not shift the random stream
      // of the calls and errors decided after it.
      sample(random) {
        random.normal()
        return p50Ms
      },
    }
  }
  const median = Math.max(p50Ms, MIN_P50_MS)
  const mu = Math.log(median)
  const sigma = Math.log(p99Ms / median) / Z99
  return {
    p50Ms,
    p99Ms,
    sample(random) {
      return Math.exp(mu + sigma * random.normal())
    },
  }
}
