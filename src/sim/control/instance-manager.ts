// Every instance of the mesh, from creation to removal: its sidecar listeners, its workload
// (through a WorkloadDriver), its health checks, its place in the registry, its drain.
// `mesh up`, `mesh apply` (ApplyHost), deploys (DeployTarget) and `mesh stop`/`start` all
// add and remove instances here, and status, exec and faults read them here.
//
//   createInstance ─▶ launch ─▶ driver.start + HealthChecker ─▶ healthy ─▶ Registry.add
//   removeInstance ─▶ Registry.remove ─▶ drain ─▶ driver.stop ─▶ listeners closed
//
// The record of an instance's state is kept here, one InstanceState per instance: its health
// (probes and exits), whether the outlier detector has ejected it and until when, whether it
// is leaving; and, per service, why it runs no instance on purpose (`notStarted`). The data
// path is told what it acts on: the registry learns who is healthy, the destination why a
// service is not started. Ejections are the one decision taken in the data path (the outlier
// detector, on each response); it reports them here (outlierChanged) and this is where they
// are read.
import {EventEmitter} from 'node:events'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import type {DependencyCondition, MeshConfig, ServiceConfig, VersionConfig} from '../config/types.js'
import {instanceName, meshInstanceEnv} from '../config/env-names.js'
import {activeVersions} from '../config/versions.js'
import {startOrder} from '../config/call-graph.js'
import {suggestion} from '../config/did-you-mean.js'
import {MeshError, serviceNotFound} from '../errors.js'
import {abortError} from '../abort-signal.js'
import type {DataPlane, ListenerInfo} from '../proxy/data-plane.js'
import {HealthChecker, probeCommand, probeGrpc, probeHttp, probeTcp} from '../supervisor/health-check.js'
import type {InstanceSpec, ProcessStatus} from '../supervisor/supervisor.js'
import type {WorkloadDriver} from '../supervisor/workload-driver.js'
import type {Clock} from '../time/clock.js'
import type {OutlierEvent} from '../proxy/outlier/outlier-detector.js'
import {tailLines} from './log-files.js'
import {assertPortFree, freePort} from './ports.js'
import type {Endpoint, Registry} from '../proxy/registry.js'
import type {ExecTarget, InstanceHealth, InstanceStatus} from './status.js'
import {STOPPED_BY_MESH_STOP} from '../proxy/respond.js'

const SIMULATED_RUNNER = fileURLToPath(new URL('../model/simulated-service-main.js', import.meta.url))

/** What happens to instances, as the daemon's event log records it. */
export type InstanceEvent =
  | {kind: 'instance-healthy'; instance: string; service: string}
  | {kind: 'instance-unhealthy'; instance: string; service: string; detail: string}
  | {kind: 'instance-exited'; instance: string; service: string; code: number | null; signal: string | null}
  | {kind: 'service-healthy'; service: string}
  /** Every instance of a one-shot service (`restart: no` or on-failure) exited 0. */
  | {kind: 'service-completed'; service: string}
  | {kind: 'service-stopped'; service: string}
  | {kind: 'instance-ejected'; service: string; instance: string; reason: string}
  | {kind: 'instance-returned'; service: string; instance: string}

/** One instance's state: written only by the InstanceManager. */
export interface InstanceState {
  /** What its health checks and exits say. */
  health: InstanceHealth
  healthDetail?: string
  /** Out of load balancing (the outlier detector's decision) from sinceMs until untilMs, clock time. */
  ejected?: {sinceMs: number; untilMs: number; times: number; reason: string}
  /** Removal has begun: out of the registry, no restart or health check; drained, then stopped. */
  leaving: boolean
}

/** The state in one word: leaving, else ejected, else its health. */
export type InstancePhase = InstanceHealth | 'ejected' | 'draining'

