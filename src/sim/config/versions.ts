// Which versions of a service carry traffic: read by the daemon (what `mesh up`
// starts, the initial weights) and by the CLI (what it waits for).
import type {ServiceConfig} from './types.js'

/**
 * The versions `mesh up` starts: those with traffic weight, or named by a route or
 * mirror. Other declared versions wait for a deploy (`mesh rollout`, `mesh canary`).
 */
export function activeVersions(service: ServiceConfig): Set<string> {
  const active = new Set<string>()
  for (const [version, weight] of versionWeights(service)) if (weight > 0) active.add(version)
  for (const r of service.policy.routes) active.add(r.version)
  if (service.policy.mirror) active.add(service.policy.mirror.version)
  return active
}

/** Traffic per version: `policy.weights`, or everything to the first version (as Istio's default subset). */
export function versionWeights(service: ServiceConfig): Map<string, number> {
  const w = service.policy.weights
  if (w) return new Map(Object.entries(w))
  return new Map([[service.versions[0].name, 100]])
}
