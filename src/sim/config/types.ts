import type {FaultSpec} from '../faults/fault.js'

// The normalised mesh configuration: what `loadConfig` returns after every default
// is applied. Durations are milliseconds, ratios 0..1, percents 0..100. The YAML
// keys are documented in README.md; this file is the shape the code works with.

export interface MeshConfig {
  name: string
  /** Absolute path of the mesh.yaml this came from. */
  file: string
  /** Directory of that file: the base for relative `cwd`s and `.mesh/`. */
  dir: string
  ingress?: IngressConfig
  /** In file order. */
  services: ServiceConfig[]
  /** `allowHeaders`: honour x-mesh-fault-* request headers; `inject`: faults active from `mesh up` on. */
  faults: {allowHeaders: boolean; inject: FaultSpec[]}
  /**
   * `telemetry.otlp.endpoint`: spans are pushed to <endpoint>/v1/traces as OTLP/JSON.
   * `telemetry.accessLog`: one JSON line per hop in .mesh/access/ (off by default, as in
   * Istio and Linkerd: it is the costliest thing on the request path).
   */
  telemetry?: {otlpEndpoint?: string; accessLog?: boolean; spansPerSecond?: number}
  /** `security:` as written (defaults filled in); absent without one: read it with securityOf (security-schema.ts). */
  security?: SecurityConfig
  /** `functions:` Lambda's account-wide limit: requests in flight across every scaled version (reserved ones included). Absent: no account limit. */
  functions?: {accountConcurrency: number}
  /**
   * `simulation.hosts`: how many shared simulation host processes run the `simulate:` instances
   * (those without `simulate.isolated`); `auto` (also when absent): one per core; 0: a process
   * per simulated instance. Read at `mesh up` (supervisor/hosted-driver.ts simulationHosts).
   */
  simulation?: {hosts: number | 'auto'}
}

/** Istio's PeerAuthentication modes: STRICT takes only mesh mTLS, PERMISSIVE mTLS and plaintext, DISABLE plaintext. */
export type MtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE'

export interface SecurityConfig {
  /** The SPIFFE trust domain of every workload identity (`spiffe://<trustDomain>/ns/<mesh>/sa/<service>`). */
  trustDomain: string
  /** Workload certificates' lifetime; each is rotated at half of it. */
  certTtlMs: number
  /** The mesh-wide mode; a service's `policy.mtls` overrides it. */
  mtls: MtlsMode
}

export interface IngressConfig {
  /** 0 lets the OS choose (tests). */
  port: number
  routes: IngressRoute[]
  /** Keep an `x-request-id` that comes from outside (Envoy's preserve_external_request_id); else a fresh one. */
  preserveRequestId?: boolean
  /** Request headers a listener takes (Envoy's max_headers_count, 100); above it, 431. Every listener of the mesh. */
  maxRequestHeaders?: number
  /** JWT rules checked at the ingress, before the service it routes to (security/jwt/). */
  requestAuthentication?: RequestAuthenticationConfig
  /** The HTTPS ingress (ingress-tls-schema.ts). */
  tls?: IngressTlsConfig
}

export interface IngressTlsConfig {
  /** 0 lets the OS choose (tests). */
  port: number
  /** The user's own certificate and key (absolute paths); absent, the mesh CA issues one for localhost. */
  certFile?: string
  keyFile?: string
  /** The plain ingress answers every request 308 to this one. */
  redirect?: boolean
}

export interface IngressRoute {
  prefix: string
  service: string
  /** Replaces the matched prefix before the request goes on (Istio's `rewrite.uri`), e.g. /api/items → /items. */
  rewrite?: string
}

