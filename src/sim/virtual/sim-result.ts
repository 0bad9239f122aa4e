// What `mesh sim` runs and what it reports (issue #24): the contract between the
// virtual-time engine (virtual/simulation.ts), its renderers (tables, sparklines, CSV)
// and what-if sweeps. Everything in a SimResult is a function of the config, the flags
// and the seed — no wall-clock figure — so `--json` is byte-identical run to run.
import type {LoadShape} from '../load/arrival-schedule.js'
import type {ChaosScenario} from '../faults/chaos-scenario.js'
import type {Span} from '../telemetry/span.js'

export interface SimOptions {
  /** Arrivals at the ingress (the same shapes as `mesh load` and chaos phases). */
  shape: LoadShape
  seed: number
  /** Chaos steps and expectations played on the virtual timeline; its load replaces `shape`. */
  scenario?: ChaosScenario
  /** Keep one trace in this many ingress requests (0: none) for `--traces FILE`. */
  traceSampleEvery?: number
  /** Where the sampled requests' spans go (each hop's client and server span, as the trace store records them). */
  onSpan?: (span: Span) => void
  /** Added to every attempt: what one hop through a running mesh's sidecars and loopback takes (ms, default 0). */
  hopLatencyMs?: number
  /** Width of one point of `series`, virtual ms (default 1000). */
  seriesStepMs?: number
}

/** One service over the whole run, as `mesh stat` shows a service (times in virtual ms). */
export interface SimServiceStats {
  service: string
  /** Calls as callers saw them (after retries); for the ingress' target, ingress requests. */
  requests: number
  /** Effective success (what callers saw), 0..1. */
  successRate: number
  /** Attempts that reached an instance. */
  actualRequests: number
  actualSuccessRate: number
  meanMs: number
  p50: number
  p95: number
  p99: number
  p999: number
  retries: number
  /** Retries the retry budget refused. */
  retriesBudgetDenied: number
  ejections: number
  breakerRefusals: number
  rateLimited: number
  /** Mean time an attempt waited for a free slot of an instance (concurrency queue). */
  queueMsMean: number
  /** Mean time an instance worked on an attempt (service time, its downstream calls included). */
  serviceMsMean: number
  /** Its instances' concurrency slots together; 0: no concurrency limit, so it never queues. */
  slots: number
  /** Busy slots / slots over the run, 0..1 (unbounded concurrency: mean in-flight / replicas). */
  utilisation: number
  /** Little's law check: mean in flight (time-weighted) and λ·W, for the fidelity tests. */
  meanInFlight: number
  littleLambdaW: number
}

/** One service in one step of virtual time. */
export interface SimPoint {
  /** Start of the step, virtual ms from the run's start. */
  atMs: number
  service: string
  rps: number
  successRate: number
  p99: number
  /** Attempts waiting for a slot at the step's end. */
  queueDepth: number
  /** Instances ready at the step's end; only for a service with a `scaling:` version (the autoscaler moves it). */
  instances?: number
}

/** What the autoscaler did, as `mesh top`'s event log says it (times in virtual ms). */
export interface SimScalingEvent {
  atMs: number
  service: string
  version: string
  /** `scaled`: from → to (from zero: when the cold start was over); `scale-failed`: a start failed. */
  kind: 'scaled' | 'scale-failed'
  from?: number
  to?: number
  /** From zero: the first held request's wait to the instance's readiness, ms. */
  coldStartMs?: number
  /** "0 → 1: a request is waiting (cold start 412 ms)". */
  message: string
}

export interface SimResult {
  seed: number
  durationMs: number
  ingressRequests: number
  /** Hops: attempts that went through a sidecar stack into a service model. */
  hopRequests: number
  services: SimServiceStats[]
  /** Failed calls by the reason the mesh gave (response flag, e.g. UO, URX, UT) or `5xx` from a service. */
  errorsByCause: Record<string, number>
  series: SimPoint[]
  /** Services whose arrival rate exceeded capacity: the run's latencies reflect its length, not a steady state. */
  unstable: Array<{service: string; utilisation: number}>
  /** Each decision of the autoscaler that changed a count (absent when no version has `scaling:`). */
  scaling?: SimScalingEvent[]
  /** The scenario's expectations, judged as `mesh chaos` judges them (absent without --scenario). */
  expectations?: Array<{text: string; phase: number | 'overall'; actual: number; passed: boolean}>
}
