// Round robin: each pick takes the next candidate in turn, so N candidates share any
// N·k picks exactly evenly. No dice, so no seed needed.
import type {Balancer, PickContext} from './balancer.js'
import {hasExclusions} from './eligible.js'

export class RoundRobinBalancer<T> implements Balancer<T> {
  private next = 0

  constructor(private readonly key: (t: T) => string) {}

  pick(candidates: readonly T[], ctx?: PickContext): T | undefined {
    const n = candidates.length
    if (n === 0) return undefined
    // Kept below 2^31 so the modulo stays a small-integer operation.
    const start = this.next % n
    this.next = (start + 1) % n
    if (!hasExclusions(ctx)) return candidates[start]
    // Walk on from our turn to the first one not tried yet; if all were, keep our turn.
    for (let step = 0; step < n; step++) {
      const i = (start + step) % n
      if (!ctx.exclude.has(this.key(candidates[i]))) {
        this.next = (i + 1) % n
        return candidates[i]
      }
    }
    return candidates[start]
  }
}
