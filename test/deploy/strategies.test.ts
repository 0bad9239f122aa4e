// The three deploy strategies, drained against a fake DeployTarget on a virtual
// clock: which instances come and go, when, and where traffic is at every step.
// The fake behaves as the daemon does: new instances exist (and count in
// instancesOf) from the moment they are created, join traffic only once healthy,
// and a drained instance leaves the registry at once but stops only after drainMs.
import {describe, expect, test} from 'vitest'
import type {ServiceConfig, VersionConfig} from '../../src/sim/config/types.js'
import {DeployController} from '../../src/sim/deploy/deploy-controller.js'
import type {DeployPlan, DeployRecord, DeployStep, DeployTarget} from '../../src/sim/deploy/deploy-types.js'
import type {VersionSignals} from '../../src/sim/deploy/analysis.js'
import {ScaleOwners} from '../../src/sim/deploy/scale-owners.js'
import {DeployFailed, run} from '../../src/sim/deploy/strategies.js'
import {type Timer, VirtualClock} from '../../src/sim/time/clock.js'

/** A VirtualClock that can say when its next alarm is due, so a test jumps straight to it. */
class SteppingClock extends VirtualClock {
  private readonly alarms: Array<{due: number; live: boolean}> = []

  override setTimer(ms: number, fn: () => void): Timer {
    const alarm = {due: this.now() + Math.max(0, ms), live: true}
    this.alarms.push(alarm)
    const timer = super.setTimer(ms, () => {
      alarm.live = false
      fn()
    })
    return {
      cancel: () => {
        alarm.live = false
        timer.cancel()
      },
    }
  }

  nextDue(): number | undefined {
    const live = this.alarms.filter((a) => a.live).map((a) => a.due)
    return live.length ? Math.min(...live) : undefined
  }
}

/** Every promise callback runs before a macrotask: after this, nothing moves until the clock does. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve))

/** Moves the clock alarm by alarm until `done()`; fails if everything waits on nothing. */
async function pump(clock: SteppingClock, done: () => boolean): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    await settle()
    if (done()) return
    const next = clock.nextDue()
    if (next === undefined) throw new Error(`stuck at ${clock.now()}ms: not done and no alarm pending`)
    await clock.advance(next - clock.now())
  }
  throw new Error('pump: too many alarms')
}

/** Drains a strategy's steps on the virtual clock; the error it ends with, if any. */
async function drain(clock: SteppingClock, steps: AsyncGenerator<DeployStep, void, void>) {
  const out: DeployStep[] = []
  let error: unknown
  let finished = false
  void (async () => {
    try {
      for await (const s of steps) out.push(s)
    } catch (e) {
      error = e
    } finally {
      finished = true
    }
  })()
  await pump(clock, () => finished)
  return {steps: out, error}
}

function version(name: string, replicas = 1): VersionConfig {
  return {name, replicas, env: {}, workload: {kind: 'command', command: `node ${name}.js`, cwd: '/srv/api'}}
}

function serviceConfig(versions: VersionConfig[]): ServiceConfig {
  return {
    name: 'api',
    dependsOn: [],
    health: {intervalMs: 1000, timeoutMs: 1000, healthyThreshold: 1, unhealthyThreshold: 3},
    policy: {loadBalancer: {kind: 'round-robin'}, routes: []} as unknown as ServiceConfig['policy'],
    versions,
    stopGracePeriodMs: 10_000,
  }
}

interface Instance {
  name: string
  version: string
  state: 'starting' | 'healthy' | 'leaving'
}

interface FakeOptions {
  /** Time from start to healthy. */
  startMs?: number
  /** Time an instance takes to drain after leaving the registry. */
  drainMs?: number
  /** Instances that never get healthy: addInstances rejects at its deadline (as the daemon's waitHealthy). */
  neverHealthy?: (name: string) => boolean
  stats?: (version: string, now: number) => VersionSignals
  smoke?: (instance: string) => {ok: boolean; status: number; detail: string}
  check?: (command: string, instances: string[]) => {ok: boolean; detail: string}
}

/** A mesh of one service, `api`, that records every change with its virtual time. */
class FakeTarget implements DeployTarget {
  readonly clock = new SteppingClock()
  readonly instances: Instance[] = []
  /** `at what` lines: add, healthy, drain, stop, weights, route. */
  readonly log: string[] = []
  /** How many instances took traffic after each change (healthy, in the registry, version weighted > 0). */
  readonly serving: number[] = []
  /** How many processes existed after each change (starting and draining ones too). */
  readonly sizes: number[] = []
  readonly routes: Array<{header: string; version: string}> = []
  /** The version every request is mirrored to, while a canary mirrors. */
  mirror: string | undefined = undefined
  readonly setWeightsCalls: Array<Record<string, number>> = []
  /** Whose each version's count is, as the daemon's autoscaler reads it. */
  readonly owners = new ScaleOwners()
  /** `at hold|release|retire versions`: who set the counts when (apart from `log`). */
  readonly ownership: string[] = []
  private current: Map<string, number>
  private readonly next = new Map<string, number>()
  private readonly svc: ServiceConfig

  constructor(
    initial: Record<string, number>,
    versions: VersionConfig[],
    private readonly opts: FakeOptions = {},
  ) {
    this.svc = serviceConfig(versions)
    this.current = new Map(Object.entries(initial))
    for (const [v, w] of this.current) {
      if (w <= 0) continue
      const config = versions.find((x) => x.name === v)!
      for (let i = 0; i < config.replicas; i++) this.instances.push({name: this.nameFor(v), version: v, state: 'healthy'})
    }
    this.observe()
  }

  service(name: string): ServiceConfig {
    expect(name).toBe('api')
    return this.svc
  }

  instancesOf(_service: string, version?: string): string[] {
    return this.instances.filter((i) => i.state !== 'leaving' && (!version || i.version === version)).map((i) => i.name)
  }

  async addInstances(_service: ServiceConfig, v: VersionConfig, count: number, timeoutMs: number, signal?: AbortSignal): Promise<string[]> {
    const created: Instance[] = []
    for (let i = 0; i < count; i++) created.push({name: this.nameFor(v.name), version: v.name, state: 'starting'})
    this.instances.push(...created)
    this.note(`add ${created.map((i) => i.name).join(',')}`)
    const bad = created.find((i) => this.opts.neverHealthy?.(i.name))
    if (bad) {
      await this.clock.sleep(timeoutMs, signal)
      throw new Error(`instance ${bad.name} did not become healthy within ${timeoutMs / 1000}s`)
    }
    await this.clock.sleep(this.opts.startMs ?? 500, signal)
    for (const i of created) i.state = 'healthy'
    this.note(`healthy ${created.map((i) => i.name).join(',')}`)
    return created.map((i) => i.name)
  }

