// `--rollouts argo`: a canary or blue-green `deploy:` as an Argo Rollout, in place of the
// stable version's Deployment (its pod template inline), and an AnalysisTemplate judging the
// service on its mesh's Prometheus metrics.
//
//   steps [10, 50, 100], interval 30s  ─▶ setWeight 10, pause 30s, setWeight 50, pause 30s (then promoted)
//   match {x-canary: "true"}            ─▶ setHeaderRoute, pause, setHeaderRoute off (a managed route; Istio)
//   mirror: true                        ─▶ setMirrorRoute 100%, pause, off (Istio)
//   maxErrorRate, maxP99, failureThreshold ─▶ AnalysisTemplate metrics, failureLimit = threshold - 1
//   --mesh istio: trafficRouting.istio over the service's VirtualServices and its DestinationRule's
//                 stable/canary subsets; linkerd and none: the canary's share of the pods
//   blue-green: blueGreen {activeService, previewService NAME-preview, scaleDownDelaySeconds from keep}
import {AnalysisTemplate} from '@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1/AnalysisTemplate'
import {Rollout} from '@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1/Rollout'
import type {ICanaryStep} from '@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1/CanaryStep'
import type {ICanaryStrategy} from '@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1/CanaryStrategy'
import type {IMetric} from '@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1/Metric'
import type {HTTPRoute} from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute'
import {Service} from 'kubernetes-models/v1/Service'
import type {CanaryOptions} from '../deploy/deploy-types.js'
import {type ExportContext, istioDuration, type Manifest, meshLabels, serviceHost} from './manifest.js'
import {deploymentOf, type Progressive, versionRoutingLost} from './rollouts.js'
import {destinationRuleOf, rerouteIstio, type ReroutedService} from './rollouts-istio.js'
import {wholeSeconds} from './workloads.js'
import {istioQueries, linkerdQueries, MIN_WINDOW_MS, PROMETHEUS} from './rollouts-metrics.js'

const HEADER_ROUTE = 'canary-header'
const MIRROR_ROUTE = 'canary-mirror'
const ARGO = 'Argo Rollouts'

/** The manifests with each progressive service's Deployments replaced by its Rollout (and what goes with it). */
export function argoObjects(ctx: ExportContext, manifests: Manifest[], progressive: readonly Progressive[]): Manifest[] {
  let out = manifests
  for (const p of progressive) {
    const s = p.service
    const d = deploymentOf(out, s, p.stable)
    if (!d?.spec) continue
    const versionNames = new Set(s.versions.map((v) => `${s.name}-${v.name}`))
    // The Rollout is every version's workload now; Linkerd's Services per version select pods it no longer labels so.
    out = out.filter((m) => !((m.object.kind === 'Deployment' || (m.object.kind === 'Service' && m.object.apiVersion === 'v1')) && m.file === s.name && versionNames.has(m.object.metadata?.name ?? '')))
    if (ctx.target !== 'none') versionRoutingLost(p, ctx, ARGO)
    if (ctx.target === 'linkerd') routeLinkerdToService(out, p)
    const metadata = {name: s.name, namespace: ctx.namespace, labels: {app: s.name, ...meshLabels(ctx)}}
    const base = {
      replicas: d.spec.replicas,
      selector: {matchLabels: {app: s.name}},
      template: d.spec.template,
      progressDeadlineSeconds: wholeSeconds(p.plan.progressDeadlineMs, `${p.where}.progressDeadline`, ctx),
    }
    if (p.plan.check !== undefined) {
      ctx.losses.add(
        `${p.where}.check`,
        "the acceptance test is a command run on this machine with $CANARY_URL; Argo runs a check as a Job in the cluster, in an image that has it",
        'none; an AnalysisTemplate metric with provider.job running it (in an image with your tests), as an analysis step before the first setWeight (or prePromotionAnalysis)',
      )
    }
    if (p.plan.blueGreen) {
      const preview = previewService(out, p, ctx)
      if (preview) out.push(preview)
      if (ctx.target === 'istio') {
        // Argo switches the active Service's selector: routes go to the host, not to a version's subset.
        rerouteIstio(out, s, ctx, (port) => [{destination: {host: serviceHost(s.name, ctx.namespace), ...(port === undefined ? {} : {port: {number: port}})}}])
        const dr = destinationRuleOf(out, s)
        if (dr?.spec) delete dr.spec.subsets
      }
      if (p.plan.blueGreen.smoke) {
        ctx.losses.add(
          `${p.where}.smoke`,
          'meshsim sends the smoke request to each green instance alone; Argo judges the preview Service with an analysis',
          `none; a prePromotionAnalysis whose web metric asks http://${s.name}-preview.${ctx.namespace}.svc.cluster.local${p.plan.blueGreen.smoke.path}`,
        )
      }
      const rollout = new Rollout({
        metadata,
        spec: {
          ...base,
          strategy: {blueGreen: {activeService: s.name, previewService: `${s.name}-preview`, autoPromotionEnabled: true, scaleDownDelaySeconds: wholeSeconds(p.plan.blueGreen.keepMs, `${p.where}.keep`, ctx)}},
        },
      })
      out.push({file: s.name, object: rollout})
      continue
    }
    const c = p.plan.canary!
    const routing = ctx.target === 'istio' && s.protocol !== 'tcp' ? istioRouting(out, p, ctx) : undefined
    if (!routing) {
      const why = ctx.target === 'linkerd'
        ? "Argo splits Linkerd's traffic by weight only through its Gateway API plugin, installed apart, whose settings no published schema checks"
        : ctx.target === 'istio'
          ? 'a TCP service has no HTTP route for Argo to weigh'
          : 'without a mesh no route carries a weight'
      ctx.losses.add(`${p.where}.steps`, `${why}: the canary's share of the traffic is its share of the pods`, `setWeight steps by pod count (with ${d.spec.replicas ?? 1} replica${d.spec.replicas === 1 ? '' : 's'}, each step rounds to whole pods)`)
      if (c.match) ctx.losses.add(`${p.where}.match`, 'a header route needs Argo\'s traffic routing (Istio)', 'none; the weighted steps alone')
      if (c.mirror) ctx.losses.add(`${p.where}.mirror`, 'a mirror route needs Argo\'s traffic routing (Istio)', 'none; the weighted steps alone')
    }
    const template = analysisTemplate(p, c, ctx)
    if (template) out.push({file: s.name, object: template})
    const strategy: ICanaryStrategy = {
      steps: canarySteps(c, routing !== undefined),
      ...(routing ? {trafficRouting: routing} : {}),
      ...(template ? {analysis: {templates: [{templateName: s.name}]}} : {}),
    }
    out.push({file: s.name, object: new Rollout({metadata, spec: {...base, strategy: {canary: strategy}}})})
  }
  return out
}

