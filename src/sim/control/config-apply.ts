// `mesh apply`: brings a running mesh to what mesh.yaml says now, as `kubectl apply`
// does a cluster, without dropping a request. Policies, weights and ingress routes change
// in place; services and versions are added (healthy before traffic moves to them) and
// removed (after it has moved away); replicas scale; a changed process is replaced one
// instance at a time by a restart deploy. What would need processes rewired (ports,
// dependsOn, health checks, address:) is reported as not applied. policy-diff.ts decides
// what changed; this module does it, through the daemon's narrow ApplyHost.
import {profilesOff} from '../config/profiles.js'
import type {MeshConfig, ServiceConfig} from '../config/types.js'
import {loadConfig} from '../config/load-config.js'
import {activeVersions, versionWeights} from '../config/versions.js'
import type {DeployController} from '../deploy/deploy-controller.js'
import type {FaultSet} from '../faults/fault-set.js'
import type {DataPlane} from '../proxy/data-plane.js'
import type {Telemetry} from '../telemetry/telemetry.js'
import {type Applied, type ApplyResult, deployBehindWeights, describeInstanceChange, diffPolicies, functionsChange, ingressChange, type InstanceChange, type LiveSettings, liveSettings, liveSettingsChanges, liveWeightsChange, RESTART, RESTART_OR_DEPLOY, versionChange} from './policy-diff.js'
import type {Registry} from '../proxy/registry.js'
import type {InstanceManager} from './instance-manager.js'

/** What apply changes in the running mesh: the daemon's parts, and its instance lifecycle. */
export interface ApplyHost {
  /** The running config: apply edits it in place (the ingress routes by its very array). */
  readonly config: MeshConfig
  readonly dataPlane: DataPlane
  readonly registry: Registry
  readonly deploys: DeployController
  readonly faults: FaultSet
  readonly telemetry: Telemetry
  /** Where access logs go when mesh.yaml turns them on. */
  readonly accessLogDir: string
  /**
   * addInstances resolves when all are healthy, and rejects (having removed what did not get
   * healthy) otherwise; isStarted is false for a service `mesh up SERVICE...` left declared
   * only: apply changes its config, never starts it.
   */
  readonly instances: Pick<InstanceManager, 'instancesOf' | 'addInstances' | 'removeInstance' | 'isStarted' | 'markNotStarted' | 'forgetService'>
  /** Whether `mesh up --profile` enabled the service (one without profiles always is): apply adds others declared only. */
  profileEnabled(service: ServiceConfig): boolean
  onApplied(changes: string[]): void
}

export class ConfigApply {
  /** Deploys whose traffic split an apply has since replaced with mesh.yaml's. */
  private readonly weightsAppliedOver = new Set<string>()
  /** mesh.yaml's services as last brought up or applied (deploys change the running config's versions in place). */
  private readonly declared: ServiceConfig[]

  constructor(private readonly host: ApplyHost) {
    this.declared = structuredClone(host.config.services)
  }

  /**
   * Re-reads mesh.yaml and brings the running mesh to it; in-flight requests finish on
   * the old stack, new ones take the new one. What needs the mesh restarted is reported,
   * not applied.
   */
  async apply(env?: NodeJS.ProcessEnv): Promise<ApplyResult> {
    return this.applyConfig(await loadConfig(this.host.config.file, env))
  }

