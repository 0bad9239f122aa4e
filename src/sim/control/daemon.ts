// One daemon per mesh: it composes the parts and serves the control API, as linkerd's
// app/src/lib.rs composes identity, destination, policy, tap and admin. What a part does
// lives in its own module; here it is built, handed what it needs, and routed to.
//
//   constructor: what requests meet (Registry, Telemetry, FaultSet) ─▶ DataPlane
//                what changes the mesh (Supervisor ─▶ InstanceManager, DeployController, ConfigApply)
//   start():     lock, logs, token ─▶ ingress listener ─▶ control API ─▶ instances (bringUp)
//   stop():      drain ─▶ instances stopped ─▶ telemetry, control API closed ─▶ state removed
import {EventEmitter} from 'node:events'
import {mkdirSync} from 'node:fs'
import type {MeshConfig} from '../config/types.js'
import {versionWeights} from '../config/versions.js'
import {MeshError, serviceNotFound} from '../errors.js'
import {DataPlane} from '../proxy/data-plane.js'
import {Telemetry} from '../telemetry/telemetry.js'
import {WarmUp, warmUpTargets} from './warm-up.js'
import {PROMETHEUS_CONTENT_TYPE, renderPrometheus} from '../telemetry/prometheus.js'
import {MeshEventLog} from './scaling-history.js'
import {activeCertFault, describeFault, type FaultInfo, type FaultSpec} from '../faults/fault.js'
import {FaultSet} from '../faults/fault-set.js'
import {DeployController} from '../deploy/deploy-controller.js'
import {ScaleOwners} from '../deploy/scale-owners.js'
import {WatchRestarts} from './watch-restarts.js'
import {deployTarget} from './deploy-target.js'
import {canaryLoad} from '../load/canary-load.js'
import type {ApplyResult} from './policy-diff.js'
import {ConfigApply} from './config-apply.js'
import {injectFault, resumeWhenPauseEnds} from './fault-inject.js'
import {seedFrom} from '../time/random.js'
import type {Supervisor} from '../supervisor/supervisor.js'
import {simulationHosts} from '../supervisor/hosted-driver.js'
import {type MixedDriver, workloadDriver} from '../supervisor/mixed-driver.js'
import type {Clock} from '../time/clock.js'
import {TickClock} from '../time/tick-clock.js'
import {ControlServer} from './control-server.js'
import {findTrace, spansOf, tap, traceQuery} from './telemetry-queries.js'
import {rotateLogs} from './log-files.js'
import {tuneHeapForProxying} from './heap-tuning.js'
import {Registry} from '../proxy/registry.js'
import {type InstanceEvent, InstanceManager} from './instance-manager.js'
import {createToken, type MeshPaths, meshPaths, removeState, writeState} from './state-file.js'
import {acquireMeshLock, type MeshLock} from './mesh-lock.js'
import {OneAtATime} from './one-at-a-time.js'
import type {MeshStatus} from './status.js'
import {meshStatus} from './mesh-status.js'
import {type IngressUrls, listenIngress} from '../proxy/ingress-listeners.js'
import {profileEnabled, servicesToStart, whyLeftOut} from '../config/profiles.js'
import {securityOf} from '../config/security-schema.js'
import {WorkloadIdentities} from '../security/workload-identity.js'
import {WorkloadFiles} from '../security/workload-files.js'
import {MeshJwt} from '../security/jwt/mesh-jwt.js'
import {Autoscaler, type ScaleFailedEvent, type ScalingEvent, servedBy} from '../scaling/autoscaler.js'
import {ActivationHub} from '../scaling/activation.js'

export type DaemonEvent =
  | InstanceEvent
  | ScalingEvent | ScaleFailedEvent
  /** `mesh up --watch`: files under a service's `watch:` paths changed, so its instances are restarted. */
  | {kind: 'files-changed'; service: string; files: string[]}
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

