// A mesh.yaml's policies as Istio's objects: per service a VirtualService (routes, weights,
// timeout, retries, mirror, standing faults) and a DestinationRule (subsets per version,
// load balancer, connection pool from the circuit breaker, outlier detection). Where Istio
// means something else by the same words, the object says what meshsim did and the loss
// report says what differs.
import {DestinationRule, type IDestinationRule} from '@kubernetes-models/istio/networking.istio.io/v1/DestinationRule'
import {type IVirtualService, VirtualService} from '@kubernetes-models/istio/networking.istio.io/v1/VirtualService'
import {GRPC_RETRY_NAMES, isIdempotent} from '../config/retry-semantics.js'
import type {PolicyConfig, RetryConfig, RetryOn, ServiceConfig} from '../config/types.js'
import {describeFault, type FaultSpec} from '../faults/fault.js'
import {GRPC_STATUS_NAMES} from '../proxy/grpc.js'
import {type ExportContext, istioDuration, type Manifest, meshLabels, serviceHost} from './manifest.js'
import {localRateLimit} from './istio-rate-limit.js'
import {isKnative} from './knative.js'
import {servicePort} from './workloads.js'

type VsSpec = NonNullable<IVirtualService['spec']>
export type HttpRoute = NonNullable<VsSpec['http']>[number]
type HttpMatch = NonNullable<HttpRoute['match']>[number]
type RouteDestination = NonNullable<HttpRoute['route']>[number]
type Fault = NonNullable<HttpRoute['fault']>
type DrSpec = NonNullable<IDestinationRule['spec']>
type TrafficPolicy = NonNullable<DrSpec['trafficPolicy']>

/** Envoy's defaults, which Istio does not let a route change: a backoff other than these is a loss. */
const ENVOY_RETRY_BACKOFF = {baseMs: 25, maxMs: 250}
/** Methods meshsim never replays (but after a connect failure, or a named gRPC status): RFC 9110's non-idempotent ones. */
const NOT_IDEMPOTENT = ['POST', 'PATCH', 'CONNECT'].filter((m) => !isIdempotent(m))

export function istioServiceObjects(ctx: ExportContext): Manifest[] {
  const out: Manifest[] = []
  for (const s of ctx.config.services) {
    const w = s.versions[0].workload
    // An address outside the cluster, with no image: no pods of ours for a subset to select.
    if (w.kind === 'address' && w.image === undefined) {
      policyLost(s, ctx, 'the service is an address outside the cluster, with no pods for Istio to route to', 'none; a ServiceEntry for the address could carry it')
      continue
    }
    // Knative (net-istio) writes the VirtualService of its own Services' hosts.
    if (isKnative(s)) {
      policyLost(s, ctx, "Knative routes to its Services itself (net-istio makes their VirtualServices): a VirtualService or DestinationRule of ours would fight it", "none; Knative's own timeoutSeconds and retries, or a DestinationRule for the revision's private Service")
        continue
    }
    out.push({file: s.name, object: virtualService(s, ctx)})
    out.push({file: s.name, object: destinationRule(s, ctx)})
    const limit = localRateLimit(s, ctx)
    if (limit) out.push(limit)
  }
  return out
}

function policyLost(s: ServiceConfig, ctx: ExportContext, reason: string, nearest: string): void {
  const p = s.policy
  const set = (['timeoutMs', 'retries', 'outlierDetection', 'circuitBreaker', 'rateLimit', 'mirror', 'weights'] as const).filter((k) => p[k] !== undefined)
  if (p.loadBalancer.kind !== 'round-robin') ctx.losses.add(`services.${s.name}.policy.loadBalancer`, reason, nearest)
  for (const key of set) ctx.losses.add(`services.${s.name}.policy.${key.replace(/Ms$/, '')}`, reason, nearest)
  if (p.routes.length > 0) ctx.losses.add(`services.${s.name}.policy.routes`, reason, nearest)
}

