import {describe, expect, it} from 'vitest'
import {MetricsRecorder, type Observation} from '../../src/sim/telemetry/metrics.js'
import {escapeLabelValue, renderPrometheus} from '../../src/sim/telemetry/prometheus.js'
import {parseExposition} from '../helpers/prometheus-parser.js'
import {promtoolAvailable, promtoolCheck} from '../helpers/promtool.js'

const obs = (o: Partial<Observation>): Observation => ({
  source: 'frontend',
  sourceVersion: 'v1',
  destination: 'catalog',
  destinationVersion: 'v2',
  status: 200,
  durationMs: 12,
  reporter: 'source',
  ...o,
})

function sampleExposition(): string {
  const m = new MetricsRecorder()
  for (let i = 0; i < 50; i++) m.observe(obs({durationMs: i * 7.3, requestBytes: i * 10, responseBytes: 100 * i}), i)
  for (let i = 0; i < 5; i++) m.observe(obs({status: 504, responseFlags: 'UT', durationMs: 1000 + i}), i)
  m.observe(obs({reporter: 'destination', status: 0, responseFlags: 'UC', durationMs: 0}), 1)
  m.observe(obs({source: 'we"ird\\name\nline', destination: 'catalog'}), 2)
  // A hop over mutual TLS (ISTIO_MUTUAL to a gRPC instance) is a series of its own, with both principals.
  const mtls = {mtls: true, protocol: 'grpc' as const, sourcePrincipal: 'spiffe://cluster.local/ns/shop/sa/frontend', destinationPrincipal: 'spiffe://cluster.local/ns/shop/sa/catalog'}
  for (let i = 0; i < 3; i++) m.observe(obs({...mtls, grpcStatus: 0}), 3)
  // Principals without mutual TLS are not reported: Istio's "unknown".
  m.observe(obs({mtls: false, sourcePrincipal: 'spiffe://cluster.local/ns/shop/sa/frontend'}), 4)
  return renderPrometheus(m.promSeries())
}

describe('renderPrometheus', () => {
  it('parses with a strict text-format parser: families, HELP/TYPE once, labels, buckets', () => {
    const text = sampleExposition()
    const families = parseExposition(text)
    expect([...families.keys()]).toEqual([
      'istio_requests_total',
      'istio_request_duration_milliseconds',
      'istio_request_bytes',
      'istio_response_bytes',
    ])
    const requests = families.get('istio_requests_total')!
    expect(requests.type).toBe('counter')
    const ut = requests.samples.find((s) => s.labels.response_flags === 'UT')!
    expect(ut.value).toBe(5)
    expect(ut.labels).toEqual({
      reporter: 'source',
      source_workload: 'frontend',
      source_version: 'v1',
      destination_workload: 'catalog',
      destination_service: 'catalog',
      destination_version: 'v2',
      source_principal: 'unknown',
      destination_principal: 'unknown',
      connection_security_policy: 'none',
      request_protocol: 'http',
      response_code: '504',
      grpc_response_status: '',
      response_flags: 'UT',
    })
    const secure = requests.samples.filter((s) => s.labels.connection_security_policy === 'mutual_tls')
    expect(secure.map((s) => [s.value, s.labels.request_protocol, s.labels.source_principal, s.labels.destination_principal])).toEqual([
      [3, 'grpc', 'spiffe://cluster.local/ns/shop/sa/frontend', 'spiffe://cluster.local/ns/shop/sa/catalog'],
    ])
    // The plaintext 200s, whatever principal was handed in, are one series (weird names apart).
    expect(requests.samples.filter((s) => s.labels.response_flags === '-' && s.labels.connection_security_policy === 'none').map((s) => s.value)).toEqual([51, 1])
    // escaping round-trips
    expect(requests.samples.some((s) => s.labels.source_workload === 'we"ird\\name\nline')).toBe(true)
    const duration = families.get('istio_request_duration_milliseconds')!
    expect(duration.type).toBe('histogram')
    const les = duration.samples
      .filter((s) => s.name.endsWith('_bucket') && s.labels.response_code === '200' && s.labels.source_workload === 'frontend' && s.labels.request_protocol === 'http')
      .map((s) => s.labels.le)
    expect(les).toEqual([
      '0.5', '1', '5', '10', '25', '50', '100', '250', '500', '1000', '2500', '5000', '10000', '30000', '60000',
      '300000', '600000', '1800000', '3600000', '+Inf',
    ])
  })

  it('is accepted by the parser even with no traffic yet', () => {
    const text = renderPrometheus([])
    expect(parseExposition(text).get('istio_requests_total')!.samples).toEqual([])
  })

  it('escapes label values as the format requires', () => {
    expect(escapeLabelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd')
  })

  it('the strict parser itself rejects broken input', () => {
    expect(() => parseExposition('# TYPE x counter\nx{a="b} 1\n')).toThrow()
    expect(() => parseExposition('x 1\n')).toThrow(/before TYPE/)
    expect(() => parseExposition('# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n')).toThrow(/cumulative/)
  })

  // .ci/run installs promtool: under CI the checks below must run, never skip.
  it.runIf(process.env.CI === 'true')('promtool is installed under CI', () => {
    expect(promtoolAvailable).toBe(true)
  })

  it.skipIf(!promtoolAvailable)('passes `promtool check metrics`: no parse error, no lint finding but the one kept on purpose', () => {
    expect(promtoolCheck(sampleExposition())).toEqual({findings: []})
  })

  it.skipIf(!promtoolAvailable)('the promtool judge fails a parse error and an unaccepted finding', () => {
    expect(promtoolCheck('# TYPE x counter\nx{a="b} 1\n').error).toMatch(/parsing error/)
    expect(promtoolCheck('# HELP x a\n# TYPE x counter\nx 1\n').findings).toEqual(['x counter metrics should have "_total" suffix'])
  })
})
