import {describe, expect, it} from 'vitest'
import {renderSamplingNote, renderTraceList} from '../../src/sim/telemetry/trace-list.js'
import {TraceStore} from '../../src/sim/telemetry/trace-store.js'
import {shopTrace} from './waterfall-fixture.js'

describe('renderTraceList', () => {
  const store = new TraceStore()
  for (const s of shopTrace()) store.add(s)
  store.add({traceId: 'ff'.repeat(16), spanId: '1'.repeat(16), kind: 'server', name: 'GET /health', service: 'frontend',
    method: 'GET', path: '/health', status: 503, startMs: 1_700_000_001_000, durationMs: 2})

  it('prints one line per trace: short id, root, duration, spans, status, services', () => {
    const out = renderTraceList(store.list(), {colour: false})
    expect(out).toBe(
      [
        'TRACE         ROOT            DURATION  SPANS  STATUS  SERVICES',
        'ffffffffffff  GET /health       2.00ms      1  503     frontend',
        '4bf92f3577b3  GET /checkout    120.0ms      8  200     frontend ▸ cart, catalog, inventory (3 failed spans)',
        '',
      ].join('\n'),
    )
  })

  it("shows a gRPC call's status: it answered 200 whatever happened, and a failed one is listed as failed", () => {
    const grpcStore = new TraceStore()
    grpcStore.add({traceId: 'aa'.repeat(16), spanId: '2'.repeat(16), kind: 'client', name: 'POST /shop.Ratings/Get', service: 'app',
      peerService: 'ratings', method: 'POST', path: '/shop.Ratings/Get', status: 200, grpcStatus: 14, startMs: 1_700_000_002_000, durationMs: 3})
    const [summary] = grpcStore.list()
    expect(summary).toMatchObject({status: 200, grpcStatus: 14, error: true})
    expect(renderTraceList([summary], {colour: false, header: false})).toBe('aaaaaaaaaaaa  POST /shop.Ratings/Get     3.00ms      1  200     app grpc 14 UNAVAILABLE\n')
  })

  it('shows a trace in flight as such: no status yet, and its failed calls so far', () => {
    const inFlight = new TraceStore()
    inFlight.add({traceId: 'cc'.repeat(16), spanId: '3'.repeat(16), parentId: '4'.repeat(16), kind: 'client', name: 'GET /cart',
      service: 'frontend', peerService: 'cart', method: 'GET', path: '/cart', status: 503, startMs: 1_700_000_003_000, durationMs: 4})
    expect(renderTraceList(inFlight.list(), {colour: false, header: false})).toBe(
      'cccccccccccc  GET /cart     4.00ms      1  …       frontend (1 failed span so far) (in flight)\n',
    )
  })

  it('colours only when asked', () => {
    expect(renderTraceList(store.list(), {colour: false})).not.toMatch(/\u001b\[/)
    expect(renderTraceList(store.list(), {colour: true})).toContain('\u001b[31m503')
  })

  it('says what to do when there are no traces', () => {
    expect(renderTraceList([], {colour: false})).toMatch(/No traces yet/)
  })
})

describe('sampling note under `mesh traces`', () => {
  it('silent while every trace is kept; says how much is kept, and where to change it, when sampling', () => {
    expect(renderSamplingNote({spansPerSecond: 500, keepProbability: 1, sampledOut: 0}, {colour: false})).toBe('')
    const note = renderSamplingNote({spansPerSecond: 500, keepProbability: 0.0412, sampledOut: 12345}, {colour: false})
    expect(note).toContain('4.1% of healthy traces are kept right now')
    expect(note).toContain('telemetry.sampling.spansPerSecond: 500')
    expect(note).toContain('failed spans are always kept')
    expect(note).toContain('12345 span(s) left out')
    expect(renderSamplingNote({spansPerSecond: 500, keepProbability: 1, sampledOut: 3}, {colour: false})).toContain('every trace is kept right now')
  })
})
