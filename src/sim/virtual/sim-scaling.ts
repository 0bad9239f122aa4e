// Autoscaling in virtual time: the daemon's own Autoscaler (the KPA at its tick, on the
// SimClock) over simulated instances, and the ActivationHub between it and the activator
// layer the Destinations already carry — so a version with `scaling:` starts at its
// initialScale, holds requests at zero, pays its model's coldStart, and scales back down
// (to zero) as on a running mesh. Only the instance manager is stood in for (ScaleTarget):
//
//   activator ──poke──▶ Autoscaler ──addInstances──▶ SimScaleTarget: coldStart (event) ─▶ registry.add ─▶ gate admits the held
//   tick (1 s) ◀── inflight: attempts under way per instance (leaf) + held ──┘   removeInstance: out of the registry, gone when none is under way
import type {MeshConfig, ServiceConfig, VersionConfig} from '../config/types.js'
import {latencyModel} from '../model/latency-model.js'
import type {Leaf} from '../proxy/leaf.js'
import {forward, type MeshResponse, type Reply} from '../proxy/stack.js'
import type {Registry} from '../proxy/registry.js'
import {ActivationHub} from '../scaling/activation.js'
import {Autoscaler, type ScaleFailedEvent, type ScaleTarget, type ScalingEvent, type StartFailure} from '../scaling/autoscaler.js'
import {SeededRandom, seedFrom} from '../time/random.js'
import type {SimClock} from './event-queue.js'
import type {SimInstance} from './instance-model.js'
import type {SimScalingEvent} from './sim-result.js'

/** The instance manager's default wait for a new instance to become ready (instance-manager.ts addInstances). */
const START_TIMEOUT_MS = 60_000

export interface SimScalingDeps {
  config: MeshConfig
  clock: SimClock
  registry: Registry
  /** The run's instances by name: the virtual leaf finds an attempt's instance here. */
  instances: Map<string, SimInstance>
  /** Makes the model of `name` (its station joins the stats); not yet in the registry. */
  create(service: ServiceConfig, version: VersionConfig, name: string): SimInstance
  seed: number
}

interface Member {
  instance: SimInstance
  service: string
  version: string
  leaving: boolean
  /** It joined the registry (started with the run, or its cold start is over). */
  ready: boolean
}

/** What `mesh up` started and what the autoscaler adds and drains: the instance manager's part, with models for processes. */
class SimScaleTarget implements ScaleTarget {
  /** Every instance of a scaled version not yet gone, in the order made (oldest first). */
  private readonly members = new Map<string, Member>()
  /** The next instance number per version: names are never reused (the balancer forgets the ones that left). */
  private readonly next = new Map<string, number>()
  /** Requests answered by instances already gone, per version (the rps metric counts them too). */
  private readonly servedByGone = new Map<string, number>()
  /** Drains under way: each ends when nothing is under way to its instance, or at close. */
  private readonly draining = new Map<string, () => void>()
  /** Attempts under way to each instance of a scaled version, from the leaf to its answer (the data plane's inflightByInstance). */
  private readonly underWay = new Map<string, number>()

  constructor(private readonly d: SimScalingDeps) {}

  /** An instance started with the run (mesh up's initial count). */
  adopt(instance: SimInstance, count: number): void {
    const {service, version, instance: name} = instance.endpoint
    this.members.set(name, {instance, service, version, leaving: false, ready: true})
    this.next.set(`${service}/${version}`, count)
  }

  instancesOf(service: string, version: string): string[] {
    const out: string[] = []
    for (const [name, m] of this.members) if (m.service === service && m.version === version && !m.leaving) out.push(name)
    return out
  }