  async removeInstance(name: string): Promise<void> {
    const inst = this.instances.find((i) => i.name === name)
    if (!inst || inst.state === 'leaving') return
    inst.state = 'leaving'
    this.note(`drain ${name}`)
    await this.clock.sleep(this.opts.drainMs ?? 200)
    this.instances.splice(this.instances.indexOf(inst), 1)
    this.note(`stop ${name}`)
  }

  async holdCounts(service: string, versions: string[]): Promise<() => void> {
    const release = this.owners.hold(service, versions)
    this.ownership.push(`${this.clock.now()} hold ${versions.join(',')}`)
    let done = false
    return () => {
      if (done) return
      done = true
      release()
      this.ownership.push(`${this.clock.now()} release ${versions.join(',')}`)
    }
  }

  retire(service: string, versions: string[]): void {
    this.owners.retire(service, versions)
    this.ownership.push(`${this.clock.now()} retire ${versions.join(',')}`)
  }

  weights(): Map<string, number> {
    return new Map(this.current)
  }

  setWeights(_service: string, weights: Map<string, number>): void {
    this.current = new Map(weights)
    const rounded = Object.fromEntries([...weights].map(([v, w]) => [v, round(w)]))
    this.setWeightsCalls.push(rounded)
    this.note(`weights ${[...weights].map(([v, w]) => `${v}=${round(w)}`).join(' ')}`)
  }

  addRoute(_service: string, header: {name: string; value: string}, v: string): () => void {
    const route = {header: `${header.name}=${header.value}`, version: v}
    this.routes.push(route)
    this.note(`route+ ${route.header}→${v}`)
    return () => {
      const at = this.routes.indexOf(route)
      if (at < 0) return
      this.routes.splice(at, 1)
      this.note(`route- ${route.header}`)
    }
  }

  notStarted(): string | undefined {
    return undefined
  }

  addMirror(_service: string, v: string): () => void {
    this.note(`mirror+ ${v}`)
    this.mirror = v
    return () => {
      this.mirror = undefined
      this.note(`mirror- ${v}`)
    }
  }

  versionStats(_service: string, v: string): VersionSignals {
    return this.opts.stats?.(v, this.clock.now()) ?? {requests: 0}
  }

  async smoke(instance: string): Promise<{ok: boolean; status: number; detail: string}> {
    this.note(`smoke ${instance}`)
    return this.opts.smoke?.(instance) ?? {ok: true, status: 200, detail: 'HTTP 200'}
  }

  async check(command: string, instances: string[]): Promise<{ok: boolean; detail: string}> {
    this.note(`check ${instances.join(',')}`)
    return this.opts.check?.(command, instances) ?? {ok: true, detail: `\`${command}\`: exit 0`}
  }

  /** Current weights, rounded, for assertions. */
  weightsNow(): Record<string, number> {
    return Object.fromEntries([...this.current].map(([v, w]) => [v, round(w)]))
  }

  names(version?: string): string[] {
    return this.instances.filter((i) => !version || i.version === version).map((i) => i.name)
  }

  private nameFor(v: string): string {
    const n = this.next.get(v) ?? 0
    this.next.set(v, n + 1)
    return `api-${v}-${n}`
  }

  private note(what: string): void {
    this.log.push(`${this.clock.now()} ${what}`)
    this.observe()
  }

  private observe(): void {
    this.sizes.push(this.instances.length)
    this.serving.push(this.instances.filter((i) => i.state === 'healthy' && (this.current.get(i.version) ?? 0) > 0).length)
  }
}

const round = (x: number) => Math.round(x * 100) / 100

function rollingPlan(extra: Partial<DeployPlan> = {}): DeployPlan {
  return {service: 'api', to: 'v2', strategy: 'rolling', rolling: {maxSurge: 1, maxUnavailable: 0}, progressDeadlineMs: 5000, ...extra}
}

function blueGreenPlan(extra: Partial<DeployPlan['blueGreen']> = {}): DeployPlan {
  return {service: 'api', to: 'v2', strategy: 'blue-green', blueGreen: {keepMs: 60_000, ...extra}, progressDeadlineMs: 5000}
}

function canaryPlan(extra: Partial<NonNullable<DeployPlan['canary']>> = {}): DeployPlan {
  return {
    service: 'api',
    to: 'v2',
    strategy: 'canary',
    canary: {steps: [5, 25, 50, 100], intervalMs: 10_000, maxErrorRate: 0.01, compareToPrimary: false, failureThreshold: 2, minRequests: 20, ...extra},
    progressDeadlineMs: 5000,
  }
}

const never = new AbortController().signal
const summary = (steps: DeployStep[]) => steps.map((s) => (s.weights ? `${s.kind} ${JSON.stringify(roundAll(s.weights))}` : s.kind))
const roundAll = (w: Record<string, number>) => Object.fromEntries(Object.entries(w).map(([v, x]) => [v, round(x)]))