export class MeshDaemon extends EventEmitter {
  readonly paths: MeshPaths
  readonly registry: Registry
  readonly dataPlane: DataPlane
  readonly telemetry: Telemetry
  /** The data path's telemetry sink: the telemetry, less the warm-up's requests (warm-up.ts). */
  readonly warmUp: WarmUp
  readonly faults: FaultSet
  readonly deploys: DeployController
  /** What runs the workloads: the process supervisor, or it and the simulation hosts. */
  readonly workloads: Supervisor | MixedDriver
  readonly instances: InstanceManager
  readonly jwt: MeshJwt
  readonly autoscaler: Autoscaler
  readonly activation = new ActivationHub()
  private readonly clock: Clock
  readonly events = new MeshEventLog<DaemonEvent>(500)
  private control?: ControlServer
  private controlUrl = ''
  private ingress?: IngressUrls
  private phase: MeshStatus['phase'] = 'starting'
  private readonly startedAt = new Date()
  private stopping?: Promise<void>
  private readonly applier: ConfigApply
  /** apply, stop and start. */
  private readonly changes = new OneAtATime()
  /** Held from before the token is written until after state.json is removed (mesh-lock.ts). */
  private lock?: MeshLock
  private watch?: WatchRestarts
  /** Each service's certificate from the mesh CA (set in start(): the CA is read from disk). */
  identities?: WorkloadIdentities
  private certFiles?: WorkloadFiles

