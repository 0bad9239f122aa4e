// The loop around the KPA: every tick it feeds each scaled service-version's decider what
// its instances are doing (requests in flight), and acts on the decision through the
// instance manager, as Knative's autoscaler feeds the KPA and its reconciler scales the
// Deployment. Scale to zero and the activator are not here yet: minScale 0 acts as 1.
// The metric is the requests in flight across the version's instances (concurrency), or
// the rate of requests they answered (rps).
//
//   tick (1 s, on the Clock) ─▶ observe ─▶ KpaDecider.record/decide ─▶ add or drain ─▶ event
import type {MeshConfig, ScalingConfig, ServiceConfig, VersionConfig} from '../config/types.js'
import type {MetricsRecorder} from '../telemetry/metrics.js'
import type {Clock, Timer} from '../time/clock.js'
import type {ActivationHub} from './activation.js'
import {KpaDecider, type KpaSpec} from './kpa.js'

/** Knative samples every 2 s; a second keeps a short panic window (6 s × 10%) fed. */
export const TICK_MS = 1000

/** What the autoscaler needs of the instance manager (a fake in unit tests). */
export interface ScaleTarget {
  /** The version's instances that are not leaving, oldest first. */
  instancesOf(service: string, version: string): string[]
  /** Health-gated: resolves once they are ready; on failure (or abort) none of them is left. */
  addInstances(service: ServiceConfig, version: VersionConfig, count: number, timeoutMs?: number, signal?: AbortSignal): Promise<string[]>
  /** Drains (requests under way finish), then stops. */
  removeInstance(name: string): Promise<void>
  /** False once `mesh stop` stopped the service (or it was never started): nothing is scaled back up. */
  isStarted(service: string): boolean
}

export interface ScalingEvent {
  kind: 'scaled'
  service: string
  version: string
  from: number
  to: number
  panic: boolean
  reason: string
  /** "2 → 5: panic, observed 41 concurrent over 0.6 s, target 7": the event log shows "scaled catalog " before it. */
  message: string
}

export interface ScalingStatus {
  version: string
  desired: number
  actual: number
  panic: boolean
  reason?: string
}

export interface AutoscalerOptions {
  config: MeshConfig
  clock: Clock
  target: ScaleTarget
  /** Requests under way to each instance of the service (the data plane's load): the concurrency metric. */
  inflight(service: string): Record<string, number>
  /** Requests the version's instances have answered since the mesh started: the rps metric is its rate. */
  served(service: string, version: string): number
  onEvent(event: ScalingEvent): void
  /** A scale-up that fails (an instance never became healthy): reported, retried on a later tick. */
  onError(service: string, error: Error): void
  /**
   * Who sets the version's count while a deploy runs (deploy/scale-owners.ts): 'deploy' while
   * it holds the version (no decision acted on), 'retired' once it took the version away (its
   * decider is let go); undefined: this autoscaler. Call sync() when it changes.
   */
  deploying?(service: string, version: string): 'deploy' | 'retired' | undefined
  /** How long a new instance may take to become ready. */
  startTimeoutMs?: number
  /** The daemon's one hub shared with the activator: its pokes start a version from zero, its held requests are demand. */
  activation?: ActivationHub
}

interface Scaled {
  service: ServiceConfig
  version: VersionConfig
  decider: KpaDecider
  last?: {desired: number; panic: boolean; reason: string}
  /** The rps metric's previous reading: served() and when. */
  counted?: {requests: number; at: number}
  /** A deploy sets its count (as of the last sync). */
  held?: boolean
}

/** minScale 0 is scale to zero, which needs the activator: until then the floor is one instance. */
export function kpaSpec(s: ScalingConfig): KpaSpec {
  const {initialScale: _i, activatorTimeoutMs: _t, queue: _q, reservedConcurrency: _r, ...spec} = s
  return {...spec, minScale: Math.max(1, s.minScale)}
}

export class Autoscaler {
  private readonly scaled = new Map<string, Scaled>()
  /** One scaling action at a time per service (its versions share the balancer): later decisions wait for it. */
  private readonly acting = new Map<string, Promise<void>>()
  private timer?: Timer
  /** `mesh down`: ends an instance start under way at once instead of at its deadline. */
  private readonly stopped = new AbortController()

  constructor(private readonly o: AutoscalerOptions) {}

  /** After `mesh up` has started the initial instances: deciders start from what is ready. */
  start(): this {
    this.sync()
    this.arm()
    return this
  }

