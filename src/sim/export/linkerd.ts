// A mesh.yaml's policies as Linkerd (2.16+) takes them: Gateway API HTTPRoutes whose parent is
// the service's Service (version routes, weights, timeouts), retries and timeouts as
// `retry.linkerd.io/*` annotations, outlier detection as the Service's failure-accrual
// annotations. Linkerd balances by peak-EWMA always, as meshsim's `ewma`; routes go to a
// Service per version (`NAME-VERSION`), Gateway API's backends being Services, not subsets.
import {HTTPRoute, type IHTTPRoute} from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute'
import type {Namespace} from 'kubernetes-models/v1/Namespace'
import {Service} from 'kubernetes-models/v1/Service'
import {GRPC_RETRY_NAMES, isIdempotent} from '../config/retry-semantics.js'
import type {RetryOn, ServiceConfig} from '../config/types.js'
import {isKnative} from './knative.js'
import {type Inbound, linkerdNamespacePolicy, linkerdPolicyObjects} from './linkerd-policy.js'
import {type ExportContext, istioDuration, type Manifest, meshLabels} from './manifest.js'
import {servicePort} from './workloads.js'

type Rule = NonNullable<NonNullable<IHTTPRoute['spec']>['rules']>[number]
type Match = NonNullable<Rule['matches']>[number]
type Method = NonNullable<Match['method']>

/** What Linkerd's `retry.linkerd.io/http` takes for each of meshsim's HTTP `on` names. */
const HTTP_RETRY_ON: Partial<Record<string, string>> = {'5xx': '5xx', 'gateway-error': '502-504'}
const NOT_IDEMPOTENT = (['POST', 'PATCH', 'CONNECT'] as const).filter((m) => !isIdempotent(m))

export function linkerdObjects(ctx: ExportContext, all: readonly Manifest[]): Manifest[] {
  const out: Manifest[] = []
  // Each service's inbound default (Server), for the namespace's: pods without a Server of ours count as open.
  const inbound: Inbound[] = []
  for (const s of ctx.config.services) {
    const w = s.versions[0].workload
    if ((w.kind === 'address' && w.image === undefined) || isKnative(s) || s.protocol === 'tcp') {
      if (w.kind !== 'address' || w.image !== undefined) inbound.push(undefined)
      policyLost(s, ctx)
      continue
    }
    const service = all.find((m) => m.object.kind === 'Service' && m.object.apiVersion === 'v1' && m.object.metadata?.name === s.name)?.object as Service | undefined
    if (service) failureAccrual(s, service, ctx)
    const policy = linkerdPolicyObjects(s, ctx)
    inbound.push(policy.inbound)
    out.push(...versionServices(s, ctx), ...routes(s, ctx), ...policy.objects)
    losses(s, ctx)
  }
  linkerdNamespacePolicy(ctx, all.find((m) => m.object.kind === 'Namespace')?.object as Namespace | undefined, inbound)
  return out
}

/** A Service per version for the routes to name (only where something routes by version). */
function versionServices(s: ServiceConfig, ctx: ExportContext): Manifest[] {
  if (!byVersion(s)) return []
  return s.versions.map((v) => ({
    file: s.name,
    object: new Service({
      metadata: {name: `${s.name}-${v.name}`, namespace: ctx.namespace, labels: {app: s.name, version: v.name, ...meshLabels(ctx)}},
      spec: {selector: {app: s.name, version: v.name}, ports: [{name: s.protocol ?? 'http', port: servicePort(s), targetPort: s.protocol ?? 'http', appProtocol: s.protocol ?? 'http'}]},
    }),
  }))
}

const byVersion = (s: ServiceConfig) => s.versions.length > 1 && (s.policy.routes.length > 0 || s.policy.weights !== undefined)

