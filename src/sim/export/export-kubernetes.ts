// `mesh export kubernetes`: a MeshConfig as Kubernetes objects, with a service mesh's or
// without, and the list of what could not be carried over.
//
//   MeshConfig ─▶ Namespace, per service: Service + Deployment/Job per version (workloads.ts)
//              ├▶ a one-version scaling: service: a Knative Service (knative.ts)
//              ├▶ --mesh istio: VirtualService + DestinationRule per service (istio.ts),
//              │    AuthorizationPolicy, PeerAuthentication, RequestAuthentication (istio-security.ts)
//              ├▶ --mesh linkerd: HTTPRoutes with retry/timeout annotations, failure accrual (linkerd.ts),
//              │    Server, AuthorizationPolicy, Mesh/NetworkAuthentication (linkerd-policy.ts)
//              ├▶ ingress: Gateway + VirtualService, or an Ingress (ingress.ts)
//              ├▶ deploy: blocks, --rollouts argo|flagger: Rollouts or Canaries over the above (rollouts*.ts)
//              └▶ every setting no object carries ─▶ LossReport (loss-report.ts)
import type {MeshConfig} from '../config/types.js'
import {ingressObjects} from './ingress.js'
import {istioServiceObjects} from './istio.js'
import {istioSecurityObjects} from './istio-security.js'
import {isKnative, knativeObjects} from './knative.js'
import {linkerdObjects} from './linkerd.js'
import {type Loss, LossReport} from './loss-report.js'
import type {ExportContext, Manifest, MeshTarget} from './manifest.js'
import {meshWideLosses, unmeshedPolicyLosses} from './mesh-wide.js'
import {namespaceObject, workloadObjects} from './workloads.js'
import {progressiveServices, type RolloutTarget} from './rollouts.js'
import {argoObjects} from './rollouts-argo.js'
import {flaggerObjects} from './rollouts-flagger.js'

export const MESH_TARGETS = ['none', 'istio', 'linkerd'] as const satisfies readonly MeshTarget[]

export interface ExportOptions {
  target: MeshTarget
  /** Absent: the mesh's name. */
  namespace?: string
  /** The image simulated services run in (docker/simulated-service.Dockerfile builds it). */
  runnerImage: string
  /** What carries the services' `deploy:` blocks; absent: none. */
  rollouts?: RolloutTarget
}

export interface KubernetesExport {
  namespace: string
  target: MeshTarget
  /** In the order they are written: the namespace, each service's objects in file order, the ingress. */
  manifests: Manifest[]
  losses: Loss[]
}

/** `meshsim-simulated-service:0.1.0`: the runner image's default name, as the Dockerfile's build command tags it. */
export function defaultRunnerImage(version: string): string {
  return `meshsim-simulated-service:${version}`
}

export function exportKubernetes(config: MeshConfig, options: ExportOptions): KubernetesExport {
  const ctx: ExportContext = {config, namespace: options.namespace ?? config.name, target: options.target, runnerImage: options.runnerImage, losses: new LossReport()}
  const manifests = [namespaceObject(ctx), ...workloadObjects(ctx, isKnative), ...knativeObjects(ctx)]
  if (ctx.target === 'istio') manifests.push(...istioServiceObjects(ctx), ...istioSecurityObjects(ctx))
  else if (ctx.target === 'linkerd') manifests.push(...linkerdObjects(ctx, manifests))
  else unmeshedPolicyLosses(ctx)
  manifests.push(...ingressObjects(ctx))
  const rollouts = options.rollouts ?? 'none'
  const progressive = progressiveServices(ctx, manifests, rollouts)
  const carried = rollouts === 'argo' ? argoObjects(ctx, manifests, progressive) : rollouts === 'flagger' ? flaggerObjects(ctx, manifests, progressive) : manifests
  meshWideLosses(ctx)
  return {namespace: ctx.namespace, target: ctx.target, manifests: ordered(carried, config), losses: ctx.losses.list()}
}

const KIND_ORDER = ['Namespace', 'ServiceAccount', 'Service', 'Deployment', 'Rollout', 'Job', 'Gateway', 'VirtualService', 'DestinationRule', 'HTTPRoute', 'EnvoyFilter', 'PeerAuthentication', 'RequestAuthentication', 'Server', 'MeshTLSAuthentication', 'NetworkAuthentication', 'AuthorizationPolicy', 'AnalysisTemplate', 'MetricTemplate', 'Canary', 'Ingress']

/** Grouped by file (00-namespace, the services in mesh.yaml's order, ingress), then by kind: the same input, the same bytes. */
function ordered(manifests: Manifest[], config: MeshConfig): Manifest[] {
  const files = ['00-namespace', ...config.services.map((s) => s.name), 'ingress']
  const rank = (m: Manifest) => [files.indexOf(m.file), KIND_ORDER.indexOf(m.object.kind)]
  return manifests
    .map((m, i) => ({m, i, r: rank(m)}))
    .sort((a, b) => a.r[0] - b.r[0] || a.r[1] - b.r[1] || a.i - b.i)
    .map(({m}) => m)
}
