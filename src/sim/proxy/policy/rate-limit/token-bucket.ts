// Token bucket: `burst` tokens at most, refilled at requests/period; a request takes
// one token. Admits a burst at once, then the steady rate.
import {ALLOWED, EPSILON, type Quota, type RateDecision, type RateLimiter, denied} from './decision.js'

export class TokenBucket implements RateLimiter {
  private tokens: number
  private lastMs: number
  private readonly perMs: number
  private readonly capacity: number

  constructor(requests: number, periodMs: number, burst: number, nowMs: number) {
    this.perMs = requests / periodMs
    this.capacity = Math.max(1, burst)
    // Starts full, as Envoy's local rate limit does.
    this.tokens = this.capacity
    this.lastMs = nowMs
  }

  tryAcquire(nowMs: number): RateDecision {
    if (nowMs > this.lastMs) {
      this.tokens = this.tokensAt(nowMs)
      this.lastMs = nowMs
    }
    if (this.tokens >= 1 - EPSILON) {
      this.tokens -= 1
      return ALLOWED
    }
    return denied((1 - this.tokens) / this.perMs)
  }

  quota(nowMs: number): Quota {
    const tokens = this.tokensAt(nowMs)
    return {limit: this.capacity, remaining: Math.floor(tokens + EPSILON), resetMs: Math.max(0, (this.capacity - tokens) / this.perMs)}
  }

  private tokensAt(nowMs: number): number {
    return nowMs > this.lastMs ? Math.min(this.capacity, this.tokens + (nowMs - this.lastMs) * this.perMs) : this.tokens
  }
}
