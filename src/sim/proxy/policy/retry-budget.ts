// Linkerd's retry budget: retries may add at most `ratio` extra load on top of the
// original requests, plus a floor of `minPerSecond` so a quiet service can still
// retry. Over the last ttl: retries ≤ ratio × requests + minPerSecond × ttl/1s.
// Against a service failing 100% this turns a retry storm into ≤ ratio extra load.
//
// Counts live in BUCKETS time buckets of ttl/BUCKETS each (a ring, as tower's
// TpsBudget), so memory is fixed and every call is O(1) amortised: the window is
// the current bucket plus the BUCKETS-1 before it.
import type {Clock} from '../../time/clock.js'

export const BUCKETS = 10

export interface RetryBudgetConfig {
  /** 0..1: retries allowed per original request. */
  ratio: number
  /** Retries always allowed per second, whatever the traffic. */
  minPerSecond: number
  ttlMs?: number
}

export class RetryBudget {
  private readonly requests = new Float64Array(BUCKETS)
  private readonly retries = new Float64Array(BUCKETS)
  private requestSum = 0
  private retrySum = 0
  /** Absolute index (floor(now / bucketMs)) of the current bucket. */
  private current: number
  private readonly bucketMs: number
  private readonly ratio: number
  private readonly reserve: number

  constructor(config: RetryBudgetConfig, private readonly clock: Clock) {
    const ttlMs = config.ttlMs ?? 10_000
    this.bucketMs = ttlMs / BUCKETS
    this.ratio = config.ratio
    this.reserve = (config.minPerSecond * ttlMs) / 1000
    this.current = Math.floor(clock.now() / this.bucketMs)
  }

  /** One original request (not a retry) was sent. */
  deposit(): void {
    this.rotate()
    this.requests[this.current % BUCKETS]++
    this.requestSum++
  }

  /** Ask to send one retry; false means the budget is spent and the caller must not retry. */
  withdraw(): boolean {
    this.rotate()
    // The 1e-9 absorbs float error in ratio × requests (0.1 × 30 is 3.0000000000000004).
    if (this.retrySum + 1 > this.ratio * this.requestSum + this.reserve + 1e-9) return false
    this.retries[this.current % BUCKETS]++
    this.retrySum++
    return true
  }

  /** Retries still allowed right now. */
  remaining(): number {
    this.rotate()
    return Math.max(0, Math.floor(this.ratio * this.requestSum + this.reserve - this.retrySum + 1e-9))
  }

  private rotate(): void {
    const index = Math.floor(this.clock.now() / this.bucketMs)
    if (index <= this.current) return
    // Clear every bucket that fell out of the window (all of them after a long idle).
    const steps = Math.min(index - this.current, BUCKETS)
    for (let i = 1; i <= steps; i++) {
      const slot = (this.current + i) % BUCKETS
      this.requestSum -= this.requests[slot]
      this.retrySum -= this.retries[slot]
      this.requests[slot] = 0
      this.retries[slot] = 0
    }
    this.current = index
  }
}