export interface ServiceConfig {
  name: string
  dependsOn: string[]
  /**
   * What `mesh up` waits for before starting this service, per dependency, where it is not
   * `service_healthy` (compose's `depends_on` conditions): `service_started` (its process
   * runs), `service_completed_successfully` (it exited 0: a migration, a seed job).
   */
  dependsOnConditions?: Record<string, Exclude<DependencyCondition, 'service_healthy'>>
  /**
   * compose's `required: false`: dependencies `mesh up` neither starts for this service nor
   * waits for when their profile is off (calls to them then get 503 UH); when they are
   * started, their conditions hold as for any other.
   */
  optionalDependsOn?: string[]
  /**
   * When its processes are started again after they exit (compose's `restart`): `always`
   * (absent; any exit is a crash, restarted with backoff), `on-failure` (a non-zero exit;
   * exit 0 means it finished), `no` (never: a one-shot job).
   */
  restart?: 'on-failure' | 'no'
  /** `restart: on-failure:N`: at most N restarts; after that a failed exit leaves it failed. */
  maxRestarts?: number
  /**
   * Absolute paths `mesh up --watch` watches (compose's develop.watch): a change restarts the
   * service's instances one at a time, with no dropped request.
   */
  watch?: string[]
  /**
   * `warmUp: {paths: [...]}`: GET paths of a `command:` service the user says are safe to call,
   * which `mesh up`'s warm-up sends through its ingress route and its callers' sidecars beside
   * the health path (the mesh cannot know which of a real service's paths have no side effects).
   */
  warmUpPaths?: string[]
  /**
   * compose's `profiles`: a service with some starts only when `mesh up --profile NAME`
   * (or MESH_PROFILES) enables one of them, or when it is named (`mesh up NAME`).
   */
  profiles?: string[]
  health: HealthConfig
  policy: PolicyConfig
  /** At least one; a service declared without `versions:` has exactly one, `v1`. */
  versions: VersionConfig[]
  /** SIGTERM → SIGKILL grace period. */
  stopGracePeriodMs: number
  /**
   * `tcp`: its callers get a TCP listener per dependency (tcp-proxy.ts), not an HTTP sidecar.
   * `grpc`: its instances speak HTTP/2 cleartext (h2c); every request is still balanced and
   * policed on its own. Absent: HTTP/1.1.
   */
  protocol?: 'tcp' | 'grpc'
  /**
   * A `simulate:` block written beside `command:`: how `mesh sim` models this service (only
   * `mesh sim` reads it; `mesh up` runs the command). Written by hand or by `mesh sim --fit`.
   */
  model?: SimulateConfig
  /** `deploy:`: how `mesh canary` / `mesh rollout` deploy it (their flags' defaults), and `mesh export --rollouts`. */
  deploy?: DeployConfig
}

/**
 * A service's `deploy:` block, in the words of `mesh canary` and `mesh rollout`'s flags; only
 * the keys written are set (a flag given wins, then these, then the flags' own defaults).
 */
export interface DeployConfig {
  strategy: 'canary' | 'blue-green' | 'rolling'
  /** canary: traffic percentages, increasing, in 1..100. */
  steps?: number[]
  intervalMs?: number
  /** 0..1 */
  maxErrorRate?: number
  maxP99Ms?: number
  compareToPrimary?: boolean
  failureThreshold?: number
  minRequests?: number
  /** canary: a header and its value, whose requests go to the canary first. */
  match?: {name: string; value: string}
  mirror?: boolean
  /** blue-green: `GET /healthz`, as --smoke. */
  smoke?: string
  keepMs?: number
  /** rolling */
  maxSurge?: number
  maxUnavailable?: number
  /** canary and blue-green: the acceptance test, as --check. */
  check?: string
  progressDeadlineMs?: number
}

export type DependencyCondition = 'service_started' | 'service_healthy' | 'service_completed_successfully'

export interface VersionConfig {
  name: string
  replicas: number
  workload: Workload
  /** Service env merged with version env (version wins). */
  env: Record<string, string>
  /** Fixed port the process must listen on (only with replicas: 1); otherwise the mesh picks one. */
  port?: number
  /** Knative's autoscaling knobs (scaling-schema.ts), acted on by scaling/autoscaler.ts; replicas is then where it starts. */
  scaling?: ScalingConfig
}

/** `scaling:` with Knative's defaults filled in; times in ms, percentages as written (70 is 70%). */
export interface ScalingConfig {
  minScale: number
  maxScale: number
  initialScale: number
  /** Per instance, in the metric's unit, before utilization. */
  target: number
  metric: 'concurrency' | 'rps'
  targetUtilization: number
  /** Requests one instance admits at once; 0 is no limit. */
  containerConcurrency: number
  windowMs: number
  panicWindowPercentage: number
  panicThresholdPercentage: number
  scaleToZeroGracePeriodMs: number
  scaleDownDelayMs: number
  maxScaleUpRate: number
  maxScaleDownRate: number
  /** How long the activator holds a request for a version with no instance free (a cold start, a full instance) before 503. */
  activatorTimeoutMs: number
  /** Requests the activator may hold for the version at once, past which (at maxScale) a request is throttled: 429 TH. */
  queue: number
  /** Lambda's reserved concurrency: requests in flight guaranteed to this version and capped there, taken from `functions.accountConcurrency`. */
  reservedConcurrency?: number
}

/** `image`: the container image a cluster runs it in (`mesh export`; `mesh up` ignores it). */
export type Workload =
  | {kind: 'command'; command: string; cwd: string; image?: string}
  | {kind: 'simulate'; simulate: SimulateConfig}
  | {kind: 'address'; host: string; port: number; image?: string}

