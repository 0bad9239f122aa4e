// Knative's Pod Autoscaler (KPA) as a pure decision object: fed the observed concurrency
// (or requests per second) every tick, asked for a decision with the ready instance count.
// It starts and stops nothing: whoever owns the instances acts on `desired`.
//
// Followed from knative/serving:
//   pkg/autoscaler/scaling/autoscaler.go  (*autoscaler).Scale, newAutoscaler
//   pkg/autoscaler/aggregation             TimedFloat64Buckets.WindowAverage, max.TimeWindow
//   pkg/reconciler/autoscaling/kpa/scaler.go  handleScaleToZero, applyBounds
//   pkg/reconciler/autoscaling/resources/target.go  ResolveMetricTarget
import type {ScalingConfig} from '../config/types.js'
import type {Clock} from '../time/clock.js'

/** The decider's share of `scaling:` (initialScale is where the instances start, before any decision). */
export type KpaSpec = Omit<ScalingConfig, 'initialScale' | 'activatorTimeoutMs' | 'queue' | 'reservedConcurrency'>

export interface KpaDecision {
  /** What the instance count should be now (bounds, rates, panic, delay and grace applied). */
  desired: number
  panic: boolean
  /** Averages over the stable and the panic window, in the metric's unit. */
  observedStable: number
  observedPanic: number
  /** Per-instance target after utilization (Knative's TargetValue). */
  targetValue: number
  /** For people: "panic, observed 41 concurrent over 6 s, target 7". */
  reason: string
}

/** Knative's default bucket granularity: samples within one second are one data point. */
const BUCKET_MS = 1000
/** ResolveMetricTarget never aims below one per instance (and division stays finite). */
const TARGET_MIN = 1

/**
 * Effective per-instance target as ResolveMetricTarget computes it: a concurrency target
 * never exceeds containerConcurrency (an instance cannot be asked to hold more than it
 * admits), then utilization leaves headroom, but never below one.
 */
export function targetValue(spec: KpaSpec): number {
  const total = spec.metric === 'concurrency' && spec.containerConcurrency > 0 ? Math.min(spec.target, spec.containerConcurrency) : spec.target
  return Math.max(TARGET_MIN, (total * spec.targetUtilization) / 100)
}

export class KpaDecider {
  /**
   * Bucket start (ms) → the samples in it, averaged when read. Knative sums the pods'
   * reports of a second; here one sample is already the sum over the instances, so a
   * faster tick must not count double.
   */
  private readonly buckets = new Map<number, {sum: number; n: number}>()
  private firstBucket: number | undefined
  /** When panic was last (re)confirmed; undefined when stable. Knative's panicTime. */
  private panicTime: number | undefined
  /** The most the panic has asked for; panic never asks for less. Knative's maxPanicPods. */
  private maxPanicPods: number
  /** Desired counts before the delay, for scaleDownDelay's max over its window. */
  private delayed: Array<{at: number; desired: number}> = []
  /** Since when the decider has wanted zero; scale to zero waits the grace period after it. */
  private zeroSince: number | undefined
  /** The last sample with traffic, or when the decider began: zero needs a whole stable window without traffic after it. */
  private quietSince: number

  constructor(
    private spec: KpaSpec,
    private readonly clock: Clock,
    /** Instances ready when the decider starts: more than one starts in panic (newAutoscaler). */
    readyAtStart = 0,
  ) {
    // A restarted autoscaler has no history; panic holds the current scale until it has some.
    this.maxPanicPods = readyAtStart
    if (readyAtStart > 1) this.panicTime = clock.now()
    this.quietSince = clock.now()
  }

  /** `mesh apply` changing `scaling:` keeps the history, as Knative's Update. */
  update(spec: KpaSpec): void {
    this.spec = spec
  }

  get panicWindowMs(): number {
    return (this.spec.windowMs * this.spec.panicWindowPercentage) / 100
  }

  /** One observation: the total in-flight requests (or requests per second) across the instances now. */
  record(value: number): void {
    const b = Math.floor(this.clock.now() / BUCKET_MS) * BUCKET_MS
    if (value > 0) this.quietSince = this.clock.now()
    const bucket = this.buckets.get(b) ?? {sum: 0, n: 0}
    bucket.sum += value
    bucket.n++
    this.buckets.set(b, bucket)
    this.firstBucket ??= b
    // Only the stable window is ever read.
    const oldest = b - this.spec.windowMs
    for (const k of this.buckets.keys()) if (k <= oldest) this.buckets.delete(k)
  }

  /**
   * The average over the last `windowMs`, as TimedFloat64Buckets.WindowAverage: a second
   * with no sample counts as zero (no report is no traffic), but the seconds before the
   * first sample do not count at all, so a young service is not averaged down by time it
   * did not exist. Nothing for a whole window is zero.
   */
  average(windowMs: number, now = this.clock.now()): number {
    if (this.firstBucket === undefined) return 0
    const current = Math.floor(now / BUCKET_MS) * BUCKET_MS
    const windowBuckets = Math.max(1, Math.round(windowMs / BUCKET_MS))
    const from = current - (windowBuckets - 1) * BUCKET_MS
    let total = 0
    for (const [k, bucket] of this.buckets) if (k >= from && k <= current) total += bucket.sum / bucket.n
    const known = Math.min(windowBuckets, (current - this.firstBucket) / BUCKET_MS + 1)
    return total / known
  }

