import {describe, expect, it} from 'vitest'
import {isErrorSpan, type Span} from '../../src/sim/telemetry/span.js'
import {renderWaterfall} from '../../src/sim/telemetry/waterfall.js'
import {shopTrace, T0} from './waterfall-fixture.js'

// ESC followed by '[': the start of every ANSI colour sequence.
const ANSI = /\u001b\[/

// ingress → frontend → catalog (first attempt aborted by a fault, retried) → inventory (delay
// fault), and frontend → cart timing out; the cart server span ends after its client (skew).
const GOLDEN = [
  "trace 4bf92f3577b34da6a3ce929d0e0e4736  GET /checkout  120.0ms  8 spans  4 services",
  "                                   0            60.0ms      120.0ms",
  "* frontend-v1-0 GET /checkout     │████████████████████████████████│ 120.0ms 200",
  "* ├─→ catalog GET /items          │█                               │  1.00ms 503 (attempt 1) [FI]",
  "  │   ↳ fault: abort 503 (10%)",
  "  │   ↳ cause: fault injected: abort with 503",
  "* ├─→ catalog GET /items          │       █████████████████        │  60.0ms 200 (attempt 2)",
  "* │ └─catalog-v1-1 GET /items     │       █████████████████        │  58.0ms 200",
  "* │   └─→ inventory GET /stock    │          █████████             │  30.0ms 200",
  "* │     └─inventory-v1-0 GET /sto…│          █████████             │  28.0ms 200 [DI]",
  "  │         ↳ fault: delay 20ms",
  "* └─→ cart POST /cart             │                        ███████ │  25.0ms 504 [UT]",
  "    │ ↳ cause: upstream timeout: cart did not answer within 25ms",
  "*   └─cart-v1-0 POST /cart        │                        ████████│  29.0ms ---",
  "* critical path   bars on a common axis from the first start to the last end",
  "",
].join('\n')

const GOLDEN_WHY = [
  "trace 4bf92f3577b34da6a3ce929d0e0e4736  GET /checkout  120.0ms  8 spans  4 services",
  "                                   0            60.0ms      120.0ms",
  "* frontend-v1-0 GET /checkout     │████████████████████████████████│ 120.0ms 200",
  "* ├─→ catalog GET /items          │█                               │  1.00ms 503 (attempt 1) [FI]",
  "  │   ↳ fault: abort 503 (10%)",
  "  │   ↳ cause: fault injected: abort with 503",
  "  │   ↳ why: chose catalog-v1-0 of [catalog-v1-0, catalog-v1-1]; retry budget left 9",
  "* ├─→ catalog GET /items          │       █████████████████        │  60.0ms 200 (attempt 2)",
  "  │ │ ↳ why: chose catalog-v1-1 of [catalog-v1-0, catalog-v1-1, catalog-v2-0]; skipped ejected",
  "  │ │   catalog-v2-0; retry budget left 8",
  "* │ └─catalog-v1-1 GET /items     │       █████████████████        │  58.0ms 200",
  "* │   └─→ inventory GET /stock    │          █████████             │  30.0ms 200",
  "  │     │ ↳ why: chose inventory-v1-0 of [inventory-v1-0]",
  "* │     └─inventory-v1-0 GET /sto…│          █████████             │  28.0ms 200 [DI]",
  "  │         ↳ fault: delay 20ms",
  "* └─→ cart POST /cart             │                        ███████ │  25.0ms 504 [UT]",
  "    │ ↳ cause: upstream timeout: cart did not answer within 25ms",
  "    │ ↳ why: chose cart-v1-0 of [cart-v1-0]; retry budget left 8; overall timeout fired",
  "*   └─cart-v1-0 POST /cart        │                        ████████│  29.0ms ---",
  "* critical path   bars on a common axis from the first start to the last end",
  "",
].join('\n')

describe('renderWaterfall', () => {
  it('renders the 3-level trace exactly (golden, width 100, no colour)', () => {
    expect(renderWaterfall(shopTrace(), {width: 100, colour: false})).toBe(GOLDEN)
  })

  it('adds each hop\'s routing decision with --why (golden)', () => {
    expect(renderWaterfall(shopTrace(), {width: 100, colour: false, why: true})).toBe(GOLDEN_WHY)
  })

  it('does not depend on the order spans arrive in', () => {
    const reversed = shopTrace().reverse()
    expect(renderWaterfall(reversed, {width: 100, colour: false})).toBe(GOLDEN)
  })

  it('keeps every line within the width', () => {
    for (const width of [60, 100, 160]) {
      const out = renderWaterfall(shopTrace(), {width, colour: false, why: true})
      for (const line of out.split('\n')) expect(line.length).toBeLessThanOrEqual(width)
    }
  })

  it('has no ANSI escapes when colour is false, and colours status when true', () => {
    expect(renderWaterfall(shopTrace(), {width: 100, colour: false, why: true})).not.toMatch(ANSI)
    const coloured = renderWaterfall(shopTrace(), {width: 100, colour: true})
    expect(coloured).toMatch(ANSI)
    expect(coloured).toContain('\u001b[31m504') // red 5xx
    expect(coloured).toContain('\u001b[32m200') // green 2xx
  })

  it('marks the critical path: the shop trace calls catalog, then cart, so every hop is on it', () => {
    const lines = renderWaterfall(shopTrace(), {width: 100, colour: false}).split('\n')
    const bars = lines.filter((l) => /│ *█+ *│/.test(l))
    expect(bars.length).toBe(8)
    expect(bars.filter((l) => !l.startsWith('* '))).toEqual([])
  })

  it('shows a span whose parent is missing as a marked orphan at the top level', () => {
    const spans = shopTrace().filter((s) => s.spanId !== 'b000000000000002') // lose the retry's client span
    const out = renderWaterfall(spans, {width: 100, colour: false})
    const orphanLine = out.split('\n').find((l) => l.includes('? catalog-v1-1 GET /items'))
    expect(orphanLine).toBeDefined()
    expect(orphanLine!.startsWith('  ? catalog')).toBe(true) // top level: no tree connector
    expect(out).toContain('orphan: parent b000000000000002 is not in this trace')
    expect(out).toContain('? orphan (parent span missing)')
    // its own child still hangs under it
    expect(out).toMatch(/└─→ inventory GET \/stock/)
  })

  it("a gRPC call's failure shows its gRPC status, and counts as an error although it answered 200", () => {
    const base = {traceId: 'f'.repeat(32), kind: 'client' as const, service: 'app', peerService: 'echo', method: 'POST', path: '/shop.Echo/Get', name: 'POST /shop.Echo/Get', status: 200, startMs: T0, durationMs: 5}
    const failed: Span = {...base, spanId: '1'.repeat(16), grpcStatus: 14}
    const ok: Span = {...base, spanId: '2'.repeat(16), startMs: T0 + 10, grpcStatus: 0}
    const out = renderWaterfall([failed, ok], {width: 100, colour: false})
    const lines = out.split('\n').filter((l) => l.includes('echo POST /shop.Echo/Get'))
    expect(lines[0]).toMatch(/200 grpc 14 UNAVAILABLE$/)
    expect(lines[1]).toMatch(/ 200$/)
    expect(isErrorSpan(failed)).toBe(true)
    expect(isErrorSpan(ok)).toBe(false)
    expect(isErrorSpan({...failed, grpcStatus: 5})).toBe(false) // NOT_FOUND counts as a 404
  })

  it('never throws on duplicates, zero durations, skew, cycles, bad numbers or no spans', () => {
    const base = shopTrace()
    const weird: Span[] = [
      ...base,
      ...base.slice(0, 3), // duplicates
      {...base[3], spanId: 'aa00000000000001', durationMs: 0}, // zero duration
      {...base[4], spanId: 'aa00000000000002', startMs: T0 - 50, durationMs: -5}, // skewed before the root, negative
      {...base[4], spanId: 'aa00000000000003', startMs: Number.NaN, durationMs: Number.NaN},
      {...base[4], spanId: 'cc00000000000001', parentId: 'cc00000000000002'}, // a parent cycle
      {...base[4], spanId: 'cc00000000000002', parentId: 'cc00000000000001'},
      {...base[4], spanId: 'dd00000000000001', parentId: 'dd00000000000001'}, // its own parent
    ]
    for (let seed = 0; seed < 20; seed++) {
      const shuffled = weird.slice().sort((a, b) => ((a.spanId.charCodeAt(seed % 16) * 31 + seed) % 7) - ((b.spanId.charCodeAt(seed % 16) * 17 + seed) % 5))
      const out = renderWaterfall(shuffled, {width: 80, colour: false, why: seed % 2 === 0})
      expect(() => renderWaterfall(shuffled, {width: 80, colour: true, why: true})).not.toThrow()
      expect(out).toContain('* frontend-v1-0 GET /check')
      expect(out).toContain('orphan: its parent chain')
    }
    const out = renderWaterfall(weird, {width: 80, colour: false})
    expect(out).toContain('orphan: names itself (dd00000000000001) as its parent')
    // duplicates render once: 8 distinct fixture spans plus 6 added
    expect(out.split('\n').filter((l) => /│ *█+ *│/.test(l)).length).toBe(14)
    expect(renderWaterfall([], {width: 80, colour: false})).toBe('No spans in this trace.\n')
    expect(() => renderWaterfall([base[0]], {width: 5, colour: false})).not.toThrow()
  })

  describe('a call the activator held for a cold start', () => {
    const trace = '0af7651916cd43dd8448eb211c80319c'
    const coldTrace = (coldStartMs: number, durationMs = 850): Span[] => [
      {traceId: trace, spanId: 'a000000000000001', kind: 'client', name: 'GET /hello', service: 'ingress', peerService: 'fn', method: 'GET',
        path: '/hello', status: 200, startMs: T0, durationMs, attempt: 1, coldStartMs},
      {traceId: trace, spanId: 'b000000000000001', parentId: 'a000000000000001', kind: 'server', name: 'GET /hello', service: 'fn', version: 'v1',
        instance: 'fn-v1-0', method: 'GET', path: '/hello', status: 200, startMs: T0 + 805, durationMs: 40},
    ]

    it('draws the cold start as its own segment before the call\'s own time, and labels it (golden)', () => {
      expect(renderWaterfall(coldTrace(800), {width: 100, colour: false})).toBe([
        'trace 0af7651916cd43dd8448eb211c80319c  GET /hello  850.0ms  2 spans  2 services',
        '                          0                425.0ms          850.0ms',
        '* ingress → fn GET /hello│░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░██│ 850.0ms 200',
        '  │ ↳ cold start: waited 800.0ms for an instance of fn to start (░)',
        '* └─fn-v1-0 GET /hello   │                                      ███│  40.0ms 200',
        '* critical path   ░ cold start (held for a new instance)   bars on a common axis from the first',
        'start to the last end',
        '',
      ].join('\n'))
    })

    it('keeps a cell for each part, whatever the sizes; a trace without one has no mark and no legend for it', () => {
      const bar = (out: string) => out.split('\n')[2].split('│')[1]
      // 1 ms of 850: still one cell of its own
      expect(bar(renderWaterfall(coldTrace(1), {width: 100, colour: false}))).toMatch(/^░█+$/)
      // A report longer than the span (clocks, rounding) fills the bar with cold start, never more.
      expect(bar(renderWaterfall(coldTrace(5000, 100), {width: 100, colour: false})).trimEnd()).toMatch(/^░+$/)
      const coloured = renderWaterfall(coldTrace(800), {width: 100, colour: true})
      expect(coloured).toContain('\u001b[36m░')
      const warm = renderWaterfall(coldTrace(0), {width: 100, colour: false})
      expect(warm).not.toContain('░')
      expect(warm).not.toContain('cold start')
    })
  })
})