  /** Each instance joins the registry after its own cold start (the model's coldStart); resolves once all did. */
  addInstances(service: ServiceConfig, version: VersionConfig, count: number, timeoutMs = START_TIMEOUT_MS, signal?: AbortSignal): Promise<string[]> {
    const {clock, registry} = this.d
    const key = `${service.name}/${version.name}`
    return new Promise((resolve, reject) => {
      const made: Member[] = []
      let waiting = count
      const timers: Array<{cancel(): void}> = []
      let settled = false
      const fail = (error: StartFailure) => {
        if (settled) return
        settled = true
        for (const t of timers) t.cancel()
        // As the instance manager: on failure none of them is left.
        for (const m of made) this.gone(m)
        clock.needsSettle = true
        reject(error)
      }
      for (let i = 0; i < count; i++) {
        const n = this.next.get(key) ?? 0
        this.next.set(key, n + 1)
        const name = `${service.name}-${version.name}-${n}`
        const instance = this.d.create(service, version, name)
        const member: Member = {instance, service: service.name, version: version.name, leaving: false, ready: false}
        this.members.set(name, member)
        made.push(member)
        const cold = instance.model.config.coldStart
        // Its own stream, as model/simulated-instance.ts: the requests' dice are the same with or without a cold start.
        const initMs = cold ? latencyModel(cold).sample(new SeededRandom(seedFrom(this.d.seed, instance.model.config.seed, name, 'coldStart'))) : 0
        if (initMs > timeoutMs) {
          timers.push(clock.setTimer(timeoutMs, () => fail(new Error(`instance ${name} did not become ready within ${timeoutMs} ms: its simulate.coldStart took ${Math.round(initMs)} ms`))))
          continue
        }
        timers.push(
          clock.setTimer(initMs, () => {
            if (settled) return
            member.ready = true
            instance.station.openedAt = clock.now()
            this.d.instances.set(name, instance)
            registry.add(instance.endpoint)
            if (--waiting > 0) return
            settled = true
            clock.needsSettle = true
            resolve(made.map((m) => m.instance.endpoint.instance))
          }),
        )
      }
      if (signal) {
        if (signal.aborted) fail(new Error('the run ended'))
        else signal.addEventListener('abort', () => fail(new Error('the run ended')), {once: true})
      }
    })
  }

  /** Out of the registry at once (no new requests), gone once the requests under way on it are done. */
  removeInstance(name: string): Promise<void> {
    // The autoscaler awaits this: its continuation (the action's end) must run before time moves on.
    this.d.clock.needsSettle = true
    const m = this.members.get(name)
    if (!m || m.leaving) return Promise.resolve()
    m.leaving = true
    this.d.registry.remove(m.service, name)
    if (!this.underWay.get(name)) {
      this.gone(m)
      return Promise.resolve()
    }
    return new Promise((resolve) => {
      this.draining.set(name, () => {
        this.draining.delete(name)
        this.gone(m)
        this.d.clock.needsSettle = true
        resolve()
      })
    })
  }

  /** Counts each attempt to an instance of a scaled version until it is answered; a draining one goes at its last. */
  leaf(inner: Leaf): Leaf {
    return (protocol, tlsOf) => {
      const service = inner(protocol, tlsOf)
      return (req, ctx, reply) => {
        const name = ctx.endpoint!.instance
        if (!this.members.has(name)) return service(req, ctx, reply)
        this.underWay.set(name, (this.underWay.get(name) ?? 0) + 1)
        forward(service, req, ctx, new Counted(this, name, reply))
      }
    }
  }

  /** @internal An attempt to `name` was answered (or failed). */
  answered(name: string): void {
    const n = (this.underWay.get(name) ?? 1) - 1
    if (n > 0) return void this.underWay.set(name, n)
    this.underWay.delete(name)
    this.draining.get(name)?.()
  }

  isStarted(): boolean {
    return true
  }

  /** 'failed': a chaos kill took it out of the run (nothing restarts it here): the autoscaler replaces it, as a ReplicaSet a failed pod. */
  phase(name: string): string {
    const m = this.members.get(name)
    return m?.ready && !m.leaving && !this.d.instances.has(name) ? 'failed' : 'running'
  }

  /** Instances of `service` in the registry now (ready: starting and leaving ones are not). */
  ready(service: string): number {
    let n = 0
    for (const m of this.members.values()) if (m.service === service && !m.leaving && this.d.instances.has(m.instance.endpoint.instance)) n++
    return n
  }

