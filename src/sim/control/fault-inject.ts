// `mesh fault` and mesh.yaml's `faults.inject`: a fault spec checked against the mesh (its
// service, version and caller exist; a selector a TCP service cannot match is refused),
// then added to the data path's FaultSet, or sent as signals to instances (kill, pause).
import {suggestion} from '../config/did-you-mean.js'
import type {MeshConfig} from '../config/types.js'
import {MeshError, serviceNotFound} from '../errors.js'
import {type FaultInfo, type FaultSpec, requestOnlySelector} from '../faults/fault.js'
import type {FaultSet} from '../faults/fault-set.js'
import type {InstanceManager} from './instance-manager.js'
import {fetchesJwks} from '../config/jwt-schema.js'

export interface FaultHost {
  config: MeshConfig
  faults: FaultSet
  instances: Pick<InstanceManager, 'running' | 'signal'>
}

/**
 * Adds a fault once the spec is checked against the mesh. Per-request kinds go to the data
 * path's FaultSet; kill and pause are signals to instances' workloads (kill is instant and
 * only reported; a pause lasts until its fault ends, when the FaultSet's owner resumes it).
 */
export function injectFault(spec: FaultSpec, host: FaultHost): FaultInfo {
  const {config, faults, instances} = host
  if (spec.kind === 'jwks-unavailable') return faults.add(jwksFault(spec, config))
  const names = config.services.map((s) => s.name)
  const service = config.services.find((s) => s.name === spec.service)
  if (!service) throw serviceNotFound(spec.service, names)
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
  if (spec.from && !config.services.some((s) => s.name === spec.from) && spec.from !== 'ingress') {
    const callers = [...names, 'ingress']
    throw new MeshError('MESH_SERVICE_NOT_FOUND', `--from "${spec.from}" is not a service in the mesh (or "ingress")${suggestion(spec.from, callers) || '.'}`)
  }
  const flag = service.protocol === 'tcp' ? requestOnlySelector(spec) : undefined
  if (flag) {
    throw new MeshError('MESH_BAD_FLAG', `"${spec.service}" is protocol: tcp: its connections have no ${flag} for --${flag} to select, so the fault would never act.`, {
      hints: ['Choose connections with --from, --percent or --first instead.'],
    })
  }
  if (spec.kind !== 'kill' && spec.kind !== 'pause') return faults.add(spec)

  const targets = instances.running(service.name, spec.version, spec.count ?? 1)
  if (targets.length === 0) {
    throw new MeshError('MESH_NO_INSTANCE', `no running instance of "${spec.service}" to ${spec.kind}.`, {
      hints: ['Instances the mesh does not start (address:) cannot be killed or paused.'],
    })
  }
  if (spec.kind === 'kill') {
    const info = faults.add({...spec, durationMs: 0})
    for (const name of targets) void instances.signal(name, 'SIGKILL')
    return {...info, instances: targets}
  }
  const info = faults.add({...spec, durationMs: spec.pauseMs ?? spec.durationMs ?? 10_000})
  faults.update(info.id, {instances: targets})
  for (const name of targets) void instances.signal(name, 'SIGSTOP')
  return {...info, instances: targets}
}

/** `--jwks-unavailable` names a service (or `ingress`) whose jwtRules fetch a jwksUri: on anything else it would never act. */
function jwksFault(spec: FaultSpec, config: MeshConfig): FaultSpec {
  const names = config.services.map((s) => s.name)
  if (spec.service !== 'ingress' && !names.includes(spec.service)) throw serviceNotFound(spec.service, names)
  if (!fetchesJwks(config, spec.service)) {
    throw new MeshError('MESH_BAD_FLAG', `"${spec.service}" fetches no key set: none of its jwtRules has a jwksUri, so --jwks-unavailable would never act.`, {
      hints: ['Name the service (or ingress) whose requestAuthentication.jwtRules has the jwksUri.'],
    })
  }
  return spec
}
