// A 3-level trace with fixed timestamps: ingress → frontend → catalog (retried once after
// an injected abort) and frontend → cart; used by the waterfall golden test.
import type {Span} from '../../src/sim/telemetry/span.js'

export const T0 = 1_700_000_000_000
const trace = '4bf92f3577b34da6a3ce929d0e0e4736'

export function shopTrace(): Span[] {
  return [
    {traceId: trace, spanId: 'a000000000000001', kind: 'server', name: 'GET /checkout', service: 'frontend',
      version: 'v1', instance: 'frontend-v1-0', method: 'GET', path: '/checkout', status: 200,
      startMs: T0, durationMs: 120},
    // first attempt to catalog: aborted by an injected fault, so no server span
    {traceId: trace, spanId: 'b000000000000001', parentId: 'a000000000000001', kind: 'client', name: 'GET /items',
      service: 'frontend', version: 'v1', instance: 'frontend-v1-0', peerService: 'catalog', method: 'GET',
      path: '/items', status: 503, startMs: T0 + 2, durationMs: 1, attempt: 1, responseFlags: 'FI',
      fault: 'abort 503 (10%)', cause: 'fault injected: abort with 503',
      decision: {candidates: ['catalog-v1-0', 'catalog-v1-1'], chosen: 'catalog-v1-0', ejected: [], faults: ['abort 503'], retryBudgetLeft: 9}},
    {traceId: trace, spanId: 'b000000000000002', parentId: 'a000000000000001', kind: 'client', name: 'GET /items',
      service: 'frontend', version: 'v1', instance: 'frontend-v1-0', peerService: 'catalog', method: 'GET',
      path: '/items', status: 200, startMs: T0 + 28, durationMs: 60, attempt: 2,
      decision: {candidates: ['catalog-v1-0', 'catalog-v1-1', 'catalog-v2-0'], chosen: 'catalog-v1-1', ejected: ['catalog-v2-0'], retryBudgetLeft: 8}},
    {traceId: trace, spanId: 'c000000000000001', parentId: 'b000000000000002', kind: 'server', name: 'GET /items',
      service: 'catalog', version: 'v1', instance: 'catalog-v1-1', method: 'GET', path: '/items', status: 200,
      startMs: T0 + 29, durationMs: 58},
    {traceId: trace, spanId: 'd000000000000001', parentId: 'c000000000000001', kind: 'client', name: 'GET /stock',
      service: 'catalog', version: 'v1', instance: 'catalog-v1-1', peerService: 'inventory', method: 'GET',
      path: '/stock', status: 200, startMs: T0 + 40, durationMs: 30, attempt: 1,
      decision: {candidates: ['inventory-v1-0'], chosen: 'inventory-v1-0', ejected: []}},
    {traceId: trace, spanId: 'e000000000000001', parentId: 'd000000000000001', kind: 'server', name: 'GET /stock',
      service: 'inventory', version: 'v1', instance: 'inventory-v1-0', method: 'GET', path: '/stock', status: 200,
      startMs: T0 + 41, durationMs: 28, fault: 'delay 20ms', responseFlags: 'DI'},
    {traceId: trace, spanId: 'f000000000000001', parentId: 'a000000000000001', kind: 'client', name: 'POST /cart',
      service: 'frontend', version: 'v1', instance: 'frontend-v1-0', peerService: 'cart', method: 'POST',
      path: '/cart', status: 504, startMs: T0 + 90, durationMs: 25, attempt: 1, responseFlags: 'UT',
      cause: 'upstream timeout: cart did not answer within 25ms',
      decision: {candidates: ['cart-v1-0'], chosen: 'cart-v1-0', ejected: [], timeoutFired: 'overall', retryBudgetLeft: 8}},
    {traceId: trace, spanId: 'f100000000000001', parentId: 'f000000000000001', kind: 'server', name: 'POST /cart',
      service: 'cart', version: 'v1', instance: 'cart-v1-0', method: 'POST', path: '/cart', status: 0,
      startMs: T0 + 91, durationMs: 29},
  ]
}

/**
 * A 40-service chain, s0 → s1 → … → s39, as the issue measured it: each hop a client span
 * and the next service's server span, so the tree is 79 levels deep.
 */
export function chainTrace(services = 40): Span[] {
  const chain = 'c0ffee0000000000000000000000c0de'
  const id = (kind: 's' | 'c', i: number) => `${kind}${String(i).padStart(15, '0')}`
  const spans: Span[] = []
  for (let i = 0; i < services; i++) {
    const service = `s${i}`
    const start = T0 + 3 * i
    const durationMs = 3 * (services - i) + 1
    spans.push({traceId: chain, spanId: id('s', i), parentId: i === 0 ? undefined : id('c', i - 1), kind: 'server', name: 'GET /',
      service, version: 'v1', instance: `${service}-v1-0`, method: 'GET', path: '/', status: 200, startMs: start, durationMs})
    if (i === services - 1) break
    spans.push({traceId: chain, spanId: id('c', i), parentId: id('s', i), kind: 'client', name: 'GET /', service, version: 'v1',
      instance: `${service}-v1-0`, peerService: `s${i + 1}`, method: 'GET', path: '/', status: 200, startMs: start + 1, durationMs: durationMs - 2, attempt: 1})
  }
  return spans
}
