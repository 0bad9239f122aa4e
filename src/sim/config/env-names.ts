// The environment contract between the mesh and the processes it starts. Services
// written in any language read these; keep names stable.

/** `order-history` → `ORDER_HISTORY`: what a dependency's variables start with. */
export function dependencyEnvPrefix(service: string): string {
  return service.toUpperCase().replace(/[^A-Z0-9]/g, '_')
}

/** `catalog` → `CATALOG_URL`, `order-history` → `ORDER_HISTORY_URL`: an HTTP dependency's outbound sidecar. */
export function dependencyEnvName(service: string): string {
  return `${dependencyEnvPrefix(service)}_URL`
}

/**
 * A dependency's listener as an address: `DB_HOST`, `DB_PORT` and `DB_ADDR` (host:port), for
 * clients that dial rather than take a URL (a `protocol: tcp` database's driver, a gRPC channel).
 */
export function dependencyAddressEnv(service: string, host: string, port: number): Record<string, string> {
  const prefix = dependencyEnvPrefix(service)
  return {[`${prefix}_HOST`]: host, [`${prefix}_PORT`]: String(port), [`${prefix}_ADDR`]: `${host}:${port}`}
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