describe('rolling', () => {
  test('3 → 3 with maxSurge 1: one new instance healthy before each old one drains; traffic follows instance counts', async () => {
    const target = new FakeTarget({v1: 100}, [version('v1', 3), version('v2', 3)])
    const {steps, error} = await drain(target.clock, run(rollingPlan(), target, version('v2', 3), never))

    expect(error).toBeUndefined()
    expect(summary(steps)).toEqual([
      'start',
      'scale-up {"v1":75,"v2":25}',
      'scale-down {"v1":66.67,"v2":33.33}',
      'scale-up {"v1":50,"v2":50}',
      'scale-down {"v1":33.33,"v2":66.67}',
      'scale-up {"v1":25,"v2":75}',
      'scale-down {"v1":0,"v2":100}',
      'done {"v2":100}',
    ])
    // Start 500 ms, drain 200 ms: each old instance leaves only after its replacement is healthy.
    expect(target.log).toEqual([
      '0 add api-v2-0',
      '500 healthy api-v2-0',
      '500 weights v1=75 v2=25',
      '500 drain api-v1-0',
      '700 stop api-v1-0',
      '700 weights v1=66.67 v2=33.33',
      '700 add api-v2-1',
      '1200 healthy api-v2-1',
      '1200 weights v1=50 v2=50',
      '1200 drain api-v1-1',
      '1400 stop api-v1-1',
      '1400 weights v1=33.33 v2=66.67',
      '1400 add api-v2-2',
      '1900 healthy api-v2-2',
      '1900 weights v1=25 v2=75',
      '1900 drain api-v1-2',
      '2100 stop api-v1-2',
      '2100 weights v1=0 v2=100',
      '2100 weights v2=100',
    ])
    expect(Math.min(...target.serving)).toBe(3)
    // maxSurge 1: never more than 4 processes, the drained one included.
    expect(Math.max(...target.sizes)).toBe(4)
    expect(target.names()).toEqual(['api-v2-0', 'api-v2-1', 'api-v2-2'])
    expect(target.weightsNow()).toEqual({v2: 100})
  })

  test('maxSurge 3 brings every new instance up at once, then drains the old ones', async () => {
    const target = new FakeTarget({v1: 100}, [version('v1', 3), version('v2', 3)])
    const {steps, error} = await drain(target.clock, run(rollingPlan({rolling: {maxSurge: 3, maxUnavailable: 0}}), target, version('v2', 3), never))

    expect(error).toBeUndefined()
    expect(summary(steps)).toEqual([
      'start',
      'scale-up {"v1":50,"v2":50}',
      'scale-down {"v1":40,"v2":60}',
      'scale-down {"v1":25,"v2":75}',
      'scale-down {"v1":0,"v2":100}',
      'done {"v2":100}',
    ])
    expect(target.log[0]).toBe('0 add api-v2-0,api-v2-1,api-v2-2')
    expect(Math.min(...target.serving)).toBe(3)
  })

  test('maxSurge 0, maxUnavailable 1: an old instance goes first, never more than 3 processes, never fewer than 2 serving', async () => {
    const target = new FakeTarget({v1: 100}, [version('v1', 3), version('v2', 3)])
    const {steps, error} = await drain(target.clock, run(rollingPlan({rolling: {maxSurge: 0, maxUnavailable: 1}}), target, version('v2', 3), never))

    expect(error).toBeUndefined()
    expect(summary(steps)).toEqual([
      'start',
      'scale-down {"v1":100,"v2":0}',
      'scale-up {"v1":66.67,"v2":33.33}',
      'scale-down {"v1":50,"v2":50}',
      'scale-up {"v1":33.33,"v2":66.67}',
      'scale-down {"v1":0,"v2":100}',
      'scale-up {"v1":0,"v2":100}',
      'done {"v2":100}',
    ])
    expect(target.log[0]).toBe('0 drain api-v1-0')
    expect(Math.max(...target.sizes)).toBe(3)
    expect(Math.min(...target.serving)).toBe(2)
    expect(target.names()).toEqual(['api-v2-0', 'api-v2-1', 'api-v2-2'])
  })

  test('maxSurge 1, maxUnavailable 1: two old instances go per new one while there is room', async () => {
    const target = new FakeTarget({v1: 100}, [version('v1', 3), version('v2', 3)])
    const {steps, error} = await drain(target.clock, run(rollingPlan({rolling: {maxSurge: 1, maxUnavailable: 1}}), target, version('v2', 3), never))

    expect(error).toBeUndefined()
    expect(summary(steps).map((s) => s.split(' ')[0])).toEqual(['start', 'scale-up', 'scale-down', 'scale-down', 'scale-up', 'scale-down', 'done'])
    expect(Math.max(...target.sizes)).toBe(4)
    expect(Math.min(...target.serving)).toBe(2)
  })

  test('a plan with maxSurge 0 and maxUnavailable 0 (which the flags refuse) fails instead of spinning', async () => {
    const target = new FakeTarget({v1: 100}, [version('v1', 2), version('v2', 2)])
    const {steps, error} = await drain(target.clock, run(rollingPlan({rolling: {maxSurge: 0, maxUnavailable: 0}}), target, version('v2', 2), never))

    expect((error as DeployFailed).message).toBe('maxSurge 0 and maxUnavailable 0 leave no room to make progress')
    expect(summary(steps)).toEqual(['start', 'rollback {"v1":100}'])
    expect(target.names()).toEqual(['api-v1-0', 'api-v1-1'])
  })

  test('a new version that never gets healthy: rollback step, its instances removed, old weights restored, DeployFailed(rolledBack)', async () => {
    const target = new FakeTarget({v1: 100}, [version('v1', 3), version('v2', 3)], {neverHealthy: (n) => n.startsWith('api-v2')})
    const {steps, error} = await drain(target.clock, run(rollingPlan(), target, version('v2', 3), never))

    expect(error).toBeInstanceOf(DeployFailed)
    expect((error as DeployFailed).rolledBack).toBe(true)
    expect((error as DeployFailed).message).toMatch(/api-v2-0 did not become healthy within 5s/)
    expect(summary(steps)).toEqual(['start', 'rollback {"v1":100}'])
    // The instance that failed its deadline is the caller's to remove (addInstances does not).
    expect(target.names('v2')).toEqual([])
    expect(target.names('v1')).toEqual(['api-v1-0', 'api-v1-1', 'api-v1-2'])
    expect(target.weightsNow()).toEqual({v1: 100})
    expect(Math.min(...target.serving)).toBe(3)
  })

  test('failing half-way: the old version is brought back to its size before the new instances go', async () => {
    // api-v2-0 is healthy (so api-v1-0 has drained); api-v2-1 never is.
    const target = new FakeTarget({v1: 100}, [version('v1', 3), version('v2', 3)], {neverHealthy: (n) => n === 'api-v2-1'})
    const {steps, error} = await drain(target.clock, run(rollingPlan(), target, version('v2', 3), never))

    expect((error as DeployFailed).rolledBack).toBe(true)
    expect(summary(steps)).toEqual(['start', 'scale-up {"v1":75,"v2":25}', 'scale-down {"v1":66.67,"v2":33.33}', 'rollback {"v1":100}'])
    expect(target.names('v2')).toEqual([])
    expect(target.instancesOf('api', 'v1')).toHaveLength(3)
    expect(target.weightsNow()).toEqual({v1: 100})
    // Never below the size the service had: the replacement v1 is healthy before v2 leaves.
    expect(Math.min(...target.serving)).toBe(3)
  })
})