function routes(s: ServiceConfig, ctx: ExportContext): Manifest[] {
  const p = s.policy
  if (!byVersion(s) && p.timeoutMs === undefined && !p.retries) return []
  const port = servicePort(s)
  const backend = (version: string, weight?: number) => ({name: byVersion(s) ? `${s.name}-${version}` : s.name, port, ...(weight === undefined ? {} : {weight})})
  const timeouts = p.timeoutMs === undefined ? {} : {timeouts: {request: istioDuration(p.timeoutMs)}}
  const weights = p.weights
  // Gateway API weights are integers: meshsim's percents as they are, or ×100 where one has a fraction.
  const scale = weights && Object.values(weights).every(Number.isInteger) ? 1 : 100
  const fallback: Rule = {
    backendRefs: weights ? s.versions.filter((v) => weights[v.name] !== undefined).map((v) => backend(v.name, Math.round(weights[v.name] * scale))) : [backend(s.versions[0].name)],
    ...timeouts,
  }
  const rules: Rule[] = [
    ...p.routes.map((r): Rule => ({matches: [matchOf(r.match)], backendRefs: [backend(r.version)], ...timeouts})),
    fallback,
  ]
  const route = (name: string, rs: Rule[], annotations?: Record<string, string>): Manifest => ({
    file: s.name,
    object: new HTTPRoute({
      metadata: {name, namespace: ctx.namespace, labels: {app: s.name, ...meshLabels(ctx)}, ...(annotations ? {annotations} : {})},
      spec: {parentRefs: [{group: 'core', kind: 'Service', name: s.name, port}], rules: rs},
    }),
  })
  if (!p.retries) return [route(s.name, rules)]
  const annotations = retryAnnotations(s, p.retries.on, ctx)
  // meshsim never replays a POST or PATCH (but after a connect failure, which Linkerd retries
  // by itself): their requests take a route of their own, more specific by its method, without retries.
  const unsafe = rules.map(({matches, ...r}): Rule => ({matches: (matches ?? [{}]).flatMap((m) => NOT_IDEMPOTENT.map((method) => ({...m, method: method as Method}))), ...r}))
  const retrying = s.protocol === 'grpc' ? [route(s.name, rules, annotations)] : [route(`${s.name}-not-idempotent`, unsafe), route(s.name, rules, annotations)]
  return retrying
}

function matchOf(m: ServiceConfig['policy']['routes'][number]['match']): Match {
  const match: Match = {}
  if (m.pathPrefix !== undefined) match.path = {type: 'PathPrefix', value: m.pathPrefix}
  if (m.headers) match.headers = Object.entries(m.headers).map(([name, value]) => ({type: 'Exact' as const, name, value}))
  return match
}

function retryAnnotations(s: ServiceConfig, on: readonly RetryOn[], ctx: ExportContext): Record<string, string> {
  const r = s.policy.retries!
  const where = `services.${s.name}.policy.retries`
  const http = on.flatMap((o) => (typeof o === 'number' ? [String(o)] : HTTP_RETRY_ON[o] ? [HTTP_RETRY_ON[o]!] : []))
  const grpc = on.filter((o): o is (typeof GRPC_RETRY_NAMES)[number] => (GRPC_RETRY_NAMES as readonly RetryOn[]).includes(o))
  const dropped = on.filter((o) => o === 'reset' || o === 'retriable-status-codes')
  if (dropped.length > 0) ctx.losses.add(`${where}.on`, `Linkerd retries on response statuses and gRPC codes; ${dropped.join(' and ')} ${dropped.length > 1 ? 'are' : 'is'} not one (it retries a failed connection by itself)`, `retry.linkerd.io/http: ${http.join(',') || 'none'}`)
  const a: Record<string, string> = {'retry.linkerd.io/limit': String(r.attempts)}
  if (http.length > 0) a['retry.linkerd.io/http'] = http.join(',')
  if (grpc.length > 0) a['retry.linkerd.io/grpc'] = grpc.join(',')
  if (r.perTryTimeoutMs !== undefined) a['retry.linkerd.io/timeout'] = istioDuration(r.perTryTimeoutMs)
  return a
}

