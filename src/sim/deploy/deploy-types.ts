// Deploys move traffic from a service's current version to a new one, step by step,
// against the registry and the live metrics. A strategy is an async generator of
// steps: the controller in the daemon drains it, the CLI renders the steps, and a
// test simply collects them.
import type {ServiceConfig, VersionConfig} from '../config/types.js'
import type {Clock} from '../time/clock.js'

export type Strategy = 'rolling' | 'blue-green' | 'canary' | 'restart'

export interface VersionOverrides {
  command?: string
  env?: Record<string, string>
  /** `simulate.errorRate=0.2` style assignments on the new version's config. */
  set?: Record<string, string>
}

export interface RollingOptions {
  maxSurge: number
  maxUnavailable: number
}

export interface BlueGreenOptions {
  /** `GET /healthz` sent to every green instance alone before the switch. */
  smoke?: {method: string; path: string}
  /** How long blue is kept after the switch, so `mesh rollback` is instant. */
  keepMs: number
}

export interface CanaryOptions {
  /** Traffic percentages, ending at 100. */
  steps: number[]
  intervalMs: number
  /** 0..1 */
  maxErrorRate: number
  maxP99Ms?: number
  compareToPrimary: boolean
  failureThreshold: number
  /** Header-matched traffic first (`x-canary=true`), one interval, before any weight. */
  match?: {name: string; value: string}
  /** First a copy of every request (Flagger's traffic mirroring), one interval, answers discarded. */
  mirror?: boolean
  /** Analysis needs at least this many canary requests per interval, else it is inconclusive. */
  minRequests: number
  /** Drive this much load through the ingress during the analysis. */
  loadRps?: number
}

export interface DeployPlan {
  service: string
  /** The version deployed; for a restart, the versions restarted (comma-separated; '' = all, filled in when it starts). */
  to: string
  strategy: Strategy
  overrides?: VersionOverrides
  rolling?: RollingOptions
  blueGreen?: BlueGreenOptions
  canary?: CanaryOptions
  /** Give up when a new instance is not healthy within this long. */
  progressDeadlineMs: number
  /**
   * An acceptance test (Flagger's pre-rollout webhook): a shell command run once the new
   * instances are healthy, before any traffic moves to them; a non-zero exit rolls back.
   * Canary and blue-green only.
   */
  check?: string
}

/** Whether a deploy moves traffic between versions: a restart replaces processes and leaves the weights alone. */
export function shiftsTraffic(plan: DeployPlan): boolean {
  return plan.strategy !== 'restart'
}

export type StepKind =
  /** Canary `--load`: where the traffic goes. */
  | 'load'
  | 'start'
  | 'scale-up'
  | 'scale-down'
  | 'weights'
  | 'smoke'
  | 'check'
  | 'analysis'
  | 'switch'
  | 'keep'
  | 'promote'
  | 'rollback'
  | 'done'
  | 'failed'

export interface Analysis {
  verdict: 'pass' | 'fail' | 'inconclusive'
  requests: number
  successRate?: number
  p99Ms?: number
  primary?: {requests: number; successRate?: number; p99Ms?: number}
  reasons: string[]
}

export interface DeployStep {
  kind: StepKind
  message: string
  at: string
  weights?: Record<string, number>
  analysis?: Analysis
}

/** `restarted`: a restart's outcome (its version stays); `promoted`: a deploy that moved traffic to its version. */
export type DeployOutcome = 'running' | 'promoted' | 'restarted' | 'rolled-back' | 'failed'

/** The deploy did what it was asked: the new version took the traffic, or every instance was replaced. */
export function succeeded(outcome: DeployOutcome): boolean {
  return outcome === 'promoted' || outcome === 'restarted'
}

export interface DeployRecord {
  id: string
  plan: DeployPlan
  from: string[]
  outcome: DeployOutcome
  startedAt: string
  endedAt?: string
  steps: DeployStep[]
}

/** What a strategy may do to the mesh: the daemon implements it; tests fake it. */
export interface DeployTarget {
  clock: Clock
  service(name: string): ServiceConfig
  instancesOf(service: string, version?: string): string[]
  /**
   * Resolves when all `count` are healthy; rejects when one is not within `timeoutMs`,
   * or as soon as `signal` aborts: a `mesh rollback` must not wait out the deadline.
   */
  addInstances(service: ServiceConfig, version: VersionConfig, count: number, timeoutMs: number, signal?: AbortSignal): Promise<string[]>
  removeInstance(name: string): Promise<void>
  /**
   * The deploy sets these versions' instance counts, not the autoscaler, until the returned
   * release; resolves once a scaling action under way on the service has ended (scale-owners.ts).
   */
  holdCounts(service: string, versions: string[]): Promise<() => void>
  /** These versions serve no more (their instances are gone): the autoscaler lets them go. */
  retire(service: string, versions: string[]): void
  weights(service: string): Map<string, number>
  setWeights(service: string, weights: Map<string, number>): void
  /** Why the service runs no instance (`mesh stop`, or `mesh up` left it out); undefined when it is started. */
  notStarted(service: string): string | undefined
  /** A temporary header route to a version; returns its removal. */
  addRoute(service: string, header: {name: string; value: string}, version: string): () => void
  /** A temporary mirror of every request to a version (in place of any mirror configured); returns its removal. */
  addMirror(service: string, version: string): () => void
  /** The version's golden signals over the last `windowMs` (what the callee saw, every attempt). */
  versionStats(service: string, version: string, windowMs: number): {requests: number; successRate?: number; p99Ms?: number}
  /** One request to one instance alone (blue-green smoke check). */
  smoke(instance: string, method: string, path: string): Promise<{ok: boolean; status: number; detail: string}>
  /** The acceptance test (`--check`), with CANARY_URL naming the first of `instances` (through its sidecar). */
  check(command: string, instances: string[], timeoutMs: number): Promise<{ok: boolean; detail: string}>
}
