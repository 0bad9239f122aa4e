// mesh sim --fit's models from hand-built spans: own latency net of the calls (sequential and
// parallel), the call pattern, errors that are the service's own, retries, and too little data;
// then the blocks written into mesh.yaml beside command:, the rest of the file untouched.
import {describe, expect, test} from 'vitest'
import {parseConfig} from '../../src/sim/config/load-config.js'
import {latencyModel} from '../../src/sim/model/latency-model.js'
import type {Span} from '../../src/sim/telemetry/span.js'
import {SeededRandom} from '../../src/sim/time/random.js'
import {FITTED_MARK, simulateBlock, writeModels} from '../../src/sim/virtual/fitted-yaml.js'
import {busyMs, fitLatency, fitModels, type FittedModel} from '../../src/sim/virtual/model-fit.js'

let ids = 0
const id = () => (++ids).toString(16).padStart(16, '0')

/** One request `service` served: a server span, with `calls` made under it. */
function request(service: string, startMs: number, durationMs: number, status = 200, extra: Partial<Span> = {}): Span {
  return {traceId: id().padStart(32, '0'), spanId: id(), kind: 'server', name: 'GET /', service, method: 'GET', path: '/', status, startMs, durationMs, ...extra}
}

/** A call `parent`'s service made to `callee` (a client span, covering every retry). */
function call(parent: Span, callee: string, fromMs: number, toMs: number, status = 200, extra: Partial<Span> = {}): Span {
  return {
    traceId: parent.traceId, spanId: id(), parentId: parent.spanId, kind: 'client', name: 'GET /items', service: parent.service,
    peerService: callee, method: 'GET', path: '/items?page=2', status, startMs: parent.startMs + fromMs, durationMs: toMs - fromMs, ...extra,
  }
}

const model = (fits: ReturnType<typeof fitModels>, service: string): FittedModel => {
  const fit = fits.find((f) => f.service === service)!
  expect(fit.skipped).toBeUndefined()
  return fit.model!
}