/** How a simulated service's service time is drawn: `lognormal` (absent) fits p50/p99; the others are `mesh sim`'s models too. */
export type LatencyDistribution = 'lognormal' | 'exponential' | 'constant' | 'empirical'

export interface SimulateConfig {
  /**
   * p50Ms/p99Ms are always filled (for exponential: from the mean; for empirical: from the
   * samples), so everything that only reads the two percentiles keeps working.
   */
  latency: {p50Ms: number; p99Ms: number; distribution?: LatencyDistribution; meanMs?: number; samplesMs?: number[]}
  /** 0..1 */
  errorRate: number
  errorStatus: number
  /**
   * What it answers when one of its calls fails (a 5xx, or no answer): 500 when absent, as a
   * simulated service does; a model of real code that says otherwise (502 Bad Gateway, 503) sets it.
   */
  callErrorStatus?: number
  calls: SimulatedCall[]
  callMode: 'sequential' | 'parallel'
  responseBytes: number
  /** Requests served at once; more wait in a queue, so latency grows under load. 0 = unbounded. */
  concurrency: number
  seed: number
  /** A function's init phase: time the simulated process waits after it starts before it listens (so before it is healthy). */
  coldStart?: {p50Ms: number; p99Ms: number}
  /** A process of its own even when the mesh runs simulated instances in shared simulation hosts. */
  isolated?: boolean
}

export interface SimulatedCall {
  service: string
  /** 0..1 */
  probability: number
  path: string
  method: string
}

export interface HealthConfig {
  /** HTTP path to GET; without it (or grpcService) the check is a TCP connect. */
  path?: string
  /** gRPC health check (grpc.health.v1) of this service name ('' for the whole server). */
  grpcService?: string
  /** A shell command that exits 0 when the instance is ready (compose's healthcheck test), run with its env. */
  command?: string
  intervalMs: number
  timeoutMs: number
  healthyThreshold: number
  unhealthyThreshold: number
}

export type LoadBalancerKind = 'round-robin' | 'random' | 'least-request' | 'ewma' | 'ring-hash'

export interface LoadBalancerConfig {
  kind: LoadBalancerKind
  /** For ring-hash: what to hash on. */
  hashOn?: {header: string} | {cookie: string}
}

/** Envoy's retry_on names, its gRPC ones (a call's grpc-status) and HTTP statuses. */
export type RetryOn = '5xx' | 'gateway-error' | 'reset' | 'connect-failure' | 'retriable-status-codes' | GrpcRetryOn | number
export type GrpcRetryOn = 'cancelled' | 'deadline-exceeded' | 'internal' | 'resource-exhausted' | 'unavailable'

export interface RetryConfig {
  attempts: number
  perTryTimeoutMs?: number
  on: RetryOn[]
  backoff: {baseMs: number; maxMs: number}
  budget: {ratio: number; minPerSecond: number}
}

export interface OutlierDetectionConfig {
  consecutive5xxErrors: number
  consecutiveGatewayErrors: number
  intervalMs: number
  baseEjectionTimeMs: number
  maxEjectionPercent: number
}

export interface CircuitBreakerConfig {
  maxConnections: number
  maxPendingRequests: number
  maxRequests: number
  maxRetries: number
}

export type RateLimitAlgorithm = 'token-bucket' | 'leaky-bucket' | 'fixed-window' | 'sliding-log' | 'sliding-window'

export interface RateLimitConfig extends RateTier {
  algorithm: RateLimitAlgorithm
  perSource: boolean
  /** Whose bucket a request fills: each consumer (a claim's or a header's value) its own. */
  key?: ConsumerKey
  /** A consumer's rate by its tier; the rate above is the default tier's (`tiers.default`). */
  tiers?: RateTiers
  /** Buckets kept at once with `key` or perSource (default DEFAULT_MAX_CONSUMERS, policy/rate-limit.ts). */
  maxConsumers?: number
}

/** A rate: requests allowed per `periodMs`, with `burst` for the bucket algorithms. */
export interface RateTier {
  requests: number
  periodMs: number
  burst: number
}

/** Where a request names its consumer or its tier: a claim of its valid JWT, or a header. */
export type ConsumerKey = {claim: string} | {header: string}

export interface RateTiers {
  by: ConsumerKey
  limits: Record<string, RateTier>
  /** The tier `tiers.default` names, when it names one rather than giving a rate. */
  defaultTier?: string
}

export interface RouteRule {
  match: {headers?: Record<string, string>; pathPrefix?: string}
  version: string
}