function canarySteps(c: CanaryOptions, routed: boolean): ICanaryStep[] {
  const pause = {pause: {duration: istioDuration(c.intervalMs)}}
  const steps: ICanaryStep[] = []
  if (routed && c.match) {
    steps.push({setHeaderRoute: {name: HEADER_ROUTE, match: [{headerName: c.match.name, headerValue: {exact: c.match.value}}]}}, pause, {setHeaderRoute: {name: HEADER_ROUTE}})
  }
  if (routed && c.mirror) {
    steps.push({setMirrorRoute: {name: MIRROR_ROUTE, percentage: 100, match: [{path: {prefix: '/'}}]}}, pause, {setMirrorRoute: {name: MIRROR_ROUTE}})
  }
  // The last step, 100, is the promotion Argo makes after the steps.
  for (const weight of c.steps.filter((w) => w < 100)) steps.push({setWeight: weight}, pause)
  return steps
}

/** Istio subset-level routing: every route to the service sends to `stable` (100) and `canary` (0), which Argo moves. */
function istioRouting(manifests: Manifest[], p: Progressive, ctx: ExportContext): ICanaryStrategy['trafficRouting'] | undefined {
  const s = p.service
  const dr = destinationRuleOf(manifests, s)
  if (!dr?.spec) return undefined
  const host = serviceHost(s.name, ctx.namespace)
  const rerouted: ReroutedService[] = rerouteIstio(manifests, s, ctx, (port) => {
    const at = port === undefined ? {} : {port: {number: port}}
    return [
      {destination: {host, subset: 'stable', ...at}, weight: 100},
      {destination: {host, subset: 'canary', ...at}, weight: 0},
    ]
  })
  if (rerouted.length === 0) return undefined
  // Argo adds its rollouts-pod-template-hash label to each subset as it deploys.
  dr.spec.subsets = [
    {name: 'stable', labels: {app: s.name}},
    {name: 'canary', labels: {app: s.name}},
  ]
  const c = p.plan.canary!
  const managed = [...(c.match ? [{name: HEADER_ROUTE}] : []), ...(c.mirror ? [{name: MIRROR_ROUTE}] : [])]
  return {
    istio: {virtualServices: rerouted, destinationRule: {name: s.name, stableSubsetName: 'stable', canarySubsetName: 'canary'}},
    ...(managed.length > 0 ? {managedRoutes: managed} : {}),
  }
}

