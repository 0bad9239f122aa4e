// The environment contract between the mesh and the processes it starts. Services
// written in any language read these; keep names stable.

/** `catalog` → `CATALOG_URL`, `order-history` → `ORDER_HISTORY_URL`. */
export function dependencyEnvName(service: string): string {
  return `${service.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_URL`
}

export const EnvNames = {
  port: 'PORT',
  service: 'MESH_SERVICE',
  version: 'MESH_VERSION',
  instance: 'MESH_INSTANCE',
  /** JSON of SimulateConfig, for the built-in simulated-service runner. */
  simulate: 'MESH_SIMULATE',
} as const

/** `catalog`, `v1`, 0 → `catalog-v1-0` */
export function instanceName(service: string, version: string, index: number): string {
  return `${service}-${version}-${index}`
}
