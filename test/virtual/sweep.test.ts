// What-if sweeps: the grid, keys checked against the schema, values through mesh validate's checks.
import {describe, expect, it} from 'vitest'
import {ConfigError} from '../../src/sim/config/config-error.js'
import {parseConfig} from '../../src/sim/config/load-config.js'
import {cellResult, checkVaryKey, configFor, loadFor, metricColumns, metricValue, parseVary, splitValues, sweepCells} from '../../src/sim/virtual/sweep.js'
import {simResult} from './sim-result-fixture.js'
import {TINY_FILE, TINY_SOURCE, tinyConfig} from './tiny-mesh.js'

function configError(fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (error) {
    if (error instanceof ConfigError) return error
    throw error
  }
  throw new Error('no ConfigError')
}

describe('--vary', () => {
  it('splits values at commas outside brackets, braces and quotes', () => {
    expect(splitValues('0,1, 3')).toEqual(['0', '1', '3'])
    expect(splitValues('{attempts: 1, on: [5xx, reset]},{attempts: 3}')).toEqual(['{attempts: 1, on: [5xx, reset]}', '{attempts: 3}'])
    expect(splitValues('"a,b",c')).toEqual(['"a,b"', 'c'])
  })

  it('gives the grid of every combination, the first key varying slowest', () => {
    const axes = parseVary(['services.frontend.policy.retries.attempts=0,3', 'load.rps=500,1000,2000'])
    const cells = sweepCells(axes)
    expect(cells).toHaveLength(6)
    expect(cells.map((c) => c.map((v) => v.value).join('/'))).toEqual(['0/500', '0/1000', '0/2000', '3/500', '3/1000', '3/2000'])
    expect(sweepCells([])).toEqual([[]])
  })

  it('refuses a flag with no values, an empty value, a key twice and a value twice', () => {
    expect(() => parseVary(['load.rps'])).toThrow(/has no KEY=VALUES/)
    expect(() => parseVary(['load.rps=1,,2'])).toThrow(/an empty value/)
    expect(() => parseVary(['load.rps=1', 'load.rps=2'])).toThrow(/given twice: give all its values in one --vary/)
    expect(() => parseVary(['load.rps=1,1'])).toThrow(/a value is given twice/)
  })
})

describe('sweep keys', () => {
  const c = tinyConfig()

  it('takes keys the schema has, written in the file or not', () => {
    for (const key of ['services.frontend.policy.retries.attempts', 'services.payments.policy.timeout', 'services.payments.versions.v1.replicas', 'load.rps', 'services.frontend.simulate.latency.p99', 'ingress.routes.0.service']) {
      expect(() => checkVaryKey(key, c), key).not.toThrow()
    }
  })

  it('refuses a misspelt key with the closest one at that level', () => {
    expect(() => checkVaryKey('services.frontend.policy.retries.attemps', c)).toThrow(
      expect.objectContaining({code: 'MESH_BAD_FLAG', message: '--vary services.frontend.policy.retries.attemps: services.frontend.policy.retries has no key "attemps"; did you mean "attempts"?'}),
    )
    expect(() => checkVaryKey('services.frontend.polcy.timeout', c)).toThrow(/has no key "polcy"; did you mean "policy"\?/)
    expect(() => checkVaryKey('lod.rps', c)).toThrow(/mesh.yaml has no key "lod"; did you mean "load"\?/)
    expect(() => checkVaryKey('load.rpss', c)).toThrow(/the load has no key "rpss"; did you mean "load.rps"\?/)
    expect(() => checkVaryKey('services.frontend.replicas.x', c)).toThrow(/services.frontend.replicas is a value, not a map/)
  })

  it('refuses a service or a version the file does not have, with did-you-mean', () => {
    expect(() => checkVaryKey('services.paymnts.replicas', c)).toThrow(expect.objectContaining({code: 'MESH_SERVICE_NOT_FOUND', message: 'service "paymnts" is not in the mesh; did you mean "payments"?'}))
    expect(() => checkVaryKey('services.payments.versions.v2.replicas', c)).toThrow(expect.objectContaining({code: 'MESH_VERSION_NOT_FOUND'}))
  })
})

