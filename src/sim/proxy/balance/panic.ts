// Envoy's panic threshold: when too few of a destination's endpoints are available,
// sending everything to the few left would overload them too, so the balancer is
// given ALL endpoints (ejected and unhealthy included) and `panic` is reported for
// `mesh status` and the trace.
//
//   all endpoints ──isAvailable──▶ available ≥ threshold%?  yes ─▶ available
//                                                           no  ─▶ all (panic)

/** Envoy's default healthy_panic_threshold. */
export const DEFAULT_PANIC_THRESHOLD_PERCENT = 50

export interface Availability<T> {
  candidates: readonly T[]
  panic: boolean
}

/**
 * `thresholdPercent` 0 disables panic mode (an empty candidate list then means 503 UH).
 * When every endpoint is available the input array itself is returned: no allocation
 * on the healthy path.
 */
export function availableEndpoints<T>(
  all: readonly T[],
  isAvailable: (t: T) => boolean,
  thresholdPercent = DEFAULT_PANIC_THRESHOLD_PERCENT,
): Availability<T> {
  const n = all.length
  let available = 0
  for (let i = 0; i < n; i++) if (isAvailable(all[i])) available++
  if (available === n) return {candidates: all, panic: false}
  if (n > 0 && available * 100 < thresholdPercent * n) return {candidates: all, panic: true}
  const candidates: T[] = []
  for (let i = 0; i < n; i++) if (isAvailable(all[i])) candidates.push(all[i])
  return {candidates, panic: false}
}