  /** `apply` of a config already read. */
  async applyConfig(next: MeshConfig): Promise<ApplyResult> {
    const {changes, notApplied, instances, added, removed} = diffPolicies(this.host.config, next, this.declared)
    const warnings: string[] = []
    // Taken before anything is awaited: a deploy that ends during this apply set its weights after it.
    const ended = this.host.deploys.history().filter((r) => r.outcome !== 'running')
    const report = (done: Applied) => (done.applied ? changes : notApplied).push(done.message)
    for (const service of added) report(await this.addService(service))
    for (const change of instances) if (!change.removed) report(await this.applyInstanceChange(change))
    for (const service of next.services) {
      const current = this.host.config.services.find((s) => s.name === service.name)
      const destination = this.host.dataPlane.destination(service.name)
      if (!current || !destination) continue
      const moved = this.weightsChange(service, current)
      if (moved.change) changes.push(moved.change)
      if (moved.warning) warnings.push(moved.warning)
      // A version that gains traffic is started (and healthy) before any traffic moves to it;
      // one that scales to zero is not: the activator holds its requests while one starts.
      for (const name of this.host.instances.isStarted(service.name) ? activeVersions(service) : []) {
        const version = current.versions.find((v) => v.name === name)
        if (version && version.scaling?.minScale !== 0 && this.host.instances.instancesOf(service.name, name).length === 0) {
          await this.host.instances.addInstances(current, version, version.replicas)
          changes.push(`${service.name}: started ${version.replicas} ${version.replicas === 1 ? 'instance' : 'instances'} of ${name}`)
        }
      }
      destination.apply(service.policy)
      destination.endpoints.setWeights(versionWeights(service))
      current.policy = service.policy
    }
    const ingress = ingressChange(this.host.config.ingress, next.ingress)
    if (ingress?.applied) {
      // In place: the ingress listener routes by this very array.
      const routes = this.host.config.ingress!.routes
      routes.splice(0, routes.length, ...next.ingress!.routes)
    }
    if (ingress) report(ingress)
    // Services gone from mesh.yaml go last, once no ingress route leads to them.
    for (const name of removed) report(await this.removeService(name))
    const settings = liveSettings(next)
    const settingChanges = liveSettingsChanges(this.liveSettings(), settings)
    if (settingChanges.length) {
      this.host.telemetry.configure({
        accessLogDir: settings.accessLog ? this.host.accessLogDir : undefined,
        spansPerSecond: settings.spansPerSecond,
        otlpEndpoint: settings.otlpEndpoint,
      })
      this.host.dataPlane.allowFaultHeaders = settings.faultHeaders
      this.host.config.telemetry = next.telemetry
      this.host.config.faults.allowHeaders = settings.faultHeaders
      changes.push(...settingChanges)
    }
    const functions = functionsChange(this.host.config.functions, next.functions)
    if (functions) {
      // Replaced, not edited: whoever holds the old object keeps a consistent one.
      if (next.functions) this.host.config.functions = {...next.functions}
      else delete this.host.config.functions
      this.host.dataPlane.accountLimitChanged()
      changes.push(functions)
    }
    // Versions gone from mesh.yaml go once the new weights have moved their traffic elsewhere.
    for (const change of instances) if (change.removed) report(await this.removeVersion(change))
    // The live weights are mesh.yaml's now, not these deploys': the next apply need not warn about them.
    for (const r of ended) this.weightsAppliedOver.add(r.id)
    if (changes.length) this.host.onApplied(changes)
    return {changes, notApplied, warnings}
  }

  /**
   * `mesh apply --dry-run`: what apply would do now, as kubectl's dry run says it — nothing
   * changes. Each line names the change as apply would make it; instances apply would start
   * or replace are named by count (their names come when they start).
   */
  async plan(env?: NodeJS.ProcessEnv): Promise<ApplyResult> {
    return this.planFor(await loadConfig(this.host.config.file, env))
  }

  /** `plan` for a config already read. */
  planFor(next: MeshConfig): ApplyResult {
    const {changes, notApplied, instances, added, removed} = diffPolicies(this.host.config, next, this.declared)
    const warnings: string[] = []
    const howMany = (n: number) => `${n} ${n === 1 ? 'instance' : 'instances'}`
    for (const service of added) {
      if (!this.host.profileEnabled(service)) {
        changes.push(notStartedYet(service))
        continue
      }
      const count = service.versions.filter((v) => activeVersions(service).has(v.name)).reduce((n, v) => n + v.replicas, 0)
      changes.push(`service ${service.name} added: ${howMany(count)} started (healthy before apply returns)`)
    }
    for (const c of instances) {
      const what = `${c.service}: ${c.version} ${describeInstanceChange(c)}`
      const busy = this.deployInTheWay(c.service, what)
      if (busy) {
        notApplied.push(busy.message)
        continue
      }
      changes.push(c.respawn ? `${what}: its instances replaced one at a time` : c.removed ? `${what}: its instances drained and stopped` : what)
    }
    for (const service of next.services) {
      const current = this.host.config.services.find((s) => s.name === service.name)
      if (!current || !this.host.dataPlane.destination(service.name)) continue
      const moved = this.weightsChange(service, current)
      if (moved.change) changes.push(moved.change)
      if (moved.warning) warnings.push(moved.warning)
    }
    const ingress = ingressChange(this.host.config.ingress, next.ingress)
    if (ingress) (ingress.applied ? changes : notApplied).push(ingress.message)
    for (const name of removed) {
      const blocked = this.removalBlocked(name)
      if (blocked) notApplied.push(blocked.message)
      else changes.push(`service ${name} removed: ${howMany(this.host.instances.instancesOf(name).length)} drained and stopped`)
    }
    changes.push(...liveSettingsChanges(this.liveSettings(), liveSettings(next)))
    const functions = functionsChange(this.host.config.functions, next.functions)
    if (functions) changes.push(functions)
    return {changes, notApplied, warnings}
  }

