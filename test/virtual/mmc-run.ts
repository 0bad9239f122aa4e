// Shared by the fidelity tests: what a run measured of one M/M/c queue, against Erlang C.
// Waiting times go into a fine fixed-width histogram (the p99 to 1/4000 of the theory's),
// so a run of millions of jobs needs neither their list nor a sort.
import {mmc, type MMcMetrics} from '../../src/sim/virtual/queueing-theory.js'

const BINS = 16_000

export class WaitHistogram {
  private readonly counts = new Float64Array(BINS + 1)
  private readonly width: number
  count = 0
  sum = 0

  /** `scaleMs`: a quarter of the largest wait worth resolving (the theory's p99). */
  constructor(scaleMs: number) {
    this.width = (4 * scaleMs) / BINS
  }

  add(ms: number): void {
    this.count++
    this.sum += ms
    this.counts[Math.min(BINS, Math.floor(ms / this.width))]++
  }

  get mean(): number {
    return this.sum / this.count
  }

  quantile(q: number): number {
    const target = q * this.count
    let below = 0
    for (let i = 0; i <= BINS; i++) {
      const c = this.counts[i]
      if (below + c >= target) return (i + (c === 0 ? 0 : (target - below) / c)) * this.width
      below += c
    }
    return Infinity
  }
}

export interface MMcCase {
  servers: number
  utilisation: number
  /** Jobs measured, after `warmUp` jobs that are not (the queue starts empty, not in its steady state). */
  jobs: number
  warmUp: number
  seed: number
}

/** λ per ms for `utilisation` of `servers` servers of mean service time `meanServiceMs`. */
export function theoryOf(c: MMcCase, meanServiceMs: number): MMcMetrics {
  return mmc({arrivalRatePerMs: (c.utilisation * c.servers) / meanServiceMs, meanServiceMs, servers: c.servers})
}

/** |measured / expected − 1| */
export const relativeError = (measured: number, expected: number) => Math.abs(measured / expected - 1)
