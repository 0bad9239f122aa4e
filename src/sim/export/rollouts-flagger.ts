// `--rollouts flagger`: a canary or blue-green `deploy:` as a Flagger Canary over the stable
// version's Deployment. Flagger makes the primary and canary Deployments and Services and
// writes the service's routing itself (Istio's VirtualService and DestinationRules, or a
// Gateway API HTTPRoute for Linkerd), so ours for the service are left out and what they
// carried goes into the Canary's service block, or is reported.
//
//   steps [10, 50, 100], interval 30s ─▶ analysis {interval: 30s, stepWeights: [10, 50]} (then promoted)
//   failureThreshold                   ─▶ analysis.threshold
//   maxErrorRate, maxP99               ─▶ request-success-rate min, request-duration max (Istio's built-ins),
//                                         or MetricTemplates on Linkerd's metrics
//   check, smoke                       ─▶ pre-rollout webhooks run by flagger-loadtester
//   blue-green; --mesh none            ─▶ analysis.iterations (Flagger's Blue/Green)
import type {ServiceConfig} from '../config/types.js'
import type {CanaryOptions} from '../deploy/deploy-types.js'
import {type FlaggerCanarySpec, FlaggerCanary, FlaggerMetricTemplate} from './rollouts-flagger-schema.js'
import {type ExportContext, istioDuration, type Manifest, meshLabels, serviceHost} from './manifest.js'
import {type Progressive, versionRoutingLost} from './rollouts.js'
import {destinationRuleOf, rerouteIstio, virtualServiceOf} from './rollouts-istio.js'
import {linkerdQueries, MIN_WINDOW_MS, PROMETHEUS} from './rollouts-metrics.js'
import {servicePort, wholeSeconds} from './workloads.js'

const FLAGGER = 'Flagger'
/** Flagger's Blue/Green has no interval of meshsim's to take: one iteration, this long. */
const BLUE_GREEN_INTERVAL = '30s'

const PROVIDERS = {istio: 'istio', linkerd: 'gatewayapi:v1', none: 'kubernetes'} as const

export function flaggerObjects(ctx: ExportContext, manifests: Manifest[], progressive: readonly Progressive[]): Manifest[] {
  let out = manifests
  for (const p of progressive) {
    const s = p.service
    const others = new Set(s.versions.filter((v) => v !== p.stable).map((v) => `${s.name}-${v.name}`))
    out = out.filter((m) => !(m.file === s.name && m.object.kind === 'Deployment' && others.has(m.object.metadata?.name ?? '')))
    const service: FlaggerCanarySpec['service'] = {name: s.name, port: servicePort(s), targetPort: s.protocol ?? 'http', portName: s.protocol ?? 'http', appProtocol: s.protocol ?? 'http'}
    if (ctx.target === 'istio') out = takeIstioRouting(out, p, service, ctx)
    else if (ctx.target === 'linkerd') out = takeLinkerdRouting(out, p, service, ctx)
    const webhooks = hooks(p, ctx)
    const analysis: FlaggerCanarySpec['analysis'] = p.plan.canary ? canaryAnalysis(p, p.plan.canary, ctx, out) : {interval: BLUE_GREEN_INTERVAL, threshold: 1, iterations: 1}
    if (webhooks.length > 0) analysis.webhooks = webhooks
    if (p.plan.blueGreen) {
      ctx.losses.add(`${p.where}.keep`, "Flagger scales the canary to zero once it has copied it to the primary; there is no old version kept to switch back to", 'none; a rollback is another deploy')
    }
    const canary = new FlaggerCanary(
      {name: s.name, namespace: ctx.namespace, labels: {app: s.name, ...meshLabels(ctx)}},
      {
        provider: PROVIDERS[ctx.target],
        targetRef: {apiVersion: 'apps/v1', kind: 'Deployment', name: `${s.name}-${p.stable.name}`},
        progressDeadlineSeconds: wholeSeconds(p.plan.progressDeadlineMs, `${p.where}.progressDeadline`, ctx),
        service,
        analysis,
      },
    )
    out.push({file: s.name, object: canary})
  }
  return out
}

