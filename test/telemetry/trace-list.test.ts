import {describe, expect, it} from 'vitest'
import {renderTraceList} from '../../src/sim/telemetry/trace-list.js'
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
        '4bf92f3577b3  GET /checkout    120.0ms      8  200     frontend,catalog,inventory,cart (3 failed spans)',
        '',
      ].join('\n'),
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
