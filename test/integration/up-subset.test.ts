// `mesh up SERVICE...`, as `docker compose up SERVICE`: only those and what they depend on
// start; the rest stay declared until `mesh up` names them, on the running mesh too. And
// compose's other ways to leave a service declared: `mesh stop SERVICE` and `profiles:`.
import {readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import type {MeshStatus} from '../../src/sim/control/status.js'
import {accepts, downMesh, get, json, mesh, meshOnFreePort} from '../helpers/mesh.js'

/** Each service's instances' health, or why it is not started. */
async function startedIn(dir: string): Promise<Record<string, string>> {
  // `ps`: compose's name for `mesh status`.
  const status = json<MeshStatus>(await mesh(dir, ['ps', '--json']))
  return Object.fromEntries(status.services.map((s) => [s.name, s.notStarted ?? s.instances.map((i) => i.health).join(',')]))
}

const OTHERS = 'mesh up named other services'

describe('mesh up SERVICE...', () => {
  let dir: string
  let ingress: string

  beforeAll(async () => {
    ;({dir, ingress} = await meshOnFreePort(
      (port) => `
name: subset
ingress: {port: ${port}, routes: [{prefix: /batch, service: batch}, {prefix: /, service: web}]}
services:
  web: {dependsOn: [api], simulate: {latency: 1ms, calls: [{service: api}]}}
  api: {simulate: {latency: 1ms, calls: [{service: db}]}}
  db: {simulate: {latency: 1ms}}
  batch: {simulate: {latency: 1ms}}
  worker: {dependsOn: [db], simulate: {latency: 1ms}}
`,
    ))
  })

  afterAll(() => downMesh(dir))

  const started = () => startedIn(dir)

  test('starts the named service and everything it calls; the others answer 503 UH', async () => {
    const up = await mesh(dir, ['up', '-d', 'web'])
    expect(up.exitCode, up.stderr + up.stdout).toBe(0)
    expect(await started()).toEqual({web: 'healthy', api: 'healthy', db: 'healthy', batch: OTHERS, worker: OTHERS})
    expect((await get(`${ingress}/`)).status).toBe(200)
    const batch = await get(`${ingress}/batch`)
    expect(batch.status).toBe(503)
    expect(batch.headers['x-mesh-response-flags']).toBe('UH')
    expect(batch.text).toBe('no healthy upstream: service "batch" is not started (mesh up named other services; `mesh up batch` starts it)\n')
    expect((await mesh(dir, ['status'])).stdout).toContain('batch: not started (mesh up named other services); `mesh up batch` starts it')
  })

  test('mesh apply and mesh restart leave a service mesh up did not name alone', async () => {
    expect((await mesh(dir, ['apply'])).stdout).toContain('No changes: the mesh runs as mesh.yaml says.')
    const restart = await mesh(dir, ['restart'])
    expect(restart.exitCode, restart.stderr).toBe(0)
    expect(await started()).toMatchObject({batch: OTHERS, worker: OTHERS})
  })

  test('on a running mesh, mesh up SERVICE starts it (and what it needs), mesh up the rest; a name not in mesh.yaml is an error', async () => {
    const more = await mesh(dir, ['up', '-d', 'worker'])
    expect(more.exitCode, more.stderr + more.stdout).toBe(0)
    expect(await started()).toMatchObject({worker: 'healthy', batch: OTHERS})
    // Without names, the rest; then nothing is left to start, and a second mesh is refused as before.
    const rest = await mesh(dir, ['up', '-d'])
    expect(rest.exitCode, rest.stderr + rest.stdout).toBe(0)
    expect(await started()).toEqual({web: 'healthy', api: 'healthy', db: 'healthy', batch: 'healthy', worker: 'healthy'})
    const again = await mesh(dir, ['up', '-d'])
    expect(again.exitCode).not.toBe(0)
    expect(again.stderr).toContain('is already running')
    expect((await get(`${ingress}/batch`)).status).toBe(200)
    const wrong = await mesh(dir, ['up', '-d', 'wrker'])
    expect(wrong.exitCode).toBe(2)
    expect(wrong.stderr).toContain('service "wrker" is not in the mesh; did you mean "worker"?')
  })

  test('mesh stop SERVICE drains and stops its processes, callers get 503 UH saying so, mesh start starts it again; mesh stop alone stops every service, mesh up -d starts them', async () => {
    const status = json<MeshStatus>(await mesh(dir, ['status', '--json']))
    const addresses = status.services.find((s) => s.name === 'batch')!.instances.map((i) => i.address)
    expect(addresses.length).toBeGreaterThan(0)
    const stop = await mesh(dir, ['stop', 'batch', '--json'])
    expect(stop.exitCode, stop.stderr).toBe(0)
    expect(json<MeshStatus>(stop).services.find((s) => s.name === 'batch')).toMatchObject({notStarted: 'stopped by mesh stop', instances: []})
    // Gone, whether a process of its own or an object in a simulation host (whose pid lives on).
    for (const address of addresses) expect(await accepts(address)).toBe(false)
    const batch = await get(`${ingress}/batch`)
    expect([batch.status, batch.text]).toEqual([503, 'no healthy upstream: service "batch" is not started (stopped by mesh stop; `mesh start batch` starts it)\n'])
    expect((await mesh(dir, ['status'])).stdout).toContain('batch: not started (stopped by mesh stop); `mesh start batch` starts it')
    expect((await get(`${ingress}/`)).status).toBe(200)
    // A deploy has no instances to replace: refused, rather than starting only its new version.
    const restart = await mesh(dir, ['restart', 'batch'])
    expect([restart.exitCode, restart.stderr.includes('"batch" is not started (stopped by mesh stop), so there is nothing to deploy over.')]).toEqual([2, true])
    // compose's start: every stopped service again (here the one); then there is nothing to start.
    expect((await mesh(dir, ['start'])).exitCode).toBe(0)
    expect((await get(`${ingress}/batch`)).status).toBe(200)
    expect((await mesh(dir, ['start'])).stdout).toContain('Nothing to start: no service is stopped.')

    expect((await mesh(dir, ['stop'])).exitCode).toBe(0)
    expect(new Set(Object.values(await started()))).toEqual(new Set(['stopped by mesh stop']))
    expect((await get(`${ingress}/`)).status).toBe(503)
    expect((await mesh(dir, ['up', '-d'])).exitCode).toBe(0)
    expect(await started()).toEqual({web: 'healthy', api: 'healthy', db: 'healthy', batch: 'healthy', worker: 'healthy'})
    const wrong = await mesh(dir, ['stop', 'wrker'])
    expect([wrong.exitCode, wrong.stderr.includes('did you mean "worker"?')]).toEqual([2, true])
  })
})

// compose's profiles: a service with `profiles:` starts only when one is enabled (or it is named).
describe('profiles', () => {
  let dir: string
  let ingress: string

  beforeAll(async () => {
    ;({dir, ingress} = await meshOnFreePort(
      (port) => `
name: profiles
ingress: {port: ${port}, routes: [{prefix: /tools, service: tools}, {prefix: /, service: web}]}
services:
  web: {simulate: {latency: 1ms}}
  db: {profiles: [dev], simulate: {latency: 1ms}}
  tools: {profiles: [debug], dependsOn: [db], simulate: {latency: 1ms, calls: [{service: db}]}}
  app: {dependsOn: {db: {condition: service_healthy, required: false}}, simulate: {latency: 1ms}}
`,
    ))
  })

  afterAll(() => downMesh(dir))

  const started = () => startedIn(dir)

  test('mesh config --services and --profiles list the names, as compose config does', async () => {
    expect((await mesh(dir, ['config', '--services'])).stdout).toBe('web\ndb\ntools\napp')
    expect((await mesh(dir, ['config', '--profiles'])).stdout).toBe('debug\ndev')
    expect(json<string[]>(await mesh(dir, ['config', '--profiles', '--json']))).toEqual(['debug', 'dev'])
  })

  test('mesh up starts the services without profiles, and one whose dependency in a profile is optional (required: false) without it; a profiled one answers 503 UH saying its profile is off', async () => {
    const up = await mesh(dir, ['up', '-d'])
    expect(up.exitCode, up.stderr + up.stdout).toBe(0)
    expect(await started()).toEqual({web: 'healthy', db: 'its profile dev is not enabled', tools: 'its profile debug is not enabled', app: 'healthy'})
    const tools = await get(`${ingress}/tools`)
    expect([tools.status, tools.headers['x-mesh-response-flags']]).toEqual([503, 'UH'])
    expect(tools.text).toBe('no healthy upstream: service "tools" is not started (its profile debug is not enabled; `mesh up tools` starts it)\n')
    expect((await mesh(dir, ['status'])).stdout).toContain('tools: not started (its profile debug is not enabled); `mesh up tools` or `mesh up -d --profile debug` starts it')
  })

  test('a profile whose service needs another profile is refused, as compose does; MESH_PROFILES enables both on the running mesh', async () => {
    const refused = await mesh(dir, ['up', '-d', '--profile', 'debug'])
    expect(refused.exitCode).toBe(2)
    expect(refused.stderr).toContain('service "tools" depends on "db", whose profile dev is not enabled.')
    expect(refused.stderr).toContain('Enable it with --profile dev')
    // The daemon decides the same for `mesh start`, which asks it directly.
    const start = await mesh(dir, ['start', 'tools'])
    expect([start.exitCode, start.stderr.includes('service "tools" depends on "db", whose profile dev is not enabled.')]).toEqual([2, true])
    expect(await started()).toMatchObject({db: 'its profile dev is not enabled'})
    const both = await mesh(dir, ['up', '-d'], {env: {MESH_PROFILES: 'debug,dev'}})
    expect(both.exitCode, both.stderr + both.stdout).toBe(0)
    expect(await started()).toEqual({web: 'healthy', db: 'healthy', tools: 'healthy', app: 'healthy'})
    expect((await get(`${ingress}/tools`)).status).toBe(200)
  })

  test('mesh apply adds a service in a profile no mesh up enabled declared only, and starts one in a profile enabled since', async () => {
    const file = path.join(dir, 'mesh.yaml')
    writeFileSync(file, readFileSync(file, 'utf8') + '  qa-bot: {profiles: [qa], simulate: {latency: 1ms}}\n  seed: {profiles: [dev], simulate: {latency: 1ms}}\n')
    const message = 'service qa-bot added, not started: its profile qa is not enabled (`mesh up qa-bot` starts it)'
    expect((await mesh(dir, ['apply', '--dry-run'])).stdout).toContain(message)
    const apply = await mesh(dir, ['apply'])
    expect(apply.exitCode, apply.stderr).toBe(0)
    expect(apply.stdout).toContain(message)
    expect(await started()).toMatchObject({'qa-bot': 'its profile qa is not enabled', seed: 'healthy', tools: 'healthy'})
  })
})
