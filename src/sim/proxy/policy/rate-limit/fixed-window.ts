// Fixed window: at most `limit` requests per period-aligned window. Cheapest, but a
// client can get 2× the limit across a window edge (sliding-window fixes that).
import {ALLOWED, type Quota, type RateDecision, type RateLimiter, denied} from './decision.js'

export class FixedWindow implements RateLimiter {
  private windowStart = -Infinity
  private count = 0

  constructor(
    private readonly limit: number,
    private readonly periodMs: number,
  ) {}

  tryAcquire(nowMs: number): RateDecision {
    const start = Math.floor(nowMs / this.periodMs) * this.periodMs
    if (start !== this.windowStart) {
      this.windowStart = start
      this.count = 0
    }
    if (this.count < this.limit) {
      this.count++
      return ALLOWED
    }
    return denied(start + this.periodMs - nowMs)
  }

  quota(nowMs: number): Quota {
    const start = Math.floor(nowMs / this.periodMs) * this.periodMs
    const count = start === this.windowStart ? this.count : 0
    return {limit: this.limit, remaining: this.limit - count, resetMs: count > 0 ? start + this.periodMs - nowMs : 0}
  }
}
