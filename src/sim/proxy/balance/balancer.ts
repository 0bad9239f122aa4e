// A load balancer picks one endpoint of a destination for one attempt. It sits below
// the retry layer (a retry may pick another endpoint) and sees only candidates the
// caller already filtered: ejected and unhealthy endpoints are gone, or, in panic
// mode, everything is back (see panic.ts).
//
//   retry ─▶ availableEndpoints() ─▶ balancer.pick(candidates, {hashKey, exclude}) ─▶ attempt
//                                         ▲ onStart(t)            onEnd(t, ms, ok) ┘
//
// Generic over the endpoint type: the data plane hands its own `Endpoint` objects
// and a `key` function (`(e) => e.instance`), so nothing is wrapped per request.
// State that outlives a pick (in-flight counts, latency estimates) is keyed by that
// string, so a balancer survives the candidate list being rebuilt.
import type {Clock} from '../../time/clock.js'
import type {Random} from '../../time/random.js'

export interface PickContext {
  /** ring-hash: the value of the configured header or cookie; without it ring-hash picks at random. */
  hashKey?: string
  /** Keys of endpoints tried already by this request: avoided whenever any other candidate exists. */
  exclude?: ReadonlySet<string>
}

export interface Balancer<T> {
  /** `candidates` are already filtered to available endpoints; undefined only when it is empty. */
  pick(candidates: readonly T[], ctx?: PickContext): T | undefined
  /** An attempt was sent to `t` (least-request and ewma count in-flight requests). */
  onStart?(t: T): void
  /** The attempt to `t` ended after `latencyMs`; `ok` is false for errors and timeouts. */
  onEnd?(t: T, latencyMs: number, ok: boolean): void
  /** Drop any state kept for this key (the endpoint left the destination). */
  forget?(key: string): void
  /** Attempts in flight to `key` as this balancer counts them (least-request, ewma): 0 once they all ended. */
  pending?(key: string): number
  /** How many keys it holds state for: only endpoints still in the destination, once the others are forgotten. */
  tracked?(): number
}

export interface BalancerDeps<T> {
  clock: Clock
  random: Random
  key: (t: T) => string
}