function canaryAnalysis(p: Progressive, c: CanaryOptions, ctx: ExportContext, out: Manifest[]): FlaggerCanarySpec['analysis'] {
  const weights = c.steps.filter((w) => w < 100)
  const analysis: FlaggerCanarySpec['analysis'] = {interval: istioDuration(c.intervalMs), threshold: c.failureThreshold}
  if (ctx.target === 'none') {
    ctx.losses.add(`${p.where}.steps`, "without a mesh Flagger can only switch all traffic at once (its Blue/Green, on Kubernetes' own Services)", `analysis.iterations: ${Math.max(1, weights.length)} (an interval for each step), then one switch`)
    analysis.iterations = Math.max(1, weights.length)
    ctx.losses.add(`${p.where}.maxErrorRate`, "without a mesh Flagger's built-in metrics have no proxy measuring each request", "none; a MetricTemplate on the service's own metrics, if it exports them")
    if (c.maxP99Ms !== undefined) ctx.losses.add(`${p.where}.maxP99`, "without a mesh Flagger's built-in metrics have no proxy measuring each request", "none; a MetricTemplate on the service's own metrics, if it exports them")
  } else {
    if (weights.length > 0) analysis.stepWeights = weights
    else analysis.iterations = 1
    if (c.intervalMs < MIN_WINDOW_MS) {
      ctx.losses.add(`${p.where}.interval`, `meshsim judges each ${istioDuration(c.intervalMs)} on its own; a Prometheus rate needs two scrapes (15 s apart) in its window`, `an analysis every ${istioDuration(c.intervalMs)}, each metric over the last ${istioDuration(MIN_WINDOW_MS)}`)
    }
    analysis.metrics = ctx.target === 'istio' ? istioMetrics(c) : linkerdMetrics(p, c, ctx, out)
  }
  const modes = {match: "Flagger's A/B testing (header match, iterations)", mirror: "Flagger's Blue/Green mirroring (iterations)"}
  for (const key of ['match', 'mirror'] as const) {
    if (!c[key]) continue
    ctx.losses.add(`${p.where}.${key}`, `meshsim ${key === 'match' ? 'routes the matching requests' : 'mirrors every request'} to the canary for one interval before the weighted steps; ${modes[key]} is a deploy of its own, without weights`, 'the weighted steps alone')
  }
  if (c.compareToPrimary) ctx.losses.add(`${p.where}.compareToPrimary`, "Flagger's metrics are judged against fixed thresholds", 'the fixed thresholds (maxErrorRate, maxP99)')
  ctx.losses.add(`${p.where}.minRequests`, `meshsim calls an interval with fewer than ${c.minRequests} canary requests inconclusive; Flagger judges whatever its query returns (no requests at all fails the check)`, 'none; a request-count MetricTemplate of your own')
  return analysis
}

/** Istio's built-in checks: the canary's success rate (a percent) and p99 (ms). */
function istioMetrics(c: CanaryOptions): NonNullable<FlaggerCanarySpec['analysis']['metrics']> {
  const interval = istioDuration(Math.max(c.intervalMs, MIN_WINDOW_MS))
  return [
    {name: 'request-success-rate', interval, thresholdRange: {min: Number(((1 - c.maxErrorRate) * 100).toFixed(4))}},
    ...(c.maxP99Ms === undefined ? [] : [{name: 'request-duration', interval, thresholdRange: {max: c.maxP99Ms}}]),
  ]
}

/** With Gateway API routing Flagger has no built-in Linkerd checks: MetricTemplates on Linkerd's proxy metrics, of the canary's pods. */
function linkerdMetrics(p: Progressive, c: CanaryOptions, ctx: ExportContext, out: Manifest[]): NonNullable<FlaggerCanarySpec['analysis']['metrics']> {
  const s = p.service
  const interval = istioDuration(Math.max(c.intervalMs, MIN_WINDOW_MS))
  // Flagger fills in {{ namespace }}, {{ target }} (the canary Deployment) and {{ interval }}; the canary's pods are TARGET-<hash>-<id>.
  const q = linkerdQueries('{{ target }}-[0-9a-zA-Z]+-[0-9a-zA-Z]+', '{{ namespace }}', '{{ interval }}')
  const template = (name: string, query: string) => {
    out.push({file: s.name, object: new FlaggerMetricTemplate({name: `${s.name}-${name}`, namespace: ctx.namespace, labels: {app: s.name, ...meshLabels(ctx)}}, {provider: {type: 'prometheus', address: PROMETHEUS.linkerd}, query})})
    return {name: `${s.name}-${name}`, namespace: ctx.namespace}
  }
  return [
    {name: 'success-rate', interval, templateRef: template('success-rate', `100 * (${q.successRatio})`), thresholdRange: {min: Number(((1 - c.maxErrorRate) * 100).toFixed(4))}},
    ...(c.maxP99Ms === undefined ? [] : [{name: 'latency', interval, templateRef: template('latency', q.p99), thresholdRange: {max: c.maxP99Ms}}]),
  ]
}