  constructor(
    readonly config: MeshConfig,
    private readonly opts: DaemonOptions = {},
  ) {
    super()
    // Read once per callback: the data path asks the time ~10 times per request (tick-clock.ts).
    this.clock = opts.clock ?? new TickClock()
    this.paths = meshPaths(config.dir)
    // What every request meets, built first: the DataPlane is handed each of them.
    this.registry = new Registry(config.services.map((s) => s.name))
    this.telemetry = new Telemetry({
      clock: this.clock,
      accessLogDir: config.telemetry?.accessLog ? this.paths.access : undefined,
      otlpEndpoint: config.telemetry?.otlpEndpoint,
      spansPerSecond: config.telemetry?.spansPerSecond,
    })
    this.warmUp = new WarmUp(this.telemetry, this.clock)
    this.faults = new FaultSet(this.clock, (kind, f) => this.onFaultChange(kind, f))
    this.jwt = new MeshJwt({config, clock: this.clock, registry: this.registry, faults: this.faults})
    this.dataPlane = new DataPlane(this.registry, config.services, new Map(config.services.map((s) => [s.name, versionWeights(s)])), {
      clock: this.clock,
      faults: this.faults,
      allowFaultHeaders: config.faults.allowHeaders,
      maxRequestHeaders: config.ingress?.maxRequestHeaders,
      authn: this.jwt.authenticators,
      sink: this.warmUp,
      tcpMetrics: this.telemetry.tcp,
      seed: seedFrom(config.name),
      // The detector decides; the instance manager keeps the record (and logs it).
      onOutlierEvent: (service, e) => this.instances.outlierChanged(service, e),
      activation: this.activation,
      accountConcurrency: () => this.config.functions?.accountConcurrency,
    })
    // What changes the mesh, on top of the data plane: instances (their workloads through the
    // Supervisor), deploys over them, and `mesh apply`.
    this.workloads = workloadDriver({hosts: simulationHosts(config.simulation, process.env), logDir: this.paths.logs, clock: this.clock, backoff: opts.backoff})
    this.instances = new InstanceManager({
      config,
      clock: this.clock,
      dataPlane: this.dataPlane,
      registry: this.registry,
      driver: this.workloads,
      logDir: this.paths.logs,
      onEvent: (event) => this.emitEvent(event),
      onChange: () => this.saveState(),
      tlsFiles: (service) => this.certFiles!.ensure(service),
    })
    // Whether a deploy or the autoscaler sets each version's count (deploy/scale-owners.ts).
    const owners = new ScaleOwners()
    owners.onChange(() => this.autoscaler.sync())
    this.deploys = new DeployController(
      deployTarget({clock: this.clock, config, dataPlane: this.dataPlane, instances: this.instances, telemetry: this.telemetry, owners, scalingIdle: (s) => this.autoscaler.whenIdle(s)}),
      {
        onStep: (record, step) =>
          this.emitEvent({kind: 'deploy-step', service: record.plan.service, id: record.id, step: step.kind, message: step.message}),
        startLoad: (plan) => canaryLoad(this.config, this.ingress, this.paths.ca, plan.service, plan.canary!.loadRps!),
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
      instances: this.instances,
      profileEnabled: (service) => profileEnabled(service, this.opts.profiles ?? []),
      onApplied: (changes) => (owners.forgetRetired(), this.autoscaler.sync(), this.emitEvent({kind: 'config-applied', changes})),
    })
    this.autoscaler = new Autoscaler({config, clock: this.clock, target: this.instances, activation: this.activation, inflight: (s) => this.dataPlane.load(s)?.instances ?? {}, served: (s, v) => servedBy(this.telemetry.metrics, s, v), onEvent: (e) => this.emitEvent(e), onError: (s, e) => console.error(`[daemon] scaling ${s}: ${e.message}`), deploying: (s, v) => owners.owner(s, v)})
    this.workloads.on('spawn', () => this.saveState())
    this.workloads.on('records', () => this.saveState())
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
    await this.jwt.start(this.config.dir)
    await this.instances.checkFixedPorts()
    const {trustDomain, certTtlMs, mtls} = securityOf(this.config)
    this.identities = await WorkloadIdentities.start({caDir: this.paths.ca, trustDomain, mesh: this.config.name, certTtlMs, clock: this.clock, onError: (s, e) => console.error(`[daemon] certificate of ${s}: ${e.message}`)})
    this.certFiles = new WorkloadFiles(this.paths.certs, this.identities)
    this.dataPlane.useIdentities(this.identities, mtls)

    if (this.config.ingress) this.ingress = await listenIngress(this.dataPlane, this.config.ingress)

    this.control = new ControlServer(token)
      .serve({
        'GET /v1/status': () => this.status(),
        'GET /v1/events': ({query}) => this.events.since(Number(query.since ?? 0)),
        'GET /v1/traces': ({query}) => this.telemetry.traces.list(traceQuery(query)),
        'GET /v1/spans': ({query}) => spansOf(this.telemetry.traces, query),
        'GET /v1/trace': ({query}) => findTrace(this.telemetry.traces, query.id ?? ''),
        'GET /v1/trace-store': () => ({...this.telemetry.traces.stats(), sampling: this.telemetry.sampler.stats()}),
        'GET /v1/stat': ({query}) => this.telemetry.metrics.stat({by: query.by ?? 'service', windowMs: Number(query.windowMs ?? 30_000)}, this.clock.now()),
        'GET /v1/tcp': () => this.telemetry.tcp.series(),
        'GET /v1/exec': ({query}) => this.instances.execTarget(query.service ?? '', query.version, query.instance),
        'POST /v1/stop': ({body}) => this.inTurn(() => this.stopServices(body.services)).then(() => this.status()),
        'POST /v1/start': ({body: {services, profiles}}) =>
          this.inTurn(() => {
            // Enabled from now on: a service `mesh apply` adds in one of them starts too.
            if (profiles?.length) this.opts.profiles = [...new Set([...(this.opts.profiles ?? []), ...profiles])]
            return this.startServices(services)
          }).then(() => this.status()),
        'POST /v1/apply': ({body}) => (body?.dryRun ? this.applier.plan(body.env) : this.apply(body?.env)),
        'GET /v1/faults': () => this.faults.list(),
        'GET /v1/jwks': () => this.jwt.jwks(),
        'POST /v1/faults': async ({body}) => {
          const info = this.injectFault(body)
          // Answered once the bad certificate is presented: the next connection meets it.
          if (info.kind === 'cert') await this.identities!.certificate(info.service)
          return info
        },
        'POST /v1/faults/clear': ({body}) => this.faults.clear(body),
        'POST /v1/deploys': ({body}) => this.deploys.start(body),
        'GET /v1/deploys': ({query: {service}}) => {
          const records = this.deploys.history(service)
          // A service apply removed keeps its history; a name that never was is a typo.
          if (service && records.length === 0 && !this.config.services.some((s) => s.name === service)) throw serviceNotFound(service, this.serviceNames())
          return records
        },
        'GET /v1/deploy': ({query}) => this.deploys.get(query.id ?? ''),
        'GET /v1/scaling': ({query}) => this.events.scaling.of(query.service),
        'POST /v1/rollback': ({body}) => this.deploys.rollback(body.service),
        'GET /v1/certs': () => this.certFiles!.list(),
        'POST /v1/certs/rotate': async ({body: {service}}) => {
          if (service) this.assertService(service)
          await this.identities!.rotate(service)
          return this.certFiles!.list()
        },
        'POST /v1/warm-up': () => this.warmUp.run(warmUpTargets(this.config, this.status())),
        'POST /v1/down': () => {
          // Answer first, then stop: the caller waits for our pid to go away.
          setImmediate(() => void this.stop().then(() => this.emit('stopped')))
          return {stopping: true}
        },
      })
      .stream('/v1/tap', (query) => tap(query, {clock: this.clock, telemetry: this.telemetry, services: this.serviceNames()}))
      .text('/metrics', PROMETHEUS_CONTENT_TYPE, () => renderPrometheus(this.telemetry.metrics.promSeries(), this.telemetry.tcp.series(), this.telemetry.metrics.coldStartSeries()))
    this.controlUrl = await this.control.listen()
    this.saveState()

    // The CLI's selection (mesh up SERVICE..., profiles), closed over what it needs by the one rule `mesh up` uses.
    const selected = new Set(servicesToStart(this.config, this.opts.only ?? [], this.opts.profiles ?? []) ?? this.serviceNames())
    // Declared only: callers are told why, and `mesh up SERVICE` starts it later.
    for (const s of this.config.services) if (!selected.has(s.name)) this.instances.markNotStarted(s.name, whyLeftOut(s, this.opts.profiles ?? []))
    // Before any instance starts: its first requests meet mesh.yaml's faults.
    for (const spec of this.config.faults.inject) this.injectFault(spec)
    await this.instances.bringUp(selected, this.opts.startupTimeoutMs ?? 60_000)
    this.phase = 'running'
    this.autoscaler.start()
    this.jwt.started()
    if (this.opts.watch) {
      this.watch = new WatchRestarts({
        config: this.config,
        deploys: this.deploys,
        isStarted: (service) => this.instances.isStarted(service),
        isRunning: () => this.phase === 'running',
        onFilesChanged: (service, files) => this.emitEvent({kind: 'files-changed', service, files}),
      }).start()
    }
  }

