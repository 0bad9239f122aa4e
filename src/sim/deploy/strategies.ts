// The deploy strategies as async generators of steps. Each only talks to a
// DeployTarget, so the daemon runs them against real processes and tests run them
// against a fake on a virtual clock.
//
//   rolling:    [+new ▶ healthy ▶ weights ▶ -old (drained)] × n       (Kubernetes RollingUpdate)
//   blue-green: +all green ▶ healthy ▶ smoke ▶ [check] ▶ switch 100% ▶ keep blue ▶ -blue   (Argo Rollouts)
//   canary:     +canary ▶ [check] ▶ [mirrored] ▶ [match-only] ▶ [weight ▶ interval ▶ analysis]* ▶ promote | roll back   (Flagger)
//               ([check]: an acceptance test before any traffic, as Flagger's pre-rollout webhook)
//   restart:    [+fresh ▶ healthy ▶ -old (drained)] × each instance, versions and weights unchanged
//               (kubectl rollout restart: new processes for new code, no dropped request)
//
// On an autoscaled service each strategy holds a version's count from the autoscaler only
// while it creates or removes that version as a whole (or its arithmetic needs the count);
// in between each version is scaled by its own load (scale-owners.ts has the table).
import type {ServiceConfig, VersionConfig} from '../config/types.js'
import {analyse} from './analysis.js'
import type {DeployPlan, DeployStep, DeployTarget} from './deploy-types.js'

export class DeployFailed extends Error {
  constructor(
    message: string,
    readonly rolledBack: boolean,
  ) {
    super(message)
  }
}

type Steps = AsyncGenerator<DeployStep, void, void>

const step = (target: DeployTarget, kind: DeployStep['kind'], message: string, extra: Partial<DeployStep> = {}): DeployStep => ({
  kind,
  message,
  at: new Date(target.clock.wallNow()).toISOString(),
  ...extra,
})

const asRecord = (m: Map<string, number>) => Object.fromEntries(m)

/** `1 instance`, `3 instances`. */
const instances = (n: number) => `${n} ${n === 1 ? 'instance' : 'instances'}`

/** The versions serving now (weight > 0), other than the one being deployed. */
export function currentVersions(target: DeployTarget, service: string, to: string): string[] {
  return [...target.weights(service)].filter(([v, w]) => w > 0 && v !== to).map(([v]) => v)
}

/**
 * `signal` aborts a deploy that is waiting (a `mesh rollback` during blue-green's keep, a
 * canary interval, or a new instance that is not healthy yet).
 */
export function run(plan: DeployPlan, target: DeployTarget, version: VersionConfig, signal: AbortSignal): Steps {
  switch (plan.strategy) {
    case 'rolling':
      return rolling(plan, target, version, signal)
    case 'blue-green':
      return blueGreen(plan, target, version, signal)
    case 'canary':
      return canary(plan, target, version, signal)
    case 'restart':
      return restart(plan, target, signal)
  }
}

/**
 * The versions a restart replaces: those with instances now, run by the mesh (not
 * `address:`); only those named in `only` (comma-separated) when it is not empty.
 */
export function restartableVersions(target: DeployTarget, service: ServiceConfig, only = ''): VersionConfig[] {
  const named = only ? only.split(',') : undefined
  return service.versions.filter(
    (v) => v.workload.kind !== 'address' && target.instancesOf(service.name, v.name).length > 0 && (!named || named.includes(v.name)),
  )
}

/**
 * Every instance of the versions drained and stopped, their counts held from the autoscaler
 * meanwhile; then they are retired (it lets them go). `tolerant`: a failed removal (an undo) goes on.
 */
export async function removeVersions(target: DeployTarget, service: string, versions: string[], tolerant = false): Promise<void> {
  const release = await target.holdCounts(service, versions)
  try {
    for (const v of versions) {
      for (const name of target.instancesOf(service, v)) await (tolerant ? target.removeInstance(name).catch(() => undefined) : target.removeInstance(name))
    }
    target.retire(service, versions)
  } finally {
    release()
  }
}

