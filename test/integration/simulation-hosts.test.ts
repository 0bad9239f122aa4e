// Simulated services in shared simulation hosts, the default (`simulation: {hosts: 2}` here,
// so the test does not depend on the machine's cores): a chain of 50 runs in two host
// processes, healthy and traced hop by hop as separate processes are; a service's replicas
// are in different hosts; a kill or pause reaches one instance only; a host SIGKILLed is
// every instance it ran crashing, and they come back; nothing is left after `mesh down`, nor
// after the daemon is SIGKILLed and `mesh down` runs. Bounded: ~60 requests.
import {readFileSync} from 'node:fs'
import path from 'node:path'
import {request} from 'undici'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import {ControlClient} from '../../src/sim/control/control-client.js'
import type {InstanceEvent} from '../../src/sim/control/instance-manager.js'
import {type MeshState, meshPaths, readToken} from '../../src/sim/control/state-file.js'
import type {InstanceStatus, MeshStatus} from '../../src/sim/control/status.js'
import type {TraceSummary} from '../../src/sim/telemetry/trace-store.js'
import {accepts, eventually, get, json, mesh, meshOnFreePort, pidAlive} from '../helpers/mesh.js'

const N = 50
let dir: string
let ingress: string

const chain = Array.from({length: N}, (_, i) => `s${i}`)
const yaml = (port: number) => `
name: hosted
simulation: {hosts: 2}
ingress:
  port: ${port}
  routes: [{prefix: /r, service: r}, {prefix: /, service: s0}]
services:
${chain.map((s, i) => `  ${s}: {simulate: {latency: 1ms${i + 1 < N ? `, calls: [{service: s${i + 1}}]` : ''}, seed: ${i}}}`).join('\n')}
  r:
    replicas: 2
    simulate: {latency: 1ms}
    # A call that meets the crashed replica before the mesh knows goes to the other.
    policy: {retries: {attempts: 2, on: [reset, connect-failure]}}
`

const status = async () => json<MeshStatus>(await mesh(dir, ['status', '--json']))
const instances = (s: MeshStatus) => s.services.flatMap((x) => x.instances)
const named = (all: InstanceStatus[], name: string) => all.find((i) => i.instance === name)!
const readState = () => JSON.parse(readFileSync(path.join(dir, '.mesh/state.json'), 'utf8')) as MeshState
const hostsOf = (state: MeshState) => state.children.filter((c) => c.instance.startsWith('_simulation-host-'))
/** The host pids state.json records, once both are (a host's start time is read after it starts). */
const recordedHosts = () =>
  eventually(() => {
    const pids = hostsOf(readState()).map((h) => h.pid)
    return pids.length === 2 && pids.sort()
  })
const up = async () => {
  const r = await mesh(dir, ['up', '-d'])
  expect(r.exitCode, r.stderr + r.stdout).toBe(0)
}

beforeAll(async () => {
  ;({dir, ingress} = await meshOnFreePort(yaml))
  await up()
})

afterAll(async () => {
  await mesh(dir, ['down'])
})

