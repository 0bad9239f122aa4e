// The `large` template's generator: the shape asked for (services, depth, fanout), the same
// file for the same seed, everything reachable from the ingress, and a mesh.yaml that
// `mesh validate` passes without a warning. Bad options are refused before anything is written.
import {existsSync} from 'node:fs'
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {parseConfig} from '../../src/sim/config/load-config.js'
import {MeshError} from '../../src/sim/errors.js'
import {generateLarge, largeMeshYaml, type GeneratedService, type LargeOptions} from '../../src/sim/templates/large-architecture.js'
import {writeTemplate} from '../../src/sim/templates/templates.js'
import {BIN, mesh} from '../helpers/mesh.js'

/** Services on the longest call path from the gateway (the gateway counts as 1). */
function longestPath(services: GeneratedService[]): number {
  const byName = new Map(services.map((s) => [s.name, s]))
  const memo = new Map<string, number>()
  const depthOf = (name: string): number => {
    if (!memo.has(name)) memo.set(name, 1 + Math.max(0, ...byName.get(name)!.calls.map((c) => depthOf(c.service))))
    return memo.get(name)!
  }
  return depthOf('gateway')
}

function reachable(services: GeneratedService[]): Set<string> {
  const byName = new Map(services.map((s) => [s.name, s]))
  const seen = new Set(['gateway'])
  const queue = ['gateway']
  while (queue.length > 0) for (const c of byName.get(queue.shift()!)!.calls) if (!seen.has(c.service)) seen.add(c.service), queue.push(c.service)
  return seen
}

function refused(options: LargeOptions): MeshError {
  try {
    generateLarge(options)
  } catch (error) {
    if (error instanceof MeshError) return error
    throw error
  }
  throw new Error(`expected ${JSON.stringify(options)} to be refused`)
}

describe('generateLarge', () => {
  it('writes 100 services by default shape: a gateway, aggregators, leaves and a few databases with capacities', () => {
    const arch = generateLarge({services: 100})
    expect(arch).toMatchObject({depth: 6, fanout: 3, seed: 1})
    const count = (role: string) => arch.services.filter((s) => s.role === role).length
    expect(arch.services).toHaveLength(100)
    expect(new Set(arch.services.map((s) => s.name)).size).toBe(100)
    expect(count('gateway')).toBe(1)
    expect(count('aggregator')).toBeGreaterThan(5)
    expect(count('leaf')).toBeGreaterThan(count('aggregator'))
    expect(count('database')).toBeGreaterThanOrEqual(2)
    expect(count('database')).toBeLessThanOrEqual(5)
    for (const s of arch.services) {
      expect(s.p50Ms, s.name).toBeGreaterThan(0)
      expect(s.p99Ms, s.name).toBeGreaterThanOrEqual(s.p50Ms)
      if (s.role === 'database') expect(s.concurrency, s.name).toBeGreaterThan(0)
      if (s.role === 'database' || s.role === 'leaf') expect(s.calls.every((c) => c.service.endsWith('-db')), s.name).toBe(true)
      if (s.role === 'aggregator') expect(s.calls.length, s.name).toBeGreaterThan(0)
    }
  })

  it.each([
    {services: 100, depth: 6, fanout: 3},
    {services: 100, depth: 4, fanout: 10},
    {services: 10},
    {services: 40, depth: 40, fanout: 1},
    {services: 200},
    {services: 30, depth: 12, fanout: 2, seed: 9},
    {services: 3},
    {services: 1},
  ])('%o: depth and fanout respected, every service reachable from the ingress, valid without warnings', (options) => {
    const arch = generateLarge(options)
    expect(arch.services).toHaveLength(options.services)
    if (options.depth) expect(arch.depth).toBe(options.depth)
    if (options.fanout) expect(arch.fanout).toBe(options.fanout)
    expect(longestPath(arch.services)).toBe(arch.depth)
    for (const s of arch.services) expect(s.calls.length, s.name).toBeLessThanOrEqual(arch.fanout)
    expect(reachable(arch.services).size).toBe(options.services)
    const {config, issues} = parseConfig(largeMeshYaml(arch), '/tmp/large/mesh.yaml', {})
    expect(issues).toEqual([])
    expect(config!.services).toHaveLength(options.services)
    expect(config!.services.every((s) => s.versions.every((v) => v.workload.kind === 'simulate'))).toBe(true)
  })

  it('the most services a refusal names do fit', () => {
    const most = Number(/at most (\d+) services/.exec(refused({services: 100, depth: 4, fanout: 3}).message)![1])
    expect(generateLarge({services: most, depth: 4, fanout: 3}).services).toHaveLength(most)
    expect(() => generateLarge({services: most + 1, depth: 4, fanout: 3})).toThrow(/do not fit/)
  })

  it('raises the fanout it was not given until the services fit the depth', () => {
    // 1 + 3 + 9 + 27 + 81 = 121 services above the databases at fanout 3: 200 need 4.
    expect(generateLarge({services: 200}).fanout).toBe(4)
  })

  it('the same seed writes the same file; another seed another one', () => {
    const a = largeMeshYaml(generateLarge({services: 100, seed: 7}))
    expect(largeMeshYaml(generateLarge({services: 100, seed: 7}))).toBe(a)
    expect(largeMeshYaml(generateLarge({services: 100, seed: 8}))).not.toBe(a)
    expect(a).toContain('# Written by: mesh init --template large --services 100 --depth 6 --fanout 3 --seed 7')
  })

  it.each([
    [{services: 0}, '--services 0: expected a whole number of at least 1'],
    [{services: 5, depth: 0}, '--depth 0: expected a whole number of at least 1'],
    [{services: 5, fanout: -1}, '--fanout -1: expected a whole number of at least 1'],
    [{services: 5, depth: 6}, '--depth 6 is more than --services 5'],
    // 1 + 3 above one database; a sixth service would make no second database, but a fifth tree service, which does not fit.
    [{services: 100, depth: 3, fanout: 3}, '--services 100 do not fit --depth 3 --fanout 3: at most 5 services. Raise --depth or --fanout'],
    [{services: 5, depth: 1}, '--depth 1 holds the gateway alone'],
    [{services: 5000}, '--services 5000: at most 1000'],
  ])('refuses %o: %s', (options, message) => {
    const error = refused(options)
    expect(error.code).toBe('MESH_BAD_FLAG')
    expect(error.message).toContain(message)
  })
})

