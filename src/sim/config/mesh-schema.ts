// The mesh.yaml schema, written with the checkers, and the normalisation that turns
// what was written into a MeshConfig with every default applied:
//
//   YAML AST ──shapes (checker.ts)──▶ raw service ──merge versions, defaults──▶ ServiceConfig
//                                                   └─ origins: where each port/dependency was written, for cross-checks.ts

import {GRPC_RETRY_NAMES} from './retry-semantics.js'
import {existsSync} from 'node:fs'
import {resolve} from 'node:path'
import {seedFrom} from '../time/random.js'
import {
  array,
  At,
  bool,
  checker,
  describeNode,
  def,
  duration,
  entries,
  enumOf,
  int,
  map,
  num,
  obj,
  oneOf,
  opt,
  record,
  refine,
  Report,
  req,
  scalar,
  str,
  text,
  type Checker,
  type Path,
} from './checker.js'
import {suggestion} from './did-you-mean.js'
import {checkJwksFiles, fetchesJwks, requestAuthentication} from './jwt-schema.js'
import {ingressTls} from './ingress-tls-schema.js'
import {readEnvFiles} from './env-file.js'
import {checkFault, FAULT_KEYS} from '../faults/fault-config.js'
import {mtlsMode, security} from './security-schema.js'
import {requestOnlySelector} from '../faults/fault.js'
import {formatDuration, parseRatio, parseSize} from './duration.js'
import {CONDITION_KEYS, needsRequest, parseConditionKey} from '../proxy/policy/authorization-conditions.js'
import {rateLimit} from './rate-limit-schema.js'
import {initialInstances, scaling, scalingFits} from './scaling-schema.js'
import {deploy} from './deploy-schema.js'
import {functions} from './functions-schema.js'
import {tlsFits, tlsPolicy} from './tls-schema.js'
import {exponentialPercentiles, LATENCY_DISTRIBUTIONS, latencyModel} from '../model/latency-model.js'
import type {
  AuthorizationCondition,
  AuthorizationConfig,
  AuthorizationRule,
  CircuitBreakerConfig,
  DependencyCondition,
  HealthConfig,
  IngressConfig,
  LoadBalancerConfig,
  LoadBalancerKind,
  MeshConfig,
  OutlierDetectionConfig,
  PolicyConfig,
  RetryConfig,
  RetryOn,
  RouteRule,
  ServiceConfig,
  SimulateConfig,
  VersionConfig,
  Workload,
} from './types.js'

// ---------------------------------------------------------------------------------
// Names and small values

const SERVICE_NAME = /^[a-z][a-z0-9-]*$/
/** Service and version names name instances, hosts and metrics labels: DNS labels (RFC 1123), as in Kubernetes. */
export const MAX_NAME_LENGTH = 63
/** More instances of one version than one machine can run is a typo (an extra 0), not a plan. */
export const MAX_REPLICAS = 1000
const dnsLabel = (what: string, c: Checker<string>) =>
  refine(c, (v, at) => (v.length <= MAX_NAME_LENGTH ? v : at.error(`${what} "${v.slice(0, 20)}…" is ${v.length} characters; names are DNS labels of at most ${MAX_NAME_LENGTH}`)))
