import {describe, expect, it} from 'vitest'
import type {Span} from '../../src/sim/telemetry/span.js'
import {TraceStore} from '../../src/sim/telemetry/trace-store.js'

const tid = (n: number) => n.toString(16).padStart(32, '0')
const sid = (n: number) => n.toString(16).padStart(16, '0')

/** A two-span trace: frontend's server span (root) and its client call to `callee`. */
function trace(n: number, opts: {start?: number; duration?: number; status?: number; callee?: string; calleeStatus?: number} = {}): Span[] {
  const start = opts.start ?? n * 1000
  const duration = opts.duration ?? 10
  return [
    {traceId: tid(n), spanId: sid(n * 10 + 1), kind: 'server', name: 'GET /home', service: 'frontend',
      method: 'GET', path: '/home', status: opts.status ?? 200, startMs: start, durationMs: duration},
    {traceId: tid(n), spanId: sid(n * 10 + 2), parentId: sid(n * 10 + 1), kind: 'client', name: 'GET /items',
      service: 'frontend', peerService: opts.callee ?? 'catalog', method: 'GET', path: '/items',
      status: opts.calleeStatus ?? 200, startMs: start + 1, durationMs: duration - 2},
  ]
}

describe('TraceStore', () => {
  it('groups spans by trace and summarises the root', () => {
    const store = new TraceStore()
    for (const s of trace(1, {duration: 40})) store.add(s)
    expect(store.get(tid(1))).toHaveLength(2)
    expect(store.list()).toEqual([
      {traceId: tid(1), root: {service: 'frontend', method: 'GET', path: '/home'}, entry: 'frontend', complete: true, startMs: 1000, durationMs: 40,
        spanCount: 2, services: ['frontend'], status: 200, error: false, errorSpans: 0},
    ])
  })

  it('lists the services a trace touched in call order, a caller before the callee that started with it', () => {
    const store = new TraceStore()
    // The ingress's client span and frontend's server span start at the same clock reading;
    // the callee's span arrives in the store first (it ends first).
    const at = 5000
    const spans: Span[] = [
      {traceId: tid(9), spanId: sid(92), parentId: sid(91), kind: 'server', name: 'GET /', service: 'frontend',
        peerService: 'ingress', method: 'GET', path: '/', status: 200, startMs: at, durationMs: 8},
      {traceId: tid(9), spanId: sid(93), parentId: sid(92), kind: 'client', name: 'GET /items', service: 'frontend',
        peerService: 'catalog', method: 'GET', path: '/items', status: 200, startMs: at + 1, durationMs: 5},
      {traceId: tid(9), spanId: sid(94), parentId: sid(93), kind: 'server', name: 'GET /items', service: 'catalog',
        peerService: 'frontend', method: 'GET', path: '/items', status: 200, startMs: at + 1, durationMs: 5},
      {traceId: tid(9), spanId: sid(91), kind: 'client', name: 'GET /', service: 'ingress',
        peerService: 'frontend', method: 'GET', path: '/', status: 200, startMs: at, durationMs: 9},
    ]
    for (const s of spans) store.add(s)
    expect(store.list()[0].services).toEqual(['ingress', 'frontend', 'catalog'])
  })

  it('evicts whole traces, oldest first, when over the span count', () => {
    const store = new TraceStore({maxSpans: 6})
    for (let n = 1; n <= 5; n++) for (const s of trace(n)) store.add(s)
    expect(store.stats()).toMatchObject({traces: 3, spans: 6, evictedTraces: 2})
    expect(store.get(tid(1))).toEqual([])
    expect(store.get(tid(2))).toEqual([])
    expect(store.get(tid(3))).toHaveLength(2)
    expect(store.get(tid(5))).toHaveLength(2)
  })

  it('evicts oldest traces when over the byte bound', () => {
    const one = new TraceStore()
    for (const s of trace(1)) one.add(s)
    const perTrace = one.stats().bytes
    const store = new TraceStore({maxBytes: perTrace * 3 + perTrace / 2})
    for (let n = 1; n <= 10; n++) for (const s of trace(n)) store.add(s)
    expect(store.stats().traces).toBe(3)
    expect(store.stats().bytes).toBeLessThanOrEqual(perTrace * 3.5)
    expect(store.list().map((s) => s.traceId).sort()).toEqual([tid(8), tid(9), tid(10)])
  })

  it('keeps a trace that is still growing when it is the only one', () => {
    const store = new TraceStore({maxSpans: 2})
    for (const s of trace(1)) store.add(s)
    store.add({...trace(1)[1], spanId: sid(99)})
    expect(store.get(tid(1))).toHaveLength(3)
  })

  it('caps spans per trace and counts the dropped ones; duplicates are kept once', () => {
    const store = new TraceStore({maxSpansPerTrace: 3})
    const [root, child] = trace(1)
    store.add(root)
    store.add(root)
    store.add(child)
    store.add({...child, spanId: sid(50)})
    store.add({...child, spanId: sid(51)})
    expect(store.get(tid(1))).toHaveLength(3)
    expect(store.stats().droppedSpans).toBe(1)
  })

  it('lists failed traces first, then slowest first', () => {
    const store = new TraceStore()
    const add = (spans: Span[]) => spans.forEach((s) => store.add(s))
    add(trace(1, {duration: 10}))
    add(trace(2, {duration: 500}))
    add(trace(3, {duration: 20, status: 503, calleeStatus: 503}))
    add(trace(4, {duration: 100}))
    add(trace(5, {duration: 5, calleeStatus: 502})) // a failed hop the caller recovered from
    expect(store.list().map((s) => s.traceId)).toEqual([tid(3), tid(5), tid(2), tid(4), tid(1)])
    expect(store.list()[0]).toMatchObject({error: true, status: 503})
    expect(store.list()[1]).toMatchObject({error: false, errorSpans: 1, status: 200})
  })

  it('filters by service, errors, minimum duration and limit', () => {
    const store = new TraceStore()
    const add = (spans: Span[]) => spans.forEach((s) => store.add(s))
    add(trace(1, {duration: 10}))
    add(trace(2, {duration: 300}))
    add(trace(3, {duration: 50, status: 500}))
    // a trace that reaches cart's own sidecar
    add([...trace(4, {duration: 120, callee: 'cart'}),
      {traceId: tid(4), spanId: sid(43), parentId: sid(42), kind: 'server', name: 'GET /items', service: 'cart',
        method: 'GET', path: '/items', status: 200, startMs: 4002, durationMs: 100}])
    expect(store.list({service: 'cart'}).map((s) => s.traceId)).toEqual([tid(4)])
    expect(store.list({service: 'nope'})).toEqual([])
    expect(store.list({errorsOnly: true}).map((s) => s.traceId)).toEqual([tid(3)])
    expect(store.list({minDurationMs: 100}).map((s) => s.traceId)).toEqual([tid(2), tid(4)])
    expect(store.list({limit: 2}).map((s) => s.traceId)).toEqual([tid(3), tid(2)])
  })

  it('since: only traces that started at or after it, the same ones a full scan would pick, each once', () => {
    const store = new TraceStore({maxSpans: 400})
    // 300 traces a second apart, some slow or failed; 100 are evicted by the span bound.
    for (let n = 1; n <= 300; n++) for (const s of trace(n, {duration: n % 7 === 0 ? 500 : 10, status: n % 11 === 0 ? 503 : 200})) store.add(s)
    // A late span (a long call that ends now) re-creates an evicted trace: its id now
    // stands twice in arrival order, and its start is long before `since`.
    store.add({...trace(5)[1], spanId: sid(59), durationMs: 300_000})
    const sinceMs = 250_000
    const fullScan = store.list().filter((t) => t.startMs >= sinceMs)
    expect(fullScan).toHaveLength(51)
    expect(store.list({sinceMs})).toEqual(fullScan)
    expect(store.list({sinceMs, errorsOnly: true})).toEqual(fullScan.filter((t) => t.error))
    expect(store.list({sinceMs, minDurationMs: 100, limit: 3}).map((t) => t.startMs)).toEqual([294_000, 287_000, 280_000])
    expect(store.list({sinceMs: 0}).length).toBe(store.list().length)
  })

  it('a trace is in flight until the span where its request entered the mesh has ended: no status, not failed', () => {
    const store = new TraceStore()
    // The ingress called frontend, whose call to cart failed (503) and was not retried; frontend then answered 502.
    const at = 9000
    const ingress: Span = {traceId: tid(7), spanId: sid(71), kind: 'client', name: 'GET /', service: 'ingress', peerService: 'frontend',
      method: 'GET', path: '/', status: 502, startMs: at, durationMs: 30}
    const server: Span = {traceId: tid(7), spanId: sid(72), parentId: sid(71), kind: 'server', name: 'GET /', service: 'frontend',
      peerService: 'ingress', method: 'GET', path: '/', status: 502, startMs: at + 1, durationMs: 28}
    const cart: Span = {traceId: tid(7), spanId: sid(73), parentId: sid(72), kind: 'client', name: 'GET /cart', service: 'frontend',
      peerService: 'cart', method: 'GET', path: '/cart', status: 503, startMs: at + 2, durationMs: 5}
    store.add(cart)
    expect(store.list()[0]).toMatchObject({complete: false, status: 0, error: false, errorSpans: 1, root: {path: '/cart'}})
    expect(store.list({errorsOnly: true, completeOnly: true})).toEqual([])
    store.add(server)
    expect(store.list()[0]).toMatchObject({complete: false, status: 0, error: false})
    store.add(ingress)
    expect(store.list({completeOnly: true})[0]).toMatchObject({complete: true, status: 502, error: true, errorSpans: 3, entry: 'frontend', root: {service: 'ingress', path: '/'}})
  })

  it("the ingress's span ends the request even when an outside client's span is its parent; so does an outside call to an instance", () => {
    const store = new TraceStore()
    store.add({traceId: tid(8), spanId: sid(81), parentId: 'ab'.repeat(8), kind: 'client', name: 'GET /', service: 'ingress',
      peerService: 'frontend', method: 'GET', path: '/', status: 200, startMs: 1, durationMs: 3})
    store.add({traceId: tid(9), spanId: sid(91), parentId: 'cd'.repeat(8), kind: 'server', name: 'GET /x', service: 'catalog',
      peerService: 'unknown', method: 'GET', path: '/x', status: 200, startMs: 1, durationMs: 3})
    // A call inside the mesh whose caller has not ended yet.
    store.add({traceId: tid(10), spanId: sid(101), parentId: 'ef'.repeat(8), kind: 'server', name: 'GET /y', service: 'catalog',
      peerService: 'frontend', method: 'GET', path: '/y', status: 200, startMs: 1, durationMs: 3})
    expect(Object.fromEntries(store.list().map((t) => [t.traceId, t.complete]))).toEqual({[tid(8)]: true, [tid(9)]: true, [tid(10)]: false})
    expect(store.list({completeOnly: true}).map((t) => t.entry).sort()).toEqual(['catalog', 'frontend'])
    // No route at the ingress: the request got no further.
    store.add({traceId: tid(11), spanId: sid(111), kind: 'client', name: 'GET /nowhere', service: 'ingress', peerService: 'unknown',
      method: 'GET', path: '/nowhere', status: 404, responseFlags: 'NR', startMs: 1, durationMs: 1})
    expect(store.list().find((t) => t.traceId === tid(11))).toMatchObject({entry: 'ingress', complete: true, status: 404})
  })

  it('a runaway trace over the per-trace cap still takes its entry span, so it does not look in flight for ever', () => {
    const store = new TraceStore({maxSpansPerTrace: 1})
    const [root, child] = trace(3)
    store.add(child)
    store.add(root)
    expect(store.list()[0]).toMatchObject({complete: true, spanCount: 2})
  })

  it('finds traces by id prefix', () => {
    const store = new TraceStore()
    for (const s of trace(0xabc)) store.add(s)
    expect(store.findByPrefix(tid(0xabc).slice(0, 30))).toEqual([tid(0xabc)])
    expect(store.findByPrefix('ffff')).toEqual([])
  })
})
