// `mesh up`'s warm-up (control/warm-up.ts) on a real mesh: it goes through every edge, says
// so, leaves nothing in `mesh stat`, traces or access logs, and ends at once when the mesh
// goes down under it. No timing is asserted.
//
//   ingress ─/─────▶ front (command, health /healthz, warmUp /front-page) ──▶ api (simulated) ──▶ leaf (simulated)
//           ─/api──▶ api
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import {connect} from '../../src/sim/control/control-client.js'
import type {MeshStatus} from '../../src/sim/control/status.js'
import {meshPaths} from '../../src/sim/control/state-file.js'
import type {StatRow} from '../../src/sim/telemetry/metrics.js'
import type {TraceSummary} from '../../src/sim/telemetry/trace-store.js'
import {eventually, get, json, mesh, meshOnFreePort, pidAlive} from '../helpers/mesh.js'

const yaml = (port: number) => `
name: warm
telemetry: {accessLog: true}
ingress:
  port: ${port}
  routes:
    - {prefix: /api, service: api}
    - {prefix: /, service: front}
services:
  front:
    command: node fixtures/echo-server.js
    health: {path: /healthz}
    warmUp: {paths: [/front-page]}
    dependsOn: [api]
  api:
    dependsOn: [leaf]
    simulate:
      latency: 2ms
      calls: [{service: leaf, path: /items, probability: 0.5}]
  leaf:
    replicas: 2
    simulate: {latency: 300ms}
`

const EDGES = ['ingress /api → api', 'ingress /healthz → front', 'ingress /front-page → front', 'front-v1-0 → api', 'api-v1-0 → leaf GET /items']

describe('the warm-up of mesh up', () => {
  let dir: string
  let ingress: string
  let up: {exitCode: number; stdout: string; stderr: string}
  let down = false

  beforeAll(async () => {
    ;({dir, ingress} = await meshOnFreePort(yaml))
    up = await mesh(dir, ['up', '-d'], {warmUp: true})
    expect(up.exitCode, up.stderr + up.stdout).toBe(0)
  })

  afterAll(async () => {
    if (!down) await mesh(dir, ['down'])
  })

  async function nothingRecorded() {
    expect(json<StatRow[]>(await mesh(dir, ['stat', '--json', '--window', '5m']))).toEqual([])
    expect(await connect(meshPaths(dir)).stat('edge', 300_000)).toEqual([])
    expect(json<TraceSummary[]>(await mesh(dir, ['traces', '--json']))).toEqual([])
    const access = path.join(dir, '.mesh', 'access')
    const lines = existsSync(access) ? readdirSync(access).flatMap((f) => readFileSync(path.join(access, f), 'utf8').split('\n').filter(Boolean)) : []
    expect(lines).toEqual([])
  }

  test('mesh up -d says it warmed every edge up, and nothing of it is in mesh stat, traces or access logs', async () => {
    expect(up.stderr).toMatch(new RegExp(`Warmed up: \\d+ requests over ${EDGES.length} edges in [\\d.]+ s \\(not counted in mesh stat, traces or metrics\\)`))
    await nothingRecorded()
    // What a user sends afterwards is counted as ever.
    expect((await get(`${ingress}/api`)).status).toBe(200)
    const rows = await eventually(async () => {
      const r = json<StatRow[]>(await mesh(dir, ['stat', '--json', '--window', '5m']))
      return r.length > 0 && r
    })
    expect(rows.find((r) => r.service === 'api')?.requests).toBe(1)
  })

  test('a warm-up goes through each edge at least once, within its request budget', async () => {
    const client = connect(meshPaths(dir))
    // Counts only: a rate over the window moves with the clock.
    const counts = async () => (await client.stat('edge', 300_000)).map((r) => `${r.source} → ${r.destination}: ${r.requests}/${r.actualRequests}`)
    const before = await counts()
    const result = await client.warmUp()
    expect(Object.keys(result.byEdge).sort()).toEqual([...EDGES].sort())
    for (const edge of EDGES) expect(result.byEdge[edge], edge).toBeGreaterThan(0)
    expect(result.requests).toBe(Object.values(result.byEdge).reduce((a, b) => a + b, 0))
    expect(result.requests).toBeLessThanOrEqual(3_000)
    expect(result.failed).toBe(0)
    expect(result.aborted).toBe(false)
    expect(await counts()).toEqual(before)
  })

  test('mesh down during a warm-up ends it at once, and leaves no process', async () => {
    const client = connect(meshPaths(dir))
    const status = json<MeshStatus>(await mesh(dir, ['status', '--json']))
    const pids = [status.daemonPid, ...status.services.flatMap((s) => s.instances.map((i) => i.pid!))]
    const warming = client.warmUp()
    // Under way: leaf's 300 ms latency holds its requests in flight.
    await eventually(async () => (await client.status()).requestsInFlight! > 0)
    await client.down()
    down = true
    const result = await warming
    expect(result.aborted).toBe(true)
    expect(result.requests).toBeGreaterThan(0)
    await eventually(() => pids.every((pid) => !pidAlive(pid)), 30_000, 100, () => `alive: ${pids.filter(pidAlive).join(', ')}`)
  })
})
