import {describe, expect, it} from 'vitest'
import {bucketIndex, bucketMidMs, LatencyHistogram} from '../../src/sim/telemetry/histogram.js'
import {MetricsRecorder, type Observation} from '../../src/sim/telemetry/metrics.js'
import {VirtualClock} from '../../src/sim/time/clock.js'
import {SeededRandom} from '../../src/sim/time/random.js'

const Z99 = 2.3263478740408408

/** Latencies with median 20 ms and p99 120 ms. */
function logNormal(rng: SeededRandom, n: number): number[] {
  const mu = Math.log(20)
  const sigma = Math.log(120 / 20) / Z99
  return Array.from({length: n}, () => Math.exp(mu + sigma * rng.normal()))
}

function samplePercentile(values: number[], q: number): number {
  const sorted = values.slice().sort((a, b) => a - b)
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]
}

const call = (o: Partial<Observation>): Observation => ({
  source: 'frontend',
  destination: 'catalog',
  destinationVersion: 'v1',
  destinationInstance: 'catalog-v1-0',
  status: 200,
  durationMs: 10,
  reporter: 'destination',
  ...o,
})

describe('LatencyHistogram', () => {
  it('maps every value into a bucket whose middle is within 0.8 % of it', () => {
    for (const ms of [0.001, 0.127, 0.128, 0.5, 1, 7.77, 20, 119.9, 1234.5, 60_000, 3_600_000]) {
      const mid = bucketMidMs(bucketIndex(ms))
      expect(Math.abs(mid - ms) / ms).toBeLessThanOrEqual(ms < 0.128 ? 0.005 : 0.008)
    }
    // indices grow with the value
    let last = -1
    for (let ms = 0.05; ms < 100_000; ms *= 1.013) {
      const i = bucketIndex(ms)
      expect(i).toBeGreaterThanOrEqual(last)
      last = i
    }
  })

  it('keeps the 0.8 % bound for values between whole microseconds (real clocks give fractions)', () => {
    for (let us = 128; us < 5000; us += 0.37) {
      const ms = us / 1000
      expect(Math.abs(bucketMidMs(bucketIndex(ms)) - ms) / ms).toBeLessThanOrEqual(1 / 128 + 1e-12)
    }
  })

  it('is nearest rank within 1/128 of the sample, with exact count, max and mean; 0 when empty', () => {
    const h = new LatencyHistogram()
    expect([h.percentile(0.5), h.max(), h.mean(), h.count]).toEqual([0, 0, 0, 0])
    for (let ms = 1; ms <= 100; ms++) h.record(ms)
    const [p50, p99, p999, p100] = h.percentiles([0.5, 0.99, 0.999, 1])
    for (const [got, rank] of [[p50, 50], [p99, 99], [p999, 100], [p100, 100]]) expect(Math.abs(got - rank) / rank).toBeLessThanOrEqual(1 / 128)
    expect([h.count, h.max(), h.mean()]).toEqual([100, 100, 50.5])
  })

  it('summarises a run as mesh load and mesh chaos report it: p50 … p99.9, max and mean', () => {
    const h = new LatencyHistogram()
    expect(h.summary()).toEqual({p50: 0, p75: 0, p90: 0, p95: 0, p99: 0, p999: 0, max: 0, mean: 0})
    for (let ms = 1; ms <= 1000; ms++) h.record(ms)
    const s = h.summary()
    const ranks = {p50: 500, p75: 750, p90: 900, p95: 950, p99: 990, p999: 999}
    for (const [k, rank] of Object.entries(ranks)) expect(Math.abs(s[k as keyof typeof ranks] - rank) / rank).toBeLessThanOrEqual(1 / 128)
    expect([s.max, s.mean]).toEqual([1000, 500.5])
  })

  it('gives p50/p99 of a log-normal sample within 2 % of the sample itself', () => {
    const values = logNormal(new SeededRandom(42), 20_000)
    const h = new LatencyHistogram()
    for (const v of values) h.record(v)
    for (const q of [0.5, 0.95, 0.99, 0.999]) {
      const truth = samplePercentile(values, q)
      expect(Math.abs(h.percentile(q) - truth) / truth).toBeLessThan(0.02)
    }
  })
})

