// What `mesh sim` reports, made from the spans the stack records — the same spans `mesh stat`
// and `mesh trace` read in a running mesh, handed to this sink instead of the daemon's
// telemetry. A client span is one call as its caller saw it (retries included); a server
// span is one attempt that reached an instance. Memory is fixed per service and per step
// of the series: a histogram each, never a list of requests.
import type {ServiceConfig} from '../config/types.js'
import type {TelemetrySink} from '../proxy/telemetry-sink.js'
import {LatencyHistogram} from '../telemetry/histogram.js'
import {isSuccessOutcome, type Span} from '../telemetry/span.js'
import type {SimPoint, SimServiceStats} from './sim-result.js'
import type {Station} from './station.js'

class ServiceTally {
  requests = 0
  successes = 0
  actual = 0
  actualSuccesses = 0
  retries = 0
  budgetDenied = 0
  ejections = 0
  breakerRefusals = 0
  rateLimited = 0
  readonly latency = new LatencyHistogram()
  // The current step of the series.
  stepRequests = 0
  stepSuccesses = 0
  stepLatency = new LatencyHistogram()
  readonly stations: Station[] = []

  constructor(
    readonly name: string,
    /** policy.retries.attempts (0: none): a failed call with attempts left and the budget at 0 was budget-denied. */
    readonly retryAttempts: number,
  ) {}
}

export class SimStats implements TelemetrySink {
  private readonly tallies = new Map<string, ServiceTally>()
  readonly errorsByCause: Record<string, number> = {}
  readonly series: SimPoint[] = []
  /** Sampled traces' ids (the ingress call ends last, and takes its id out). */
  private readonly sampled = new Set<string>()
  /** Instances ready of a service that scales (undefined for one that does not): each point says it. */
  readyOf: (service: string) => number | undefined = () => undefined

  constructor(
    services: readonly ServiceConfig[],
    private readonly onSampledSpan?: (span: Span) => void,
  ) {
    for (const s of services) this.tallies.set(s.name, new ServiceTally(s.name, s.policy.retries?.attempts ?? 0))
  }

  /** The instances' stations of `service`, for queueing figures and utilisation. */
  addStation(service: string, station: Station): void {
    this.tallies.get(service)?.stations.push(station)
  }

  sample(traceId: string): void {
    if (this.onSampledSpan) this.sampled.add(traceId)
  }

  ejected(service: string): void {
    const t = this.tallies.get(service)
    if (t) t.ejections++
  }

  record(span: Span): void {
    if (this.sampled.size > 0 && this.sampled.has(span.traceId)) {
      this.onSampledSpan!(span)
      if (span.kind === 'client' && span.service === 'ingress') this.sampled.delete(span.traceId)
    }
    if (span.kind === 'server') {
      const t = this.tallies.get(span.service)
      if (!t) return
      t.actual++
      if (isSuccessOutcome(span)) t.actualSuccesses++
      return
    }
    const t = span.peerService === undefined ? undefined : this.tallies.get(span.peerService)
    if (!t) return
    // The rule `mesh stat` counts by (span.ts, isSuccessOutcome): a gRPC call by its grpc-status, and a 429 a success.
    const ok = isSuccessOutcome(span)
    t.requests++
    t.stepRequests++
    t.latency.record(span.durationMs)
    t.stepLatency.record(span.durationMs)
    const attempts = span.attempt ?? 1
    if (attempts > 1) t.retries += attempts - 1
    const flags = span.responseFlags
    if (ok) {
      t.successes++
      t.stepSuccesses++
      // A 429 counts as a success (as in mesh stat's rate), but the mesh refused it: say why.
      if (flags === 'RL' || flags === 'TH') {
        if (flags === 'RL') t.rateLimited++
        this.errorsByCause[flags] = (this.errorsByCause[flags] ?? 0) + 1
      }
      return
    }
    if (flags === 'UO') t.breakerRefusals++
    else if (flags === 'RL') t.rateLimited++
    if (t.retryAttempts > 0 && attempts <= t.retryAttempts && span.decision?.retryBudgetLeft === 0) t.budgetDenied++
    const cause = flags ?? (span.status >= 500 ? '5xx' : `HTTP ${span.status}`)
    this.errorsByCause[cause] = (this.errorsByCause[cause] ?? 0) + 1
  }

