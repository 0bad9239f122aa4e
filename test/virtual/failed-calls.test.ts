// A call that fails in mesh sim fails as it does in a running mesh: the hop where the proxy gave
// up carries the real proxy's status and flag (respond.ts: 504 UT, 503 UO, 503 UH, 502 UC…), and
// the model that made the call answers as a simulated service does when a dependency fails
// (model/simulated-service.ts: 500, or its callErrorStatus, at once, without its own latency).
import {describe, expect, test} from 'vitest'
import type {MeshConfig} from '../../src/sim/config/types.js'
import {parseScenario} from '../../src/sim/faults/chaos-scenario.js'
import {constantShape} from '../../src/sim/load/arrival-schedule.js'
import type {Span} from '../../src/sim/telemetry/span.js'
import {runSimulation} from '../../src/sim/virtual/simulation.js'
import {shopConfig} from './shop.js'
import {tinyConfig} from './tiny-mesh.js'

const PAYMENTS_MODEL = '          latency: {p50: 2ms, p99: 10ms}\n          errorRate: 0.2\n'

/** The tiny mesh with payments' model and policy as given (`policy` lines indented for payments). */
function meshWith(model: string, policy = '') {
  return tinyConfig((s) => s.replace(PAYMENTS_MODEL, model) + (policy ? `    policy:\n${policy}` : ''))
}

/** Client spans (calls as their callers saw them) by `caller->callee status flags`, and each call's span. */
async function calls(config: MeshConfig, opts: {rps?: number; ms?: number; timeline?: string[]} = {}) {
  const spans: Span[] = []
  const rps = opts.rps ?? 20
  const ms = opts.ms ?? 2000
  const scenario = opts.timeline
    ? parseScenario([`duration: ${ms}ms`, `load: {target: ingress, path: /, rps: ${rps}}`, 'timeline:', ...opts.timeline.map((l) => `  - ${l}`)].join('\n'), '/tmp/failed-calls.yaml').scenario!
    : undefined
  const result = await runSimulation(config, {shape: scenario?.load?.shape ?? constantShape(rps, ms), seed: 1, scenario, traceSampleEvery: 1, onSpan: (span) => spans.push(span)})
  const client = spans.filter((s) => s.kind === 'client')
  const tally: Record<string, number> = {}
  for (const s of client) {
    const key = `${s.service}->${s.peerService} ${s.status}${s.responseFlags ? ` ${s.responseFlags}` : ''}`
    tally[key] = (tally[key] ?? 0) + 1
  }
  return {tally, client, result}
}

describe('a failed call in mesh sim', () => {
  test('timeout: 504 UT on the call; the caller answers 500 at once', async () => {
    const {tally, client} = await calls(meshWith('          latency: 200ms\n', '      timeout: 50ms\n'))
    expect(tally).toEqual({'frontend->payments 504 UT': 40, 'ingress->frontend 500': 40})
    // frontend's own 4 ms median is not added: it failed fast, as simulated-service.ts does.
    for (const s of client.filter((c) => c.service === 'ingress')) expect(s.durationMs).toBeLessThan(51)
  })

  test('a model with callErrorStatus answers it instead of 500 (as the shop\'s server.js answers 502), in mesh.yaml as in the run', async () => {
    const config = tinyConfig((s) => s.replace('      latency: {p50: 4ms, p99: 20ms}\n', '      latency: {p50: 4ms, p99: 20ms}\n      callErrorStatus: 502\n'))
    expect(config.services[0].versions[0].workload).toMatchObject({simulate: {callErrorStatus: 502}})
    const {tally} = await calls(config)
    expect(tally['ingress->frontend 502']).toBe(tally['frontend->payments 500'])
    expect(tally['ingress->frontend 500']).toBeUndefined()
    expect(() => tinyConfig((s) => s.replace('      latency: {p50: 4ms, p99: 20ms}\n', '      latency: {p50: 4ms, p99: 20ms}\n      callErrorStatus: 5\n'))).toThrow(/callErrorStatus: expected an HTTP status between 100 and 599/)
  })

  test('the shop\'s frontend answers 502 when cart fails, as its server.js does (its model\'s callErrorStatus)', async () => {
    const config = shopConfig()
    const cart = config.services.find((x) => x.name === 'cart')!.versions[0].workload
    if (cart.kind !== 'simulate') throw new Error('cart is simulated in the shop')
    cart.simulate.errorRate = 1
    const {tally} = await calls(config, {rps: 10, ms: 1000})
    expect(tally['ingress->frontend 502']).toBe(10)
  })

  test('circuit breaker full: 503 UO at once', async () => {
    const {tally} = await calls(meshWith('          latency: 500ms\n', '      circuitBreaker: {maxRequests: 2}\n'))
    expect(tally['frontend->payments 503 UO']).toBeGreaterThan(20)
    expect(tally['ingress->frontend 500']).toBe(tally['frontend->payments 503 UO'])
  })

  test('killed: the calls under way fail 502 UC (the connection closed with no answer), the next ones 503 UH', async () => {
    // payments takes 500 ms a call and is killed at 1 s: the calls begun in (0.5 s, 1 s] were under way.
    const {tally, client} = await calls(meshWith('          latency: 500ms\n'), {timeline: ['{at: 1s, inject: {service: payments, kill: true}}']})
    const atKill = client.filter((c) => c.service === 'frontend' && c.status === 502)
    expect(atKill.map((c) => c.responseFlags)).toEqual(Array(10).fill('UC'))
    // Each ended when the kill came, not when the dead instance would have answered.
    expect(new Set(atKill.map((c) => Math.round(c.startMs + c.durationMs))).size).toBe(1)
    for (const c of atKill) expect(c.durationMs).toBeLessThanOrEqual(500)
    expect(tally['frontend->payments 503 UH']).toBe(20)
    expect(tally['frontend->payments 200']).toBe(10)
  })

  test('a caller killed mid-call: its caller gets 502 UC, and the call it was making is cut (499 DC)', async () => {
    const {tally} = await calls(meshWith('          latency: 500ms\n          errorRate: 0\n'), {timeline: ['{at: 1s, inject: {service: frontend, kill: true}}']})
    expect(tally['ingress->frontend 502 UC']).toBe(10)
    expect(tally['frontend->payments 499 DC']).toBe(10)
  })
})
