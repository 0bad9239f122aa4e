// Deploys of an autoscaled service, on a virtual clock: the real DeployController and
// strategies and the real Autoscaler over one fake mesh whose load follows the weights.
// Who sets each version's count when (scale-owners.ts): the deploy while it creates or
// removes a version, the autoscaler (by the version's own load) in between.
import {describe, expect, test} from 'vitest'
import type {MeshConfig, ScalingConfig, ServiceConfig, VersionConfig} from '../../src/sim/config/types.js'
import type {VersionSignals} from '../../src/sim/deploy/analysis.js'
import {DeployController} from '../../src/sim/deploy/deploy-controller.js'
import type {CanaryOptions, DeployPlan, DeployRecord, DeployTarget} from '../../src/sim/deploy/deploy-types.js'
import {ScaleOwners} from '../../src/sim/deploy/scale-owners.js'
import {Autoscaler, type ScaleTarget, type ScalingEvent, TICK_MS} from '../../src/sim/scaling/autoscaler.js'
import {VirtualClock} from '../../src/sim/time/clock.js'
import {scalingConfig} from '../helpers/scaling.js'

type Scaled = Extract<ScalingEvent, {kind: 'scaled'}>

// 10 concurrent per instance: the counts below are the load / 10, rounded up.
const SCALING: ScalingConfig = scalingConfig({minScale: 1, target: 10, targetUtilization: 100})

const version = (name: string, replicas: number): VersionConfig => ({
  name,
  replicas,
  env: {},
  workload: {kind: 'simulate'} as VersionConfig['workload'],
  scaling: {...SCALING, initialScale: replicas},
})

interface Instance {
  name: string
  version: string
  state: 'starting' | 'healthy' | 'leaving'
}

/**
 * One service, `api`, with `load` requests always in flight: spread over the versions by
 * weight, and over a version's healthy instances evenly (a starting one gets none).
 */
class FakeMesh implements DeployTarget, ScaleTarget {
  readonly clock = new VirtualClock()
  readonly owners = new ScaleOwners()
  readonly svc: ServiceConfig
  readonly config: MeshConfig
  readonly autoscaler: Autoscaler
  readonly events: Scaled[] = []
  /** Scaling actions the autoscaler took on a version a deploy held: must stay empty. */
  readonly fights: string[] = []
  instances: Instance[] = []
  load = 60
  private weightsNow = new Map([['v1', 100]])
  private seq = 0

  constructor(
    v1Replicas: number,
    private readonly stats: (version: string, now: number) => VersionSignals = () => ({requests: 100, successRate: 1, p99Ms: 5}),
    v2Initial = 1,
  ) {
    this.svc = {name: 'api', dependsOn: [], versions: [version('v1', v1Replicas), version('v2', v2Initial)]} as unknown as ServiceConfig
    this.config = {services: [this.svc]} as unknown as MeshConfig
    for (let i = 0; i < v1Replicas; i++) this.instances.push({name: this.nameFor('v1'), version: 'v1', state: 'healthy'})
    this.autoscaler = new Autoscaler({
      config: this.config,
      clock: this.clock,
      target: this,
      inflight: () => this.inflight(),
      served: () => 0,
      deploying: (s, v) => this.owners.owner(s, v),
      onEvent: (e) => {
        if (e.kind !== 'scaled') throw new Error(e.message)
        if (this.owners.owner(e.service, e.version) === 'deploy') this.fights.push(`${this.clock.now()} ${e.version} ${e.message}`)
        this.events.push(e)
      },
      onError: (_s, e) => {
        throw e
      },
    })
    this.owners.onChange(() => this.autoscaler.sync())
  }

  count(version: string): number {
    return this.instancesOf('api', version).length
  }

  service(): ServiceConfig {
    return this.svc
  }

  instancesOf(_service: string, version?: string): string[] {
    return this.instances.filter((i) => i.state !== 'leaving' && (!version || i.version === version)).map((i) => i.name)
  }

  isStarted(): boolean {
    return true
  }

  phase(): string {
    return 'running'
  }

  notStarted(): string | undefined {
    return undefined
  }

  async addInstances(_s: ServiceConfig, v: VersionConfig, count: number, _timeoutMs?: number, signal?: AbortSignal): Promise<string[]> {
    const created = Array.from({length: count}, (): Instance => ({name: this.nameFor(v.name), version: v.name, state: 'starting'}))
    this.instances.push(...created)
    try {
      await this.clock.sleep(500, signal)
    } catch (error) {
      this.instances = this.instances.filter((i) => !created.includes(i))
      throw error
    }
    for (const i of created) i.state = 'healthy'
    return created.map((i) => i.name)
  }