describe('a cell\'s config', () => {
  it('sets keys the file has and keys it leaves out', () => {
    const cell = [
      {key: 'services.frontend.policy.retries.attempts', value: '3'},
      {key: 'services.payments.policy.timeout', value: '300ms'},
      {key: 'services.payments.versions.v1.replicas', value: '4'},
      {key: 'services.payments.versions.v1.simulate.latency', value: '{p50: 50ms, p99: 400ms}'},
    ]
    const cfg = configFor(TINY_SOURCE, TINY_FILE, cell, {})
    const frontend = cfg.services.find((s) => s.name === 'frontend')!
    const payments = cfg.services.find((s) => s.name === 'payments')!
    expect(frontend.policy.retries?.attempts).toBe(3)
    expect(payments.policy.timeoutMs).toBe(300)
    expect(payments.versions[0].replicas).toBe(4)
    expect(payments.versions[0].workload).toMatchObject({kind: 'simulate', simulate: {latency: {p50Ms: 50, p99Ms: 400}}})
    // The file's text is not changed: the next cell starts from it again.
    expect(configFor(TINY_SOURCE, TINY_FILE, [], {}).services[0].policy.retries?.attempts).toBe(0)
  })

  it('refuses a value with the words and the line mesh validate gives for it written in the file', () => {
    const viaVary = configError(() => configFor(TINY_SOURCE, TINY_FILE, [{key: 'services.frontend.policy.retries.attempts', value: '-1'}], {}))
    const written = parseConfig(TINY_SOURCE.replace('attempts: 0', 'attempts: -1'), TINY_FILE, {})
    expect(written.config).toBeUndefined()
    expect(viaVary.issues).toEqual(written.issues)
    expect(viaVary.message).toMatch(/mesh\.yaml:14:19 services\.frontend\.policy\.retries\.attempts: expected a non-negative integer/)
    expect(viaVary.hints[0]).toBe('In the sweep\'s cell services.frontend.policy.retries.attempts=-1 (--vary).')
  })

  it('places a key the file leaves out at its closest map, with the same message', () => {
    const viaVary = configError(() => configFor(TINY_SOURCE, TINY_FILE, [{key: 'services.payments.policy.timeout', value: 'soon'}], {}))
    expect(viaVary.issues).toHaveLength(1)
    expect(viaVary.issues[0]).toMatchObject({path: 'services.payments.policy.timeout', severity: 'error', line: 16})
    const written = parseConfig(`${TINY_SOURCE}    policy:\n      timeout: soon\n`, TINY_FILE, {})
    expect(viaVary.issues[0].message).toBe(written.issues[0].message)
  })
})

describe('a cell\'s load', () => {
  const base = {rps: 100, durationMs: 10_000}

  it('is the flags\' with the cell\'s load keys in their place', () => {
    expect(loadFor(base, [])).toEqual({segments: [{durationMs: 10_000, fromRps: 100, toRps: 100}], arrivals: 'uniform'})
    expect(loadFor(base, [{key: 'load.rps', value: '2000'}, {key: 'load.duration', value: '1m'}, {key: 'load.arrivals', value: 'poisson'}])).toEqual({
      segments: [{durationMs: 60_000, fromRps: 2000, toRps: 2000}],
      arrivals: 'poisson',
    })
    // A config key is not the load's business.
    expect(loadFor(base, [{key: 'services.payments.replicas', value: '3'}]).segments[0].fromRps).toBe(100)
  })

  it('refuses a value the load cannot take', () => {
    expect(() => loadFor(base, [{key: 'load.rps', value: 'lots'}])).toThrow(/--vary load.rps: "lots" is not a positive number/)
    expect(() => loadFor(base, [{key: 'load.duration', value: '10'}])).toThrow(/not a positive duration/)
    expect(() => loadFor(base, [{key: 'load.arrivals', value: 'bursty'}])).toThrow(/not uniform or poisson/)
  })
})

describe('--metrics', () => {
  const c = tinyConfig()

  it('reads a bare metric as the entry service\'s, SERVICE.METRIC as that service\'s, and the run\'s figures', () => {
    const cols = metricColumns(['p99', 'payments.successRate', 'hopRequests'], c)
    expect(cols.map((col) => col.label)).toEqual(['p99', 'payments.successRate', 'hopRequests'])
    const r = simResult()
    expect(cols.map((col) => metricValue(r, col))).toEqual([48.25, 0.9, 6200])
  })

  it('refuses an unknown metric or service with did-you-mean', () => {
    expect(() => metricColumns(['p98'], c)).toThrow(/--metrics: no metric "p98"; did you mean "p9[59]"\?/)
    expect(() => metricColumns(['sucessRate'], c)).toThrow(/did you mean "successRate"\?/)
    expect(() => metricColumns(['paymnts.p99'], c)).toThrow(expect.objectContaining({code: 'MESH_SERVICE_NOT_FOUND'}))
  })
})

describe('a cell\'s row', () => {
  it('says what an unstable service needs, and rounds its figures as --json does', () => {
    const withLimit = tinyConfig((source) => source.replace('          errorRate: 0.2', '          errorRate: 0.2\n          concurrency: 4\n        replicas: 3'))
    const columns = metricColumns(['p99', 'payments.utilisation'], withLimit)
    const result = simResult({unstable: [{service: 'payments', utilisation: 1.25}, {service: 'frontend', utilisation: 2 / 3 + 1}]})
    result.services[0].p99 = 1 / 3
    const row = cellResult([{key: 'services.payments.versions.v1.replicas', value: '3'}], result, columns, withLimit)
    // 3 instances at 125%: 3.75 instances' work, so 4 are the fewest below 100%. frontend has no
    // concurrency limit (no slots to count): said unstable without a count.
    expect(row.unstable).toEqual([
      {service: 'payments', utilisation: 1.25, instances: 3, needs: 4},
      {service: 'frontend', utilisation: 1.666667},
    ])
    expect(row.metrics.p99).toBe(0.333333)
    expect(row.values).toEqual({'services.payments.versions.v1.replicas': '3'})
    expect('series' in row.result).toBe(false)
  })
})
