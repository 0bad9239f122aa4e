// `mesh sim`: the mesh in virtual time. Every destination is the data plane's own
// Destination (its balancer, retries and budget, timeouts, outlier detection, breaker,
// rate limit and fault layers, built by the same constructor as in a running mesh),
// over a SimClock instead of the real one and a virtual leaf instead of the network;
// every instance is a model (instance-model.ts). Requests arrive at the ingress by the
// load shape; a chaos scenario plays on the same timeline through the chaos runner
// itself, so its expectations are judged exactly as `mesh chaos` judges them.
//
//   arrivals ─▶ ingress route ─▶ Destination.service ─▶ … ─▶ virtualLeaf ─▶ SimInstance ─▶ calls ─▶ Destination.service …
//        SimClock (events by time, seq) ◀── every timer of every layer and model
import {matchRoute, rewritePath} from '../config/ingress-routes.js'
import type {MeshConfig, ServiceConfig, SimulateConfig, VersionConfig} from '../config/types.js'
import {versionWeights} from '../config/versions.js'
import {MeshError} from '../errors.js'
import path from 'node:path'
import {runChaos} from '../faults/chaos-runner.js'
import type {ChaosScenario} from '../faults/chaos-scenario.js'
import type {FaultInfo, FaultSpec} from '../faults/fault.js'
import {PER_REQUEST_KINDS} from '../faults/fault.js'
import {FaultSet} from '../faults/fault-set.js'
import {whenAborted} from '../abort-signal.js'
import {ArrivalSchedule, type LoadShape, shapeDurationMs} from '../load/arrival-schedule.js'
import {type LoadOptions, type LoadResult, runLoad, type SendFn} from '../load/load-generator.js'
import {Cancellation} from '../proxy/cancellation.js'
import {Destination, type DestinationDeps} from '../proxy/destination.js'
import type {Leaf} from '../proxy/leaf.js'
import {type Endpoint, Registry} from '../proxy/registry.js'
import {ProxyError} from '../proxy/respond.js'
import {ConcurrencyAccount} from '../scaling/concurrency-gate.js'
import {abortReason} from '../proxy/upstream.js'
import {type CallContext, forward, type MeshRequest, type MeshResponse, type Peer, type Reply} from '../proxy/stack.js'
import type {Span} from '../telemetry/span.js'
import {fmix32, SeededRandom, seedFrom} from '../time/random.js'
import {SimClock} from './event-queue.js'
import {type InstanceWorld, ServiceModel, SimInstance, virtualLeaf} from './instance-model.js'
import type {SimOptions, SimResult} from './sim-result.js'
import {SimScaling} from './sim-scaling.js'
import {SimStats} from './sim-stats.js'

/** How long after the load ends the run waits for requests still under way (virtual time). */
export const DRAIN_MS = 60_000

const INGRESS_PEER: Peer = {identity: 'ingress', authn: 'listener'}

/** Which model runs `version` of `service`: its `simulate:`, or the `simulate:` written beside its `command:`. */
export function modelOf(service: ServiceConfig, version: VersionConfig): SimulateConfig | undefined {
  return version.workload.kind === 'simulate' ? version.workload.simulate : service.model
}

/** A command (or address) service with no model: named, with the two ways to give it one. */
export function missingModels(config: MeshConfig): MeshError | undefined {
  const missing = config.services.filter((s) => s.versions.some((v) => !modelOf(s, v)))
  if (missing.length === 0) return undefined
  const names = missing.map((s) => s.name)
  return new MeshError(
    'MESH_CONFIG_INVALID',
    `mesh sim needs a model of every service; ${names.length === 1 ? `"${names[0]}" runs a command and has` : `${names.map((n) => `"${n}"`).join(', ')} run a command and have`} none.`,
    {
      hints: [
        `Write a simulate: block beside its command: in mesh.yaml (only mesh sim reads it), e.g.\n    ${names[0]}:\n      command: …\n      simulate: {latency: {p50: 5ms, p99: 40ms}${callsOf(missing[0])}}`,
        'Or record it from a running mesh: mesh up, drive some load, then mesh sim --fit --out mesh.yaml (writes a simulate: block beside each command: from its traces).',
      ],
    },
  )
}

export interface SendOptions {
  method?: string
  headers?: Record<string, string>
  /** Straight to this service's stack, past the ingress routes. */
  service?: string
  cancellation?: Cancellation
  /** Keep this request's spans (--traces). */
  sample?: boolean
}

/** `, calls: [{service: a}, {service: b}]` for a service's dependencies: what its model most likely calls. */
function callsOf(service: ServiceConfig): string {
  return service.dependsOn.length ? `, calls: [${service.dependsOn.map((d) => `{service: ${d}}`).join(', ')}]` : ''
}

