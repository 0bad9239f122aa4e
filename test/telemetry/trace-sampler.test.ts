// Which spans the trace store keeps under load: all while quiet, a per-trace sample
// when busy, failed spans always; on a virtual clock with seeded trace ids.
import {describe, expect, test} from 'vitest'
import type {Span} from '../../src/sim/telemetry/span.js'
import {Telemetry} from '../../src/sim/telemetry/telemetry.js'
import {TraceSampler} from '../../src/sim/telemetry/trace-sampler.js'
import {VirtualClock} from '../../src/sim/time/clock.js'
import {SeededRandom} from '../../src/sim/time/random.js'

const random = new SeededRandom(7)
const traceId = () => Array.from({length: 32}, () => Math.floor(random.next() * 16).toString(16)).join('')

const span = (over: Partial<Span> = {}): Span => ({
  traceId: traceId(),
  spanId: 'b7ad6b7169203331',
  kind: 'server',
  name: 'GET /',
  service: 'api',
  peerService: 'ingress',
  method: 'GET',
  path: '/',
  status: 200,
  startMs: 0,
  durationMs: 1,
  ...over,
})

describe('trace sampler', () => {
  test('a quiet mesh keeps every span', () => {
    const clock = new VirtualClock()
    const sampler = new TraceSampler(100)
    for (let i = 0; i < 100; i++) expect(sampler.keep(span(), clock.now())).toBe(true)
    expect(sampler.stats()).toEqual({spansPerSecond: 100, keepProbability: 1, sampledOut: 0})
  })

  test('a busy second sets the next second\'s share: 100 of 2000 spans a second keeps about 5% of traces', async () => {
    const clock = new VirtualClock()
    const sampler = new TraceSampler(100)
    for (let i = 0; i < 2000; i++) sampler.keep(span(), clock.now())
    await clock.advance(1000)
    // (That first second sampled too, once it had kept twice its share: see the burst test.)
    const before = sampler.stats().sampledOut
    let kept = 0
    for (let i = 0; i < 2000; i++) if (sampler.keep(span(), clock.now())) kept++
    expect(sampler.stats().keepProbability).toBeCloseTo(0.05, 5)
    expect(kept).toBeGreaterThan(60)
    expect(kept).toBeLessThan(140)
    expect(sampler.stats().sampledOut - before).toBe(2000 - kept)
    // After a quiet second the mesh keeps everything again; so it does after a gap.
    await clock.advance(1000)
    sampler.keep(span(), clock.now())
    await clock.advance(1000)
    sampler.keep(span(), clock.now())
    expect(sampler.stats().keepProbability).toBe(1)
    for (let i = 0; i < 2000; i++) sampler.keep(span(), clock.now())
    await clock.advance(5000)
    sampler.keep(span(), clock.now())
    expect(sampler.stats().keepProbability).toBe(1)
  })

  test('a burst after a quiet second keeps about its share within that second, not every span', async () => {
    const clock = new VirtualClock()
    const sampler = new TraceSampler(100)
    // 5000 spans a second, 5 a millisecond, right after a quiet second.
    let kept = 0
    for (let ms = 0; ms < 1000; ms++) {
      for (let i = 0; i < 5; i++) if (sampler.keep(span(), clock.now())) kept++
      await clock.advance(1)
    }
    // Everything until twice the share (200), then ~100 a second's worth for the rest.
    expect(kept).toBeGreaterThanOrEqual(200)
    expect(kept).toBeLessThan(400)
    expect(sampler.stats().keepProbability).toBeGreaterThan(0.01)
    expect(sampler.stats().keepProbability).toBeLessThan(0.04)
    // A quiet second's worth (fewer than the share) is untouched: all kept.
    await clock.advance(2000)
    const quiet = new TraceSampler(100)
    for (let i = 0; i < 100; i++) expect(quiet.keep(span(), clock.now())).toBe(true)
  })

  test('failed spans are always kept: 5xx, a mesh-made reply, a cut body', async () => {
    const clock = new VirtualClock()
    const sampler = new TraceSampler(1)
    for (let i = 0; i < 1000; i++) sampler.keep(span(), clock.now())
    await clock.advance(1000)
    for (let i = 0; i < 50; i++) {
      expect(sampler.keep(span({status: 503}), clock.now())).toBe(true)
      expect(sampler.keep(span({status: 429, responseFlags: 'RL', cause: 'rate limited: "api" admits no more requests'}), clock.now())).toBe(true)
      expect(sampler.keep(span({status: 0, responseFlags: 'DC'}), clock.now())).toBe(true)
      expect(sampler.keep(span({status: 200, cause: 'upstream request timeout'}), clock.now())).toBe(true)
    }
  })

  test('through Telemetry: a trace is kept whole or not at all; metrics count every span', async () => {
    const clock = new VirtualClock()
    const telemetry = new Telemetry({clock, spansPerSecond: 50})
    const call = (id: string) => {
      telemetry.record(span({traceId: id, spanId: '1111111111111111', kind: 'server'}))
      telemetry.record(span({traceId: id, spanId: '2222222222222222', kind: 'client', service: 'ingress', peerService: 'api'}))
    }
    for (let i = 0; i < 1000; i++) call(traceId())
    await clock.advance(1000)
    const ids = Array.from({length: 1000}, traceId)
    for (const id of ids) call(id)
    const kept = ids.filter((id) => telemetry.traces.has(id))
    expect(kept.length).toBeGreaterThan(5)
    expect(kept.length).toBeLessThan(60)
    for (const id of kept) expect(telemetry.traces.get(id)).toHaveLength(2)
    // A burst slowed down within its second (after a quiet one) keeps its traces whole too.
    await clock.advance(5000)
    const burst = Array.from({length: 1000}, traceId)
    for (const id of burst) {
      call(id)
      await clock.advance(1)
    }
    const keptInBurst = burst.filter((id) => telemetry.traces.has(id))
    expect(keptInBurst.length).toBeLessThan(200)
    for (const id of keptInBurst) expect(telemetry.traces.get(id)).toHaveLength(2)
    const rows = telemetry.metrics.stat({by: 'service', windowMs: 60_000}, clock.now())
    expect(rows.reduce((n, r) => n + r.requests, 0)).toBe(3000)
    await telemetry.close()
  })
})
