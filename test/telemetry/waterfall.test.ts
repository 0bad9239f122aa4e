import {describe, expect, it} from 'vitest'
import {isErrorSpan, type Span} from '../../src/sim/telemetry/span.js'
import {renderWaterfall} from '../../src/sim/telemetry/waterfall.js'
import {chainTrace, shopTrace, T0} from './waterfall-fixture.js'

// ESC followed by '[': the start of every ANSI colour sequence.
const ANSI = /\u001b\[/

// ingress → frontend → catalog (first attempt aborted by a fault, retried) → inventory (delay
// fault), and frontend → cart timing out; the cart server span ends after its client (skew).
const GOLDEN = [
  "trace 4bf92f3577b34da6a3ce929d0e0e4736  GET /checkout  120.0ms  8 spans  4 services",
  "                                    0           60.0ms      120.0ms",
  "* frontend-v1-0 GET /checkout      │███████████████████████████████│ 120.0ms 200",
  "* ├─→ catalog GET /items           │█                              │  1.00ms 503 (attempt 1) [FI]",
  "  │   ↳ fault: abort 503 (10%)",
  "  │   ↳ cause: fault injected: abort with 503",
  "* ├─→ catalog GET /items           │       ████████████████        │  60.0ms 200 (attempt 2)",
  "* │ └─catalog-v1-1 GET /items      │       ████████████████        │  58.0ms 200",
  "* │   └─→ inventory GET /stock     │          █████████            │  30.0ms 200",
  "* │     └─inventory-v1-0 GET /stock│          ████████             │  28.0ms 200 [DI]",
  "  │         ↳ fault: delay 20ms",
  "* └─→ cart POST /cart              │                       ███████ │  25.0ms 504 [UT]",
  "    │ ↳ cause: upstream timeout: cart did not answer within 25ms",
  "*   └─cart-v1-0 POST /cart         │                       ████████│  29.0ms ---",
  "* critical path   bars on a common axis from the first start to the last end",
  "",
].join('\n')

const GOLDEN_WHY = [
  "trace 4bf92f3577b34da6a3ce929d0e0e4736  GET /checkout  120.0ms  8 spans  4 services",
  "                                    0           60.0ms      120.0ms",
  "* frontend-v1-0 GET /checkout      │███████████████████████████████│ 120.0ms 200",
  "* ├─→ catalog GET /items           │█                              │  1.00ms 503 (attempt 1) [FI]",
  "  │   ↳ fault: abort 503 (10%)",
  "  │   ↳ cause: fault injected: abort with 503",
  "  │   ↳ why: chose catalog-v1-0 of [catalog-v1-0, catalog-v1-1]; retry budget left 9",
  "* ├─→ catalog GET /items           │       ████████████████        │  60.0ms 200 (attempt 2)",
  "  │ │ ↳ why: chose catalog-v1-1 of [catalog-v1-0, catalog-v1-1, catalog-v2-0]; skipped ejected",
  "  │ │   catalog-v2-0; retry budget left 8",
  "* │ └─catalog-v1-1 GET /items      │       ████████████████        │  58.0ms 200",
  "* │   └─→ inventory GET /stock     │          █████████            │  30.0ms 200",
  "  │     │ ↳ why: chose inventory-v1-0 of [inventory-v1-0]",
  "* │     └─inventory-v1-0 GET /stock│          ████████             │  28.0ms 200 [DI]",
  "  │         ↳ fault: delay 20ms",
  "* └─→ cart POST /cart              │                       ███████ │  25.0ms 504 [UT]",
  "    │ ↳ cause: upstream timeout: cart did not answer within 25ms",
  "    │ ↳ why: chose cart-v1-0 of [cart-v1-0]; retry budget left 8; overall timeout fired",
  "*   └─cart-v1-0 POST /cart         │                       ████████│  29.0ms ---",
  "* critical path   bars on a common axis from the first start to the last end",
  "",
].join('\n')

// A 40-service chain (79 levels): five levels are drawn as a tree, the rest fold their indent
// into the depth, so every name is whole; a detail line under a folded row lines up with it.
const GOLDEN_DEEP = [
  "trace c0ffee0000000000000000000000c0de  GET /  121.0ms  79 spans  40 services",
  "                           0            121.0ms",
  "* s0-v1-0 GET /           │████████████████████│ 121.0ms 200",
  "* └─→ s1 GET /            │████████████████████│ 119.0ms 200",
  "*   └─s1-v1-0 GET /       │████████████████████│ 118.0ms 200",
  "*     └─→ s2 GET /        │████████████████████│ 116.0ms 200",
  "*       └─s2-v1-0 GET /   │████████████████████│ 115.0ms 200",
  "*         └─→ s3 GET /    │ ███████████████████│ 113.0ms 200",
  "* [6]     └─s3-v1-0 GET / │ ███████████████████│ 112.0ms 200",
  "* [7]     └─→ s4 GET /    │ ███████████████████│ 110.0ms 200",
  "* [8]     └─s4-v1-0 GET / │ ███████████████████│ 109.0ms 200",
  "* [9]     └─→ s5 GET /    │  ██████████████████│ 107.0ms 200",
  "* [10]    └─s5-v1-0 GET / │  ██████████████████│ 106.0ms 200",
  "* [11]    └─→ s6 GET /    │  ██████████████████│ 104.0ms 200",
  "* [12]    └─s6-v1-0 GET / │  ██████████████████│ 103.0ms 200",
  "* [13]    └─→ s7 GET /    │   █████████████████│ 101.0ms 200",
  "* [14]    └─s7-v1-0 GET / │   █████████████████│ 100.0ms 200",
  "* [15]    └─→ s8 GET /    │   █████████████████│  98.0ms 200",
  "* [16]    └─s8-v1-0 GET / │   █████████████████│  97.0ms 200",
  "* [17]    └─→ s9 GET /    │    ████████████████│  95.0ms 200",
  "* [18]    └─s9-v1-0 GET / │    ████████████████│  94.0ms 200",
  "* [19]    └─→ s10 GET /   │    ████████████████│  92.0ms 200",
  "* [20]    └─s10-v1-0 GET /│    ████████████████│  91.0ms 200",
  "* [21]    └─→ s11 GET /   │     ███████████████│  89.0ms 200",
  "* [22]    └─s11-v1-0 GET /│     ███████████████│  88.0ms 200",
  "* [23]    └─→ s12 GET /   │     ███████████████│  86.0ms 200",
  "* [24]    └─s12-v1-0 GET /│     ███████████████│  85.0ms 200",
  "* [25]    └─→ s13 GET /   │      ██████████████│  83.0ms 200",
  "* [26]    └─s13-v1-0 GET /│      ██████████████│  82.0ms 200",
  "* [27]    └─→ s14 GET /   │      ██████████████│  80.0ms 200",
  "* [28]    └─s14-v1-0 GET /│      ██████████████│  79.0ms 200",
  "* [29]    └─→ s15 GET /   │       █████████████│  77.0ms 200",
  "* [30]    └─s15-v1-0 GET /│       █████████████│  76.0ms 200",
  "* [31]    └─→ s16 GET /   │       █████████████│  74.0ms 200",
  "* [32]    └─s16-v1-0 GET /│       █████████████│  73.0ms 200",
  "* [33]    └─→ s17 GET /   │        ████████████│  71.0ms 200",
  "* [34]    └─s17-v1-0 GET /│        ████████████│  70.0ms 200",
  "* [35]    └─→ s18 GET /   │        ████████████│  68.0ms 200",
  "* [36]    └─s18-v1-0 GET /│        ████████████│  67.0ms 200",
  "* [37]    └─→ s19 GET /   │         ███████████│  65.0ms 200",
  "* [38]    └─s19-v1-0 GET /│         ███████████│  64.0ms 200",
  "* [39]    └─→ s20 GET /   │         ███████████│  62.0ms 200",
  "* [40]    └─s20-v1-0 GET /│         ███████████│  61.0ms 200",
  "* [41]    └─→ s21 GET /   │          ██████████│  59.0ms 200",
  "* [42]    └─s21-v1-0 GET /│          ██████████│  58.0ms 200",
  "* [43]    └─→ s22 GET /   │          ██████████│  56.0ms 200",
  "* [44]    └─s22-v1-0 GET /│          ██████████│  55.0ms 200",
  "* [45]    └─→ s23 GET /   │           █████████│  53.0ms 200",
  "* [46]    └─s23-v1-0 GET /│           █████████│  52.0ms 200",
  "* [47]    └─→ s24 GET /   │           █████████│  50.0ms 200",
  "* [48]    └─s24-v1-0 GET /│           █████████│  49.0ms 200",
  "* [49]    └─→ s25 GET /   │            ████████│  47.0ms 200",
  "* [50]    └─s25-v1-0 GET /│            ████████│  46.0ms 200",
  "* [51]    └─→ s26 GET /   │            ████████│  44.0ms 200",
  "* [52]    └─s26-v1-0 GET /│            ████████│  43.0ms 200",
  "* [53]    └─→ s27 GET /   │             ███████│  41.0ms 200",
  "* [54]    └─s27-v1-0 GET /│             ███████│  40.0ms 200",
  "* [55]    └─→ s28 GET /   │             ███████│  38.0ms 200",
  "* [56]    └─s28-v1-0 GET /│             ███████│  37.0ms 200",
  "* [57]    └─→ s29 GET /   │              ██████│  35.0ms 200",
  "* [58]    └─s29-v1-0 GET /│              ██████│  34.0ms 200",
  "* [59]    └─→ s30 GET /   │              ██████│  32.0ms 200",
  "* [60]    └─s30-v1-0 GET /│              ██████│  31.0ms 200",
  "* [61]    └─→ s31 GET /   │               █████│  29.0ms 200",
  "* [62]    └─s31-v1-0 GET /│               █████│  28.0ms 200",
  "* [63]    └─→ s32 GET /   │               █████│  26.0ms 200",
  "* [64]    └─s32-v1-0 GET /│               █████│  25.0ms 200",
  "* [65]    └─→ s33 GET /   │                ████│  23.0ms 200",
  "* [66]    └─s33-v1-0 GET /│                ████│  22.0ms 200",
  "* [67]    └─→ s34 GET /   │                ████│  20.0ms 200",
  "* [68]    └─s34-v1-0 GET /│                ████│  19.0ms 200",
  "* [69]    └─→ s35 GET /   │                 ███│  17.0ms 200",
  "* [70]    └─s35-v1-0 GET /│                 ███│  16.0ms 200",
  "* [71]    └─→ s36 GET /   │                 ███│  14.0ms 200",
  "* [72]    └─s36-v1-0 GET /│                 ███│  13.0ms 200",
  "* [73]    └─→ s37 GET /   │                  ██│  11.0ms 200",
  "* [74]    └─s37-v1-0 GET /│                  ██│  10.0ms 200",
  "* [75]    └─→ s38 GET /   │                  ██│  8.00ms 200",
  "* [76]    └─s38-v1-0 GET /│                  ██│  7.00ms 200",
  "* [77]    └─→ s39 GET /   │                   █│  5.00ms 200",
  "* [78]    └─s39-v1-0 GET /│                   █│  4.00ms 503",
  "              ↳ cause: simulated error (errorRate 1%)",
  "* critical path   [n] depth, past what indent fits   bars on a common axis from",
  "the first start to the last end",
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

  describe('a deep trace', () => {
    const deep = () => {
      const spans = chainTrace()
      Object.assign(spans.at(-1)!, {status: 503, cause: 'simulated error (errorRate 1%)'})
      return spans
    }

    it('folds the indent past what fits and shows the depth as a number (golden, width 80)', () => {
      expect(renderWaterfall(deep(), {width: 80, colour: false})).toBe(GOLDEN_DEEP)
    })

    it.each([80, 100, 120, 200])('never truncates a name for its indent at width %i, and keeps every line within it', (width) => {
      const out = renderWaterfall(deep(), {width, colour: false})
      const rows = out.split('\n').filter((l) => l.includes('│'))
      expect(rows).toHaveLength(79)
      for (const line of out.split('\n')) expect(line.length).toBeLessThanOrEqual(width)
      for (let i = 0; i < 40; i++) {
        expect(rows[2 * i], `row ${2 * i}`).toMatch(new RegExp(`^\\* (\\[${2 * i}\\])? *(└─)?s${i}-v1-0 GET / *│`))
        if (i < 39) expect(rows[2 * i + 1], `row ${2 * i + 1}`).toMatch(new RegExp(`^\\* (\\[${2 * i + 1}\\])? *└─→ s${i + 1} GET / *│`))
      }
      // Wider terminals draw more of the tree before folding.
      if (width >= 120) expect(rows[10]).toMatch(/^\*\s+└─s5-v1-0 GET \/ *│/)
    })
  })
})
