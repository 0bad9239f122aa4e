// Settings of mesh.yaml that no exported object carries, whatever the target: each is
// reported (loss-report.ts), with what a cluster does instead.
import type {ExportContext} from './manifest.js'

export function meshWideLosses(ctx: ExportContext): void {
  const {config, losses} = ctx
  // With Istio, istio-security.ts writes the security objects; with Linkerd, linkerd-policy.ts.
  if (config.security && ctx.target === 'none') {
    losses.add('security', 'Kubernetes without a service mesh has no workload identity or mTLS', 'none; export with --mesh istio (a PeerAuthentication)')
  }
  if (config.telemetry) losses.add('telemetry', "a cluster's tracing and access logs are set by the mesh's installation (Istio's Telemetry API, meshConfig), not per app", 'none')
  if (config.functions) losses.add('functions.accountConcurrency', 'a limit on requests in flight across all functions has no Kubernetes or Istio equivalent', 'none; each Deployment\'s replicas (or Knative\'s containerConcurrency per pod) bound it')
  if (config.faults.allowHeaders) losses.add('faults.allowHeaders', 'Istio does not read faults from request headers', 'none; a VirtualService fault matching a header (faults.inject with header:) is the nearest')
  for (const s of config.services) {
    for (const [dep, condition] of Object.entries(s.dependsOnConditions ?? {})) {
      if (condition !== 'service_completed_successfully') continue
      losses.add(`services.${s.name}.dependsOn.${dep}`, `Kubernetes starts pods in no order: ${s.name} does not wait for ${dep} to complete`, `none; an initContainer that waits for the ${dep} Job (kubectl wait --for=condition=complete job/${dep}-…), or run ${dep} as a Helm hook or an Argo CD sync wave`)
    }
    if (s.profiles) losses.add(`services.${s.name}.profiles`, `Kubernetes has no profiles: ${s.name} is exported with the others, and runs whenever they do`, 'the objects in their own file (with --out DIR): leave it out of kubectl apply')
  }
}

/** With no mesh in the target, no object carries a service's policy: every field set is a loss. */
export function unmeshedPolicyLosses(ctx: ExportContext): void {
  const nearest = 'none; export with --mesh istio'
  for (const s of ctx.config.services) {
    const p = s.policy
    const where = `services.${s.name}.policy`
    if (p.loadBalancer.kind !== 'round-robin') losses(`${where}.loadBalancer`, `kube-proxy spreads connections at random, not by ${p.loadBalancer.kind}`)
    const fields = ['timeoutMs', 'retries', 'outlierDetection', 'circuitBreaker', 'rateLimit', 'weights', 'mirror', 'authorization', 'requestAuthentication', 'mtls', 'tls'] as const
    for (const key of fields) if (p[key] !== undefined) losses(`${where}.${key.replace(/Ms$/, '')}`, 'Kubernetes without a service mesh has no per-request policy')
    if (p.routes.length > 0) losses(`${where}.routes`, 'a Kubernetes Service selects every version alike: no header or path routing')
  }
  ctx.config.faults.inject.forEach((f, i) => losses(`faults.inject.${i}`, `Kubernetes without a service mesh injects no faults (${f.service})`))

  function losses(path: string, reason: string): void {
    ctx.losses.add(path, reason, nearest)
  }
}
