// What `mesh status` shows: the shape the control API returns and `--json` prints.
import type {ScalingStatus} from '../scaling/autoscaler.js'
import type {TcpTotals} from '../telemetry/tcp-metrics.js'
import type {DestinationLoad} from '../proxy/destination.js'
import type {TlsMode} from '../config/types.js'
import type {JwksStatus} from '../security/jwt/key-source.js'

/**
 * `running`: a one-shot job's process (others wait for it to complete; it is not probed).
 * `completed` / `failed`: a process its restart policy left exited, with exit code 0 / otherwise.
 */
export type InstanceHealth = 'starting' | 'healthy' | 'unhealthy' | 'running' | 'completed' | 'failed'

export interface InstanceStatus {
  instance: string
  service: string
  version: string
  kind: 'command' | 'simulate' | 'address'
  /** The app's own address. */
  address: string
  /** The inbound sidecar: the address the registry publishes. */
  inboundAddress: string
  /** The instance's outbound sidecar: its HTTP_PROXY and one listener per dependency (<DEP>_URL). */
  outbound?: {proxy: string; dependencies: Record<string, string>}
  /** Its process; a simulated instance in a simulation host shows the host's, shared by its neighbours and kept across their restarts. */
  pid?: number
  /** This run of the instance (the last while it waits to restart): changes at every start, restart or replacement, unlike a host's pid. */
  runId?: number
  /** When this run began. */
  startedAt?: string
  /** Process state from the supervisor; 'external' for `address:` instances. */
  state: string
  health: InstanceHealth
  healthDetail?: string
  /** In the registry, i.e. receiving traffic. */
  registered: boolean
  /** Ejected by outlier detection: registered but skipped by the balancer until `until`. */
  ejected?: {until: string; times: number; reason: string}
  restarts: number
  lastExit?: {code: number | null; signal: string | null; at: string}
  nextRestartAt?: string
}

export interface ServiceStatus {
  name: string
  /** What its instances speak: absent for HTTP/1.1. */
  protocol?: 'grpc' | 'tcp'
  dependsOn: string[]
  /** `heldBack`: why the version gets no traffic or is not promoted yet (a deploy holds it, replaced it, or none has run it). */
  versions: Array<{name: string; replicas: number; weight: number; heldBack?: string}>
  /** Fewer than half the instances are available: the balancer uses all of them (Envoy's panic mode). */
  panic: boolean
  /** Active faults on this service, e.g. `f2 abort 503 30%`. */
  faults: string[]
  /** A deploy in progress, e.g. `canary → v2 at 25%: analysis`. */
  deploy?: string
  instances: InstanceStatus[]
  /** `mesh up --watch`: the paths (relative to mesh.yaml) whose changes restart it. */
  watching?: string[]
  /**
   * Declared, but no instance runs (calls to it get 503 UH), and why: `mesh up SERVICE...`
   * named others, or its profile is not enabled.
   */
  notStarted?: string
  /** compose's `profiles:` it belongs to (none: it always starts). */
  profiles?: string[]
  /**
   * Its TCP connections since the mesh started (bytes of closed connections): a `protocol: tcp`
   * service's, or an HTTP service's WebSocket (Upgrade) sessions once it had one.
   */
  tcp?: TcpTotals
  /** What its requests hold now: breaker counts, requests per instance (0 everywhere when idle). */
  load?: DestinationLoad
  /** Its mTLS mode at its published address (with a mesh CA) and the TLS the mesh speaks to its instances. */
  security?: ServiceSecurity
  /** Per autoscaled version (`scaling:`): the autoscaler's last decision against the instances it has. */
  scaling?: ScalingStatus[]
  /** The last scale-up whose instances never became ready, while the service is still short of what the autoscaler wants. */
  scaleFailed?: {version: string; reason: string; at: string}
}

export interface ServiceSecurity {
  /** PeerAuthentication at its published address; absent when the mesh runs no CA (plaintext). */
  mtls?: 'STRICT' | 'PERMISSIVE' | 'DISABLE'
  /** policy.tls: what its callers' sidecars speak to its instances. */
  tls: TlsMode
}

/**
 * How a call through the mesh to `callee` travels: the hop to its instances is the only one on
 * a socket between sidecar and app (the callers' sidecars and its own are one process), so the
 * callee's policy.tls decides, as the metrics' connection_security_policy says it.
 */
export function edgeSecurity(callee: ServiceSecurity | undefined): 'mutual_tls' | 'tls' | 'none' {
  const tls = callee?.tls
  return tls === 'ISTIO_MUTUAL' || tls === 'MUTUAL' ? 'mutual_tls' : tls === 'SIMPLE' ? 'tls' : 'none'
}

/** Istio's defaults (PERMISSIVE at the published address, plaintext to the instances): `mesh status` says nothing of them. */
export function isDefaultSecurity(security: ServiceSecurity | undefined): boolean {
  return !security || ((security.mtls ?? 'PERMISSIVE') === 'PERMISSIVE' && security.tls === 'DISABLE')
}

/** `mTLS STRICT, ISTIO_MUTUAL to its instances`: one service's security for `mesh status` and `mesh top`. */
export function describeSecurity(security: ServiceSecurity | undefined): string | undefined {
  if (!security || (!security.mtls && security.tls === 'DISABLE')) return undefined
  const parts = security.mtls ? [`mTLS ${security.mtls}`] : []
  parts.push(security.tls === 'DISABLE' ? 'plaintext to its instances' : `${security.tls} to its instances`)
  return parts.join(', ')
}

/** One line for `mesh status` when a destination has requests under way; none when it is idle. */
export function describeLoad(name: string, load: DestinationLoad | undefined): string | undefined {
  if (!load) return undefined
  // Not connections: a protocol: tcp service's open connections are no request under way.
  const {requests, pending, retries} = load.breaker
  const perInstance = Object.entries(load.instances).filter(([, n]) => n > 0)
  // Requests the activator holds for a scaled version (a cold start, every instance full) reach no instance yet.
  const heldBy = Object.entries(load.activator ?? {}).filter(([, a]) => a.held > 0)
  if (requests + pending + retries === 0 && perInstance.length === 0 && heldBy.length === 0) return undefined
  const at = perInstance.map(([instance, n]) => `${instance} ${n}`).join(', ')
  const many = Object.keys(load.activator ?? {}).length > 1
  const held = heldBy.map(([version, a]) => `${a.held} held by the activator${many ? ` for ${version}` : ''}`).join(', ')
  return `${name}: ${requests} in flight, ${pending} pending, ${retries} retrying${at ? ` (${at})` : ''}${held ? `; ${held}` : ''}`
}

export interface MeshStatus {
  name: string
  configFile: string
  phase: 'starting' | 'running' | 'stopping'
  daemonPid: number
  controlUrl: string
  /** `redirect`: ingress.tls.redirect, so the HTTP port answers 308 and mesh load / canary --load go to httpsUrl. */
  ingress?: {url: string; httpsUrl?: string; redirect?: boolean; routes: Array<{prefix: string; service: string}>}
  startedAt: string
  /** Requests the data plane is serving now, on every listener (`mesh down` waits for them). */
  requestsInFlight?: number
  /** The key sets jwtRules fetch (jwksUri): what each holds, and a fetch that fails. */
  jwks?: JwksStatus[]
  services: ServiceStatus[]
}

/** What `mesh exec` runs a command as: one instance's environment and directory. */
export interface ExecTarget {
  instance: string
  cwd: string
  env: Record<string, string>
}
