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
  /** Where the simulated-service runner listens: 127.0.0.1 (absent) beside the mesh's sidecars; 0.0.0.0 in a pod (mesh export). */
  listenHost: 'MESH_LISTEN_HOST',
  /** The service's workload certificate, its key and the mesh CA, as PEM files (workload-files.ts). */
  tlsCert: 'MESH_TLS_CERT',
  tlsKey: 'MESH_TLS_KEY',
  tlsCa: 'MESH_TLS_CA',
} as const

/**
 * What the mesh sets in a started instance's environment, over the version's own `env:`: PORT,
 * MESH_* (MESH_TLS_* included), per dependency `<DEP>_URL` (HTTP and gRPC) and `<DEP>_HOST`/`_PORT`/`_ADDR` (gRPC and
 * TCP), the proxy variables, and MESH_SIMULATE for a simulated workload. instance-manager.ts starts
 * instances with it and instanceEnvNames derives from it, so the two cannot drift.
 */
export function meshInstanceEnv(o: {
  port: number
  service: string
  version: string
  instance: string
  dependencies: ReadonlyArray<{name: string; protocol?: 'grpc' | 'tcp'; port: number}>
  proxyPort: number
  simulate?: string
  /** The service's certificate files; absent where the mesh has none to give (unit tests). */
  tls?: {cert: string; key: string; ca: string}
}): Record<string, string> {
  const env: Record<string, string> = {
    [EnvNames.port]: String(o.port),
    [EnvNames.service]: o.service,
    [EnvNames.version]: o.version,
    [EnvNames.instance]: o.instance,
  }
  for (const dep of o.dependencies) {
    if (dep.protocol !== 'tcp') env[dependencyEnvName(dep.name)] = `http://127.0.0.1:${dep.port}`
    // A gRPC channel dials host:port; the listener speaks HTTP/1.1 and h2c alike.
    if (dep.protocol !== undefined) Object.assign(env, dependencyAddressEnv(dep.name, '127.0.0.1', dep.port))
  }
  const proxyUrl = `http://127.0.0.1:${o.proxyPort}`
  // Clients that honour proxy variables reach services by name; the <DEP>_URL listeners are loopback and bypass it.
  Object.assign(env, {HTTP_PROXY: proxyUrl, http_proxy: proxyUrl, NO_PROXY: '127.0.0.1,localhost,::1', no_proxy: '127.0.0.1,localhost,::1'})
  if (o.simulate !== undefined) env[EnvNames.simulate] = o.simulate
  if (o.tls) Object.assign(env, {[EnvNames.tlsCert]: o.tls.cert, [EnvNames.tlsKey]: o.tls.key, [EnvNames.tlsCa]: o.tls.ca})
  return env
}

/** Every variable the mesh gives each started instance of a service (`protocol` undefined is HTTP). */
export function instanceEnvNames(dependencies: ReadonlyArray<{name: string; protocol?: 'grpc' | 'tcp'}>): Set<string> {
  const placeholder = {port: 0, service: '', version: '', instance: '', proxyPort: 0, simulate: '', tls: {cert: '', key: '', ca: ''}}
  return new Set(Object.keys(meshInstanceEnv({...placeholder, dependencies: dependencies.map((d) => ({...d, port: 0}))})))
}

/** `catalog`, `v1`, 0 → `catalog-v1-0` */
export function instanceName(service: string, version: string, index: number): string {
  return `${service}-${version}-${index}`
}
