import {describe, expect, it} from 'vitest'
import type {Span} from '../../src/sim/telemetry/span.js'
import {Tap, type TapLine, tapEvent} from '../../src/sim/telemetry/tap.js'
import {VirtualClock} from '../../src/sim/time/clock.js'
import {MAX_TAP_RPS, tap as openTap} from '../../src/sim/control/telemetry-queries.js'
import type {Telemetry} from '../../src/sim/telemetry/telemetry.js'
import {renderTapEvent} from '../../src/cli/tap-line.js'
import {Chalk} from 'chalk'

const span = (over: Partial<Span> = {}): Span => ({
  traceId: 'a'.repeat(32),
  spanId: 'b'.repeat(16),
  kind: 'client',
  name: 'GET /items',
  service: 'frontend',
  version: 'v1',
  instance: 'frontend-v1-0',
  peerService: 'catalog',
  peerVersion: 'v2',
  peerInstance: 'catalog-v2-1',
  method: 'GET',
  path: '/items?page=2',
  status: 200,
  startMs: Date.UTC(2026, 10, 30, 12, 0, 0, 123),
  durationMs: 12.3,
  ...over,
})

describe('tapEvent', () => {
  it("is a request's caller span: source, destination and the instance that served it", () => {
    expect(tapEvent(span({decision: {attempts: 3}}), {})).toMatchObject({source: 'frontend', destination: 'catalog', version: 'v2', instance: 'catalog-v2-1', path: '/items?page=2', attempts: 3})
    // An attempt's server span is not a request of its own; a call to a published address (from unknown) is.
    expect(tapEvent(span({kind: 'server', service: 'catalog', peerService: 'frontend'}), {})).toBeUndefined()
    expect(tapEvent(span({kind: 'server', service: 'catalog', instance: 'catalog-v1-0', peerService: 'unknown'}), {})).toMatchObject({source: 'unknown', destination: 'catalog', instance: 'catalog-v1-0'})
  })

  it('filters by service (either side), from, to, method, path prefix and failure', () => {
    expect(tapEvent(span(), {service: 'frontend'})).toBeDefined()
    expect(tapEvent(span(), {service: 'catalog'})).toBeDefined()
    expect(tapEvent(span(), {service: 'cart'})).toBeUndefined()
    expect(tapEvent(span(), {from: 'catalog'})).toBeUndefined()
    expect(tapEvent(span(), {to: 'catalog', method: 'GET', path: '/items'})).toBeDefined()
    expect(tapEvent(span(), {method: 'POST'})).toBeUndefined()
    expect(tapEvent(span(), {path: '/cart'})).toBeUndefined()
    expect(tapEvent(span(), {errors: true})).toBeUndefined()
    expect(tapEvent(span({status: 503, responseFlags: 'UH', cause: 'no healthy upstream'}), {errors: true})).toMatchObject({flags: 'UH', cause: 'no healthy upstream'})
  })
})

describe('Tap', () => {
  it('passes at most max-rps requests a second and reports how many it left out, once a second', async () => {
    const clock = new VirtualClock()
    const lines: TapLine[] = []
    const tap = new Tap({to: 'catalog'}, 5, clock, (l) => lines.push(l))
    for (let i = 0; i < 8; i++) tap.onSpan(span())
    tap.onSpan(span({peerService: 'cart'}))
    expect(lines).toHaveLength(5)
    await clock.advance(1000)
    expect(lines.at(-1)).toEqual({skipped: 3})
    // A quiet second says nothing.
    await clock.advance(1000)
    expect(lines).toHaveLength(6)
    tap.close()
  })

  it('skips (and counts) what a subscriber that stops reading cannot take, and reports once it reads again', async () => {
    const clock = new VirtualClock()
    const lines: TapLine[] = []
    let reading = true
    const tap = new Tap({to: 'catalog'}, 100, clock, (l) => lines.push(l), () => reading)
    tap.onSpan(span())
    reading = false
    for (let i = 0; i < 4; i++) tap.onSpan(span())
    expect(lines).toHaveLength(1)
    // Still backed up a second later: nothing is sent, the count goes on.
    await clock.advance(1000)
    tap.onSpan(span())
    expect(lines).toHaveLength(1)
    reading = true
    await clock.advance(1000)
    expect(lines.at(-1)).toEqual({skipped: 5})
    tap.close()
  })
})

describe('the control API\'s tap', () => {
  it(`sends at most ${MAX_TAP_RPS} lines a second, whatever --max-rps asks`, () => {
    const clock = new VirtualClock()
    const taps = new Set<(s: Span) => void>()
    const telemetry = {taps} as unknown as Telemetry
    const lines: TapLine[] = []
    const close = openTap({maxRps: '1e9'}, {clock, telemetry, services: ['catalog']})((l) => lines.push(l))
    for (let i = 0; i < MAX_TAP_RPS + 500; i++) for (const t of taps) t(span())
    expect(lines).toHaveLength(MAX_TAP_RPS)
    close()
    expect(taps.size).toBe(0)
  })
})

describe('renderTapEvent', () => {
  it("reads like an access-log line: time, caller → instance, request, status, latency, flag, trace, then tries and reason", () => {
    const e = tapEvent(span({status: 504, responseFlags: 'UT', cause: 'upstream request timeout', decision: {attempts: 2}}), {})!
    const line = renderTapEvent(e, new Chalk({level: 0}))
    expect(line).toMatch(/^\d\d:\d\d:00\.123 {2}frontend → catalog-v2-1 {2}GET \/items\?page=2 {2}504 {2}12\.3ms {2}UT {2}aaaaaaaaaaaa {2}2 tries {2}\(upstream request timeout\)$/)
  })
})