/** Everything one run is made of; `simulatedMesh` builds it, `runSimulation` drives it (tests look inside). */
export interface SimulatedMesh {
  clock: SimClock
  destinations: Map<string, Destination>
  instances: Map<string, SimInstance>
  registry: Registry
  faults: FaultSet
  stats: SimStats
  /** What instances share (a test makes an instance of its own with it). */
  world: InstanceWorld
  /** Sends one request in at the ingress (or straight to `service`'s stack); `reply` gets the answer, as a client would. */
  send(path: string, reply: Reply, opts?: SendOptions): void
  /** Per-request faults active now (their layer awaits, so the run settles after each event meanwhile). */
  activeFaults(): number
  /** The autoscaler and its hub, when a version has `scaling:`. */
  scaling?: SimScaling
  close(): void
}

/**
 * `hopMs`: the time one hop through a running mesh takes beyond its service (the caller's
 * sidecar, loopback, the instance's HTTP server), added to every attempt (SimOptions.hopLatencyMs).
 */
export function simulatedMesh(config: MeshConfig, seed: number, onSampledSpan?: (span: Span) => void, hopMs = 0): SimulatedMesh {
  const missing = missingModels(config)
  if (missing) throw missing
  const clock = new SimClock()
  const registry = new Registry(config.services.map((s) => s.name))
  let perRequestFaults = 0
  const faults = new FaultSet(clock, (kind, fault) => {
    if (!PER_REQUEST_KINDS.includes(fault.kind)) return
    perRequestFaults += kind === 'added' ? 1 : -1
  })
  const stats = new SimStats(config.services, onSampledSpan)
  const instances = new Map<string, SimInstance>()
  const destinations = new Map<string, Destination>()
  let spans = 0
  const world: InstanceWorld = {
    clock,
    callee: (service: string) => destinations.get(service)?.service,
    spanId: () => (++spans).toString(16).padStart(16, '0'),
  }
  const deps: DestinationDeps = {
    registry,
    faults: {faults, allowHeaders: () => config.faults.allowHeaders},
    clock,
    leaf: hopLeaf(virtualLeaf(instances), clock, hopMs),
    sink: stats,
    seed,
    spanIds: world.spanId,
    // One account across every scaled version, as the data plane's (functions.accountConcurrency).
    account: new ConcurrencyAccount(() => config.functions?.accountConcurrency),
    onOutlierEvent: (service, event) => {
      if (event.kind === 'ejected') stats.ejected(service)
    },
  }
  const models = new Map<VersionConfig, ServiceModel>()
  const create = (service: ServiceConfig, version: VersionConfig, instance: string): SimInstance => {
    let model = models.get(version)
    if (!model) models.set(version, (model = new ServiceModel(modelOf(service, version)!)))
    const endpoint: Endpoint = {instance, service: service.name, version: version.name, host: 'sim', port: 0, inboundPort: 0, origin: `sim://${instance}`}
    const sim = new SimInstance(endpoint, model, new SeededRandom(seedFrom(seed, model.config.seed, instance)), world)
    stats.addStation(service.name, sim.station)
    return sim
  }
  // Versions with `scaling:` start at their initial count (replicas holds it) and move with the autoscaler.
  const scaling = SimScaling.wanted(config) ? new SimScaling({config, clock, registry, instances, create, seed}) : undefined
  if (scaling) {
    deps.activation = scaling.hub
    deps.leaf = scaling.leaf(deps.leaf)
    stats.readyOf = (service) => scaling.readyOf(service)
  }
  for (const service of config.services) {
    for (const version of service.versions) {
      for (let i = 0; i < version.replicas; i++) {
        const sim = create(service, version, `${service.name}-${version.name}-${i}`)
        instances.set(sim.endpoint.instance, sim)
        scaling?.adopt(sim, version.replicas)
        registry.add(sim.endpoint)
      }
    }
  }
  for (const service of config.services) destinations.set(service.name, new Destination(service, versionWeights(service), deps))
  // The activator's side of the hub, as the data plane wires it.
  scaling?.hub.reportHeld((service, version) => destinations.get(service)?.held(version) ?? 0)
  scaling?.hub.onStartFailed((service, version, reason) => destinations.get(service)?.startFailed(version, reason))
  scaling?.start()
  for (const spec of config.faults.inject) faults.add(spec)

  const routes = config.ingress?.routes ?? []
  let traces = 0
  const seedMix = fmix32(seed)
  function send(path: string, reply: Reply, opts: SendOptions = {}): void {
    const n = ++traces
    // Unique per request (n is in it), the same every run; the first digits (what `mesh traces`
    // shows) and the last 8 (what fault jitter reads) are well mixed.
    const traceId = hex8(fmix32(n ^ seedMix)) + n.toString(16).padStart(16, '0') + hex8(fmix32((n + 0x9e3779b9) ^ seedMix))
    if (opts.sample) stats.sample(traceId)
    let service = opts.service
    let routed = path
    if (service === undefined) {
      const route = matchRoute(routes, path)
      if (!route) return reply.fail(new ProxyError(404, 'NR', `no route: no ingress route matches path ${path}`))
      service = route.service
      routed = rewritePath(route, path)
    }
    const destination = destinations.get(service)
    if (!destination) return reply.fail(new ProxyError(502, 'NR', `no route: "${service}" is not a service in this mesh`))
    const req: MeshRequest = {
      method: opts.method ?? 'GET',
      path: routed,
      headers: {...opts.headers},
      body: null,
      replayable: true,
      destination: service,
      source: 'ingress',
      peer: INGRESS_PEER,
    }
    const cancellation = opts.cancellation ?? new Cancellation()
    const ctx: CallContext = {
      clock,
      signal: cancellation,
      canceller: cancellation,
      traceId,
      traceFlags: '01',
      clientSpanId: world.spanId(),
      decision: {},
      attempt: 1,
    }
    forward(destination.service, req, ctx, reply)
  }

  return {
    clock,
    destinations,
    instances,
    registry,
    faults,
    stats,
    world,
    send,
    activeFaults: () => perRequestFaults,
    scaling,
    close() {
      for (const d of destinations.values()) d.close()
      faults.close()
    },
  }
}