/** Envoy-style consecutive-failure ejection as Linkerd's failure accrual on the Service. */
function failureAccrual(s: ServiceConfig, service: Service, ctx: ExportContext): void {
  const od = s.policy.outlierDetection
  if (!od) return
  const where = `services.${s.name}.policy.outlierDetection`
  service.metadata!.annotations = {
    'balancer.linkerd.io/failure-accrual': 'consecutive',
    'balancer.linkerd.io/failure-accrual-consecutive-max-failures': String(od.consecutive5xxErrors || od.consecutiveGatewayErrors),
    'balancer.linkerd.io/failure-accrual-consecutive-min-penalty': istioDuration(od.baseEjectionTimeMs),
  }
  ctx.losses.add(
    where,
    "Linkerd's failure accrual marks an endpoint failing after consecutive failures and probes it back with a backoff; it has no ejection interval, no cap on the share ejected, and counts every failure, not 5xx and gateway errors apart",
    `failure-accrual: consecutive, max-failures ${od.consecutive5xxErrors || od.consecutiveGatewayErrors}, min-penalty ${istioDuration(od.baseEjectionTimeMs)}`,
  )
}

function losses(s: ServiceConfig, ctx: ExportContext): void {
  const p = s.policy
  const where = `services.${s.name}.policy`
  // round-robin is meshsim's default, not a choice written in mesh.yaml; docs/export.md says Linkerd's is peak-EWMA.
  if (p.loadBalancer.kind !== 'ewma' && p.loadBalancer.kind !== 'round-robin') ctx.losses.add(`${where}.loadBalancer`, `Linkerd balances every service by peak-EWMA, not ${p.loadBalancer.kind}`, 'peak-EWMA')
  if (p.retries) {
    ctx.losses.add(`${where}.retries.budget`, "Linkerd's retry annotations have no budget (a ServiceProfile's retryBudget has, but Linkerd ignores the annotations beside one)", `retry.linkerd.io/limit ${p.retries.attempts} per request`)
    if (p.retries.backoff.baseMs !== 25 || p.retries.backoff.maxMs !== 250) ctx.losses.add(`${where}.retries.backoff`, "Linkerd's retry backoff is not configurable", "Linkerd's own")
  }
  if (p.weights && Object.values(p.weights).some((w) => Math.abs(w * 100 - Math.round(w * 100)) > 1e-9)) ctx.losses.add(`${where}.weights`, 'Gateway API weights are integers', 'the weights × 100, rounded')
  const none = (key: string, why: string) => ctx.losses.add(`${where}.${key}`, why, 'none')
  if (p.circuitBreaker) none('circuitBreaker', 'Linkerd has no connection or request limits per service')
  if (p.rateLimit) none('rateLimit', "Linkerd's rate limits (HTTPLocalRateLimitPolicy, 2.17+) are not written by mesh export")
  if (p.mirror) none('mirror', 'Linkerd does not mirror requests')
  if (p.requestAuthentication) none('requestAuthentication', 'Linkerd does not verify JWTs')
  if (p.tls) none('tls', 'Linkerd originates no TLS of a chosen mode: its mTLS is automatic between meshed pods')
  ctx.config.faults.inject.forEach((f, i) => {
    if (f.service === s.name) ctx.losses.add(`faults.inject.${i}`, 'Linkerd has no fault injection', 'none')
  })
}

function policyLost(s: ServiceConfig, ctx: ExportContext): void {
  const p = s.policy
  const why = isKnative(s) ? 'Knative routes to its Services itself' : s.protocol === 'tcp' ? 'Linkerd has no per-connection policy for a TCP service but its balancing' : 'the service is an address outside the cluster, with no pods of ours'
  for (const key of ['timeoutMs', 'retries', 'outlierDetection', 'circuitBreaker', 'rateLimit', 'mirror', 'weights', 'authorization', 'mtls'] as const) {
    if (p[key] !== undefined) ctx.losses.add(`services.${s.name}.policy.${key.replace(/Ms$/, '')}`, why, 'none')
  }
}
