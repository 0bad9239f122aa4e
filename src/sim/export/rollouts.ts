// `mesh export kubernetes --rollouts flagger|argo|none`: a service's `deploy:` block as the
// progressive-delivery controller's objects, written over the workloads and mesh objects the
// other exporters made (a Rollout replaces a Deployment; Flagger writes its own routing).
//
//   deploy: {strategy: rolling, ...}      ─▶ the Deployments' RollingUpdate (any --rollouts)
//   deploy: {strategy: canary|blue-green} ─▶ --rollouts argo: Rollout + AnalysisTemplate (rollouts-argo.ts)
//                                         ├▶ --rollouts flagger: Canary (+ MetricTemplates) (rollouts-flagger.ts)
//                                         └▶ --rollouts none: reported, the Deployments as they are
//
// A Rollout or a Canary runs one pod template at a time, the version that takes the traffic
// (`stable`); mesh.yaml's other versions are what a deploy rolls to, so they are reported
// rather than run beside it.
import type {Deployment} from 'kubernetes-models/apps/v1/Deployment'
import type {ServiceConfig, VersionConfig} from '../config/types.js'
import {declaredDeployPlan} from '../deploy/deploy-defaults.js'
import type {DeployPlan} from '../deploy/deploy-types.js'
import {isKnative} from './knative.js'
import type {ExportContext, Manifest} from './manifest.js'

export const ROLLOUT_TARGETS = ['none', 'flagger', 'argo'] as const
export type RolloutTarget = (typeof ROLLOUT_TARGETS)[number]

/** A service whose `deploy:` a controller carries: its plan (every default applied) and the version it runs. */
export interface Progressive {
  service: ServiceConfig
  plan: DeployPlan
  stable: VersionConfig
  /** `services.NAME.deploy` */
  where: string
}

const TARGET_NAMES: Record<Exclude<RolloutTarget, 'none'>, string> = {argo: 'Argo Rollouts', flagger: 'Flagger'}

/**
 * The services with a canary or blue-green `deploy:` that `target` can carry, after writing
 * every rolling one into its Deployments and reporting the rest.
 */
export function progressiveServices(ctx: ExportContext, manifests: readonly Manifest[], target: RolloutTarget): Progressive[] {
  const out: Progressive[] = []
  for (const s of ctx.config.services) {
    const plan = declaredDeployPlan(s)
    if (!plan) continue
    const where = `services.${s.name}.deploy`
    if (plan.rolling) {
      // Kubernetes' own RollingUpdate is meshsim's rolling deploy, knob for knob.
      for (const v of s.versions) {
        const d = deploymentOf(manifests, s, v)
        if (d?.spec) d.spec.strategy = {type: 'RollingUpdate', rollingUpdate: {maxSurge: plan.rolling.maxSurge, maxUnavailable: plan.rolling.maxUnavailable}}
      }
      const unfit = unfitFor(s)
      if (unfit) ctx.losses.add(where, `a rolling deploy's maxSurge and maxUnavailable are a Deployment's; ${unfit}`, 'none; the service as exported without deploy:')
      continue
    }
    if (target === 'none') {
      ctx.losses.add(
        where,
        `a ${plan.strategy} deploy moves traffic step by step and judges the new version's live metrics; a Deployment replaces pods and reads only their readiness`,
        'the Deployments as they are (their RollingUpdate); export with --rollouts flagger or --rollouts argo to carry it',
      )
      continue
    }
    const unfit = unfitFor(s)
    if (unfit) {
      ctx.losses.add(where, `${TARGET_NAMES[target]} deploys Deployments (or pod templates); ${unfit}`, 'none; the service as exported without deploy:')
      continue
    }
    const stable = stableVersion(s)
    for (const v of s.versions) {
      if (v === stable) continue
      ctx.losses.add(
        `services.${s.name}.versions.${v.name}`,
        `${TARGET_NAMES[target]} runs one pod template at a time, the stable version (${stable.name}); another version is the next revision of that template, not a workload beside it`,
        `no Deployment for ${v.name}; deploy it by giving the ${target === 'argo' ? 'Rollout' : `Deployment ${s.name}-${stable.name}`}'s template ${v.name}'s image, args and env`,
      )
    }
    out.push({service: s, plan, stable, where})
  }
  return out
}

/** Why a service is no Deployment a controller can take (a Knative Service, a Job, an outside address), or undefined. */
function unfitFor(s: ServiceConfig): string | undefined {
  if (isKnative(s)) return 'this one is a Knative Service, whose revisions Knative routes itself (its traffic block)'
  if (s.restart !== undefined) return 'this one is a Job, which runs to completion and takes no traffic to shift'
  const w = s.versions[0].workload
  if (w.kind === 'address' && w.image === undefined) return 'this one is an address outside the cluster'
  return undefined
}

/** The version taking the traffic: the heaviest weight (the first of equals), or the first version, as meshsim routes. */
export function stableVersion(s: ServiceConfig): VersionConfig {
  const w = s.policy.weights
  if (!w) return s.versions[0]
  return s.versions.reduce((best, v) => ((w[v.name] ?? 0) > (w[best.name] ?? 0) ? v : best), s.versions[0])
}

export function deploymentOf(manifests: readonly Manifest[], s: ServiceConfig, v: VersionConfig): Deployment | undefined {
  return manifests.find((m) => m.object.kind === 'Deployment' && m.object.metadata?.name === `${s.name}-${v.name}`)?.object as Deployment | undefined
}

/** The policy keys that route between versions, which a controller's own split replaces. */
export function versionRoutingLost(p: Progressive, ctx: ExportContext, owner: string): void {
  const {policy} = p.service
  const where = `services.${p.service.name}.policy`
  const nearest = `${owner}'s split between the stable version and the canary`
  if (policy.weights) ctx.losses.add(`${where}.weights`, `${owner} sets the service's traffic split itself while it deploys`, nearest)
  if (policy.routes.length > 0) ctx.losses.add(`${where}.routes`, `${owner} routes the service between its stable pods and the canary only; a rule naming a version has no pods to go to`, nearest)
  if (policy.mirror) ctx.losses.add(`${where}.mirror`, `a standing mirror to a version has no pods to go to under ${owner}`, 'none; deploy.mirror mirrors to the canary during a deploy')
}
