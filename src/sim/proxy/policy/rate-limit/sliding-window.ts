// Sliding window (the two-window approximation Cloudflare describes): the count in
// the last period is estimated as previous window × the share of it still inside
// the sliding period + the current window's count. Two counters per key, and no
// 2× burst at window edges as with fixed-window.
import {ALLOWED, EPSILON, type Quota, type RateDecision, type RateLimiter, denied} from './decision.js'

export class SlidingWindow implements RateLimiter {
  private windowStart = -Infinity
  private previous = 0
  private current = 0

  constructor(
    private readonly limit: number,
    private readonly periodMs: number,
  ) {}

  tryAcquire(nowMs: number): RateDecision {
    const P = this.periodMs
    const start = Math.floor(nowMs / P) * P
    if (start !== this.windowStart) {
      // The window that just ended becomes "previous"; one further back counts for nothing.
      this.previous = start - this.windowStart === P ? this.current : 0
      this.current = 0
      this.windowStart = start
    }
    const elapsed = nowMs - start
    const weighted = this.previous * (1 - elapsed / P) + this.current
    if (weighted + 1 <= this.limit + EPSILON) {
      this.current++
      return ALLOWED
    }
    return denied(this.waitMs(elapsed))
  }

  quota(nowMs: number): Quota {
    const P = this.periodMs
    const start = Math.floor(nowMs / P) * P
    // As tryAcquire would see the windows at nowMs, without moving them.
    const moved = start !== this.windowStart
    const previous = moved ? (start - this.windowStart === P ? this.current : 0) : this.previous
    const current = moved ? 0 : this.current
    const elapsed = nowMs - start
    const weighted = previous * (1 - elapsed / P) + current
    const remaining = Math.max(0, Math.floor(this.limit - weighted + EPSILON))
    // Whole again once nothing counted is left: this window's count weighs until the end of the next one.
    const resetMs = current > 0 ? 2 * P - elapsed : previous > 0 ? P - elapsed : 0
    return {limit: this.limit, remaining, resetMs}
  }

  /** Time until weighted + 1 ≤ limit, with no further admissions meanwhile. */
  private waitMs(elapsed: number): number {
    const P = this.periodMs
    const room = this.limit - 1 - this.current
    if (room >= 0 && this.previous > 0) {
      // Still in this window: previous × (1 - t/P) must shrink to `room`.
      const t = P * (1 - room / this.previous)
      if (t < P) return Math.max(0, t - elapsed)
    }
    // Next window: `current` becomes previous and must shrink to limit - 1.
    const t = this.current > 0 ? Math.max(0, P * (1 - (this.limit - 1) / this.current)) : 0
    return P - elapsed + t
  }
}