/** Runs `steps` with the versions' counts held from the autoscaler, released however the steps end. */
async function* holding(target: DeployTarget, service: string, versions: string[], steps: () => Steps): Steps {
  const release = await target.holdCounts(service, versions)
  try {
    yield* steps()
  } finally {
    release()
  }
}

export function restart(plan: DeployPlan, target: DeployTarget, signal: AbortSignal): Steps {
  const versions = restartableVersions(target, target.service(plan.service), plan.to).map((v) => v.name)
  return holding(target, plan.service, versions, () => restartHeld(plan, target, signal))
}

async function* restartHeld(plan: DeployPlan, target: DeployTarget, signal: AbortSignal): Steps {
  const service = target.service(plan.service)
  const versions = restartableVersions(target, service, plan.to)
  const olds = versions.flatMap((v) => target.instancesOf(plan.service, v.name).map((name) => ({name, version: v})))
  yield step(target, 'start', `restart ${plan.service} (${versions.map((v) => v.name).join(', ')}): ${instances(olds.length)}, each replacement healthy before the old one is drained`)
  let done = 0
  for (const old of olds) {
    signal.throwIfAborted()
    let fresh: string[]
    try {
      fresh = await target.addInstances(service, old.version, 1, plan.progressDeadlineMs, signal)
    } catch (error) {
      // addInstances has already removed the one that did not get healthy; the rest keep serving.
      throw new DeployFailed(`${(error as Error).message}; ${done} of ${olds.length} restarted, the others still run as before`, false)
    }
    yield step(target, 'scale-up', `${fresh.join(', ')} healthy, replacing ${old.name}`)
    await target.removeInstance(old.name)
    done++
    yield step(target, 'scale-down', `${old.name} drained and stopped`)
  }
  yield step(target, 'done', `${plan.service}: ${instances(olds.length)} restarted`)
}

/** Instance counts are a rollout's traffic split: both versions' are the deploy's throughout. */
function rolling(plan: DeployPlan, target: DeployTarget, version: VersionConfig, signal: AbortSignal): Steps {
  const versions = [...currentVersions(target, plan.service, plan.to), plan.to]
  return holding(target, plan.service, versions, () => rollingHeld(plan, target, version, signal))
}