  /** Telemetry and fault headers as the running mesh has them now. */
  private liveSettings(): LiveSettings {
    const t = this.host.telemetry.settings()
    return {...t, faultHeaders: this.host.dataPlane.allowFaultHeaders}
  }

  /** mesh.yaml's weights for a service against the live ones (and the deploy that set them, if one did). */
  private weightsChange(service: ServiceConfig, current: ServiceConfig): {change?: string; warning?: string} {
    return liveWeightsChange({
      service: service.name,
      live: this.host.dataPlane.destination(service.name)!.endpoints.currentWeights(),
      before: versionWeights(current),
      after: versionWeights(service),
      deploy: deployBehindWeights(this.host.deploys.history(service.name), this.weightsAppliedOver),
      declared: service.versions.map((v) => v.name),
    })
  }

  /**
   * mesh.yaml runs a version differently now: the running config takes the new spec, then
   * its instances are scaled (new ones healthy before apply returns; extra ones drained)
   * and, when the process itself changed, replaced one at a time by a restart deploy.
   */
  private async applyInstanceChange(change: InstanceChange): Promise<Applied> {
    let c = change
    const busy = this.deployInTheWay(c.service, `${c.service}: ${c.version} ${describeInstanceChange(c)}`)
    if (busy) return busy
    const service = this.host.config.services.find((s) => s.name === c.service)!
    const declared = this.declared.find((s) => s.name === c.service)!
    const version = service.versions.find((v) => v.name === c.version)
    if (c.added) {
      declared.versions = [...declared.versions.filter((v) => v.name !== c.version), structuredClone(c.next)]
      if (!version) {
        // Started by the weights below if mesh.yaml gives it traffic.
        service.versions.push(structuredClone(c.next))
        return {applied: true, message: `${c.service}: ${c.version} added`}
      }
      // A deploy made a version of this name; mesh.yaml's spec replaces the deploy's.
      const against = versionChange(c.service, version, c.next)
      if (typeof against === 'string') return {applied: false, message: `${c.service}: ${against}: ${RESTART_OR_DEPLOY}`}
      if (!against) return {applied: true, message: `${c.service}: ${c.version} added (as a deploy already runs it)`}
      c = against
    }
    if (!version) return {applied: false, message: `${c.service}: ${c.version} changed, but the mesh does not run it: ${RESTART}`}
    version.workload = structuredClone(c.next.workload)
    version.env = {...c.next.env}
    version.replicas = c.next.replicas
    // The autoscaler reads it on its next tick, once apply has told it (onApplied).
    version.scaling = structuredClone(c.next.scaling)
    declared.versions = declared.versions.map((v) => (v.name === c.version ? structuredClone(c.next) : v))
    const live = this.host.instances.instancesOf(c.service, c.version)
    const what: string[] = []
    if (!this.host.instances.isStarted(c.service)) return {applied: true, message: `${c.service}: ${c.version} ${describeInstanceChange(c)} (not started: takes effect when \`mesh up ${c.service}\` starts it)`}
    if (live.length === 0) {
      return {applied: true, message: `${c.service}: ${c.version} ${describeInstanceChange(c)} (no instance runs it now: takes effect when it gets traffic)`}
    }
    // The restart, if any, starts first: it replaces the instances running now, and those
    // a scale-up adds below already run the new spec.
    if (c.respawn) {
      const keep = c.replicas && c.replicas.to < live.length ? live.slice(0, c.replicas.to) : live
      for (const name of live.slice(keep.length)) await this.host.instances.removeInstance(name)
      if (keep.length < live.length) what.push(`scaled ${live.length} → ${keep.length}`)
      const record = this.host.deploys.start({service: c.service, to: c.version, strategy: 'restart', progressDeadlineMs: 60_000})
      what.push(`${c.respawn.join(', ')} changed: its ${keep.length} ${keep.length === 1 ? 'instance is' : 'instances are'} being replaced one at a time (${record.id}; follow with \`mesh history ${c.service}\`)`)
    }
    if (c.scaling) what.push(c.next.scaling ? 'scaling changed (the autoscaler follows it from its next decision)' : 'no longer autoscaled')
    const now = this.host.instances.instancesOf(c.service, c.version).length
    if (c.replicas && c.replicas.to > now) {
      try {
        await this.host.instances.addInstances(service, version, c.replicas.to - now)
      } catch (error) {
        // addInstances has removed what did not get healthy; the instances running before keep serving.
        return {applied: false, message: `${c.service}: ${c.version} ${[...what, `scaling ${now} → ${c.replicas.to} failed: ${(error as Error).message}`].join('; ')}`}
      }
      what.push(`scaled ${now} → ${c.replicas.to}`)
    } else if (c.replicas && c.replicas.to < now) {
      for (const name of this.host.instances.instancesOf(c.service, c.version).slice(c.replicas.to)) await this.host.instances.removeInstance(name)
      what.push(`scaled ${now} → ${c.replicas.to}`)
    }
    return {applied: true, message: `${c.service}: ${c.version} ${what.join('; ')}`}
  }

