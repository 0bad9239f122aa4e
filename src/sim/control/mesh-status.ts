// What `mesh status` reports, gathered from the parts that hold it: the config's services
// with their live weights and panic (the data plane), deploy, faults, instances (the instance
// manager's record), connections and key sets. The daemon adds what only it knows.
import path from 'node:path'
import type {MeshConfig} from '../config/types.js'
import type {DeployController} from '../deploy/deploy-controller.js'
import type {FaultSet} from '../faults/fault-set.js'
import type {DataPlane} from '../proxy/data-plane.js'
import type {MeshJwt} from '../security/jwt/mesh-jwt.js'
import type {Telemetry} from '../telemetry/telemetry.js'
import type {Autoscaler} from '../scaling/autoscaler.js'
import {faultLines} from './fault-inject.js'
import type {InstanceManager} from './instance-manager.js'
import type {ScalingHistory} from './scaling-history.js'
import type {MeshStatus} from './status.js'
import {tcpShown} from './telemetry-queries.js'

export interface StatusParts {
  readonly config: MeshConfig
  readonly dataPlane: DataPlane
  readonly deploys: DeployController
  readonly faults: FaultSet
  readonly instances: InstanceManager
  readonly telemetry: Telemetry
  readonly jwt: Pick<MeshJwt, 'status'>
  readonly autoscaler: Pick<Autoscaler, 'status'>
  readonly events: {readonly scaling: Pick<ScalingHistory, 'unresolvedFailure'>}
}

/** What only the daemon knows of itself. */
export interface DaemonFacts {
  phase: MeshStatus['phase']
  controlUrl: string
  ingressUrl?: string
  /** The HTTPS ingress (`ingress.tls`). */
  ingressHttpsUrl?: string
  startedAt: Date
  /** `mesh up --watch`: each service's watched paths are listed. */
  watching: boolean
}

export function meshStatus(p: StatusParts, d: DaemonFacts): MeshStatus {
  const {config, dataPlane} = p
  return {
    name: config.name,
    configFile: config.file,
    phase: d.phase,
    daemonPid: process.pid,
    controlUrl: d.controlUrl,
    ingress: d.ingressUrl && config.ingress ? {url: d.ingressUrl, ...(d.ingressHttpsUrl ? {httpsUrl: d.ingressHttpsUrl} : {}), ...(config.ingress.tls?.redirect ? {redirect: true} : {}), routes: config.ingress.routes} : undefined,
    startedAt: d.startedAt.toISOString(),
    requestsInFlight: dataPlane.inflightRequests,
    jwks: p.jwt.status(),
    services: config.services.map((s) => {
      const scaling = p.autoscaler.status(s.name)
      // A failed start from zero is the autoscaler's own startFailed, with the log's last lines.
      const failed = scaling?.some((r) => r.startFailed) ? undefined : p.events.scaling.unresolvedFailure(s.name, scaling)
      return {
        name: s.name,
        protocol: s.protocol,
        dependsOn: s.dependsOn,
        versions: s.versions.map((v) => {
          const weight = dataPlane.destination(s.name)?.endpoints.currentWeights().get(v.name) ?? 0
          const heldBack = p.deploys.heldBack(s.name, v.name, weight)
          return {name: v.name, replicas: v.replicas, weight, ...(heldBack ? {heldBack} : {})}
        }),
        panic: dataPlane.destination(s.name)?.panic() ?? false,
        deploy: p.deploys.inProgress(s.name),
        faults: faultLines(p.faults, s.name),
        instances: p.instances.statusOf(s.name),
        tcp: tcpShown(p.telemetry, s),
        watching: d.watching && s.watch ? s.watch.map((w) => path.relative(config.dir, w) || '.') : undefined,
        notStarted: p.instances.notStarted(s.name),
        profiles: s.profiles,
        load: dataPlane.load(s.name),
        security: dataPlane.securityOf(s.name),
        scaling,
        scaleFailed: failed && {version: failed.event.version, reason: failed.event.reason, at: failed.at},
      }
    }),
  }
}
