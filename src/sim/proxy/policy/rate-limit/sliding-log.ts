// Sliding log: exact — a request is admitted when fewer than `limit` were admitted in
// the last period. Keeps the last `limit` admission times in a ring, so a check is
// O(1) and memory is `limit` numbers per key (grown only as far as used).
import {ALLOWED, type Quota, type RateDecision, type RateLimiter, denied} from './decision.js'

export class SlidingLog implements RateLimiter {
  private readonly times: number[] = []
  /** Index of the oldest entry once the ring is full. */
  private head = 0

  constructor(
    private readonly limit: number,
    private readonly periodMs: number,
  ) {}

  tryAcquire(nowMs: number): RateDecision {
    const times = this.times
    if (times.length < this.limit) {
      times.push(nowMs)
      return ALLOWED
    }
    const oldest = times[this.head]
    if (nowMs - oldest >= this.periodMs) {
      times[this.head] = nowMs
      this.head = (this.head + 1) % this.limit
      return ALLOWED
    }
    return denied(oldest + this.periodMs - nowMs)
  }

  quota(nowMs: number): Quota {
    const times = this.times
    const n = times.length
    // Oldest first from `head`, so times only grow along it: binary search for the first still inside the period.
    let lo = 0
    let hi = n
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (nowMs - times[(this.head + mid) % n] >= this.periodMs) lo = mid + 1
      else hi = mid
    }
    const inside = n - lo
    const newest = inside > 0 ? times[(this.head + n - 1) % n] : 0
    return {limit: this.limit, remaining: this.limit - inside, resetMs: inside > 0 ? newest + this.periodMs - nowMs : 0}
  }
}
