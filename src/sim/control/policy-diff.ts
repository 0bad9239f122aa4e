// What `mesh apply` would change: policy blocks and weights can change live; new
// services, versions, replicas, commands or ports need a restart (or a deploy).
import type {MeshConfig, ServiceConfig} from '../config/types.js'

export function diffPolicies(current: MeshConfig, next: MeshConfig): {changes: string[]; notApplied: string[]} {
  const changes: string[] = []
  const notApplied: string[] = []
  const now = new Map(current.services.map((s) => [s.name, s]))
  const later = new Map(next.services.map((s) => [s.name, s]))
  for (const name of later.keys()) if (!now.has(name)) notApplied.push(`service ${name} is new: restart the mesh to start it`)
  for (const name of now.keys()) if (!later.has(name)) notApplied.push(`service ${name} was removed: restart the mesh to stop it`)
  for (const [name, a] of now) {
    const b = later.get(name)
    if (!b) continue
    const pa = a.policy as unknown as Record<string, unknown>
    const pb = b.policy as unknown as Record<string, unknown>
    for (const key of new Set([...Object.keys(pa), ...Object.keys(pb)])) {
      const before = JSON.stringify(pa[key])
      const after = JSON.stringify(pb[key])
      if (before !== after) changes.push(`${name}: policy.${key} ${before ?? 'unset'} → ${after ?? 'unset'}`)
    }
    if (shape(a) !== shape(b)) notApplied.push(`${name}: versions, replicas, commands or ports changed: restart the mesh (or use a deploy) for that`)
  }
  return {changes, notApplied}
}

function shape(s: ServiceConfig): string {
  return JSON.stringify({versions: s.versions, dependsOn: s.dependsOn, health: s.health})
}
