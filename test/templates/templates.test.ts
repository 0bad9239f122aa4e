import {mkdtemp, mkdir, readFile, rm, writeFile} from 'node:fs/promises'
import {existsSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {parse} from 'yaml'
import {listTemplates, templatesDir, writeTemplate} from '../../src/sim/templates/templates.js'
import {MeshError} from '../../src/sim/errors.js'

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'mesh-init-'))
})
afterEach(async () => {
  await rm(dir, {recursive: true, force: true})
})

async function rejection(promise: Promise<unknown>): Promise<MeshError> {
  try {
    await promise
  } catch (error) {
    if (error instanceof MeshError) return error
    throw error
  }
  throw new Error('expected a MeshError')
}

describe('templates', () => {
  it('finds <package root>/templates', () => {
    expect(templatesDir()).toBe(path.resolve(import.meta.dirname, '../../templates'))
  })

  it('lists every template with its description', async () => {
    const templates = await listTemplates()
    expect(templates.map((t) => t.name)).toEqual(expect.arrayContaining(['large', 'minimal', 'secure-shop', 'serverless', 'shop']))
    for (const t of templates) expect(t.description.length).toBeGreaterThan(10)
    // A template made for mesh sim says so, and mesh init prints it instead of "mesh up".
    expect(templates.find((t) => t.name === 'retry-storm')?.next).toMatch(/^mesh sim --scenario scenarios\/slowdown\.yaml/)
    expect(templates.find((t) => t.name === 'shop')?.next).toBeUndefined()
  })

  it('writes the minimal template, without template.json', async () => {
    const written = await writeTemplate('minimal', dir)
    expect(written).toEqual(['mesh.yaml'])
    expect(existsSync(path.join(dir, 'template.json'))).toBe(false)
    const config = parse(await readFile(path.join(dir, 'mesh.yaml'), 'utf8'))
    expect(config.name).toBe('minimal')
  })

  it('writes the shop template with its real frontend, into a directory it creates', async () => {
    const target = path.join(dir, 'new', 'shop')
    const written = await writeTemplate('shop', target)
    expect(written).toEqual(['frontend/package.json', 'frontend/server.js', 'mesh.yaml', 'scenarios/capacity-plan.md', 'scenarios/capacity-plan.yaml'])
    expect(await readFile(path.join(target, 'frontend/server.js'), 'utf8')).toContain('HTTP_PROXY')
  })

  it('refuses to overwrite and writes nothing, naming the file and --force', async () => {
    await mkdir(path.join(dir, 'frontend'))
    await writeFile(path.join(dir, 'frontend', 'server.js'), '// mine')
    const error = await rejection(writeTemplate('shop', dir))
    expect(error.code).toBe('MESH_FILE_EXISTS')
    expect(error.message).toContain(path.join(dir, 'frontend', 'server.js'))
    expect(error.message).toContain('--force')
    expect(existsSync(path.join(dir, 'mesh.yaml'))).toBe(false)
    expect(await readFile(path.join(dir, 'frontend', 'server.js'), 'utf8')).toBe('// mine')
  })

  it('overwrites with force', async () => {
    await writeFile(path.join(dir, 'mesh.yaml'), 'name: mine\n')
    expect(await writeTemplate('minimal', dir, {force: true})).toEqual(['mesh.yaml'])
    expect(await readFile(path.join(dir, 'mesh.yaml'), 'utf8')).toContain('name: minimal')
  })

  it('names the known templates when asked for an unknown one', async () => {
    const error = await rejection(writeTemplate('nope', dir))
    expect(error.code).toBe('MESH_TEMPLATE_NOT_FOUND')
    expect(error.message).toMatch(/"nope".*large, minimal, retry-storm, secure-shop, serverless, shop/)
  })

  it('treats a path as an unknown template, not a directory to copy', async () => {
    const error = await rejection(writeTemplate('../templates', dir))
    expect(error.code).toBe('MESH_TEMPLATE_NOT_FOUND')
  })
})

// A light check that does not depend on the validator: shapes the rest of meshsim relies on.
describe.each(['minimal', 'shop', 'secure-shop', 'serverless'])('templates/%s/mesh.yaml', (name) => {
  it('uses only schema keys, and every simulated call targets a declared dependency', async () => {
    const config = parse(await readFile(path.join(templatesDir(), name, 'mesh.yaml'), 'utf8'))
    const topKeys: Record<string, string[]> = {'secure-shop': ['ingress', 'name', 'security', 'services'], serverless: ['functions', 'ingress', 'name', 'services']}
    expect(Object.keys(config).sort()).toEqual(topKeys[name] ?? ['ingress', 'name', 'services'])
    expect(config.ingress.port).toBe(8000)
    const serviceKeys = ['command', 'cwd', 'env', 'simulate', 'address', 'port', 'replicas', 'versions', 'dependsOn', 'health', 'stopGracePeriod', 'restart', 'watch', 'warmUp', 'protocol', 'envFile', 'policy', 'scaling', 'deploy']
    const simulateKeys = ['latency', 'errorRate', 'errorStatus', 'callErrorStatus', 'calls', 'callMode', 'responseSize', 'concurrency', 'coldStart', 'seed']
    for (const route of config.ingress.routes) expect(config.services).toHaveProperty(route.service)
    for (const [svc, spec] of Object.entries<Record<string, any>>(config.services)) {
      for (const key of Object.keys(spec)) expect(serviceKeys, `services.${svc}.${key}`).toContain(key)
      const simulates = spec.versions ? Object.values<any>(spec.versions).map((v) => v.simulate) : [spec.simulate]
      for (const sim of simulates.filter(Boolean)) {
        for (const key of Object.keys(sim)) expect(simulateKeys, `services.${svc}.simulate.${key}`).toContain(key)
        for (const call of sim.calls ?? []) {
          expect(config.services, `${svc} calls ${call.service}`).toHaveProperty(call.service)
          expect(spec.dependsOn, `${svc} calls ${call.service}`).toContain(call.service)
        }
      }
      for (const dep of spec.dependsOn ?? []) expect(config.services).toHaveProperty(dep)
    }
  })
})