async function* rollingHeld(plan: DeployPlan, target: DeployTarget, version: VersionConfig, signal: AbortSignal): Steps {
  const service = target.service(plan.service)
  const {maxSurge, maxUnavailable} = plan.rolling ?? {maxSurge: 1, maxUnavailable: 0}
  const olds = currentVersions(target, plan.service, plan.to)
  const oldWeights = target.weights(plan.service)
  const oldSizes = new Map(olds.map((v) => [v, target.instancesOf(plan.service, v).length]))
  const old = () => olds.flatMap((v) => target.instancesOf(plan.service, v))
  const desired = Math.max(1, old().length || version.replicas)
  yield step(target, 'start', `rolling ${plan.service} from ${olds.join(', ') || '(nothing)'} to ${plan.to}: ${instances(desired)}, maxSurge ${maxSurge}, maxUnavailable ${maxUnavailable}`)
  const weigh = () => {
    // Traffic follows instance counts, as a Kubernetes Service spreads over ready pods.
    const fresh = target.instancesOf(plan.service, plan.to).length
    const stale = new Map(olds.map((v) => [v, target.instancesOf(plan.service, v).length]))
    const total = fresh + [...stale.values()].reduce((a, b) => a + b, 0)
    const w = new Map<string, number>()
    for (const [v, n] of stale) w.set(v, total ? (n / total) * 100 : 0)
    w.set(plan.to, total ? (fresh / total) * 100 : 100)
    target.setWeights(plan.service, w)
    return w
  }
  try {
    while (target.instancesOf(plan.service, plan.to).length < desired || old().length > 0) {
      // `mesh rollback` mid-rollout: stop between steps and undo below.
      signal.throwIfAborted()
      // As Kubernetes counts them: at most desired + maxSurge instances up, at least
      // desired − maxUnavailable of them healthy (every instance here is healthy:
      // addInstances resolves only then).
      const fresh = target.instancesOf(plan.service, plan.to).length
      const up = Math.min(desired + maxSurge - fresh - old().length, desired - fresh)
      if (up > 0) {
        const names = await target.addInstances(service, version, up, plan.progressDeadlineMs, signal)
        yield step(target, 'scale-up', `${names.join(', ')} healthy`, {weights: asRecord(weigh())})
        signal.throwIfAborted()
      }
      const available = target.instancesOf(plan.service, plan.to).length + old().length
      const down = Math.min(old().length, available - (desired - maxUnavailable))
      if (up <= 0 && down <= 0) throw new Error(`maxSurge ${maxSurge} and maxUnavailable ${maxUnavailable} leave no room to make progress`)
      for (const name of old().slice(0, Math.max(0, down))) {
        await target.removeInstance(name)
        yield step(target, 'scale-down', `${name} drained and stopped`, {weights: asRecord(weigh())})
      }
    }
  } catch (error) {
    // A new instance that never got healthy (or a rollback) stops the rollout. The old
    // versions are brought back to their size first, so capacity never dips; then
    // traffic returns to them; then every new instance goes (addInstances already
    // removed any it could not get healthy; this is for those that were).
    for (const [v, size] of oldSizes) {
      const missing = size - target.instancesOf(plan.service, v).length
      const config = service.versions.find((x) => x.name === v)
      // Not under `signal`: after a `mesh rollback` this is the undo, and it must finish.
      if (missing > 0 && config) await target.addInstances(service, config, missing, plan.progressDeadlineMs).catch(() => undefined)
    }
    target.setWeights(plan.service, oldWeights)
    await removeVersions(target, plan.service, [plan.to], true)
    yield step(target, 'rollback', `rolled back: ${(error as Error).message}`, {weights: asRecord(oldWeights)})
    throw new DeployFailed((error as Error).message, true)
  }
  target.setWeights(plan.service, new Map([[plan.to, 100]]))
  target.retire(plan.service, olds)
  yield step(target, 'done', `${plan.service} runs ${plan.to} on ${instances(desired)}`, {weights: {[plan.to]: 100}})
}

async function* blueGreen(plan: DeployPlan, target: DeployTarget, version: VersionConfig, signal: AbortSignal): Steps {
  const blue = currentVersions(target, plan.service, plan.to)
  // Green has no traffic to be scaled on before the switch; blue has none after it, and is kept whole for an instant rollback.
  const releaseGreen = await target.holdCounts(plan.service, [plan.to])
  const hold = {blue: undefined as (() => void) | undefined}
  const switchOver = async () => {
    hold.blue = await target.holdCounts(plan.service, blue)
    target.setWeights(plan.service, new Map([[plan.to, 100]]))
    releaseGreen()
  }
  try {
    yield* blueGreenSteps(plan, target, version, signal, blue, switchOver)
  } finally {
    releaseGreen()
    hold.blue?.()
  }
}

