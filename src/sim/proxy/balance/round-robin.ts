// Round robin: each pick takes the next candidate in turn, so N candidates share any
// N·k picks exactly evenly. No dice, so no seed needed.
import type {Balancer, PickContext} from './balancer.js'
import {hasExclusions} from './eligible.js'

const TURNS = 2 ** 30

export class RoundRobinBalancer<T> implements Balancer<T> {
  private next = 0

  constructor(private readonly key: (t: T) => string) {}

  pick(candidates: readonly T[], ctx?: PickContext): T | undefined {
    const n = candidates.length
    if (n === 0) return undefined
    // One turn counter for every list this balancer is asked about (each version's
    // instances, a mirror's): reduced modulo the list at hand, not stored so — a pick from a
    // one-instance version must not send the next pick from a three-instance one back to
    // its first. Wrapped below 2^30 so the modulo stays a small-integer operation.
    const turn = this.next
    const start = turn % n
    this.next = (turn + 1) % TURNS
    if (!hasExclusions(ctx)) return candidates[start]
    // Walk on from our turn to the first one not tried yet; if all were, keep our turn.
    for (let step = 0; step < n; step++) {
      const i = (start + step) % n
      if (!ctx.exclude.has(this.key(candidates[i]))) {
        this.next = (turn + step + 1) % TURNS
        return candidates[i]
      }
    }
    return candidates[start]
  }
}