  /** Requests the version's instances answered since the run began: the rps metric's count. */
  served(service: string, version: string): number {
    let n = this.servedByGone.get(`${service}/${version}`) ?? 0
    for (const m of this.members.values()) if (m.service === service && m.version === version) n += m.instance.station.totals.finished
    return n
  }

  /** Requests under way to each instance of `service` now, as the data plane counts them: the concurrency metric. */
  inflight(service: string): Record<string, number> {
    const out: Record<string, number> = {}
    for (const [name, m] of this.members) if (m.service === service) out[name] = this.underWay.get(name) ?? 0
    return out
  }

  /** The run is over: drains under way end now. */
  close(): void {
    for (const done of [...this.draining.values()]) done()
  }

  private gone(m: Member): void {
    const name = m.instance.endpoint.instance
    if (this.d.instances.get(name) === m.instance) {
      this.d.registry.remove(m.service, name)
      this.d.instances.delete(name)
    }
    this.members.delete(name)
    // One that never became ready was never capacity.
    const station = m.instance.station
    station.closedAt = m.ready ? this.d.clock.now() : station.openedAt
    const key = `${m.service}/${m.version}`
    this.servedByGone.set(key, (this.servedByGone.get(key) ?? 0) + m.instance.station.totals.finished)
  }
}

/** An attempt's reply that tells the target once it is over. */
class Counted implements Reply {
  constructor(
    private readonly target: SimScaleTarget,
    private readonly name: string,
    private readonly next: Reply,
  ) {}

  ok(response: MeshResponse): void {
    this.target.answered(this.name)
    this.next.ok(response)
  }

  fail(error: unknown): void {
    this.target.answered(this.name)
    this.next.fail(error)
  }
}

/** The scaling of one run: the hub the Destinations' activator pokes, and the autoscaler acting on simulated instances. */
export class SimScaling {
  readonly hub = new ActivationHub()
  readonly events: SimScalingEvent[] = []
  private readonly target: SimScaleTarget
  private autoscaler?: Autoscaler

  constructor(private readonly d: SimScalingDeps) {
    this.target = new SimScaleTarget(d)
  }

  /** Whether any version of the mesh has `scaling:` (without one, no hub, no autoscaler, no tick). */
  static wanted(config: MeshConfig): boolean {
    return config.services.some((s) => s.versions.some((v) => v.scaling))
  }

  /** An instance the run starts with; `count`: how many the version starts with. */
  adopt(instance: SimInstance, count: number): void {
    const {service, version} = instance.endpoint
    const v = this.d.config.services.find((s) => s.name === service)?.versions.find((x) => x.name === version)
    if (v?.scaling) this.target.adopt(instance, count)
  }

  /** The leaf under every Destination, counting what is under way to each scaled instance. */
  leaf(inner: Leaf): Leaf {
    return this.target.leaf(inner)
  }

  /** Once the initial instances are in the registry: the autoscaler's first tick is a second later. */
  start(): void {
    const {config, clock} = this.d
    this.autoscaler = new Autoscaler({
      config,
      clock,
      target: this.target,
      activation: this.hub,
      inflight: (s) => this.target.inflight(s),
      served: (s, v) => this.target.served(s, v),
      onEvent: (e) => this.events.push(simEvent(e, clock.now())),
      // Its scale-failed event says the same.
      onError: () => {},
    }).start()
  }

  /** Instances of `service` ready now, when one of its versions scales (undefined otherwise). */
  readyOf(service: string): number | undefined {
    const s = this.d.config.services.find((x) => x.name === service)
    return s?.versions.some((v) => v.scaling) ? this.target.ready(service) : undefined
  }

  /** The run is over: no more ticks, starts under way end, drains finish now. */
  async stop(): Promise<void> {
    this.target.close()
    await this.autoscaler?.stop()
  }
}

function simEvent(e: ScalingEvent | ScaleFailedEvent, atMs: number): SimScalingEvent {
  if (e.kind === 'scale-failed') return {atMs, service: e.service, version: e.version, kind: e.kind, message: e.message}
  return {atMs, service: e.service, version: e.version, kind: e.kind, from: e.from, to: e.to, ...(e.coldStartMs === undefined ? {} : {coldStartMs: e.coldStartMs}), message: e.message}
}
