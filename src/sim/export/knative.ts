// A `scaling:` service as a Knative Service: meshsim's autoscaler is Knative's KPA (the same
// knobs, the same defaults: scaling-schema.ts), so each knob is a revision annotation where
// Knative has one per revision, and a loss where only the cluster-wide config-autoscaler has it.
// Knative makes the Kubernetes Service of the same name itself, so callers' `<DEP>_URL`
// (http://NAME.NS.svc.cluster.local:80) reaches it unchanged.
import {Service as KnativeService} from '@kubernetes-models/knative/serving.knative.dev/v1/Service'
import type {ScalingConfig, ServiceConfig} from '../config/types.js'
import {type ExportContext, type Manifest, meshLabels} from './manifest.js'
import {container} from './workloads.js'

/** Knative's own defaults for what is set only in its config-autoscaler ConfigMap (knative.dev/docs, "Configuring autoscaling"). */
const CLUSTER_WIDE = {scaleToZeroGracePeriodMs: 30_000, maxScaleUpRate: 1000, maxScaleDownRate: 2} as const
/** meshsim's defaults for what Knative has no setting for at all. */
const MESHSIM_ONLY = {activatorTimeoutMs: 60_000, queue: 100} as const

/**
 * A Knative Service stands for one version: revisions of one Service are made one after the
 * other, so a manifest cannot declare two at once. A service of several versions (or a job)
 * stays Deployments, its scaling reported (workloads.ts).
 */
export function isKnative(s: ServiceConfig): boolean {
  return s.versions.length === 1 && s.versions[0].scaling !== undefined && s.restart === undefined && s.protocol !== 'tcp' && s.versions[0].workload.kind !== 'address'
}

/** `60000` → `60s`, as Knative's annotations take Go durations. */
const goDuration = (ms: number) => (ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`)

export function knativeObjects(ctx: ExportContext): Manifest[] {
  return ctx.config.services.filter(isKnative).map((s) => ({file: s.name, object: knativeService(s, ctx)}))
}

function knativeService(s: ServiceConfig, ctx: ExportContext): KnativeService {
  const v = s.versions[0]
  const scaling = v.scaling!
  const where = s.versions.length > 1 || v.name !== 'v1' ? `services.${s.name}.versions.${v.name}` : `services.${s.name}`
  scalingLosses(scaling, `${where}.scaling`, ctx)
  if (s.stopGracePeriodMs !== 10_000) {
    ctx.losses.add(`services.${s.name}.stopGracePeriod`, "a Knative revision's pods get their grace period from its timeoutSeconds; the pod spec's own is not allowed", "Knative's: timeoutSeconds (300s by default)")
  }
  return new KnativeService({
    metadata: {name: s.name, namespace: ctx.namespace, labels: {app: s.name, ...meshLabels(ctx)}},
    spec: {
      template: {
        metadata: {labels: {app: s.name, version: v.name}, annotations: annotations(scaling)},
        spec: {
          serviceAccountName: s.name,
          containerConcurrency: scaling.containerConcurrency,
          containers: [container(s, v, ctx, where, 'knative')],
        },
      },
    },
  })
}

function annotations(sc: ScalingConfig): Record<string, string> {
  const a = (key: string) => `autoscaling.knative.dev/${key}`
  return {
    [a('metric')]: sc.metric,
    [a('target')]: String(sc.target),
    [a('target-utilization-percentage')]: String(sc.targetUtilization),
    [a('min-scale')]: String(sc.minScale),
    [a('max-scale')]: String(sc.maxScale),
    [a('initial-scale')]: String(sc.initialScale),
    [a('window')]: goDuration(sc.windowMs),
    [a('panic-window-percentage')]: String(sc.panicWindowPercentage),
    [a('panic-threshold-percentage')]: String(sc.panicThresholdPercentage),
    [a('scale-down-delay')]: goDuration(sc.scaleDownDelayMs),
  }
}

function scalingLosses(sc: ScalingConfig, where: string, ctx: ExportContext): void {
  const clusterWide = 'set only cluster-wide, in the config-autoscaler ConfigMap of knative-serving'
  if (sc.scaleToZeroGracePeriodMs !== CLUSTER_WIDE.scaleToZeroGracePeriodMs) {
    ctx.losses.add(`${where}.scaleToZeroGracePeriod`, `Knative's scale-to-zero grace period is ${clusterWide}`, `the cluster's (30s by default): set scale-to-zero-grace-period: ${goDuration(sc.scaleToZeroGracePeriodMs)} there`)
  }
  for (const key of ['maxScaleUpRate', 'maxScaleDownRate'] as const) {
    if (sc[key] !== CLUSTER_WIDE[key]) {
      const name = key === 'maxScaleUpRate' ? 'max-scale-up-rate' : 'max-scale-down-rate'
      ctx.losses.add(`${where}.${key}`, `Knative's ${name} is ${clusterWide}`, `the cluster's (${CLUSTER_WIDE[key]} by default): set ${name}: "${sc[key]}" there`)
    }
  }
  if (sc.initialScale === 0) {
    ctx.losses.add(`${where}.initialScale`, 'Knative refuses an initial scale of 0 unless the cluster allows it (allow-zero-initial-scale in config-autoscaler)', 'initial-scale "0", which needs allow-zero-initial-scale: "true"')
  }
  if (sc.activatorTimeoutMs !== MESHSIM_ONLY.activatorTimeoutMs) {
    ctx.losses.add(`${where}.activatorTimeout`, "Knative's activator holds a request until the revision's timeoutSeconds, not for a time of its own", "the revision's timeoutSeconds (300s by default)")
  }
  if (sc.queue !== MESHSIM_ONLY.queue) {
    ctx.losses.add(`${where}.queue`, "Knative's activator has no per-revision bound on the requests it holds; past it meshsim answers 429", 'none')
  }
  if (sc.reservedConcurrency !== undefined) {
    ctx.losses.add(`${where}.reservedConcurrency`, "Lambda's reserved concurrency has no Knative equivalent", 'max-scale × containerConcurrency bounds the revision')
  }
}