  /**
   * `mesh apply`: a version newly scaled gets a decider, a changed `scaling:` is handed to
   * its decider (history kept, as Knative's Update), a version no longer scaled is let go.
   */
  sync(): void {
    const seen = new Set<string>()
    for (const service of this.o.config.services) {
      for (const version of service.versions) {
        if (!version.scaling) continue
        const owner = this.o.deploying?.(service.name, version.name)
        // A version a deploy took away (and left with no instance) is let go.
        if (owner === 'retired' && this.o.target.instancesOf(service.name, version.name).length === 0) continue
        const key = `${service.name}/${version.name}`
        seen.add(key)
        const have = this.scaled.get(key)
        const held = owner === 'deploy'
        if (have && !(have.held && !held)) {
          have.service = service
          have.version = version
          have.decider.update(kpaSpec(version.scaling))
          // While held, the deploy's count is the desired one.
          if (held) have.last = undefined
          have.held = held
        } else {
          // New, or handed back by a deploy: a fresh decider from the instances the deploy left
          // (more than one are held a stable window, as Knative's newAutoscaler), not the history
          // from before the deploy changed the version's count and share.
          const ready = this.o.target.instancesOf(service.name, version.name).length
          this.scaled.set(key, {service, version, held, decider: new KpaDecider(kpaSpec(version.scaling), this.o.clock, ready)})
        }
      }
    }
    for (const key of this.scaled.keys()) if (!seen.has(key)) this.scaled.delete(key)
  }

  /** Once no scaling action is under way on the service: a deploy takes a version's count only then (deploy-target.ts). */
  async whenIdle(service: string): Promise<void> {
    for (let a = this.acting.get(service); a; a = this.acting.get(service)) await a
  }

  /** `mesh down`: no more ticks; an instance start under way is aborted (and removed), a drain finishes. */
  async stop(): Promise<void> {
    this.stopped.abort()
    this.timer?.cancel()
    await Promise.all(this.acting.values())
  }

  status(service: string): ScalingStatus[] | undefined {
    const rows = [...this.scaled.values()].filter((s) => s.service.name === service)
    if (rows.length === 0) return undefined
    return rows.map((s) => {
      const actual = this.o.target.instancesOf(service, s.version.name).length
      return {version: s.version.name, desired: s.last?.desired ?? actual, actual, panic: s.last?.panic ?? false, reason: s.last?.reason}
    })
  }

  private arm(): void {
    if (this.stopped.signal.aborted) return
    this.timer = this.o.clock.setTimer(TICK_MS, () => {
      this.tick()
      this.arm()
    })
  }

  /** One sample and one decision per scaled version; acting only when the count should change. */
  tick(): void {
    for (const s of this.scaled.values()) {
      // A version a deploy holds: the deploy sets its count; nothing is decided for it meanwhile.
      if (!this.o.target.isStarted(s.service.name) || this.o.deploying?.(s.service.name, s.version.name) === 'deploy') continue
      const names = this.o.target.instancesOf(s.service.name, s.version.name)
      // A version none runs (no traffic yet, or a deploy has not started it) is not started here: from zero is the activator's.
      if (names.length === 0) continue
      const value = s.version.scaling?.metric === 'rps' ? this.rps(s) : this.concurrency(s.service.name, names)
      if (value !== undefined) s.decider.record(value)
      const d = s.decider.decide(names.length)
      if (!d) continue
      s.last = {desired: d.desired, panic: d.panic, reason: d.reason}
      const service = s.service.name
      if (this.acting.has(service) || d.desired === names.length) continue
      this.acting.set(service, this.act(s, names, d.desired, d.panic, d.reason).finally(() => this.acting.delete(service)))
    }
  }

  private concurrency(service: string, names: string[]): number {
    const inflight = this.o.inflight(service)
    return names.reduce((sum, n) => sum + (inflight[n] ?? 0), 0)
  }

  /** Requests answered per second since the last tick; nothing on the first (no interval yet). */
  private rps(s: Scaled): number | undefined {
    const now = {requests: this.o.served(s.service.name, s.version.name), at: this.o.clock.now()}
    const was = s.counted
    s.counted = now
    if (!was || now.at <= was.at) return undefined
    return ((now.requests - was.requests) * 1000) / (now.at - was.at)
  }

  private async act(s: Scaled, names: string[], desired: number, panic: boolean, reason: string): Promise<void> {
    const from = names.length
    const many = s.service.versions.length > 1 ? `${s.version.name} ` : ''
    this.o.onEvent({kind: 'scaled', service: s.service.name, version: s.version.name, from, to: desired, panic, reason, message: `${many}${from} → ${desired}: ${reason}`})
    if (desired > from) {
      try {
        await this.o.target.addInstances(s.service, s.version, desired - from, this.o.startTimeoutMs, this.stopped.signal)
      } catch (error) {
        if (!this.stopped.signal.aborted) this.o.onError(s.service.name, error as Error)
      }
      return
    }
    // The newest go first: the oldest have warm caches and connections.
    await Promise.all(names.slice(desired).reverse().map((n) => this.o.target.removeInstance(n)))
  }
}

/** The requests a version's instances answered, as their sidecars reported them (istio_requests_total, reporter destination). */
export function servedBy(metrics: Pick<MetricsRecorder, 'promSeries'>, service: string, version: string): number {
  let n = 0
  for (const p of metrics.promSeries()) {
    if (p.labels.reporter === 'destination' && p.labels.destination_workload === service && p.labels.destination_version === version) n += p.requests
  }
  return n
}
