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

/** What an instance's HTTP clients find its outbound sidecar by (instance-manager.ts sets them). */
export const PROXY_ENV_NAMES = ['HTTP_PROXY', 'http_proxy', 'NO_PROXY', 'no_proxy'] as const

/**
 * Every variable the mesh gives each started instance of a service, as instance-manager.ts sets them:
 * PORT, MESH_*, the proxy variables, and per dependency `<DEP>_URL` (HTTP and gRPC) and
 * `<DEP>_HOST`/`_PORT`/`_ADDR` (gRPC and TCP). `protocol` undefined is HTTP.
 */
export function instanceEnvNames(dependencies: ReadonlyArray<{name: string; protocol?: 'http' | 'grpc' | 'tcp'}>): Set<string> {
  const names = new Set<string>([...Object.values(EnvNames), ...PROXY_ENV_NAMES])
  for (const dep of dependencies) {
    const protocol = dep.protocol === 'http' ? undefined : dep.protocol
    if (protocol !== 'tcp') names.add(dependencyEnvName(dep.name))
    if (protocol !== undefined) for (const name of Object.keys(dependencyAddressEnv(dep.name, '', 0))) names.add(name)
  }
  return names
}

/** `catalog`, `v1`, 0 → `catalog-v1-0` */
export function instanceName(service: string, version: string, index: number): string {
  return `${service}-${version}-${index}`
}