// `ingress` names the mesh's ingress: a caller in authorization rules, and the HTTPS ingress's certificate among the identities.
export const serviceName = refine(dnsLabel('service name', str({pattern: SERVICE_NAME, expected: 'a service name of lowercase letters, digits and dashes, starting with a letter'})), (v, at) =>
  v === 'ingress' ? at.error('the service name "ingress" is taken by the mesh\'s own ingress (authorization rules name it as a caller; it has a certificate of its own); choose another, such as gateway') : v,
)
export const meshName = str({pattern: /^[a-z0-9][a-z0-9-]*$/, expected: 'a name of lowercase letters, digits and dashes'})
export const versionName = dnsLabel('version name', str({pattern: /^[a-z0-9][a-z0-9._-]*$/, expected: 'a version name of lowercase letters, digits, dots and dashes'}))
const envName = str({pattern: /^[A-Za-z_][A-Za-z0-9_]*$/, expected: 'an environment variable name (letters, digits and _)'})
/** A reference by name; whether it exists is checked across the file (cross-checks.ts). */
const ref = str({nonEmpty: true})
const httpPath = str({pattern: /^\//, expected: 'a path starting with /'})
const httpStatus = int({min: 100, max: 599, expected: 'an HTTP status between 100 and 599'})
const fixedPort = int({min: 1, max: 65535})
/** A container image reference (docker's `name[:tag][@digest]`); only `mesh export` reads it. */
export const CONTAINER_IMAGE = /^[a-z0-9][A-Za-z0-9._\/:@-]*$/
const containerImage = str({pattern: CONTAINER_IMAGE, expected: 'a container image like ghcr.io/acme/frontend:1.4'})

const method = scalar('an HTTP method like GET', (v) => (typeof v === 'string' && /^[A-Za-z]+$/.test(v) ? v.toUpperCase() : undefined), {type: 'string', pattern: '^[A-Za-z]+$'})

/** 0.01 or '1%' → 0.01 */
const ratioOrPercent = scalar('a number between 0 and 1 or a percent like 1%', (v) => (typeof v === 'string' || typeof v === 'number' ? parseRatio(v) : undefined), {
  anyOf: [{type: 'number', minimum: 0, maximum: 1}, {type: 'string', pattern: '^\\s*\\d+(\\.\\d+)?\\s*%?\\s*$'}],
})

const size = scalar('a size in bytes like 512, 512b, 1kb or 2mb', (v) => (typeof v === 'string' || typeof v === 'number' ? parseSize(v) : undefined), {
  anyOf: [{type: 'integer', minimum: 0}, {type: 'string', pattern: '^\\s*\\d+(\\.\\d+)?\\s*([bBkKmMgG]|[kKmMgG][bB])?\\s*$'}],
})

const address = scalar('host:port like 127.0.0.1:5432', (v) => {
  const m = typeof v === 'string' ? /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):(\d+)$/.exec(v.trim()) : null
  const port = m ? Number(m[2]) : NaN
  return m && port >= 1 && port <= 65535 ? {host: m[1].replace(/^\[|\]$/g, ''), port} : undefined
}, {type: 'string', pattern: '^(\\[[0-9a-fA-F:.]+\\]|[^\\s:[\\]]+):\\d+$'})

// ---------------------------------------------------------------------------------
// simulate:

type Latency = SimulateConfig['latency']

const lognormalLatency = refine(obj({distribution: opt(enumOf(['lognormal'])), p50: req(duration()), p99: req(duration())}), ({p50, p99}, at): Latency | undefined =>
  p99 >= p50 ? {p50Ms: p50, p99Ms: p99} : at.child('p99')!.expected(`a duration >= p50 (${formatDuration(p50)})`),
)
const exponentialLatency = map(obj({distribution: req(enumOf(['exponential'])), mean: req(duration())}), ({mean}): Latency => ({
  ...exponentialPercentiles(mean),
  distribution: 'exponential',
  meanMs: mean,
}))
const constantLatency = map(obj({distribution: req(enumOf(['constant'])), mean: req(duration())}), ({mean}): Latency => ({p50Ms: mean, p99Ms: mean, distribution: 'constant', meanMs: mean}))
const empiricalLatency = map(obj({distribution: req(enumOf(['empirical'])), samples: req(array(duration(), {min: 1}))}), ({samples}): Latency => {
  const model = latencyModel({p50Ms: 0, p99Ms: 0, distribution: 'empirical', samplesMs: samples})
  return {p50Ms: model.p50Ms, p99Ms: model.p99Ms, distribution: 'empirical', samplesMs: samples}
})
const LATENCY_SHAPES = {lognormal: lognormalLatency, exponential: exponentialLatency, constant: constantLatency, empirical: empiricalLatency}
/** What each distribution is given by, for the message when a key of another one is written. */
const LATENCY_KEYS: Record<(typeof LATENCY_DISTRIBUTIONS)[number], string[]> = {lognormal: ['p50', 'p99'], exponential: ['mean'], constant: ['mean'], empirical: ['samples']}
const owners = (key: string) => LATENCY_DISTRIBUTIONS.filter((d) => LATENCY_KEYS[d].includes(key))

// `{p50, p99}` as before (a log-normal); `{distribution: exponential, mean}` and the others
// name their distribution, so a `mean` alone is not silently read as one of two shapes.
const latencyMap = checker<Latency>(
  `{p50, p99}, or {distribution: ${LATENCY_DISTRIBUTIONS.join(' | ')}, ...}`,
  (at) => {
    const named = at.child('distribution')
    const kind = named ? enumOf(LATENCY_DISTRIBUTIONS)(named) : 'lognormal'
    if (kind === undefined) return undefined
    const foreign = at.entries().filter(({key}) => key !== 'distribution' && !LATENCY_KEYS[kind].includes(key))
    // Keys of another distribution get a message naming it; unknown keys are left to the shape's did-you-mean.
    if (foreign.length > 0 && foreign.every(({key}) => owners(key).length > 0)) {
      for (const {key, at: keyAt} of foreign) {
        keyAt.errorAtKey(
          named
            ? `distribution: ${kind} is given by ${LATENCY_KEYS[kind].join(' and ')}, not ${key}`
            : `${key} is for distribution: ${owners(key).join(' or ')}; add the distribution, or write p50 and p99 for a log-normal`,
        )
      }
      return undefined
    }
    return LATENCY_SHAPES[kind](at)
  },
  {anyOf: LATENCY_DISTRIBUTIONS.map((d) => LATENCY_SHAPES[d].json)},
)

const latency = oneOf<Latency>('a duration like 20ms, {p50, p99}, or {distribution, ...}', {
  scalar: map(duration(), (ms) => ({p50Ms: ms, p99Ms: ms})),
  map: latencyMap,
})

const simulatedCall = obj({
  service: req(ref),
  probability: def(num({min: 0, max: 1}), 1),
  path: def(httpPath, '/'),
  method: def(method, 'GET'),
})

/** SimulateConfig, except the seed, whose default needs the service and version names. */
const simulate = obj({
  latency: def(latency, () => ({p50Ms: 10, p99Ms: 50})),
  errorRate: def(ratioOrPercent, 0),
  errorStatus: def(httpStatus, 500),
  // Absent (500) is left out of the config, so what a simulated instance is given stays as it was.
  callErrorStatus: opt(httpStatus),
  calls: def(array(simulatedCall), () => []),
  callMode: def(enumOf(['sequential', 'parallel']), 'sequential'),
  responseSize: def(size, 256),
  concurrency: def(int({min: 0}), 0),
  // When the mesh runs simulated instances in shared simulation hosts: this one keeps a process of its own.
  isolated: def(bool(), false),
  // A function's init phase (Lambda's Init duration): waited before listening, so it is part of every cold start.
  coldStart: opt(latency),
  seed: opt(int()),
})
type RawSimulate = NonNullable<ReturnType<typeof simulate>>

// ---------------------------------------------------------------------------------
// policy:

const LOAD_BALANCERS = ['round-robin', 'random', 'least-request', 'ewma', 'ring-hash'] as const satisfies readonly LoadBalancerKind[]

const hashOn = refine(obj({header: opt(str({nonEmpty: true})), cookie: opt(str({nonEmpty: true}))}), (v, at) => {
  if (v.header !== undefined && v.cookie === undefined) return {header: v.header}
  if (v.cookie !== undefined && v.header === undefined) return {cookie: v.cookie}
  return at.error('expected exactly one of header or cookie')
})

const loadBalancer = oneOf<LoadBalancerConfig>(`one of ${LOAD_BALANCERS.join(', ')} or {type, hashOn}`, {
  scalar: refine(enumOf(LOAD_BALANCERS), (kind, at) =>
    kind === 'ring-hash' ? at.error('ring-hash needs hashOn; write {type: ring-hash, hashOn: {header: x-user}}') : {kind},
  ),
  map: refine(obj({type: req(enumOf(LOAD_BALANCERS)), hashOn: opt(hashOn)}), (v, at) => {
    if (v.type === 'ring-hash' && !v.hashOn) return at.error('missing required key "hashOn" (ring-hash hashes on a header or a cookie)')
    if (v.type !== 'ring-hash' && v.hashOn) return at.child('hashOn')!.errorAtKey(`hashOn only applies to ring-hash, not ${v.type}`)
    return v.hashOn ? {kind: v.type, hashOn: v.hashOn} : {kind: v.type}
  }),
})

const RETRY_ON: readonly RetryOn[] = ['5xx', 'gateway-error', 'reset', 'connect-failure', 'retriable-status-codes', ...GRPC_RETRY_NAMES]
const retryOn = scalar<RetryOn>(`one of ${RETRY_ON.join(', ')} or an HTTP status`, (v) => {
  if (typeof v === 'string' && (RETRY_ON as readonly string[]).includes(v)) return v as RetryOn
  return typeof v === 'number' && Number.isInteger(v) && v >= 100 && v <= 599 ? v : undefined
}, {anyOf: [{enum: [...RETRY_ON]}, {type: 'integer', minimum: 100, maximum: 599}]})

const retries = map(
  obj({
    attempts: req(int({min: 0})),
    perTryTimeout: opt(duration({min: 1})),
    on: def(array(retryOn, {min: 1}), () => ['5xx', 'reset', 'connect-failure'] as RetryOn[]),
    backoff: def(
      refine(obj({base: def(duration(), 25), max: def(duration(), 250)}), (v, at) =>
        v.max >= v.base ? {baseMs: v.base, maxMs: v.max} : (at.child('max') ?? at).expected(`a duration >= base (${formatDuration(v.base)})`),
      ),
      () => ({baseMs: 25, maxMs: 250}),
    ),
    budget: def(
      map(obj({ratio: def(num({min: 0, max: 1}), 0.2), minPerSecond: def(num({min: 0}), 10)}), (b) => b),
      () => ({ratio: 0.2, minPerSecond: 10}),
    ),
  }),
  (r): RetryConfig => compact({attempts: r.attempts, perTryTimeoutMs: r.perTryTimeout, on: r.on, backoff: r.backoff, budget: r.budget}),
)

const outlierDetection = map(
  obj({
    consecutive5xxErrors: def(int({min: 0}), 5),
    consecutiveGatewayErrors: def(int({min: 0}), 0),
    interval: def(duration({min: 1}), 10_000),
    baseEjectionTime: def(duration(), 30_000),
    maxEjectionPercent: def(num({min: 0, max: 100}), 10),
  }),
  (o): OutlierDetectionConfig => ({
    consecutive5xxErrors: o.consecutive5xxErrors,
    consecutiveGatewayErrors: o.consecutiveGatewayErrors,
    intervalMs: o.interval,
    baseEjectionTimeMs: o.baseEjectionTime,
    maxEjectionPercent: o.maxEjectionPercent,
  }),
)

const circuitBreaker: Checker<CircuitBreakerConfig> = obj({
  maxConnections: def(int({min: 1}), 1024),
  maxPendingRequests: def(int({min: 0}), 1024),
  maxRequests: def(int({min: 1}), 1024),
  maxRetries: def(int({min: 0}), 1024),
})

const routeMatch = refine(obj({headers: opt(record(text())), pathPrefix: opt(httpPath)}), (m, at) =>
  m.headers === undefined && m.pathPrefix === undefined ? at.error('expected at least one of headers or pathPrefix') : compact(m),
)

const routeRule: Checker<RouteRule> = obj({match: req(routeMatch), version: req(ref)})

// Istio's path forms: exact /items, prefix /items/*, suffix *.json, any *.
const authPath = str({pattern: /^(\/|\*)/, expected: 'a path like /items, /items/* or *.json'})
// A SPIFFE ID with or without spiffe://, a token's <iss>/<sub>, or a prefix/suffix/`*` form of either.
const principal = str({pattern: /^\S+$/, expected: 'a principal like cluster.local/ns/shop/sa/frontend, a prefix or suffix form with *, or *'})
const requestPrincipal = str({pattern: /^\S+$/, expected: "a request principal like <issuer>/<subject>, a prefix or suffix form with *, or * (any valid token)"})
const conditionKey = refine(str({nonEmpty: true, expected: `one of Istio's condition keys: ${CONDITION_KEYS.join(', ')}`}), (key, at) => {
  const attribute = parseConditionKey(key)
  return 'error' in attribute ? at.error(attribute.error) : key
})
const condition: Checker<AuthorizationCondition> = refine(
  obj({key: req(conditionKey), values: opt(array(text(), {min: 1})), notValues: opt(array(text(), {min: 1}))}),
  (c, at) => (c.values === undefined && c.notValues === undefined ? at.error('expected values or notValues (or both)') : compact(c)),
)
const authRule: Checker<AuthorizationRule> = map(
  obj({
    from: opt(array(ref, {min: 1})),
    principals: opt(array(principal, {min: 1})),
    notPrincipals: opt(array(principal, {min: 1})),
    requestPrincipals: opt(array(requestPrincipal, {min: 1})),
    notRequestPrincipals: opt(array(requestPrincipal, {min: 1})),
    methods: opt(array(method, {min: 1})),
    notMethods: opt(array(method, {min: 1})),
    paths: opt(array(authPath, {min: 1})),
    notPaths: opt(array(authPath, {min: 1})),
    when: opt(array(condition, {min: 1})),
  }),
  (r) => compact(r),
)
const authorization: Checker<AuthorizationConfig> = refine(
  map(obj({allow: opt(array(authRule)), deny: opt(array(authRule))}), (a) => compact(a)),
  (a, at) => (a.allow === undefined && a.deny === undefined ? at.error('expected allow or deny rules (or both)') : a),
)

const policy = map(
  obj({
    loadBalancer: def(loadBalancer, () => ({kind: 'round-robin'}) as LoadBalancerConfig),
    timeout: opt(duration({min: 1})),
    retries: opt(retries),
    outlierDetection: opt(outlierDetection),
    circuitBreaker: opt(circuitBreaker),
    rateLimit: opt(rateLimit),
    routes: def(array(routeRule), () => []),
    weights: opt(record(num({min: 0}), {key: ref})),
    mirror: opt(obj({version: req(ref), percent: def(num({min: 0, max: 100}), 100)})),
    authorization: opt(authorization),
    requestAuthentication: opt(requestAuthentication),
    mtls: opt(mtlsMode),
    tls: opt(tlsPolicy),
  }),
  (p): PolicyConfig =>
    compact({
      loadBalancer: p.loadBalancer,
      timeoutMs: p.timeout,
      retries: p.retries,
      outlierDetection: p.outlierDetection,
      circuitBreaker: p.circuitBreaker,
      rateLimit: p.rateLimit,
      routes: p.routes,
      weights: p.weights,
      mirror: p.mirror,
      authorization: p.authorization,
      requestAuthentication: p.requestAuthentication,
      mtls: p.mtls,
      tls: p.tls,
    }),
)

export function defaultPolicy(): PolicyConfig {
  return {loadBalancer: {kind: 'round-robin'}, routes: []}
}

// ---------------------------------------------------------------------------------
// services:

// `grpc: true` checks the whole server; `grpc: shop.Ratings` one service of it.
const grpcHealth = scalar<string | false>('true, false or a gRPC service name', (v) =>
  v === true ? '' : v === false ? false : typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined,
{type: ['boolean', 'string']})

const health = obj({
  path: opt(httpPath),
  grpc: opt(grpcHealth),
  command: opt(str({nonEmpty: true})),
  interval: def(duration({min: 1}), 1000),
  timeout: def(duration({min: 1}), 1000),
  healthyThreshold: def(int({min: 1}), 1),
  unhealthyThreshold: def(int({min: 1}), 3),
})

/** The keys a version may set; at service level they are the defaults for every version. */
const versionKeys = {
  command: opt(str({nonEmpty: true})),
  cwd: opt(str({nonEmpty: true})),
  env: opt(record(text(), {key: envName})),
  envFile: opt(oneOf('a file name or a list of them', {scalar: map(str({nonEmpty: true}), (f) => [f]), seq: array(str({nonEmpty: true}))})),
  simulate: opt(simulate),
  address: opt(address),
  port: opt(fixedPort),
  // The image a cluster runs the command: (or address:) in; mesh up ignores it (mesh export reads it).
  image: opt(containerImage),
  replicas: opt(refine(int({min: 1}), (v, at) => (v <= MAX_REPLICAS ? v : at.error(`${v} replicas is more than one machine runs; at most ${MAX_REPLICAS} instances of each version`)))),
  scaling: opt(scaling),
}
const version = obj(versionKeys)
type RawVersion = NonNullable<ReturnType<typeof version>>

// compose's restart values; `unless-stopped` is `always` here: nothing but `mesh down` stops a service.
const RESTART_POLICIES = ['always', 'on-failure', 'no', 'unless-stopped'] as const
const RESTART_EXPECTED = 'one of always, on-failure, on-failure:N, no, unless-stopped'
type RestartSetting = {policy: 'always' | 'on-failure' | 'no'; maxRestarts?: number}
const restartPolicy = checker<RestartSetting>(RESTART_EXPECTED, (at) => {
  const v = at.value
  if (at.kind !== 'scalar' || typeof v !== 'string') return at.expected(RESTART_EXPECTED)
  const capped = /^on-failure:(\d+)$/.exec(v)
  if (capped) return {policy: 'on-failure', maxRestarts: Number(capped[1])}
  if ((RESTART_POLICIES as readonly string[]).includes(v)) return {policy: v === 'unless-stopped' ? 'always' : (v as 'always' | 'on-failure' | 'no')}
  return at.error(`expected ${RESTART_EXPECTED.replace('on-failure:N', 'on-failure:N (at most N restarts)')}, got "${v}"${suggestion(v, RESTART_POLICIES)}`)
}, {description: RESTART_EXPECTED, type: 'string', pattern: `^(${RESTART_POLICIES.join('|')}|on-failure:\\d+)$`})

const CONDITIONS: readonly DependencyCondition[] = ['service_started', 'service_healthy', 'service_completed_successfully']
// `migrate: {condition: service_completed_successfully}`; a bare `migrate: completed` is
// answered with the mapping to write, as compose takes only that.
interface Dependency {
  condition: DependencyCondition
  /** compose's `required: false`: a dependency not started (its profile off) is not waited for. */
  required: boolean
}
const dependencyCondition = oneOf<Dependency>(`{condition: ${CONDITIONS.join(' | ')}}`, {
  map: map(obj({condition: def(enumOf(CONDITIONS), 'service_healthy'), required: def(bool(), true)}), (c) => ({condition: c.condition, required: c.required})),
  scalar: checker<Dependency>(`{condition: ...}`, (at) => {
    const near = CONDITIONS.find((c) => typeof at.value === 'string' && c.includes(at.value)) ?? 'service_healthy'
    return at.error(`expected {condition: ${CONDITIONS.join(' | ')}}, got ${describeNode(at.node)}; write {condition: ${near}}`)
  }, false),
})
// compose's two spellings: a list (each waited for healthy), or a mapping with a condition each.
const dependsOn = oneOf<Array<[string, Dependency]>>('a list of service names, or a mapping of service names to {condition: ...}', {
  seq: map(array(ref), (names) => names.map((n): [string, Dependency] => [n, {condition: 'service_healthy', required: true}])),
  map: entries(dependencyCondition, {key: ref}),
})

// compose's profile names: [a-zA-Z0-9][a-zA-Z0-9_.-]+ (one character is a name too here).
const PROFILE_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/

const service = obj({
  ...versionKeys,
  versions: opt(entries(version, {key: versionName, min: 1})),
  dependsOn: def(dependsOn, () => []),
  health: opt(health),
  stopGracePeriod: def(duration(), 10_000),
  restart: def(restartPolicy, (): RestartSetting => ({policy: 'always'})),
  watch: opt(oneOf('a path or a list of them', {scalar: map(str({nonEmpty: true}), (p) => [p]), seq: array(str({nonEmpty: true}), {min: 1})})),
  warmUp: opt(obj({paths: req(array(httpPath, {min: 1}))})),
  profiles: opt(array(str({pattern: PROFILE_NAME, expected: 'a profile name (letters, digits, then also _ . -)'}), {min: 1})),
  protocol: def(enumOf(['http', 'grpc', 'tcp'] as const), 'http'),
  policy: def(policy, defaultPolicy),
  deploy: opt(deploy),
})

/** A TCP connection has none of these: an authorization rule naming one is an error there. */
const HTTP_RULE_KEYS_SAY = {
  methods: 'method',
  notMethods: 'method',
  paths: 'path',
  notPaths: 'path',
  requestPrincipals: 'token',
  notRequestPrincipals: 'token',
} as const
const HTTP_RULE_KEYS = Object.keys(HTTP_RULE_KEYS_SAY) as Array<keyof typeof HTTP_RULE_KEYS_SAY>
/** What a TCP service's connections can have: everything else in `policy:` reads HTTP requests. */
const TCP_POLICY_KEYS = ['loadBalancer', 'weights', 'circuitBreaker', 'outlierDetection', 'authorization', 'mtls']
type RawService = NonNullable<ReturnType<typeof service>>

const WORKLOAD_KEYS = ['command', 'simulate', 'address'] as const

/** Where the values cross-checks care about were written, so their issues point there. */
export interface ServiceOrigins {
  /** dependency → where it is first named: a dependsOn entry or a simulate call's service. */
  dependsOn: Map<string, Path>
  /** version → where its fixed port and address were written (service or version level). */
  versions: Map<string, {port?: Path; address?: Path}>
  /** service → where the model (`simulate:` beside `command:`) first calls it: checked to exist, not a dependency of the command. */
  modelCalls: Map<string, Path>
}

export interface CheckedMesh {
  /** Valid parts only: services with errors are left out (their issues are already reported). */
  config: MeshConfig
  origins: Map<string, ServiceOrigins>
  /** Every service key in the file, valid or not: what a reference may name. */
  declared: string[]
  /** Whether the file has an `ingress:` key (even an invalid one). */
  hasIngress: boolean
}

const ingress: Checker<IngressConfig> = refine(map(
  obj({
    port: req(int({min: 0, max: 65535})),
    routes: def(array(map(obj({prefix: req(httpPath), service: req(ref), rewrite: opt(httpPath)}), (r) => compact(r))), () => []),
    preserveRequestId: opt(bool()),
    maxRequestHeaders: opt(int({min: 1, max: 10_000})),
    requestAuthentication: opt(requestAuthentication),
    tls: opt(ingressTls),
  }),
  (i) => compact(i),
), (i, at) => (i.tls && i.tls.port !== 0 && i.tls.port === i.port ? at.child('tls')!.child('port')!.error(`the HTTPS ingress needs a port of its own: ${i.port} is ingress.port`) : i))

/** `faults.inject` is checked after the services (its entries name them); here it only has to be present. */
const anyNode = checker('a list of faults', (at) => at, {
  type: 'array',
  items: {type: 'object', required: ['service'], properties: Object.fromEntries(FAULT_KEYS.map((k) => [k, {}])), additionalProperties: false},
})
const faults = obj({allowHeaders: def(bool(), false), inject: opt(anyNode)})
const telemetry = obj({
  accessLog: opt(bool()),
  sampling: opt(obj({spansPerSecond: req(int({min: 1, expected: 'a whole number of spans a second, at least 1'}))})),
  otlp: opt(obj({endpoint: req(str({pattern: /^https?:\/\/[^/\s]+/, expected: 'an http(s):// URL of an OTLP/HTTP collector'}))})),
})

/** Far more processes than a laptop has cores: a typo beyond it. */
const MAX_SIMULATION_HOSTS = 256
const HOSTS_EXPECTED = `a whole number of simulation hosts from 0 (a process per simulated instance) to ${MAX_SIMULATION_HOSTS}, or auto (one per core)`
/** `simulation.hosts`: how many processes share the `simulate:` instances (supervisor/hosted-driver.ts). */
const simulation = obj({
  hosts: def(
    scalar<number | 'auto'>(HOSTS_EXPECTED, (v) => (v === 'auto' || (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_SIMULATION_HOSTS) ? v : undefined), {
      anyOf: [{type: 'integer', minimum: 0, maximum: MAX_SIMULATION_HOSTS}, {const: 'auto'}],
    }),
    'auto' as number | 'auto',
  ),
})

const TOP_KEYS = ['name', 'ingress', 'faults', 'telemetry', 'security', 'functions', 'simulation', 'services']
/** The checkers of the top level's keys, for the JSON Schema (json-schema.ts). */
export const topLevel = {keys: TOP_KEYS, name: meshName, ingress, faults, telemetry, security, functions, simulation, serviceName, service}

/** Check the whole document against the schema; every issue goes to `report`. */
export function checkMesh(report: Report, file: string, dir: string): CheckedMesh {
  const root = report.root()
  const checked: CheckedMesh = {
    config: {name: '', file, dir, services: [], faults: {allowHeaders: false, inject: []}},
    origins: new Map(),
    declared: [],
    hasIngress: false,
  }
  if (root.kind !== 'map') {
    root.expected('a mapping with name and services (run `mesh init` for a starter mesh.yaml)')
    return checked
  }
  for (const {key, at} of root.entries()) {
    if (!TOP_KEYS.includes(key)) at.errorAtKey(`unknown key "${key}"${suggestion(key, TOP_KEYS) || `; expected one of ${TOP_KEYS.join(', ')}`}`)
  }

  const nameAt = root.child('name')
  if (nameAt) checked.config.name = meshName(nameAt) ?? ''
  else root.error('missing required key "name"')

  const ingressAt = root.child('ingress')
  if (ingressAt) {
    checked.hasIngress = true
    const value = ingress(ingressAt)
    if (value) checked.config.ingress = value
  }

  const faultsAt = root.child('faults')
  if (faultsAt) checked.config.faults = {allowHeaders: faults(faultsAt)?.allowHeaders ?? false, inject: []}

  const telemetryAt = root.child('telemetry')
  if (telemetryAt) {
    const t = telemetry(telemetryAt)
    if (t?.otlp || t?.accessLog || t?.sampling) {
      checked.config.telemetry = {
        ...(t.otlp ? {otlpEndpoint: t.otlp.endpoint.replace(/\/+$/, '')} : {}),
        ...(t.accessLog ? {accessLog: true} : {}),
        ...(t.sampling ? {spansPerSecond: t.sampling.spansPerSecond} : {}),
      }
    }
  }

  const securityAt = root.child('security')
  if (securityAt) {
    const value = security(securityAt)
    if (value) checked.config.security = value
  }

  const functionsAt = root.child('functions')
  if (functionsAt) {
    const value = functions(functionsAt)
    if (value) checked.config.functions = value
  }

  const simulationAt = root.child('simulation')
  if (simulationAt) {
    const value = simulation(simulationAt)
    if (value) checked.config.simulation = value
  }

  const servicesAt = root.child('services')
  if (!servicesAt) {
    root.error('missing required key "services"')
    return checked
  }
  if (servicesAt.kind !== 'map' || servicesAt.entries().length === 0) {
    servicesAt.expected('a non-empty mapping of services')
    return checked
  }
  // Each service is checked on its own, so one broken service does not hide the others' problems.
  for (const {key, at} of servicesAt.entries()) {
    checked.declared.push(key)
    const nameOk = serviceName(at.keyAt()) !== undefined
    const raw = service(at)
    if (!raw || !nameOk) continue
    const normalised = normaliseService(key, raw, at, {meshName: checked.config.name, dir})
    if (!normalised) continue
    checked.config.services.push(normalised.service)
    checked.origins.set(key, normalised.origins)
  }
  // Standing faults name services and versions, so they are checked once the services are known.
  const injectAt = faultsAt?.child('inject')
  if (injectAt) {
    if (injectAt.kind !== 'seq') injectAt.expected('a list of faults such as - {service: payments, delay: 300ms}')
    else {
      const known = Object.fromEntries(checked.config.services.map((s) => [s.name, s.versions.map((v) => v.name)]))
      const tcp = new Set(checked.config.services.filter((s) => s.protocol === 'tcp').map((s) => s.name))
      for (const item of injectAt.items()) {
        const raw = (item.node as {toJSON?: () => unknown} | undefined)?.toJSON?.() ?? item.value
        const {spec, problems} = checkFault(raw, {known, perRequestOnly: true})
        for (const p of problems) ((p.path && item.child(p.path)) || item).error(p.message)
        const selector = spec && tcp.has(spec.service) ? requestOnlySelector(spec) : undefined
        if (selector) item.child(selector)!.error(`"${spec!.service}" is protocol: tcp: its connections have no ${selector} to select, so the fault would never act`)
        else if (spec?.kind === 'jwks-unavailable' && !fetchesJwks(checked.config, spec.service)) item.child('jwksUnavailable')!.error(`"${spec.service}" fetches no key set (none of its jwtRules has a jwksUri), so the fault would never act`)
        else if (spec) checked.config.faults.inject.push(spec)
      }
    }
  }
  checkJwksFiles(checked.config, dir, (path) => report.locate(path))
  // Same key order as MeshConfig declares, so dumps read like the file.
  const {name, ingress: ingressConfig, services, faults: faultsConfig, telemetry: telemetryConfig, security: securityConfig, functions: functionsConfig, simulation: simulationConfig} = checked.config
  checked.config = {
    name,
    file,
    dir,
    ...(ingressConfig ? {ingress: ingressConfig} : {}),
    services,
    faults: faultsConfig,
    ...(telemetryConfig ? {telemetry: telemetryConfig} : {}),
    ...(securityConfig ? {security: securityConfig} : {}),
    ...(functionsConfig ? {functions: functionsConfig} : {}),
    ...(simulationConfig ? {simulation: simulationConfig} : {}),
  }
  return checked
}

/**
 * One service as the code sees it: versions merged over the service-level keys
 * (version keys win, env merged), exactly one workload each, calls added to dependsOn.
 */
function normaliseService(
  name: string,
  raw: RawService,
  at: At,
  mesh: {meshName: string; dir: string},
): {service: ServiceConfig; origins: ServiceOrigins} | undefined {
  const servicePath = at.path
  let ok = [exclusiveWorkload(raw, at, 'service'), scalingFits(raw, at)].every(Boolean)

  // Without `versions:` the service is its own single version, v1.
  const declared: Array<{name: string; raw: RawVersion; at: At | undefined; path: Path}> = raw.versions
    ? raw.versions.map(([v, rawVersion]) => ({name: v, raw: rawVersion, at: at.child('versions')!.child(v), path: [...servicePath, 'versions', v]}))
    : [{name: 'v1', raw: {} as RawVersion, at: undefined, path: servicePath}]

  const origins: ServiceOrigins = {dependsOn: new Map(), versions: new Map(), modelCalls: new Map()}
  // `simulate:` beside `command:` is how `mesh sim` models the command; `mesh up` runs the command.
  const model = raw.command !== undefined && raw.simulate ? withSeed(raw.simulate, seedFrom(mesh.meshName, name, 'model')) : undefined
  model?.calls.forEach((call, i) => {
    if (!origins.modelCalls.has(call.service)) origins.modelCalls.set(call.service, [...servicePath, 'simulate', 'calls', i, 'service'])
  })
  const listed = at.child('dependsOn')?.kind === 'seq'
  const conditions: NonNullable<ServiceConfig['dependsOnConditions']> = {}
  const optional: string[] = []
  raw.dependsOn.forEach(([dep, {condition, required}], i) => {
    if (!origins.dependsOn.has(dep)) origins.dependsOn.set(dep, [...servicePath, 'dependsOn', listed ? i : dep])
    if (condition !== 'service_healthy') conditions[dep] = condition
    if (!required) optional.push(dep)
  })

  // env_file then environment, as compose: the file's values first, `env:` over them; then the version's own.
  const serviceEnv = {...readEnvFiles(raw.envFile, at.child('envFile'), mesh.dir), ...raw.env}
  const versions: VersionConfig[] = []
  for (const v of declared) {
    if (v.at && ![exclusiveWorkload(v.raw, v.at, 'version'), scalingFits(v.raw, v.at)].every(Boolean)) {
      ok = false
      continue
    }
    // A version that names its own workload replaces the service's, whatever kind it is.
    const fromVersion = WORKLOAD_KEYS.some((k) => v.raw[k] !== undefined)
    const source = fromVersion ? v.raw : raw
    const sourcePath = fromVersion ? v.path : servicePath
    const kind = WORKLOAD_KEYS.find((k) => source[k] !== undefined)
    if (!kind) {
      ;(v.at ?? at).error('expected one of command, simulate or address')
      ok = false
      continue
    }
    const image = v.raw.image ?? raw.image
    if (kind === 'simulate' && image !== undefined) {
      ;(v.raw.image !== undefined ? v.at! : at).child('image')!.errorAtKey('a simulated service runs in the simulated-service runner image (mesh export kubernetes --runner-image); image: is for command: and address: services')
      ok = false
      continue
    }
    let workload: Workload
    if (kind === 'command') {
      workload = compact({kind, command: source.command!, cwd: resolve(mesh.dir, v.raw.cwd ?? raw.cwd ?? '.'), image})
    } else if (kind === 'simulate') {
      workload = {kind, simulate: withSeed(source.simulate!, seedFrom(mesh.meshName, name, v.name))}
      source.simulate!.calls.forEach((call, i) => {
        if (!origins.dependsOn.has(call.service)) origins.dependsOn.set(call.service, [...sourcePath, 'simulate', 'calls', i, 'service'])
      })
    } else {
      workload = compact({kind, host: source.address!.host, port: source.address!.port, image})
    }
    const port = v.raw.port ?? raw.port
    // A version's own replicas is a fixed count: the service's scaling: is not inherited over it.
    const scalingOf = v.raw.scaling ?? (v.raw.replicas === undefined ? raw.scaling : undefined)
    origins.versions.set(
      v.name,
      compact({
        port: port === undefined ? undefined : [...(v.raw.port !== undefined ? v.path : servicePath), 'port'],
        address: kind === 'address' ? [...sourcePath, 'address'] : undefined,
      }),
    )
    versions.push(
      compact({
        name: v.name,
        replicas: scalingOf ? initialInstances(scalingOf) : (v.raw.replicas ?? raw.replicas ?? 1),
        workload,
        env: {...serviceEnv, ...readEnvFiles(v.raw.envFile, v.at?.child('envFile'), mesh.dir), ...v.raw.env},
        port,
        scaling: scalingOf,
      }),
    )
  }
  if (raw.protocol === 'tcp' && !tcpFits(raw, at)) ok = false
  if (raw.protocol === 'grpc' && !grpcFits(raw, at)) ok = false
  if (!tlsFits(raw.policy.tls, versions.some((v) => v.workload.kind === 'simulate'), at)) ok = false
  const checks = (['path', 'grpc', 'command'] as const).filter((k) => raw.health?.[k] !== undefined && raw.health?.[k] !== false)
  if (checks.length > 1) {
    at.child('health')?.child(checks[1])?.errorAtKey(`health takes one check: ${checks.join(' or ')}, not both`)
    ok = false
  }
  const grpcCheck = at.child('health')?.child('grpc')
  if (grpcCheck && raw.health?.grpc !== false && raw.protocol !== 'grpc') {
    grpcCheck.errorAtKey(`a gRPC health check needs protocol: grpc; this service speaks ${raw.protocol}${raw.protocol === 'http' ? ' (use health.path)' : ''}`)
    ok = false
  }
  const warmUpAt = at.child('warmUp')
  if (warmUpAt && raw.warmUp && !versions.some((v) => v.workload.kind === 'command')) {
    // The warm-up sends a simulated service the calls its callers make, and never calls an address.
    warmUpAt.errorAtKey(`warmUp names safe paths of a command: service; ${name} has none (a simulated one is warmed at the paths its callers call, an address: is never called)`)
    ok = false
  }
  const watch = watchPaths(raw, at, mesh.dir, versions)
  if (watch === false) ok = false
  if (!ok) return undefined

  // Real processes get a TCP check unless they name a path; simulated ones always serve /healthz.
  const allSimulated = versions.every((v) => v.workload.kind === 'simulate')
  const h = raw.health
  const healthConfig: HealthConfig = compact({
    path: h?.path ?? (allSimulated ? '/healthz' : undefined),
    grpcService: typeof h?.grpc === 'string' ? h.grpc : undefined,
    command: h?.command,
    intervalMs: h?.interval ?? 1000,
    timeoutMs: h?.timeout ?? 1000,
    healthyThreshold: h?.healthyThreshold ?? 1,
    unhealthyThreshold: h?.unhealthyThreshold ?? 3,
  })

  return {
    service: compact({
      name,
      // A simulated service can only call through a dependency URL, so its calls are dependencies.
      dependsOn: [...origins.dependsOn.keys()],
      dependsOnConditions: Object.keys(conditions).length > 0 ? conditions : undefined,
      optionalDependsOn: optional.length > 0 ? optional : undefined,
      restart: raw.restart.policy === 'on-failure' || raw.restart.policy === 'no' ? raw.restart.policy : undefined,
      maxRestarts: raw.restart.maxRestarts,
      watch: watch || undefined,
      warmUpPaths: raw.warmUp?.paths,
      profiles: raw.profiles,
      health: healthConfig,
      policy: raw.policy,
      versions,
      stopGracePeriodMs: raw.stopGracePeriod,
      protocol: raw.protocol === 'http' ? undefined : raw.protocol,
      model,
      deploy: raw.deploy,
    }),
    origins,
  }
}

/** `watch:` as absolute paths, each of which must exist; false when one is wrong (reported at it). */
function watchPaths(raw: RawService, at: At, dir: string, versions: VersionConfig[]): string[] | false | undefined {
  if (!raw.watch) return undefined
  const where = at.child('watch')!
  if (versions.some((v) => v.workload.kind === 'address')) {
    where.errorAtKey('the mesh runs no process of an address: service, so there is nothing to restart when files change')
    return false
  }
  let ok = true
  const paths = raw.watch.map((p, i) => {
    const full = resolve(dir, p)
    if (!existsSync(full)) {
      where.item(i).error(`${p} does not exist (paths are relative to mesh.yaml, here ${dir})`)
      ok = false
    }
    return full
  })
  return ok && paths
}

/** A `protocol: grpc` service speaks HTTP/2 only: the simulator and the HTTP/1.1 health probe cannot reach it. */
function grpcFits(raw: RawService, at: At): boolean {
  const wrong = simulateKeys(raw, at)
  for (const where of wrong) where.errorAtKey('a simulated service speaks HTTP/1.1; protocol: grpc needs command: or address:')
  const path = at.child('health')?.child('path')
  path?.errorAtKey('an HTTP/1.1 health path cannot reach a protocol: grpc service; use health.grpc: true (grpc.health.v1), or leave it to a TCP connect')
  return wrong.length === 0 && !path
}

/** Where a service, or one of its versions, runs a simulated service (`simulate:` beside `command:` is only a model). */
function simulateKeys(raw: RawService, at: At): At[] {
  const keys = [raw.command === undefined ? at.child('simulate') : undefined, ...(raw.versions ?? []).map(([v]) => at.child('versions')?.child(v)?.child('simulate'))]
  return keys.filter((k): k is At => k !== undefined)
}

/** A `protocol: tcp` service: no simulation (it speaks HTTP), no HTTP health path, only connection-level policy. */
function tcpFits(raw: RawService, at: At): boolean {
  const wrong: At[] = []
  const complain = (where: At | undefined, message: string, atKey = true) => {
    if (!where) return
    if (atKey) where.errorAtKey(message)
    else where.error(message)
    wrong.push(where)
  }
  for (const where of simulateKeys(raw, at)) complain(where, 'a simulated service speaks HTTP; protocol: tcp needs command: or address:')
  if (raw.command !== undefined) complain(at.child('simulate'), 'mesh sim models requests, not TCP connections: a protocol: tcp service has no simulate: model')
  complain(at.child('health')?.child('path'), 'protocol: tcp is checked by TCP connect; an HTTP health path does not apply')
  const sessions = 'protocol: tcp connections are sessions, not requests: the autoscaler and the activator count and hold requests only, so a connection would bypass them; give a protocol: tcp service replicas:'
  for (const where of [at.child('scaling'), ...(raw.versions ?? []).map(([v]) => at.child('versions')?.child(v)?.child('scaling'))]) complain(where, sessions)
  for (const {key, at: policyAt} of at.child('policy')?.entries() ?? []) {
    if (!TCP_POLICY_KEYS.includes(key)) complain(policyAt, `policy.${key} acts on HTTP requests; a protocol: tcp service takes only ${TCP_POLICY_KEYS.join(', ')}`)
  }
  // A connection has a caller but no method, path, header or token: a rule naming one would never match it.
  const l4 = 'its authorization rules take only from, principals, notPrincipals and when on source.principal or source.namespace'
  for (const kind of ['allow', 'deny'] as const) {
    for (const rule of at.child('policy')?.child('authorization')?.child(kind)?.items() ?? []) {
      for (const key of HTTP_RULE_KEYS) complain(rule.child(key), `a protocol: tcp connection has no ${HTTP_RULE_KEYS_SAY[key]}; ${l4}`)
      for (const c of rule.child('when')?.items() ?? []) {
        const key = c.child('key')
        const attribute = typeof key?.value === 'string' ? parseConditionKey(key.value) : undefined
        if (attribute && !('error' in attribute) && needsRequest(attribute)) complain(key, `a protocol: tcp connection has no HTTP request or token; ${l4}`, false)
      }
    }
  }
  const lb = raw.policy.loadBalancer.kind
  if (lb === 'ring-hash' || lb === 'ewma') {
    const why = lb === 'ring-hash' ? 'ring-hash hashes an HTTP header or cookie' : 'ewma weighs response latency'
    complain(at.child('policy')?.child('loadBalancer'), `${why}; a protocol: tcp service balances by round-robin, random or least-request (least connections)`, false)
  }
  return wrong.length === 0
}

/**
 * One mapping may name at most one of command, simulate, address — except that a service
 * may write `simulate:` beside `command:`: the command runs, and the block is mesh sim's model of it.
 */
function exclusiveWorkload(raw: Partial<Record<(typeof WORKLOAD_KEYS)[number], unknown>>, at: At, level: 'service' | 'version'): boolean {
  const given = WORKLOAD_KEYS.filter((k) => raw[k] !== undefined)
  const modelled = raw.command !== undefined && raw.simulate !== undefined
  const workloads = level === 'service' && modelled ? given.filter((k) => k !== 'simulate') : given
  if (workloads.length <= 1) return true
  if (level === 'version' && modelled && given.length === 2) {
    at.child('simulate')!.errorAtKey("simulate: beside command: is mesh sim's model of the service, one for all its command versions: write it at the service's level, beside the service's command:")
    return false
  }
  at.child(workloads[1])!.errorAtKey(`expected only one of command, simulate or address, got ${workloads.join(' and ')}`)
  return false
}

function withSeed(raw: RawSimulate, fallbackSeed: number): SimulateConfig {
  return {
    latency: raw.latency,
    errorRate: raw.errorRate,
    errorStatus: raw.errorStatus,
    calls: raw.calls.map((c) => ({service: c.service, probability: c.probability, path: c.path, method: c.method})),
    callMode: raw.callMode,
    responseBytes: raw.responseSize,
    concurrency: raw.concurrency,
    seed: raw.seed ?? fallbackSeed,
    ...(raw.callErrorStatus !== undefined ? {callErrorStatus: raw.callErrorStatus} : {}),
    ...(raw.isolated ? {isolated: true} : {}),
    ...(raw.coldStart ? {coldStart: raw.coldStart} : {}),
  }
}

/** Drop keys whose value is undefined, so optional fields are absent rather than present-and-undefined. */
function compact<T extends object>(value: T): T {
  // A copy, not `delete`: an object that lost a key is slow to read from ever after.
  const out = {} as T
  for (const key of Object.keys(value) as Array<keyof T>) if (value[key] !== undefined) out[key] = value[key]
  return out
}