describe('simulation hosts (the default for simulate:)', () => {
  test('50 simulated services come up healthy in two host processes, recorded for `mesh down`; each instance has a run id of its own', async () => {
    const s = await status()
    const all = instances(s)
    expect(all).toHaveLength(N + 2)
    expect(all.filter((i) => i.health !== 'healthy').map((i) => [i.instance, i.health])).toEqual([])
    const pids = new Set(all.map((i) => i.pid))
    expect(pids.size).toBe(2)
    expect(pids.has(s.daemonPid)).toBe(false)
    expect(new Set(all.map((i) => i.runId)).size).toBe(all.length)
    expect(await recordedHosts()).toEqual([...pids].sort())
  })

  test('a request through the 50-deep chain is traced hop by hop', async () => {
    const res = await get(`${ingress}/`)
    expect(res.status, res.text).toBe(200)
    const traces = json<TraceSummary[]>(await mesh(dir, ['traces', '--json']))
    expect(traces).toHaveLength(1)
    // The ingress, then per service its inbound span and (but the last) its outbound call.
    expect(traces[0]).toMatchObject({spanCount: 1 + N + (N - 1), status: 200, error: false})
    expect(new Set(traces[0]!.services)).toEqual(new Set(['ingress', ...chain]))
  })

  test('--kill reaches one hosted instance: it is restarted (a new run), its neighbours in the host are not', async () => {
    const before = instances(await status())
    const r = await mesh(dir, ['inject-fault', 's10', '--kill'])
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    const after = await eventually(async () => {
      const all = instances(await status())
      const s10 = named(all, 's10-v1-0')
      return s10.restarts === 1 && s10.health === 'healthy' && all
    })
    const s10 = named(after, 's10-v1-0')
    expect(s10.lastExit).toMatchObject({signal: 'SIGKILL'})
    expect(s10.runId).not.toBe(named(before, 's10-v1-0').runId)
    for (const i of after.filter((x) => x.instance !== 's10-v1-0')) {
      const was = named(before, i.instance)
      expect([i.instance, i.restarts, i.pid, i.runId]).toEqual([i.instance, 0, was.pid, was.runId])
    }
    expect((await get(`${ingress}/`)).status).toBe(200)
  })

  test('--pause freezes only that hosted instance, then it answers again', async () => {
    const all = instances(await status())
    const [paused, neighbour] = [named(all, `s${N - 1}-v1-0`), all.find((i) => i.pid === named(all, `s${N - 1}-v1-0`).pid && i.service !== `s${N - 1}` && i.service !== 'r')!]
    const r = await mesh(dir, ['inject-fault', `s${N - 1}`, '--pause', '2s'])
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    const held = request(`http://${paused.address}/healthz`, {headersTimeout: 10_000}).then((res) => (res.body.resume(), {status: res.statusCode, at: performance.now()}))
    const pausedAt = performance.now()
    // Its neighbour in the same host process answers at once (its health endpoint: every other path calls down the chain to the paused one).
    const direct = await request(`http://${neighbour.address}/healthz`, {headersTimeout: 1_000})
    await direct.body.text()
    expect(direct.statusCode).toBe(200)
    const answered = await held
    expect(answered.status).toBe(200)
    expect(answered.at - pausedAt).toBeGreaterThan(1000)
  })

  test('a host SIGKILLed is every instance it ran crashing: each shows the exit, comes back in a new host; the other replica of r kept serving', async () => {
    const before = instances(await status())
    const [r0, r1] = [named(before, 'r-v1-0'), named(before, 'r-v1-1')]
    // Replicas in different hosts: the crash of one leaves the other.
    expect(r0.pid).not.toBe(r1.pid)
    const victim = r0.pid!
    const crashed = before.filter((i) => i.pid === victim)
    expect(crashed.length).toBeGreaterThan(N / 4)
    process.kill(victim, 'SIGKILL')
    const served = await Promise.all(Array.from({length: 10}, () => get(`${ingress}/r`)))
    expect(served.map((x) => x.status)).toEqual(Array(10).fill(200))
    const after = await eventually(async () => {
      const all = instances(await status())
      return crashed.every((c) => {
        const i = named(all, c.instance)
        return i.health === 'healthy' && i.restarts === c.restarts + 1
      }) && all
    }, 30_000, 250)
    expect(pidAlive(victim)).toBe(false)
    for (const c of crashed) {
      const i = named(after, c.instance)
      expect([i.instance, i.lastExit?.signal, i.pid === victim, i.runId === c.runId]).toEqual([c.instance, 'SIGKILL', false, false])
    }
    // The others never noticed.
    for (const i of before.filter((x) => x.pid !== victim)) expect([i.instance, named(after, i.instance).runId]).toEqual([i.instance, i.runId])
    const paths = meshPaths(dir)
    const events = (await new ControlClient(readState(), readToken(paths)!).events()).map((e) => e.event as InstanceEvent)
    const exited = new Set(events.flatMap((e) => (e.kind === 'instance-exited' && e.signal === 'SIGKILL' ? [e.instance] : [])))
    for (const c of crashed) expect(exited.has(c.instance), c.instance).toBe(true)
    expect(await recordedHosts()).not.toContain(victim)
    expect((await get(`${ingress}/`)).status).toBe(200)
  }, 60_000)

  test('mesh down leaves no host process nor instance port', async () => {
    const hosts = await recordedHosts()
    const addresses = instances(await status()).map((i) => i.address)
    const down = await mesh(dir, ['down'])
    expect(down.exitCode, down.stdout + down.stderr).toBe(0)
    await eventually(() => hosts.every((pid) => !pidAlive(pid)), 5000)
    for (const address of addresses.slice(0, 5)) expect(await accepts(address)).toBe(false)
  })

  test('after the daemon is SIGKILLed, `mesh down` leaves no host process', async () => {
    await up()
    const hosts = await recordedHosts()
    const state = readState()
    process.kill(state.daemon.pid, 'SIGKILL')
    await eventually(() => !pidAlive(state.daemon.pid))
    const down = await mesh(dir, ['down'])
    expect(down.exitCode, down.stdout + down.stderr).toBe(0)
    await eventually(() => hosts.every((pid) => !pidAlive(pid)), 5000)
  }, 60_000)
})