  async removeInstance(name: string): Promise<void> {
    const inst = this.instances.find((i) => i.name === name)
    if (!inst || inst.state === 'leaving') return
    inst.state = 'leaving'
    await this.clock.sleep(200)
    this.instances = this.instances.filter((i) => i !== inst)
  }

  async holdCounts(service: string, versions: string[]): Promise<() => void> {
    const release = this.owners.hold(service, versions)
    await this.autoscaler.whenIdle(service)
    return release
  }

  retire(service: string, versions: string[]): void {
    this.owners.retire(service, versions)
  }

  weights(): Map<string, number> {
    return new Map(this.weightsNow)
  }

  setWeights(_service: string, weights: Map<string, number>): void {
    this.weightsNow = new Map(weights)
  }

  addRoute(): () => void {
    return () => {}
  }

  addMirror(): () => void {
    return () => {}
  }

  versionStats(_service: string, v: string): VersionSignals {
    return this.stats(v, this.clock.now())
  }

  async smoke(): Promise<{ok: boolean; status: number; detail: string}> {
    return {ok: true, status: 200, detail: 'HTTP 200'}
  }

  async check(): Promise<{ok: boolean; detail: string}> {
    return {ok: true, detail: 'exit 0'}
  }

  /** Each healthy instance's share of the load its version's weight sends it. */
  private inflight(): Record<string, number> {
    const per: Record<string, number> = {}
    for (const [v, w] of this.weightsNow) {
      const healthy = this.instances.filter((i) => i.version === v && i.state === 'healthy')
      for (const i of healthy) per[i.name] = (this.load * w) / 100 / healthy.length
    }
    return per
  }

  private nameFor(v: string): string {
    return `api-${v}-${++this.seq}`
  }
}

function canaryPlan(canary: Partial<CanaryOptions> = {}): DeployPlan {
  return {
    service: 'api',
    to: 'v2',
    strategy: 'canary',
    progressDeadlineMs: 5000,
    canary: {steps: [20, 50, 100], intervalMs: 20_000, maxErrorRate: 0.01, compareToPrimary: false, failureThreshold: 1, minRequests: 1, ...canary},
  }
}

/** Seconds on the clock (the autoscaler ticks each), noting each version's count at each. */
async function run(mesh: FakeMesh, seconds: number, until?: () => boolean): Promise<Array<{at: number; v1: number; v2: number; weight: number}>> {
  const seen = []
  for (let i = 0; i < seconds && !until?.(); i++) {
    await mesh.clock.advance(TICK_MS)
    seen.push({at: mesh.clock.now() / 1000, v1: mesh.count('v1'), v2: mesh.count('v2'), weight: mesh.weights().get('v2') ?? 0})
  }
  return seen
}

const during = (seen: Awaited<ReturnType<typeof run>>, weight: number) => seen.filter((s) => s.weight === weight)

