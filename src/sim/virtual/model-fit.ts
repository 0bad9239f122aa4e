// `mesh sim --fit`: a service's `simulate:` model, read off the spans a running mesh recorded.
// The model is what the simulated service does (model/simulated-service.ts, instance-model.ts):
// roll its calls, make them (in order, or all at once), then spend its own latency, then maybe
// fail. So each of those is measured from what the service did itself, not what the mesh did:
//
//   server span of S ──────────────────────────────────────────────▶  one request S served
//     client span S→A  ├────┤                                          its calls: parentId = the server span
//     client span S→B         ├──────┤                                 (one per logical call: a client span
//   own latency = server duration − the union of its calls' intervals   covers every retry the mesh made)
//
// - latency: the own times of requests that neither failed for a callee nor were answered by
//   the mesh (a timeout's span is cut short; a request that failed fast for a callee spent no
//   time of its own in the model). Log-normal by p50/p99 unless an exponential (by its mean)
//   is closer to the data in the Kolmogorov–Smirnov distance; when neither is close, the
//   empirical distribution as 101 percentiles (interpolated as `empirical` reads them, they
//   give back the measured p50 and p99 exactly).
// - errors: a 5xx the service itself answered, with no failed call under it, over the requests
//   with no failed call (the model rolls its own error only when its calls succeeded).
// - calls: per callee, logical calls over requests (above 1, the same callee is listed again:
//   a probability is at most 1); the path and method of its most common call; parallel when
//   most requests with two or more calls overlapped them.
//
// Retries are not part of the model: the mesh's policy makes them, and `mesh sim` runs that
// policy. A retried call is one call of the caller; each attempt is one request of the callee.
import {outcomeStatus} from '../proxy/grpc.js'
import {isErrorSpan, type Span, spanEndMs} from '../telemetry/span.js'
import {empiricalQuantile, exponentialPercentiles, Z99} from '../model/latency-model.js'
import type {SimulateConfig, SimulatedCall} from '../config/types.js'

/** Below this many measured requests a service is not fitted: its p99 would be one sample's. */
export const MIN_FIT_REQUESTS = 30

/** The fitted parts of a SimulateConfig: what a `simulate:` block written by --fit says. */
export type FittedModel = Pick<SimulateConfig, 'latency' | 'errorRate' | 'errorStatus' | 'callErrorStatus' | 'calls' | 'callMode'>

export interface ServiceFit {
  service: string
  /** Server spans of the service in the traces (every attempt it served). */
  requests: number
  /** Those whose own latency was measured (no failed call under them, not answered by the mesh). */
  measured: number
  model?: FittedModel
  /** Why the latency has the distribution it has. */
  latencyChoice?: string
  /** Why no model was fitted; set exactly when `model` is not. */
  skipped?: string
  notes: string[]
}

export interface FitOptions {
  minRequests?: number
}

/** Fits each of `services` (all that served a request in `spans` when absent) from the spans. */
export function fitModels(spans: readonly Span[], services?: readonly string[], options: FitOptions = {}): ServiceFit[] {
  const minRequests = options.minRequests ?? MIN_FIT_REQUESTS
  const served = new Map<string, Span[]>()
  const children = new Map<string, Span[]>()
  // Client spans of a service that carry no parent: calls made without the trace context.
  const untraced = new Map<string, number>()
  for (const span of spans) {
    if (span.kind === 'server') push(served, span.service, span)
    else if (span.parentId) push(children, `${span.traceId}/${span.parentId}`, span)
    else untraced.set(span.service, (untraced.get(span.service) ?? 0) + 1)
  }
  const names = services ?? [...served.keys()].sort()
  return names.map((service) => fitService(service, served.get(service) ?? [], (s) => children.get(`${s.traceId}/${s.spanId}`) ?? [], untraced.get(service) ?? 0, minRequests))
}