  /**
   * The decision now, given how many instances are ready. Undefined before the first
   * sample: Knative's invalidSR on ErrNoData (nothing to scale on yet).
   */
  decide(ready: number): KpaDecision | undefined {
    if (this.firstBucket === undefined) return undefined
    const now = this.clock.now()
    const s = this.spec
    const tv = targetValue(s)
    const observedStable = this.average(s.windowMs, now)
    const observedPanic = this.average(this.panicWindowMs, now)

    // Scale: with none ready, rates are relative to one, so scaling from zero is not stuck.
    const readyPods = Math.max(1, ready)
    // Ceil up and floor down: a conservative rate still moves by at least one instance.
    const maxScaleUp = Math.ceil(s.maxScaleUpRate * readyPods)
    const maxScaleDown = Math.floor(readyPods / s.maxScaleDownRate)
    const dspc = Math.ceil(observedStable / tv)
    const dppc = Math.ceil(observedPanic / tv)
    const desiredStable = Math.min(Math.max(dspc, maxScaleDown), maxScaleUp)
    const desiredPanic = Math.min(Math.max(dppc, maxScaleDown), maxScaleUp)

    const overThreshold = dppc / readyPods >= s.panicThresholdPercentage / 100
    if (overThreshold) {
      // Entering, or still over: either way the panic is extended from now.
      this.panicTime = now
    } else if (this.panicTime !== undefined && this.panicTime + s.windowMs < now) {
      // The surge has made its way into the stable window: stop panicking.
      this.panicTime = undefined
      this.maxPanicPods = 0
    }

    let desired = desiredStable
    const panic = this.panicTime !== undefined
    let panicHolds = false
    if (panic) {
      // Provision for whichever window asks more, and never less than panic already asked.
      desired = Math.max(desired, desiredPanic)
      if (desired > this.maxPanicPods) this.maxPanicPods = desired
      panicHolds = desired < this.maxPanicPods
      desired = this.maxPanicPods
    }

    // scaleDownDelay: the largest desire over the delay window, so a dip shorter than it scales nothing down.
    let held = false
    if (s.scaleDownDelayMs > 0) {
      this.delayed.push({at: now, desired})
      this.delayed = this.delayed.filter((d) => d.at > now - s.scaleDownDelayMs)
      const max = Math.max(...this.delayed.map((d) => d.desired))
      held = max !== desired
      desired = max
    }

    const unbounded = desired
    // Scaler.Scale: applyBounds first, so minScale > 0 never reaches the scale-to-zero path.
    desired = Math.min(Math.max(desired, s.minScale), s.maxScale)

    // handleScaleToZero: the window average is zero only after a whole stable window without
    // traffic; the last instance then stays for the grace period (Knative's time for the
    // activator to get in the path) before it goes. A young decider averages over less than
    // a window, so the window without traffic is also counted from when it began.
    let graceLeftMs = 0
    if (desired === 0) {
      this.zeroSince ??= now
      graceLeftMs = Math.max(this.zeroSince, this.quietSince + s.windowMs) + s.scaleToZeroGracePeriodMs - now
      // Already at zero, it stays there: the grace period is for the last instance leaving.
      if (graceLeftMs > 0 && ready > 0) desired = 1
      else graceLeftMs = 0
    } else {
      this.zeroSince = undefined
    }

    const reason = this.reason({panic, panicHolds, observedStable, observedPanic, tv, held, graceLeftMs, unbounded})
    return {desired, panic, observedStable, observedPanic, targetValue: tv, reason}
  }

  private reason(d: {panic: boolean; panicHolds: boolean; observedStable: number; observedPanic: number; tv: number; held: boolean; graceLeftMs: number; unbounded: number}): string {
    const s = this.spec
    const unit = s.metric === 'rps' ? 'req/s' : 'concurrent'
    // In panic the larger window's value decided; say which window it was.
    const fromPanic = d.panic && d.observedPanic >= d.observedStable
    const observed = fromPanic ? d.observedPanic : d.observedStable
    const window = fromPanic ? this.panicWindowMs : s.windowMs
    let text = `${d.panic ? 'panic' : 'stable'}, observed ${round(observed)} ${unit} over ${round(window / 1000)} s, target ${round(d.tv)}`
    if (d.panicHolds) text += `; no scale-down in panic (holding ${this.maxPanicPods})`
    if (d.held) text += `; scale-down delayed (${round(s.scaleDownDelayMs / 1000)} s)`
    if (d.graceLeftMs > 0) text += `; no traffic, scale to zero in ${round(d.graceLeftMs / 1000)} s`
    if (d.unbounded < s.minScale) text += `; minScale ${s.minScale}`
    else if (d.unbounded > s.maxScale) text += `; capped at maxScale ${s.maxScale}`
    return text
  }
}

function round(n: number): number {
  return Math.round(n * 10) / 10
}