  /** Closes the step that began at `atMs` (`stepMs` long): one point per service. */
  endStep(atMs: number, stepMs: number): void {
    for (const t of this.tallies.values()) {
      let queueDepth = 0
      for (const s of t.stations) queueDepth += s.queued
      const instances = this.readyOf(t.name)
      this.series.push({
        atMs,
        service: t.name,
        rps: round((t.stepRequests * 1000) / stepMs),
        successRate: t.stepRequests ? round(t.stepSuccesses / t.stepRequests) : 1,
        p99: round(t.stepLatency.percentile(0.99)),
        queueDepth,
        ...(instances === undefined ? {} : {instances}),
      })
      t.stepRequests = 0
      t.stepSuccesses = 0
      t.stepLatency = new LatencyHistogram()
    }
  }

  /**
   * Services offered more work than their slots can do: arrival rate × mean slot time ÷ slots
   * ≥ 1 (unbounded concurrency never queues, so it is never unstable). Their queues grow for
   * as long as the run lasts, so their latencies say how long it was, not how the service behaves.
   */
  unstable(elapsedMs: number): Array<{service: string; utilisation: number}> {
    const out: Array<{service: string; utilisation: number}> = []
    for (const t of this.tallies.values()) {
      let arrived = 0, served = 0, finished = 0, slots = 0, slotMs = 0, queued = 0
      for (const s of t.stations) {
        if (s.concurrency === 0) continue
        arrived += s.totals.arrived
        served += s.totals.servedMs
        finished += s.totals.finished
        slots += s.concurrency
        slotMs += s.concurrency * s.aliveMs(elapsedMs)
        queued += s.queued
      }
      if (slots === 0 || arrived === 0 || slotMs <= 0) continue
      const offered = finished ? (arrived * (served / finished)) / slotMs : queued > 0 ? 1 : 0
      if (offered >= 1) out.push({service: t.name, utilisation: round(offered)})
    }
    return out
  }

  /** Each service over the run of `durationMs` (virtual), in config order. */
  services(durationMs: number): SimServiceStats[] {
    return [...this.tallies.values()].map((t) => {
      const [p50, p95, p99, p999] = t.latency.percentiles([0.5, 0.95, 0.99, 0.999])
      let waited = 0, served = 0, started = 0, finished = 0, busy = 0, inSystem = 0, sojourn = 0, departed = 0, slots = 0
      // Instance-time and slot-time: an instance the autoscaler added or took away counts while it was there.
      let aliveMs = 0, slotMs = 0
      let unbounded = false
      for (const s of t.stations) {
        s.account()
        const x = s.totals
        waited += x.waitedMs
        served += x.servedMs
        started += x.started
        finished += x.finished
        busy += x.busySlotMs
        inSystem += x.inSystemMs
        sojourn += x.sojournMs
        departed += x.departed
        if (s.concurrency === 0) unbounded = true
        slots += s.concurrency
        const alive = s.aliveMs(durationMs)
        aliveMs += alive
        slotMs += s.concurrency * alive
      }
      const meanInFlight = durationMs > 0 ? inSystem / durationMs : 0
      const lambda = durationMs > 0 ? departed / durationMs : 0
      const W = departed ? sojourn / departed : 0
      const utilisation = durationMs <= 0 || t.stations.length === 0 || aliveMs <= 0 ? 0 : unbounded ? busy / aliveMs : busy / slotMs
      return {
        service: t.name,
        requests: t.requests,
        successRate: t.requests ? round(t.successes / t.requests) : 1,
        actualRequests: t.actual,
        actualSuccessRate: t.actual ? round(t.actualSuccesses / t.actual) : 1,
        meanMs: round(t.latency.count ? t.latency.sumMs / t.latency.count : 0),
        p50: round(p50),
        p95: round(p95),
        p99: round(p99),
        p999: round(p999),
        retries: t.retries,
        retriesBudgetDenied: t.budgetDenied,
        ejections: t.ejections,
        breakerRefusals: t.breakerRefusals,
        rateLimited: t.rateLimited,
        queueMsMean: round(started ? waited / started : 0),
        serviceMsMean: round(finished ? served / finished : 0),
        slots: unbounded ? 0 : slots,
        utilisation: round(utilisation),
        meanInFlight: round(meanInFlight),
        littleLambdaW: round(lambda * W),
      }
    })
  }
}

/** Six significant decimals: enough for any figure shown, and the same bytes on every machine. */
function round(x: number): number {
  return Number.isFinite(x) ? Math.round(x * 1e6) / 1e6 : 0
}
