// Leaky bucket as a meter (GCRA, the ATM cell-rate algorithm): no queue, just a
// "theoretical arrival time" that advances by one emission interval T per admitted
// request. A request is admitted unless it arrives more than the burst tolerance
// τ = (burst - 1)·T ahead of schedule — a steady rate with `burst` slack, in one number.
import {ALLOWED, EPSILON, type Quota, type RateDecision, type RateLimiter, denied} from './decision.js'

export class LeakyBucket implements RateLimiter {
  private tat = -Infinity
  private readonly intervalMs: number
  private readonly toleranceMs: number
  private readonly burst: number

  constructor(requests: number, periodMs: number, burst: number) {
    this.burst = Math.max(1, burst)
    this.intervalMs = periodMs / requests
    this.toleranceMs = (this.burst - 1) * this.intervalMs
  }

  tryAcquire(nowMs: number): RateDecision {
    const tat = Math.max(this.tat, nowMs)
    const early = tat - this.toleranceMs - nowMs
    if (early > EPSILON) return denied(early)
    this.tat = tat + this.intervalMs
    return ALLOWED
  }

  quota(nowMs: number): Quota {
    // Ahead of schedule by `ahead`: each admission adds T to it, and it may reach τ.
    const ahead = Math.max(0, this.tat - nowMs)
    const remaining = ahead > this.toleranceMs + EPSILON ? 0 : Math.floor((this.toleranceMs - ahead) / this.intervalMs + EPSILON) + 1
    return {limit: this.burst, remaining, resetMs: ahead}
  }
}
