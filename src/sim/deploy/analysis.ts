// Canary analysis as Flagger and Argo Rollouts do it: the canary's success rate and
// p99 over the last interval against thresholds, and optionally against the
// primary. Too few requests is "inconclusive", never a pass.
import type {Analysis, CanaryOptions} from './deploy-types.js'

export interface VersionSignals {
  requests: number
  successRate?: number
  p99Ms?: number
}

export function analyse(canary: VersionSignals, primary: VersionSignals | undefined, opts: CanaryOptions): Analysis {
  const reasons: string[] = []
  if (canary.requests < opts.minRequests || canary.successRate === undefined) {
    return {
      verdict: 'inconclusive',
      requests: canary.requests,
      reasons: [
        `only ${canary.requests} canary requests in the interval (need ${opts.minRequests}); ` +
          (opts.loadRps ? `raise --load (${opts.loadRps}/s now) or --interval` : 'use --load to drive traffic'),
      ],
    }
  }
  const errorRate = 1 - canary.successRate
  let limit = opts.maxErrorRate
  if (opts.compareToPrimary && primary?.successRate !== undefined && primary.requests >= opts.minRequests) {
    // Relative to the primary: the canary may be as bad as the primary plus the allowance.
    limit = 1 - primary.successRate + opts.maxErrorRate
  }
  // A hair of slack: 1 - 0.99 is a little more than 0.01 in floating point.
  if (errorRate > limit + 1e-9) reasons.push(`error rate ${pct(errorRate)} > ${pct(limit)}`)
  if (opts.maxP99Ms !== undefined && canary.p99Ms !== undefined && canary.p99Ms > opts.maxP99Ms) {
    reasons.push(`p99 ${Math.round(canary.p99Ms)}ms > ${opts.maxP99Ms}ms`)
  }
  if (opts.compareToPrimary && primary?.p99Ms !== undefined && canary.p99Ms !== undefined && canary.p99Ms > primary.p99Ms * 1.5 + 5) {
    reasons.push(`p99 ${Math.round(canary.p99Ms)}ms > 1.5 × primary's ${Math.round(primary.p99Ms)}ms`)
  }
  return {
    verdict: reasons.length ? 'fail' : 'pass',
    requests: canary.requests,
    successRate: canary.successRate,
    p99Ms: canary.p99Ms,
    primary: primary && {requests: primary.requests, successRate: primary.successRate, p99Ms: primary.p99Ms},
    reasons,
  }
}

const pct = (x: number) => `${(x * 100).toFixed(x < 0.1 ? 2 : 1)}%`
