// `mesh sim` as a user runs it: no mesh running, only mesh.yaml. The same flags and seed give
// the same bytes; a scenario's failed expectation exits 4; a command service without a model
// exits 2 naming it.
import {rmSync, writeFileSync} from 'node:fs'
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