export interface InstanceManagerOptions {
  /** The running config: apply edits it in place, so services are looked up in it each time. */
  config: MeshConfig
  clock: Clock
  dataPlane: DataPlane
  registry: Registry
  driver: WorkloadDriver
  /** Where each instance's log file goes. */
  logDir: string
  onEvent(event: InstanceEvent): void
  /** The set of instances or workloads changed (the daemon saves state.json). */
  onChange(): void
  /** The service's certificate files (MESH_TLS_*), written before its instance starts (workload-files.ts). */
  tlsFiles?(service: string): Promise<{cert: string; key: string; ca: string}>
}

interface Instance {
  name: string
  service: ServiceConfig
  version: VersionConfig
  endpoint: Endpoint
  logFile?: string
  state: InstanceState
  checker?: HealthChecker
  outbound?: {proxy: string; dependencies: Record<string, string>}
  listeners: ListenerInfo[]
  /** How the driver runs it; none for `address:` instances. */
  spec?: InstanceSpec
}

export class InstanceManager {
  private readonly instances = new Map<string, Instance>()
  private readonly nextIndex = new Map<string, number>()
  /** Services declared but run on purpose by no instance, and why (see notStarted). */
  private readonly notStartedWhy = new Map<string, string>()
  /** Health changes and exits, for waitReady. */
  private readonly changes = new EventEmitter()
  /** Set by stopAll: exits are then expected, and nothing restarts or is re-checked. */
  private stopping = false

  constructor(private readonly o: InstanceManagerOptions) {
    this.changes.setMaxListeners(0)
    o.driver.on('exit', (status, exit) => this.onExit(status, exit))
  }

  /** Before anything starts: a version's fixed `port:` that something else holds fails `mesh up` at once, naming it. */
  async checkFixedPorts(): Promise<void> {
    for (const s of this.o.config.services) {
      for (const v of s.versions) {
        if (v.port !== undefined && v.workload.kind !== 'address') {
          await assertPortFree(v.port, `service "${s.name}" (version ${v.name}, port:)`)
        }
      }
    }
  }

