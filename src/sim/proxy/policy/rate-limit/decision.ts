// What every rate-limit algorithm answers. An admitted request gets one shared,
// frozen decision, so the common path allocates nothing.

export interface RateDecision {
  readonly allowed: boolean
  /** When a request would next be admitted, in ms from now (0 when allowed). */
  readonly retryAfterMs: number
}

/**
 * Where a limiter stands, for the IETF draft's RateLimit-Limit / -Remaining / -Reset:
 * `limit` requests may arrive back to back from a fresh state, `remaining` of them right
 * now, and in `resetMs` it is fresh again if nothing more arrives.
 */
export interface Quota {
  readonly limit: number
  readonly remaining: number
  readonly resetMs: number
}

export interface RateLimiter {
  tryAcquire(nowMs: number): RateDecision
  /** Reads only: asking changes nothing. */
  quota(nowMs: number): Quota
}

export const ALLOWED: RateDecision = Object.freeze({allowed: true, retryAfterMs: 0})

export function denied(retryAfterMs: number): RateDecision {
  // Whole ms, rounded up: at now + retryAfterMs the request is admitted, never a hair early.
  return {allowed: false, retryAfterMs: Math.max(1, Math.ceil(retryAfterMs - 1e-9))}
}

/** Float slack for comparisons of accumulated fractions (tokens, weights). */
export const EPSILON = 1e-9