function objectMeta(s: ServiceConfig, ctx: ExportContext) {
  return {name: s.name, namespace: ctx.namespace, labels: {app: s.name, ...meshLabels(ctx)}}
}

// ---------------------------------------------------------------------------------
// VirtualService

/** What every HTTP route to the service carries, wherever it is written: its destinations and its policy. */
function routeParts(s: ServiceConfig, ctx: ExportContext) {
  const host = serviceHost(s.name, ctx.namespace)
  const port = servicePort(s)
  const dest = (subset: string) => ({host, subset, port: {number: port}})
  const p = s.policy
  const common: HttpRoute = {
    ...(p.timeoutMs === undefined ? {} : {timeout: istioDuration(p.timeoutMs)}),
    // Istio retries twice by default; meshsim without retries: never.
    retries: p.retries ? retriesOf(p.retries, p.retries.on) : {attempts: 0},
    ...(p.mirror ? {mirror: dest(p.mirror.version), mirrorPercentage: {value: p.mirror.percent}} : {}),
  }
  if (p.retries && (p.retries.backoff.baseMs !== ENVOY_RETRY_BACKOFF.baseMs || p.retries.backoff.maxMs !== ENVOY_RETRY_BACKOFF.maxMs)) {
    ctx.losses.add(`services.${s.name}.policy.retries.backoff`, "Istio does not set a route's retry backoff: Envoy's 25 ms base and 250 ms cap apply", 'the default backoff (base 25ms, max 250ms)')
  }
  return {host, dest, common, weighted: weightedRoute(s, ctx, dest)}
}

function virtualService(s: ServiceConfig, ctx: ExportContext): VirtualService {
  const {host, dest, common, weighted} = routeParts(s, ctx)
  if (s.protocol === 'tcp') return new VirtualService({metadata: objectMeta(s, ctx), spec: {hosts: [host], tcp: [{route: weighted}]}})
  const p = s.policy
  let http: HttpRoute[] = [
    ...p.routes.map((rule, i): HttpRoute => ({name: `route-${i}`, match: [matchOf(rule.match)], route: [{destination: dest(rule.version)}], ...common})),
    {name: 'default', route: weighted, ...common},
  ]
  http = withFaults(s, http, ctx)
  if (p.retries) http = splitNonIdempotent(http, p.retries)
  return new VirtualService({metadata: objectMeta(s, ctx), spec: {hosts: [host], http}})
}

/**
 * The ingress's routes to `s` (`base`: their name, prefix match and rewrite). A service's
 * VirtualService binds only its callers' sidecars, so the Gateway's routes carry its policy
 * themselves, as meshsim's ingress is one more caller of the service.
 */
export function ingressRoutesTo(s: ServiceConfig, base: HttpRoute, ctx: ExportContext): HttpRoute[] {
  const w = s.versions[0].workload
  // Knative routes its own Services; an outside address has no subsets.
  if (isKnative(s) || (w.kind === 'address' && w.image === undefined)) return [base]
  const {dest, common, weighted} = routeParts(s, ctx)
  const p = s.policy
  const where = `services.${s.name}.policy`
  if (p.routes.some((r) => r.match.pathPrefix !== undefined)) {
    ctx.losses.add(`${where}.routes`, "the ingress's routes match their own prefix on the path; a route rule's pathPrefix cannot be matched beside it in one Istio match", "the ingress's requests to it take the header rules and the weights, not the pathPrefix rules")
  }
  if (ctx.config.faults.inject.some((f) => f.service === s.name)) {
    ctx.losses.add(`${where}`, `${s.name}'s standing faults act on the ingress's requests too in meshsim; the Gateway's VirtualService carries none`, `the faults in ${s.name}'s own VirtualService, for its callers in the mesh`)
  }
  const rules = p.routes
    .map((rule, i) => ({rule, i}))
    .filter(({rule}) => rule.match.pathPrefix === undefined)
    .map(({rule, i}): HttpRoute => ({...base, name: `${base.name}-route-${i}`, match: (base.match ?? [{}]).map((m) => ({...m, ...matchOf(rule.match)})), route: [{destination: dest(rule.version)}], ...common}))
  const http: HttpRoute[] = [...rules, {...base, route: weighted, ...common}]
  return p.retries ? splitNonIdempotent(http, p.retries) : http
}