describe('blue-green', () => {
  test('all green healthy, smoke-checked one by one, one switch to 100%, blue kept for --keep, then drained', async () => {
    const target = new FakeTarget({v1: 100}, [version('v1', 2), version('v2', 2)])
    const {steps, error} = await drain(
      target.clock,
      run({...blueGreenPlan({keepMs: 60_000, smoke: {method: 'GET', path: '/healthz'}})}, target, version('v2', 2), never),
    )

    expect(error).toBeUndefined()
    expect(summary(steps)).toEqual(['start', 'scale-up', 'smoke', 'switch {"v2":100}', 'keep', 'done'])
    expect(target.log).toEqual([
      '0 add api-v2-0,api-v2-1',
      '500 healthy api-v2-0,api-v2-1',
      '500 smoke api-v2-0',
      '500 smoke api-v2-1',
      '500 weights v2=100',
      // blue stays, idle but up, for the whole keep so a rollback is instant
      '60500 drain api-v1-0',
      '60700 stop api-v1-0',
      '60700 drain api-v1-1',
      '60900 stop api-v1-1',
    ])
    // One switch, straight from blue to 100% green: no intermediate weights.
    expect(target.setWeightsCalls).toEqual([{v2: 100}])
    expect(Math.min(...target.serving)).toBe(2)
    expect(target.names()).toEqual(['api-v2-0', 'api-v2-1'])
  })

  test('a failed smoke check aborts before the switch: green removed, blue serving throughout', async () => {
    const target = new FakeTarget({v1: 100}, [version('v1', 2), version('v2', 2)], {
      smoke: (n) => (n === 'api-v2-1' ? {ok: false, status: 500, detail: 'HTTP 500'} : {ok: true, status: 200, detail: 'HTTP 200'}),
    })
    const {steps, error} = await drain(target.clock, run(blueGreenPlan({smoke: {method: 'GET', path: '/healthz'}}), target, version('v2', 2), never))

    expect(error).toBeInstanceOf(DeployFailed)
    expect((error as DeployFailed).rolledBack).toBe(true)
    expect((error as Error).message).toBe('smoke check GET /healthz on api-v2-1: HTTP 500')
    expect(summary(steps)).toEqual(['start', 'scale-up', 'rollback'])
    expect(steps.at(-1)!.message).toMatch(/blue keeps serving/)
    expect(target.setWeightsCalls).toEqual([{v1: 100}])
    expect(target.names()).toEqual(['api-v1-0', 'api-v1-1'])
    expect(Math.min(...target.serving)).toBe(2)
  })

  test('--check runs once green is healthy and after the smoke check; a failing one aborts before the switch', async () => {
    const ok = new FakeTarget({v1: 100}, [version('v1', 2), version('v2', 2)])
    const passed = await drain(ok.clock, run({...blueGreenPlan({smoke: {method: 'GET', path: '/healthz'}}), check: 'npm run e2e'}, ok, version('v2', 2), never))
    expect(passed.error).toBeUndefined()
    expect(summary(passed.steps)).toEqual(['start', 'scale-up', 'smoke', 'check', 'switch {"v2":100}', 'keep', 'done'])
    expect(passed.steps[3].message).toBe('acceptance check passed: `npm run e2e`: exit 0')
    expect(ok.log.filter((l) => / check /.test(l))).toEqual(['500 check api-v2-0,api-v2-1'])

    const failing = new FakeTarget({v1: 100}, [version('v1', 2), version('v2', 2)], {check: () => ({ok: false, detail: '`npm run e2e`: exit 1 (1 failing)'})})
    const {steps, error} = await drain(failing.clock, run({...blueGreenPlan(), check: 'npm run e2e'}, failing, version('v2', 2), never))
    expect((error as DeployFailed).rolledBack).toBe(true)
    expect((error as Error).message).toBe('acceptance check failed before any traffic moved: `npm run e2e`: exit 1 (1 failing)')
    expect(summary(steps)).toEqual(['start', 'scale-up', 'rollback'])
    expect(failing.setWeightsCalls).toEqual([{v1: 100}])
    expect(failing.names()).toEqual(['api-v1-0', 'api-v1-1'])
  })

  test('green that never gets healthy: nothing switched, green removed', async () => {
    const target = new FakeTarget({v1: 100}, [version('v1', 2), version('v2', 2)], {neverHealthy: (n) => n === 'api-v2-1'})
    const {steps, error} = await drain(target.clock, run(blueGreenPlan(), target, version('v2', 2), never))

    expect((error as DeployFailed).rolledBack).toBe(true)
    expect(summary(steps)).toEqual(['start', 'rollback'])
    expect(target.names()).toEqual(['api-v1-0', 'api-v1-1'])
    expect(target.weightsNow()).toEqual({v1: 100})
  })

  test('aborted while green is starting: green goes at once, not at the progress deadline; nothing switched', async () => {
    const target = new FakeTarget({v1: 100}, [version('v1', 2), version('v2', 2)], {neverHealthy: (n) => n === 'api-v2-1'})
    const abort = new AbortController()
    target.clock.setTimer(1000, () => abort.abort(new Error('mesh rollback')))
    const {steps, error} = await drain(target.clock, run(blueGreenPlan(), target, version('v2', 2), abort.signal))

    expect(error).toMatchObject({message: 'mesh rollback', rolledBack: true})
    expect(summary(steps)).toEqual(['start', 'rollback'])
    expect(target.log.filter((l) => /api-v2/.test(l))).toEqual(['0 add api-v2-0,api-v2-1', '1000 drain api-v2-0', '1200 stop api-v2-0', '1200 drain api-v2-1', '1400 stop api-v2-1'])
    expect(target.weightsNow()).toEqual({v1: 100})
  })
})

