// Random: a uniform pick from the seeded Random, so a run replays with its seed.
import type {Random} from '../../time/random.js'
import type {Balancer, PickContext} from './balancer.js'
import {eligibleCount, hasExclusions, nthEligible} from './eligible.js'

export class RandomBalancer<T> implements Balancer<T> {
  constructor(
    private readonly random: Random,
    private readonly key: (t: T) => string,
  ) {}

  pick(candidates: readonly T[], ctx?: PickContext): T | undefined {
    return pickRandom(candidates, ctx, this.random, this.key)
  }
}

/** Uniform among candidates not excluded (or among all, when every one is excluded). */
export function pickRandom<T>(candidates: readonly T[], ctx: PickContext | undefined, random: Random, key: (t: T) => string): T | undefined {
  const n = candidates.length
  if (n === 0) return undefined
  if (hasExclusions(ctx)) {
    const m = eligibleCount(candidates, ctx.exclude, key)
    if (m > 0 && m < n) return candidates[nthEligible(candidates, ctx.exclude, key, random.int(m))]
  }
  return candidates[random.int(n)]
}
