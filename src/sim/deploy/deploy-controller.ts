// Runs deploys in the control plane: one at a time per service, each a strategy's
// steps drained in the background, recorded as a DeployRecord (history) and as
// events. `rollback` aborts a running deploy, or undoes the last finished one by
// rolling back to the version it replaced.
import {writeFileSync} from 'node:fs'
import {MeshError} from '../errors.js'
import {type DeployOutcome, type DeployPlan, type DeployRecord, type DeployStep, type DeployTarget, shiftsTraffic, succeeded} from './deploy-types.js'
import {currentVersions, DeployFailed, removeVersions, restart, restartableVersions, run} from './strategies.js'
import {resolveVersion} from './version-overrides.js'

export interface DeployEvents {
  onStep(record: DeployRecord, step: DeployStep): void
  /** Canary `--load`: drive traffic for the analysis; says where it goes, and how to stop it. */
  startLoad?(plan: DeployPlan): {stop(): void; message: string}
}

interface Running {
  record: DeployRecord
  abort: AbortController
  done: Promise<void>
}

export class DeployController {
  private readonly records: DeployRecord[] = []
  private readonly running = new Map<string, Running>()
  /** Each deploy's traffic split before it began, which `mesh rollback` restores. */
  private readonly weightsBefore = new Map<string, Map<string, number>>()
  private seq = 0

  constructor(
    private readonly target: DeployTarget,
    private readonly events: DeployEvents,
    private readonly historyFile?: string,
  ) {}

  start(plan: DeployPlan): DeployRecord {
    const service = this.target.service(plan.service)
    // A deploy replaces running instances: without any, it would start only the new version's.
    const why = this.target.notStarted(plan.service)
    if (why) throw new MeshError('MESH_NOT_STARTED', `"${plan.service}" is not started (${why}), so there is nothing to deploy over.`, {hints: [`Start it first: \`mesh start ${plan.service}\`.`]})
    if (this.running.has(plan.service)) {
      const r = this.running.get(plan.service)!.record
      throw new MeshError('MESH_DEPLOY_IN_PROGRESS', `a ${r.plan.strategy} deploy of "${plan.service}" to ${r.plan.to} is in progress (${r.id}).`, {
        hints: [`Wait for it, or stop it with \`mesh rollback ${plan.service}\`.`],
      })
    }
    if (plan.strategy === 'canary' && service.protocol === 'tcp') {
      throw new MeshError('MESH_BAD_FLAG', `"${plan.service}" is protocol: tcp: a canary's analysis reads request success and latency, which TCP connections do not have.`, {
        hints: [`Use \`mesh rollout ${plan.service} --to ${plan.to}\` (rolling or blue-green).`],
      })
    }
    if (plan.strategy === 'restart') {
      const versions = restartableVersions(this.target, service, plan.to).map((v) => v.name)
      if (versions.length === 0) {
        throw new MeshError('MESH_NOTHING_TO_RESTART', `"${plan.service}" has no instance the mesh runs, so there is nothing to restart.`, {
          hints: ['A service given by address: runs outside the mesh: restart it where it runs.'],
        })
      }
      const whole = {...plan, to: versions.join(',')}
      return this.begin(whole, versions, undefined, (signal) => restart(whole, this.target, signal))
    }
    const from = currentVersions(this.target, plan.service, plan.to)
    if (from.length === 0) {
      throw new MeshError('MESH_DEPLOY_NOTHING_TO_REPLACE', `"${plan.service}" already sends all its traffic to ${plan.to}.`)
    }
    const version = resolveVersion(service, plan.to, from[0], plan.overrides)
    // Load first: a refused --load must leave the config untouched.
    const load = plan.canary?.loadRps ? this.events.startLoad?.(plan) : undefined
    const existing = service.versions.findIndex((v) => v.name === plan.to)
    if (existing >= 0) service.versions[existing] = version
    else service.versions.push(version)
    return this.begin(plan, from, load, (signal) => run(plan, this.target, version, signal))
  }

  private begin(
    plan: DeployPlan,
    from: string[],
    load: {stop(): void; message: string} | undefined,
    steps: (signal: AbortSignal) => AsyncGenerator<DeployStep, void, void>,
  ): DeployRecord {
    const record: DeployRecord = {id: `d${++this.seq}`, plan, from, outcome: 'running', startedAt: this.now(), steps: []}
    this.weightsBefore.set(record.id, new Map(this.target.weights(plan.service)))
    this.records.push(record)
    if (load) this.add(record, {kind: 'load', message: load.message, at: this.now()})
    const abort = new AbortController()
    const done = this.drive(record, steps(abort.signal), abort.signal).finally(() => load?.stop())
    this.running.set(plan.service, {record, abort, done})
    return record
  }

  /** Resolves once no deploy of the service is running (at once when none is). */
  async whenIdle(service: string): Promise<void> {
    for (let r = this.running.get(service); r; r = this.running.get(service)) await r.done.catch(() => undefined)
  }

  get(id: string): DeployRecord {
    const r = this.records.find((x) => x.id === id)
    if (!r) throw new MeshError('MESH_DEPLOY_NOT_FOUND', `no deploy ${id}.`, {hints: ['List them with `mesh history SERVICE`.']})
    return r
  }

  history(service?: string): DeployRecord[] {
    return this.records.filter((r) => !service || r.plan.service === service)
  }