describe('canary', () => {
  const healthy = (): VersionSignals => ({requests: 100, successRate: 1, p99Ms: 10})

  test('--check runs on the healthy canary before any traffic; a failing one rolls back with no weight ever moved', async () => {
    const target = new FakeTarget({v1: 100}, [version('v1', 2), version('v2', 1)], {stats: healthy, check: () => ({ok: false, detail: '`./acceptance.sh`: exit 2'})})
    const {steps, error} = await drain(target.clock, run({...canaryPlan(), check: './acceptance.sh'}, target, version('v2', 1), never))
    expect(error).toMatchObject({rolledBack: true, message: 'acceptance check failed before any traffic moved: `./acceptance.sh`: exit 2'})
    expect(summary(steps)).toEqual(['start', 'scale-up', 'rollback {"v1":100}'])
    expect(target.setWeightsCalls).toEqual([{v1: 100}])
    expect(target.names()).toEqual(['api-v1-0', 'api-v1-1'])
    expect(target.log.filter((l) => / check /.test(l))).toEqual(['500 check api-v2-0'])
  })

  test('steps 5/25/50/100 with passing analyses: promoted, primary drained, canary at the primary size first', async () => {
    const target = new FakeTarget({v1: 100}, [version('v1', 2), version('v2', 1)], {stats: healthy})
    const {steps, error} = await drain(target.clock, run(canaryPlan(), target, version('v2', 1), never))

    expect(error).toBeUndefined()
    expect(summary(steps)).toEqual([
      'start',
      'scale-up',
      'weights {"v1":95,"v2":5}',
      'analysis',
      'weights {"v1":75,"v2":25}',
      'analysis',
      'weights {"v1":50,"v2":50}',
      'analysis',
      'scale-up',
      'weights {"v1":0,"v2":100}',
      'promote {"v2":100}',
    ])
    expect(target.log.slice(-8)).toEqual([
      '30500 add api-v2-1',
      '31000 healthy api-v2-1',
      '31000 weights v1=0 v2=100',
      '31000 weights v2=100',
      '31000 drain api-v1-0',
      '31200 stop api-v1-0',
      '31200 drain api-v1-1',
      '31400 stop api-v1-1',
    ])
    expect(steps.filter((s) => s.kind === 'analysis').map((s) => [s.at, s.analysis!.verdict])).toEqual([
      [iso(10_500), 'pass'],
      [iso(20_500), 'pass'],
      [iso(30_500), 'pass'],
    ])
    expect(target.names()).toEqual(['api-v2-0', 'api-v2-1'])
    expect(target.weightsNow()).toEqual({v2: 100})
    // The canary is never left with all the traffic on fewer instances than the primary had.
    expect(Math.min(...target.serving)).toBe(2)
    // Its count is the deploy's while created and while sized for 100%; the primary's while it is stopped.
    expect(target.ownership).toEqual([
      '0 hold v2',
      '500 release v2',
      '30500 hold v2',
      '31000 release v2',
      '31000 hold v1',
      '31400 retire v1',
      '31400 release v1',
    ])
  })

  test('failing analyses (failureThreshold 2): rolled back at the step it failed, weights restored, canary removed', async () => {
    const target = new FakeTarget({v1: 100}, [version('v1', 2), version('v2', 1)], {
      stats: (v) => (v === 'v2' ? {requests: 100, successRate: 0.8, p99Ms: 10} : {requests: 1900, successRate: 1, p99Ms: 10}),
    })
    const {steps, error} = await drain(target.clock, run(canaryPlan(), target, version('v2', 1), never))

    expect(error).toBeInstanceOf(DeployFailed)
    expect((error as DeployFailed).rolledBack).toBe(true)
    expect(summary(steps)).toEqual(['start', 'scale-up', 'weights {"v1":95,"v2":5}', 'analysis', 'analysis', 'rollback {"v1":100}'])
    const analyses = steps.filter((s) => s.kind === 'analysis')
    expect(analyses.map((s) => s.analysis!.verdict)).toEqual(['fail', 'fail'])
    expect(analyses[0].analysis!.reasons).toEqual(['error rate 20.0% > 1.00%'])
    expect(analyses.map((s) => s.message)).toEqual([
      'at 5%: fail — error rate 20.0% > 1.00% (1/2)',
      'at 5%: fail — error rate 20.0% > 1.00% (2/2)',
    ])
    expect(target.weightsNow()).toEqual({v1: 100})
    expect(target.names()).toEqual(['api-v1-0', 'api-v1-1'])
    // Traffic leaves the canary before it drains.
    const log = target.log.join('\n')
    expect(log.indexOf('weights v1=100')).toBeLessThan(log.indexOf('drain api-v2-0'))
    expect(target.ownership.slice(-3)).toEqual(['20500 hold v2', '20700 retire v2', '20700 release v2'])
    expect(target.owners.owner('api', 'v2')).toBe('retired')
  })

  test('a pass between two failures resets the count: promoted', async () => {
    let n = 0
    const target = new FakeTarget({v1: 100}, [version('v1', 1), version('v2', 1)], {
      stats: (v) => (v === 'v2' ? (n++ % 2 === 0 ? {requests: 100, successRate: 0.5} : healthy()) : healthy()),
    })
    const {steps, error} = await drain(target.clock, run(canaryPlan({steps: [50, 100]}), target, version('v2', 1), never))

    expect(error).toBeUndefined()
    expect(steps.filter((s) => s.kind === 'analysis').map((s) => s.analysis!.verdict)).toEqual(['fail', 'pass'])
    expect(steps.at(-1)!.kind).toBe('promote')
  })

  test('too few canary requests is inconclusive, counts as a failure and never promotes', async () => {
    const target = new FakeTarget({v1: 100}, [version('v1', 1), version('v2', 1)], {stats: () => ({requests: 5, successRate: 1, p99Ms: 3})})
    const {steps, error} = await drain(target.clock, run(canaryPlan(), target, version('v2', 1), never))

    expect((error as DeployFailed).rolledBack).toBe(true)
    const analyses = steps.filter((s) => s.kind === 'analysis').map((s) => s.analysis!)
    expect(analyses.map((a) => a.verdict)).toEqual(['inconclusive', 'inconclusive'])
    expect(analyses[0].reasons[0]).toMatch(/only 5 canary requests in the interval \(need 20\); use --load/)
    expect(steps.some((s) => s.kind === 'promote')).toBe(false)
    expect(target.weightsNow()).toEqual({v1: 100})
    expect(target.names()).toEqual(['api-v1-0'])
  })

  test('--match: the header route comes first for one interval, stays through the weights and goes at promotion', async () => {
    const target = new FakeTarget({v1: 100}, [version('v1', 1), version('v2', 1)], {stats: healthy})
    const {steps, error} = await drain(target.clock, run(canaryPlan({steps: [50, 100], match: {name: 'x-canary', value: 'true'}}), target, version('v2', 1), never))

    expect(error).toBeUndefined()
    expect(summary(steps)).toEqual(['start', 'scale-up', 'weights', 'analysis', 'weights {"v1":50,"v2":50}', 'analysis', 'weights {"v1":0,"v2":100}', 'promote {"v2":100}'])
    expect(steps[2].message).toBe('only requests with x-canary: true go to v2')
    expect(steps[3].message).toMatch(/^x-canary=true: pass/)
    const routeLines = target.log.filter((l) => / route[+-] /.test(l))
    expect(routeLines).toEqual(['500 route+ x-canary=true→v2', expect.stringMatching(/^20500 route- x-canary=true$/)])
    expect(target.routes).toEqual([])
  })

  test('--mirror: a copy of every request goes to the canary for one interval before any weight moves; the mirror goes before the first weight', async () => {
    const target = new FakeTarget({v1: 100}, [version('v1', 1), version('v2', 1)], {stats: healthy})
    const {steps, error} = await drain(target.clock, run(canaryPlan({steps: [50, 100], mirror: true}), target, version('v2', 1), never))

    expect(error).toBeUndefined()
    expect(summary(steps)).toEqual(['start', 'scale-up', 'weights', 'analysis', 'weights {"v1":50,"v2":50}', 'analysis', 'weights {"v1":0,"v2":100}', 'promote {"v2":100}'])
    expect(steps[2].message).toBe('a copy of every request goes to v2 (mirrored: its answers are discarded)')
    expect(steps[3].message).toMatch(/^mirrored: pass/)
    const lines = target.log.filter((l) => / mirror[+-] | weights /.test(l)).map((l) => l.replace(/^\d+ /, ''))
    expect(lines).toEqual(['mirror+ v2', 'mirror- v2', 'weights v1=50 v2=50', 'weights v1=0 v2=100', 'weights v2=100'])
    expect(target.mirror).toBeUndefined()
  })

  test('--mirror phase failing: the mirror goes, the canary is removed, weights never moved — no caller saw the canary', async () => {
    const target = new FakeTarget({v1: 100}, [version('v1', 1), version('v2', 1)], {stats: (v) => (v === 'v2' ? {requests: 50, successRate: 0} : {requests: 50, successRate: 1})})
    const {steps, error} = await drain(target.clock, run(canaryPlan({mirror: true}), target, version('v2', 1), never))

    expect((error as DeployFailed).rolledBack).toBe(true)
    expect(summary(steps)).toEqual(['start', 'scale-up', 'weights', 'analysis', 'analysis', 'rollback {"v1":100}'])
    expect(target.mirror).toBeUndefined()
    expect(target.setWeightsCalls).toEqual([{v1: 100}])
    expect(target.names()).toEqual(['api-v1-0'])
  })

  test('--match phase failing: route removed, weights never moved', async () => {
    const target = new FakeTarget({v1: 100}, [version('v1', 1), version('v2', 1)], {stats: () => ({requests: 50, successRate: 0.5})})
    const {steps, error} = await drain(target.clock, run(canaryPlan({match: {name: 'x-canary', value: 'true'}}), target, version('v2', 1), never))

    expect((error as DeployFailed).rolledBack).toBe(true)
    expect(summary(steps)).toEqual(['start', 'scale-up', 'weights', 'analysis', 'analysis', 'rollback {"v1":100}'])
    expect(target.routes).toEqual([])
    expect(target.setWeightsCalls).toEqual([{v1: 100}])
    expect(target.names()).toEqual(['api-v1-0'])
  })

  test('a canary that never gets healthy is removed; the primary never lost traffic', async () => {
    const target = new FakeTarget({v1: 100}, [version('v1', 1), version('v2', 1)], {neverHealthy: () => true})
    const {steps, error} = await drain(target.clock, run(canaryPlan(), target, version('v2', 1), never))

    expect((error as DeployFailed).rolledBack).toBe(true)
    expect(summary(steps)).toEqual(['start', 'rollback {"v1":100}'])
    expect(target.names()).toEqual(['api-v1-0'])
  })

  test('compare-to-primary: a canary as bad as a bad primary passes', async () => {
    const target = new FakeTarget({v1: 100}, [version('v1', 1), version('v2', 1)], {
      stats: (v) => (v === 'v2' ? {requests: 100, successRate: 0.9, p99Ms: 20} : {requests: 1000, successRate: 0.9, p99Ms: 20}),
    })
    const {steps, error} = await drain(target.clock, run(canaryPlan({steps: [50, 100], compareToPrimary: true}), target, version('v2', 1), never))

    expect(error).toBeUndefined()
    expect(steps.find((s) => s.kind === 'analysis')!.analysis!.primary).toEqual({requests: 1000, successRate: 0.9, p99Ms: 20})
  })
})

