// The loop around the KPA: every tick it feeds each scaled service-version's decider what
// its instances are doing (requests in flight, plus those the activator holds for it), and
// acts on the decision through the instance manager, as Knative's autoscaler feeds the KPA
// and its reconciler scales the Deployment. A version can scale to zero (minScale 0); from
// zero it is started by the activator's poke at once, not at the next tick.
// The metric is the requests in flight across the version's instances (concurrency), or
// the rate of requests they answered (rps).
//
//   tick (1 s, on the Clock) ─▶ observe (+ held) ─▶ KpaDecider.record/decide ─▶ add or drain ─▶ event
//   hub.poke (a request held, the version at zero) ─▶ start one now ─▶ ready: "0 → 1 (cold start 840 ms)"
//                                                                   └▶ failed: hub.startFailed, backoff
import type {MeshConfig, ScalingConfig, ServiceConfig, VersionConfig} from '../config/types.js'
import type {MetricsRecorder} from '../telemetry/metrics.js'
import type {Clock, Timer} from '../time/clock.js'
import type {ActivationHub} from './activation.js'
import {KpaDecider, type KpaSpec} from './kpa.js'
import {RestartBackoff} from '../supervisor/backoff.js'

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
  /** 'failed': its process exited and its restart policy leaves it so (a kill under `restart: no`): it is replaced. */
  phase(name: string): string
}

/** How addInstances fails to start one: the message says why, `logTail` is the end of the instance's log. */
export type StartFailure = Error & {logTail?: string[]}

export interface ScalingEvent {
  kind: 'scaled'
  service: string
  version: string
  from: number
  to: number
  panic: boolean
  reason: string
  /** From zero: poke (or the tick that saw requests held) to ready, ms. */
  coldStartMs?: number
  /** "2 → 5: panic, observed 41 concurrent over 0.6 s, target 7": the event log shows "scaled catalog " before it. */
  message: string
}

/** A start failed: from zero the requests held for it are answered 503 with `reason`; from some instances it is retried on a later tick. */
export interface ScaleFailedEvent {
  kind: 'scale-failed'
  service: string
  version: string
  reason: string
  /** "0 → 1 failed: instance fn-v1-0 crashed 3 times while starting (exit code 3)." */
  message: string
}

export interface ScalingStatus {
  version: string
  desired: number
  actual: number
  panic: boolean
  reason?: string
  /** minScale 0 and no instance now, none starting: not down, waiting for a request. */
  scaledToZero?: boolean
  /** The last start from zero that succeeded: poke to ready. */
  coldStartMs?: number
  /** The last start from zero failed (kept until one succeeds): why, when, the end of its log, and when a request may try again. */
  startFailed?: {reason: string; at: string; logTail: string[]; retryAt: string}
}

export interface AutoscalerOptions {
  config: MeshConfig
  clock: Clock
  target: ScaleTarget
  /** Requests under way to each instance of the service (the data plane's load): the concurrency metric. */
  inflight(service: string): Record<string, number>
  /** Requests the version's instances have answered since the mesh started: the rps metric is its rate. */
  served(service: string, version: string): number
  onEvent(event: ScalingEvent | ScaleFailedEvent): void
  /** A scale-up that fails (an instance never became healthy): reported (the daemon's log), retried on a later tick; its `scale-failed` event goes to onEvent. */
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
  heldByDeploy?: boolean
  /** At zero, since when a request has waited for an instance (the cold start is measured from it). */
  waitingSince?: number
  coldStartMs?: number
  /** The last start from zero failed (at, retryAt: clock time): no new try before retryAt, however often it is poked. */
  failure?: {reason: string; at: number; atWall: number; logTail: string[]; retryAt: number}
  /** Failed starts in a row: 1 s, 2 s, 4 s … 30 s between tries, as the supervisor's restarts; 30 s without one starts over. */
  backoff: RestartBackoff
  /** A scale-up from some instances failed: no new try before this clock time (the same backoff as from zero). */
  upRetryAt?: number
  upFailedAt?: number
  /** An action of this version's is under way (the service's one at a time). */
  acting?: boolean
}

/** The decider's share of `scaling:`; minScale 0 is scale to zero, acted on. */
export function kpaSpec(s: ScalingConfig): KpaSpec {
  const {initialScale: _i, activatorTimeoutMs: _t, queue: _q, reservedConcurrency: _r, ...spec} = s
  return spec
}

export class Autoscaler {
  private readonly scaled = new Map<string, Scaled>()
  /** One scaling action at a time per service (its versions share the balancer): later decisions wait for it. */
  private readonly acting = new Map<string, Promise<void>>()
  private timer?: Timer
  /** `mesh down`: ends an instance start under way at once instead of at its deadline. */
  private readonly stopped = new AbortController()