  /** A one-line summary for `mesh status`, while one runs. */
  inProgress(service: string): string | undefined {
    const r = this.running.get(service)?.record
    return r && describeRunning(r, false)
  }

  /**
   * Why `version` of `service` is held back from traffic (`mesh status`): the target of a
   * running deploy not promoted yet, or (with no traffic, `weight` 0) one a deploy replaced
   * or rolled back, or one waiting for a deploy. Undefined for a version that serves as usual.
   */
  heldBack(service: string, version: string, weight: number): string | undefined {
    const running = this.running.get(service)?.record
    if (running && shiftsTraffic(running.plan) && running.plan.to === version) return `held by deploy ${running.id} (${describeRunning(running, true)}): not promoted yet`
    if (weight > 0) return undefined
    const last = [...this.records].reverse().find((r) => r.plan.service === service && shiftsTraffic(r.plan) && r.outcome !== 'running' && (r.plan.to === version || r.from.includes(version)))
    if (last?.plan.to === version && !succeeded(last.outcome)) return `deploy ${last.id} (${last.plan.strategy} → ${version}) was ${last.outcome.replace('-', ' ')}: \`mesh history ${service}\` says why`
    if (last && last.plan.to !== version && last.outcome === 'promoted') return `replaced by deploy ${last.id} (${last.plan.strategy} → ${last.plan.to}, promoted)`
    return `weight 0 in the traffic split: waiting for \`mesh canary ${service} --to ${version}\` or \`mesh rollout ${service} --to ${version}\` (or weights in mesh.yaml)`
  }

  /**
   * During a deploy: stop it and put traffic back on the versions it replaced.
   * After one: deploy back to the version the last promoted deploy replaced (rolling).
   */
  async rollback(service: string): Promise<DeployRecord> {
    const running = this.running.get(service)
    if (running && !shiftsTraffic(running.record.plan)) {
      throw new MeshError('MESH_NOTHING_TO_ROLL_BACK', `a restart of "${service}" is in progress (${running.record.id}): its new instances run the same version, so there is nothing to roll back to.`, {
        hints: ['A restart stops by itself at the first new instance that does not get healthy; the others keep running.'],
      })
    }
    if (running) {
      running.abort.abort(new Error('mesh rollback'))
      await running.done
      return running.record
    }
    const last = [...this.records].reverse().find((r) => r.plan.service === service && r.outcome === 'promoted')
    if (!last) {
      throw new MeshError('MESH_NOTHING_TO_ROLL_BACK', `no finished deploy of "${service}" to roll back.`, {
        hints: ['`mesh history SERVICE` lists its deploys.'],
      })
    }
    const record = this.start({...last.plan, to: last.from[0], strategy: 'rolling', overrides: undefined, rolling: {maxSurge: 1, maxUnavailable: 0}})
    await this.running.get(service)?.done
    return record
  }

  private async drive(record: DeployRecord, steps: AsyncGenerator<DeployStep, void, void>, signal: AbortSignal): Promise<void> {
    let outcome: DeployOutcome = shiftsTraffic(record.plan) ? 'promoted' : 'restarted'
    try {
      for await (const s of steps) this.add(record, s)
    } catch (error) {
      if (signal.aborted) {
        outcome = 'rolled-back'
        await this.undo(record)
      } else outcome = error instanceof DeployFailed && error.rolledBack ? 'rolled-back' : 'failed'
      if (outcome === 'failed') this.add(record, {kind: 'failed', message: (error as Error).message, at: this.now()})
    }
    record.outcome = outcome
    record.endedAt = this.now()
    this.running.delete(record.plan.service)
    this.save()
  }

  /** `mesh rollback` mid-deploy: traffic back to the old versions at once, then the new instances go. */
  private async undo(record: DeployRecord): Promise<void> {
    const {service, to} = record.plan
    const weights = this.weightsBefore.get(record.id) ?? new Map(record.from.map((v) => [v, 100 / record.from.length]))
    this.target.setWeights(service, weights)
    this.add(record, {kind: 'rollback', message: `rolled back by request: 100% on ${record.from.join(', ')}`, at: this.now(), weights: Object.fromEntries(weights)})
    await removeVersions(this.target, service, [to], true)
  }

  private add(record: DeployRecord, step: DeployStep): void {
    record.steps.push(step)
    this.events.onStep(record, step)
  }

  private save(): void {
    if (!this.historyFile) return
    try {
      writeFileSync(this.historyFile, JSON.stringify(this.records, null, 2))
    } catch {
      // History is a convenience; a full disk must not fail a deploy.
    }
  }

  private now(): string {
    return new Date(this.target.clock.wallNow()).toISOString()
  }
}

/** `canary → v2 at 25%: analysis`, or with `step`, `canary → v2 at 25%, step 3: analysis`. */
function describeRunning(r: DeployRecord, step: boolean): string {
  const last = r.steps.at(-1)
  const weight = [...r.steps].reverse().find((s) => s.weights)?.weights?.[r.plan.to]
  const at = `${r.plan.strategy} → ${r.plan.to}${weight !== undefined ? ` at ${Math.round(weight)}%` : ''}`
  if (!last) return at
  return step ? `${at}, step ${r.steps.length}: ${last.kind}` : `${at}: ${last.kind}`
}
