// The hosted driver with a real simulation host process (from dist/, built by `npm test`):
// many simulated instances in one process, each on its own port, with process semantics
// kept per instance.
import http from 'node:http'
import {existsSync, mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {availableParallelism, tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {HostedDriver, simulationHosts} from '../../src/sim/supervisor/hosted-driver.js'
import {MixedDriver} from '../../src/sim/supervisor/mixed-driver.js'
import {Supervisor} from '../../src/sim/supervisor/supervisor.js'
import {signalGroup} from '../../src/sim/supervisor/process-group.js'
import type {InstanceSpec, ProcessStatus} from '../../src/sim/supervisor/supervisor.js'
import {freePort} from '../../src/sim/control/ports.js'
import {instanceLogFiles} from '../../src/sim/control/log-files.js'
import {meshPaths} from '../../src/sim/control/state-file.js'
import {isRunning} from './processes.js'
import {waitUntil} from './wait-until.js'

const HOST_MAIN = fileURLToPath(new URL('../../dist/sim/model/simulation-host-main.js', import.meta.url))

let dir: string
let drivers: HostedDriver[]
let hostPids: Set<number>

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'meshsim-hosted-'))
  drivers = []
  hostPids = new Set()
})

afterEach(async () => {
  await Promise.all(drivers.map((d) => d.stopAll(0)))
  for (const pid of hostPids) signalGroup(pid, 'SIGKILL')
  rmSync(dir, {recursive: true, force: true})
})

function driver(hosts = 1): HostedDriver {
  const d = new HostedDriver({hosts, logDir: dir, hostMain: HOST_MAIN, backoff: {initialMs: 200}})
  d.on('spawn', (s: ProcessStatus) => hostPids.add(s.pid!))
  drivers.push(d)
  return d
}

async function spec(name: string, simulate: object = {latency: {p50Ms: 1, p99Ms: 2}}): Promise<InstanceSpec & {port: number}> {
  const port = await freePort()
  return {
    instance: name,
    service: name.replace(/-v1-\d+$/, ''),
    version: 'v1',
    command: 'false',
    cwd: dir,
    env: {PORT: String(port), MESH_SERVICE: name, MESH_VERSION: 'v1', MESH_INSTANCE: name, MESH_SIMULATE: JSON.stringify(simulate)},
    logFile: join(dir, `${name}.log`),
    graceMs: 1000,
    simulated: true,
    port,
  }
}

/** GET / on the port: the status and who served it, or the error's code. */
function get(port: number, timeoutMs = 3000, path = '/'): Promise<{status: number; servedBy?: string} | {error: string}> {
  return new Promise((resolve) => {
    const req = http.get({host: '127.0.0.1', port, path, agent: false, timeout: timeoutMs}, (res) => {
      res.resume()
      res.on('end', () => resolve({status: res.statusCode!, servedBy: res.headers['x-mesh-served-by'] as string}))
      res.on('error', (e: NodeJS.ErrnoException) => resolve({error: e.code ?? e.message}))
    })
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), {code: 'TIMEOUT'})))
    req.on('error', (e: NodeJS.ErrnoException) => resolve({error: e.code ?? e.message}))
  })
}

/** Its health endpoint answers (as the mesh's probe asks). */
async function answering(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const r = await get(port, 1000, '/healthz')
    if ('status' in r && r.status === 200) return
    if (performance.now() > deadline) throw new Error(`port ${port} did not answer 200 within ${timeoutMs}ms: ${JSON.stringify(r)}`)
    await new Promise((resolve) => setTimeout(resolve, 30))
  }
}

describe('simulationHosts', () => {
  it('is $MESH_SIMULATION_HOSTS when set (0 included), else simulation.hosts, auto being one per core', () => {
    expect(simulationHosts({hosts: 3}, {})).toBe(3)
    expect(simulationHosts({hosts: 0}, {})).toBe(0)
    expect(simulationHosts({hosts: 'auto'}, {})).toBe(availableParallelism())
    expect(simulationHosts(undefined, {})).toBe(availableParallelism())
    expect(simulationHosts({hosts: 3}, {MESH_SIMULATION_HOSTS: '0'})).toBe(0)
    expect(simulationHosts(undefined, {MESH_SIMULATION_HOSTS: ' 2 '})).toBe(2)
    expect(simulationHosts({hosts: 1}, {MESH_SIMULATION_HOSTS: ''})).toBe(1)
    expect(() => simulationHosts(undefined, {MESH_SIMULATION_HOSTS: 'many'})).toThrow('MESH_SIMULATION_HOSTS must be a number of simulation hosts (0: a process per simulated instance), got "many".')
  })
})