  constructor(private readonly o: AutoscalerOptions) {
    o.activation?.onPoke((service, version) => this.poked(service, version))
  }

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
        const heldByDeploy = owner === 'deploy'
        if (have && !(have.heldByDeploy && !heldByDeploy)) {
          have.service = service
          have.version = version
          have.decider.update(kpaSpec(version.scaling))
          // While held, the deploy's count is the desired one.
          if (heldByDeploy) have.last = undefined
          have.heldByDeploy = heldByDeploy
        } else {
          // New, or handed back by a deploy: a fresh decider from the instances the deploy left
          // (more than one are held a stable window, as Knative's newAutoscaler), not the history
          // from before the deploy changed the version's count and share.
          const ready = this.o.target.instancesOf(service.name, version.name).length
          this.scaled.set(key, {service, version, heldByDeploy, decider: new KpaDecider(kpaSpec(version.scaling), this.o.clock, ready), backoff: new RestartBackoff()})
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
      const row: ScalingStatus = {version: s.version.name, desired: s.last?.desired ?? actual, actual, panic: s.last?.panic ?? false, reason: s.last?.reason}
      if (actual === 0 && s.version.scaling?.minScale === 0 && !s.acting && s.waitingSince === undefined) row.scaledToZero = true
      if (s.coldStartMs !== undefined) row.coldStartMs = s.coldStartMs
      const f = s.failure
      if (f) row.startFailed = {reason: f.reason, at: new Date(f.atWall).toISOString(), logTail: f.logTail, retryAt: this.wallOf(f.retryAt)}
      return row
    })
  }

  private wallOf(clockMs: number): string {
    const {clock} = this.o
    return new Date(clock.wallNow() + (clockMs - clock.now())).toISOString()
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
      const service = s.service.name
      // A version a deploy holds: the deploy sets its count; nothing is decided for it meanwhile.
      if (!this.o.target.isStarted(service) || this.o.deploying?.(service, s.version.name) === 'deploy') continue
      const all = this.o.target.instancesOf(service, s.version.name)
      // A dead one its restart policy leaves dead (a kill under `restart: no`) is replaced, as a ReplicaSet replaces a failed pod.
      const failed = all.filter((n) => this.o.target.phase(n) === 'failed')
      const names = all.filter((n) => !failed.includes(n))
      // The activator's held requests are demand the instances do not see yet (Knative's activator reports them).
      const held = this.o.activation?.held(service, s.version.name) ?? 0
      // A version none runs that is not scaled to zero (a deploy has not started it) is left alone, as before it ran.
      if (all.length === 0 && held === 0 && s.version.scaling?.minScale !== 0) continue
      const metric = s.version.scaling?.metric === 'rps' ? this.rps(s) : this.concurrency(service, names)
      if (metric !== undefined || held > 0) s.decider.record((metric ?? 0) + held)
      const d = s.decider.decide(names.length)
      if (!d) continue
      s.last = {desired: d.desired, panic: d.panic, reason: d.reason}
      if (this.acting.has(service)) continue
      if (failed.length > 0) {
        this.begin(s, names, Math.max(d.desired, names.length), d.panic, `replacing ${failed.join(', ')} (exited, not restarted)`, failed)
        continue
      }
      if (d.desired === names.length) continue
      // A failed scale-up is tried again after its backoff, not on every tick (a broken start would loop at 1 Hz).
      if (d.desired > names.length && names.length > 0 && s.upRetryAt !== undefined && this.o.clock.now() < s.upRetryAt) continue
      // From zero only for a request waiting (a version none runs, or a deploy has not started, stays so); not during a failed start's backoff.
      if (names.length === 0 && (held === 0 || this.backingOff(s))) continue
      this.begin(s, names, d.desired, d.panic, names.length === 0 ? `${held} request${held === 1 ? '' : 's'} waiting` : d.reason)
    }
  }

  /** The activator holds a request for the version: at zero, one instance is started now. */
  private poked(service: string, version: string): void {
    const s = this.scaled.get(`${service}/${version}`)
    // A version with instances (starting, or all busy) is the tick's to scale, on the held count.
    if (!s || this.stopped.signal.aborted || !this.o.target.isStarted(service) || this.o.target.instancesOf(service, version).length > 0) return
    const f = s.failure
    if (f && this.backingOff(s)) {
      // Answered at once with why, not held until the activator's timeout; no new try before retryAt.
      const next = Math.ceil((f.retryAt - this.o.clock.now()) / 1000)
      return this.o.activation?.startFailed(service, version, `${f.reason} (next try in ${next} s)`)
    }
    s.waitingSince ??= this.o.clock.now()
    // The demand is recorded now, as Knative's activator reports it: a request served between two
    // ticks would otherwise leave the window empty, and the new instance would go straight back to zero.
    s.decider.record(Math.max(1, this.o.activation?.held(service, version) ?? 1))
    // One action at a time per service: the one under way ends first (begin() picks the wait up then).
    if (this.acting.has(service) || this.o.deploying?.(service, version) === 'deploy') return
    s.last = {desired: 1, panic: false, reason: 'a request is waiting'}
    this.begin(s, [], 1, false, 'a request is waiting')
  }

  private backingOff(s: Scaled): boolean {
    return s.failure !== undefined && this.o.clock.now() < s.failure.retryAt
  }

  private begin(s: Scaled, names: string[], desired: number, panic: boolean, reason: string, replace: string[] = []): void {
    const service = s.service.name
    s.acting = true
    const action = this.act(s, names, desired, panic, reason, replace).finally(() => {
      s.acting = false
      this.acting.delete(service)
      // A request that came for a version at zero while another action ran.
      for (const w of this.scaled.values()) if (w.service.name === service && w.waitingSince !== undefined) this.poked(service, w.version.name)
    })
    this.acting.set(service, action)
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

  private async act(s: Scaled, names: string[], desired: number, panic: boolean, reason: string, replace: string[]): Promise<void> {
    const from = names.length
    const many = s.service.versions.length > 1 ? `${s.version.name} ` : ''
    const event = (extra: string, coldStartMs?: number) =>
      this.o.onEvent({kind: 'scaled', service: s.service.name, version: s.version.name, from, to: desired, panic, reason, ...(coldStartMs === undefined ? {} : {coldStartMs}), message: `${many}${from} → ${desired}: ${reason}${extra}`})
    // Awaited only when there is one: a start from zero begins in the poke's own turn.
    if (replace.length) await Promise.all(replace.map((n) => this.o.target.removeInstance(n)))
    if (desired > from) {
      // From zero the event waits for the instance, to say how long the cold start took.
      if (from > 0) event('')
      const since = s.waitingSince ?? this.o.clock.now()
      try {
        await this.o.target.addInstances(s.service, s.version, desired - from, this.startTimeoutMs(s, from), this.stopped.signal)
      } catch (error) {
        if (!this.stopped.signal.aborted) this.startFailed(s, from, desired, error as StartFailure)
        return
      } finally {
        if (from === 0) s.waitingSince = undefined
      }
      s.backoff.reset()
      s.upRetryAt = s.upFailedAt = undefined
      if (from === 0) {
        s.coldStartMs = Math.round(this.o.clock.now() - since)
        s.failure = undefined
        event(` (cold start ${s.coldStartMs} ms)`, s.coldStartMs)
      }
      return
    }
    if (desired < from) event('')
    // The newest go first: the oldest have warm caches and connections.
    await Promise.all(names.slice(desired).reverse().map((n) => this.o.target.removeInstance(n)))
  }

  /** From zero a request is waiting: the start may take no longer than the activator holds it. */
  private startTimeoutMs(s: Scaled, from: number): number | undefined {
    const holds = s.version.scaling?.activatorTimeoutMs
    if (from > 0 || holds === undefined) return this.o.startTimeoutMs
    return Math.min(this.o.startTimeoutMs ?? holds, holds)
  }

  private startFailed(s: Scaled, from: number, desired: number, error: StartFailure): void {
    const service = s.service.name
    this.o.onError(service, error)
    const many = s.service.versions.length > 1 ? `${s.version.name} ` : ''
    const now = this.o.clock.now()
    // The last failure's time stands for a process's start: a long quiet since then starts the backoff over.
    const delayMs = s.backoff.onExit(now, s.failure?.at ?? s.upFailedAt ?? now)
    // From some instances: said, and tried again after the backoff (mesh status shows it while the service is short).
    if (from > 0) {
      s.upRetryAt = now + delayMs
      s.upFailedAt = now
      const next = `next try in ${Math.ceil(delayMs / 1000)} s`
      return this.o.onEvent({kind: 'scale-failed', service, version: s.version.name, reason: error.message, message: `${many}scale-up from ${from} failed: ${error.message} (${next})`})
    }
    const logTail = error.logTail ?? []
    s.failure = {reason: error.message, at: now, atWall: this.o.clock.wallNow(), logTail, retryAt: now + delayMs}
    // The held requests hear why at once, with the end of the log: what a developer needs to fix it.
    // The app's own last lines (the supervisor's are prefixed `[mesh] ` and say only that it crashed).
    const own = logTail.filter((l) => !l.startsWith('[mesh] '))
    const tail = (own.length ? own : logTail).slice(-3)
    this.o.activation?.startFailed(service, s.version.name, tail.length ? `${error.message} Last log lines: ${tail.join(' | ')}` : error.message)
    this.o.onEvent({kind: 'scale-failed', service, version: s.version.name, reason: error.message, message: `${many}0 → ${desired} failed: ${error.message}`})
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
