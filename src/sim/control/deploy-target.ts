// The mesh as deploy strategies see it (DeployTarget): the instance manager's instances,
// the data plane's weights and route overlays, the live metrics, and probes of new
// instances. The daemon builds one for its DeployController.
import {request} from 'undici'
import type {MeshConfig} from '../config/types.js'
import type {DeployTarget} from '../deploy/deploy-types.js'
import type {ScaleOwners} from '../deploy/scale-owners.js'
import {serviceNotFound} from '../errors.js'
import type {DataPlane} from '../proxy/data-plane.js'
import type {Endpoint} from '../proxy/registry.js'
import {probeCommand} from '../supervisor/health-check.js'
import type {Telemetry} from '../telemetry/telemetry.js'
import type {Clock} from '../time/clock.js'
import type {InstanceManager} from './instance-manager.js'

export interface DeployTargetParts {
  clock: Clock
  /** Read at each call: `mesh apply` adds and removes services in place. */
  config: MeshConfig
  dataPlane: DataPlane
  instances: InstanceManager
  telemetry: Telemetry
  /** Whose each version's count is during a deploy; the autoscaler reads it too. */
  owners: ScaleOwners
  /** Resolves once the autoscaler has no action under way on the service. */
  scalingIdle(service: string): Promise<void>
}

/** Instances, weights, routes, live signals. */
export function deployTarget({clock, config, dataPlane, instances, telemetry, owners, scalingIdle}: DeployTargetParts): DeployTarget {
  const serviceNames = () => config.services.map((s) => s.name)
  const destination = (service: string) => {
    const d = dataPlane.destination(service)
    if (!d) throw serviceNotFound(service, serviceNames())
    return d
  }
  return {
    clock,
    service: (name) => {
      const s = config.services.find((x) => x.name === name)
      if (!s) throw serviceNotFound(name, serviceNames())
      return s
    },
    instancesOf: (service, version) => instances.instancesOf(service, version),
    addInstances: (service, version, count, timeoutMs, signal) => instances.addInstances(service, version, count, timeoutMs, signal),
    removeInstance: (name) => instances.removeInstance(name),
    holdCounts: async (service, versions) => {
      // Held first, so no new action starts; then the one under way (it may be adding to these versions) ends.
      const release = owners.hold(service, versions)
      await scalingIdle(service)
      return release
    },
    retire: (service, versions) => owners.retire(service, versions),
    weights: (service) => new Map(destination(service).endpoints.currentWeights()),
    setWeights: (service, weights) => destination(service).endpoints.setWeights(new Map(weights)),
    addRoute: (service, header, version) => {
      const rule = {match: {headers: {[header.name]: header.value}}, version}
      return destination(service).overlay((p) => ({...p, routes: [rule, ...p.routes]}))
    },
    notStarted: (service) => {
      destination(service)
      return instances.notStarted(service)
    },
    // Over mesh.yaml's mirror while the deploy runs; once undone, whatever mesh.yaml says now stands.
    addMirror: (service, version) => destination(service).overlay((p) => ({...p, mirror: {version, percent: 100}})),
    versionStats: (service, version, windowMs) => {
      const row = telemetry.metrics
        .stat({by: 'version', windowMs}, clock.now())
        .find((r) => r.service === service && r.version === version)
      // Every attempt the version served (reporter destination): retries must not hide a bad canary.
      return {requests: row?.actualRequests ?? 0, successRate: row?.actualSuccessRate, p99Ms: row?.p99}
    },
    smoke: async (instance, method, path) => {
      const endpoint = instances.endpoint(instance)
      if (!endpoint) return {ok: false, status: 0, detail: 'no such instance'}
      try {
        const r = await request(`${endpoint.origin}${path}`, {method: method as 'GET', headersTimeout: 5_000, bodyTimeout: 5_000})
        await r.body.dump()
        return {ok: r.statusCode < 400, status: r.statusCode, detail: `HTTP ${r.statusCode}`}
      } catch (error) {
        return {ok: false, status: 0, detail: (error as Error).message}
      }
    },
    check: async (command, names, timeoutMs) => {
      // Through each new instance's sidecar (its published address): faults and spans apply, as
      // to any caller. Under STRICT that address takes mTLS only, which a test script does not
      // speak: the check gets a plaintext door of its own to each instance, closed after it.
      const endpoints = names.map((n) => instances.endpoint(n)).filter((e): e is Endpoint => e !== undefined)
      const doors = await Promise.all(
        endpoints.map((e) => (dataPlane.mtlsMode(e.service) === 'STRICT' ? dataPlane.listen({kind: 'inbound', instance: e.instance, service: e.service, plaintext: true}) : undefined)),
      )
      const urls = endpoints.map((e, i) => `http://127.0.0.1:${doors[i]?.port ?? e.inboundPort}`)
      const env = {CANARY_URL: urls[0] ?? '', CANARY_URLS: urls.join(' ')}
      try {
        return await probeCommand(command, {cwd: config.dir, env}, timeoutMs)
      } finally {
        for (const door of doors) if (door) await dataPlane.closeListener(door)
      }
    },
  }
}
