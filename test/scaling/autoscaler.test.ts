// The autoscaler loop on a virtual clock over a fake instance manager: what it observes,
// when it acts, what it logs. The decisions themselves are kpa.test.ts's.
import {describe, expect, it} from 'vitest'
import type {MeshConfig, ScalingConfig, ServiceConfig, VersionConfig} from '../../src/sim/config/types.js'
import {ActivationHub} from '../../src/sim/scaling/activation.js'
import {Autoscaler, type ScaleFailedEvent, type ScaleTarget, type ScalingEvent, TICK_MS} from '../../src/sim/scaling/autoscaler.js'
import {VirtualClock} from '../../src/sim/time/clock.js'
import {scalingConfig} from '../helpers/scaling.js'

const SCALING: ScalingConfig = scalingConfig({minScale: 1, maxScale: 6, target: 10})

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
  /** Phases other than healthy, by name. */
  phases: Record<string, string> = {}
  /** When set, removeInstance waits for it after the instance has left the list (draining). */
  drainGate?: Promise<void>

  instancesOf(): string[] {
    return [...this.names]
  }

  phase(name: string): string {
    return this.phases[name] ?? 'healthy'
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
    await this.drainGate
  }
}

function setup(scaling: Partial<ScalingConfig> = {}, instances = ['catalog-1']) {
  const clock = new VirtualClock()
  const manager = new FakeManager()
  manager.names = [...instances]
  // A real hub: the activator's side is played by the test (poke, the held count, failures heard).
  const hub = new ActivationHub()
  let held = 0
  hub.reportHeld((s, v) => (s === 'catalog' && v === 'v1' ? held : 0))
  const failures: string[] = []
  hub.onStartFailed((s, v, reason) => failures.push(`${s}/${v}: ${reason}`))
  const version = {name: 'v1', replicas: 1, env: {}, workload: {kind: 'simulate'}, scaling: {...SCALING, ...scaling}} as unknown as VersionConfig
  const config = {services: [{name: 'catalog', versions: [version]}]} as unknown as MeshConfig
  const events: Array<ScalingEvent | ScaleFailedEvent> = []
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
    activation: hub,
  })
  const seconds = (n: number) => clock.advance(n * TICK_MS)
  return {
    clock,
    manager,
    autoscaler,
    events,
    errors,
    config,
    version,
    seconds,
    hub,
    failures,
    setHeld: (n: number) => (held = n),
    setLoad: (n: number) => (load = n),
    serve: (n: number) => (served += n),
    setDeploy: (d: 'deploy' | undefined) => (deploy = d),
  }
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
    expect(events.map((e) => (e.kind === 'scaled' ? `${e.from}→${e.to}` : e.kind))).toEqual(['1→6', '6→3', '3→1'])
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
      phase: () => 'healthy',
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

  it('scales to zero a stable window without traffic plus the grace period after it began, draining the last instance', async () => {
    const {autoscaler, manager, events, seconds} = setup({minScale: 0, scaleToZeroGracePeriodMs: 6000})
    autoscaler.start()
    // Began at 0 with no traffic: the window 0..6 s passes quiet, then the grace 6..12 s.
    await seconds(11)
    expect(manager.names).toEqual(['catalog-1'])
    expect(autoscaler.status('catalog')?.[0]).toMatchObject({desired: 1, actual: 1, reason: 'stable, observed 0 concurrent over 6 s, target 7; no traffic, scale to zero in 1 s'})
    await seconds(1)
    expect(manager.removed).toEqual(['catalog-1'])
    expect(events.map((e) => e.message)).toEqual(['1 → 0: stable, observed 0 concurrent over 6 s, target 7'])
    expect(autoscaler.status('catalog')).toEqual([{version: 'v1', desired: 0, actual: 0, panic: false, reason: 'stable, observed 0 concurrent over 6 s, target 7', scaledToZero: true}])
    // At zero it stays there: no tick starts one without a request waiting.
    await seconds(30)
    expect(manager.adds).toEqual([])
    await autoscaler.stop()
  })

  it('a poke at zero starts one instance at once, not at the next tick; the event gives the cold start', async () => {
    const {autoscaler, manager, events, hub, clock, seconds} = setup({minScale: 0}, [])
    autoscaler.start()
    await seconds(3)
    expect(manager.adds).toEqual([])
    let open!: () => void
    manager.gate = new Promise((r) => (open = r))
    await clock.advance(200)
    hub.poke('catalog', 'v1')
    // In the poke's own turn.
    expect(manager.adds).toEqual([1])
    expect(autoscaler.status('catalog')?.[0]).toMatchObject({desired: 1, actual: 0, reason: 'a request is waiting'})
    expect(autoscaler.status('catalog')?.[0].scaledToZero).toBeUndefined()
    // More requests while it starts: still the one start.
    await clock.advance(300)
    hub.poke('catalog', 'v1')
    await clock.advance(540)
    expect(manager.adds).toEqual([1])
    open()
    await clock.advance(0)
    expect(manager.names).toEqual(['catalog-2'])
    expect(events).toHaveLength(1)
    expect(events[0]).toMatchObject({kind: 'scaled', from: 0, to: 1, coldStartMs: 840})
    expect(events[0].message).toBe('0 → 1: a request is waiting (cold start 840 ms)')
    expect(autoscaler.status('catalog')?.[0]).toMatchObject({actual: 1, coldStartMs: 840})
    // With an instance, a poke (all of them busy) is the tick's: nothing more starts at once.
    hub.poke('catalog', 'v1')
    expect(manager.adds).toEqual([1])
    await autoscaler.stop()
  })

  it('a cold start whose request is served between two ticks keeps its instance a whole window and the grace period', async () => {
    const {autoscaler, manager, hub, seconds, clock} = setup({minScale: 0}, [])
    autoscaler.start()
    // Long at zero: the quiet window and the grace period both passed long ago.
    await seconds(120)
    await clock.advance(300)
    hub.poke('catalog', 'v1')
    await clock.advance(0)
    expect(manager.names).toHaveLength(1)
    const [started] = manager.names
    // Its one request was answered before any tick saw it; no traffic after.
    await seconds(30)
    expect(manager.removed).toEqual([])
    // A window (6 s) and the grace period (30 s) after the poke, it goes.
    await seconds(10)
    expect(manager.removed).toEqual([started])
    await autoscaler.stop()
  })

  it('counts the requests the activator holds in the concurrency metric, at zero and with instances', async () => {
    const atZero = setup({minScale: 0}, [])
    atZero.autoscaler.start()
    await atZero.seconds(2)
    // No poke (the activator said nothing yet): the tick sees 20 held, 20 / 7 wants 3, in panic.
    atZero.setHeld(20)
    await atZero.seconds(1)
    expect(atZero.manager.adds).toEqual([3])
    expect(atZero.events[0].message).toBe('0 → 3: 20 requests waiting (cold start 0 ms)')
    await atZero.autoscaler.stop()

    const busy = setup()
    busy.autoscaler.start()
    // One instance with nothing in flight, 20 held for a free slot: 20 concurrent, wants 3.
    busy.setHeld(20)
    await busy.seconds(1)
    expect(busy.manager.adds).toEqual([2])
    expect(busy.events[0].message).toBe('1 → 3: panic, observed 20 concurrent over 0.6 s, target 7')
    await busy.autoscaler.stop()
  })

  it('a start from zero that fails: startFailed with the reason and the log, an event, kept in the status; pokes back off', async () => {
    const {autoscaler, manager, events, hub, failures, errors, clock} = setup({minScale: 0}, [])
    autoscaler.start()
    const why = 'instance catalog-v1-0 crashed 3 times while starting (exit code 1).'
    manager.fail = Object.assign(new Error(why), {logTail: ['listening…', 'Error: DB_URL is not set', '    at main (app.js:3)']})
    hub.poke('catalog', 'v1')
    await clock.advance(0)
    expect(failures).toEqual([`catalog/v1: ${why} Last log lines: listening… | Error: DB_URL is not set |     at main (app.js:3)`])
    expect(errors).toEqual([why])
    expect(events).toEqual([{kind: 'scale-failed', service: 'catalog', version: 'v1', reason: why, message: `0 → 1 failed: ${why}`}])
    const status = autoscaler.status('catalog')![0]
    expect(status.startFailed).toMatchObject({reason: why, logTail: ['listening…', 'Error: DB_URL is not set', '    at main (app.js:3)'], retryAt: new Date(clock.wallNow() + 1000).toISOString()})
    // Within the backoff (1 s): no new start, the request is answered at once with why.
    await clock.advance(400)
    hub.poke('catalog', 'v1')
    expect(manager.adds).toEqual([1])
    expect(failures[1]).toBe(`catalog/v1: ${why} (next try in 1 s)`)
    // After it, the next poke tries again; a second failure doubles the wait (2 s).
    await clock.advance(600)
    hub.poke('catalog', 'v1')
    await clock.advance(0)
    expect(manager.adds).toEqual([1, 1])
    await clock.advance(1500)
    hub.poke('catalog', 'v1')
    expect(manager.adds).toEqual([1, 1])
    await clock.advance(500)
    manager.fail = undefined
    hub.poke('catalog', 'v1')
    await clock.advance(0)
    expect(manager.adds).toEqual([1, 1, 1])
    expect(manager.names).toEqual(['catalog-2'])
    expect(autoscaler.status('catalog')![0].startFailed).toBeUndefined()
    await autoscaler.stop()
  })

  it('a failed start long after the last one starts the backoff over (1 s), as a long run resets the supervisor\'s', async () => {
    const {autoscaler, manager, hub, failures, clock} = setup({minScale: 0}, [])
    autoscaler.start()
    manager.fail = new Error('instance catalog-v1-0 exited.')
    hub.poke('catalog', 'v1')
    await clock.advance(1000)
    hub.poke('catalog', 'v1')
    await clock.advance(0)
    // Two in a row: the next try waits 2 s.
    expect(autoscaler.status('catalog')![0].startFailed?.retryAt).toBe(new Date(clock.wallNow() + 2000).toISOString())
    await clock.advance(40_000)
    hub.poke('catalog', 'v1')
    await clock.advance(0)
    expect(manager.adds).toEqual([1, 1, 1])
    expect(autoscaler.status('catalog')![0].startFailed?.retryAt).toBe(new Date(clock.wallNow() + 1000).toISOString())
    expect(failures).toHaveLength(3)
    await autoscaler.stop()
  })

  it('a request for a version whose last instance is draining to zero starts one once the drain is done (one action at a time)', async () => {
    const {autoscaler, manager, hub, seconds, clock} = setup({minScale: 0, scaleToZeroGracePeriodMs: 6000})
    let drained!: () => void
    manager.drainGate = new Promise((r) => (drained = r))
    autoscaler.start()
    await seconds(12)
    expect(manager.removed).toEqual(['catalog-1'])
    hub.poke('catalog', 'v1')
    expect(manager.adds).toEqual([])
    drained()
    await clock.advance(0)
    expect(manager.adds).toEqual([1])
    await autoscaler.stop()
  })

  it('replaces an instance whose process exited for good (a kill under restart: no)', async () => {
    const {autoscaler, manager, events, seconds} = setup()
    autoscaler.start()
    manager.phases['catalog-1'] = 'failed'
    await seconds(1)
    expect(manager.removed).toEqual(['catalog-1'])
    expect(manager.adds).toEqual([1])
    expect(manager.names).toEqual(['catalog-2'])
    expect(events[0].message).toBe('0 → 1: replacing catalog-1 (exited, not restarted) (cold start 0 ms)')
    await autoscaler.stop()
  })

  it('reports a scale-up that failed and tries again on a later tick', async () => {
    const {autoscaler, manager, errors, events, seconds, setLoad} = setup()
    manager.fail = new Error('catalog-2 never became healthy')
    autoscaler.start()
    setLoad(20)
    await seconds(1)
    expect(errors).toEqual(['catalog-2 never became healthy'])
    // An event too, for the log, `mesh history` and `mesh status`.
    expect(events.filter((e) => e.kind === 'scale-failed')).toEqual([
      {kind: 'scale-failed', service: 'catalog', version: 'v1', reason: 'catalog-2 never became healthy', message: 'scale-up from 1 failed: catalog-2 never became healthy (next try in 1 s)'},
    ])
    manager.fail = undefined
    await seconds(1)
    expect(manager.adds).toEqual([2, 2])
    expect(manager.names).toHaveLength(3)
    await autoscaler.stop()
  })

  it('backs off a scale-up that keeps failing (1 s, 2 s, 4 s …), not a try every tick', async () => {
    const {autoscaler, manager, events, seconds, setLoad} = setup()
    manager.fail = new Error('catalog-2 never became healthy')
    autoscaler.start()
    setLoad(20)
    await seconds(1)
    expect(manager.adds).toHaveLength(1)
    await seconds(1) // the 1 s backoff is over: a second try, then 2 s
    expect(manager.adds).toHaveLength(2)
    await seconds(1)
    expect(manager.adds).toHaveLength(2)
    await seconds(1)
    expect(manager.adds).toHaveLength(3)
    await seconds(3)
    expect(manager.adds).toHaveLength(3)
    await seconds(1)
    expect(manager.adds).toHaveLength(4)
    expect(events.filter((e) => e.kind === 'scale-failed').map((e) => e.message.match(/next try in (\d+) s/)?.[1])).toEqual(['1', '2', '4', '8'])
    // A success starts the sequence over.
    manager.fail = undefined
    await seconds(8)
    expect(manager.adds).toHaveLength(5)
    expect(manager.names.length).toBeGreaterThan(1)
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
