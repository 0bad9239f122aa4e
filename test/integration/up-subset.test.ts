// `mesh up SERVICE...`, as `docker compose up SERVICE`: only those and what they depend on
// start; the rest stay declared until `mesh up` names them, on the running mesh too.
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import type {MeshStatus} from '../../src/sim/control/status.js'
import {downMesh, freePort, get, json, mesh, meshDir} from '../helpers/mesh.js'

describe('mesh up SERVICE...', () => {
  let dir: string
  let ingress: string

  beforeAll(async () => {
    const port = await freePort()
    ingress = `http://127.0.0.1:${port}`
    dir = meshDir(`
name: subset
ingress: {port: ${port}, routes: [{prefix: /batch, service: batch}, {prefix: /, service: web}]}
services:
  web: {dependsOn: [api], simulate: {latency: 1ms, calls: [{service: api}]}}
  api: {simulate: {latency: 1ms, calls: [{service: db}]}}
  db: {simulate: {latency: 1ms}}
  batch: {simulate: {latency: 1ms}}
  worker: {dependsOn: [db], simulate: {latency: 1ms}}
`)
  })

  afterAll(() => downMesh(dir))

  const started = async () => {
    const status = json<MeshStatus>(await mesh(dir, ['status', '--json']))
    return Object.fromEntries(status.services.map((s) => [s.name, s.notStarted ? 'not started' : s.instances.map((i) => i.health).join(',')]))
  }

  test('starts the named service and everything it calls; the others answer 503 UH', async () => {
    const up = await mesh(dir, ['up', '-d', 'web'])
    expect(up.exitCode, up.stderr + up.stdout).toBe(0)
    expect(await started()).toEqual({web: 'healthy', api: 'healthy', db: 'healthy', batch: 'not started', worker: 'not started'})
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
    expect(await started()).toMatchObject({batch: 'not started', worker: 'not started'})
  })

  test('on a running mesh, mesh up SERVICE starts it (and what it needs), mesh up the rest; a name not in mesh.yaml is an error', async () => {
    const more = await mesh(dir, ['up', '-d', 'worker'])
    expect(more.exitCode, more.stderr + more.stdout).toBe(0)
    expect(await started()).toMatchObject({worker: 'healthy', batch: 'not started'})
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
})