/** `check` and `smoke` as pre-rollout webhooks run by flagger-loadtester (in the namespace), each reported for what differs. */
function hooks(p: Progressive, ctx: ExportContext): NonNullable<FlaggerCanarySpec['analysis']['webhooks']> {
  const s = p.service
  const url = `http://flagger-loadtester.${ctx.namespace}/`
  const canaryUrl = `http://${s.name}-canary.${ctx.namespace}:${servicePort(s)}`
  const out: NonNullable<FlaggerCanarySpec['analysis']['webhooks']> = []
  const smoke = p.plan.blueGreen?.smoke
  if (smoke) {
    out.push({name: 'smoke', type: 'pre-rollout', url, metadata: {type: 'bash', cmd: `curl -sf -X ${smoke.method} ${canaryUrl}${smoke.path}`}})
    ctx.losses.add(`${p.where}.smoke`, 'meshsim sends the smoke request to each green instance alone; the webhook sends one, through the canary Service', `a pre-rollout webhook: flagger-loadtester runs curl against ${canaryUrl}${smoke.path}`)
  }
  if (p.plan.check !== undefined) {
    out.push({name: 'check', type: 'pre-rollout', url, timeout: istioDuration(p.plan.progressDeadlineMs), metadata: {type: 'bash', cmd: `CANARY_URL=${canaryUrl} CANARY_URLS=${canaryUrl} ${p.plan.check}`}})
    ctx.losses.add(
      `${p.where}.check`,
      "the acceptance test runs on this machine; Flagger's pre-rollout webhook runs it in flagger-loadtester's container, with $CANARY_URL the canary Service rather than one instance",
      `a pre-rollout webhook to ${url} (install flagger-loadtester there; the test's tools must be in its image)`,
    )
  }
  return out
}

/** Flagger writes the service's VirtualService and DestinationRules: ours go, their timeout, retries and traffic policy into the Canary. */
function takeIstioRouting(manifests: Manifest[], p: Progressive, service: FlaggerCanarySpec['service'], ctx: ExportContext): Manifest[] {
  const s = p.service
  if (s.protocol === 'tcp') {
    ctx.losses.add(p.where, "Flagger's Istio canary shifts HTTP routes; this service speaks TCP", 'none; the Canary as written, whose VirtualService carries no TCP route')
  }
  const vs = virtualServiceOf(manifests, s)
  const dr = destinationRuleOf(manifests, s)
  const main = vs?.spec?.http?.find((r) => r.name === 'default')
  if (main?.timeout) service.timeout = main.timeout
  if (main?.retries) service.retries = main.retries as NonNullable<FlaggerCanarySpec['service']['retries']>
  if (dr?.spec?.trafficPolicy) service.trafficPolicy = dr.spec.trafficPolicy as Record<string, unknown>
  versionRoutingLost(p, ctx, FLAGGER)
  lostWithOwnRoutes(s, ctx)
  if (s.policy.retries) {
    ctx.losses.add(`services.${s.name}.policy.retries`, "Flagger's VirtualService retries every method alike; meshsim replays a POST or PATCH only after a connect failure", 'service.retries in the Canary, for every method')
  }
  // The ingress's routes to the service go to its host: Flagger's VirtualService splits the mesh's requests, not the gateway's.
  const rerouted = rerouteIstio(manifests, s, ctx, (port) => [{destination: {host: serviceHost(s.name, ctx.namespace), ...(port === undefined ? {} : {port: {number: port}})}}])
  if (rerouted.some((r) => r.name !== s.name)) {
    ctx.losses.add(
      `${p.where}.steps`,
      `Flagger's VirtualService for ${s.name} binds the mesh's sidecars; the ingress's own routes to ${s.name} reach the Service, which Flagger points at the primary`,
      "the steps for callers in the mesh; the ingress's requests stay on the primary until the promotion",
    )
  }
  return manifests.filter((m) => m.object !== vs && m.object !== dr)
}

/** Flagger writes the service's HTTPRoute (Gateway API, whose parent is the Service, as Linkerd reads it): ours go. */
function takeLinkerdRouting(manifests: Manifest[], p: Progressive, service: FlaggerCanarySpec['service'], ctx: ExportContext): Manifest[] {
  const s = p.service
  service.gatewayRefs = [{name: s.name, namespace: ctx.namespace, group: 'core', kind: 'Service', port: servicePort(s)}]
  versionRoutingLost(p, ctx, FLAGGER)
  const reason = "Flagger writes the service's HTTPRoute itself; ours (its timeouts and retry annotations) would fight it"
  if (s.policy.timeoutMs !== undefined) ctx.losses.add(`services.${s.name}.policy.timeout`, reason, "none; set it on Flagger's HTTPRoute by hand")
  if (s.policy.retries) ctx.losses.add(`services.${s.name}.policy.retries`, reason, "none; annotate Flagger's HTTPRoute by hand")
  const versionServices = new Set(s.versions.map((v) => `${s.name}-${v.name}`))
  return manifests.filter(
    (m) =>
      !(m.file === s.name && m.object.kind === 'HTTPRoute') &&
      !(m.file === s.name && m.object.kind === 'Service' && m.object.apiVersion === 'v1' && versionServices.has(m.object.metadata?.name ?? '')),
  )
}

/** Standing faults written into the service's own VirtualService, which Flagger replaces. */
function lostWithOwnRoutes(s: ServiceConfig, ctx: ExportContext): void {
  ctx.config.faults.inject.forEach((f, i) => {
    if (f.service === s.name) ctx.losses.add(`faults.inject.${i}`, "Flagger writes the service's VirtualService, which carried the fault", "none; Flagger's Canary has no fault injection")
  })
}
