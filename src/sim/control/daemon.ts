// One daemon per mesh: it owns the registry, every sidecar listener (the data
// plane), the supervisor of every process, and the control API.
//
//   mesh.yaml ─▶ MeshDaemon.start()
//                 ├─ ingress + sidecar listeners (DataPlane)
//                 ├─ processes (Supervisor) ─▶ health checks ─▶ Registry ─▶ sidecars' EndpointSets
//                 └─ control API (status, down) + .mesh/state.json
import {EventEmitter} from 'node:events'
import {mkdirSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import type {DependencyCondition, MeshConfig, ServiceConfig, VersionConfig} from '../config/types.js'
import {dependencyAddressEnv, dependencyEnvName, EnvNames, instanceName} from '../config/env-names.js'
import {activeVersions, versionWeights} from '../config/versions.js'
import {MeshError, serviceNotFound} from '../errors.js'
import {DataPlane, type ListenerInfo} from '../proxy/data-plane.js'
import {Telemetry} from '../telemetry/telemetry.js'
import type {TcpTotals} from '../telemetry/tcp-metrics.js'
import {PROMETHEUS_CONTENT_TYPE, renderPrometheus} from '../telemetry/prometheus.js'
import type {Span} from '../telemetry/span.js'
import type {TraceQuery} from '../telemetry/trace-store.js'
import {EventLog} from './event-log.js'
import {describeFault, type FaultInfo, type FaultSpec, requestOnlySelector} from '../faults/fault.js'
import {FaultSet} from '../faults/fault-set.js'
import {DeployController} from '../deploy/deploy-controller.js'
import {parseRestartPlan} from '../deploy/deploy-flags.js'
import {FileWatcher} from './file-watcher.js'
import {Tap, type TapFilter, type TapLine} from '../telemetry/tap.js'
import type {DeployTarget} from '../deploy/deploy-types.js'
import {request} from 'undici'
import {runLoad} from '../load/load-generator.js'
import type {ApplyResult} from './policy-diff.js'
import {ConfigApply} from './config-apply.js'
import {suggestion} from '../config/did-you-mean.js'
import {seedFrom} from '../time/random.js'
import {HealthChecker, probeCommand, probeGrpc, probeHttp, probeTcp} from '../supervisor/health-check.js'
import {type InstanceSpec, type ProcessStatus, Supervisor} from '../supervisor/supervisor.js'
import type {Clock} from '../time/clock.js'
import {TickClock} from '../time/tick-clock.js'
import {ControlServer} from './control-server.js'
import type {QueryOf, StreamQueryOf} from './api.js'
import {rotateLogs, tailLines} from './log-files.js'
import {tuneHeapForProxying} from './heap-tuning.js'
import {abortError} from '../abort-signal.js'
import {assertPortFree, freePort} from './ports.js'
import {type Endpoint, Registry} from '../proxy/registry.js'
import {createToken, type MeshPaths, meshPaths, removeState, writeState} from './state-file.js'
import {acquireMeshLock, type MeshLock} from './mesh-lock.js'
import type {ExecTarget, InstanceHealth, InstanceStatus, MeshStatus} from './status.js'
import {STOPPED_BY_MESH_STOP} from '../proxy/respond.js'
import {ingressPathTo, startOrder} from '../config/call-graph.js'
import {profileEnabled, profilesOff, servicesToStart} from '../config/profiles.js'

const SIMULATED_RUNNER = fileURLToPath(new URL('../model/simulated-service-main.js', import.meta.url))

export type DaemonEvent =
  | {kind: 'instance-healthy'; instance: string; service: string}
  | {kind: 'instance-unhealthy'; instance: string; service: string; detail: string}
  | {kind: 'instance-exited'; instance: string; service: string; code: number | null; signal: string | null}
  | {kind: 'service-healthy'; service: string}
  /** Every instance of a one-shot service (`restart: no` or on-failure) exited 0. */
  | {kind: 'service-completed'; service: string}
  | {kind: 'service-stopped'; service: string}
  /** `mesh up --watch`: files under a service's `watch:` paths changed, so its instances are restarted. */
  | {kind: 'files-changed'; service: string; files: string[]}
  | {kind: 'instance-ejected'; service: string; instance: string; reason: string}
  | {kind: 'instance-returned'; service: string; instance: string}
  | {kind: 'config-applied'; changes: string[]}
  | {kind: 'deploy-step'; service: string; id: string; step: string; message: string}
  | {kind: 'fault-added' | 'fault-removed' | 'fault-expired'; service: string; fault: string; id: string}

export interface DaemonOptions {
  clock?: Clock
  /** Give up starting after this long and name what is not healthy. */
  startupTimeoutMs?: number
  /** Restart backoff; shorter in tests. */
  backoff?: {initialMs: number; maxMs: number; resetAfterMs: number}
  /** `mesh up --watch`: restart a service when files under its `watch:` paths change. */
  watch?: boolean
  /** `mesh up SERVICE...`: start these and what they depend on; the others are declared but not started. */
  only?: string[]
  /** `mesh up --profile`: a service `mesh apply` adds starts only when one of its profiles is among these. */
  profiles?: string[]
}

interface Instance {
  name: string
  service: ServiceConfig
  version: VersionConfig
  endpoint: Endpoint
  logFile?: string
  health: InstanceHealth
  healthDetail?: string
  checker?: HealthChecker
  outbound?: {proxy: string; dependencies: Record<string, string>}
  listeners: ListenerInfo[]
  /** How the supervisor runs it; none for `address:` instances. */
  spec?: InstanceSpec
  /** Set once removal starts: no restart, no health checks, no traffic. */
  leaving?: boolean
}

export class MeshDaemon extends EventEmitter {
  readonly paths: MeshPaths
  readonly registry: Registry
  readonly dataPlane: DataPlane
  readonly telemetry: Telemetry
  readonly faults: FaultSet
  readonly deploys: DeployController
  readonly supervisor: Supervisor
  private readonly clock: Clock
  private readonly instances = new Map<string, Instance>()
  readonly events = new EventLog<DaemonEvent>(500)
  private control?: ControlServer
  private controlUrl = ''
  private ingressUrl?: string
  private phase: MeshStatus['phase'] = 'starting'
  private readonly startedAt = new Date()
  private stopping?: Promise<void>
  private readonly applier: ConfigApply
  /** apply, stop and start, one at a time: two interleaved would start or stop the same instances. */
  private mutating: Promise<unknown> = Promise.resolve()
  /** Held from before the token is written until after state.json is removed (mesh-lock.ts). */
  private lock?: MeshLock
  private readonly watchers: FileWatcher[] = []
  /** Per service: files changed since its last watch restart began. */
  private readonly changedFiles = new Map<string, Set<string>>()

  constructor(
    readonly config: MeshConfig,
    private readonly opts: DaemonOptions = {},
  ) {
    super()
    // Read once per callback: the data path asks the time ~10 times per request (tick-clock.ts).
    this.clock = opts.clock ?? new TickClock()
    this.paths = meshPaths(config.dir)
    this.registry = new Registry(config.services.map((s) => s.name))
    this.telemetry = new Telemetry({
      clock: this.clock,
      accessLogDir: config.telemetry?.accessLog ? this.paths.access : undefined,
      otlpEndpoint: config.telemetry?.otlpEndpoint,
      spansPerSecond: config.telemetry?.spansPerSecond,
    })
    this.faults = new FaultSet(this.clock, (kind, f) => this.onFaultChange(kind, f))
    this.dataPlane = new DataPlane(this.registry, config.services, new Map(config.services.map((s) => [s.name, versionWeights(s)])), {
      clock: this.clock,
      faults: this.faults,
      allowFaultHeaders: config.faults.allowHeaders,
      maxRequestHeaders: config.ingress?.maxRequestHeaders,
      sink: this.telemetry,
      tcpMetrics: this.telemetry.tcp,
      seed: seedFrom(config.name),
      onOutlierEvent: (service, e) =>
        this.emitEvent(
          e.kind === 'ejected'
            ? {kind: 'instance-ejected', service, instance: e.id, reason: e.reason ?? 'outlier'}
            : {kind: 'instance-returned', service, instance: e.id},
        ),
    })
    this.supervisor = new Supervisor({clock: this.clock, backoff: opts.backoff})
    this.deploys = new DeployController(
      this.deployTarget(),
      {
        onStep: (record, step) =>
          this.emitEvent({kind: 'deploy-step', service: record.plan.service, id: record.id, step: step.kind, message: step.message}),
        startLoad: (plan) => this.driveLoad(plan.service, plan.canary!.loadRps!),
      },
      this.paths.history,
    )
    this.applier = new ConfigApply({
      config,
      dataPlane: this.dataPlane,
      registry: this.registry,
      deploys: this.deploys,
      faults: this.faults,
      telemetry: this.telemetry,
      accessLogDir: this.paths.access,
      instancesOf: (service, version) => this.instancesOf(service, version),
      addInstances: (service, version, count) => this.addInstances(service, version, count),
      removeInstance: (name) => this.removeInstance(name),
      isStarted: (service) => this.isStarted(service),
      profileEnabled: (service) => profileEnabled(service, this.opts.profiles ?? []),
      onApplied: (changes) => this.emitEvent({kind: 'config-applied', changes}),
    })
    this.supervisor.on('spawn', () => this.saveState())
    this.supervisor.on('records', () => this.saveState())
    this.supervisor.on('exit', (status: ProcessStatus, exit: {code: number | null; signal: string | null}) =>
      this.onExit(status, exit),
    )
  }

  /** Binds every listener, starts every process, resolves when every instance is healthy. */
  async start(): Promise<void> {
    // Before the first request: V8's per-literal tenuring decisions are made early and kept.
    tuneHeapForProxying()
    // Before anything of a mesh that may already run here is touched: its token, its state, its ports, its logs.
    this.lock = await acquireMeshLock(this.paths, {role: 'daemon', name: this.config.name})
    // A new mesh: the last run's lines (old pids, their SIGKILLs) are not this run's.
    for (const dir of [this.paths.logs, this.paths.access]) rotateLogs(dir)
    mkdirSync(this.paths.logs, {recursive: true})
    const token = createToken(this.paths)
    await this.checkFixedPorts()

    if (this.config.ingress) {
      const l = await this.dataPlane.listen(
        {kind: 'ingress', routes: this.config.ingress.routes, preserveRequestId: this.config.ingress.preserveRequestId},
        this.config.ingress.port,
        'the ingress (ingress.port)',
      )
      this.ingressUrl = `http://127.0.0.1:${l.port}`
    }

    this.control = new ControlServer(token)
      .serve({
        'GET /v1/status': () => this.status(),
        'GET /v1/events': ({query}) => this.events.since(Number(query.since ?? 0)),
        'GET /v1/traces': ({query}) => this.telemetry.traces.list(traceQuery(query)),
        'GET /v1/spans': ({query}) => {
          const ids = this.telemetry.traces.list(traceQuery(query)).map((t) => t.traceId)
          return ids.flatMap((id) => this.telemetry.traces.get(id))
        },
        'GET /v1/trace': ({query}) => this.trace(query.id ?? ''),
        'GET /v1/trace-store': () => ({...this.telemetry.traces.stats(), sampling: this.telemetry.sampler.stats()}),
        'GET /v1/stat': ({query}) => this.telemetry.metrics.stat({by: query.by ?? 'service', windowMs: Number(query.windowMs ?? 30_000)}, this.clock.now()),
        'GET /v1/tcp': () => this.telemetry.tcp.series(),
        'GET /v1/exec': ({query}) => this.execTarget(query.service ?? '', query.version, query.instance),
        'POST /v1/stop': ({body}) => this.inTurn(() => this.stopServices(body.services)).then(() => this.status()),
        'POST /v1/start': ({body: {services, profiles}}) =>
          this.inTurn(() => {
            // Enabled from now on: a service `mesh apply` adds in one of them starts too.
            if (profiles?.length) this.opts.profiles = [...new Set([...(this.opts.profiles ?? []), ...profiles])]
            return this.startServices(services)
          }).then(() => this.status()),
        'POST /v1/apply': ({body}) => (body?.dryRun ? this.applier.plan(body.env) : this.apply(body?.env)),
        'GET /v1/faults': () => this.faults.list(),
        'POST /v1/faults': ({body}) => this.injectFault(body),
        'POST /v1/faults/clear': ({body}) => this.faults.clear(body),
        'POST /v1/deploys': ({body}) => this.deploys.start(body),
        'GET /v1/deploys': ({query: {service}}) => {
          const records = this.deploys.history(service)
          // A service apply removed keeps its history; a name that never was is a typo.
          if (service && records.length === 0 && !this.config.services.some((s) => s.name === service)) throw serviceNotFound(service, this.serviceNames())
          return records
        },
        'GET /v1/deploy': ({query}) => this.deploys.get(query.id ?? ''),
        'POST /v1/rollback': ({body}) => this.deploys.rollback(body.service),
        'POST /v1/down': () => {
          // Answer first, then stop: the caller waits for our pid to go away.
          setImmediate(() => void this.stop().then(() => this.emit('stopped')))
          return {stopping: true}
        },
      })
      .stream('/v1/tap', (query) => this.tap(query))
      .text('/metrics', PROMETHEUS_CONTENT_TYPE, () => renderPrometheus(this.telemetry.metrics.promSeries(), this.telemetry.tcp.series()))
    this.controlUrl = await this.control.listen()
    this.saveState()

    // The CLI's selection (mesh up SERVICE..., profiles), closed over what it needs by the one rule `mesh up` uses.
    const selected = new Set(servicesToStart(this.config, this.opts.only ?? [], this.opts.profiles ?? []) ?? this.serviceNames())
    for (const service of this.config.services) {
      // Declared only: its destination says so to callers, and it is what isStarted reads.
      if (!selected.has(service.name)) {
        this.dataPlane.destination(service.name)!.endpoints.notStarted = service.profiles && !profileEnabled(service, this.opts.profiles ?? []) ? `its ${profilesOff(service)}` : 'mesh up named other services'
        continue
      }
      for (const version of service.versions) {
        if (!activeVersions(service).has(version.name)) continue
        for (let i = 0; i < version.replicas; i++) await this.createInstance(service, version)
      }
    }
    for (const spec of this.config.faults.inject) this.injectFault(spec)
    // As compose honours depends_on: a service starts once what it calls is healthy (or, as
    // its conditions say, running or completed), so an app that connects at boot (a database
    // driver, a config fetch) finds its dependencies up and a migration has run.
    const deadline = this.clock.now() + (this.opts.startupTimeoutMs ?? 60_000)
    const left = () => Math.max(1, deadline - this.clock.now())
    const namesOf = (service: string) => [...this.instances.values()].filter((i) => i.service.name === service).map((i) => i.name)
    // The first failure ends every other wait at once.
    const failed = new AbortController()
    const launched = new Map<string, Promise<void>>()
    for (const service of startOrder(this.config).flat()) {
      if (!selected.has(service)) continue
      const s = this.config.services.find((x) => x.name === service)!
      // In start order, so a dependency's launch is known here (one in a cycle is not waited for).
      const deps = s.dependsOn.filter((d) => launched.has(d))
      const launch = Promise.all(
        deps.map(async (d) => {
          await launched.get(d)
          await this.waitReady(namesOf(d), left(), failed.signal, s.dependsOnConditions?.[d])
        }),
      ).then(() => {
        for (const name of namesOf(service)) this.launch(this.instances.get(name)!)
      })
      launched.set(service, launch)
    }
    try {
      await Promise.all(launched.values())
      // Then every instance, as `mesh up -d` promises: one waited for only as started is healthy too.
      await this.waitReady([...this.instances.keys()], left(), failed.signal)
    } catch (error) {
      failed.abort()
      throw error
    }
    this.phase = 'running'
    if (this.opts.watch) this.startWatching()
  }

  status(): MeshStatus {
    return {
      name: this.config.name,
      configFile: this.config.file,
      phase: this.phase,
      daemonPid: process.pid,
      controlUrl: this.controlUrl,
      ingress: this.ingressUrl && this.config.ingress ? {url: this.ingressUrl, routes: this.config.ingress.routes} : undefined,
      startedAt: this.startedAt.toISOString(),
      requestsInFlight: this.dataPlane.inflightRequests,
      services: this.config.services.map((s) => ({
        name: s.name,
        protocol: s.protocol,
        dependsOn: s.dependsOn,
        versions: s.versions.map((v) => ({
          name: v.name,
          replicas: v.replicas,
          weight: this.dataPlane.destination(s.name)?.endpoints.currentWeights().get(v.name) ?? 0,
        })),
        panic: this.dataPlane.destination(s.name)?.panic() ?? false,
        deploy: this.deploys.inProgress(s.name),
        faults: this.faults
          .list()
          .filter((f) => f.service === s.name)
          .map((f) => `${f.id} ${describeFault(f)}${f.percent !== undefined && f.percent < 100 ? ` ${f.percent}%` : ''}${f.at === 'caller' ? ' at caller' : ''}`),
        instances: [...this.instances.values()].filter((i) => i.service === s).map((i) => this.instanceStatus(i)),
        tcp: this.tcpTotals(s),
        watching: this.opts.watch && s.watch ? s.watch.map((p) => path.relative(this.config.dir, p) || '.') : undefined,
        notStarted: this.dataPlane.destination(s.name)?.endpoints.notStarted,
        profiles: s.profiles,
        load: this.dataPlane.load(s.name),
      })),
    }
  }

  /**
   * Drain traffic and stop processes, remove state. Each instance's stopGracePeriod is its
   * whole budget, as in compose and Kubernetes: its requests under way get until the period
   * ends, then what is left of its processes gets SIGTERM and, at the end, SIGKILL.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.phase = 'stopping'
      const startedAt = this.clock.now()
      for (const inst of this.instances.values()) inst.checker?.stop()
      for (const w of this.watchers.splice(0)) w.close()
      // A paused process (SIGSTOP) would finish none of its requests.
      for (const f of this.faults.list()) if (f.kind === 'pause') this.faults.remove(f.id)
      const longest = Math.max(...this.config.services.map((s) => s.stopGracePeriodMs), 1000)
      const drained = this.dataPlane.drain(longest)
      // Every request in the mesh, not only the instance's own: one under way may still call it.
      const underWay = () => this.dataPlane.inflightRequests
      await Promise.all([...this.instances.values()].map((inst) => this.stopWithin(inst.name, startedAt + inst.service.stopGracePeriodMs, underWay)))
      await drained
      this.faults.close()
      await this.supervisor.stopAll(0)
      await this.telemetry.close()
      await this.control?.close()
      // Only the mesh that owns this directory removes its files: one that lost the race for the lock leaves the winner's alone.
      if (this.lock) {
        removeState(this.paths)
        this.lock.release()
      }
    })()
    return this.stopping
  }

  /** A second Ctrl-C: no more grace. Every process SIGKILLed at once, no state left behind. */
  killNow(): void {
    this.supervisor.killAll()
    if (this.lock) {
      removeState(this.paths)
      this.lock.release()
    }
  }

  /** Waits for requests under way (by default the instance's own) until `deadline`, then stops its process with what is left of the budget. */
  private async stopWithin(name: string, deadline: number, underWay = () => this.dataPlane.inflightTo(name)): Promise<void> {
    while (underWay() > 0 && this.clock.now() < deadline) await this.clock.sleep(20)
    if (this.supervisor.status(name)) await this.supervisor.stop(name, Math.max(0, deadline - this.clock.now()))
  }

  private async checkFixedPorts(): Promise<void> {
    for (const s of this.config.services) {
      for (const v of s.versions) {
        if (v.port !== undefined && v.workload.kind !== 'address') {
          await assertPortFree(v.port, `service "${s.name}" (version ${v.name}, port:)`)
        }
      }
    }
  }

  /**
   * Starts `count` new instances of a version (for deploys, `mesh apply`); resolves
   * when all of them pass their health checks. When one does not (crash loop or
   * timeout), all of them are removed again and the error names it: callers never
   * clean up half-started instances themselves. `signal` (a `mesh rollback` during a
   * deploy) ends the wait the same way, at once rather than at the deadline.
   */
  async addInstances(service: ServiceConfig, version: VersionConfig, count: number, timeoutMs = 60_000, signal?: AbortSignal): Promise<string[]> {
    signal?.throwIfAborted()
    const created: Instance[] = []
    for (let i = 0; i < count; i++) created.push(await this.createInstance(service, version))
    for (const inst of created) this.launch(inst)
    const names = created.map((i) => i.name)
    try {
      await this.waitReady(names, timeoutMs, signal)
    } catch (error) {
      for (const name of names) await this.removeInstance(name)
      throw error
    }
    return names
  }

  /**
   * Takes an instance out of the mesh: out of the registry first (no new requests),
   * then its in-flight requests finish (up to graceMs), then its process stops and
   * its listeners close.
   */
  async removeInstance(name: string, graceMs?: number): Promise<void> {
    const inst = this.instances.get(name)
    if (!inst || inst.leaving) return
    inst.leaving = true
    inst.checker?.stop()
    this.registry.remove(inst.service.name, name)
    await this.stopWithin(name, this.clock.now() + (graceMs ?? inst.service.stopGracePeriodMs))
    if (this.supervisor.status(name)) this.supervisor.forget(name)
    for (const l of inst.listeners) await this.dataPlane.closeListener(l)
    this.dataPlane.forgetInstance(name)
    this.instances.delete(name)
    this.saveState()
  }

  /** Instances of one service (optionally one version) that are not leaving. */
  instancesOf(service: string, version?: string): string[] {
    return [...this.instances.values()]
      .filter((i) => i.service.name === service && !i.leaving && (!version || i.version.name === version))
      .map((i) => i.name)
  }

  /**
   * What `mesh exec` runs a command as: an instance's environment (its env, <DEP>_URL and
   * HTTP_PROXY listeners, PORT…) and directory. The named instance, or the first healthy one.
   */
  private execTarget(service: string, version: string | undefined, instance: string | undefined): ExecTarget {
    if (!this.config.services.some((s) => s.name === service)) throw serviceNotFound(service, this.serviceNames())
    const candidates = [...this.instances.values()].filter((i) => i.service.name === service && (!version || i.version.name === version) && !i.leaving)
    const chosen = instance
      ? candidates.find((i) => i.name === instance)
      : (candidates.find((i) => i.health === 'healthy' && i.spec) ?? candidates.find((i) => i.spec))
    if (!chosen) {
      const names = candidates.map((i) => i.name)
      throw new MeshError('MESH_INSTANCE_NOT_FOUND', instance ? `"${instance}" is not an instance of ${service}${version ? `@${version}` : ''}${suggestion(instance, names) || '.'}` : `${service}${version ? `@${version}` : ''} has no instance running.`, {
        hints: names.length ? [`Its instances: ${names.join(', ')}.`] : ['See `mesh status`.'],
      })
    }
    if (!chosen.spec) {
      throw new MeshError('MESH_BAD_FLAG', `${chosen.name} is an address: instance the mesh does not start, so it has no environment to run a command in.`)
    }
    return {instance: chosen.name, cwd: chosen.spec.cwd, env: chosen.spec.env}
  }

  /** A TCP service's connections, or an HTTP service's WebSocket sessions once it had one. */
  private tcpTotals(s: ServiceConfig): TcpTotals | undefined {
    const totals = this.telemetry.tcp.ofService(s.name)
    return s.protocol === 'tcp' || totals.opened > 0 ? totals : undefined
  }

  private readonly nextIndex = new Map<string, number>()

  private async createInstance(service: ServiceConfig, version: VersionConfig): Promise<Instance> {
    const destination = this.dataPlane.destination(service.name)
    if (destination) destination.endpoints.notStarted = undefined
    const key = `${service.name}\u0000${version.name}`
    const index = this.nextIndex.get(key) ?? 0
    this.nextIndex.set(key, index + 1)
    const name = instanceName(service.name, version.name, index)
    const w = version.workload
    const host = w.kind === 'address' ? w.host : '127.0.0.1'
    const port = w.kind === 'address' ? w.port : (version.port ?? (await freePort()))
    const inbound =
      service.protocol === 'tcp'
        ? await this.dataPlane.listenTcp({kind: 'tcp-inbound', instance: name, service: service.name})
        : await this.dataPlane.listen({kind: 'inbound', instance: name, service: service.name})
    const endpoint: Endpoint = {
      instance: name,
      service: service.name,
      version: version.name,
      host,
      port,
      inboundPort: inbound.port,
      origin: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    }
    this.dataPlane.setInstance(endpoint)
    const inst: Instance = {name, service, version, endpoint, health: 'starting', listeners: [inbound]}
    this.instances.set(name, inst)
    if (w.kind === 'address') return inst

    const env: Record<string, string> = {
      ...version.env,
      [EnvNames.port]: String(port),
      [EnvNames.service]: service.name,
      [EnvNames.version]: version.name,
      [EnvNames.instance]: name,
    }
    const dependencies: Record<string, string> = {}
    for (const dep of service.dependsOn) {
      const caller = {source: service.name, sourceVersion: version.name, sourceInstance: name, destination: dep}
      const protocol = this.config.services.find((s) => s.name === dep)?.protocol
      const l = protocol === 'tcp' ? await this.dataPlane.listenTcp({kind: 'tcp-outbound', ...caller}) : await this.dataPlane.listen({kind: 'outbound', ...caller})
      if (protocol !== 'tcp') env[dependencyEnvName(dep)] = `http://127.0.0.1:${l.port}`
      // A gRPC channel dials host:port; the listener speaks HTTP/1.1 and h2c alike.
      if (protocol !== undefined) Object.assign(env, dependencyAddressEnv(dep, '127.0.0.1', l.port))
      dependencies[dep] = `127.0.0.1:${l.port}`
      inst.listeners.push(l)
    }
    const proxy = await this.dataPlane.listen({kind: 'forward-proxy', source: service.name, sourceVersion: version.name, sourceInstance: name})
    inst.outbound = {proxy: `127.0.0.1:${proxy.port}`, dependencies}
    inst.listeners.push(proxy)
    const proxyUrl = `http://127.0.0.1:${proxy.port}`
    // Clients that honour proxy variables reach services by name; the <DEP>_URL listeners are loopback and bypass it.
    Object.assign(env, {HTTP_PROXY: proxyUrl, http_proxy: proxyUrl, NO_PROXY: '127.0.0.1,localhost,::1', no_proxy: '127.0.0.1,localhost,::1'})
    if (w.kind === 'simulate') env[EnvNames.simulate] = JSON.stringify(w.simulate)
    inst.logFile = path.join(this.paths.logs, `${name}.log`)
    inst.spec = {
      instance: name,
      service: service.name,
      version: version.name,
      command: w.kind === 'simulate' ? `${shellQuote(process.execPath)} ${shellQuote(SIMULATED_RUNNER)}` : w.command,
      cwd: w.kind === 'command' ? w.cwd : this.config.dir,
      env,
      logFile: inst.logFile,
      graceMs: service.stopGracePeriodMs,
      restart: service.restart,
      maxRestarts: service.maxRestarts,
    }
    return inst
  }

  private launch(inst: Instance): void {
    // `address:` instances have no process, only health checks.
    if (inst.spec) this.supervisor.start(inst.spec)
    this.startHealthChecks(inst)
  }

  private startHealthChecks(inst: Instance): void {
    inst.checker?.stop()
    // A job others wait on to complete serves nothing: probing it would only report it unhealthy.
    if (this.isJob(inst.service.name)) return void (inst.health = 'running')
    const h = inst.service.health
    const {host, port} = inst.endpoint
    // A command runs as the instance would (its env: $PORT, <DEP>_URL…); for an address: instance, in the mesh's directory.
    const where = {cwd: inst.spec?.cwd ?? this.config.dir, env: inst.spec?.env ?? {}}
    const checker = new HealthChecker({
      probe: () =>
        h.path
          ? probeHttp(host, port, h.path, h.timeoutMs)
          : h.grpcService !== undefined
            ? probeGrpc(host, port, h.grpcService, h.timeoutMs, this.clock)
            : h.command
              ? probeCommand(h.command, where, h.timeoutMs)
              : probeTcp(host, port, h.timeoutMs),
      intervalMs: h.intervalMs,
      startIntervalMs: 100,
      thresholds: {healthyThreshold: h.healthyThreshold, unhealthyThreshold: h.unhealthyThreshold},
      clock: this.clock,
    })
    checker.on('probe', (r: {detail: string}) => (inst.healthDetail = r.detail))
    checker.on('healthy', () => {
      inst.health = 'healthy'
      this.registry.add(inst.endpoint)
      this.emitEvent({kind: 'instance-healthy', instance: inst.name, service: inst.service.name})
      const all = [...this.instances.values()].filter((i) => i.service === inst.service)
      if (all.every((i) => i.health === 'healthy')) this.emitEvent({kind: 'service-healthy', service: inst.service.name})
    })
    checker.on('unhealthy', (detail: string) => {
      inst.health = 'unhealthy'
      this.registry.remove(inst.service.name, inst.name)
      this.emitEvent({kind: 'instance-unhealthy', instance: inst.name, service: inst.service.name, detail})
    })
    inst.checker = checker
    checker.start()
  }

  private onExit(status: ProcessStatus, exit: {code: number | null; signal: string | null}): void {
    const inst = this.instances.get(status.instance)
    this.saveState()
    if (!inst || inst.leaving || this.phase === 'stopping') return
    // A dead process gets no traffic, whatever its last probe said; it earns its way back after restart.
    this.registry.remove(inst.service.name, inst.name)
    if (status.state === 'exited') {
      // Its restart policy leaves it so: a job that finished, or one that failed for good.
      inst.checker?.stop()
      inst.health = exit.code === 0 && exit.signal === null ? 'completed' : 'failed'
      inst.healthDetail = exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code ?? '-'}`
    } else {
      inst.health = 'starting'
      this.startHealthChecks(inst)
    }
    this.emitEvent({kind: 'instance-exited', instance: inst.name, service: inst.service.name, ...exit})
    const all = [...this.instances.values()].filter((i) => i.service === inst.service && !i.leaving)
    if (inst.health === 'completed' && all.every((i) => i.health === 'completed')) this.emitEvent({kind: 'service-completed', service: inst.service.name})
  }

  /** `mesh tap`: checks the filter's names, then streams the requests it selects until the client leaves. */
  private tap(q: StreamQueryOf<'/v1/tap'>): (send: (line: TapLine) => void) => () => void {
    const services = this.serviceNames()
    const name = (key: 'service' | 'from' | 'to', callers: string[] = []) => {
      const v = q[key]
      if (v !== undefined && !services.includes(v) && !callers.includes(v)) throw serviceNotFound(v, [...services, ...callers])
      return v
    }
    const filter: TapFilter = {
      service: name('service', ['ingress']),
      from: name('from', ['ingress', 'unknown']),
      to: name('to'),
      path: q.path,
      method: q.method?.toUpperCase(),
      errors: q.errors === '1',
    }
    const maxRps = Number(q.maxRps ?? 100)
    return (send) => {
      const tap = new Tap(filter, maxRps > 0 ? maxRps : 100, this.clock, send)
      this.telemetry.taps.add(tap.onSpan)
      return () => {
        this.telemetry.taps.delete(tap.onSpan)
        tap.close()
      }
    }
  }

  /**
   * `mesh up SERVICE...` on a running mesh (as compose starts more services of a running
   * project): the named services not started yet, and what they depend on, in start order,
   * each healthy (or completed) before what depends on it starts.
   */
  async startServices(names: string[]): Promise<string[]> {
    for (const name of names) if (!this.config.services.some((s) => s.name === name)) throw serviceNotFound(name, this.serviceNames())
    // As `mesh up` decides it: a dependency whose profile is off is refused (or, optional, left out).
    const wanted = new Set(servicesToStart(this.config, names, this.opts.profiles ?? []))
    const begun: string[] = []
    for (const name of startOrder(this.config).flat()) {
      if (!wanted.has(name) || this.isStarted(name)) continue
      const service = this.config.services.find((s) => s.name === name)!
      for (const version of service.versions) {
        if (activeVersions(service).has(version.name)) begun.push(...(await this.addInstances(service, version, version.replicas)))
      }
    }
    return begun
  }

  /**
   * `mesh stop [SERVICE...]`, as `docker compose stop`: the services' instances drained and
   * stopped (every started service's without names), in reverse start order so a caller
   * stops before what it calls; they stay declared — callers get 503 UH saying so — until
   * `mesh up` starts them again. What depends on them keeps running, as in compose.
   */
  async stopServices(names: string[]): Promise<string[]> {
    for (const name of names) if (!this.config.services.some((s) => s.name === name)) throw serviceNotFound(name, this.serviceNames())
    const wanted = (names.length ? names : this.serviceNames()).filter((name) => this.isStarted(name))
    // Checked for all first: nothing stops when one of them is mid-deploy.
    for (const name of wanted) {
      const deploy = this.deploys.inProgress(name)
      if (deploy) throw new MeshError('MESH_DEPLOY_IN_PROGRESS', `"${name}" has a deploy in progress (${deploy}); nothing was stopped.`, {hints: [`Wait for it, or \`mesh rollback ${name}\` first.`]})
    }
    const stopped: string[] = []
    for (const group of startOrder(this.config).reverse()) {
      const now = group.filter((name) => wanted.includes(name))
      // Callers are told at once; requests under way finish within the grace period.
      for (const name of now) this.dataPlane.destination(name)!.endpoints.notStarted = STOPPED_BY_MESH_STOP
      await Promise.all(
        now.flatMap((name) =>
          this.instancesOf(name).map(async (instance) => {
            await this.removeInstance(instance)
            stopped.push(instance)
          }),
        ),
      )
      for (const name of now) this.emitEvent({kind: 'service-stopped', service: name})
    }
    return stopped
  }

  /** Whether the mesh runs the service's instances (`mesh up SERVICE...` leaves the others declared only). */
  isStarted(service: string): boolean {
    return this.dataPlane.destination(service)?.endpoints.notStarted === undefined
  }

  /** `mesh up --watch`: one watcher per service with `watch:` paths. */
  private startWatching(): void {
    for (const service of this.config.services) {
      if (!service.watch) continue
      this.watchers.push(new FileWatcher({paths: service.watch, onChange: (files) => void this.filesChanged(service.name, files)}).start())
    }
  }

  /**
   * Restarts the service's instances one at a time (a restart deploy: each replacement healthy
   * before the old one is drained, so code that no longer starts leaves the old instances
   * serving). Changes during a restart, or during another deploy of it, make one more after it.
   */
  private async filesChanged(service: string, files: string[]): Promise<void> {
    // Stopped (or never started): `mesh up` will start it on the files as they are then.
    if (!this.isStarted(service)) return
    const pending = this.changedFiles.get(service)
    if (pending) return void files.forEach((f) => pending.add(f))
    const changed = new Set(files)
    this.changedFiles.set(service, changed)
    try {
      while (changed.size > 0 && this.phase === 'running') {
        await this.deploys.whenIdle(service)
        const now = [...changed].map((f) => path.relative(this.config.dir, f) || f)
        changed.clear()
        this.emitEvent({kind: 'files-changed', service, files: now})
        try {
          this.deploys.start(parseRestartPlan(service, {}))
        } catch (error) {
          console.error(`[daemon] ${service}: watch restart refused: ${(error as Error).message}`)
        }
      }
    } finally {
      this.changedFiles.delete(service)
    }
  }

  /** A one-shot job: some caller waits for it to complete (compose's service_completed_successfully). */
  private isJob(service: string): boolean {
    return this.config.services.some((s) => s.dependsOnConditions?.[service] === 'service_completed_successfully')
  }

  private emitEvent(event: DaemonEvent): void {
    this.events.push(event, this.clock.wallNow())
    this.emit('event', event)
  }

  /**
   * Adds a fault. Per-request kinds go to the data path's FaultSet; kill and pause
   * act on processes through the supervisor (kill is instant and only reported).
   */
  injectFault(spec: FaultSpec): FaultInfo {
    const service = this.config.services.find((s) => s.name === spec.service)
    if (!service) throw serviceNotFound(spec.service, this.serviceNames())
    if (spec.version && !service.versions.some((v) => v.name === spec.version)) {
      throw new MeshError('MESH_VERSION_NOT_FOUND', `service "${spec.service}" has no version "${spec.version}".`, {
        hints: [`Its versions: ${service.versions.map((v) => v.name).join(', ')}`],
      })
    }
    if (spec.version && spec.at === 'caller') {
      throw new MeshError('MESH_BAD_FLAG', 'a fault on the caller side acts before a version is chosen, so it cannot target one version.', {
        hints: ['Drop @VERSION, or use --at callee.'],
      })
    }
    if (spec.from && !this.config.services.some((s) => s.name === spec.from) && spec.from !== 'ingress') {
      const callers = [...this.config.services.map((s) => s.name), 'ingress']
      throw new MeshError('MESH_SERVICE_NOT_FOUND', `--from "${spec.from}" is not a service in the mesh (or "ingress")${suggestion(spec.from, callers) || '.'}`)
    }
    const flag = service.protocol === 'tcp' ? requestOnlySelector(spec) : undefined
    if (flag) {
      throw new MeshError('MESH_BAD_FLAG', `"${spec.service}" is protocol: tcp: its connections have no ${flag} for --${flag} to select, so the fault would never act.`, {
        hints: ['Choose connections with --from, --percent or --first instead.'],
      })
    }
    if (spec.kind !== 'kill' && spec.kind !== 'pause') return this.faults.add(spec)

    const targets = [...this.instances.values()]
      .filter((i) => i.service === service && (!spec.version || i.version.name === spec.version))
      .filter((i) => this.supervisor.status(i.name)?.state === 'running')
      .slice(0, spec.count ?? 1)
      .map((i) => i.name)
    if (targets.length === 0) {
      throw new MeshError('MESH_NO_INSTANCE', `no running instance of "${spec.service}" to ${spec.kind}.`, {
        hints: ['Instances the mesh does not start (address:) cannot be killed or paused.'],
      })
    }
    if (spec.kind === 'kill') {
      const info = this.faults.add({...spec, durationMs: 0})
      for (const name of targets) void this.supervisor.kill(name, 'SIGKILL')
      return {...info, instances: targets}
    }
    const info = this.faults.add({...spec, durationMs: spec.pauseMs ?? spec.durationMs ?? 10_000})
    this.faults.update(info.id, {instances: targets})
    for (const name of targets) void this.supervisor.kill(name, 'SIGSTOP')
    return {...info, instances: targets}
  }

  /**
   * Open-loop load through the ingress until stopped (canary `--load`): on the route to
   * the service, or else on one to a service that calls it (the shop's recommendations
   * sits behind frontend and catalog).
   */
  private driveLoad(service: string, rps: number): {stop(): void; message: string} {
    const reach = ingressPathTo(this.config, service)
    if (!reach || !this.ingressUrl) {
      throw new MeshError('MESH_BAD_FLAG', `--load needs an ingress route to "${service}" or to a service that calls it, and mesh.yaml has none.`, {
        hints: ['Add one under ingress.routes, or drive traffic yourself with `mesh load`.'],
      })
    }
    const abort = new AbortController()
    const path = reach.route.prefix
    void runLoad({target: this.ingressUrl, path, rps, durationMs: 24 * 3_600_000, signal: abort.signal}).catch(() => undefined)
    return {
      stop: () => abort.abort(),
      message: `${rps} requests/s through the ingress at ${path} (${['ingress', ...reach.services].join(' → ')})`,
    }
  }

  /** The mesh as deploy strategies see it: instances, weights, routes, live signals. */
  private deployTarget(): DeployTarget {
    const destination = (service: string) => {
      const d = this.dataPlane.destination(service)
      if (!d) throw serviceNotFound(service, this.serviceNames())
      return d
    }
    return {
      clock: this.clock,
      service: (name) => {
        const s = this.config.services.find((x) => x.name === name)
        if (!s) throw serviceNotFound(name, this.serviceNames())
        return s
      },
      instancesOf: (service, version) => this.instancesOf(service, version),
      addInstances: (service, version, count, timeoutMs, signal) => this.addInstances(service, version, count, timeoutMs, signal),
      removeInstance: (name) => this.removeInstance(name),
      weights: (service) => new Map(destination(service).endpoints.currentWeights()),
      setWeights: (service, weights) => destination(service).endpoints.setWeights(new Map(weights)),
      addRoute: (service, header, version) => {
        const rule = {match: {headers: {[header.name]: header.value}}, version}
        return destination(service).overlay((p) => ({...p, routes: [rule, ...p.routes]}))
      },
      notStarted: (service) => destination(service).endpoints.notStarted,
      // Over mesh.yaml's mirror while the deploy runs; once undone, whatever mesh.yaml says now stands.
      addMirror: (service, version) => destination(service).overlay((p) => ({...p, mirror: {version, percent: 100}})),
      versionStats: (service, version, windowMs) => {
        const row = this.telemetry.metrics
          .stat({by: 'version', windowMs}, this.clock.now())
          .find((r) => r.service === service && r.version === version)
        // Every attempt the version served (reporter destination): retries must not hide a bad canary.
        return {requests: row?.actualRequests ?? 0, successRate: row?.actualSuccessRate, p99Ms: row?.p99}
      },
      smoke: async (instance, method, path) => {
        const inst = this.instances.get(instance)
        if (!inst) return {ok: false, status: 0, detail: 'no such instance'}
        try {
          const r = await request(`${inst.endpoint.origin}${path}`, {method: method as 'GET', headersTimeout: 5_000, bodyTimeout: 5_000})
          await r.body.dump()
          return {ok: r.statusCode < 400, status: r.statusCode, detail: `HTTP ${r.statusCode}`}
        } catch (error) {
          return {ok: false, status: 0, detail: (error as Error).message}
        }
      },
      check: (command, names, timeoutMs) => {
        // Through each new instance's sidecar (its published address): faults and spans apply, as to any caller.
        const urls = names.map((n) => this.instances.get(n)).filter((i): i is Instance => i !== undefined).map((i) => `http://127.0.0.1:${i.endpoint.inboundPort}`)
        const env = {CANARY_URL: urls[0] ?? '', CANARY_URLS: urls.join(' ')}
        return probeCommand(command, {cwd: this.config.dir, env}, timeoutMs)
      },
    }
  }

  private onFaultChange(kind: 'added' | 'removed' | 'expired', f: FaultInfo): void {
    // A paused group runs again when its fault ends, however it ends.
    if (f.kind === 'pause' && kind !== 'added') for (const name of f.instances ?? []) void this.supervisor.kill(name, 'SIGCONT')
    this.emitEvent({kind: `fault-${kind}`, service: f.service, fault: describeFault(f), id: f.id})
  }

  private serviceNames(): string[] {
    return this.config.services.map((s) => s.name)
  }

  /** One trace's spans, by full id or a unique prefix (as `mesh traces` prints them). */
  trace(id: string): Span[] {
    const ids = this.telemetry.traces.has(id) ? [id] : this.telemetry.traces.findByPrefix(id)
    if (ids.length === 0) {
      throw new MeshError('MESH_TRACE_NOT_FOUND', `no trace ${id} in the store.`, {
        hints: ['List recent traces with `mesh traces`; the store keeps the newest ones only.'],
      })
    }
    if (ids.length > 1) throw new MeshError('MESH_TRACE_AMBIGUOUS', `${ids.length} traces start with ${id}.`, {hints: ['Give more of the id.']})
    return this.telemetry.traces.get(ids[0])
  }

  /** `mesh apply` (config-apply.ts), in turn with stop and start. */
  apply(env?: NodeJS.ProcessEnv): Promise<ApplyResult> {
    return this.inTurn(() => this.applier.apply(env))
  }

  /** Runs fn once every apply, stop and start asked for before it has finished; refused once the mesh is stopping. */
  private inTurn<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.mutating.then(() => {
      if (this.phase === 'stopping') throw new MeshError('MESH_STOPPING', `mesh "${this.config.name}" is stopping; nothing was changed.`)
      return fn()
    })
    this.mutating = result.catch(() => undefined)
    return result
  }

  /**
   * Resolves when each instance is ready: healthy, or finished with exit 0 (a one-shot job);
   * with a compose condition, only completed, or only running. Rejects, naming the
   * instance, on a crash loop, a job that failed, or the deadline.
   */
  private waitReady(names: string[], timeoutMs: number, signal?: AbortSignal, condition: DependencyCondition = 'service_healthy'): Promise<void> {
    const watched = () => names.map((n) => this.instances.get(n)).filter((i): i is Instance => i !== undefined)
    const ready = (inst: Instance): boolean => {
      if (inst.health === 'completed') return true
      if (condition === 'service_completed_successfully') return false
      return inst.health === 'healthy' || (condition === 'service_started' && this.supervisor.status(inst.name)?.state === 'running')
    }
    return new Promise((resolve, reject) => {
      const check = () => {
        if (watched().every(ready)) return finish()
        for (const inst of watched()) {
          const s = this.supervisor.status(inst.name)
          if (inst.health === 'failed') {
            const policy = inst.service.maxRestarts === undefined ? inst.service.restart : `${inst.service.restart}:${inst.service.maxRestarts}`
            return finish(this.startupError(inst, `failed (${inst.healthDetail ?? 'exited'}) and is not restarted (restart: ${policy})`))
          }
          if (s?.state === 'crash-loop') {
            const exit = s.lastExit ? `exit code ${s.lastExit.code ?? s.lastExit.signal}` : (s.lastError ?? 'no exit status')
            return finish(this.startupError(inst, `crashed ${s.restarts + 1} times while starting (${exit})`))
          }
        }
      }
      // Events cover health changes; the supervisor's crash-loop state is read on every exit too.
      const onEvent = () => check()
      const deadline = this.clock.setTimer(timeoutMs, () => {
        const waiting = watched().find((i) => !ready(i))!
        const within = `within ${Math.round(timeoutMs / 1000)}s`
        if (condition === 'service_completed_successfully' || !waiting.checker) return finish(this.startupError(waiting, `did not complete ${within} (still running)`))
        finish(this.startupError(waiting, `did not become healthy ${within} (${waiting.healthDetail ?? 'no probe answered'})`))
      })
      const onAbort = () => finish(abortError(signal!))
      const finish = (error?: Error) => {
        this.off('event', onEvent)
        this.supervisor.off('restart-scheduled', onEvent)
        signal?.removeEventListener('abort', onAbort)
        deadline.cancel()
        if (error) reject(error)
        else resolve()
      }
      this.on('event', onEvent)
      this.supervisor.on('restart-scheduled', onEvent)
      // Aborted while the instances were being created: no wait at all.
      if (signal?.aborted) return onAbort()
      signal?.addEventListener('abort', onAbort, {once: true})
      check()
    })
  }

  private startupError(inst: Instance, why: string): MeshError {
    const tail = inst.logFile ? tailLines(inst.logFile, 15) : []
    return new MeshError('MESH_STARTUP_FAILED', `instance ${inst.name} ${why}.`, {
      hints: [
        ...(tail.length ? [`Last lines of ${path.relative(process.cwd(), inst.logFile ?? '')}:`, ...tail.map((l) => `  ${l}`)] : []),
        `See all of it with \`mesh logs ${inst.service.name}\`.`,
      ],
    })
  }

  private instanceStatus(inst: Instance): InstanceStatus {
    const p = this.supervisor.status(inst.name)
    const toIso = (ms?: number) => (ms === undefined ? undefined : new Date(this.clock.wallNow() - (this.clock.now() - ms)).toISOString())
    return {
      instance: inst.name,
      service: inst.service.name,
      version: inst.version.name,
      kind: inst.version.workload.kind,
      address: `${inst.endpoint.host}:${inst.endpoint.port}`,
      inboundAddress: `127.0.0.1:${inst.endpoint.inboundPort}`,
      outbound: inst.outbound,
      pid: p?.pid,
      state: p?.state ?? 'external',
      health: inst.health,
      healthDetail: inst.healthDetail,
      registered: this.registry.isRegistered(inst.name, inst.service.name),
      ejected: this.ejection(inst),
      restarts: p?.restarts ?? 0,
      lastExit: p?.lastExit && {code: p.lastExit.code, signal: p.lastExit.signal, at: toIso(p.lastExit.atMs)!},
      nextRestartAt: toIso(p?.nextRestartAtMs),
    }
  }

  private ejection(inst: Instance): InstanceStatus['ejected'] {
    const e = this.dataPlane.destination(inst.service.name)?.outlier?.ejections().find((x) => x.id === inst.name)
    if (!e) return undefined
    const until = new Date(this.clock.wallNow() + (e.untilMs - this.clock.now())).toISOString()
    return {until, times: e.times, reason: e.reason}
  }

  private saveState(): void {
    if (!this.controlUrl || this.stopping) return
    writeState(this.paths, {
      version: 1,
      name: this.config.name,
      configFile: this.config.file,
      daemon: {pid: process.pid, startTime: this.lock?.owner.startTime ?? ''},
      processTable: this.supervisor.table.kind,
      stopGraceMs: Math.max(...this.config.services.map((s) => s.stopGracePeriodMs), 1000),
      controlUrl: this.controlUrl,
      tokenFile: this.paths.token,
      ingressUrl: this.ingressUrl,
      startedAt: this.startedAt.toISOString(),
      children: this.supervisor.records().map((r) => ({...r, service: this.instances.get(r.instance)?.service.name ?? ''})),
    })
  }
}

function traceQuery(p: QueryOf<'GET /v1/traces'>): TraceQuery {
  return {
    service: p.service,
    errorsOnly: p.errors === '1',
    minDurationMs: p.minDurationMs !== undefined ? Number(p.minDurationMs) : undefined,
    sinceMs: p.since !== undefined ? Number(p.since) : undefined,
    completeOnly: p.complete === '1',
    limit: p.limit !== undefined ? Number(p.limit) : undefined,
  }
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`
}