export interface PolicyConfig {
  loadBalancer: LoadBalancerConfig
  timeoutMs?: number
  retries?: RetryConfig
  outlierDetection?: OutlierDetectionConfig
  circuitBreaker?: CircuitBreakerConfig
  rateLimit?: RateLimitConfig
  /** Matched in order before weights apply. */
  routes: RouteRule[]
  /** version → percent; absent means all traffic to the first version. */
  weights?: Record<string, number>
  mirror?: {version: string; percent: number}
  /** Who may call the service (Istio's AuthorizationPolicy, at the service's inbound side). */
  authorization?: AuthorizationConfig
  /** This service's PeerAuthentication mode, over `security.mtls` (mtlsModeOf). */
  mtls?: MtlsMode
  /** Istio's RequestAuthentication: tokens checked before authorization (security/jwt/). */
  requestAuthentication?: RequestAuthenticationConfig
  /** TLS the mesh originates to the service's instances (Istio's DestinationRule `tls`; tls-schema.ts). */
  tls?: TlsPolicy
}

export type TlsMode = 'ISTIO_MUTUAL' | 'MUTUAL' | 'SIMPLE' | 'DISABLE'

/** Istio's ClientTLSSettings; file paths are absolute (resolved against mesh.yaml's directory). */
export interface TlsPolicy {
  mode: TlsMode
  /** The server name sent (SNI), and the name checked when subjectAltNames is not given. */
  sni?: string
  caCertificates?: string
  clientCertificate?: string
  privateKey?: string
  /** The server certificate must carry one of these (DNS, IP or URI SANs). */
  subjectAltNames?: string[]
}

/** Istio's RequestAuthentication: a token that is present must be valid; a request with none passes (as `outcome: none`). */
export interface RequestAuthenticationConfig {
  jwtRules: JwtRule[]
}

/** One of Istio's JWTRules. Exactly one key source: `jwks`, `jwksUri`, or the mesh's own issuer (`issuer: mesh`). */
export interface JwtRule {
  /** The `iss` a token must carry; `mesh` is the mesh's dev issuer (`mesh token`). */
  issuer: string
  /** A token must name one of them in `aud`; absent: `aud` is not checked. */
  audiences?: string[]
  /** Inline key set, checked when the file is read. */
  jwks?: {keys: Array<Record<string, unknown>>}
  /** An http(s) URL (a mesh service's name as host, or any other), or an absolute file path. */
  jwksUri?: string
  /** Where the token is; with fromParams absent too: `Authorization: Bearer` and `?access_token=`. */
  fromHeaders?: Array<{name: string; prefix?: string}>
  fromParams?: string[]
  /** Pass the token on to the app (Istio's default: removed once verified). */
  forwardOriginalToken: boolean
  /** The verified payload, base64url-encoded, in this request header. */
  outputPayloadToHeader?: string
  /** Claims copied into request headers (`claim` may be nested: `a.b`). */
  outputClaimToHeaders?: Array<{header: string; claim: string}>
}

/**
 * As Istio evaluates an AuthorizationPolicy: a request matching any `deny` rule is refused;
 * then, when `allow` rules exist, a request must match one of them; otherwise it passes.
 */
export interface AuthorizationConfig {
  allow?: AuthorizationRule[]
  deny?: AuthorizationRule[]
}

/**
 * Every field given must match (AND); a field's values are alternatives (OR); a `not` field
 * matches when none of its values does. `{}` matches every request. Principals and values
 * take Istio's forms: exact, prefix `abc*`, suffix `*abc`, and `*` (present, whatever it is).
 */
export interface AuthorizationRule {
  /** Calling services; `ingress` for the ingress, `unknown` for calls to an instance's published address. */
  from?: string[]
  /** The caller's SPIFFE ID, with or without `spiffe://` (`cluster.local/ns/<mesh>/sa/<service>`). */
  principals?: string[]
  notPrincipals?: string[]
  /** A valid token's `<iss>/<sub>`; `*` is any valid token. */
  requestPrincipals?: string[]
  notRequestPrincipals?: string[]
  /** Upper case, e.g. GET. */
  methods?: string[]
  notMethods?: string[]
  /** Istio's path forms: exact `/items`, prefix `/items/*`, suffix `*.json`, any `*`. Query strings are ignored. */
  paths?: string[]
  notPaths?: string[]
  /** Istio's conditions: every one must hold. */
  when?: AuthorizationCondition[]
}

/** `key` is one of Istio's (proxy/policy/authorization-conditions.ts); at least one of values, notValues. */
export interface AuthorizationCondition {
  key: string
  values?: string[]
  notValues?: string[]
}

/** One problem found in mesh.yaml, with where it is. */
export interface ConfigIssue {
  file: string
  line: number
  column: number
  /** Dotted path, e.g. services.catalog.replicas */
  path: string
  message: string
  severity: 'error' | 'warning'
  /** What kind of warning, where a command treats one kind apart (`mesh up` prints unset variables). */
  code?: 'unset-variable'
}
