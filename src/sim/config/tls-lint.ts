// `mesh validate`'s warnings about mTLS between callers and callees: a configuration that is
// valid but whose calls cannot succeed. An `address:` service is a process the mesh does not
// start: it gets no outbound listeners and no mesh certificate (no MESH_TLS_* files), so it
// can only dial its dependencies' published addresses, and a STRICT one refuses it.
import type {Report} from './checker.js'
import type {CheckedMesh} from './mesh-schema.js'
import {securityOf} from './security-schema.js'

export function mtlsCallers({config, origins}: CheckedMesh, report: Report): void {
  // mtlsModeOf's rule, once per service: a mesh.yaml may have hundreds of thousands of them.
  const meshMode = securityOf(config).mtls
  const strict = new Set(config.services.filter((s) => (s.policy.mtls ?? meshMode) === 'STRICT').map((s) => s.name))
  if (strict.size === 0) return
  const byName = new Map(config.services.map((s) => [s.name, s]))
  for (const caller of config.services) {
    if (!caller.versions.some((v) => v.workload.kind === 'address')) continue
    for (const dep of caller.dependsOn) {
      if (!strict.has(dep)) continue
      const where = origins.get(caller.name)?.dependsOn.get(dep) ?? ['services', caller.name, 'dependsOn']
      const own = byName.get(dep)?.policy.mtls === 'STRICT' ? `services.${dep}.policy.mtls` : 'security.mtls'
      report.at(
        'warning',
        where,
        `"${caller.name}" is an address: service, which the mesh gives no certificate, but "${dep}" is STRICT (${own}): ` +
          `its published address refuses a caller without a mesh certificate, so these calls fail the TLS handshake. ` +
          `Set "${dep}"'s policy.mtls to PERMISSIVE (Istio's mode for moving to mTLS) while "${caller.name}" cannot present one.`,
      )
    }
  }
}