describe('fitModels', () => {
  test('sequential calls: own latency is the request less its calls, calls listed in the order made', () => {
    const spans: Span[] = []
    for (let i = 0; i < 50; i++) {
      const r = request('checkout', i * 1000, 100)
      spans.push(r, call(r, 'payments', 50, 70), call(r, 'cart', 10, 40))
    }
    const m = model(fitModels(spans, ['checkout']), 'checkout')
    // 100 ms less 30 and 20 ms of calls.
    expect(m.latency).toEqual({p50Ms: 50, p99Ms: 50})
    expect(m.calls).toEqual([
      {service: 'cart', probability: 1, method: 'GET', path: '/items'},
      {service: 'payments', probability: 1, method: 'GET', path: '/items'},
    ])
    expect(m.callMode).toBe('sequential')
    expect(m.errorRate).toBe(0)
  })

  test('parallel calls: the time waited is the union of their intervals, and the mode is parallel', () => {
    const spans: Span[] = []
    for (let i = 0; i < 40; i++) {
      const r = request('frontend', i * 1000, 100)
      spans.push(r, call(r, 'catalog', 10, 60), call(r, 'cart', 20, 50))
    }
    const fits = fitModels(spans)
    expect(fits.map((f) => f.service)).toEqual(['frontend'])
    const m = model(fits, 'frontend')
    expect(m.latency.p50Ms).toBe(50)
    expect(m.callMode).toBe('parallel')
    expect(busyMs(spans[0], [spans[1], spans[2]])).toBe(50)
  })

  test('a callee called now and then has that probability; one called more than once a request is listed again', () => {
    const spans: Span[] = []
    for (let i = 0; i < 100; i++) {
      const r = request('search', i * 1000, 100)
      spans.push(r, call(r, 'index', 0, 10))
      if (i % 2 === 0) spans.push(call(r, 'index', 20, 30))
      if (i % 4 === 0) spans.push(call(r, 'ads', 40, 50, 200, {method: 'POST', path: '/bid'}))
    }
    const m = model(fitModels(spans, ['search']), 'search')
    expect(m.calls).toEqual([
      {service: 'index', probability: 1, method: 'GET', path: '/items'},
      {service: 'index', probability: 0.5, method: 'GET', path: '/items'},
      {service: 'ads', probability: 0.25, method: 'POST', path: '/bid'},
    ])
  })

  test('own errors are counted over the requests whose calls succeeded; a callee’s failure is not the service’s', () => {
    const spans: Span[] = []
    for (let i = 0; i < 100; i++) {
      // 20 fail because payments failed (fast: 15 ms), 10 of the other 80 fail of their own (after 60 ms).
      const childFails = i < 20
      const ownFail = i >= 20 && i < 30
      const r = request('checkout', i * 1000, childFails ? 15 : 60, childFails || ownFail ? 503 : 200)
      spans.push(r, call(r, 'payments', 0, 10, childFails ? 502 : 200))
    }
    const fit = fitModels(spans, ['checkout'])[0]
    expect(fit.requests).toBe(100)
    expect(fit.measured).toBe(80)
    expect(fit.model!.errorRate).toBe(0.125)
    expect(fit.model!.errorStatus).toBe(503)
    // What it answered when payments failed: its callErrorStatus (500, the default, is left out).
    expect(fit.model!.callErrorStatus).toBe(503)
    expect(simulateBlock(fit.model!)).toMatchObject({errorStatus: 503, callErrorStatus: 503})
    const answered500 = spans.map((s) => (s.kind === 'server' && s.status === 503 && s.durationMs === 15 ? {...s, status: 500} : s))
    expect(fitModels(answered500, ['checkout'])[0].model!).not.toHaveProperty('callErrorStatus')
    // The requests that failed fast for payments are not samples of its own time (5 ms).
    expect(fit.model!.latency.p50Ms).toBe(50)
  })

  test('a retried call is one call of the caller; each attempt is one request of the callee', () => {
    const spans: Span[] = []
    for (let i = 0; i < 40; i++) {
      const r = request('checkout', i * 1000, 100)
      const c = call(r, 'payments', 10, 70, 200, {attempt: 2})
      // The first attempt failed (503), the retry answered.
      const first = request('payments', r.startMs + 10, 20, 503, {traceId: r.traceId, parentId: c.spanId, attempt: 1})
      const second = request('payments', r.startMs + 40, 25, 200, {traceId: r.traceId, parentId: c.spanId, attempt: 2})
      spans.push(r, c, first, second)
    }
    const fits = fitModels(spans, ['checkout', 'payments'])
    expect(model(fits, 'checkout').calls).toEqual([{service: 'payments', probability: 1, method: 'GET', path: '/items'}])
    expect(model(fits, 'checkout').errorRate).toBe(0)
    expect(fits[1].requests).toBe(80)
    expect(model(fits, 'payments').errorRate).toBe(0.5)
  })

  test('replies the mesh made (a timeout) and calls to no service are not the service’s', () => {
    const spans: Span[] = []
    for (let i = 0; i < 40; i++) {
      const r = request('checkout', i * 1000, 30)
      spans.push(r, call(r, 'unknown', 0, 0, 404, {responseFlags: 'NR'}))
    }
    for (let i = 0; i < 10; i++) spans.push(request('checkout', 0, 1000, 504, {responseFlags: 'UT', cause: 'timeout'}))
    const fit = fitModels(spans, ['checkout'])[0]
    expect(fit.measured).toBe(40)
    expect(fit.model!.errorRate).toBe(0)
    expect(fit.model!.latency.p99Ms).toBe(30)
    expect(fit.model!.calls).toEqual([])
    expect(fit.notes.join('\n')).toMatch(/40 of its calls reached no service/)
  })

  test('too few requests, none at all, or calls without the trace context: skipped with the reason, no model', () => {
    const spans: Span[] = []
    for (let i = 0; i < 10; i++) spans.push(request('rare', i, 5))
    for (let i = 0; i < 40; i++) {
      spans.push(request('blind', i * 1000, 50))
      // The app dropped traceparent: its call starts a trace of its own.
      spans.push({...call(request('blind', i * 1000, 50), 'db', 0, 20), parentId: undefined})
    }
    const [rare, absent, blind] = fitModels(spans, ['rare', 'absent', 'blind'])
    expect(rare.model).toBeUndefined()
    expect(rare.skipped).toMatch(/only 10 of its requests could be measured \(at least 30/)
    expect(absent.skipped).toMatch(/no request of it in the traces/)
    expect(blind.model).toBeUndefined()
    expect(blind.skipped).toMatch(/forward the traceparent header/)
  })
})

describe('fitLatency', () => {
  const draw = (spec: Parameters<typeof latencyModel>[0], n: number, seed = 7) => {
    const m = latencyModel(spec)
    const random = new SeededRandom(seed)
    return Array.from({length: n}, () => m.sample(random))
  }

  test('log-normal samples give a log-normal near their p50 and p99', () => {
    const {latency, why} = fitLatency(draw({p50Ms: 20, p99Ms: 120}, 2000))
    expect(latency.distribution).toBeUndefined()
    expect(latency.p50Ms).toBeGreaterThan(18)
    expect(latency.p50Ms).toBeLessThan(22)
    expect(latency.p99Ms).toBeGreaterThan(100)
    expect(latency.p99Ms).toBeLessThan(145)
    expect(why).toMatch(/^log-normal by p50\/p99/)
  })

  test('exponential samples give an exponential by their mean', () => {
    const {latency, why} = fitLatency(draw({p50Ms: 0, p99Ms: 0, distribution: 'exponential', meanMs: 10}, 2000))
    expect(latency.distribution).toBe('exponential')
    expect(latency.meanMs).toBeGreaterThan(9)
    expect(latency.meanMs).toBeLessThan(11)
    expect(why).toMatch(/^exponential by its mean/)
  })

  test('two modes neither shape fits: empirical percentiles that give back the measured p50 and p99', () => {
    const fast = draw({p50Ms: 5, p99Ms: 6}, 600, 1)
    const slow = draw({p50Ms: 200, p99Ms: 220}, 400, 2)
    const {latency, why} = fitLatency([...fast, ...slow])
    expect(latency.distribution).toBe('empirical')
    expect(latency.samplesMs).toHaveLength(101)
    const replay = latencyModel({...latency})
    expect(replay.p50Ms).toBe(latency.p50Ms)
    expect(replay.p99Ms).toBe(latency.p99Ms)
    expect(why).toMatch(/^empirical/)
  })
})

describe('writeModels', () => {
  const source = [
    '# the shop',
    'name: shop',
    'services:',
    '  checkout:',
    '    command: node checkout.js   # the real one',
    '    dependsOn: [payments]',
    '  web:',
    '    command: |',
    '      node web.js',
    '    simulate: {latency: 5ms, concurrency: 4}    # by hand',
    '    env: {A: "1"}',
    '  payments:',
    '    simulate: {latency: 30ms}',
    '',
  ].join('\n')
  const fitted: FittedModel = {
    latency: {p50Ms: 12, p99Ms: 48},
    errorRate: 0.02,
    errorStatus: 503,
    calls: [{service: 'payments', probability: 1, path: '/pay', method: 'POST'}],
    callMode: 'sequential',
  }

  test('each block goes beside its command:, a simulate: there is replaced (keeping what the fit does not measure), the rest is untouched', () => {
    const out = writeModels(source, [
      {service: 'checkout', model: fitted, comment: 'from 300 requests'},
      {service: 'web', model: {...fitted, calls: [], errorRate: 0}, comment: 'from 200 requests'},
    ])
    expect(out.notWritten).toEqual([])
    expect(out.text).toBe(
      [
        '# the shop',
        'name: shop',
        'services:',
        '  checkout:',
        '    command: node checkout.js   # the real one',
        `    # ${FITTED_MARK} from 300 requests`,
        '    simulate:',
        '      latency: {p50: 12ms, p99: 48ms}',
        '      errorRate: 0.02',
        '      errorStatus: 503',
        '      calls:',
        '        - {service: payments, path: /pay, method: POST}',
        '    dependsOn: [payments]',
        '  web:',
        '    command: |',
        '      node web.js',
        `    # ${FITTED_MARK} from 200 requests`,
        '    simulate:',
        '      latency: {p50: 12ms, p99: 48ms}',
        '      concurrency: 4',
        '    env: {A: "1"}',
        '  payments:',
        '    simulate: {latency: 30ms}',
        '',
      ].join('\n'),
    )
    expect(out.edits.map((e) => [e.service, e.line, e.removed.length])).toEqual([['checkout', 6, 0], ['web', 10, 1]])
    expect(parseConfig(out.text, '/tmp/mesh.yaml').config).toBeDefined()
    // A second fit replaces the block and its comment, not adds another.
    const again = writeModels(out.text, [{service: 'checkout', model: {...fitted, errorRate: 0}, comment: 'from 400 requests'}])
    expect(again.text.match(new RegExp(FITTED_MARK, 'g'))).toHaveLength(2)
    expect(again.text).toContain(`    # ${FITTED_MARK} from 400 requests\n    simulate:\n      latency: {p50: 12ms, p99: 48ms}\n      calls:`)
  })

  test('a service without a command: of its own, or written as a flow map, is said and left alone', () => {
    const text = 'services:\n  a: {command: node a.js}\n  b:\n    versions:\n      v1: {command: node b.js}\n'
    const out = writeModels(text, [
      {service: 'a', model: fitted, comment: ''},
      {service: 'b', model: fitted, comment: ''},
    ])
    expect(out.text).toBe(text)
    expect(out.notWritten.map((n) => n.service)).toEqual(['a', 'b'])
    expect(out.notWritten[1].why).toMatch(/no command: of its own/)
  })
})