/** `route` under another name and match (written first, so each route reads: name, match, what it does), with `over` on top. */
function withMatch(route: HttpRoute, name: string, match: HttpMatch[], over: Partial<HttpRoute>): HttpRoute {
  const {name: _name, match: _match, ...body} = route
  return {name, match, ...body, ...over}
}

function matchOf(m: PolicyConfig['routes'][number]['match']): HttpMatch {
  const match: HttpMatch = {}
  if (m.pathPrefix !== undefined) match.uri = {prefix: m.pathPrefix}
  if (m.headers) match.headers = Object.fromEntries(Object.entries(m.headers).map(([k, v]) => [k.toLowerCase(), {exact: v}]))
  return match
}

/** The version split as Istio's integer weights summing to 100 (largest remainder), or the first version alone. */
function weightedRoute(s: ServiceConfig, ctx: ExportContext, dest: (subset: string) => RouteDestination['destination']): RouteDestination[] {
  const weights = s.policy.weights
  if (!weights) return [{destination: dest(s.versions[0].name)}]
  const names = s.versions.map((v) => v.name).filter((v) => weights[v] !== undefined)
  const total = names.reduce((sum, v) => sum + weights[v], 0)
  if (total === 0) return [{destination: dest(s.versions[0].name)}]
  const exact = names.map((v) => (weights[v] / total) * 100)
  const whole = exact.map(Math.floor)
  const order = exact.map((x, i) => ({i, rest: x - Math.floor(x)})).sort((a, b) => b.rest - a.rest || a.i - b.i)
  for (let left = 100 - whole.reduce((a, b) => a + b, 0), k = 0; left > 0; left--, k++) whole[order[k].i]++
  if (exact.some((x, i) => Math.abs(x - whole[i]) > 1e-9)) {
    ctx.losses.add(`services.${s.name}.policy.weights`, `Istio's weights are whole percents; ${names.map((v, i) => `${v} ${Number(exact[i].toFixed(3))}%`).join(', ')} is not`, names.map((v, i) => `${v} ${whole[i]}`).join(', '))
  }
  return names.map((v, i) => ({destination: dest(v), weight: whole[i]}))
}

function retriesOf(r: RetryConfig, on: readonly RetryOn[]): NonNullable<HttpRoute['retries']> {
  if (on.length === 0) return {attempts: 0}
  return {
    attempts: r.attempts,
    ...(r.perTryTimeoutMs === undefined ? {} : {perTryTimeout: istioDuration(r.perTryTimeoutMs)}),
    retryOn: on.map(String).join(','),
  }
}

/**
 * meshsim replays a POST (or PATCH) only after a connect failure (nothing reached the service)
 * or a named gRPC status; Envoy replays any method. So each route is preceded by the same route
 * for those methods, retrying only on what meshsim would.
 */
function splitNonIdempotent(http: HttpRoute[], r: RetryConfig): HttpRoute[] {
  const safe = r.on.filter((o) => o === 'connect-failure' || (GRPC_RETRY_NAMES as readonly RetryOn[]).includes(o))
  if (safe.length === r.on.length) return http
  const method = {regex: NOT_IDEMPOTENT.join('|')}
  return http.flatMap((route): HttpRoute[] => [
    withMatch(route, `${route.name}-not-idempotent`, (route.match ?? [{}]).map((m) => ({...m, method})), {retries: retriesOf(r, safe)}),
    route,
  ])
}

// ---------------------------------------------------------------------------------
// Standing faults (faults.inject)