describe('writeTemplate large', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'mesh-large-'))
  })
  afterEach(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('writes the generated mesh.yaml (100 services unless told), which validates', async () => {
    expect(await writeTemplate('large', dir, {generator: {services: 12, seed: 3}})).toEqual(['mesh.yaml'])
    const text = await readFile(path.join(dir, 'mesh.yaml'), 'utf8')
    // Past the schema modeline, which init points at this package's schema where the project has none.
    const body = (yaml: string) => yaml.slice(yaml.indexOf('\n'))
    expect(body(text)).toBe(body(largeMeshYaml(generateLarge({services: 12, seed: 3}))))
    expect(parseConfig(text, path.join(dir, 'mesh.yaml'), {}).config!.services).toHaveLength(12)
    await writeTemplate('large', dir, {force: true})
    expect(parseConfig(await readFile(path.join(dir, 'mesh.yaml'), 'utf8'), path.join(dir, 'mesh.yaml'), {}).config!.services).toHaveLength(100)
  })

  it('refuses the generator options for a copied template, writing nothing', async () => {
    await expect(writeTemplate('shop', dir, {generator: {services: 5}})).rejects.toMatchObject({code: 'MESH_BAD_FLAG', message: expect.stringContaining('--services applies to a generated template (large), not to "shop"')})
    expect(existsSync(path.join(dir, 'mesh.yaml'))).toBe(false)
  })

  it('mesh init exits 2 on a bad value, saying which, and writes nothing', async () => {
    expect(existsSync(BIN)).toBe(true)
    const r = await mesh(dir, ['init', '--template', 'large', '--services', '4', '--depth', '9'])
    expect(r.exitCode).toBe(2)
    expect(r.stderr).toContain('--depth 9 is more than --services 4')
    expect(existsSync(path.join(dir, 'mesh.yaml'))).toBe(false)
    const ok = await mesh(dir, ['init', '--template', 'large', '--services', '10', '--seed', '5'])
    expect(ok.exitCode).toBe(0)
    const v = await mesh(dir, ['validate'])
    expect(v).toMatchObject({exitCode: 0, stderr: ''})
    expect(v.stdout).toContain('10 services')
  })
})