describe('MetricsRecorder', () => {
  it('shows 10 % errors as a success rate of 0.90 ± 0.02 over 2000 requests', () => {
    const m = new MetricsRecorder()
    const rng = new SeededRandom(7)
    for (let i = 0; i < 2000; i++) {
      const status = rng.next() < 0.1 ? 500 : 200
      m.observe(call({status, reporter: 'source'}), i * 5)
      m.observe(call({status}), i * 5)
    }
    const [row] = m.stat({windowMs: 30_000, by: 'service'}, 10_000)
    expect(row.service).toBe('catalog')
    expect(row.requests).toBe(2000)
    expect(row.rps).toBeCloseTo(200, 0)
    expect(Math.abs(row.successRate - 0.9)).toBeLessThanOrEqual(0.02)
    expect(Math.abs(row.actualSuccessRate - 0.9)).toBeLessThanOrEqual(0.02)
  })

  it('gives p99 of a log-normal latency within 5 % of the true sample p99', () => {
    const m = new MetricsRecorder()
    const values = logNormal(new SeededRandom(1234), 5000)
    values.forEach((v, i) => m.observe(call({durationMs: v}), i * 2))
    const [row] = m.stat({windowMs: 60_000, by: 'instance'}, 10_000)
    expect(row).toMatchObject({service: 'catalog', version: 'v1', instance: 'catalog-v1-0', requests: 5000})
    const truth99 = samplePercentile(values, 0.99)
    expect(Math.abs(row.p99 - truth99) / truth99).toBeLessThan(0.05)
    expect(Math.abs(row.p50 - samplePercentile(values, 0.5)) / samplePercentile(values, 0.5)).toBeLessThan(0.02)
    // and close to the configured distribution (p50 20, p99 120)
    expect(row.p50).toBeGreaterThan(18)
    expect(row.p50).toBeLessThan(22)
    expect(row.p99).toBeGreaterThan(105)
    expect(row.p99).toBeLessThan(135)
  })

  it('slides: old observations leave the window as the virtual clock moves', async () => {
    const clock = new VirtualClock()
    const m = new MetricsRecorder()
    // 10 s of 100 rps at 5 ms, all failing, then 10 s of 100 rps at 50 ms, all fine
    for (let i = 0; i < 1000; i++) {
      m.observe(call({status: 503, durationMs: 5}), clock.now())
      await clock.advance(10)
    }
    for (let i = 0; i < 1000; i++) {
      m.observe(call({status: 200, durationMs: 50}), clock.now())
      await clock.advance(10)
    }
    const now = clock.now() // 20 s
    const [last10] = m.stat({windowMs: 10_000, by: 'service'}, now)
    expect(last10.requests).toBe(1000)
    expect(last10.successRate).toBe(1)
    expect(last10.p50).toBeCloseTo(50, 0)
    const [last20] = m.stat({windowMs: 20_000, by: 'service'}, now)
    expect(last20.requests).toBe(2000)
    expect(last20.successRate).toBeCloseTo(0.5, 5)
    await clock.advance(10_000)
    expect(m.stat({windowMs: 10_000, by: 'service'}, clock.now())).toEqual([])
    const [five] = m.stat({windowMs: 15_000, by: 'service'}, clock.now())
    expect(five.requests).toBe(500)
  })

  it('counts a gRPC call by its grpc-status: UNAVAILABLE fails, NOT_FOUND does not (as a 404), whatever the HTTP 200 says', () => {
    const m = new MetricsRecorder()
    const codes = [0, 0, 14, 5, 13, 0, 4, 0, 5, 0]
    codes.forEach((grpcStatus, i) => {
      m.observe(call({grpcStatus, reporter: 'source'}), i * 5)
      m.observe(call({grpcStatus}), i * 5)
    })
    const [row] = m.stat({windowMs: 30_000, by: 'service'}, 1_000)
    expect(row.successRate).toBeCloseTo(0.7, 5)
    const labels = m.promSeries().filter((p) => p.labels.reporter === 'source').map((p) => p.labels.grpc_response_status)
    expect(labels.sort()).toEqual(['0', '13', '14', '4', '5'])
  })

  it('separates the effective success rate (after retries) from the actual one (every attempt)', () => {
    const m = new MetricsRecorder()
    // 100 calls; 30 of them fail once on catalog-v1-0 and succeed on the retry to catalog-v1-1
    for (let i = 0; i < 100; i++) {
      const t = i * 10
      if (i < 30) {
        m.observe(call({status: 503, destinationInstance: 'catalog-v1-0', attempt: 1}), t)
        m.observe(call({status: 200, destinationInstance: 'catalog-v1-1', attempt: 2}), t)
        m.observe(call({status: 200, reporter: 'source', destinationInstance: 'catalog-v1-1', durationMs: 30}), t)
      } else {
        m.observe(call({status: 200, destinationInstance: 'catalog-v1-1'}), t)
        m.observe(call({status: 200, reporter: 'source', destinationInstance: 'catalog-v1-1'}), t)
      }
    }
    const [svc] = m.stat({windowMs: 30_000, by: 'service'}, 1000)
    expect(svc.requests).toBe(100)
    expect(svc.actualRequests).toBe(130)
    expect(svc.successRate).toBe(1)
    expect(svc.actualSuccessRate).toBeCloseTo(100 / 130, 10)
    const edges = m.stat({windowMs: 30_000, by: 'edge'}, 1000)
    expect(edges).toEqual([expect.objectContaining({source: 'frontend', destination: 'catalog', requests: 100, successRate: 1})])
    const instances = m.stat({windowMs: 30_000, by: 'instance'}, 1000)
    const bad = instances.find((r) => r.instance === 'catalog-v1-0')!
    // nothing a caller finally saw landed on v1-0: its rates fall back to the attempts it served
    expect(bad).toMatchObject({requests: 30, actualRequests: 30, successRate: 0, actualSuccessRate: 0})
  })

  it('groups by version and by edge', () => {
    const m = new MetricsRecorder()
    for (let i = 0; i < 90; i++) m.observe(call({destinationVersion: 'v1'}), i)
    for (let i = 0; i < 10; i++) m.observe(call({destinationVersion: 'v2', destinationInstance: 'catalog-v2-0', status: 500}), i)
    for (let i = 0; i < 5; i++) m.observe(call({source: 'ingress', destination: 'frontend', destinationVersion: 'v1'}), i)
    const versions = m.stat({windowMs: 10_000, by: 'version'}, 100)
    expect(versions.map((r) => [r.service, r.version, r.requests, r.successRate])).toEqual([
      ['catalog', 'v1', 90, 1],
      ['catalog', 'v2', 10, 0],
      ['frontend', 'v1', 5, 1],
    ])
    const edges = m.stat({windowMs: 10_000, by: 'edge'}, 100)
    expect(edges.map((r) => `${r.source}->${r.destination}:${r.requests}`)).toEqual(['frontend->catalog:100', 'ingress->frontend:5'])
  })

  it('keeps every series apart when more edges are busy at once than it remembers (20 instances, interleaved)', () => {
    const m = new MetricsRecorder()
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 20; i++) {
        m.observe(call({destinationInstance: `catalog-v1-${i}`, status: i % 2 ? 500 : 200, durationMs: i + 1}), round)
        m.observe(call({reporter: 'source', destinationInstance: `catalog-v1-${i}`, status: 200}), round)
      }
    }
    const rows = m.stat({windowMs: 10_000, by: 'instance'}, 10)
    expect(rows).toHaveLength(20)
    for (const r of rows) {
      const i = Number(r.instance!.split('-').pop())
      expect([r.requests, r.actualRequests, r.actualSuccessRate]).toEqual([5, 5, i % 2 ? 0 : 1])
    }
    const prom = m.promSeries().filter((p) => p.labels.reporter === 'destination')
    expect(prom.map((p) => [p.labels.response_code, p.requests])).toEqual([
      ['200', 50],
      ['500', 50],
    ])
  })

  it('keeps cumulative Prometheus series that never reset', () => {
    const m = new MetricsRecorder({retentionMs: 5000})
    m.observe(call({status: 200, durationMs: 3, requestBytes: 10, responseBytes: 2000}), 0)
    m.observe(call({status: 504, durationMs: 700, responseFlags: 'UT'}), 100_000)
    m.observe(call({status: 200, durationMs: 0.2}), 200_000)
    const series = m.promSeries()
    expect(series).toHaveLength(2)
    const ok = series.find((s) => s.labels.response_code === '200')!
    expect(ok.requests).toBe(2)
    expect(ok.labels).toMatchObject({response_flags: '-', reporter: 'destination', destination_service: 'catalog'})
    expect(ok.duration.count).toBe(2)
    expect(ok.duration.buckets[0]).toBe(1) // 0.2 ms ≤ 0.5
    expect(ok.duration.buckets[2]).toBe(1) // 3 ms in (1, 5]
    expect(ok.responseBytes!.count).toBe(1)
    const ut = series.find((s) => s.labels.response_flags === 'UT')!
    expect(ut.duration.buckets[9]).toBe(1) // 700 ms in (500, 1000]
    // the window forgot them all
    expect(m.stat({windowMs: 5000, by: 'service'}, 300_000)).toEqual([])
  })
})
