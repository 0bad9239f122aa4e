// Cold starts as the metrics see them: the activator marks a call that waited for an
// instance to start (Observation.coldStartMs, source side); /metrics counts them per
// destination service/version, `mesh stat` counts them in its window and says how much of
// the slowest 1 % they are.
import {describe, expect, it} from 'vitest'
import {MetricsRecorder, type Observation} from '../../src/sim/telemetry/metrics.js'
import {renderPrometheus} from '../../src/sim/telemetry/prometheus.js'
import {parseExposition} from '../helpers/prometheus-parser.js'
import {promtoolAvailable, promtoolCheck} from '../helpers/promtool.js'

const call = (o: Partial<Observation>): Observation => ({
  source: 'ingress',
  destination: 'fn',
  destinationVersion: 'v1',
  destinationInstance: 'fn-v1-0',
  status: 200,
  durationMs: 10,
  reporter: 'source',
  ...o,
})

/** 200 calls to fn v1: 2 of them waited for a cold start (850 ms and 1200 ms of it), the rest took 10–29 ms. */
function coldMesh(): MetricsRecorder {
  const m = new MetricsRecorder()
  for (let i = 0; i < 198; i++) {
    m.observe(call({durationMs: 10 + (i % 20)}), i * 10)
    m.observe(call({reporter: 'destination', durationMs: 9 + (i % 20)}), i * 10)
  }
  m.observe(call({durationMs: 870, coldStartMs: 850}), 100)
  m.observe(call({reporter: 'destination', durationMs: 15}), 100)
  m.observe(call({durationMs: 1230, coldStartMs: 1200, destinationInstance: 'fn-v1-1'}), 200)
  m.observe(call({reporter: 'destination', durationMs: 25, destinationInstance: 'fn-v1-1'}), 200)
  return m
}

describe('cold starts in the metrics', () => {
  it('are counted per destination service/version, with their own duration in Istio buckets', () => {
    const m = coldMesh()
    m.observe(call({destination: 'api', destinationVersion: undefined, durationMs: 40, coldStartMs: 30}), 300)
    expect(m.coldStartSeries().map((s) => [s.destination, s.destinationVersion, s.count, s.duration.count, s.duration.sum])).toEqual([
      ['fn', 'v1', 2, 2, 2050],
      ['api', 'unknown', 1, 1, 30],
    ])
    const fn = m.coldStartSeries()[0]
    // 850 in (500, 1000], 1200 in (1000, 2500]
    expect(fn.duration.buckets[9]).toBe(1)
    expect(fn.duration.buckets[10]).toBe(1)
  })

  it('keeps none when no call waited (no empty families on /metrics)', () => {
    const m = new MetricsRecorder()
    m.observe(call({}), 0)
    expect(m.coldStartSeries()).toEqual([])
    const text = renderPrometheus(m.promSeries(), [], m.coldStartSeries())
    expect(text).not.toContain('mesh_cold')
  })

  it('are exposed as mesh_cold_starts_total and mesh_cold_start_duration_milliseconds, valid text format', () => {
    const m = coldMesh()
    const text = renderPrometheus(m.promSeries(), [], m.coldStartSeries())
    const families = parseExposition(text)
    const total = families.get('mesh_cold_starts_total')!
    expect(total.type).toBe('counter')
    expect(total.samples).toEqual([{name: 'mesh_cold_starts_total', labels: {destination_workload: 'fn', destination_service: 'fn', destination_version: 'v1'}, value: 2}])
    const duration = families.get('mesh_cold_start_duration_milliseconds')!
    expect(duration.type).toBe('histogram')
    const bucket = (le: string) => duration.samples.find((s) => s.name.endsWith('_bucket') && s.labels.le === le)!.value
    expect([bucket('500'), bucket('1000'), bucket('2500'), bucket('+Inf')]).toEqual([0, 1, 2, 2])
    expect(duration.samples.find((s) => s.name.endsWith('_sum'))!.value).toBe(2050)
    // The request series are as before: the cold calls are requests too.
    expect(families.get('istio_requests_total')!.samples.find((s) => s.labels.reporter === 'source')!.value).toBe(200)
  })

  it.skipIf(!promtoolAvailable)('passes `promtool check metrics` with cold starts in it', () => {
    const m = coldMesh()
    expect(promtoolCheck(renderPrometheus(m.promSeries(), [], m.coldStartSeries()))).toEqual({findings: []})
  })

  it('mesh stat: the window counts them, and they are the whole tail at or above p99', () => {
    const [row] = coldMesh().stat({windowMs: 30_000, by: 'service'}, 2000)
    expect(row).toMatchObject({service: 'fn', requests: 200, coldStarts: 2})
    // p99 of 200 is the 198th value: the 29 ms ones' bucket (ties: 9 of them) and the two cold ones.
    expect(row.p99).toBeCloseTo(29, 0)
    expect(row.coldStartShareOfP99).toBeCloseTo(2 / 11, 10)
    const byInstance = coldMesh().stat({windowMs: 30_000, by: 'instance'}, 2000)
    expect(byInstance.map((r) => [r.instance, r.coldStarts])).toEqual([
      ['fn-v1-0', 1],
      ['fn-v1-1', 1],
    ])
  })

  it('mesh stat: the share is of the p99 tail only, and 0 when no cold call reaches it', () => {
    const m = new MetricsRecorder()
    // 100 calls: one slow warm call (900 ms) owns p99; a cold one finished fast (the instance was ready early).
    for (let i = 0; i < 98; i++) m.observe(call({durationMs: 10}), i)
    m.observe(call({durationMs: 900}), 98)
    m.observe(call({durationMs: 12, coldStartMs: 5}), 99)
    const [row] = m.stat({windowMs: 30_000, by: 'service'}, 500)
    expect(row.p99).toBeCloseTo(12, 0)
    // At or above p99 (12 ms): the cold call and the 900 ms one.
    expect([row.coldStarts, row.coldStartShareOfP99]).toEqual([1, 0.5])
    const warm = new MetricsRecorder()
    warm.observe(call({durationMs: 10}), 0)
    expect(warm.stat({windowMs: 30_000, by: 'service'}, 500)[0]).toMatchObject({coldStarts: 0, coldStartShareOfP99: 0})
  })

  it('mesh stat: cold starts leave the window with their calls', () => {
    const m = coldMesh()
    // The cold calls were at 0.1 s and 0.2 s; a 10 s window at 12 s no longer holds them.
    m.observe(call({durationMs: 10}), 12_000)
    const [row] = m.stat({windowMs: 10_000, by: 'service'}, 12_000)
    expect([row.requests, row.coldStarts, row.coldStartShareOfP99]).toEqual([1, 0, 0])
  })
})
