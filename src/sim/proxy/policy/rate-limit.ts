// Rate limiting at a service's inbound side: one algorithm from `policy.rateLimit`,
// one limiter for the whole service or, with perSource, one per calling source.
// A refused request becomes 429 RL with Retry-After = retryAfterMs rounded up to
// seconds (respond.ts). It runs before any other work, so it must be cheap.
//
// `burst` shapes token-bucket and leaky-bucket (how many may arrive at once);
// the window and log algorithms admit `requests` per period and ignore it.
import type {RateLimitAlgorithm, RateLimitConfig} from '../../config/types.js'
import type {Clock} from '../../time/clock.js'
import type {RateDecision, RateLimiter} from './rate-limit/decision.js'
import {FixedWindow} from './rate-limit/fixed-window.js'
import {LeakyBucket} from './rate-limit/leaky-bucket.js'
import {SlidingLog} from './rate-limit/sliding-log.js'
import {SlidingWindow} from './rate-limit/sliding-window.js'
import {TokenBucket} from './rate-limit/token-bucket.js'

export {ALLOWED, type RateDecision, type RateLimiter} from './rate-limit/decision.js'

/** Sources tracked at once with perSource; the least recently seen is dropped beyond it. */
export const MAX_KEYS = 1000

export interface KeyedRateLimiter {
  readonly algorithm: RateLimitAlgorithm
  /** `key` is the calling source (ignored unless perSource). */
  tryAcquire(key: string): RateDecision
  /** Limiters held (1 without perSource). */
  size(): number
}

export function createLimiter(config: RateLimitConfig, nowMs: number): RateLimiter {
  const {requests, periodMs, burst} = config
  // Counting algorithms need a whole number of requests per period.
  const limit = Math.max(1, Math.floor(requests))
  switch (config.algorithm) {
    case 'token-bucket':
      return new TokenBucket(requests, periodMs, burst, nowMs)
    case 'leaky-bucket':
      return new LeakyBucket(requests, periodMs, burst)
    case 'fixed-window':
      return new FixedWindow(limit, periodMs)
    case 'sliding-log':
      return new SlidingLog(limit, periodMs)
    case 'sliding-window':
      return new SlidingWindow(limit, periodMs)
  }
}

export function createRateLimiter(config: RateLimitConfig, clock: Clock, maxKeys = MAX_KEYS): KeyedRateLimiter {
  if (!config.perSource) {
    const limiter = createLimiter(config, clock.now())
    return {algorithm: config.algorithm, tryAcquire: () => limiter.tryAcquire(clock.now()), size: () => 1}
  }
  // Bounded with "second chance" (CLOCK), an O(1) approximation of LRU: a hit only
  // sets a flag; when full, the oldest entry is evicted unless flagged, in which case
  // it loses the flag and goes to the back. A hit thus costs no Map reordering.
  // A dropped source starts afresh if it comes back: the bound trades a little
  // leniency for memory that a spray of sources cannot grow.
  const limiters = new Map<string, {limiter: RateLimiter; used: boolean}>()
  return {
    algorithm: config.algorithm,
    tryAcquire(key: string): RateDecision {
      const now = clock.now()
      let entry = limiters.get(key)
      if (entry === undefined) {
        if (limiters.size >= maxKeys) evictOne(limiters)
        entry = {limiter: createLimiter(config, now), used: false}
        limiters.set(key, entry)
      } else {
        entry.used = true
      }
      return entry.limiter.tryAcquire(now)
    },
    size: () => limiters.size,
  }
}

function evictOne(limiters: Map<string, {limiter: RateLimiter; used: boolean}>): void {
  // Terminates: each pass clears a flag, so within size + 1 steps an unflagged entry is oldest.
  for (;;) {
    const [key, entry] = limiters.entries().next().value!
    limiters.delete(key)
    if (!entry.used) return
    entry.used = false
    limiters.set(key, entry)
  }
}