/** Linkerd: the service's HTTPRoutes send to its Service, whose pods are the Rollout's, stable and canary. */
function routeLinkerdToService(manifests: readonly Manifest[], p: Progressive): void {
  const s = p.service
  for (const m of manifests) {
    if (m.object.kind !== 'HTTPRoute') continue
    const route = m.object as HTTPRoute
    if (route.spec?.parentRefs?.[0]?.name !== s.name) continue
    for (const rule of route.spec.rules ?? []) {
      const port = rule.backendRefs?.[0]?.port
      if (rule.backendRefs) rule.backendRefs = [{name: s.name, ...(port === undefined ? {} : {port})}]
    }
  }
}

/** Blue-green's preview Service: the service's own, under another name (Argo points both at their pods). */
function previewService(manifests: readonly Manifest[], p: Progressive, ctx: ExportContext): Manifest | undefined {
  const s = p.service
  const own = manifests.find((m) => m.object.kind === 'Service' && m.object.apiVersion === 'v1' && m.object.metadata?.name === s.name)?.object as Service | undefined
  if (!own?.spec) return undefined
  return {
    file: s.name,
    object: new Service({metadata: {name: `${s.name}-preview`, namespace: ctx.namespace, labels: {app: s.name, ...meshLabels(ctx)}}, spec: {selector: own.spec.selector, ports: own.spec.ports}}),
  }
}

/** The AnalysisTemplate of the canary's thresholds, on the mesh's metrics; none without a mesh (reported). */
function analysisTemplate(p: Progressive, c: CanaryOptions, ctx: ExportContext): AnalysisTemplate | undefined {
  const s = p.service
  if (ctx.target === 'none') {
    ctx.losses.add(`${p.where}.maxErrorRate`, 'without a mesh no proxy measures each request: there are no metrics to judge the canary by', "none; an AnalysisTemplate on the service's own metrics, if it exports them")
    if (c.maxP99Ms !== undefined) ctx.losses.add(`${p.where}.maxP99`, 'without a mesh no proxy measures each request: there are no metrics to judge the canary by', "none; an AnalysisTemplate on the service's own metrics, if it exports them")
    return undefined
  }
  const windowMs = Math.max(c.intervalMs, MIN_WINDOW_MS)
  const window = istioDuration(windowMs)
  if (windowMs !== c.intervalMs) {
    ctx.losses.add(`${p.where}.interval`, `meshsim judges each ${istioDuration(c.intervalMs)} on its own; a Prometheus rate needs two scrapes (15 s apart) in its window`, `measurements every ${istioDuration(c.intervalMs)} over the last ${window}`)
  }
  const q = ctx.target === 'istio' ? istioQueries(s.name, ctx.namespace, window) : linkerdQueries(`${s.name}-[a-z0-9]+-[a-z0-9]+`, ctx.namespace, window)
  if (ctx.target === 'istio' || ctx.target === 'linkerd') {
    ctx.losses.add(
      `${p.where}.maxErrorRate`,
      "meshsim judges the canary's own requests; a Rollout's canary and stable pods are one workload to the mesh's metrics (they differ only by pod-template hash, which the metrics do not carry)",
      "the service's success rate and p99 over stable and canary together, as Argo's own examples judge it",
    )
  }
  const limit = c.failureThreshold - 1
  if (c.failureThreshold > 1) {
    ctx.losses.add(
      `${p.where}.failureThreshold`,
      `meshsim rolls back after ${c.failureThreshold} failed checks in a row (a pass starts the count again); Argo's failureLimit counts a metric's failed measurements over the whole analysis`,
      `failureLimit: ${limit} on each metric (stricter: failures apart add up)`,
    )
  }
  const metric = (name: string, query: string, ok: string): IMetric => ({
    name,
    interval: istioDuration(c.intervalMs),
    // A success condition alone: a query with no requests to measure (NaN) fails it, as meshsim counts an inconclusive interval a failed check.
    successCondition: ok,
    failureLimit: limit,
    provider: {prometheus: {address: PROMETHEUS[ctx.target as 'istio' | 'linkerd'], query}},
  })
  const minSuccess = Number((1 - c.maxErrorRate).toFixed(6))
  const metrics: IMetric[] = [metric('success-rate', q.successRatio, `result[0] >= ${minSuccess}`)]
  if (c.maxP99Ms !== undefined) metrics.push(metric('p99', q.p99, `result[0] <= ${c.maxP99Ms}`))
  if (c.compareToPrimary) ctx.losses.add(`${p.where}.compareToPrimary`, 'Argo judges each metric against a fixed threshold', 'the fixed thresholds (maxErrorRate, maxP99)')
  ctx.losses.add(`${p.where}.minRequests`, `meshsim calls an interval with fewer than ${c.minRequests} canary requests inconclusive; Argo judges whatever the query returns (no requests at all fails the check)`, 'none; a request-count metric of your own')
  return new AnalysisTemplate({metadata: {name: s.name, namespace: ctx.namespace, labels: {app: s.name, ...meshLabels(ctx)}}, spec: {metrics}})
}