  status(): MeshStatus {
    return meshStatus(this, {phase: this.phase, controlUrl: this.controlUrl, ingressUrl: this.ingress?.url, ingressHttpsUrl: this.ingress?.httpsUrl, startedAt: this.startedAt, watching: this.opts.watch ?? false})
  }

  /**
   * Drain traffic and stop processes, remove state. Each instance's stopGracePeriod is its
   * whole budget (InstanceManager.stopAll), then what is left of any process is stopped at once.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.phase = 'stopping'
      this.warmUp.close()
      this.watch?.close()
      await this.autoscaler.stop()
      // A paused process (SIGSTOP) would finish none of its requests.
      for (const f of this.faults.list()) if (f.kind === 'pause') this.faults.remove(f.id)
      const drained = this.dataPlane.drain(this.instances.longestStopGraceMs())
      // Every request in the mesh, not only the instance's own: one under way may still call it.
      const underWay = () => this.dataPlane.inflightRequests
      await this.instances.stopAll(underWay)
      await drained
      this.faults.close()
      await this.workloads.stopAll(0)
      this.identities?.stop()
      this.certFiles?.close()
      await this.telemetry.close()
      await this.control?.close()
      this.release()
    })()
    return this.stopping
  }

  /** A second Ctrl-C: no more grace. Every process SIGKILLed at once, no state left behind. */
  killNow(): void {
    this.workloads.killAll()
    this.release()
  }

  /** Only the mesh that owns this directory removes its files: one that lost the race for the lock leaves the winner's alone. */
  private release(): void {
    if (!this.lock) return
    removeState(this.paths)
    this.lock.release()
  }

