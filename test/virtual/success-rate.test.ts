// mesh sim's success rate is mesh stat's: the same spans give the same figure. A 429 the mesh
// made (RL: rate limited) is a success in both, as every 4xx; a gRPC call counts by its
// grpc-status, whatever its HTTP status.
import {describe, expect, test} from 'vitest'
import {constantShape} from '../../src/sim/load/arrival-schedule.js'
import {Telemetry} from '../../src/sim/telemetry/telemetry.js'
import type {Span} from '../../src/sim/telemetry/span.js'
import {VirtualClock} from '../../src/sim/time/clock.js'
import {SimStats} from '../../src/sim/virtual/sim-stats.js'
import {runSimulation} from '../../src/sim/virtual/simulation.js'
import {tinyConfig} from './tiny-mesh.js'

/** What `mesh stat --json` would say of each service, had the daemon's telemetry recorded `spans`. */
function statOf(spans: Span[]): Map<string, {requests: number; successRate: number; actualSuccessRate: number}> {
  const telemetry = new Telemetry({clock: new VirtualClock(), spansPerSecond: 1e9})
  for (const span of spans) telemetry.record(span)
  const rows = telemetry.metrics.stat({windowMs: 60_000, by: 'service'}, 0)
  void telemetry.close()
  return new Map(rows.map((r) => [r.service!, r]))
}

describe('success as mesh stat counts it', () => {
  test('a run with 429s (rate limited) and 5xx: every service\'s rate as mesh stat gives it for the same spans', async () => {
    // payments takes 20 calls a second; frontend sends 50: most of them are refused with 429 RL.
    const config = tinyConfig((s) => `${s}    policy:\n      rateLimit: {rate: 20/s, burst: 1}\n`)
    const spans: Span[] = []
    const result = await runSimulation(config, {shape: constantShape(50, 2000), seed: 5, traceSampleEvery: 1, onSpan: (span) => spans.push(span)})
    expect(result.errorsByCause.RL).toBeGreaterThan(40)
    const stat = statOf(spans)
    for (const s of result.services) {
      const row = stat.get(s.service)!
      expect(s.requests, s.service).toBe(row.requests)
      expect(s.successRate, s.service).toBeCloseTo(row.successRate, 6)
      expect(s.actualSuccessRate, s.service).toBeCloseTo(row.actualSuccessRate, 6)
    }
    // The 429s are successes: only payments' own errors (one in five of those it served) fail.
    const payments = result.services.find((s) => s.service === 'payments')!
    expect(payments.successRate).toBeGreaterThan(0.9)
    expect(payments.rateLimited).toBe(result.errorsByCause.RL)
  })

  test('a gRPC call counts by its grpc-status (14 UNAVAILABLE: a failure under HTTP 200), as mesh stat counts it', () => {
    const base = {traceId: '1'.padStart(32, '0'), name: 'POST /ratings.Ratings/Get', service: 'frontend', method: 'POST', path: '/ratings.Ratings/Get', startMs: 0, durationMs: 3}
    const spans: Span[] = [
      {...base, spanId: 'a'.padStart(16, '0'), kind: 'client', peerService: 'payments', status: 200, grpcStatus: 14},
      {...base, spanId: 'b'.padStart(16, '0'), kind: 'client', peerService: 'payments', status: 200, grpcStatus: 0},
      {...base, spanId: 'c'.padStart(16, '0'), kind: 'client', peerService: 'payments', status: 429, responseFlags: 'RL'},
      {...base, spanId: 'd'.padStart(16, '0'), kind: 'client', peerService: 'payments', status: 503, responseFlags: 'UH'},
    ]
    const stats = new SimStats(tinyConfig().services)
    for (const span of spans) stats.record(span)
    const sim = stats.services(1000).find((s) => s.service === 'payments')!
    expect(sim.successRate).toBe(0.5)
    expect(statOf(spans).get('payments')!.successRate).toBe(0.5)
  })
})