  /** A service new in mesh.yaml: reachable, and its weighted versions' instances started and healthy. */
  private async addService(declared: ServiceConfig): Promise<Applied> {
    const service = structuredClone(declared)
    this.host.config.services.push(service)
    this.declared.push(structuredClone(declared))
    this.host.registry.addService(service.name)
    this.host.dataPlane.addDestination(service, versionWeights(service))
    if (!this.host.profileEnabled(service)) {
      this.host.instances.markNotStarted(service.name, `its ${profilesOff(service)}`)
      return {applied: true, message: notStartedYet(service)}
    }
    const started: string[] = []
    try {
      for (const name of activeVersions(service)) {
        const version = service.versions.find((v) => v.name === name)!
        started.push(...(await this.host.instances.addInstances(service, version, version.replicas)))
      }
    } catch (error) {
      // addInstances has removed the one that failed; the rest go too, and the service with them.
      for (const name of started) await this.host.instances.removeInstance(name).catch(() => undefined)
      this.forgetService(service.name)
      return {applied: false, message: `service ${service.name} is new, but ${(error as Error).message}`}
    }
    return {applied: true, message: `service ${service.name} added: ${started.join(', ')} healthy`}
  }

  /** A service gone from mesh.yaml: its instances drained and stopped, then callers get 404 NR. */
  private async removeService(name: string): Promise<Applied> {
    const blocked = this.removalBlocked(name)
    if (blocked) return blocked
    const live = this.host.instances.instancesOf(name)
    for (const instance of live) await this.host.instances.removeInstance(instance)
    // Its faults have nothing left to act on.
    this.host.faults.clear({service: name})
    this.forgetService(name)
    return {applied: true, message: `service ${name} removed${live.length ? `: ${live.join(', ')} drained and stopped` : ''}`}
  }

  private forgetService(name: string): void {
    this.host.dataPlane.removeDestination(name)
    this.host.registry.removeService(name)
    this.host.instances.forgetService(name)
    for (const list of [this.host.config.services, this.declared]) {
      const i = list.findIndex((s) => s.name === name)
      if (i >= 0) list.splice(i, 1)
    }
  }

  /** Why a service gone from mesh.yaml cannot go now: a running service calls it, or a deploy moves it. */
  private removalBlocked(name: string): Applied | undefined {
    const callers = this.host.config.services.filter((s) => s.name !== name && s.dependsOn.includes(name)).map((s) => s.name)
    if (callers.length) {
      return {applied: false, message: `service ${name} was removed, but ${callers.join(', ')} still ${callers.length === 1 ? 'runs' : 'run'} with it in dependsOn: ${RESTART}`}
    }
    return this.deployInTheWay(name, `service ${name} was removed`)
  }

  /** Apply leaves a service alone while a deploy moves its instances: `what` is what it would have done. */
  private deployInTheWay(service: string, what: string): Applied | undefined {
    const running = this.host.deploys.inProgress(service)
    return running ? {applied: false, message: `${what}, but a deploy is in progress (${running}): apply again once it ends`} : undefined
  }

  /** A version gone from mesh.yaml: its instances drained and stopped, then it leaves the running config. */
  private async removeVersion(c: InstanceChange): Promise<Applied> {
    const busy = this.deployInTheWay(c.service, `${c.service}: ${c.version} removed`)
    if (busy) return busy
    const service = this.host.config.services.find((s) => s.name === c.service)!
    const live = this.host.instances.instancesOf(c.service, c.version)
    for (const name of live) await this.host.instances.removeInstance(name)
    service.versions = service.versions.filter((v) => v.name !== c.version)
    const declared = this.declared.find((s) => s.name === c.service)!
    declared.versions = declared.versions.filter((v) => v.name !== c.version)
    return {applied: true, message: `${c.service}: ${c.version} removed${live.length ? `: ${live.join(', ')} drained and stopped` : ''}`}
  }
}

/** A service apply adds but does not start: `mesh up` did not enable its profile. */
function notStartedYet(service: ServiceConfig): string {
  return `service ${service.name} added, not started: its ${profilesOff(service)} (\`mesh up ${service.name}\` starts it)`
}