function fitService(service: string, requests: Span[], callsOf: (s: Span) => Span[], untraced: number, minRequests: number): ServiceFit {
  const fit: ServiceFit = {service, requests: requests.length, measured: 0, notes: []}
  if (untraced > 0.1 * requests.length && untraced > 0) {
    fit.skipped =
      `${untraced} of its calls carry no trace context, so the time it waited on them cannot be told from its own: ` +
      'forward the traceparent header it receives on the calls it makes, then fit again'
    return fit
  }
  const own: number[] = []
  let clean = 0
  let ownErrors = 0
  const errorStatuses = new Map<number, number>()
  /** What it answered when a call of its failed (a 5xx of its own, the mesh not in between). */
  const callErrorStatuses = new Map<number, number>()
  const perCallee = new Map<string, {calls: number; firstStart: number; firsts: number; routes: Map<string, number>}>()
  let multi = 0
  let overlapped = 0
  let unrouted = 0
  for (const request of requests) {
    const all = callsOf(request)
    // A call the mesh found no service for (NR) is not a call the model can make.
    const calls = all.filter((c) => c.peerService !== undefined && c.peerService !== 'unknown')
    unrouted += all.length - calls.length
    for (const call of calls) {
      const callee = call.peerService!
      const entry = perCallee.get(callee) ?? {calls: 0, firstStart: 0, firsts: 0, routes: new Map()}
      entry.calls++
      const route = `${call.method} ${pathOnly(call.path)}`
      entry.routes.set(route, (entry.routes.get(route) ?? 0) + 1)
      perCallee.set(callee, entry)
    }
    // Where each callee's first call starts in the request: the order sequential calls are listed in.
    const seen = new Set<string>()
    for (const call of [...calls].sort((a, b) => a.startMs - b.startMs)) {
      const callee = call.peerService!
      if (seen.has(callee)) continue
      seen.add(callee)
      const entry = perCallee.get(callee)!
      entry.firstStart += call.startMs - request.startMs
      entry.firsts++
    }
    if (calls.length >= 2) {
      multi++
      if (overlaps(calls)) overlapped++
    }
    // The mesh answered (a timeout, a refusal, a cut body) or nothing did: not the service's doing.
    if (request.cause !== undefined || request.responseFlags || request.status === 0) continue
    const status = outcomeStatus(request)
    if (all.some(isErrorSpan)) {
      if (status >= 500) callErrorStatuses.set(status, (callErrorStatuses.get(status) ?? 0) + 1)
      continue
    }
    clean++
    if (status >= 500) {
      ownErrors++
      errorStatuses.set(status, (errorStatuses.get(status) ?? 0) + 1)
    }
    own.push(Math.max(0, request.durationMs - busyMs(request, all)))
  }
  fit.measured = own.length
  if (own.length < minRequests) {
    fit.skipped =
      requests.length === 0
        ? 'no request of it in the traces: drive some load through the mesh, then fit again'
        : `only ${own.length} of its requests could be measured (at least ${minRequests} are needed): drive more load through the mesh, then fit again`
    return fit
  }
  const {latency, why} = fitLatency(own)
  fit.latencyChoice = why
  const calls: SimulatedCall[] = []
  const order = [...perCallee.entries()].sort(([, a], [, b]) => a.firstStart / a.firsts - b.firstStart / b.firsts)
  for (const [callee, entry] of order) {
    const [route] = [...entry.routes.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]
    const space = route.indexOf(' ')
    const call = {service: callee, method: route.slice(0, space), path: route.slice(space + 1)}
    // More than one call a request: the callee listed again, each entry at most certain.
    for (let left = entry.calls / requests.length; left > 0.0005; left -= 1) calls.push({...call, probability: round(Math.min(1, left), 3)})
    if (entry.routes.size > 1) fit.notes.push(`calls to ${callee} take ${entry.routes.size} routes; the model calls the most common, ${route}`)
  }
  if (unrouted > 0) fit.notes.push(`${unrouted} of its calls reached no service (no route): left out of the model`)
  const callMode = multi > 0 && overlapped * 2 > multi ? 'parallel' : 'sequential'
  if (multi > 0 && overlapped > 0 && overlapped < multi) fit.notes.push(`its calls overlapped in ${overlapped} of ${multi} requests with two or more: ${callMode}`)
  const errorStatus = mostCommon(errorStatuses) ?? 500
  if (errorStatuses.size > 1) fit.notes.push(`it answered ${errorStatuses.size} error statuses; the model answers the most common, ${errorStatus}`)
  const callErrorStatus = mostCommon(callErrorStatuses) ?? 500
  if (callErrorStatuses.size > 1) fit.notes.push(`it answered ${callErrorStatuses.size} statuses when a call of its failed; the model answers the most common, ${callErrorStatus}`)
  fit.model = {latency, errorRate: round(ownErrors / clean, 4), errorStatus, ...(callErrorStatus === 500 ? {} : {callErrorStatus}), calls, callMode}
  return fit
}

/** The status seen most often (the lower of two as often), or undefined for none. */
function mostCommon(counts: ReadonlyMap<number, number>): number | undefined {
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]?.[0]
}

/** Time within the request's window during which at least one of its calls was under way. */
export function busyMs(request: Span, calls: readonly Span[]): number {
  const start = request.startMs
  const end = spanEndMs(request)
  const intervals = calls
    .map((c) => [Math.max(start, c.startMs), Math.min(end, spanEndMs(c))] as const)
    .filter(([a, b]) => b > a)
    .sort((x, y) => x[0] - y[0])
  let busy = 0
  let from = intervals[0]?.[0] ?? 0
  let to = from
  for (const [a, b] of intervals) {
    if (a > to) {
      busy += Math.max(0, to - from)
      from = a
      to = b
    } else to = Math.max(to, b)
  }
  return busy + Math.max(0, to - from)
}

