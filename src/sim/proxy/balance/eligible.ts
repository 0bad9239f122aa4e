// Helpers the balancers share for picking among candidates a request has not tried.
import type {Random} from '../../time/random.js'
import type {PickContext} from './balancer.js'

// Exclusion is rare (retries only), so the common path never scans: callers check
// `hasExclusions(ctx)` first and only then count or walk the eligible candidates.

export function hasExclusions(ctx: PickContext | undefined): ctx is PickContext & {exclude: ReadonlySet<string>} {
  return ctx !== undefined && ctx.exclude !== undefined && ctx.exclude.size > 0
}

/** How many candidates are not excluded. */
export function eligibleCount<T>(candidates: readonly T[], exclude: ReadonlySet<string>, key: (t: T) => string): number {
  let n = 0
  for (let i = 0; i < candidates.length; i++) if (!exclude.has(key(candidates[i]))) n++
  return n
}

/** Index in `candidates` of the nth (0-based) candidate that is not excluded. */
export function nthEligible<T>(candidates: readonly T[], exclude: ReadonlySet<string>, key: (t: T) => string, nth: number): number {
  for (let i = 0; i < candidates.length; i++) {
    if (exclude.has(key(candidates[i]))) continue
    if (nth-- === 0) return i
  }
  return -1
}

/**
 * Two distinct random indices among `count` slots (power of two choices). Written
 * into `out` so a pick allocates nothing.
 */
export function twoChoices(random: Random, count: number, out: Int32Array): void {
  const a = random.int(count)
  let b = random.int(count - 1)
  if (b >= a) b++
  out[0] = a
  out[1] = b
}

/**
 * Power of two choices: draw two distinct candidates (not excluded, when any other
 * exists) and keep the one with the lower cost; a tie keeps the first drawn. Needs
 * a 2-slot scratch array from the caller so a pick allocates nothing.
 */
export function pickTwoChoices<T>(
  candidates: readonly T[],
  ctx: PickContext | undefined,
  random: Random,
  key: (t: T) => string,
  cost: (t: T) => number,
  scratch: Int32Array,
): T | undefined {
  const n = candidates.length
  if (n === 0) return undefined
  let a: T
  let b: T
  if (hasExclusions(ctx)) {
    const m = eligibleCount(candidates, ctx.exclude, key)
    if (m === 1) return candidates[nthEligible(candidates, ctx.exclude, key, 0)]
    if (m > 1 && m < n) {
      twoChoices(random, m, scratch)
      a = candidates[nthEligible(candidates, ctx.exclude, key, scratch[0])]
      b = candidates[nthEligible(candidates, ctx.exclude, key, scratch[1])]
      return cost(b) < cost(a) ? b : a
    }
  }
  if (n === 1) return candidates[0]
  twoChoices(random, n, scratch)
  a = candidates[scratch[0]]
  b = candidates[scratch[1]]
  return cost(b) < cost(a) ? b : a
}
