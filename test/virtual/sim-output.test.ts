// mesh sim's output: byte-stable JSON, the series as CSV/JSON, and the terminal report.
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {downsample, renderSimReport, renderSweepReport, seriesByService, sparkline} from '../../src/cli/sim-report.js'
import {renderSeries, seriesCsv, seriesFormatOf, writeSeries} from '../../src/sim/virtual/series-file.js'
import type {SimResult} from '../../src/sim/virtual/sim-result.js'
import {canonical, roundNumber, stableJson, stableResult} from '../../src/sim/virtual/stable-json.js'
import {point, simResult} from './sim-result-fixture.js'

const dir = mkdtempSync(path.join(tmpdir(), 'sim-output-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

/** The same data with every object's keys in reverse insertion order. */
function reversedKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(reversedKeys)
  if (v === null || typeof v !== 'object') return v
  return Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, reversedKeys(x)]))
}

describe('stable JSON', () => {
  it('rounds fractions to 6 decimals, keeps integers, never writes -0, NaN or Infinity', () => {
    expect(roundNumber(1 / 3)).toBe(0.333333)
    expect(roundNumber(2.0000004)).toBe(2)
    expect(roundNumber(123456789)).toBe(123456789)
    expect(Object.is(roundNumber(-0), 0)).toBe(true)
    expect(Object.is(roundNumber(-1e-9), 0)).toBe(true)
    expect(roundNumber(Number.NaN)).toBeNull()
    expect(roundNumber(Infinity)).toBeNull()
  })

  it('orders keys as the contract does whatever order the engine filled them in', () => {
    const result = simResult()
    const a = stableJson(result)
    const b = stableJson(reversedKeys(result))
    expect(b).toBe(a)
    expect(Object.keys(stableResult(reversedKeys(result) as SimResult))).toEqual(['seed', 'durationMs', 'ingressRequests', 'hopRequests', 'services', 'errorsByCause', 'series', 'unstable'])
    expect(Object.keys(stableResult(result).services[0]).slice(0, 4)).toEqual(['service', 'requests', 'successRate', 'actualRequests'])
  })

  it('sorts maps whose keys are data (errorsByCause) and puts unknown keys last, alphabetically', () => {
    const out = canonical({zeta: 1, errorsByCause: {UO: 1, '5xx': 2, DC: 3}, alpha: 2, seed: 3}) as Record<string, unknown>
    expect(Object.keys(out)).toEqual(['seed', 'errorsByCause', 'alpha', 'zeta'])
    expect(Object.keys(out.errorsByCause as object)).toEqual(['5xx', 'DC', 'UO'])
  })

  it('differs when a figure differs beyond the rounding, not within it', () => {
    const result = simResult()
    const nudged = simResult({services: result.services.map((s) => ({...s, meanMs: s.meanMs + 1e-9}))})
    expect(stableJson(nudged)).toBe(stableJson(result))
    const changed = simResult({services: result.services.map((s) => ({...s, meanMs: s.meanMs + 1e-3}))})
    expect(stableJson(changed)).not.toBe(stableJson(result))
  })
})

describe('series file', () => {
  it('is CSV, one line per point, unless the name ends in .json', () => {
    expect(seriesFormatOf('out.csv')).toBe('csv')
    expect(seriesFormatOf('out.JSON')).toBe('json')
    expect(seriesFormatOf('series')).toBe('csv')
    const csv = seriesCsv([point(0, 'frontend', {successRate: 2 / 3}), point(1000, 'payments', {p99: 12.3456789})])
    expect(csv).toBe('atMs,service,rps,successRate,p99,queueDepth\n0,frontend,1000,0.666667,40,0\n1000,payments,1000,1,12.345679,0\n')
  })

  it('quotes a field with a comma or a quote', () => {
    expect(seriesCsv([point(0, 'a,"b"')]).split('\n')[1]).toBe('0,"a,""b""",1000,1,40,0')
  })

  it('writes JSON with the same keys and rounding as --json', async () => {
    const file = path.join(dir, 'series.json')
    const series = simResult().series
    await writeSeries(file, series)
    expect(readFileSync(file, 'utf8')).toBe(renderSeries(series, 'json'))
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(series)
  })

  it('names the flag and the path when the file cannot be written', async () => {
    await expect(writeSeries(path.join(dir, 'no-such-dir', 's.csv'), [])).rejects.toMatchObject({code: 'MESH_BAD_FLAG', message: expect.stringContaining('--series')})
  })
})

