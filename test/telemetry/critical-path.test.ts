import {describe, expect, it} from 'vitest'
import {criticalPath, type TimedNode} from '../../src/sim/telemetry/critical-path.js'
import type {Span} from '../../src/sim/telemetry/span.js'
import {renderWaterfall} from '../../src/sim/telemetry/waterfall.js'
import {T0} from './waterfall-fixture.js'

// A hop as a test writes it: the caller's client span and, under it, the callee's server
// span (starting 1 ms later, ending 1 ms earlier), with the callee's own calls under that.
interface Hop {
  to: string
  start: number
  end: number
  calls?: Hop[]
}

const TRACE = 'ab'.repeat(16)
const id = (n: number) => n.toString(16).padStart(16, '0')

/** Spans for a root server span of `service` over [0, end] making `calls`; ids in depth-first order from 1. */
function spansOf(service: string, end: number, calls: Hop[]): Span[] {
  const spans: Span[] = []
  const server = (svc: string, start: number, stop: number, parentId: string | undefined, name: string, hops: Hop[]) => {
    const spanId = id(spans.length + 1)
    spans.push({traceId: TRACE, spanId, parentId, kind: 'server', name, service: svc, instance: `${svc}-v1-0`,
      method: 'GET', path: name.slice(4), status: 200, startMs: T0 + start, durationMs: stop - start})
    for (const hop of hops) {
      const clientId = id(spans.length + 1)
      const hopName = `GET /${hop.to}`
      spans.push({traceId: TRACE, spanId: clientId, parentId: spanId, kind: 'client', name: hopName, service: svc,
        peerService: hop.to, method: 'GET', path: `/${hop.to}`, status: 200, startMs: T0 + hop.start, durationMs: hop.end - hop.start})
      server(hop.to, hop.start + 1, hop.end - 1, clientId, hopName, hop.calls ?? [])
    }
  }
  server(service, 0, end, undefined, 'GET /', calls)
  return spans
}

/** The same spans as bare timed nodes, to check the algorithm apart from rendering. */
function nodesOf(spans: Span[]): Array<TimedNode<never> & {id: string}> {
  type N = {id: string; start: number; end: number; children: N[]}
  const byId = new Map<string, N>(spans.map((s) => [s.spanId, {id: s.spanId, start: s.startMs, end: s.startMs + s.durationMs, children: []}]))
  const top: N[] = []
  for (const s of spans) (s.parentId ? byId.get(s.parentId)!.children : top).push(byId.get(s.spanId)!)
  return top as never
}

function markedIds(spans: Span[]): string[] {
  return [...criticalPath(nodesOf(spans) as never[])].map((n: {id: string}) => n.id).sort()
}

function starredLines(spans: Span[]): string[] {
  return renderWaterfall(spans, {width: 100, colour: false}).split('\n').filter((l) => l.startsWith('* ') && l.includes('│'))
}

describe('critical path (as Jaeger computes it)', () => {
  // Bookinfo: productpage calls details (delayed 3 s), then reviews, which calls ratings.
  const sequential = () => spansOf('productpage', 3020, [
    {to: 'details', start: 2, end: 3002},
    {to: 'reviews', start: 3004, end: 3016, calls: [{to: 'ratings', start: 3007, end: 3012}]},
  ])

  it('sequential calls: every call is on the path, the slow one included', () => {
    const spans = sequential()
    // 1 productpage, 2/3 details, 4/5 reviews, 6/7 ratings
    expect(markedIds(spans)).toEqual([1, 2, 3, 4, 5, 6, 7].map(id))
    expect(renderWaterfall(spans, {width: 100, colour: false})).toBe([
      'trace abababababababababababababababab  GET /  3.02s  7 spans  4 services',
      '                                  0             1.51s         3.02s',
      '* productpage-v1-0 GET /         │█████████████████████████████████│   3.02s 200',
      '* ├─→ details GET /details       │█████████████████████████████████│   3.00s 200',
      '* │ └─details-v1-0 GET /details  │█████████████████████████████████│   3.00s 200',
      '* └─→ reviews GET /reviews       │                                █│  12.0ms 200',
      '*   └─reviews-v1-0 GET /reviews  │                                █│  10.0ms 200',
      '*     └─→ ratings GET /ratings   │                                █│  5.00ms 200',
      '* [4] └─ratings-v1-0 GET /ratings│                                █│  3.00ms 200',
      '* critical path   [n] depth, past what indent fits   bars on a common axis from the first start to',
      'the last end',
      '',
    ].join('\n'))
  })

  it('parallel calls: only the one that ended last', () => {
    const spans = spansOf('frontend', 100, [
      {to: 'catalog', start: 2, end: 90},
      {to: 'cart', start: 3, end: 40},
      {to: 'inventory', start: 4, end: 60},
    ])
    // 1 frontend, 2/3 catalog, 4/5 cart, 6/7 inventory
    expect(markedIds(spans)).toEqual([1, 2, 3].map(id))
    expect(starredLines(spans)).toEqual([
      '* frontend-v1-0 GET /              │███████████████████████████████│ 100.0ms 200',
      '* ├─→ catalog GET /catalog         │████████████████████████████   │  88.0ms 200',
      '* │ └─catalog-v1-0 GET /catalog    │████████████████████████████   │  86.0ms 200',
    ])
  })

  it('mixed: the slower of two parallel calls, then the call made after both', () => {
    const spans = spansOf('frontend', 100, [
      {to: 'catalog', start: 2, end: 30},
      {to: 'cart', start: 3, end: 50, calls: [{to: 'inventory', start: 10, end: 20}, {to: 'pricing', start: 22, end: 45}]},
      {to: 'checkout', start: 52, end: 95},
    ])
    // 1 frontend; 2/3 catalog; 4/5 cart with 6/7 inventory and 8/9 pricing; 10/11 checkout
    expect(markedIds(spans)).toEqual([1, 4, 5, 6, 7, 8, 9, 10, 11].map(id))
    expect(starredLines(spans).map((l) => l.slice(2, 34).trim())).toEqual([
      'frontend-v1-0 GET /',
      '├─→ cart GET /cart',
      '│ └─cart-v1-0 GET /cart',
      '│   ├─→ inventory GET /inventory',
      '[4] └─inventory-v1-0 GET /invent',
      '│   └─→ pricing GET /pricing',
      '[4] └─pricing-v1-0 GET /pricing',
      '└─→ checkout GET /checkout',
      '└─checkout-v1-0 GET /checkout',
    ])
  })

  it('a server span a skewed clock puts past its client span is clipped to it, not dropped', () => {
    const spans = sequential()
    spans[2] = {...spans[2], durationMs: spans[2].durationMs + 10} // details' server span ends after its client
    expect(markedIds(spans)).toContain(id(3))
  })

  it('a call issued the moment the previous one returned waited for it', () => {
    const spans = spansOf('frontend', 50, [{to: 'a', start: 2, end: 20}, {to: 'b', start: 20, end: 48}])
    expect(markedIds(spans)).toEqual([1, 2, 3, 4, 5].map(id))
  })
})
