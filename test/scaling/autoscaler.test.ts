// The autoscaler loop on a virtual clock over a fake instance manager: what it observes,
// when it acts, what it logs. The decisions themselves are kpa.test.ts's.
import {describe, expect, it} from 'vitest'
import type {MeshConfig, ScalingConfig, ServiceConfig, VersionConfig} from '../../src/sim/config/types.js'
import {Autoscaler, type ScaleTarget, type ScalingEvent, TICK_MS} from '../../src/sim/scaling/autoscaler.js'
import {VirtualClock} from '../../src/sim/time/clock.js'

const SCALING: ScalingConfig = {
  minScale: 1,
  maxScale: 6,
  initialScale: 1,
  target: 10,
  metric: 'concurrency',
  targetUtilization: 70,
  containerConcurrency: 0,
  windowMs: 6000,
  panicWindowPercentage: 10,
  panicThresholdPercentage: 200,
  scaleToZeroGracePeriodMs: 30_000,
  scaleDownDelayMs: 0,
  maxScaleUpRate: 1000,
  maxScaleDownRate: 2,
  activatorTimeoutMs: 60_000,
  queue: 100,
}

/** Instances as names; additions and drains finish when the test says (or at once). */
class FakeManager implements ScaleTarget {
  names: string[] = ['catalog-1']
  private next = 2
  adds: number[] = []
  removed: string[] = []
  /** When set, addInstances waits for it. */
  gate?: Promise<void>
  fail?: Error
  started = true
  signals: AbortSignal[] = []

  instancesOf(): string[] {
    return [...this.names]
  }

  isStarted(): boolean {
    return this.started
  }

  async addInstances(_s: ServiceConfig, _v: VersionConfig, count: number, _t?: number, signal?: AbortSignal): Promise<string[]> {
    this.adds.push(count)
    if (signal) this.signals.push(signal)
    await this.gate
    signal?.throwIfAborted()
    if (this.fail) throw this.fail
    const added = Array.from({length: count}, () => `catalog-${this.next++}`)
    this.names.push(...added)
    return added
  }

  async removeInstance(name: string): Promise<void> {
    this.removed.push(name)
    this.names = this.names.filter((n) => n !== name)
  }
}

function setup(scaling: Partial<ScalingConfig> = {}) {
  const clock = new VirtualClock()
  const manager = new FakeManager()
  const version = {name: 'v1', replicas: 1, env: {}, workload: {kind: 'simulate'}, scaling: {...SCALING, ...scaling}} as unknown as VersionConfig
  const config = {services: [{name: 'catalog', versions: [version]}]} as unknown as MeshConfig
  const events: ScalingEvent[] = []
  const errors: string[] = []
  /** Requests under way in total, spread over the instances as a balancer would. */
  let load = 0
  /** Requests answered so far (the rps metric's counter). */
  let served = 0
  let deploy: 'deploy' | undefined
  const autoscaler = new Autoscaler({
    config,
    clock,
    target: manager,
    inflight: () => {
      const per: Record<string, number> = {}
      manager.names.forEach((n, i) => (per[n] = Math.floor(load / manager.names.length) + (i < load % manager.names.length ? 1 : 0)))
      return per
    },
    served: () => served,
    deploying: () => deploy,
    onEvent: (e) => events.push(e),
    onError: (_s, e) => errors.push(e.message),
  })
  const seconds = (n: number) => clock.advance(n * TICK_MS)
  return {clock, manager, autoscaler, events, errors, config, version, seconds, setLoad: (n: number) => (load = n), serve: (n: number) => (served += n), setDeploy: (d: 'deploy' | undefined) => (deploy = d)}
}