/** Some two calls were under way at once (a call issued the moment another returned did not overlap it). */
function overlaps(calls: readonly Span[]): boolean {
  const sorted = [...calls].sort((a, b) => a.startMs - b.startMs)
  let end = -Infinity
  for (const c of sorted) {
    if (c.startMs < end) return true
    end = Math.max(end, spanEndMs(c))
  }
  return false
}

/** Above this Kolmogorov–Smirnov distance (or the 1% critical value, for few samples) a shape does not fit. */
const KS_FITS = 0.1

/**
 * The latency's distribution. Log-normal by default: it is mesh.yaml's own shape, and it
 * reproduces the measured p50 and p99 exactly, which are what `mesh stat` and `mesh sim` compare.
 * Exponential when it is closer to the data (a memoryless service: its capacity is then M/M/c's).
 * Empirical when neither is close and there are enough samples to draw percentiles from.
 */
export function fitLatency(samplesMs: readonly number[]): {latency: FittedModel['latency']; why: string} {
  const sorted = [...samplesMs].sort((a, b) => a - b)
  const p50 = roundMs(empiricalQuantile(sorted, 0.5))
  const p99 = roundMs(Math.max(p50, empiricalQuantile(sorted, 0.99)))
  const mean = sorted.reduce((s, x) => s + x, 0) / sorted.length
  if (p99 === p50) return {latency: {p50Ms: p50, p99Ms: p99}, why: `constant: p50 = p99 over the ${sorted.length} samples`}
  const ks = {lognormal: ksDistance(sorted, lognormalCdf(p50, p99)), exponential: ksDistance(sorted, (x) => 1 - Math.exp(-x / mean))}
  const fits = Math.max(KS_FITS, 1.63 / Math.sqrt(sorted.length))
  const d = (x: number) => x.toFixed(3)
  if (Math.min(ks.lognormal, ks.exponential) > fits && sorted.length >= 100) {
    const samplesMs = Array.from({length: 101}, (_, i) => roundMs(empiricalQuantile(sorted, i / 100)))
    return {
      latency: {p50Ms: samplesMs[50], p99Ms: samplesMs[99], distribution: 'empirical', samplesMs},
      why: `empirical (its 101 percentiles): neither a log-normal (KS distance ${d(ks.lognormal)}) nor an exponential (${d(ks.exponential)}) is within ${d(fits)} of the ${sorted.length} samples`,
    }
  }
  if (ks.exponential < ks.lognormal && mean > 0) {
    const meanMs = roundMs(mean)
    return {
      latency: {...exponentialPercentiles(meanMs), distribution: 'exponential', meanMs},
      why: `exponential by its mean: closer to the ${sorted.length} samples (KS distance ${d(ks.exponential)}) than a log-normal by p50/p99 (${d(ks.lognormal)})`,
    }
  }
  return {
    latency: {p50Ms: p50, p99Ms: p99},
    why: `log-normal by p50/p99 (KS distance ${d(ks.lognormal)} to the ${sorted.length} samples; an exponential: ${d(ks.exponential)})`,
  }
}

/** The largest gap between the samples' step CDF and `cdf`. */
function ksDistance(sorted: readonly number[], cdf: (x: number) => number): number {
  const n = sorted.length
  let d = 0
  // Per distinct value: the step's foot (samples below it) and top (samples up to it).
  for (let i = 0, j = 0; i < n; i = j) {
    while (j < n && sorted[j] === sorted[i]) j++
    const f = cdf(sorted[i])
    d = Math.max(d, Math.abs(f - i / n), Math.abs(j / n - f))
  }
  return d
}

/** The CDF of latency-model.ts's log-normal for p50/p99 (a step at p50 when p99 = p50: a constant). */
function lognormalCdf(p50: number, p99: number): (x: number) => number {
  if (!(p50 > 0) || p99 <= p50) return (x) => (x < p50 ? 0 : 1)
  const mu = Math.log(p50)
  const sigma = Math.log(p99 / p50) / Z99
  return (x) => (x <= 0 ? 0 : normalCdf((Math.log(x) - mu) / sigma))
}

/** Φ(z) by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): plenty for a distance compared with 0.1. */
function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2
  const t = 1 / (1 + 0.3275911 * x)
  const erf = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x)
  return z >= 0 ? (1 + erf) / 2 : (1 - erf) / 2
}

function pathOnly(path: string): string {
  const q = path.indexOf('?')
  return q < 0 ? path : path.slice(0, q)
}

/** Three significant figures, at most microseconds: what a duration in mesh.yaml can say. */
function roundMs(ms: number): number {
  if (!(ms > 0)) return 0
  const step = 10 ** (Math.floor(Math.log10(ms)) - 2)
  return Math.max(0.001, Math.round(Math.round(ms / step) * step * 1000) / 1000)
}

function round(x: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key)
  if (list) list.push(value)
  else map.set(key, [value])
}