/**
 * Each attempt reaches its instance `hopMs` later, as it would across a real mesh's sidecars
 * and loopback (which virtual time otherwise makes free). A caller that gives up meanwhile
 * (a timeout, a hedge won elsewhere) is told at once, as an abandoned connection attempt is.
 */
export function hopLeaf(leaf: Leaf, clock: SimClock, hopMs: number): Leaf {
  if (!(hopMs > 0)) return leaf
  return (protocol, tlsOf) => {
    const inner = leaf(protocol, tlsOf)
    return function hop(req, ctx, reply) {
      const signal = ctx.signal
      if (signal.aborted) return reply.fail(abortReason(signal))
      const timer = clock.setTimer(hopMs, () => {
        stopWaiting()
        forward(inner, req, ctx, reply)
      })
      const stopWaiting = whenAborted(signal, () => {
        timer.cancel()
        reply.fail(abortReason(signal))
      })
    }
  }
}

/** A client at the ingress: reads the body to its end (so every span and timeout above is done), then tells `done`. */
class IngressReply implements Reply {
  constructor(private readonly done: (status: number, flags: string | undefined, error?: unknown) => void) {}

  ok(response: MeshResponse): void {
    response.body?.discard()
    this.done(response.status, response.flags)
  }

  fail(error: unknown): void {
    if (error instanceof ProxyError) this.done(error.status, error.flag)
    else this.done(0, undefined, error)
  }
}

/** Where a plain run sends its requests: the ingress at `/`, or (no ingress) the first service. */
function entry(config: MeshConfig): {path: string; service?: string} {
  return config.ingress?.routes.length ? {path: '/'} : {path: '/', service: config.services[0]?.name}
}

/** Chaos steps the simulation cannot play (pause, cert, jwks-unavailable: they act on processes and keys it does not have). */
function unplayable(scenario: ChaosScenario): MeshError | undefined {
  const steps = scenario.timeline.filter((s) => s.action === 'inject' && !PER_REQUEST_KINDS.includes(s.fault.kind) && s.fault.kind !== 'kill')
  if (steps.length === 0) return undefined
  const kinds = [...new Set(steps.map((s) => (s.action === 'inject' ? s.fault.kind : '')))]
  return new MeshError('MESH_BAD_FLAG', `${path.basename(scenario.file)}:${steps[0].line}: mesh sim cannot play a ${kinds.join(' or ')} fault: it has no processes to pause or certificates to break.`, {
    hints: ['mesh sim plays per-request faults (delay, abort, reset, partition, bandwidth, slow-close) and kill; run this scenario against a running mesh with mesh chaos.'],
  })
}