describe('sparklines', () => {
  it('scale from zero to the peak, a gap where nothing happened', () => {
    expect(sparkline([0, 50, 100, undefined])).toBe('▁▅█ ')
    expect(sparkline([500, 500])).toBe('██')
    expect(sparkline([0, 0])).toBe('▁▁')
    expect(sparkline([0.5, 1], {min: 0, max: 1})).toBe('▅█')
  })

  it('fold many steps into fewer columns by mean, trough or peak', () => {
    const values = [1, 3, 10, 2, undefined, undefined]
    expect(downsample(values, 2, 'mean')).toEqual([2, 6, undefined])
    expect(downsample(values, 2, 'max')).toEqual([3, 10, undefined])
    expect(downsample(values, 2, 'min')).toEqual([1, 2, undefined])
    expect(downsample([1, 2, 3], 2, 'mean')).toEqual([1.5, 3])
    expect(downsample([1, 2], 1, 'mean')).toEqual([1, 2])
  })

  it('group the series by service in time order, services in the table\'s order', () => {
    const r = simResult({series: [point(1000, 'payments'), point(0, 'payments'), point(0, 'frontend')]})
    const by = seriesByService(r)
    expect([...by.keys()]).toEqual(['frontend', 'payments'])
    expect(by.get('payments')!.map((p) => p.atMs)).toEqual([0, 1000])
  })
})