const iso = (ms: number) => new Date(1_700_000_000_000 + ms).toISOString()

describe('restart', () => {
  const restartPlan = (extra: Partial<DeployPlan> = {}): DeployPlan => ({service: 'api', to: 'v1', strategy: 'restart', progressDeadlineMs: 5000, ...extra})

  test('every instance replaced one at a time, each replacement healthy first; weights never touched, capacity never below 2', async () => {
    const target = new FakeTarget({v1: 100}, [version('v1', 2)])
    const {steps, error} = await drain(target.clock, run(restartPlan(), target, version('v1', 2), never))

    expect(error).toBeUndefined()
    expect(steps.map((s) => `${s.kind} ${s.message}`)).toEqual([
      'start restart api (v1): 2 instances, each replacement healthy before the old one is drained',
      'scale-up api-v1-2 healthy, replacing api-v1-0',
      'scale-down api-v1-0 drained and stopped',
      'scale-up api-v1-3 healthy, replacing api-v1-1',
      'scale-down api-v1-1 drained and stopped',
      'done api: 2 instances restarted',
    ])
    expect(target.setWeightsCalls).toEqual([])
    expect(target.names()).toEqual(['api-v1-2', 'api-v1-3'])
    expect(Math.min(...target.serving)).toBe(2)
    expect(Math.max(...target.sizes)).toBe(3)
    // The restarted version's count is the deploy's throughout; nothing is retired.
    expect(target.ownership).toEqual(['0 hold v1', '1400 release v1'])
  })

  test('both versions of a split service are restarted, each with its own version; or only the ones named', async () => {
    const target = new FakeTarget({v1: 80, v2: 20}, [version('v1', 1), version('v2', 1)])
    const {error} = await drain(target.clock, run(restartPlan({to: ''}), target, version('v1', 1), never))

    expect(error).toBeUndefined()
    expect(target.names('v1')).toEqual(['api-v1-1'])
    expect(target.names('v2')).toEqual(['api-v2-1'])
    expect(target.weightsNow()).toEqual({v1: 80, v2: 20})

    const only = await drain(target.clock, run(restartPlan({to: 'v2'}), target, version('v2', 1), never))
    expect(only.error).toBeUndefined()
    expect(target.names()).toEqual(['api-v1-1', 'api-v2-2'])
  })

  test('a replacement that never gets healthy stops the restart: the rest keep serving as before', async () => {
    const target = new FakeTarget({v1: 100}, [version('v1', 3)], {neverHealthy: (n) => n === 'api-v1-4'})
    const {steps, error} = await drain(target.clock, run(restartPlan(), target, version('v1', 3), never))

    expect(error).toBeInstanceOf(DeployFailed)
    expect((error as DeployFailed).rolledBack).toBe(false)
    expect((error as Error).message).toBe('instance api-v1-4 did not become healthy within 5s; 1 of 3 restarted, the others still run as before')
    expect(steps.map((s) => s.kind)).toEqual(['start', 'scale-up', 'scale-down'])
    // The fake leaves removing the failed one to the daemon's addInstances; what served before still serves.
    expect(target.instancesOf('api', 'v1').filter((n) => n !== 'api-v1-4')).toEqual(['api-v1-1', 'api-v1-2', 'api-v1-3'])
    expect(Math.min(...target.serving)).toBe(3)
  })

  test('the controller names the versions it restarts, refuses a rollback mid-restart, and a later rollback skips restarts', async () => {
    const target = new FakeTarget({v1: 100}, [version('v1', 2), version('v2', 2)])
    const c = new DeployController(target, {onStep: () => undefined})
    const deploy = c.start(blueGreenPlan({keepMs: 1000}))
    await pump(target.clock, () => deploy.outcome !== 'running')

    const record = c.start({service: 'api', to: '', strategy: 'restart', progressDeadlineMs: 5000})
    expect(record.plan.to).toBe('v2')
    expect(record.from).toEqual(['v2'])
    await expect(c.rollback('api')).rejects.toThrow(/a restart of "api" is in progress \(d2\)/)
    await pump(target.clock, () => record.outcome !== 'running')
    expect(record.outcome).toBe('restarted')
    expect(target.names()).toEqual(['api-v2-2', 'api-v2-3'])

    // Rolling back now undoes the blue-green deploy (to v1), not the restart.
    let back: DeployRecord | undefined
    void c.rollback('api').then((r) => (back = r))
    await pump(target.clock, () => back !== undefined && back.outcome !== 'running')
    expect(back!.plan).toMatchObject({strategy: 'rolling', to: 'v1'})
    expect(target.weightsNow()).toEqual({v1: 100})
  })

  test('a service with nothing the mesh runs (address:) cannot be restarted', () => {
    const target = new FakeTarget({v1: 100}, [{name: 'v1', replicas: 1, env: {}, workload: {kind: 'address', host: '127.0.0.1', port: 5432}}])
    const c = new DeployController(target, {onStep: () => undefined})
    expect(() => c.start({service: 'api', to: '', strategy: 'restart', progressDeadlineMs: 5000})).toThrow(/has no instance the mesh runs/)
  })
})

