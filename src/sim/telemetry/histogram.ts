// A small log-linear latency histogram (HdrHistogram's bucket layout, sparse): to the
// µs below 128 µs, then 64 sub-buckets per power of two, so any percentile is within
// 1/128 (0.8 %) of the true sample value. Values keep their sub-µs precision until
// bucketed, and min, max and mean are exact beside the buckets. Sparse because most
// windows of most series see only a few dozen distinct buckets, and merging sparse
// maps is what `stat` does. It is the project's one percentile summary, so `mesh
// stat`, `mesh load` and `mesh chaos` agree on what a p99 is.

const SUB_BUCKETS = 64
const LINEAR_LIMIT = 2 * SUB_BUCKETS // 128 µs
// Exponents past 35 (values from 2^42 µs, about 50 days) are clamped into the last bucket.
const MAX_EXPONENT = 35

/** Bucket index of a latency in milliseconds. */
export function bucketIndex(ms: number): number {
  const us = ms > 0 && Number.isFinite(ms) ? ms * 1000 : 0
  // The value is not rounded to whole µs first: rounding up into the next bucket would
  // add up to 0.5 µs to the bucket's error, 1.2 % just above 128 µs.
  if (us < LINEAR_LIMIT) return Math.min(Math.round(us), LINEAR_LIMIT - 1)
  const log2 = us < 2 ** 31 ? 31 - Math.clz32(us) : Math.floor(Math.log2(us))
  const e = Math.min(log2 - 6, MAX_EXPONENT)
  const sub = Math.min(Math.floor(us / 2 ** e), 2 * SUB_BUCKETS - 1)
  return LINEAR_LIMIT + (e - 1) * SUB_BUCKETS + (sub - SUB_BUCKETS)
}

/** The middle of a bucket, in milliseconds. */
export function bucketMidMs(index: number): number {
  if (index < LINEAR_LIMIT) return index / 1000
  const e = Math.floor((index - LINEAR_LIMIT) / SUB_BUCKETS) + 1
  const sub = ((index - LINEAR_LIMIT) % SUB_BUCKETS) + SUB_BUCKETS
  return ((sub + 0.5) * 2 ** e) / 1000
}

/** What `mesh load` and `mesh chaos` report of a run's latencies, in milliseconds. */
export interface LatencySummary {
  p50: number
  p75: number
  p90: number
  p95: number
  p99: number
  p999: number
  max: number
  mean: number
}

export class LatencyHistogram {
  readonly counts = new Map<number, number>()
  count = 0
  sumMs = 0
  minMs = Infinity
  maxMs = -Infinity

  record(ms: number): void {
    const v = ms > 0 && Number.isFinite(ms) ? ms : 0
    const i = bucketIndex(v)
    this.counts.set(i, (this.counts.get(i) ?? 0) + 1)
    this.count++
    this.sumMs += v
    if (v < this.minMs) this.minMs = v
    if (v > this.maxMs) this.maxMs = v
  }

  merge(other: LatencyHistogram): void {
    for (const [i, c] of other.counts) this.counts.set(i, (this.counts.get(i) ?? 0) + c)
    this.count += other.count
    this.sumMs += other.sumMs
    if (other.minMs < this.minMs) this.minMs = other.minMs
    if (other.maxMs > this.maxMs) this.maxMs = other.maxMs
  }

  /** `q` in 0..1; 0 when empty. The nearest-rank sample's bucket middle, clamped to the observed range. */
  percentile(q: number): number {
    return this.percentiles([q])[0]
  }

  /** Several percentiles with one sort. */
  percentiles(qs: number[]): number[] {
    if (this.count === 0) return qs.map(() => 0)
    const keys = [...this.counts.keys()].sort((a, b) => a - b)
    return qs.map((q) => {
      const rank = Math.max(1, Math.ceil(Math.min(1, Math.max(0, q)) * this.count))
      let seen = 0
      for (const k of keys) {
        seen += this.counts.get(k)!
        if (seen >= rank) return Math.min(this.maxMs, Math.max(this.minMs, bucketMidMs(k)))
      }
      return this.maxMs
    })
  }

  /** Values recorded in `ms`'s bucket or above: a percentile's tail, at the buckets' resolution. */
  countAtOrAbove(ms: number): number {
    const from = bucketIndex(ms)
    let n = 0
    for (const [i, c] of this.counts) if (i >= from) n += c
    return n
  }

  /** The largest value recorded, exact; 0 when empty. */
  max(): number {
    return this.count === 0 ? 0 : this.maxMs
  }

  mean(): number {
    return this.count === 0 ? 0 : this.sumMs / this.count
  }

  summary(): LatencySummary {
    const [p50, p75, p90, p95, p99, p999] = this.percentiles([0.5, 0.75, 0.9, 0.95, 0.99, 0.999])
    return {p50, p75, p90, p95, p99, p999, max: this.max(), mean: this.mean()}
  }
}
