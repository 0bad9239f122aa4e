// Simulated services in a shared simulation host (MESH_SIMULATION_HOSTS=1, opt-in for now):
// a chain of 20 runs in one host process, healthy and traced hop by hop as separate
// processes are; a kill reaches one instance only; nothing is left after the daemon is
// SIGKILLed and `mesh down` runs.
import {readFileSync} from 'node:fs'
import path from 'node:path'
import {request} from 'undici'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import type {MeshState} from '../../src/sim/control/state-file.js'
import type {MeshStatus} from '../../src/sim/control/status.js'
import type {TraceSummary} from '../../src/sim/telemetry/trace-store.js'
import {eventually, get, json, mesh, meshOnFreePort, pidAlive} from '../helpers/mesh.js'

const N = 20
const env = {MESH_SIMULATION_HOSTS: '1'}
let dir: string
let ingress: string

const services = Array.from({length: N}, (_, i) => `s${i}`)
const yaml = (port: number) => `
name: hosted
ingress:
  port: ${port}
  routes: [{prefix: /, service: s0}]
services:
${services.map((s, i) => `  ${s}: {simulate: {latency: 1ms${i + 1 < N ? `, calls: [{service: s${i + 1}}]` : ''}, seed: ${i}}}`).join('\n')}
`

const status = async () => json<MeshStatus>(await mesh(dir, ['status', '--json']))
const instances = (s: MeshStatus) => s.services.flatMap((x) => x.instances)
const readState = () => JSON.parse(readFileSync(path.join(dir, '.mesh/state.json'), 'utf8')) as MeshState

beforeAll(async () => {
  ;({dir, ingress} = await meshOnFreePort(yaml))
  const up = await mesh(dir, ['up', '-d'], {env})
  expect(up.exitCode, up.stderr + up.stdout).toBe(0)
})

afterAll(async () => {
  await mesh(dir, ['down'])
})

describe('simulation hosts', () => {
  test('20 simulated services come up healthy in one host process, the host recorded for `mesh down`', async () => {
    const all = instances(await status())
    expect(all).toHaveLength(N)
    expect(all.every((i) => i.health === 'healthy'), JSON.stringify(all.map((i) => [i.instance, i.health]))).toBe(true)
    const pids = new Set(all.map((i) => i.pid))
    expect(pids.size).toBe(1)
    const hostPid = [...pids][0]!
    expect(hostPid).not.toBe((await status()).daemonPid)
    expect(readState().children.map((c) => [c.instance, c.pid])).toEqual([['_simulation-host-0', hostPid]])
  })

  test('a request through the chain is traced hop by hop', async () => {
    const res = await get(`${ingress}/`)
    expect(res.status, res.text).toBe(200)
    const traces = json<TraceSummary[]>(await mesh(dir, ['traces', '--json']))
    expect(traces).toHaveLength(1)
    // The ingress, then per service its inbound span and (but the last) its outbound call.
    expect(traces[0]).toMatchObject({spanCount: 1 + N + (N - 1), status: 200, error: false})
    expect(new Set(traces[0]!.services)).toEqual(new Set(['ingress', ...services]))
  })

  test('--kill reaches one hosted instance: it is restarted, its neighbours in the host are not', async () => {
    const before = instances(await status())
    const r = await mesh(dir, ['inject-fault', 's10', '--kill'])
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    const after = await eventually(async () => {
      const all = instances(await status())
      const s10 = all.find((i) => i.instance === 's10-v1-0')!
      return s10.restarts === 1 && s10.health === 'healthy' && all
    })
    expect(after.find((i) => i.instance === 's10-v1-0')!.lastExit).toMatchObject({signal: 'SIGKILL'})
    for (const i of after.filter((x) => x.instance !== 's10-v1-0')) expect([i.instance, i.restarts, i.pid]).toEqual([i.instance, 0, before[0]!.pid])
    expect((await get(`${ingress}/`)).status).toBe(200)
  })

  test('--pause freezes only that hosted instance, then it answers again', async () => {
    const addressOf = async (name: string) => instances(await status()).find((i) => i.instance === name)!.address
    const [paused, neighbour] = await Promise.all([addressOf('s19-v1-0'), addressOf('s5-v1-0')])
    const r = await mesh(dir, ['inject-fault', 's19', '--pause', '2s'])
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    const held = request(`http://${paused}/healthz`, {headersTimeout: 10_000}).then((res) => (res.body.resume(), {status: res.statusCode, at: performance.now()}))
    const pausedAt = performance.now()
    // Its neighbour in the same host process answers at once (its health endpoint: every other path calls down the chain to s19).
    const direct = await request(`http://${neighbour}/healthz`, {headersTimeout: 1_000})
    await direct.body.text()
    expect(direct.statusCode).toBe(200)
    const answered = await held
    expect(answered.status).toBe(200)
    expect(answered.at - pausedAt).toBeGreaterThan(1000)
  })

  test('after the daemon is SIGKILLed, `mesh down` leaves no host process', async () => {
    const state = readState()
    const hostPid = state.children[0]!.pid
    process.kill(state.daemon.pid, 'SIGKILL')
    await eventually(() => !pidAlive(state.daemon.pid))
    const down = await mesh(dir, ['down'])
    expect(down.exitCode, down.stdout + down.stderr).toBe(0)
    await eventually(() => !pidAlive(hostPid), 5000)
  })
})