describe('DeployController', () => {
  function controller(target: FakeTarget) {
    const seen: string[] = []
    const c = new DeployController(target, {onStep: (r, s) => seen.push(`${r.id} ${s.kind}`)})
    return {c, seen}
  }
  const finished = (r: DeployRecord) => () => r.outcome !== 'running'

  test('a canary of a protocol: tcp service is refused (its analysis reads requests); a rollout is not', () => {
    const target = new FakeTarget({v1: 100}, [version('v1', 1), version('v2', 1)])
    target.service('api').protocol = 'tcp'
    const {c} = controller(target)
    expect(() => c.start(canaryPlan())).toThrow(expect.objectContaining({code: 'MESH_BAD_FLAG', message: expect.stringContaining('"api" is protocol: tcp')}))
    expect(c.start(blueGreenPlan()).outcome).toBe('running')
  })

  test('a blue-green deploy runs to the end: promoted, steps recorded and reported', async () => {
    const target = new FakeTarget({v1: 100}, [version('v1', 2), version('v2', 2)])
    const {c, seen} = controller(target)
    const record = c.start(blueGreenPlan({keepMs: 5000}))
    await settle()
    expect(c.inProgress('api')).toBe('blue-green → v2: start')
    await pump(target.clock, finished(record))

    expect(record.outcome).toBe('promoted')
    expect(record.from).toEqual(['v1'])
    expect(record.endedAt).toBe(iso(5900))
    expect(seen).toEqual(['d1 start', 'd1 scale-up', 'd1 switch', 'd1 keep', 'd1 done'])
    expect(c.inProgress('api')).toBeUndefined()
    expect(c.history('api')).toEqual([record])
    expect(c.get('d1')).toBe(record)
  })

  test('a version with no traffic says why: waiting for a deploy, held by a running one (not promoted yet), replaced, rolled back', async () => {
    const target = new FakeTarget({v1: 100}, [version('v1', 2), version('v2', 2)])
    const {c} = controller(target)
    expect(c.heldBack('api', 'v1', 100)).toBeUndefined()
    expect(c.heldBack('api', 'v2', 0)).toBe('weight 0 in the traffic split: waiting for `mesh canary api --to v2` or `mesh rollout api --to v2` (or weights in mesh.yaml)')
    const record = c.start(blueGreenPlan({keepMs: 5000}))
    await settle()
    expect(c.heldBack('api', 'v2', 0)).toBe('held by deploy d1 (blue-green → v2, step 1: start): not promoted yet')
    expect(c.heldBack('api', 'v1', 100)).toBeUndefined()
    await pump(target.clock, finished(record))
    expect(c.heldBack('api', 'v2', 100)).toBeUndefined()
    expect(c.heldBack('api', 'v1', 0)).toBe('replaced by deploy d1 (blue-green → v2, promoted)')
    const back = c.start({...blueGreenPlan({keepMs: 5000}), to: 'v1'})
    await settle()
    const rolling = c.rollback('api')
    await pump(target.clock, finished(back))
    await rolling
    expect(back.outcome).toBe('rolled-back')
    expect(c.heldBack('api', 'v1', 0)).toBe('deploy d2 (blue-green → v1) was rolled back: `mesh history api` says why')
  })

  test('mesh rollback during blue-green keep: blue takes 100% back at once, green drained', async () => {
    const target = new FakeTarget({v1: 100}, [version('v1', 2), version('v2', 2)])
    const {c} = controller(target)
    const record = c.start(blueGreenPlan({keepMs: 60_000}))
    await pump(target.clock, () => record.steps.some((s) => s.kind === 'keep'))
    expect(c.inProgress('api')).toBe('blue-green → v2 at 100%: keep')
    await target.clock.advance(10_000)

    let rolledBack: DeployRecord | undefined
    void c.rollback('api').then((r) => (rolledBack = r))
    await pump(target.clock, () => rolledBack !== undefined)

    expect(rolledBack).toBe(record)
    expect(record.outcome).toBe('rolled-back')
    expect(record.steps.map((s) => s.kind)).toEqual(['start', 'scale-up', 'switch', 'keep', 'rollback'])
    expect(record.steps.at(-1)!.weights).toEqual({v1: 100})
    expect(target.weightsNow()).toEqual({v1: 100})
    expect(target.names()).toEqual(['api-v1-0', 'api-v1-1'])
    // The switch back came before green started draining, at the moment of the rollback.
    expect(target.log.slice(-5)).toEqual(['10500 weights v1=100', '10500 drain api-v2-0', '10700 stop api-v2-0', '10700 drain api-v2-1', '10900 stop api-v2-1'])
    expect(Math.min(...target.serving)).toBe(2)
  })

  test('mesh rollback during a canary interval with a header route: weights back, route gone, canary drained', async () => {
    const target = new FakeTarget({v1: 100}, [version('v1', 1), version('v2', 1)], {stats: () => ({requests: 100, successRate: 1})})
    const {c} = controller(target)
    const record = c.start(canaryPlan({match: {name: 'x-canary', value: 'true'}}))
    await pump(target.clock, () => record.steps.length === 3)
    expect(target.routes).toHaveLength(1)

    let done = false
    void c.rollback('api').then(() => (done = true))
    await pump(target.clock, () => done)

    expect(record.outcome).toBe('rolled-back')
    expect(target.routes).toEqual([])
    expect(target.weightsNow()).toEqual({v1: 100})
    expect(target.names()).toEqual(['api-v1-0'])
  })

  test('mesh rollback during a rolling deploy stops it: the old version back at full size', async () => {
    const target = new FakeTarget({v1: 100}, [version('v1', 3), version('v2', 3)], {startMs: 1000})
    const {c} = controller(target)
    const record = c.start(rollingPlan())
    // After the first swap: api-v2-0 healthy, api-v1-0 drained.
    await pump(target.clock, () => record.steps.filter((s) => s.kind === 'scale-down').length === 1)

    let done = false
    void c.rollback('api').then(() => (done = true))
    await pump(target.clock, () => done)

    expect(record.outcome).toBe('rolled-back')
    expect(target.weightsNow()).toEqual({v1: 100})
    expect(target.instancesOf('api', 'v2')).toEqual([])
    expect(target.instancesOf('api', 'v1')).toHaveLength(3)
    expect(Math.min(...target.serving)).toBe(3)
  })

  test('mesh rollback while a rolling step waits for a new instance that never gets healthy: no wait for the progress deadline', async () => {
    const target = new FakeTarget({v1: 100}, [version('v1', 2), version('v2', 2)], {neverHealthy: (n) => n === 'api-v2-0'})
    const {c} = controller(target)
    const record = c.start(rollingPlan({progressDeadlineMs: 600_000}))
    await pump(target.clock, () => target.names('v2').length === 1)
    await target.clock.advance(3000)

    let done = false
    void c.rollback('api').then(() => (done = true))
    await pump(target.clock, () => done)

    expect(record.outcome).toBe('rolled-back')
    expect(record.steps.map((s) => s.kind)).toEqual(['start', 'rollback', 'rollback'])
    // The new instance goes the moment the rollback comes, not at 600 s.
    expect(target.log.filter((l) => l.includes('api-v2-0'))).toEqual(['0 add api-v2-0', '3000 drain api-v2-0', '3200 stop api-v2-0'])
    expect(record.endedAt).toBe(iso(3200))
    // Nothing is left waiting on the deadline either.
    expect(target.clock.nextDue()).toBeUndefined()
    expect(target.weightsNow()).toEqual({v1: 100})
    expect(target.names()).toEqual(['api-v1-0', 'api-v1-1'])
    expect(Math.min(...target.serving)).toBe(2)
  })

  test('mesh rollback after a finished deploy rolls back to the version it replaced', async () => {
    const target = new FakeTarget({v1: 100}, [version('v1', 2), version('v2', 2)])
    const {c} = controller(target)
    const first = c.start(blueGreenPlan({keepMs: 1000}))
    await pump(target.clock, finished(first))
    expect(target.names()).toEqual(['api-v2-0', 'api-v2-1'])

    let back: DeployRecord | undefined
    void c.rollback('api').then((r) => (back = r))
    await pump(target.clock, () => back !== undefined)

    expect(back!.id).toBe('d2')
    expect(back!.plan).toMatchObject({to: 'v1', strategy: 'rolling'})
    expect(back!.outcome).toBe('promoted')
    expect(target.weightsNow()).toEqual({v1: 100})
    expect(target.instancesOf('api')).toEqual(['api-v1-2', 'api-v1-3'])
    expect(c.history('api').map((r) => [r.id, r.outcome])).toEqual([
      ['d1', 'promoted'],
      ['d2', 'promoted'],
    ])
  })

  test('refuses a second deploy of the same service, a deploy to the version already serving, and an unknown version', async () => {
    const target = new FakeTarget({v1: 100}, [version('v1', 1), version('v2', 1)])
    const {c} = controller(target)
    expect(() => c.start({...rollingPlan(), to: 'v1'})).toThrow(expect.objectContaining({code: 'MESH_DEPLOY_NOTHING_TO_REPLACE'}))
    expect(() => c.start({...rollingPlan(), to: 'v9'})).toThrow(expect.objectContaining({code: 'MESH_VERSION_NOT_FOUND'}))
    const record = c.start(rollingPlan())
    expect(() => c.start(blueGreenPlan())).toThrow(expect.objectContaining({code: 'MESH_DEPLOY_IN_PROGRESS', message: expect.stringContaining('(d1)')}))
    await pump(target.clock, finished(record))
    expect(record.outcome).toBe('promoted')
    await expect(c.rollback('nope')).rejects.toMatchObject({code: 'MESH_NOTHING_TO_ROLL_BACK'})
    expect(() => c.get('d9')).toThrow(expect.objectContaining({code: 'MESH_DEPLOY_NOT_FOUND'}))
  })

  test('a version made on the fly with overrides is deployed from the current one', async () => {
    const target = new FakeTarget({v1: 100}, [version('v1', 2)])
    const {c} = controller(target)
    const record = c.start({...rollingPlan(), to: 'v3', overrides: {command: 'node v3.js', env: {FEATURE: 'on'}}})
    await pump(target.clock, finished(record))
    expect(record.outcome).toBe('promoted')
    const v3 = target.service('api').versions.find((v) => v.name === 'v3')!
    expect(v3).toMatchObject({replicas: 2, env: {FEATURE: 'on'}, workload: {kind: 'command', command: 'node v3.js', cwd: '/srv/api'}})
    expect(target.names()).toEqual(['api-v3-0', 'api-v3-1'])
  })

  test('same plan, same steps: a deploy on the virtual clock is deterministic', async () => {
    const once = async () => {
      const target = new FakeTarget({v1: 100}, [version('v1', 2), version('v2', 1)], {stats: (v, now) => ({requests: 50 + (now % 7), successRate: 1})})
      const {steps} = await drain(target.clock, run(canaryPlan(), target, version('v2', 1), never))
      return {steps, log: target.log}
    }
    expect(await once()).toEqual(await once())
  })
})
