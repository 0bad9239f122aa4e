// Retry backoff: exponential with AWS's "full jitter" — a uniform wait in
// [0, min(max, base·2^(n-1))]. The jitter spreads the retries of many callers
// that failed together, so they do not come back together.
import type {Random} from '../../time/random.js'

export interface BackoffConfig {
  baseMs: number
  maxMs: number
}

/** `attempt` is the 1-based retry number (the first retry is 1). */
export function fullJitterBackoff(attempt: number, {baseMs, maxMs}: BackoffConfig, random: Random): number {
  // The exponent is capped so 2^n never overflows to Infinity on silly attempt counts.
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(attempt, 1) - 1, 52))
  return random.next() * ceiling
}
