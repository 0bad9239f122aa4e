// Least request, as Envoy's LEAST_REQUEST with its default choice_count of 2: draw
// two endpoints at random and send to the one with fewer requests in flight. P2C
// avoids the herd that "always the global minimum" causes, at O(1) per pick.
import type {Random} from '../../time/random.js'
import type {Balancer, PickContext} from './balancer.js'
import {pickTwoChoices} from './eligible.js'

export class LeastRequestBalancer<T> implements Balancer<T> {
  private readonly inFlight = new Map<string, number>()
  private readonly scratch = new Int32Array(2)
  private readonly cost = (t: T): number => this.inFlight.get(this.key(t)) ?? 0

  constructor(
    private readonly random: Random,
    private readonly key: (t: T) => string,
  ) {}

  pick(candidates: readonly T[], ctx?: PickContext): T | undefined {
    return pickTwoChoices(candidates, ctx, this.random, this.key, this.cost, this.scratch)
  }

  onStart(t: T): void {
    const k = this.key(t)
    this.inFlight.set(k, (this.inFlight.get(k) ?? 0) + 1)
  }

  onEnd(t: T): void {
    const k = this.key(t)
    const n = this.inFlight.get(k)
    // Entries stay at 0 rather than being deleted: Map churn costs more than the
    // pick itself. forget() drops endpoints that left.
    if (n !== undefined && n > 0) this.inFlight.set(k, n - 1)
  }

  forget(key: string): void {
    this.inFlight.delete(key)
  }

  /** Requests in flight to `key` (for the trace's "why this endpoint"). */
  pending(key: string): number {
    return this.inFlight.get(key) ?? 0
  }

  tracked(): number {
    return this.inFlight.size
  }
}
