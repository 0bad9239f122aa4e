// What `mesh stat` and `mesh load` print: aligned columns, Linkerd's success colours,
// and the load report's percentiles, statuses and errors.
import {describe, expect, test} from 'vitest'
import {progressLine, renderLoadResult} from '../../src/commands/load.js'
import {renderStat} from '../../src/commands/stat.js'
import type {LoadResult} from '../../src/sim/load/load-generator.js'
import type {StatRow} from '../../src/sim/telemetry/metrics.js'

const row = (o: Partial<StatRow>): StatRow => ({
  requests: 100,
  rps: 3.333,
  successRate: 1,
  actualRequests: 100,
  actualSuccessRate: 1,
  p50: 20,
  p95: 45.5,
  p99: 60.25,
  ...o,
})
const strip = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '')

describe('renderStat', () => {
  test('one row per service with effective and actual success rates', () => {
    const text = renderStat(
      [row({service: 'payments', successRate: 0.99, actualRequests: 130, actualSuccessRate: 0.9}), row({service: 'cart', requests: 7, rps: 0.2})],
      {by: 'service', windowMs: 30_000, colour: false},
    )
    expect(text.split('\n')).toEqual([
      'NAME      REQUESTS  RPS  SUCCESS  ACTUAL   P50     P95     P99',
      'payments  100       3.3  99.00%   90.00%   20.0ms  45.5ms  60.3ms',
      'cart      7         0.2  100.00%  100.00%  20.0ms  45.5ms  60.3ms',
    ])
  })

  test('cold starts: COLD and COLD@P99 columns only when a call in the window waited for one', () => {
    const text = renderStat(
      [row({service: 'fn', coldStarts: 3, coldStartShareOfP99: 0.75}), row({service: 'db', coldStarts: 0, coldStartShareOfP99: 0})],
      {by: 'service', windowMs: 30_000, colour: false},
    )
    expect(text.split('\n')).toEqual([
      'NAME  REQUESTS  RPS  SUCCESS  ACTUAL   P50     P95     P99     COLD  COLD@P99',
      'fn    100       3.3  100.00%  100.00%  20.0ms  45.5ms  60.3ms  3     75%',
      'db    100       3.3  100.00%  100.00%  20.0ms  45.5ms  60.3ms  0     -',
    ])
    expect(renderStat([row({service: 'db', coldStarts: 0, coldStartShareOfP99: 0})], {by: 'service', windowMs: 30_000, colour: false})).not.toContain('COLD')
  })

  test('--edges: SRC → DST, sources aligned', () => {
    const text = renderStat([row({source: 'ingress', destination: 'frontend'}), row({source: 'cart', destination: 'payments'})], {
      by: 'edge',
      windowMs: 30_000,
      colour: false,
    })
    const lines = text.split('\n')
    expect(lines[0]).toMatch(/^SRC {5}→ DST {7}REQUESTS/)
    expect(lines[1]).toMatch(/^ingress → frontend {2}100/)
    expect(lines[2]).toMatch(/^cart {4}→ payments {2}100/)
  })

  test('--by version and --by instance name the row by what it is', () => {
    expect(renderStat([row({service: 'reviews', version: 'v2'})], {by: 'version', windowMs: 1000, colour: false})).toContain('\nreviews v2 ')
    expect(renderStat([row({service: 'reviews', version: 'v2', instance: 'reviews-v2-1'})], {by: 'instance', windowMs: 1000, colour: false})).toContain(
      '\nreviews-v2-1 ',
    )
  })

  test('success rates: green from 99%, yellow from 95%, red below; columns still line up', () => {
    const rows = [row({service: 'a', successRate: 0.99}), row({service: 'b', successRate: 0.95}), row({service: 'c', successRate: 0.9499})]
    const coloured = renderStat(rows, {by: 'service', windowMs: 30_000, colour: true})
    expect(coloured).toContain('\x1b[32m99.00%\x1b[39m')
    expect(coloured).toContain('\x1b[33m95.00%\x1b[39m')
    expect(coloured).toContain('\x1b[31m94.99%\x1b[39m')
    expect(strip(coloured)).toBe(renderStat(rows, {by: 'service', windowMs: 30_000, colour: false}))
  })

  test('no traffic: says so and how to make some', () => {
    expect(renderStat([], {by: 'service', windowMs: 60_000, colour: false})).toBe(
      'No requests in the last 1m. Send some with `mesh load ingress --rps 50 --duration 10s`.',
    )
  })
})

const result: LoadResult = {
  requests: 1000,
  sent: 1000,
  cancelled: 0,
  durationMs: 5012.5,
  throughputRps: 199.5,
  latency: {p50: 20.1, p75: 30, p90: 41.2, p95: 50, p99: 61.44, p999: 80, max: 95.5, mean: 24},
  statuses: {'200': 898, '503': 100, '504': 2},
  errors: {'HTTP 503': 100, UT: 2},
  successRate: 0.898,
  aborted: false,
  arrivals: 'uniform',
  dropped: 0,
  concurrency: 200,
}

describe('renderLoadResult', () => {
  test('requests, throughput, success, percentiles, statuses and errors by cause', () => {
    expect(renderLoadResult(result, false).split('\n')).toEqual([
      'requests    1000 completed of 1000 sent in 5.01s',
      'throughput  199.5 rps',
      'success     89.80%',
      'latency     p50 20.1ms  p90 41.2ms  p95 50.0ms  p99 61.4ms  p99.9 80.0ms  max 95.5ms',
      'statuses    200 × 898, 503 × 100, 504 × 2',
      'errors      HTTP 503 × 100, UT × 2',
    ])
  })

  test('a run stopped by Ctrl-C says how much was never sent; a clean run has no errors line noise', () => {
    const text = renderLoadResult({...result, aborted: true, cancelled: 40, sent: 960, requests: 960, errors: {}, statuses: {'200': 960}, successRate: 1}, false)
    expect(text).toContain('960 completed of 960 sent in 5.01s (stopped early; 40 planned but not sent)')
    expect(text).toMatch(/^errors {6}none$/m)
    expect(renderLoadResult({...result, requests: 0, statuses: {}, errors: {}}, false)).toMatch(/^success {5}-$/m)
  })

  test('requests due with the in-flight cap reached are said to be dropped, not hidden', () => {
    expect(renderLoadResult({...result, sent: 700, requests: 700, dropped: 300}, false).split('\n').slice(0, 2)).toEqual([
      'requests    700 completed of 700 sent in 5.01s',
      'dropped     300 due while 200 were in flight, not sent: the target could not keep up at this rate; the figures below are of those sent (raise --concurrency to send them all)',
    ])
    expect(renderLoadResult(result, false)).not.toContain('dropped')
  })

  test('poisson arrivals name their seed, so the run can be replayed', () => {
    expect(renderLoadResult({...result, arrivals: 'poisson', seed: 42}, false)).toMatch(/^throughput  199\.5 rps  \(poisson arrivals, --seed 42\)$/m)
    expect(renderLoadResult(result, false)).not.toContain('poisson')
  })

  test('progress line', () => {
    expect(progressLine({sent: 410, completed: 400, errors: 3, dropped: 0, elapsedMs: 2000, currentRps: 199.6}, 1000)).toBe(
      '2.00s  400/1000 done (410 sent, 3 errors), 200 rps now',
    )
    expect(progressLine({sent: 410, completed: 400, errors: 0, dropped: 7, elapsedMs: 2000, currentRps: 199.6}, 1000)).toBe('2.00s  400/1000 done (410 sent, 7 dropped), 200 rps now')
  })
})