describe('a canary of an autoscaled service', () => {
  test('each version is scaled by its own share of the load; at promotion the old one goes and its decider is let go', async () => {
    const mesh = new FakeMesh(6)
    mesh.autoscaler.start()
    const deploys = new DeployController(mesh, {onStep: () => {}})
    let record: DeployRecord | undefined
    record = deploys.start(canaryPlan())
    const seen = await run(mesh, 120, () => record!.outcome !== 'running')
    expect(record.outcome).toBe('promoted')
    expect(mesh.fights).toEqual([])

    // 20% of 60 in flight is 12: two instances of v2 carry it (from initialScale 1), v1 gives one of its 6 back for its 48.
    const at20 = during(seen, 20).at(-1)!
    expect(at20).toMatchObject({v1: 5, v2: 2})
    // 50%: 30 each, three instances each.
    expect(during(seen, 50).at(-1)).toMatchObject({v1: 3, v2: 3})
    // Before taking it all, the deploy sized v2 to what both ran (3 + 3), so capacity never dipped.
    expect(Math.min(...seen.map((s) => s.v1 + s.v2))).toBeGreaterThanOrEqual(6)
    expect(mesh.count('v1')).toBe(0)
    expect(mesh.count('v2')).toBe(6)
    // v1 is let go: only v2 is autoscaled now, and it goes on following its load.
    expect(mesh.autoscaler.status('api')?.map((s) => s.version)).toEqual(['v2'])
    expect(mesh.owners.owner('api', 'v1')).toBe('retired')
    mesh.load = 20
    await run(mesh, 20)
    expect(mesh.count('v2')).toBe(2)
    expect(mesh.events.filter((e) => e.version === 'v1').every((e) => e.to < e.from)).toBe(true)
    await mesh.autoscaler.stop()
  })

  test('the deploy holds the canary while it creates it: its starting instances (no load yet) are not scaled down under it; then its load scales it', async () => {
    // initialScale 3: a decider seeing 3 instances and no load would want 1 at once.
    const mesh = new FakeMesh(6, undefined, 3)
    mesh.autoscaler.start()
    const deploys = new DeployController(mesh, {onStep: () => {}})
    // Creating the canary takes 5.5 s (its acceptance, say): four ticks with it held, unloaded.
    const add = mesh.addInstances.bind(mesh)
    mesh.addInstances = async (s, v, count, t, signal) => {
      const names = await add(s, v, count, t, signal)
      if (v.name === 'v2') await mesh.clock.sleep(5000)
      return names
    }
    const record = deploys.start(canaryPlan({steps: [20, 100]}))
    const creating = await run(mesh, 4)
    expect(mesh.owners.owner('api', 'v2')).toBe('deploy')
    expect(creating.map((s) => s.v2)).toEqual([3, 3, 3, 3])
    // While held, the status says the deploy's count is the desired one.
    expect(mesh.autoscaler.status('api')?.find((s) => s.version === 'v2')).toMatchObject({desired: 3, actual: 3})
    await run(mesh, 2)
    expect(mesh.owners.owner('api', 'v2')).toBeUndefined()
    // Handed over at 20%: 12 in flight want 2; a fresh decider holds the 3 it was given for a
    // stable window (Knative's newAutoscaler), then gives one back.
    const seen = await run(mesh, 15)
    expect(seen[0].v2).toBe(3)
    expect(seen.at(-1)).toMatchObject({weight: 20, v2: 2})
    expect(mesh.events.filter((e) => e.version === 'v2').map((e) => `${e.from}→${e.to}`)).toEqual(['3→2'])
    await run(mesh, 120, () => record.outcome !== 'running')
    expect(record.outcome).toBe('promoted')
    expect(mesh.fights).toEqual([])
    await mesh.autoscaler.stop()
  })

  test('an analysis that fails rolls back: the canary goes and is let go, the primary stays autoscaled and takes its load back', async () => {
    // v2 fails its analysis at 50% (from 30 s on).
    const mesh = new FakeMesh(6, (v, now) => (v === 'v2' && now > 30_000 ? {requests: 100, successRate: 0.5} : {requests: 100, successRate: 1, p99Ms: 5}))
    mesh.autoscaler.start()
    const deploys = new DeployController(mesh, {onStep: () => {}})
    const record = deploys.start(canaryPlan())
    const seen = await run(mesh, 120, () => record.outcome !== 'running')
    expect(record.outcome).toBe('rolled-back')
    expect(during(seen, 50).at(-1)).toMatchObject({v1: 3, v2: 3})
    expect(mesh.count('v2')).toBe(0)
    expect(mesh.autoscaler.status('api')?.map((s) => s.version)).toEqual(['v1'])
    // All 60 back on v1's 3: the autoscaler (panic) brings it back to 6.
    await run(mesh, 5)
    expect(mesh.count('v1')).toBe(6)
    expect(mesh.events.at(-1)).toMatchObject({version: 'v1', from: 3, to: 6, panic: true})
    expect(mesh.fights).toEqual([])
    await mesh.autoscaler.stop()
  })

  test('`mesh rollback` mid-canary: traffic back at once, the canary removed and let go; deploying v2 again starts it afresh', async () => {
    const mesh = new FakeMesh(6)
    mesh.autoscaler.start()
    const deploys = new DeployController(mesh, {onStep: () => {}})
    const record = deploys.start(canaryPlan())
    // At 50% (from 20 s): 30 in flight on each version, three instances each.
    await run(mesh, 30)
    expect(mesh.count('v2')).toBe(3)
    const rolledBack = deploys.rollback('api')
    await run(mesh, 5)
    await rolledBack
    expect(record.outcome).toBe('rolled-back')
    expect(mesh.weights().get('v1')).toBe(100)
    expect(mesh.count('v2')).toBe(0)
    expect(mesh.owners.owner('api', 'v2')).toBe('retired')
    expect(mesh.autoscaler.status('api')?.map((s) => s.version)).toEqual(['v1'])
    await run(mesh, 10)
    expect(mesh.count('v1')).toBe(6)

    const before = mesh.events.length
    const again = deploys.start(canaryPlan())
    await run(mesh, 3)
    expect(mesh.owners.owner('api', 'v2')).toBeUndefined()
    // A fresh decider from the one instance created, not the last canary's 3.
    expect(mesh.events.slice(before).filter((e) => e.version === 'v2')[0]).toMatchObject({from: 1, to: 2})
    await run(mesh, 120, () => again.outcome !== 'running')
    expect(again.outcome).toBe('promoted')
    expect(mesh.fights).toEqual([])
    await mesh.autoscaler.stop()
  })
})

