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

export async function* restart(plan: DeployPlan, target: DeployTarget, signal: AbortSignal): Steps {
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

async function* rolling(plan: DeployPlan, target: DeployTarget, version: VersionConfig, signal: AbortSignal): Steps {
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
    for (const name of target.instancesOf(plan.service, plan.to)) await target.removeInstance(name).catch(() => undefined)
    yield step(target, 'rollback', `rolled back: ${(error as Error).message}`, {weights: asRecord(oldWeights)})
    throw new DeployFailed((error as Error).message, true)
  }
  target.setWeights(plan.service, new Map([[plan.to, 100]]))
  yield step(target, 'done', `${plan.service} runs ${plan.to} on ${instances(desired)}`, {weights: {[plan.to]: 100}})
}

async function* blueGreen(plan: DeployPlan, target: DeployTarget, version: VersionConfig, signal: AbortSignal): Steps {
  const service = target.service(plan.service)
  const opts = plan.blueGreen ?? {keepMs: 60_000}
  const blue = currentVersions(target, plan.service, plan.to)
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
    for (const name of target.instancesOf(plan.service, plan.to)) await target.removeInstance(name).catch(() => undefined)
    target.setWeights(plan.service, blueWeights)
    yield step(target, 'rollback', `aborted before the switch: ${(error as Error).message}; blue keeps serving`)
    throw new DeployFailed((error as Error).message, true)
  }
  // A `mesh rollback` while green was starting must not switch traffic to it first.
  signal.throwIfAborted()
  target.setWeights(plan.service, new Map([[plan.to, 100]]))
  yield step(target, 'switch', `100% of traffic on green (${plan.to})`, {weights: {[plan.to]: 100}})
  yield step(target, 'keep', `blue kept for ${Math.round(opts.keepMs / 1000)}s: \`mesh rollback ${plan.service}\` is instant until then`)
  await target.clock.sleep(opts.keepMs, signal)
  for (const v of blue) for (const name of target.instancesOf(plan.service, v)) await target.removeInstance(name)
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
    for (const name of target.instancesOf(plan.service, plan.to)) await target.removeInstance(name).catch(() => undefined)
    yield step(target, 'rollback', `rolled back: ${why}; 100% on ${primary.join(', ')}`, {weights: asRecord(primaryWeights)})
  }
  try {
    canaries = await target.addInstances(service, version, Math.max(1, version.replicas), plan.progressDeadlineMs, signal)
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
      if (weight >= 100) {
        // The canary takes all the traffic only once it has the primary's size, so capacity never dips.
        const more = Math.max(0, primaryCount - target.instancesOf(plan.service, plan.to).length)
        if (more > 0) {
          try {
            await target.addInstances(service, version, more, plan.progressDeadlineMs, signal)
          } catch (error) {
            yield* rollBack(`scaling ${plan.to} to ${primaryCount} instances: ${(error as Error).message}`)
            throw new DeployFailed((error as Error).message, true)
          }
          yield step(target, 'scale-up', `${plan.to} scaled to ${primaryCount} instances`)
        }
      }
      const w = new Map<string, number>(primary.map((v) => [v, (100 - weight) / primary.length]))
      w.set(plan.to, weight)
      target.setWeights(plan.service, w)
      yield step(target, 'weights', `${weight}% to ${plan.to}`, {weights: asRecord(w)})
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
  for (const v of primary) for (const name of target.instancesOf(plan.service, v)) await target.removeInstance(name)
  yield step(target, 'promote', `${plan.to} promoted: 100% of traffic, ${primary.join(', ')} stopped`, {weights: {[plan.to]: 100}})
}
