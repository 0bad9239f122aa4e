// Real compose files (docker/awesome-compose, test/fixtures/compose/LICENSE.md) imported as
// a user would: each writes a mesh.yaml that `mesh validate` accepts, the same bytes every
// time, with what it could not carry over reported at the compose file's lines.
import {cpSync, existsSync, readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {describe, expect, test} from 'vitest'
import {loadConfigWithWarnings} from '../../src/sim/config/load-config.js'
import {MeshError} from '../../src/sim/errors.js'
import {importCompose} from '../../src/sim/import/import-compose.js'
import {FIXTURES, json, mesh} from '../helpers/mesh.js'
import {tempDir} from './compose-helpers.js'

const FIXTURE_DIR = path.join(FIXTURES, 'compose')

/** A copy of the fixture's directory (import reads nothing else), so writing mesh.yaml there leaves the repo alone. */
function fixture(name: string): string {
  const dir = path.join(tempDir(), name)
  cpSync(path.join(FIXTURE_DIR, name), dir, {recursive: true})
  return dir
}

const expected: Record<string, {services: Record<string, string>; images: Record<string, string>; ingress: string; losses: string[]}> = {
  'react-express-mysql': {
    services: {backend: 'command', db: 'address', frontend: 'address'},
    // backend and frontend are built (build:, no image:): export names and reports their images.
    images: {db: 'mariadb:10.6.4-focal'},
    ingress: 'frontend',
    losses: ['services.backend.secrets', 'services.backend.volumes', 'services.db.volumes', 'services.frontend.networks', 'networks', 'volumes', 'secrets'],
  },
  'nginx-golang-postgres-rabbitmq': {
    services: {backend: 'simulate', db: 'address', mq: 'address', proxy: 'address'},
    images: {db: 'postgres', mq: 'rabbitmq:3.8.3-management', proxy: 'nginx'},
    ingress: 'proxy',
    losses: ['services.db.user', 'services.db.healthcheck', 'services.proxy.ports[0]', 'volumes', 'secrets'],
  },
  'prometheus-grafana': {
    services: {prometheus: 'address', grafana: 'address'},
    images: {prometheus: 'prom/prometheus', grafana: 'grafana/grafana'},
    ingress: 'prometheus',
    losses: ['services.prometheus.container_name', 'services.grafana.volumes', 'volumes'],
  },
}

describe.each(Object.entries(expected))('%s', (name, want) => {
  test('imports to a mesh.yaml that validates, the same bytes each time, refusing to overwrite without --force', async () => {
    const dir = fixture(name)
    const out = path.join(dir, 'mesh.yaml')
    const first = await importCompose({composeFile: path.join(dir, 'compose.yaml'), out, env: {}})
    const written = readFileSync(out, 'utf8')
    expect(written).toBe(first.yaml)

    const {config} = await loadConfigWithWarnings(out, {})
    expect(config.name).toBe(name)
    expect(Object.fromEntries(first.services.map((s) => [s.name, s.as]))).toEqual(want.services)
    // compose's image: as the service's image:, for mesh export to run in a cluster.
    expect(Object.fromEntries(config.services.flatMap((s) => {
      const w = s.versions[0].workload
      return w.kind !== 'simulate' && w.image ? [[s.name, w.image]] : []
    }))).toEqual(want.images)
    expect(config.ingress?.routes).toEqual([{prefix: '/', service: want.ingress}])
    expect(first.losses.map((l) => l.path)).toEqual(expect.arrayContaining(want.losses))
    // Each loss points at a line of the compose file that has its field's key on it.
    const lines = readFileSync(path.join(dir, 'compose.yaml'), 'utf8').split('\n')
    for (const loss of first.losses) {
      const key = loss.path.split('.').at(-1)!.replace(/\[\d+\]$/, '')
      expect(lines[loss.line - 1], `${loss.line}:${loss.column} ${loss.path}`).toMatch(/^\d+$/.test(key) ? /./ : new RegExp(`${key}|^\\s*-`))
    }

    await expect(importCompose({composeFile: path.join(dir, 'compose.yaml'), out, env: {}})).rejects.toSatisfy((e) => e instanceof MeshError && e.code === 'MESH_FILE_EXISTS')
    const again = await importCompose({composeFile: path.join(dir, 'compose.yaml'), out, force: true, env: {}})
    expect(readFileSync(out, 'utf8')).toBe(written)
    expect(again.losses).toEqual(first.losses)
  })

  test('--simulate-images: every image a stand-in, still valid', async () => {
    const dir = fixture(name)
    const result = await importCompose({composeFile: path.join(dir, 'compose.yaml'), out: path.join(dir, 'mesh.yaml'), simulateImages: true, env: {}})
    expect(result.services.filter((s) => s.as === 'address')).toEqual([])
    await loadConfigWithWarnings(path.join(dir, 'mesh.yaml'), {})
  })
})

test('through the CLI: the file written, mesh validate passing it, and --json naming every loss', async () => {
  const dir = fixture('react-express-mysql')
  const run = await mesh(dir, ['import', 'compose', '--json'])
  const result = json<{written: string; services: unknown[]; losses: Array<{path: string; line: number; column: number; kind: string; reason: string}>}>(run)
  expect(result.written).toBe(path.join(dir, 'mesh.yaml'))
  expect(result.losses).toContainEqual({
    file: path.join(dir, 'compose.yaml'),
    line: 21,
    column: 5,
    path: 'services.backend.volumes',
    kind: 'dropped',
    reason: "processes the mesh runs use this machine's files directly; volumes have no counterpart",
  })
  const validate = await mesh(dir, ['validate'])
  expect(validate.exitCode, validate.stderr).toBe(0)

  const again = await mesh(dir, ['import', 'compose'])
  expect(again.exitCode).toBe(2)
  expect(again.stderr).toContain('mesh.yaml already exists; nothing was written. Use --force to overwrite it.')
})

test('through the CLI: --out - prints mesh.yaml, the report on stderr; paths are relative to where mesh.yaml goes', async () => {
  const dir = tempDir()
  writeFileSync(path.join(dir, 'app.env'), 'A=1\n')
  writeFileSync(path.join(dir, 'docker-compose.yml'), 'services:\n  app:\n    image: node:20\n    command: node server.js\n    env_file: app.env\n    volumes: [data:/data]\n')
  const printed = await mesh(dir, ['import', 'compose', '--out', '-'])
  expect(printed.exitCode, printed.stderr).toBe(0)
  expect(printed.stdout).toMatch(/^ {4}envFile: app\.env$/m)
  expect(printed.stderr).toContain('docker-compose.yml:6:5 services.app.volumes: not carried over: ')
  expect(existsSync(path.join(dir, 'mesh.yaml'))).toBe(false)

  const nested = await mesh(dir, ['import', 'compose', '-o', 'mesh/mesh.yaml'])
  expect(nested.exitCode, nested.stderr).toBe(0)
  expect(readFileSync(path.join(dir, 'mesh/mesh.yaml'), 'utf8')).toMatch(/^ {4}envFile: \.\.\/app\.env$/m)
  const validate = await mesh(dir, ['validate', '-f', 'mesh/mesh.yaml'])
  expect(validate.exitCode, validate.stderr).toBe(0)
})
