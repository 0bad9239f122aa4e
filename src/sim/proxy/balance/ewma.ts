// Peak-EWMA, as linkerd2-proxy's balancer (tower's `PeakEwma`) with P2C: an
// endpoint's cost is its latency estimate × (in-flight + 1), and of two endpoints
// drawn at random the cheaper one gets the request.
//
// The estimate is "peaky": a response slower than the estimate replaces it at once,
// so one slow endpoint is avoided immediately; faster responses, and plain time,
// pull it down with weight 1 - e^(-elapsed/τ). Because idle time decays it towards 0,
// an endpoint that was slow is eventually probed again and, if it recovered, wins
// its share back.
import type {Clock} from '../../time/clock.js'
import type {Random} from '../../time/random.js'
import type {Balancer, PickContext} from './balancer.js'
import {pickTwoChoices} from './eligible.js'

/** linkerd2-proxy's defaults: a new endpoint is assumed to answer in 30 ms; τ = 10 s. */
export const DEFAULT_RTT_MS = 30
export const DEFAULT_DECAY_MS = 10_000

interface Estimate {
  rttMs: number
  updatedAt: number
  pending: number
}

export class EwmaBalancer<T> implements Balancer<T> {
  private readonly estimates = new Map<string, Estimate>()
  private readonly scratch = new Int32Array(2)
  private readonly cost = (t: T): number => {
    const e = this.estimateOf(this.key(t))
    return this.decay(e, 0) * (e.pending + 1)
  }

  constructor(
    private readonly clock: Clock,
    private readonly random: Random,
    private readonly key: (t: T) => string,
    private readonly options: {defaultRttMs?: number; decayMs?: number} = {},
  ) {}

  pick(candidates: readonly T[], ctx?: PickContext): T | undefined {
    return pickTwoChoices(candidates, ctx, this.random, this.key, this.cost, this.scratch)
  }

  onStart(t: T): void {
    this.estimateOf(this.key(t)).pending++
  }

  onEnd(t: T, latencyMs: number): void {
    // An attempt that ends after its endpoint left (and was forgotten) must not bring its entry back.
    const e = this.estimates.get(this.key(t))
    if (e === undefined) return
    if (e.pending > 0) e.pending--
    this.decay(e, latencyMs)
  }

  forget(key: string): void {
    this.estimates.delete(key)
  }

  pending(key: string): number {
    return this.estimates.get(key)?.pending ?? 0
  }

  tracked(): number {
    return this.estimates.size
  }

  /** The current cost of `key` (decayed to now), for the trace's "why this endpoint". */
  costOf(key: string): number {
    const e = this.estimateOf(key)
    return this.decay(e, 0) * (e.pending + 1)
  }

  /** tower's RttEstimate::update: a peak replaces the estimate, anything lower decays towards it. */
  private decay(e: Estimate, rttMs: number): number {
    const now = this.clock.now()
    if (e.rttMs < rttMs) {
      e.rttMs = rttMs
    } else {
      const elapsed = now - e.updatedAt
      if (elapsed > 0) {
        const w = Math.exp(-elapsed / (this.options.decayMs ?? DEFAULT_DECAY_MS))
        e.rttMs = e.rttMs * w + rttMs * (1 - w)
      }
    }
    e.updatedAt = now
    return e.rttMs
  }

  private estimateOf(key: string): Estimate {
    let e = this.estimates.get(key)
    if (e === undefined) {
      e = {rttMs: this.options.defaultRttMs ?? DEFAULT_RTT_MS, updatedAt: this.clock.now(), pending: 0}
      this.estimates.set(key, e)
    }
    return e
  }
}