describe('rolling and blue-green of an autoscaled service', () => {
  test('rolling: both versions are the deploy\'s throughout (no scaling mid-rollout, even under a surge); the new one is autoscaled after', async () => {
    const mesh = new FakeMesh(4)
    mesh.load = 40
    mesh.autoscaler.start()
    const deploys = new DeployController(mesh, {onStep: () => {}})
    const record = deploys.start({service: 'api', to: 'v2', strategy: 'rolling', rolling: {maxSurge: 1, maxUnavailable: 0}, progressDeadlineMs: 5000})
    mesh.load = 100
    const seen = await run(mesh, 60, () => record.outcome !== 'running')
    expect(record.outcome).toBe('promoted')
    // Rolled 4 for 4 with one surge instance, though 100 in flight want 10: no scaling mid-rollout.
    expect(Math.max(...seen.slice(0, -1).map((s) => s.v1 + s.v2))).toBe(5)
    expect(mesh.fights).toEqual([])
    expect(mesh.count('v1')).toBe(0)
    expect(mesh.autoscaler.status('api')?.map((s) => s.version)).toEqual(['v2'])
    await run(mesh, 3)
    // Then the autoscaler, from the 4 the rollout left.
    expect(mesh.events.filter((e) => e.version === 'v2').map((e) => `${e.from}→${e.to}`)).toEqual(['4→10'])
    expect(mesh.count('v2')).toBe(10)
    await mesh.autoscaler.stop()
  })

  test('blue-green: green (no traffic yet) is the deploy\'s until the switch, blue (no traffic left) from the switch until it stops', async () => {
    const mesh = new FakeMesh(3)
    mesh.load = 30
    mesh.autoscaler.start()
    const deploys = new DeployController(mesh, {onStep: () => {}})
    const record = deploys.start({service: 'api', to: 'v2', strategy: 'blue-green', blueGreen: {keepMs: 20_000}, progressDeadlineMs: 5000})
    await run(mesh, 2)
    expect(mesh.weights().get('v2')).toBe(100)
    expect(mesh.owners.owner('api', 'v2')).toBeUndefined()
    expect(mesh.owners.owner('api', 'v1')).toBe('deploy')
    // Kept whole (3) through the keep, though it has no traffic; green follows its load.
    mesh.load = 50
    const seen = await run(mesh, 15)
    expect(seen.every((s) => s.v1 === 3)).toBe(true)
    expect(mesh.count('v2')).toBe(5)
    await run(mesh, 60, () => record.outcome !== 'running')
    expect(record.outcome).toBe('promoted')
    expect(mesh.count('v1')).toBe(0)
    expect(mesh.autoscaler.status('api')?.map((s) => s.version)).toEqual(['v2'])
    expect(mesh.fights).toEqual([])
    await mesh.autoscaler.stop()
  })
  test('blue-green: `mesh rollback` during the keep puts traffic back on blue, whole, and hands it back to the autoscaler; green is let go', async () => {
    const mesh = new FakeMesh(3)
    mesh.load = 30
    mesh.autoscaler.start()
    const deploys = new DeployController(mesh, {onStep: () => {}})
    const record = deploys.start({service: 'api', to: 'v2', strategy: 'blue-green', blueGreen: {keepMs: 60_000}, progressDeadlineMs: 5000})
    await run(mesh, 5)
    expect(mesh.owners.owner('api', 'v1')).toBe('deploy')
    const rolledBack = deploys.rollback('api')
    await run(mesh, 2)
    await rolledBack
    expect(record.outcome).toBe('rolled-back')
    expect(mesh.weights().get('v1')).toBe(100)
    expect(mesh.count('v1')).toBe(3)
    expect(mesh.count('v2')).toBe(0)
    expect(mesh.owners.owner('api', 'v1')).toBeUndefined()
    expect(mesh.autoscaler.status('api')?.map((s) => s.version)).toEqual(['v1'])
    // Blue follows its load again: 60 in flight want 6.
    mesh.load = 60
    await run(mesh, 3)
    expect(mesh.count('v1')).toBe(6)
    expect(mesh.fights).toEqual([])
    await mesh.autoscaler.stop()
  })
})