function withFaults(s: ServiceConfig, http: HttpRoute[], ctx: ExportContext): HttpRoute[] {
  const mine = ctx.config.faults.inject.map((f, i) => ({f, i})).filter(({f}) => f.service === s.name)
  if (mine.length === 0) return http
  const everywhere: Fault = {}
  const selected: HttpRoute[] = []
  for (const {f, i} of mine) {
    const where = `faults.inject.${i}`
    if (f.from === 'ingress') {
      ctx.losses.add(where, "requests from the ingress take the Gateway's VirtualService, not the service's, and no sidecar labels the gateway as a caller", 'none; a fault in the ingress VirtualService would hit every route to it')
      continue
    }
    const fault = faultOf(f, where, ctx)
    if (!fault) continue
    if (f.at !== 'caller') {
      ctx.losses.add(
        where,
        "meshsim injects it at the callee, so the caller's retries and timeouts act on each faulted attempt; Istio injects a VirtualService fault in the caller's sidecar, before its retries: a faulted request is not retried",
        `the fault in ${s.name}'s VirtualService (as meshsim's at: caller)`,
      )
    }
    const match: HttpMatch = {}
    if (f.pathPrefix !== undefined) match.uri = {prefix: f.pathPrefix}
    if (f.header) match.headers = {[f.header.name.toLowerCase()]: {exact: f.header.value}}
    if (f.from !== undefined) match.sourceLabels = {app: f.from}
    if (Object.keys(match).length === 0) {
      for (const kind of ['delay', 'abort'] as const) {
        if (!fault[kind]) continue
        if (everywhere[kind]) ctx.losses.add(where, `Istio takes one ${kind} per route; an earlier standing ${kind} on ${s.name} has it`, 'none')
        else Object.assign(everywhere, {[kind]: fault[kind]})
      }
      continue
    }
    const fallback = http.at(-1)!
    if (http.length > 1) {
      ctx.losses.add(where, `requests its selectors match take one route of their own in Istio, so ${s.name}'s policy.routes do not apply to them`, "the service's weights for them")
    }
    selected.push(withMatch(fallback, `fault-${i}`, [match], {fault}))
  }
  const merged = Object.keys(everywhere).length === 0 ? http : http.map((route) => ({...route, fault: everywhere}))
  return [...selected.map((route) => (Object.keys(everywhere).length === 0 ? route : {...route, fault: {...everywhere, ...route.fault}})), ...merged]
}

function faultOf(f: FaultSpec, where: string, ctx: ExportContext): Fault | undefined {
  if (f.kind !== 'delay' && f.kind !== 'abort') {
    ctx.losses.add(where, `Istio's fault injection has only delays and aborts, not ${describeFault(f)}`, 'none; a chaos tool (Chaos Mesh, Litmus) does it in a cluster')
    return undefined
  }
  const unsupported: string[] = []
  if (f.version !== undefined) unsupported.push(`version (${f.version}): the fault acts on every version`)
  if (f.jitterMs) unsupported.push(`jitter (±${f.jitterMs}ms): the delay is fixed`)
  if (f.first !== undefined) unsupported.push(`first (${f.first}): every matching request may be hit`)
  if (f.durationMs !== undefined) unsupported.push('duration: the fault stands until the object is changed')
  if (unsupported.length > 0) ctx.losses.add(where, `Istio's fault has no ${unsupported.join('; no ')}`, 'the fault without them')
  const percentage = {value: f.percent ?? 100}
  if (f.kind === 'delay') return {delay: {fixedDelay: istioDuration(f.delayMs ?? 0), percentage}}
  if (f.grpcStatus !== undefined) return {abort: {grpcStatus: GRPC_STATUS_NAMES[f.grpcStatus], percentage}}
  return {abort: {httpStatus: f.status ?? 503, percentage}}
}

// ---------------------------------------------------------------------------------
// DestinationRule