describe('Autoscaler', () => {
  it('scales up in panic on the first tick of a surge, logging the decision and its reason', async () => {
    const {autoscaler, manager, events, seconds, setLoad} = setup()
    autoscaler.start()
    setLoad(50)
    await seconds(1)
    // 50 concurrent / (10 × 70%) = 8 wanted, 8 times the one ready: panic, capped at maxScale 6.
    expect(manager.adds).toEqual([5])
    expect(manager.names).toHaveLength(6)
    expect(events).toHaveLength(1)
    expect(events[0]).toMatchObject({kind: 'scaled', service: 'catalog', version: 'v1', from: 1, to: 6, panic: true})
    expect(events[0].message).toBe('1 → 6: panic, observed 50 concurrent over 0.6 s, target 7; capped at maxScale 6')
    expect(autoscaler.status('catalog')).toEqual([{version: 'v1', desired: 6, actual: 6, panic: true, reason: events[0].reason}])
    await autoscaler.stop()
  })

  it('takes one scaling action at a time: decisions while instances start do not add more', async () => {
    const {autoscaler, manager, seconds, setLoad} = setup()
    let open!: () => void
    manager.gate = new Promise((r) => (open = r))
    autoscaler.start()
    setLoad(30)
    await seconds(3)
    expect(manager.adds).toEqual([4])
    // Still starting: the status says what is wanted and what there is.
    expect(autoscaler.status('catalog')?.[0]).toMatchObject({desired: 5, actual: 1})
    open()
    await seconds(1)
    expect(manager.names).toHaveLength(5)
    expect(manager.adds).toEqual([4])
    await autoscaler.stop()
  })

  it('drains the newest instances first once the load has left the window, down to minScale', async () => {
    const {autoscaler, manager, events, seconds, setLoad} = setup()
    autoscaler.start()
    setLoad(50)
    await seconds(1)
    expect(manager.names).toEqual(['catalog-1', 'catalog-2', 'catalog-3', 'catalog-4', 'catalog-5', 'catalog-6'])
    setLoad(0)
    // Panic (entered at 1 s) holds 6 until a whole stable window has passed without it (after 7 s),
    // then each tick at most halves (maxScaleDownRate 2): 6 → 3 → 1.
    await seconds(6)
    expect(manager.names).toHaveLength(6)
    await seconds(1)
    expect(manager.names).toEqual(['catalog-1', 'catalog-2', 'catalog-3'])
    await seconds(1)
    expect(manager.names).toEqual(['catalog-1'])
    expect(manager.removed).toEqual(['catalog-6', 'catalog-5', 'catalog-4', 'catalog-3', 'catalog-2'])
    expect(events.map((e) => `${e.from}→${e.to}`)).toEqual(['1→6', '6→3', '3→1'])
    expect(events.at(-1)?.reason).toBe('stable, observed 0 concurrent over 6 s, target 7')
    await autoscaler.stop()
  })

  it('with metric rps, scales on the rate of requests answered between ticks, not on those in flight', async () => {
    const {autoscaler, manager, events, seconds, setLoad, serve} = setup({metric: 'rps', target: 100, targetUtilization: 100})
    autoscaler.start()
    setLoad(1000)
    // 250 answered each second, counted from the first tick: 250 / 100 wants 3, panic (3 ≥ 2 × 1).
    for (let i = 0; i < 3; i++) {
      serve(250)
      await seconds(1)
    }
    expect(events[0]).toMatchObject({from: 1, to: 3, panic: true})
    expect(events[0].reason).toBe('panic, observed 250 req/s over 0.6 s, target 100')
    expect(manager.names).toHaveLength(3)
    await autoscaler.stop()
  })

  it('scales nothing back up once `mesh stop` stopped the service, starts no version none runs, and waits for a deploy to end', async () => {
    const {autoscaler, manager, seconds, setLoad, setDeploy} = setup()
    autoscaler.start()
    manager.started = false
    manager.names = []
    await seconds(3)
    expect(manager.adds).toEqual([])
    manager.started = true
    await seconds(3)
    expect(manager.adds).toEqual([])
    manager.started = true
    manager.names = ['catalog-1']
    setDeploy('deploy')
    setLoad(20)
    await seconds(2)
    expect(manager.adds).toEqual([])
    setDeploy(undefined)
    await seconds(1)
    expect(manager.adds).toEqual([2])
    await autoscaler.stop()
  })

  it('on stop, ends an instance start under way at once (mesh down does not wait for its deadline)', async () => {
    const {autoscaler, manager, errors, seconds, setLoad} = setup()
    let open!: () => void
    manager.gate = new Promise((r) => (open = r))
    autoscaler.start()
    setLoad(20)
    await seconds(1)
    expect(manager.signals).toHaveLength(1)
    const stopped = autoscaler.stop()
    expect(manager.signals[0].aborted).toBe(true)
    open()
    await stopped
    expect(manager.names).toEqual(['catalog-1'])
    // Aborted by mesh down is not a failure to report.
    expect(errors).toEqual([])
  })

  it('takes one action at a time per service, even across its scaled versions', async () => {
    const clock = new VirtualClock()
    const names: Record<string, string[]> = {v1: ['c-v1-1'], v2: ['c-v2-1']}
    const adds: string[] = []
    let open!: () => void
    const gate = new Promise<void>((r) => (open = r))
    const target: ScaleTarget = {
      instancesOf: (_s, v) => [...names[v]],
      isStarted: () => true,
      async addInstances(_s, v, count) {
        adds.push(`${v.name}+${count}`)
        await gate
        names[v.name].push(...Array.from({length: count}, (_, i) => `c-${v.name}-${i + 2}`))
        return []
      },
      async removeInstance() {},
    }
    const versions = ['v1', 'v2'].map((name) => ({name, replicas: 1, env: {}, workload: {kind: 'simulate'}, scaling: SCALING}))
    const config = {services: [{name: 'catalog', versions}]} as unknown as MeshConfig
    const inflight = () => ({'c-v1-1': 20, 'c-v2-1': 20})
    const autoscaler = new Autoscaler({config, clock, target, inflight, served: () => 0, onEvent: () => {}, onError: () => {}}).start()
    await clock.advance(3 * TICK_MS)
    expect(adds).toEqual(['v1+2'])
    open()
    await clock.advance(TICK_MS)
    expect(adds).toEqual(['v1+2', 'v2+2'])
    await autoscaler.stop()
  })

  it('keeps one instance for minScale 0 (scale to zero is not acted on yet)', async () => {
    const {autoscaler, manager, events, seconds} = setup({minScale: 0})
    autoscaler.start()
    await seconds(60)
    expect(manager.names).toEqual(['catalog-1'])
    expect(events).toEqual([])
    await autoscaler.stop()
  })

  it('reports a scale-up that failed and tries again on a later tick', async () => {
    const {autoscaler, manager, errors, seconds, setLoad} = setup()
    manager.fail = new Error('catalog-2 never became healthy')
    autoscaler.start()
    setLoad(20)
    await seconds(1)
    expect(errors).toEqual(['catalog-2 never became healthy'])
    manager.fail = undefined
    await seconds(1)
    expect(manager.adds).toEqual([2, 2])
    expect(manager.names).toHaveLength(3)
    await autoscaler.stop()
  })

  it('follows a changed scaling: (sync) and stops ticking on stop()', async () => {
    const {autoscaler, manager, version, clock, seconds, setLoad} = setup()
    autoscaler.start()
    version.scaling = {...version.scaling!, maxScale: 2}
    autoscaler.sync()
    setLoad(50)
    await seconds(1)
    expect(manager.names).toHaveLength(2)
    await autoscaler.stop()
    expect(clock.pending()).toBe(0)
    setLoad(0)
    await seconds(30)
    expect(manager.names).toHaveLength(2)
  })
})