  /**
   * `mesh up`: creates the selected services' instances, then launches each service once
   * what it depends on is ready (healthy, or as its compose condition says running or
   * completed), so an app that connects at boot finds its dependencies up and a migration
   * has run. Resolves when every instance is ready; the first failure ends every wait.
   */
  async bringUp(selected: Set<string>, timeoutMs: number): Promise<void> {
    const {config, clock} = this.o
    for (const service of config.services) {
      if (!selected.has(service.name)) continue
      for (const version of service.versions) {
        if (!activeVersions(service).has(version.name)) continue
        for (let i = 0; i < version.replicas; i++) await this.createInstance(service, version)
      }
    }
    const deadline = clock.now() + timeoutMs
    const left = () => Math.max(1, deadline - clock.now())
    const namesOf = (service: string) => this.select(service).map((i) => i.name)
    const failed = new AbortController()
    const launched = new Map<string, Promise<void>>()
    for (const service of startOrder(config).flat()) {
      if (!selected.has(service)) continue
      const s = config.services.find((x) => x.name === service)!
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
    // None asked (a version scaled to zero, initialScale 0): started all the same, its first request starts one.
    if (count === 0) {
      this.markNotStarted(service.name, undefined)
      return []
    }
    // Creating the first instance declares the service started; a failure leaves it as it was.
    const notStarted = this.notStarted(service.name)
    const created: Instance[] = []
    try {
      for (let i = 0; i < count; i++) created.push(await this.createInstance(service, version))
      for (const inst of created) this.launch(inst)
      await this.waitReady(created.map((i) => i.name), timeoutMs, signal)
    } catch (error) {
      for (const inst of created) await this.removeInstance(inst.name)
      if (notStarted !== undefined && this.instancesOf(service.name).length === 0) this.markNotStarted(service.name, notStarted)
      throw error
    }
    return created.map((i) => i.name)
  }

  /**
   * `mesh up SERVICE...` on a running mesh: those of `wanted` not started yet, in start order,
   * each healthy (or completed) before what depends on it starts. Returns the instances begun.
   */
  async startServices(wanted: Set<string>): Promise<string[]> {
    const {config} = this.o
    const begun: string[] = []
    for (const name of startOrder(config).flat()) {
      if (!wanted.has(name) || this.isStarted(name)) continue
      const service = config.services.find((s) => s.name === name)!
      for (const version of service.versions) {
        if (activeVersions(service).has(version.name)) begun.push(...(await this.addInstances(service, version, version.replicas)))
      }
    }
    return begun
  }

  /**
   * `mesh stop`: the services' instances drained and removed, in reverse start order so a
   * caller stops before what it calls. They stay declared, callers told at once (503 UH)
   * that `mesh stop` stopped them, until started again. Returns the instances stopped.
   */
  async stopServices(services: string[]): Promise<string[]> {
    const stopped: string[] = []
    for (const group of startOrder(this.o.config).reverse()) {
      const now = group.filter((name) => services.includes(name))
      // Callers are told at once; requests under way finish within the grace period.
      for (const name of now) this.markNotStarted(name, STOPPED_BY_MESH_STOP)
      await Promise.all(
        now.flatMap((name) =>
          this.instancesOf(name).map(async (instance) => {
            await this.removeInstance(instance)
            stopped.push(instance)
          }),
        ),
      )
      for (const name of now) this.event({kind: 'service-stopped', service: name})
    }
    return stopped
  }

  /**
   * Takes an instance out of the mesh: out of the registry first (no new requests),
   * then its in-flight requests finish (up to graceMs), then its workload stops and
   * its listeners close.
   */
  async removeInstance(name: string, graceMs?: number): Promise<void> {
    const inst = this.instances.get(name)
    if (!inst || inst.state.leaving) return
    inst.state.leaving = true
    inst.checker?.stop()
    this.o.registry.remove(inst.service.name, name)
    await this.stopWithin(name, this.o.clock.now() + (graceMs ?? inst.service.stopGracePeriodMs))
    if (this.o.driver.status(name)) this.o.driver.forget(name)
    for (const l of inst.listeners) await this.o.dataPlane.closeListener(l)
    this.o.dataPlane.forgetInstance(name)
    this.instances.delete(name)
    this.o.onChange()
  }

  /**
   * The mesh is stopping: no more checks or restarts, and each instance's stopGracePeriod is
   * its whole budget from now, as in compose and Kubernetes: requests under way (`underWay`)
   * get until the period ends, then what is left of it goes to stopping its workload.
   */
  async stopAll(underWay: () => number): Promise<void> {
    this.stopping = true
    const startedAt = this.o.clock.now()
    for (const inst of this.instances.values()) inst.checker?.stop()
    await Promise.all([...this.instances.values()].map((inst) => this.stopWithin(inst.name, startedAt + inst.service.stopGracePeriodMs, underWay)))
  }

  /** The longest stopGracePeriod (at least 1 s): the daemon's drain budget, and how long `mesh down` waits for the daemon. */
  longestStopGraceMs(): number {
    return Math.max(...this.o.config.services.map((s) => s.stopGracePeriodMs), 1000)
  }

  /** Instances of one service (optionally one version) that are not leaving. */
  instancesOf(service: string, version?: string): string[] {
    return this.select(service, version).map((i) => i.name)
  }

  /** Up to `count` instances of the service (or version) whose workload runs: what kill and pause faults act on. */
  running(service: string, version: string | undefined, count: number): string[] {
    return this.select(service, version, {leaving: true})
      .filter((i) => this.o.driver.status(i.name)?.state === 'running')
      .slice(0, count)
      .map((i) => i.name)
  }

  /** An instance's state (a copy); undefined once it is removed. */
  state(name: string): InstanceState | undefined {
    const state = this.instances.get(name)?.state
    return state && {...state}
  }

  /** An instance's state in one word; `stopped` once it is removed (or for a name never created). */
  phase(name: string): InstancePhase | 'stopped' {
    const state = this.instances.get(name)?.state
    if (!state) return 'stopped'
    return state.leaving ? 'draining' : state.ejected ? 'ejected' : state.health
  }

  /**
   * What the data path's outlier detector decided: kept in the instance's state, and logged.
   * An ejection it forgot (the instance left the registry, detection was turned off) is no
   * longer one, but no return to log either.
   */
  outlierChanged(service: string, e: OutlierEvent): void {
    const state = this.instances.get(e.id)?.state
    if (e.kind === 'ejected') {
      if (state) state.ejected = {sinceMs: e.sinceMs, untilMs: e.untilMs, times: e.times, reason: e.reason}
      return this.event({kind: 'instance-ejected', service, instance: e.id, reason: e.reason})
    }
    if (state) state.ejected = undefined
    if (e.kind === 'returned') this.event({kind: 'instance-returned', service, instance: e.id})
  }

  /** A signal to an instance's workload (a kill or pause fault). */
  signal(name: string, signal: NodeJS.Signals): Promise<void> {
    return this.o.driver.signal(name, signal)
  }

  /** Where the instance itself listens, and its inbound sidecar. */
  endpoint(name: string): Endpoint | undefined {
    return this.instances.get(name)?.endpoint
  }

  serviceOf(name: string): string | undefined {
    return this.instances.get(name)?.service.name
  }

  /** Whether the mesh runs the service's instances (`mesh up SERVICE...` and `mesh stop` leave others declared only). */
  isStarted(service: string): boolean {
    return this.notStarted(service) === undefined
  }

  /** Why the service runs no instance; undefined when it is started. */
  notStarted(service: string): string | undefined {
    return this.notStartedWhy.get(service)
  }

  /** Declares the service not started (callers get 503 UH saying `why`) until an instance of it is created. */
  markNotStarted(service: string, why: string | undefined): void {
    if (why === undefined) this.notStartedWhy.delete(service)
    else this.notStartedWhy.set(service, why)
    this.o.dataPlane.destination(service)?.endpoints.declareNotStarted(why)
  }

  /** A service `mesh apply` removed: nothing is kept of it (its instances were removed first). */
  forgetService(service: string): void {
    this.notStartedWhy.delete(service)
  }

  /** What `mesh status` shows of each instance of the service, those leaving too. */
  statusOf(service: string): InstanceStatus[] {
    return this.select(service, undefined, {leaving: true}).map((i) => this.instanceStatus(i))
  }

  /**
   * What `mesh exec` runs a command as: an instance's environment (its env, <DEP>_URL and
   * HTTP_PROXY listeners, PORT…) and directory. The named instance, or the first healthy one.
   */
  execTarget(service: string, version: string | undefined, instance: string | undefined): ExecTarget {
    const services = this.o.config.services.map((s) => s.name)
    if (!services.includes(service)) throw serviceNotFound(service, services)
    const candidates = this.select(service, version)
    const chosen = instance
      ? candidates.find((i) => i.name === instance)
      : (candidates.find((i) => i.state.health === 'healthy' && i.spec) ?? candidates.find((i) => i.spec))
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

  /** The instances of a service (of one version, when named) in the order they were created; those leaving only when asked. */
  private select(service: string, version?: string, include: {leaving?: boolean} = {}): Instance[] {
    const out: Instance[] = []
    for (const i of this.instances.values()) {
      if (i.service.name === service && (!version || i.version.name === version) && (include.leaving || !i.state.leaving)) out.push(i)
    }
    return out
  }

  private async stopWithin(name: string, deadline: number, underWay = () => this.o.dataPlane.inflightTo(name)): Promise<void> {
    const {clock, driver} = this.o
    while (underWay() > 0 && clock.now() < deadline) await clock.sleep(20)
    if (driver.status(name)) await driver.stop(name, Math.max(0, deadline - clock.now()))
  }

  private async createInstance(service: ServiceConfig, version: VersionConfig): Promise<Instance> {
    const {dataPlane, config} = this.o
    this.markNotStarted(service.name, undefined)
    const key = `${service.name}\u0000${version.name}`
    const index = this.nextIndex.get(key) ?? 0
    this.nextIndex.set(key, index + 1)
    const name = instanceName(service.name, version.name, index)
    const w = version.workload
    const host = w.kind === 'address' ? w.host : '127.0.0.1'
    const port = w.kind === 'address' ? w.port : (version.port ?? (await freePort()))
    const inbound =
      service.protocol === 'tcp'
        ? await dataPlane.listenTcp({kind: 'tcp-inbound', instance: name, service: service.name})
        : await dataPlane.listen({kind: 'inbound', instance: name, service: service.name})
    const endpoint: Endpoint = {
      instance: name,
      service: service.name,
      version: version.name,
      host,
      port,
      inboundPort: inbound.port,
      origin: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    }
    dataPlane.setInstance(endpoint)
    const inst: Instance = {name, service, version, endpoint, state: {health: 'starting', leaving: false}, listeners: [inbound]}
    this.instances.set(name, inst)
    if (w.kind === 'address') return inst

    const listened: Array<{name: string; protocol?: 'grpc' | 'tcp'; port: number}> = []
    const dependencies: Record<string, string> = {}
    for (const dep of service.dependsOn) {
      const caller = {source: service.name, sourceVersion: version.name, sourceInstance: name, destination: dep}
      const protocol = config.services.find((s) => s.name === dep)?.protocol
      const l = protocol === 'tcp' ? await dataPlane.listenTcp({kind: 'tcp-outbound', ...caller}) : await dataPlane.listen({kind: 'outbound', ...caller})
      listened.push({name: dep, protocol, port: l.port})
      dependencies[dep] = `127.0.0.1:${l.port}`
      inst.listeners.push(l)
    }
    const proxy = await dataPlane.listen({kind: 'forward-proxy', source: service.name, sourceVersion: version.name, sourceInstance: name})
    inst.outbound = {proxy: `127.0.0.1:${proxy.port}`, dependencies}
    inst.listeners.push(proxy)
    const env = {
      ...version.env,
      ...meshInstanceEnv({
        port,
        service: service.name,
        version: version.name,
        instance: name,
        dependencies: listened,
        proxyPort: proxy.port,
        simulate: w.kind === 'simulate' ? JSON.stringify(w.simulate) : undefined,
        tls: await this.o.tlsFiles?.(service.name),
      }),
    }
    inst.logFile = path.join(this.o.logDir, `${name}.log`)
    inst.spec = {
      instance: name,
      service: service.name,
      version: version.name,
      command: w.kind === 'simulate' ? `${shellQuote(process.execPath)} ${shellQuote(SIMULATED_RUNNER)}` : w.command,
      cwd: w.kind === 'command' ? w.cwd : config.dir,
      env,
      logFile: inst.logFile,
      graceMs: service.stopGracePeriodMs,
      restart: service.restart,
      maxRestarts: service.maxRestarts,
      ...(w.kind === 'simulate' && !w.simulate.isolated ? {simulated: true} : {}),
    }
    return inst
  }

  private launch(inst: Instance): void {
    // `address:` instances have no workload, only health checks.
    if (inst.spec) this.o.driver.start(inst.spec)
    this.startHealthChecks(inst)
  }

  private startHealthChecks(inst: Instance): void {
    inst.checker?.stop()
    // A job others wait on to complete serves nothing: probing it would only report it unhealthy.
    if (this.isJob(inst.service.name)) return void (inst.state.health = 'running')
    const {clock} = this.o
    const h = inst.service.health
    const {host, port} = inst.endpoint
    // A command runs as the instance would (its env: $PORT, <DEP>_URL…); for an address: instance, in the mesh's directory.
    const where = {cwd: inst.spec?.cwd ?? this.o.config.dir, env: inst.spec?.env ?? {}}
    const checker = new HealthChecker({
      probe: async () =>
        h.path
          ? probeHttp(host, port, h.path, h.timeoutMs, await this.o.dataPlane.healthTls(inst.service.name))
          : h.grpcService !== undefined
            ? probeGrpc(host, port, h.grpcService, h.timeoutMs, clock, await this.o.dataPlane.healthTls(inst.service.name))
            : h.command
              ? probeCommand(h.command, where, h.timeoutMs)
              : probeTcp(host, port, h.timeoutMs),
      intervalMs: h.intervalMs,
      startIntervalMs: 100,
      thresholds: {healthyThreshold: h.healthyThreshold, unhealthyThreshold: h.unhealthyThreshold},
      clock,
    })
    checker.on('probe', (r: {detail: string}) => (inst.state.healthDetail = r.detail))
    checker.on('healthy', () => {
      inst.state.health = 'healthy'
      this.o.registry.add(inst.endpoint)
      this.event({kind: 'instance-healthy', instance: inst.name, service: inst.service.name})
      const all = this.select(inst.service.name, undefined, {leaving: true})
      if (all.every((i) => i.state.health === 'healthy')) this.event({kind: 'service-healthy', service: inst.service.name})
    })
    checker.on('unhealthy', (detail: string) => {
      inst.state.health = 'unhealthy'
      this.o.registry.remove(inst.service.name, inst.name)
      this.event({kind: 'instance-unhealthy', instance: inst.name, service: inst.service.name, detail})
    })
    inst.checker = checker
    checker.start()
  }

  private onExit(status: ProcessStatus, exit: {code: number | null; signal: string | null}): void {
    const inst = this.instances.get(status.instance)
    this.o.onChange()
    if (!inst || inst.state.leaving || this.stopping) return
    // A dead process gets no traffic, whatever its last probe said; it earns its way back after restart.
    this.o.registry.remove(inst.service.name, inst.name)
    if (status.state === 'exited') {
      // Its restart policy leaves it so: a job that finished, or one that failed for good.
      inst.checker?.stop()
      inst.state.health = exit.code === 0 && exit.signal === null ? 'completed' : 'failed'
      inst.state.healthDetail = exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code ?? '-'}`
    } else {
      inst.state.health = 'starting'
      this.startHealthChecks(inst)
    }
    this.event({kind: 'instance-exited', instance: inst.name, service: inst.service.name, ...exit})
    const all = this.select(inst.service.name)
    if (inst.state.health === 'completed' && all.every((i) => i.state.health === 'completed')) this.event({kind: 'service-completed', service: inst.service.name})
  }

  private event(event: InstanceEvent): void {
    this.o.onEvent(event)
    this.changes.emit('change')
  }

  /** A one-shot job: some caller waits for it to complete (compose's service_completed_successfully). */
  private isJob(service: string): boolean {
    return this.o.config.services.some((s) => s.dependsOnConditions?.[service] === 'service_completed_successfully')
  }

  /**
   * Resolves when each instance is ready: healthy, or finished with exit 0 (a one-shot job);
   * with a compose condition, only completed, or only running. Rejects, naming the
   * instance, on a crash loop, a job that failed, or the deadline.
   */
  private waitReady(names: string[], timeoutMs: number, signal?: AbortSignal, condition: DependencyCondition = 'service_healthy'): Promise<void> {
    const {driver, clock} = this.o
    const watched = () => names.map((n) => this.instances.get(n)).filter((i): i is Instance => i !== undefined)
    const ready = (inst: Instance): boolean => {
      if (inst.state.health === 'completed') return true
      if (condition === 'service_completed_successfully') return false
      return inst.state.health === 'healthy' || (condition === 'service_started' && driver.status(inst.name)?.state === 'running')
    }
    return new Promise((resolve, reject) => {
      const check = () => {
        if (watched().every(ready)) return finish()
        for (const inst of watched()) {
          const s = driver.status(inst.name)
          if (inst.state.health === 'failed') {
            const policy = inst.service.maxRestarts === undefined ? inst.service.restart : `${inst.service.restart}:${inst.service.maxRestarts}`
            return finish(this.startupError(inst, `failed (${inst.state.healthDetail ?? 'exited'}) and is not restarted (restart: ${policy})`))
          }
          if (s?.state === 'crash-loop') {
            const exit = s.lastExit ? `exit code ${s.lastExit.code ?? s.lastExit.signal}` : (s.lastError ?? 'no exit status')
            return finish(this.startupError(inst, `crashed ${s.restarts + 1} times while starting (${exit})`))
          }
        }
      }
      // Health changes and exits; the driver's crash-loop state is read on every scheduled restart too.
      const onChange = () => check()
      const deadline = clock.setTimer(timeoutMs, () => {
        const waiting = watched().find((i) => !ready(i))!
        const within = `within ${Math.round(timeoutMs / 1000)}s`
        if (condition === 'service_completed_successfully' || !waiting.checker) return finish(this.startupError(waiting, `did not complete ${within} (still running)`))
        finish(this.startupError(waiting, `did not become healthy ${within} (${waiting.state.healthDetail ?? 'no probe answered'})`))
      })
      const onAbort = () => finish(abortError(signal!))
      const finish = (error?: Error) => {
        this.changes.off('change', onChange)
        driver.off('restart-scheduled', onChange)
        signal?.removeEventListener('abort', onAbort)
        deadline.cancel()
        if (error) reject(error)
        else resolve()
      }
      this.changes.on('change', onChange)
      driver.on('restart-scheduled', onChange)
      // Aborted while the instances were being created: no wait at all.
      if (signal?.aborted) return onAbort()
      signal?.addEventListener('abort', onAbort, {once: true})
      check()
    })
  }

  private startupError(inst: Instance, why: string): MeshError {
    const tail = inst.logFile ? tailLines(inst.logFile, 15) : []
    const error = new MeshError('MESH_STARTUP_FAILED', `instance ${inst.name} ${why}.`, {
      hints: [
        ...(tail.length ? [`Last lines of ${path.relative(process.cwd(), inst.logFile ?? '')}:`, ...tail.map((l) => `  ${l}`)] : []),
        `See all of it with \`mesh logs ${inst.service.name}\`.`,
      ],
    })
    // The autoscaler's StartFailure: a failed cold start shows them in `mesh status` once the instance is gone.
    return Object.assign(error, {logTail: tail})
  }

  private instanceStatus(inst: Instance): InstanceStatus {
    const {clock} = this.o
    const p = this.o.driver.status(inst.name)
    const toIso = (ms?: number) => (ms === undefined ? undefined : new Date(clock.wallNow() - (clock.now() - ms)).toISOString())
    return {
      instance: inst.name,
      service: inst.service.name,
      version: inst.version.name,
      kind: inst.version.workload.kind,
      address: `${inst.endpoint.host}:${inst.endpoint.port}`,
      inboundAddress: `127.0.0.1:${inst.endpoint.inboundPort}`,
      outbound: inst.outbound,
      pid: p?.pid,
      runId: p?.runId,
      startedAt: toIso(p?.startedAtMs),
      state: p?.state ?? 'external',
      health: inst.state.health,
      healthDetail: inst.state.healthDetail,
      registered: this.o.registry.isRegistered(inst.name, inst.service.name),
      ejected: this.ejection(inst),
      restarts: p?.restarts ?? 0,
      lastExit: p?.lastExit && {code: p.lastExit.code, signal: p.lastExit.signal, at: toIso(p.lastExit.atMs)!},
      nextRestartAt: toIso(p?.nextRestartAtMs),
    }
  }

  private ejection(inst: Instance): InstanceStatus['ejected'] {
    const {clock} = this.o
    const e = inst.state.ejected
    if (!e) return undefined
    const until = new Date(clock.wallNow() + (e.untilMs - clock.now())).toISOString()
    return {until, times: e.times, reason: e.reason}
  }
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`
}
