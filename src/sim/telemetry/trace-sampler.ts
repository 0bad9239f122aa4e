// Which spans the trace store keeps. Metrics count every span; the store keeps every
// trace while the mesh is quiet and a sample when it is busy, as a production mesh
// does (Istio samples 1% by default): holding every span of a loaded mesh for
// `mesh traces` was most of the data path's telemetry cost, because spans that live
// for seconds are what the garbage collector works hardest on.
//
// The sample is per trace, decided from the trace id, so a kept trace keeps all its
// spans: each second's keep probability is the target rate over the spans seen the
// second before, and a span is kept when its trace id's low 32 bits fall under it. A
// burst after a quiet second would keep everything until that second ends (at 10,000
// calls a second, 20,000 spans into the store for a target of 500): once a second has
// kept twice its share, the probability drops to the target over the rate the second
// is running at.
// A failed span (isErrorSpan: 5xx, a mesh-made reply, a cut body) is always kept, and so is every
// later span of its trace (a retry that recovered, the caller's span).
import {isErrorSpan, type Span} from './span.js'

export interface SamplingStats {
  /** The target: spans a second the store takes in when traffic is steady. */
  spansPerSecond: number
  /** The share of healthy traces kept right now (1 while the mesh is quiet). */
  keepProbability: number
  /** Spans left out of the store since the mesh started. */
  sampledOut: number
}

export const DEFAULT_SPANS_PER_SECOND = 500

export class TraceSampler {
  private second = -1
  private seenThisSecond = 0
  private keptThisSecond = 0
  /** A slow-down decided at this instant, applied from the next (-1: none waiting). */
  private slowedAt = -1
  private slowerProbability = 1
  private threshold = 2 ** 32
  private probability = 1
  private sampledOut = 0
  /** Traces kept for a failed span although the sample left them out: their later spans are kept too. */
  private rescued = new Set<string>()

  constructor(private spansPerSecond = DEFAULT_SPANS_PER_SECOND) {}

  setRate(spansPerSecond: number): void {
    this.spansPerSecond = spansPerSecond
  }

  get rate(): number {
    return this.spansPerSecond
  }

  /** Whether the store should keep `span` (`nowMs`: the clock's now, which the caller has read already). */
  keep(span: Span, nowMs: number): boolean {
    this.count(nowMs)
    if (this.probability >= 1 || lowBits(span.traceId) < this.threshold) {
      if (++this.keptThisSecond > 2 * this.spansPerSecond) this.slowDown(nowMs)
      return true
    }
    if (isErrorSpan(span)) {
      // Bounded: a trace's spans arrive within its duration, long before thousands of others fail.
      if (this.rescued.size >= 10_000) this.rescued.clear()
      this.rescued.add(span.traceId)
      return true
    }
    if (this.rescued.size > 0 && this.rescued.has(span.traceId)) return true
    this.sampledOut++
    return false
  }

  private count(nowMs: number): void {
    const second = Math.floor(nowMs / 1000)
    if (second !== this.second) {
      // A gap of more than a second means the last full second saw nothing.
      const seen = second === this.second + 1 ? this.seenThisSecond : 0
      this.probability = seen <= this.spansPerSecond ? 1 : this.spansPerSecond / seen
      this.threshold = this.probability * 2 ** 32
      this.second = second
      this.seenThisSecond = 0
      this.keptThisSecond = 0
      this.slowedAt = -1
    } else if (this.slowedAt >= 0 && nowMs !== this.slowedAt) {
      this.probability = this.slowerProbability
      this.threshold = this.probability * 2 ** 32
      this.slowedAt = -1
    }
    this.seenThisSecond++
  }

  /**
   * This second has kept more than twice its share: sample at the rate it is running at,
   * from the next instant on. The spans of one call are recorded in one synchronous run
   * at one clock reading, so a call's trace is not cut in two by the change.
   */
  private slowDown(nowMs: number): void {
    const elapsedMs = Math.max(1, nowMs - this.second * 1000)
    this.slowerProbability = Math.min(this.probability, this.spansPerSecond / ((this.seenThisSecond * 1000) / elapsedMs))
    this.slowedAt = nowMs
    // Judged again only once as many more have been kept.
    this.keptThisSecond = this.spansPerSecond
  }

  stats(): SamplingStats {
    return {spansPerSecond: this.spansPerSecond, keepProbability: this.probability, sampledOut: this.sampledOut}
  }
}

/** The trace id's last 8 hex digits as a number: random in every id the mesh makes, and in W3C ids. */
function lowBits(traceId: string): number {
  let n = 0
  for (let i = traceId.length - 8; i < traceId.length; i++) {
    const c = traceId.charCodeAt(i)
    n = n * 16 + (c <= 57 ? c - 48 : (c | 32) - 87)
  }
  return n
}
