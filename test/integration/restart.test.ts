// `mesh restart` with no service (every service the mesh runs a process for) and with a
// name that does not exist, on a mesh of its own: x calls y on every request, so a restart
// of either under load would show as failed requests if a request were dropped.
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import type {MeshStatus} from '../../src/sim/control/status.js'
import type {DeployRecord} from '../../src/sim/deploy/deploy-types.js'
import {mesh, sendUntilStopped, upMesh} from '../helpers/mesh.js'

let dir: string
let port: number

beforeAll(async () => {
  ;({dir, port} = await upMesh(
    (p) => `
name: restarts
ingress: {port: ${p}, routes: [{prefix: /, service: x}]}
services:
  x: {dependsOn: [y], simulate: {latency: 1ms, calls: [{service: y}]}}
  y: {replicas: 2, simulate: {latency: 1ms}}
`,
  ))
})

afterAll(async () => {
  if (dir) await mesh(dir, ['down'])
})

const instances = async () => (JSON.parse((await mesh(dir, ['status', '--json'])).stdout) as MeshStatus).services.flatMap((s) => s.instances.map((i) => i.instance))

describe('mesh restart', () => {
  test('a name that is not in the mesh fails before anything restarts', async () => {
    const r = await mesh(dir, ['restart', 'x', 'nope'])
    expect(r.exitCode).toBe(2)
    expect(r.stderr).toContain('service "nope" is not in the mesh')
    expect(await instances()).toEqual(['x-v1-0', 'y-v1-0', 'y-v1-1'])
  })

  test('with no service it restarts every one, one after another, under load with no failed request', async () => {
    const load = sendUntilStopped(`http://127.0.0.1:${port}/`)
    const r = await mesh(dir, ['restart', '--json'], {timeoutMs: 60_000})
    const sent = await load.stop()

    expect(r.exitCode, r.stderr).toBe(0)
    const records = JSON.parse(r.stdout) as DeployRecord[]
    expect(records.map((d) => [d.plan.service, d.plan.strategy, d.outcome])).toEqual([
      ['x', 'restart', 'restarted'],
      ['y', 'restart', 'restarted'],
    ])
    expect(sent.filter((s) => s.status !== 200)).toEqual([])
    expect(sent.length).toBeGreaterThan(100)
    expect(await instances()).toEqual(['x-v1-1', 'y-v1-2', 'y-v1-3'])
  })
})