  /**
   * `mesh up SERVICE...` on a running mesh (as compose starts more services of a running
   * project): the named services not started yet, and what they depend on, in start order,
   * each healthy (or completed) before what depends on it starts.
   */
  async startServices(names: string[]): Promise<string[]> {
    for (const name of names) this.assertService(name)
    // As `mesh up` decides it: a dependency whose profile is off is refused (or, optional, left out).
    const wanted = new Set(servicesToStart(this.config, names, this.opts.profiles ?? []))
    return this.instances.startServices(wanted)
  }

  /**
   * `mesh stop [SERVICE...]`, as `docker compose stop`: the services' instances drained and
   * stopped (every started service's without names), in reverse start order so a caller
   * stops before what it calls; they stay declared — callers get 503 UH saying so — until
   * `mesh up` starts them again. What depends on them keeps running, as in compose.
   */
  async stopServices(names: string[]): Promise<string[]> {
    for (const name of names) this.assertService(name)
    const wanted = (names.length ? names : this.serviceNames()).filter((name) => this.instances.isStarted(name))
    // Checked for all first: nothing stops when one of them is mid-deploy.
    for (const name of wanted) {
      const deploy = this.deploys.inProgress(name)
      if (deploy) throw new MeshError('MESH_DEPLOY_IN_PROGRESS', `"${name}" has a deploy in progress (${deploy}); nothing was stopped.`, {hints: [`Wait for it, or \`mesh rollback ${name}\` first.`]})
    }
    return this.instances.stopServices(wanted)
  }

  private emitEvent(event: DaemonEvent): void {
    this.events.push(event, this.clock.wallNow())
    this.emit('event', event)
  }

  /** Adds a fault (fault-inject.ts): kill and pause act on instances, the others on requests. */
  injectFault(spec: FaultSpec): FaultInfo {
    return injectFault(spec, {config: this.config, faults: this.faults, instances: this.instances})
  }

  private onFaultChange(kind: 'added' | 'removed' | 'expired', f: FaultInfo): void {
    resumeWhenPauseEnds(kind, f, this.instances)
    // However a cert fault ends, the service presents what is left: another cert fault, or its genuine certificate.
    if (f.kind === 'cert') void this.identities?.setFault(f.service, activeCertFault(this.faults.list(), f.service)).catch((e: Error) => console.error(`[daemon] certificate of ${f.service}: ${e.message}`))
    this.emitEvent({kind: `fault-${kind}`, service: f.service, fault: describeFault(f), id: f.id})
  }

  private serviceNames(): string[] {
    return this.config.services.map((s) => s.name)
  }

  /** A name the CLI sent that mesh.yaml does not declare: MESH_SERVICE_NOT_FOUND, with the nearest name. */
  private assertService(name: string): void {
    if (!this.config.services.some((s) => s.name === name)) throw serviceNotFound(name, this.serviceNames())
  }

  /** `mesh apply` (config-apply.ts), in turn with stop and start. */
  apply(env?: NodeJS.ProcessEnv): Promise<ApplyResult> {
    return this.inTurn(() => this.applier.apply(env))
  }

  /** Runs fn once every apply, stop and start asked for before it has finished; refused once the mesh is stopping. */
  private inTurn<T>(fn: () => Promise<T>): Promise<T> {
    return this.changes.run(fn, () => {
      if (this.phase === 'stopping') throw new MeshError('MESH_STOPPING', `mesh "${this.config.name}" is stopping; nothing was changed.`)
    })
  }

  private saveState(): void {
    if (!this.controlUrl || this.stopping) return
    writeState(this.paths, {
      version: 1,
      name: this.config.name,
      configFile: this.config.file,
      daemon: {pid: process.pid, startTime: this.lock?.owner.startTime ?? ''},
      processTable: this.workloads.table.kind,
      stopGraceMs: this.instances.longestStopGraceMs(),
      controlUrl: this.controlUrl,
      tokenFile: this.paths.token,
      ingressUrl: this.ingress?.url,
      startedAt: this.startedAt.toISOString(),
      children: this.workloads.records().map((r) => ({...r, service: this.instances.serviceOf(r.instance) ?? ''})),
    })
  }
}
