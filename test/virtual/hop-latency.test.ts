// `mesh sim --hop-latency D`: every attempt reaches its instance D later, as across a running
// mesh's sidecars and loopback; a caller that gives up meanwhile is answered at once and the
// instance never sees the attempt. 0 (the default) changes nothing.
import {describe, expect, it} from 'vitest'
import {constantShape} from '../../src/sim/load/arrival-schedule.js'
import {runSimulation, simulatedMesh} from '../../src/sim/virtual/simulation.js'
import type {MeshResponse} from '../../src/sim/proxy/stack.js'
import type {Span} from '../../src/sim/telemetry/span.js'
import {parsed, yaml} from '../config/helpers.js'

/** ingress → a (5 ms, calls b) → b (5 ms): constant latencies, so every figure is exact. */
function chain(policy = '') {
  return parsed(
    yaml(
      'name: hops',
      'ingress: {port: 0, routes: [{prefix: /, service: a}]}',
      'services:',
      '  a:',
      '    dependsOn: [b]',
      '    simulate: {latency: 5ms, calls: [{service: b, path: /b}]}',
      '  b:',
      '    simulate: {latency: 5ms}',
      ...(policy ? [`    policy: ${policy}`] : []),
    ),
  )
}

const shape = constantShape(50, 2_000)

describe('hop latency', () => {
  it('adds its time to every hop: a leaf once, a caller once for itself and once per call it waits for', async () => {
    const r = await runSimulation(chain(), {shape, seed: 1, hopLatencyMs: 0.5})
    const by = Object.fromEntries(r.services.map((s) => [s.service, s]))
    expect(by.b.requests).toBe(100)
    // The histogram's resolution is under 1%: exact within that.
    expect(by.b.meanMs).toBeCloseTo(5.5, 6)
    expect(by.a.meanMs).toBeCloseTo(11, 6)
    expect(Math.abs(by.b.p99 / 5.5 - 1)).toBeLessThan(0.01)
    expect(Math.abs(by.a.p50 / 11 - 1)).toBeLessThan(0.01)
    expect(by.b.successRate).toBe(1)
  })

  it('0 is the run without it, byte for byte', async () => {
    const without = JSON.stringify(await runSimulation(chain(), {shape: constantShape(50, 2_000, 'poisson'), seed: 3}))
    const zero = JSON.stringify(await runSimulation(chain(), {shape: constantShape(50, 2_000, 'poisson'), seed: 3, hopLatencyMs: 0}))
    expect(zero).toBe(without)
  })

  it('a caller that gives up during the hop is answered at its timeout, and the instance never sees the attempt', async () => {
    const spans: Span[] = []
    const r = await runSimulation(chain('{timeout: 1ms}'), {shape, seed: 1, hopLatencyMs: 2, traceSampleEvery: 1, onSpan: (s) => spans.push(s)})
    const by = Object.fromEntries(r.services.map((s) => [s.service, s]))
    expect(by.b.requests).toBe(100)
    expect(by.b.successRate).toBe(0)
    // Answered when the 1 ms timeout fired, not when the 2 ms hop would have ended.
    expect(by.b.meanMs).toBeCloseTo(1, 6)
    expect(r.errorsByCause).toMatchObject({UT: 100})
    // b's station took no work: nothing arrived at the instance.
    expect(by.b.utilisation).toBe(0)
    expect(by.b.queueMsMean).toBe(0)
    // Each attempt (b's server span) ends with the abort too: what it holds below the timeout is given back then.
    const attempts = spans.filter((s) => s.kind === 'server' && s.service === 'b')
    expect(attempts).toHaveLength(100)
    for (const s of attempts) expect(s.durationMs).toBeCloseTo(1, 6)
  })

  it('an attempt whose caller has already gone is refused at once, before any hop', async () => {
    const mesh = simulatedMesh(chain(), 1, undefined, 2)
    const {Cancellation} = await import('../../src/sim/proxy/cancellation.js')
    const cancellation = new Cancellation()
    cancellation.abort(new Error('gone'))
    let answer: {status?: number; error?: unknown; at: number} | undefined
    mesh.send('/', {
      ok: (response: MeshResponse) => (answer = {status: response.status, at: mesh.clock.now()}),
      fail: (error: unknown) => (answer = {error, at: mesh.clock.now()}),
    }, {cancellation})
    await mesh.clock.run(() => answer !== undefined)
    expect(answer?.error).toBeDefined()
    expect(answer?.at).toBe(0)
    const b = [...mesh.instances.values()].find((i) => i.endpoint.service === 'b')!
    const a = [...mesh.instances.values()].find((i) => i.endpoint.service === 'a')!
    expect(a.station.totals.arrived + b.station.totals.arrived).toBe(0)
    mesh.close()
  })
})
