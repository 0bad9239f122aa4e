// runSimulation as a whole: deterministic per seed, memory bounded by what is in flight,
// chaos scenarios on the virtual timeline judged as `mesh chaos` judges them, and a command
// service without a model named with the two ways to give it one.
import v8 from 'node:v8'
import vm from 'node:vm'
import {describe, expect, test} from 'vitest'
import {parseScenario} from '../../src/sim/faults/chaos-scenario.js'
import {constantShape} from '../../src/sim/load/arrival-schedule.js'
import {MeshError} from '../../src/sim/errors.js'
import {runSimulation, simulatedMesh} from '../../src/sim/virtual/simulation.js'
import {shopConfig} from './shop.js'
import {parsed, yaml} from '../config/helpers.js'

describe('runSimulation', () => {
  test('the same seed gives byte-identical JSON; another seed does not', async () => {
    const options = (seed: number) => ({shape: constantShape(200, 5_000, 'poisson'), seed})
    const a = JSON.stringify(await runSimulation(shopConfig(), options(1)))
    const b = JSON.stringify(await runSimulation(shopConfig(), options(1)))
    const c = JSON.stringify(await runSimulation(shopConfig(), options(2)))
    expect(a).toBe(b)
    expect(c).not.toBe(a)
  })

  test('the sampled spans are the same bytes every run: ids numbered, none random', async () => {
    const run = async () => {
      const spans: string[] = []
      await runSimulation(shopConfig(), {shape: constantShape(100, 2_000), seed: 1, traceSampleEvery: 10, onSpan: (span) => spans.push(JSON.stringify(span))})
      return spans
    }
    const [a, b] = [await run(), await run()]
    expect(a.length).toBeGreaterThan(50)
    expect(b).toEqual(a)
  })

  test('every service of the shop is reached and reported, with Little’s law holding per service', async () => {
    const r = await runSimulation(shopConfig(), {shape: constantShape(300, 20_000), seed: 3})
    expect(r.ingressRequests).toBe(6000)
    expect(r.services.map((s) => s.service)).toEqual(['frontend', 'catalog', 'cart', 'inventory', 'payments', 'recommendations'])
    const by = Object.fromEntries(r.services.map((s) => [s.service, s]))
    expect(by.frontend.requests).toBe(6000)
    // frontend calls catalog and cart on every request; catalog calls inventory on half of its own.
    expect(by.catalog.requests).toBe(6000)
    expect(by.inventory.requests / by.catalog.requests).toBeGreaterThan(0.45)
    expect(by.inventory.requests / by.catalog.requests).toBeLessThan(0.55)
    // Latencies as modelled: payments' p50 is 30 ms.
    expect(by.payments.p50).toBeGreaterThan(25)
    expect(by.payments.p50).toBeLessThan(36)
    for (const s of r.services) expect(s.littleLambdaW).toBeCloseTo(s.meanInFlight, 6)
    expect(r.series.length).toBe(20 * 6)
    expect(r.unstable).toEqual([])
    expect(r.hopRequests).toBe(r.services.reduce((n, s) => n + s.actualRequests, 0))
  })

  test('an arrival rate above a service’s capacity is reported unstable with its utilisation', async () => {
    const config = shopConfig()
    const payments = config.services.find((s) => s.name === 'payments')!
    const sim = payments.versions[0].workload
    if (sim.kind !== 'simulate') throw new Error('payments is simulated in the shop')
    sim.simulate.concurrency = 1
    const r = await runSimulation(config, {shape: constantShape(400, 5_000), seed: 1})
    expect(r.unstable.map((u) => u.service)).toContain('payments')
    expect(r.unstable.find((u) => u.service === 'payments')!.utilisation).toBeGreaterThan(1)
  })

  test('memory stays flat: the heap after 10× the requests is within a few MB of the heap after 1×', async () => {
    v8.setFlagsFromString('--expose-gc')
    const gc = vm.runInNewContext('gc') as () => void
    const heapAfter = async (requests: number) => {
      await runSimulation(shopConfig(), {shape: constantShape(1000, requests), seed: 5})
      gc()
      return process.memoryUsage().heapUsed
    }
    await heapAfter(1_000) // warm: the modules' own allocations
    const one = await heapAfter(3_000)
    const ten = await heapAfter(30_000)
    expect((ten - one) / 1e6).toBeLessThan(4)
  }, 60_000)

  test('a command: service with no model is named, with simulate: beside command: and --fit as the ways out', () => {
    let error: unknown
    try {
      simulatedMesh(shopConfig(null), 1)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(MeshError)
    expect((error as MeshError).message).toContain('"frontend"')
    expect((error as MeshError).hints.join('\n')).toMatch(/simulate: block beside its command:/)
    expect((error as MeshError).hints.join('\n')).toMatch(/mesh sim --fit/)
  })
})

describe('an overloaded run', () => {
  // One slot, 100 ms a request, 50 requests a second: five times what it can serve.
  const slow = () =>
    parsed(yaml('name: over', 'ingress: {port: 0, routes: [{prefix: /, service: s}]}', 'services:', '  s: {simulate: {concurrency: 1, latency: 100ms, responseSize: 0}}'))

  test('a scenario\'s load is open loop as a plain run\'s: every request is sent on time, none held back by the client', async () => {
    const plain = await runSimulation(slow(), {shape: constantShape(50, 4_000), seed: 1})
    const s = parseScenario(['duration: 4s', 'load: {target: ingress, path: /, rps: 50}', 'timeline: []'].join('\n'), '/tmp/sim-over.yaml').scenario!
    const played = await runSimulation(slow(), {shape: s.load!.shape, seed: 1, scenario: s})
    expect(plain.ingressRequests).toBe(200)
    expect(played.ingressRequests).toBe(200)
    // The queue grows by 40 a second in both; mesh load's default cap (the rate, at least 16, in
    // flight) would have held it at 16 and sent the rest late.
    const deepest = (r: typeof plain) => Math.max(...r.series.map((p) => p.queueDepth))
    expect(deepest(plain)).toBeGreaterThan(100)
    expect(deepest(played)).toBe(deepest(plain))
    expect(played.unstable.map((u) => u.service)).toEqual(['s'])
  })
})

describe('a chaos scenario on the virtual timeline', () => {
  const scenario = (expect: string) =>
    parseScenario(
      [
        'duration: 20s',
        'load: {target: ingress, path: /, rps: 100}',
        'timeline:',
        '  - {at: 5s, name: broken-cart, inject: {service: cart, abort: 503, percent: 50, seed: 1}}',
        '  - {at: 15s, clear: broken-cart}',
        'expect:',
        `  - ${expect}`,
      ].join('\n'),
      '/tmp/sim-chaos.yaml',
    ).scenario!

  test('the fault shows in its phase only, and the expectations are judged by the chaos runner', async () => {
    const s = scenario('{phase: 2, expect: errorRate >= 30%}')
    const r = await runSimulation(shopConfig(), {shape: s.load!.shape, seed: 1, scenario: s})
    expect(r.ingressRequests).toBe(2000)
    expect(r.expectations).toEqual([{text: 'errorRate >= 30%', phase: 2, actual: expect.any(Number), passed: true}])
    expect(r.errorsByCause.FI).toBeGreaterThan(300)
    // Before the step and after the clear, no request failed (a request is counted in the second it
    // ends: those under way at the clear, their cart call already refused, end in the second after it).
    const frontend = r.series.filter((p) => p.service === 'frontend')
    expect(frontend.filter((p) => p.atMs < 5_000 || p.atMs >= 16_000).every((p) => p.successRate === 1)).toBe(true)
    expect(frontend.find((p) => p.atMs === 15_000)!.successRate).toBeGreaterThan(0.95)
    expect(frontend.filter((p) => p.atMs >= 5_000 && p.atMs < 15_000).every((p) => p.successRate < 0.7)).toBe(true)
  })

  test('a step it cannot play (a pause: no process to stop) is refused before the run, naming its line', async () => {
    const s = parseScenario(
      ['duration: 5s', 'load: {target: ingress, path: /, rps: 10}', 'timeline:', '  - {at: 1s, inject: {service: cart, pause: 2s}}'].join('\n'),
      '/tmp/sim-pause.yaml',
    ).scenario!
    await expect(runSimulation(shopConfig(), {shape: s.load!.shape, seed: 1, scenario: s})).rejects.toThrow(/sim-pause\.yaml:4: mesh sim cannot play a pause fault/)
  })

  test('an expectation that does not hold is reported failed with what was measured', async () => {
    const s = scenario('successRate >= 99%')
    const r = await runSimulation(shopConfig(), {shape: s.load!.shape, seed: 1, scenario: s})
    expect(r.expectations![0].passed).toBe(false)
    expect(r.expectations![0].actual).toBeLessThan(0.9)
  })
})