describe('the report', () => {
  const plain = renderSimReport(simResult(), {colour: false, width: 100})

  it('has mesh stat\'s columns and the simulation\'s own', () => {
    expect(plain).toMatch(/^NAME +REQUESTS +RPS +SUCCESS +ACTUAL +MEAN +P50 +P95 +P99 +P99\.9$/m)
    expect(plain).toMatch(/^frontend +3,000 +1000 +99\.50% +96\.20% +12\.5ms +10\.0ms +30\.0ms +48\.3ms +120\.0ms$/m)
    expect(plain).toMatch(/^NAME +ATTEMPTS +RETRIES +BUDGET-DENIED +EJECTIONS +BREAKER +RATE-LIMITED +QUEUE +SERVICE +UTILISATION$/m)
    expect(plain).toMatch(/^payments +3,100 +100 +4 +2 +0 +0 +850\.0ms +12\.0ms +125\.00%$/m)
  })

  it('gives no utilisation to a service without a concurrency limit: it has no slots to fill', () => {
    const r = simResult()
    r.services[0] = {...r.services[0], slots: 0, utilisation: 11.04}
    const out = renderSimReport(r, {colour: false, width: 100})
    expect(out).toMatch(/^frontend +[\d,]+ .* no limit$/m)
    expect(out).not.toContain('1104')
  })

  it('says an overloaded system is unstable, with each service\'s utilisation, before any figure', () => {
    const at = plain.indexOf('Unstable:')
    expect(at).toBeGreaterThan(0)
    expect(at).toBeLessThan(plain.indexOf('NAME'))
    expect(plain).toContain('payments (utilisation 125.00%)')
    expect(renderSimReport(simResult({unstable: []}), {colour: false, width: 100})).not.toContain('Unstable')
  })

  it('lists failed calls by cause, most first', () => {
    expect(plain).toContain('Failed calls by cause (18): 5xx 15, UO 3')
    expect(renderSimReport(simResult({errorsByCause: {}}), {colour: false, width: 100})).toContain('No failed calls.')
  })

  it('draws one sparkline per service and metric, with its range', () => {
    expect(plain).toMatch(/^ {2}frontend +▇█▇ +900\/s … 1100\/s$/m)
    // Success: 100%, 50%, 90% on a fixed 0..100% scale.
    expect(plain).toMatch(/^ {2}payments +█▅▇ +50\.00% … 100\.00%$/m)
    expect(plain).toMatch(/^ {2}payments +▁▅█ +3 … 80$/m)
    const idle = renderSimReport(simResult({series: simResult().series.map((p) => ({...p, queueDepth: 0}))}), {colour: false, width: 100})
    expect(idle).toContain('no attempt waited for a slot')
  })

  it('fits a long run into the width it is given', () => {
    const series = Array.from({length: 600}, (_, i) => point(i * 1000, 'frontend', {rps: i}))
    const out = renderSimReport(simResult({durationMs: 600_000, series, services: [simResult().services[0]]}), {colour: false, width: 80})
    for (const line of out.split('\n').filter((l) => l.includes('▁'))) expect(line.length).toBeLessThanOrEqual(80)
    expect(out).toContain('one column = 14s')
  })

  it('has no escape codes without colour, and colours success by mesh stat\'s thresholds with it', () => {
    // eslint-disable-next-line no-control-regex
    expect(plain).not.toMatch(/\x1b\[/)
    const coloured = renderSimReport(simResult(), {colour: true, width: 100})
    expect(coloured).toContain('\x1b[31m90.00%')
    expect(coloured).toContain('\x1b[33m96.20%')
    expect(coloured).toContain('\x1b[32m99.50%')
  })

  it('lists a scenario\'s expectations with what was measured', () => {
    const out = renderSimReport(simResult({expectations: [{text: 'p99 < 500ms', phase: 1, actual: 2400, passed: false}, {text: 'successRate >= 90%', phase: 'overall', actual: 0.9512345, passed: true}]}), {colour: false, width: 100})
    expect(out).toContain('✘ p99 < 500ms (phase 1): 2400')
    expect(out).toContain('✔ successRate >= 90% (whole run): 0.951')
    expect(out).toContain('1 of 2 expectations failed.')
  })
})

describe('the sweep report', () => {
  const sweep = {
    seed: 7,
    vary: [{key: 'services.payments.policy.retries.attempts', values: ['0', '3']}, {key: 'load.rps', values: ['500']}],
    metrics: ['successRate', 'p99', 'retries', 'payments.utilisation'],
    cells: [
      {values: {'services.payments.policy.retries.attempts': '0', 'load.rps': '500'}, metrics: {successRate: 0.9, p99: 48.25, retries: 0, 'payments.utilisation': 0.5}, unstable: [], result: simResult()},
      {values: {'services.payments.policy.retries.attempts': '3', 'load.rps': '500'}, metrics: {successRate: 0.995, p99: 2400, retries: 1234, 'payments.utilisation': 1.2}, unstable: [{service: 'payments', utilisation: 1.2}], result: simResult()},
    ],
  }

  it('has one row per cell: the values varied, then each metric formatted as the tables format it', () => {
    const out = renderSweepReport(sweep, {colour: false})
    expect(out).toContain('Sweep of 2 cells (2 × 1), seed 7, 3s of virtual time each:')
    expect(out).toMatch(/^services\.payments\.policy\.retries\.attempts +load\.rps +successRate +p99 +retries +payments\.utilisation +UNSTABLE \(utilisation\)$/m)
    expect(out).toMatch(/^0 +500 +90\.00% +48\.3ms +0 +50\.00%$/m)
    expect(out).toMatch(/^3 +500 +99\.50% +2\.40s +1,234 +120\.00% +payments 120\.00%$/m)
    expect(out).toContain('A cell marked unstable')
  })

  it('leaves the unstable column out when every cell was stable', () => {
    const out = renderSweepReport({...sweep, cells: [sweep.cells[0]]}, {colour: false})
    expect(out).not.toContain('UNSTABLE')
  })
})