async function* blueGreenSteps(plan: DeployPlan, target: DeployTarget, version: VersionConfig, signal: AbortSignal, blue: string[], switchOver: () => Promise<void>): Steps {
  const service = target.service(plan.service)
  const opts = plan.blueGreen ?? {keepMs: 60_000}
  const blueWeights = target.weights(plan.service)
  const count = Math.max(1, blue.flatMap((v) => target.instancesOf(plan.service, v)).length || version.replicas)
  yield step(target, 'start', `blue-green ${plan.service}: blue ${blue.join(', ')}, green ${plan.to} × ${count}`)
  let green: string[] = []
  try {
    green = await target.addInstances(service, version, count, plan.progressDeadlineMs, signal)
    yield step(target, 'scale-up', `green ${green.join(', ')} healthy`)
    if (opts.smoke) {
      for (const name of green) {
        const r = await target.smoke(name, opts.smoke.method, opts.smoke.path)
        if (!r.ok) throw new Error(`smoke check ${opts.smoke.method} ${opts.smoke.path} on ${name}: ${r.detail}`)
      }
      yield step(target, 'smoke', `smoke check ${opts.smoke.method} ${opts.smoke.path} passed on every green instance`)
    }
    if (plan.check) yield step(target, 'check', await acceptance(plan, target, green))
  } catch (error) {
    // Every green instance that got healthy (addInstances removes those that did not).
    await removeVersions(target, plan.service, [plan.to], true)
    target.setWeights(plan.service, blueWeights)
    yield step(target, 'rollback', `aborted before the switch: ${(error as Error).message}; blue keeps serving`)
    throw new DeployFailed((error as Error).message, true)
  }
  // A `mesh rollback` while green was starting must not switch traffic to it first.
  signal.throwIfAborted()
  await switchOver()
  yield step(target, 'switch', `100% of traffic on green (${plan.to})`, {weights: {[plan.to]: 100}})
  yield step(target, 'keep', `blue kept for ${Math.round(opts.keepMs / 1000)}s: \`mesh rollback ${plan.service}\` is instant until then`)
  await target.clock.sleep(opts.keepMs, signal)
  await removeVersions(target, plan.service, blue)
  yield step(target, 'done', `blue (${blue.join(', ')}) stopped; ${plan.service} runs ${plan.to}`)
}

/** Runs `--check`; its passing is the step's message, its failure an Error saying why. */
async function acceptance(plan: DeployPlan, target: DeployTarget, instances: string[]): Promise<string> {
  const r = await target.check(plan.check!, instances, plan.progressDeadlineMs)
  if (!r.ok) throw new Error(`acceptance check failed before any traffic moved: ${r.detail}`)
  return `acceptance check passed: ${r.detail}`
}