export async function runSimulation(config: MeshConfig, options: SimOptions): Promise<SimResult> {
  const refused = options.scenario && unplayable(options.scenario)
  if (refused) throw refused
  const stepMs = options.seriesStepMs ?? 1000
  const every = options.traceSampleEvery ?? 0
  const mesh = simulatedMesh(config, options.seed, options.onSpan, options.hopLatencyMs)
  const {clock, stats} = mesh
  const scenario = options.scenario
  const shape: LoadShape | undefined = scenario ? scenario.load?.shape : options.shape
  const durationMs = scenario ? scenario.durationMs : shapeDurationMs(options.shape)

  for (let at = 0; at < durationMs; at += stepMs) {
    const start = at
    clock.setTimer(Math.min(at + stepMs, durationMs), () => stats.endStep(start, Math.min(stepMs, durationMs - start)))
  }

  let ingressRequests = 0
  let expectations: SimResult['expectations']
  const alwaysSettle = () => mesh.activeFaults() > 0
  if (!scenario) {
    const target = entry(config)
    const schedule = new ArrivalSchedule(shape!, new SeededRandom(seedFrom(options.seed, 'arrivals')))
    let inFlight = 0
    let more = true
    const done = () => {
      inFlight--
    }
    const arrive = () => {
      ingressRequests++
      inFlight++
      mesh.send(target.path, new IngressReply(done), {service: target.service, sample: every > 0 && (ingressRequests - 1) % every === 0})
      scheduleNext()
    }
    const scheduleNext = () => {
      const due = schedule.next()
      if (due === undefined) more = false
      else clock.setTimer(due - clock.now(), arrive)
    }
    scheduleNext()
    await clock.run(() => !more && inFlight === 0 && clock.now() >= durationMs, durationMs + DRAIN_MS, alwaysSettle)
  } else {
    const sendIn: SendFn = (req, signal) =>
      new Promise((resolve, reject) => {
        ingressRequests++
        const cancellation = new Cancellation()
        signal?.addEventListener('abort', () => cancellation.abort(signal.reason), {once: true})
        const load = scenario.load!
        const service = load.target === 'ingress' ? undefined : load.target
        mesh.send(
          req.path,
          new IngressReply((status, flags, error) => {
            clock.needsSettle = true
            if (error !== undefined) reject(error)
            else resolve({status, responseFlags: flags})
          }),
          {method: req.method, headers: req.headers, service, cancellation, sample: every > 0 && (ingressRequests - 1) % every === 0},
        )
      })
    let finished = false
    const chaos = runChaos(scenario, {
      clock: clock.settling(),
      client: {
        injectFault: async (spec) => inject(mesh, spec),
        clearFaults: async (selector) => mesh.faults.clear(selector),
      },
      target: scenario.load ? {origin: 'sim://ingress', path: scenario.load.path ?? '/'} : undefined,
      // Open loop, as a plain run: mesh load's default cap on requests in flight (one second's
      // worth) spares a real machine's sockets, but here it would quietly turn an overload into a
      // client that stops sending. A scenario's own load.concurrency still caps it.
      load: (o: LoadOptions): Promise<LoadResult> => runLoad({...o, concurrency: o.concurrency ?? Number.POSITIVE_INFINITY, send: sendIn}),
    }).finally(() => {
      finished = true
    })
    await clock.run(() => finished, Infinity, alwaysSettle)
    const report = await chaos
    const broken = report.steps.find((s) => !s.ok)
    if (broken) throw new MeshError('MESH_BAD_FLAG', `${path.basename(scenario.file)}: the step at ${broken.atMs} ms (${broken.description}) could not be played: ${broken.error}`)
    expectations = report.expectations.map((e) => ({text: e.text, phase: e.phase, actual: e.actual ?? 0, passed: e.held}))
  }
  const elapsed = Math.max(clock.now(), durationMs)
  const services = stats.services(elapsed)
  await mesh.scaling?.stop()
  mesh.close()
  return {
    seed: options.seed,
    durationMs,
    ingressRequests,
    hopRequests: services.reduce((n, s) => n + s.actualRequests, 0),
    services,
    errorsByCause: sortedKeys(stats.errorsByCause),
    series: stats.series,
    // Over the arrivals' window: the drain after it would spread a growing queue's work thin.
    unstable: stats.unstable(durationMs),
    ...(mesh.scaling ? {scaling: mesh.scaling.events} : {}),
    ...(expectations ? {expectations} : {}),
  }
}

/** A chaos step's fault: per-request kinds go to the fault set; kill takes instances out of the run. */
function inject(mesh: SimulatedMesh, spec: FaultSpec): FaultInfo {
  if (PER_REQUEST_KINDS.includes(spec.kind)) return mesh.faults.add(spec)
  if (spec.kind !== 'kill') throw new Error(`mesh sim cannot play a ${spec.kind} fault yet (per-request faults and kill only)`)
  const victims = [...mesh.instances.values()]
    .filter((i) => i.endpoint.service === spec.service && (!spec.version || i.endpoint.version === spec.version))
    .slice(0, spec.count ?? 1)
  const info = mesh.faults.add(spec)
  for (const v of victims) {
    mesh.registry.remove(v.endpoint.service, v.endpoint.instance)
    mesh.instances.delete(v.endpoint.instance)
    v.kill()
  }
  const names = victims.map((v) => v.endpoint.instance)
  mesh.faults.update(info.id, {instances: names})
  return {...info, instances: names}
}

function hex8(x: number): string {
  return x.toString(16).padStart(8, '0')
}

function sortedKeys(record: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}
