// `mesh sim` as a user runs it: no mesh running, only mesh.yaml. The same flags and seed give
// the same bytes; a scenario's failed expectation exits 4; a command service without a model
// exits 2 naming it; --vary runs a sweep and prints one row per cell.
import {readFileSync, rmSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {afterAll, describe, expect, test} from 'vitest'
import {mesh, meshDir} from '../helpers/mesh.js'

const MESH = [
  'name: simcli',
  'ingress: {port: 0, routes: [{prefix: /, service: web}]}',
  'services:',
  '  web:',
  '    command: node fixtures/echo.js',
  '    simulate: {latency: {p50: 2ms, p99: 8ms}, calls: [{service: db}]}',
  '  db:',
  '    replicas: 2',
  '    simulate: {latency: {distribution: exponential, mean: 3ms}, concurrency: 4}',
].join('\n')

describe('mesh sim', () => {
  const dirs: string[] = []
  afterAll(() => {
    for (const d of dirs) rmSync(d, {recursive: true, force: true})
  })
  const dirWith = (yaml: string) => {
    const dir = meshDir(yaml)
    dirs.push(dir)
    return dir
  }

  test('--json is byte-identical for the same seed, and differs for another', {timeout: 60_000}, async () => {
    const dir = dirWith(MESH)
    const args = (seed: string) => ['sim', '--rps', '200', '--duration', '3s', '--arrivals', 'poisson', '--seed', seed, '--json']
    const [a, b, c] = await Promise.all([mesh(dir, args('4')), mesh(dir, args('4')), mesh(dir, args('5'))])
    expect(a.exitCode).toBe(0)
    expect(a.stdout).toBe(b.stdout)
    expect(c.stdout).not.toBe(a.stdout)
    const result = JSON.parse(a.stdout) as {services: Array<{service: string; requests: number}>}
    expect(result.services.map((s) => s.service)).toEqual(['web', 'db'])
    expect(result.services[1].requests).toBe(result.services[0].requests)
  })

  test('a scenario whose expectation fails exits 4 and says what was measured', {timeout: 60_000}, async () => {
    const dir = dirWith(MESH)
    writeFileSync(
      path.join(dir, 'chaos.yaml'),
      ['duration: 6s', 'load: {target: ingress, rps: 50}', 'timeline:', '  - {at: 2s, inject: {service: db, abort: 503}}', 'expect:', '  - successRate >= 99%'].join('\n'),
    )
    const r = await mesh(dir, ['sim', '--scenario', 'chaos.yaml'])
    expect(r.exitCode).toBe(4)
    expect(r.stdout).toMatch(/successRate >= 99%/)
    // Swept, each cell judged: more replicas of db do not help a fault on all of them (exit 4:
    // no cell held); a db without the fault does.
    const swept = await mesh(dir, ['sim', '--scenario', 'chaos.yaml', '--vary', 'services.db.replicas=1,2', '--metrics', 'successRate'])
    expect(swept.exitCode).toBe(4)
    expect(swept.stdout).toMatch(/^services\.db\.replicas +successRate +EXPECTATIONS$/m)
    expect(swept.stdout).toMatch(/^1 +\d+\.\d\d% +1 of 1 failed$/m)
    expect(swept.stdout).toMatch(/^2 +\d+\.\d\d% +1 of 1 failed$/m)
    expect(swept.stdout).toContain('No cell kept every expectation of the scenario.')
    writeFileSync(path.join(dir, 'chaos.yaml'), readFileSync(path.join(dir, 'chaos.yaml'), 'utf8').replace('abort: 503', 'abort: 503, percent: 5%'))
    const some = await mesh(dir, ['sim', '--scenario', 'chaos.yaml', '--vary', 'services.web.policy.retries.attempts=0,2', '--metrics', 'successRate'])
    expect(some.exitCode).toBe(0)
    expect(some.stdout).toMatch(/^0 +\d+\.\d\d% +1 of 1 failed$/m)
    expect(some.stdout).toMatch(/^2 +\d+\.\d\d% +1 held$/m)
    expect(some.stdout).toContain('Every expectation held in 1 of 2 cells; the first: services.web.policy.retries.attempts=2')
  })

  test('an unstable service is named with its utilisation and the instances it needs at this load', {timeout: 60_000}, async () => {
    const dir = dirWith(MESH)
    // db: 2 instances × 4 slots at 3 ms each serve about 2,700/s; 4,000/s is too many.
    const [text, json] = await Promise.all([mesh(dir, ['sim', '--rps', '4000', '--duration', '1s']), mesh(dir, ['sim', '--rps', '4000', '--duration', '1s', '--json'])])
    const [unstable] = (JSON.parse(json.stdout) as {unstable: Array<{service: string; utilisation: number; instances: number; needs: number}>}).unstable
    expect(unstable).toMatchObject({service: 'db', instances: 2})
    expect(unstable.utilisation).toBeGreaterThan(1)
    // The fewest instances under 100% for the same work, and no fewer.
    expect(unstable.needs).toBe(Math.floor(unstable.utilisation * 2) + 1)
    expect((unstable.utilisation * 2) / unstable.needs).toBeLessThan(1)
    expect(text.stdout).toMatch(new RegExp(`db \\(utilisation [\\d.]+%, 2 instances: needs at least ${unstable.needs} at this load\\)\\. Its queue grows`))
  })

  test('a command service without a model: exit 2, named, with the two ways to give it one', {timeout: 60_000}, async () => {
    const dir = dirWith(MESH.replace('    simulate: {latency: {p50: 2ms, p99: 8ms}, calls: [{service: db}]}\n', ''))
    const r = await mesh(dir, ['sim'])
    expect(r.exitCode).toBe(2)
    expect(r.stderr).toMatch(/"web" runs a command and has none/)
    expect(r.stderr).toMatch(/simulate: block beside its command:/)
    expect(r.stderr).toMatch(/mesh sim --fit/)
  })
})

describe('mesh sim --vary', () => {
  let dir: string
  afterAll(() => rmSync(dir, {recursive: true, force: true}))
  const sim = (...args: string[]) => mesh(dir, ['sim', '--duration', '2s', ...args])
  const grid = ['--vary', 'services.db.replicas=1,2', '--vary', 'load.rps=50,100']

  test('one row per cell, the chosen metrics as columns; no progress on stderr when it is not a terminal', {timeout: 60_000}, async () => {
    dir = meshDir(MESH)
    const r = await sim(...grid, '--metrics', 'p99,db.utilisation,ingressRequests')
    expect(r.exitCode).toBe(0)
    expect(r.stderr).toBe('')
    const lines = r.stdout.split('\n')
    expect(lines[0]).toBe('Sweep of 4 cells (2 × 2), seed 1, 2s of virtual time each:')
    expect(lines).toContainEqual(expect.stringMatching(/^services\.db\.replicas +load\.rps +p99 +db\.utilisation +ingressRequests$/))
    const rows = lines.filter((l) => /^[12] +(50|100) /.test(l)).map((l) => l.split(/ +/))
    expect(rows.map((row) => [row[0], row[1], row[4]])).toEqual([
      ['1', '50', '100'],
      ['1', '100', '200'],
      ['2', '50', '100'],
      ['2', '100', '200'],
    ])
    // The same load on twice the replicas: each busy half as much.
    const utilisation = (row: string[]) => Number(row[3].replace('%', ''))
    expect(utilisation(rows[2])).toBeCloseTo(utilisation(rows[0]) / 2, 0)
  })

  test('--json is the sweep, byte-identical for the same seed', {timeout: 60_000}, async () => {
    const [a, b] = await Promise.all([sim(...grid, '--seed', '3', '--json'), sim(...grid, '--seed', '3', '--json')])
    expect(a.exitCode).toBe(0)
    expect(a.stdout).toBe(b.stdout)
    const sweep = JSON.parse(a.stdout) as {seed: number; metrics: string[]; cells: Array<{values: Record<string, string>; metrics: Record<string, number>}>}
    expect(sweep.seed).toBe(3)
    expect(sweep.metrics).toEqual(['successRate', 'p50', 'p99', 'retries'])
    expect(sweep.cells.map((c) => c.values)).toEqual([
      {'services.db.replicas': '1', 'load.rps': '50'},
      {'services.db.replicas': '1', 'load.rps': '100'},
      {'services.db.replicas': '2', 'load.rps': '50'},
      {'services.db.replicas': '2', 'load.rps': '100'},
    ])
    expect(sweep.cells.every((c) => c.metrics.successRate === 1)).toBe(true)
  })

  test('a misspelt key or a bad value: exit 2, with the key it meant or the line of mesh.yaml', {timeout: 60_000}, async () => {
    const [key, value] = await Promise.all([sim('--vary', 'services.db.replcas=1,2'), sim('--vary', 'services.db.replicas=2,0')])
    expect(key.exitCode).toBe(2)
    expect(key.stderr).toMatch(/--vary services\.db\.replcas: services\.db has no key "replcas"; did you mean "replicas"\?/)
    expect(key.stdout).toBe('')
    expect(value.exitCode).toBe(2)
    // Line 8 is db's `replicas: 2`: the value set in its place is checked as mesh validate checks it.
    expect(value.stderr).toMatch(/mesh\.yaml:8:\d+ services\.db\.replicas: /)
    expect(value.stderr).toMatch(/In the sweep's cell services\.db\.replicas=0 \(--vary\)/)
  })

  test('--traces and --series are one run\'s files: refused with --vary', {timeout: 60_000}, async () => {
    const [traces, series] = await Promise.all([sim(...grid, '--traces', 't.jsonl'), sim(...grid, '--series', 's.csv')])
    expect(traces.exitCode).toBe(2)
    expect(traces.stderr).toMatch(/--traces writes the file of one run, and --vary runs many/)
    expect(series.exitCode).toBe(2)
    expect(series.stderr).toMatch(/--series writes the file of one run/)
  })

  test('--series writes the file; --step sets its points', {timeout: 60_000}, async () => {
    const [whole, halves] = await Promise.all([sim('--series', 'whole.json', '--json'), sim('--series', 'halves.csv', '--step', '500ms')])
    expect(whole.exitCode).toBe(0)
    expect(halves.exitCode).toBe(0)
    expect(halves.stderr).toContain('Wrote the series (8 points, one per service per 500ms) to halves.csv.')
    const points = JSON.parse(readFileSync(path.join(dir, 'whole.json'), 'utf8')) as Array<{service: string}>
    // Two services, two seconds: one point each per second, four per second at 500ms.
    expect(points).toHaveLength(4)
    expect(readFileSync(path.join(dir, 'halves.csv'), 'utf8').trim().split('\n')).toHaveLength(1 + 8)
    expect((JSON.parse(whole.stdout) as {series: unknown[]}).series).toHaveLength(4)
  })
})