async function* canary(plan: DeployPlan, target: DeployTarget, version: VersionConfig, signal: AbortSignal): Steps {
  const service: ServiceConfig = target.service(plan.service)
  const opts = plan.canary!
  const primary = currentVersions(target, plan.service, plan.to)
  const primaryWeights = target.weights(plan.service)
  const primaryCount = primary.flatMap((v) => target.instancesOf(plan.service, v)).length
  yield step(target, 'start', `canary ${plan.service}: ${plan.to} against ${primary.join(', ')}, steps ${opts.steps.join(', ')}%, every ${Math.round(opts.intervalMs / 1000)}s`)
  let canaries: string[] = []
  let removeRoute: (() => void) | undefined
  const dropRoute = () => {
    removeRoute?.()
    removeRoute = undefined
  }
  const rollBack = async function* (why: string): Steps {
    dropRoute()
    target.setWeights(plan.service, primaryWeights)
    // Every canary instance that got healthy (addInstances removes one that did not).
    await removeVersions(target, plan.service, [plan.to], true)
    yield step(target, 'rollback', `rolled back: ${why}; 100% on ${primary.join(', ')}`, {weights: asRecord(primaryWeights)})
  }
  try {
    // The deploy creates the canary (initialScale when autoscaled); from then on its load sizes it.
    const release = await target.holdCounts(plan.service, [plan.to])
    try {
      canaries = await target.addInstances(service, version, Math.max(1, version.replicas), plan.progressDeadlineMs, signal)
    } finally {
      release()
    }
  } catch (error) {
    yield* rollBack((error as Error).message)
    throw new DeployFailed((error as Error).message, true)
  }
  yield step(target, 'scale-up', `canary ${canaries.join(', ')} healthy`)
  if (plan.check) {
    try {
      yield step(target, 'check', await acceptance(plan, target, canaries))
    } catch (error) {
      yield* rollBack((error as Error).message)
      throw new DeployFailed((error as Error).message, true)
    }
  }

  let failures = 0
  /** One interval of analysis; true when the step may go on. */
  const check = async function* (label: string): AsyncGenerator<DeployStep, boolean, void> {
    for (;;) {
      await target.clock.sleep(opts.intervalMs, signal)
      const signals = target.versionStats(plan.service, plan.to, opts.intervalMs)
      const base = primary[0] ? target.versionStats(plan.service, primary[0], opts.intervalMs) : undefined
      const analysis = analyse(signals, base, opts)
      if (analysis.verdict === 'pass') {
        failures = 0
        yield step(target, 'analysis', `${label}: pass (${analysis.requests} requests)`, {analysis})
        return true
      }
      failures++
      yield step(target, 'analysis', `${label}: ${analysis.verdict} — ${analysis.reasons.join('; ')} (${failures}/${opts.failureThreshold})`, {analysis})
      if (failures >= opts.failureThreshold) return false
    }
  }

  // However the deploy ends (a `mesh rollback` mid-interval included), the mirror and the header route go with it.
  try {
    if (opts.mirror) {
      // The canary answers copies only: a broken one is caught before any caller sees it.
      removeRoute = target.addMirror(plan.service, plan.to)
      yield step(target, 'weights', `a copy of every request goes to ${plan.to} (mirrored: its answers are discarded)`)
      if (!(yield* check('mirrored'))) {
        yield* rollBack(`analysis failed ${opts.failureThreshold} times`)
        throw new DeployFailed('canary analysis failed', true)
      }
      dropRoute()
    }
    if (opts.match) {
      removeRoute = target.addRoute(plan.service, opts.match, plan.to)
      yield step(target, 'weights', `only requests with ${opts.match.name}: ${opts.match.value} go to ${plan.to}`)
      if (!(yield* check(`${opts.match.name}=${opts.match.value}`))) {
        yield* rollBack(`analysis failed ${opts.failureThreshold} times`)
        throw new DeployFailed('canary analysis failed', true)
      }
    }
    for (const weight of opts.steps) {
      // The canary takes all the traffic only once it is big enough for it, so capacity never
      // dips: the deploy holds its count while sizing it to the primary's (fixed counts) or to
      // what both versions run now (autoscaled: both their loads become its load).
      const release = weight >= 100 ? await target.holdCounts(plan.service, [plan.to]) : undefined
      try {
        if (weight >= 100) {
          const have = target.instancesOf(plan.service, plan.to).length
          const primaryNow = primary.flatMap((v) => target.instancesOf(plan.service, v)).length
          const size = version.scaling ? Math.min(version.scaling.maxScale, have + primaryNow) : primaryCount
          if (size > have) {
            try {
              await target.addInstances(service, version, size - have, plan.progressDeadlineMs, signal)
            } catch (error) {
              yield* rollBack(`scaling ${plan.to} to ${size} instances: ${(error as Error).message}`)
              throw new DeployFailed((error as Error).message, true)
            }
            yield step(target, 'scale-up', `${plan.to} scaled to ${size} instances`)
          }
        }
        const w = new Map<string, number>(primary.map((v) => [v, (100 - weight) / primary.length]))
        w.set(plan.to, weight)
        target.setWeights(plan.service, w)
        yield step(target, 'weights', `${weight}% to ${plan.to}`, {weights: asRecord(w)})
      } finally {
        release?.()
      }
      if (weight >= 100) break
      if (!(yield* check(`at ${weight}%`))) {
        yield* rollBack(`analysis failed ${opts.failureThreshold} times`)
        throw new DeployFailed('canary analysis failed', true)
      }
    }
  } finally {
    dropRoute()
  }
  // Promote: the canary is the primary now; the old primary is drained away.
  target.setWeights(plan.service, new Map([[plan.to, 100]]))
  await removeVersions(target, plan.service, primary)
  yield step(target, 'promote', `${plan.to} promoted: 100% of traffic, ${primary.join(', ')} stopped`, {weights: {[plan.to]: 100}})
}