function destinationRule(s: ServiceConfig, ctx: ExportContext): DestinationRule {
  const where = `services.${s.name}.policy`
  const p = s.policy
  const trafficPolicy: TrafficPolicy = {loadBalancer: loadBalancerOf(p, where, ctx)}
  const cb = p.circuitBreaker
  if (cb) {
    trafficPolicy.connectionPool = {
      tcp: {maxConnections: cb.maxConnections},
      ...(s.protocol === 'tcp' ? {} : {http: {http1MaxPendingRequests: cb.maxPendingRequests, http2MaxRequests: cb.maxRequests, maxRetries: cb.maxRetries}}),
    }
  }
  const od = p.outlierDetection
  if (od) {
    const percent = Math.round(od.maxEjectionPercent)
    if (percent !== od.maxEjectionPercent) ctx.losses.add(`${where}.outlierDetection.maxEjectionPercent`, 'Istio takes a whole percent', `${percent}`)
    trafficPolicy.outlierDetection = {
      consecutive5xxErrors: od.consecutive5xxErrors,
      consecutiveGatewayErrors: od.consecutiveGatewayErrors,
      interval: istioDuration(od.intervalMs),
      baseEjectionTime: istioDuration(od.baseEjectionTimeMs),
      maxEjectionPercent: percent,
    }
  }
  if (p.tls) {
    const t = p.tls
    trafficPolicy.tls = {mode: t.mode, ...(t.sni ? {sni: t.sni} : {}), ...(t.subjectAltNames ? {subjectAltNames: t.subjectAltNames} : {})}
    if (t.caCertificates || t.clientCertificate || t.privateKey) {
      const secret = `${s.name}-upstream-tls`
      trafficPolicy.tls.credentialName = secret
      ctx.losses.add(`${where}.tls`, 'the certificate files are on this machine; a sidecar reads them from a Secret', `credentialName ${secret}: create it (kubectl create secret generic ${secret} -n ${ctx.namespace} --from-file=tls.crt=... --from-file=tls.key=... --from-file=ca.crt=...)`)
    }
  }
  if (p.retries) {
    ctx.losses.add(
      `${where}.retries.budget`,
      `Istio has no retry budget (Linkerd's: retries at most ${Math.round(p.retries.budget.ratio * 100)}% of requests + ${p.retries.budget.minPerSecond}/s); Envoy's retry_budget is not exposed by DestinationRule`,
      cb ? `connectionPool.http.maxRetries (${cb.maxRetries}): a cap on retries in flight, not a ratio` : 'none; a circuitBreaker: maxRetries in mesh.yaml becomes connectionPool.http.maxRetries, a cap on retries in flight',
    )
  }
  return new DestinationRule({
    metadata: objectMeta(s, ctx),
    spec: {
      host: serviceHost(s.name, ctx.namespace),
      trafficPolicy,
      subsets: s.versions.map((v) => ({name: v.name, labels: {version: v.name}})),
    },
  })
}

function loadBalancerOf(p: PolicyConfig, where: string, ctx: ExportContext): NonNullable<TrafficPolicy['loadBalancer']> {
  const lb = p.loadBalancer
  switch (lb.kind) {
    case 'round-robin':
      return {simple: 'ROUND_ROBIN'}
    case 'random':
      return {simple: 'RANDOM'}
    case 'least-request':
      // Envoy's least request picks the better of two random hosts, as meshsim's P2C.
      return {simple: 'LEAST_REQUEST'}
    case 'ewma':
      ctx.losses.add(`${where}.loadBalancer`, "Envoy has no peak-EWMA balancer (Linkerd's, which weighs each endpoint's latency)", 'LEAST_REQUEST: power of two choices on requests in flight')
      return {simple: 'LEAST_REQUEST'}
    case 'ring-hash': {
      const on = lb.hashOn!
      return {consistentHash: 'header' in on ? {httpHeaderName: on.header} : {httpCookie: {name: on.cookie}}}
    }
  }
}