describe.skipIf(!existsSync(HOST_MAIN))('HostedDriver (dist)', () => {
  it('runs 20 instances in one host process, each answering on its own port with its own log', async () => {
    const d = driver()
    const specs = await Promise.all(Array.from({length: 20}, (_, i) => spec(`svc${i}-v1-0`)))
    for (const s of specs) d.start(s)
    await Promise.all(specs.map((s) => answering(s.port)))
    const pids = new Set(specs.map((s) => d.status(s.instance)!.pid))
    expect(pids.size).toBe(1)
    expect(isRunning([...pids][0]!)).toBe(true)
    for (const s of specs) {
      const r = await get(s.port)
      expect(r).toEqual({status: 200, servedBy: s.instance})
      expect(readFileSync(s.logFile, 'utf8')).toMatch(new RegExp(`simulated ${s.instance}@v1 \\(${s.instance}\\) listening on 127\\.0\\.0\\.1:${s.port}`))
    }
    await waitUntil('the host recorded', () => d.records().length === 1)
    expect(d.records()[0]).toMatchObject({instance: '_simulation-host-0', pid: [...pids][0]})
    // Its own log, which `mesh logs` never takes for an instance's (not even a service named "simulation"'s).
    expect(existsSync(join(dir, '_simulation-host-0.log'))).toBe(true)
    const logs = {...meshPaths(dir), logs: dir}
    expect([...instanceLogFiles(logs, ['simulation'], 'simulation').keys()]).toEqual([])
  })

  it('kill resets only that instance: its in-flight request fails, neighbours answer, it exits SIGKILL and is restarted', async () => {
    const d = driver()
    const slow = await spec('slow-v1-0', {latency: {p50Ms: 3000, p99Ms: 3000}})
    const neighbours = await Promise.all([spec('a-v1-0'), spec('b-v1-0')])
    const exits: Array<{instance: string; signal: string | null}> = []
    const restarts: number[] = []
    d.on('exit', (s: ProcessStatus, e: {signal: string | null}) => exits.push({instance: s.instance, signal: e.signal}))
    d.on('restart-scheduled', (_s: ProcessStatus, delayMs: number) => restarts.push(delayMs))
    for (const s of [slow, ...neighbours]) d.start(s)
    await Promise.all([slow, ...neighbours].map((s) => answering(s.port)))
    const before = d.status(slow.instance)!
    const inflight = get(slow.port, 10_000)
    await new Promise((resolve) => setTimeout(resolve, 100))
    await d.signal(slow.instance, 'SIGKILL')
    expect(await inflight).toEqual({error: 'ECONNRESET'})
    await waitUntil('the exit', () => exits.length === 1)
    expect(exits).toEqual([{instance: slow.instance, signal: 'SIGKILL'}])
    expect(restarts).toEqual([200])
    expect(d.status(slow.instance)!.state).toBe('backoff')
    for (const n of neighbours) expect(await get(n.port)).toMatchObject({status: 200})
    await waitUntil('the restart', () => d.status(slow.instance)!.state === 'running' && d.status(slow.instance)!.restarts === 1)
    await answering(slow.port)
    expect(readFileSync(slow.logFile, 'utf8')).toContain('[mesh] restarting in 200ms (restart 1)')
    // The same host process, but a new run: what tells the restart apart.
    const after = d.status(slow.instance)!
    expect(after.pid).toBe(before.pid)
    expect(after.runId).toBeGreaterThan(before.runId!)
    expect(after.startedAtMs).toBeGreaterThan(before.startedAtMs!)
  })

  it('pause freezes only that instance until SIGCONT', async () => {
    const d = driver()
    const [paused, neighbour] = await Promise.all([spec('p-v1-0'), spec('n-v1-0')])
    d.start(paused)
    d.start(neighbour)
    await Promise.all([answering(paused.port), answering(neighbour.port)])
    await d.signal(paused.instance, 'SIGSTOP')
    const held = get(paused.port, 5000)
    let settled = false
    void held.then(() => (settled = true))
    // Its neighbour in the same process answers meanwhile.
    expect(await get(neighbour.port)).toMatchObject({status: 200})
    await new Promise((resolve) => setTimeout(resolve, 400))
    expect(settled).toBe(false)
    await d.signal(paused.instance, 'SIGCONT')
    expect(await held).toEqual({status: 200, servedBy: paused.instance})
    expect(d.status(paused.instance)!.restarts).toBe(0)
  })

  it('callers that abort, while it works or while it is paused, leave it and its neighbours serving', async () => {
    const d = driver()
    const [slow, neighbour] = await Promise.all([spec('ab-v1-0', {latency: {p50Ms: 200, p99Ms: 200}, concurrency: 1}), spec('nb-v1-0')])
    d.start(slow)
    d.start(neighbour)
    await Promise.all([answering(slow.port), answering(neighbour.port)])
    // Aborted mid-work, and aborted while queued behind it (concurrency 1).
    expect(await Promise.all([get(slow.port, 50), get(slow.port, 50)])).toEqual([{error: 'TIMEOUT'}, {error: 'TIMEOUT'}])
    await d.signal(slow.instance, 'SIGSTOP')
    expect(await get(slow.port, 100)).toEqual({error: 'TIMEOUT'})
    await d.signal(slow.instance, 'SIGCONT')
    // Its capacity slot was given back on every path: a new request is served in its own latency.
    const started = performance.now()
    expect(await get(slow.port)).toEqual({status: 200, servedBy: slow.instance})
    expect(performance.now() - started).toBeLessThan(1000)
    expect(await get(neighbour.port)).toEqual({status: 200, servedBy: neighbour.instance})
    expect(d.status(slow.instance)).toMatchObject({state: 'running', restarts: 0})
  })

  it('a host process dying is every hosted instance crashing; they come back in a new host', async () => {
    const d = driver()
    const specs = await Promise.all(Array.from({length: 5}, (_, i) => spec(`h${i}-v1-0`)))
    const exits: string[] = []
    d.on('exit', (s: ProcessStatus) => exits.push(s.instance))
    for (const s of specs) d.start(s)
    await Promise.all(specs.map((s) => answering(s.port)))
    const pid = d.status(specs[0]!.instance)!.pid!
    signalGroup(pid, 'SIGKILL')
    await waitUntil('every instance exits', () => exits.length === 5)
    expect(exits.sort()).toEqual(specs.map((s) => s.instance).sort())
    await waitUntil('restarted', () => specs.every((s) => d.status(s.instance)!.state === 'running'), 5000)
    await Promise.all(specs.map((s) => answering(s.port)))
    const newPid = d.status(specs[0]!.instance)!.pid!
    expect(newPid).not.toBe(pid)
    expect(isRunning(pid)).toBe(false)
  })

  it('places replicas of one service in different hosts, even where another is less loaded', async () => {
    const d = driver(2)
    const others = await Promise.all(Array.from({length: 4}, (_, i) => spec(`o${i}-v1-0`)))
    for (const s of others) d.start(s)
    await Promise.all(others.map((s) => answering(s.port)))
    const [h0, h1] = [d.status(others[0]!.instance)!.pid!, d.status(others[1]!.instance)!.pid!]
    expect(h0).not.toBe(h1)
    // Leave host 1 empty and host 0 with two: load alone would put both replicas in host 1.
    for (const s of others) if (d.status(s.instance)!.pid === h1) await d.stop(s.instance)
    const replicas = await Promise.all([spec('api-v1-0'), spec('api-v1-1')])
    for (const s of replicas) d.start(s)
    await Promise.all(replicas.map((s) => answering(s.port)))
    expect(replicas.map((s) => d.status(s.instance)!.pid)).toEqual([h1, h0])
    // A third replica: every host holds one, so the least loaded takes it (host 1: one, host 0: three).
    const third = await spec('api-v1-2')
    d.start(third)
    expect(d.status(third.instance)!.pid).toBe(h1)
  })

  it('stop finishes in-flight requests; stopAll leaves no host process', async () => {
    const d = driver(2)
    const [a, b] = await Promise.all([spec('x-v1-0', {latency: {p50Ms: 300, p99Ms: 300}}), spec('y-v1-0')])
    d.start(a)
    d.start(b)
    await Promise.all([answering(a.port), answering(b.port)])
    const pids = [d.status(a.instance)!.pid!, d.status(b.instance)!.pid!]
    expect(new Set(pids).size).toBe(2)
    const inflight = get(a.port)
    await new Promise((resolve) => setTimeout(resolve, 50))
    await d.stop(a.instance)
    expect(await inflight).toMatchObject({status: 200})
    expect(d.status(a.instance)!.state).toBe('stopped')
    expect(await get(a.port, 500)).toEqual({error: 'ECONNREFUSED'})
    await d.stopAll(0)
    await waitUntil('the hosts are gone', () => pids.every((pid) => !isRunning(pid)))
  })

  it('MixedDriver: a simulated spec runs in a host, a command in its own process; signals, records and stopAll reach the right one', async () => {
    const hosted = driver()
    const processes = new Supervisor({backoff: {initialMs: 200}})
    const mixed = new MixedDriver(processes, hosted)
    const exits: string[] = []
    mixed.on('exit', (s: ProcessStatus) => exits.push(s.instance))
    const sim = await spec('m-v1-0')
    const cmd = {...(await spec('c-v1-0')), simulated: undefined, command: `${process.execPath} -e "setInterval(() => {}, 1000)"`}
    mixed.start(sim)
    mixed.start(cmd)
    hostPids.add(mixed.status(cmd.instance)!.pgid!)
    await answering(sim.port)
    const hostPid = mixed.status(sim.instance)!.pid!
    const cmdPid = mixed.status(cmd.instance)!.pid!
    expect(hostPid).not.toBe(cmdPid)
    await waitUntil('both recorded', () => mixed.records().length === 2)
    expect(mixed.records().map((r) => r.instance).sort()).toEqual(['_simulation-host-0', 'c-v1-0'])
    await mixed.signal(sim.instance, 'SIGKILL')
    await waitUntil('the hosted exit', () => exits.includes(sim.instance))
    expect(exits).toEqual([sim.instance])
    expect(isRunning(cmdPid)).toBe(true)
    await mixed.stopAll(0)
    expect([mixed.status(sim.instance)!.state, mixed.status(cmd.instance)!.state]).toEqual(['stopped', 'stopped'])
    await waitUntil('nothing left', () => !isRunning(hostPid) && !isRunning(cmdPid))
  })
})
