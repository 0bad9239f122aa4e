// InstanceManager on its own: no CLI, no daemon, no child processes. A fake WorkloadDriver
// "runs" each instance as an in-process HTTP server on the PORT the manager gave it, so
// the real sidecar listeners, health checks and registry see a real workload come and go.
import {EventEmitter} from 'node:events'
import http from 'node:http'
import net from 'node:net'
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {afterAll, afterEach, describe, expect, test} from 'vitest'
import {parseConfig} from '../../src/sim/config/load-config.js'
import type {MeshConfig} from '../../src/sim/config/types.js'
import {versionWeights} from '../../src/sim/config/versions.js'
import {type InstanceEvent, InstanceManager} from '../../src/sim/control/instance-manager.js'
import {Registry} from '../../src/sim/proxy/registry.js'
import {STOPPED_BY_MESH_STOP} from '../../src/sim/proxy/respond.js'
import {FaultSet} from '../../src/sim/faults/fault-set.js'
import {DataPlane} from '../../src/sim/proxy/data-plane.js'
import type {InstanceSpec, ProcessState, ProcessStatus} from '../../src/sim/supervisor/supervisor.js'
import type {WorkloadDriver} from '../../src/sim/supervisor/workload-driver.js'
import {realClock} from '../../src/sim/time/clock.js'

const DIR = mkdtempSync(path.join(os.tmpdir(), 'meshsim-instances-'))
afterAll(() => rmSync(DIR, {recursive: true, force: true}))

/** Runs a workload as an HTTP server answering /healthz; `broken` services never listen. */
class FakeDriver extends EventEmitter implements WorkloadDriver {
  readonly servers = new Map<string, http.Server>()
  readonly states = new Map<string, ProcessStatus>()
  readonly specs = new Map<string, InstanceSpec>()
  readonly signals: Array<[string, string]> = []
  readonly stopped: string[] = []
  /** The grace each stop was given, by instance. */
  readonly graces = new Map<string, number | undefined>()
  /** /slow requests the workload has answered. */
  slowAnswered = 0
  readonly forgotten: string[] = []
  constructor(private readonly broken = new Set<string>()) {
    super()
  }
  start(spec: InstanceSpec): ProcessStatus {
    this.specs.set(spec.instance, spec)
    this.set(spec, 'starting')
    if (!this.broken.has(spec.service)) this.serve(spec)
    return this.status(spec.instance)!
  }
  async stop(instance: string, graceMs?: number): Promise<void> {
    this.stopped.push(instance)
    this.graces.set(instance, graceMs)
    await this.close(instance)
    this.set(this.specs.get(instance)!, 'stopped')
  }
  /** SIGKILL is a crash: the exit is reported, and the workload runs again shortly after. */
  async signal(instance: string, signal: NodeJS.Signals): Promise<void> {
    this.signals.push([instance, signal])
    if (signal !== 'SIGKILL') return
    const spec = this.specs.get(instance)!
    await this.close(instance)
    const status = this.set(spec, 'backoff')
    this.emit('exit', status, {code: null, signal})
    setTimeout(() => this.serve(spec), 50)
  }
  status(instance: string): ProcessStatus | undefined {
    const s = this.states.get(instance)
    return s && {...s}
  }
  forget(instance: string): void {
    this.forgotten.push(instance)
    this.states.delete(instance)
  }
  /** As the supervisor reports a crash loop: the state, then a scheduled restart. */
  crashLoop(instance: string): void {
    const status = this.set(this.specs.get(instance)!, 'crash-loop')
    status.lastExit = {code: 1, signal: null, atMs: realClock.now()}
    this.emit('restart-scheduled', status, 1000)
  }
  async closeAll(): Promise<void> {
    for (const name of [...this.servers.keys()]) await this.close(name)
  }
  private serve(spec: InstanceSpec): void {
    const server = http.createServer((req, res) => {
      if (req.url === '/slow') return void setTimeout(() => res.end('slow', () => this.slowAnswered++), 300)
      if (req.url === '/fail') return void res.writeHead(503).end('down')
      res.end(`${spec.instance} ${req.url}`)
    })
    this.servers.set(spec.instance, server)
    server.listen(Number(spec.env.PORT), '127.0.0.1', () => this.set(spec, 'running'))
  }
  private async close(instance: string): Promise<void> {
    const server = this.servers.get(instance)
    this.servers.delete(instance)
    if (server) await new Promise((resolve) => server.close(resolve))
  }
  private set(spec: InstanceSpec, state: ProcessState): ProcessStatus {
    const prev = this.states.get(spec.instance)
    const status: ProcessStatus = {...prev, instance: spec.instance, service: spec.service, version: spec.version, state, restarts: prev?.restarts ?? 0}
    this.states.set(spec.instance, status)
    return status
  }
}

const MESH = `
name: instances
services:
  api:
    command: node api.js
    dependsOn: [db]
    health: {path: /healthz, interval: 100ms, timeout: 200ms, healthyThreshold: 1, unhealthyThreshold: 1}
    stopGracePeriod: 200ms
  db:
    command: node db.js
    health: {path: /healthz, interval: 100ms, timeout: 200ms, healthyThreshold: 1, unhealthyThreshold: 1}
    stopGracePeriod: 200ms
    policy:
      outlierDetection: {consecutive5xxErrors: 2, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 100}
  shared: {simulate: {latency: 1ms}, health: {path: /healthz, interval: 100ms}}
  solo: {simulate: {latency: 1ms, isolated: true}, health: {path: /healthz, interval: 100ms}}
`

interface Parts {
  manager: InstanceManager
  driver: FakeDriver
  registry: Registry
  dataPlane: DataPlane
  events: InstanceEvent[]
  config: MeshConfig
}

const open: Parts[] = []
afterEach(async () => {
  for (const p of open.splice(0)) {
    await p.manager.stopAll(() => 0)
    await p.driver.closeAll()
    await p.dataPlane.drain(0)
  }
})

function parts(broken: string[] = []): Parts {
  const {config, issues} = parseConfig(MESH, path.join(DIR, 'mesh.yaml'), {})
  expect(issues.filter((i) => i.severity === 'error')).toEqual([])
  const clock = realClock
  const registry = new Registry(config!.services.map((s) => s.name))
  const driver = new FakeDriver(new Set(broken))
  const events: InstanceEvent[] = []
  // The data path's outlier detector reports to the manager, as the daemon wires them.
  const dataPlane = new DataPlane(registry, config!.services, new Map(config!.services.map((s) => [s.name, versionWeights(s)])), {
    clock,
    faults: new FaultSet(clock, () => {}),
    onOutlierEvent: (s, e) => manager.outlierChanged(s, e),
  })
  const manager: InstanceManager = new InstanceManager({config: config!, clock, dataPlane, registry, driver, logDir: path.join(DIR, 'logs'), onEvent: (e) => events.push(e), onChange: () => {}})
  const p = {manager, driver, registry, dataPlane, events, config: config!}
  open.push(p)
  return p
}

const service = (p: Parts, name: string) => p.config.services.find((s) => s.name === name)!
const version = (p: Parts, name: string) => service(p, name).versions[0]

/** Whether something accepts connections on the port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

describe('InstanceManager', () => {
  test('an added instance runs through the driver, passes its check, joins the registry, and serves through its sidecar', async () => {
    const p = parts()
    p.manager.markNotStarted('db', 'mesh up named other services')
    expect(p.manager.isStarted('db')).toBe(false)
    const names = await p.manager.addInstances(service(p, 'db'), version(p, 'db'), 2, 5_000)
    expect(names).toEqual(['db-v1-0', 'db-v1-1'])
    expect(p.manager.isStarted('db')).toBe(true)
    expect(p.driver.specs.get('db-v1-0')!.env.MESH_INSTANCE).toBe('db-v1-0')
    expect(p.registry.isRegistered('db-v1-0', 'db')).toBe(true)
    const status = p.manager.statusOf('db')
    expect(status.map((s) => [s.instance, s.health, s.registered, s.state])).toEqual([
      ['db-v1-0', 'healthy', true, 'running'],
      ['db-v1-1', 'healthy', true, 'running'],
    ])
    expect(p.events.filter((e) => e.kind === 'service-healthy')).toEqual([{kind: 'service-healthy', service: 'db'}])
    const inbound = p.manager.endpoint('db-v1-0')!.inboundPort
    const body = await (await fetch(`http://127.0.0.1:${inbound}/x`)).text()
    expect(body).toBe('db-v1-0 /x')
  })

  test('a simulate: instance is offered to simulation hosts (spec.simulated) unless isolated; a command: one never', async () => {
    const p = parts()
    for (const name of ['shared', 'solo', 'db']) await p.manager.addInstances(service(p, name), version(p, name), 1, 5_000)
    expect(['shared-v1-0', 'solo-v1-0', 'db-v1-0'].map((i) => p.driver.specs.get(i)!.simulated)).toEqual([true, undefined, undefined])
    // The same env either way: a host reads what a process of its own would.
    expect(JSON.parse(p.driver.specs.get('shared-v1-0')!.env.MESH_SIMULATE!)).toMatchObject({latency: {p50Ms: 1, p99Ms: 1}})
  })

  test('an instance that never gets healthy is removed again, and the error names it', async () => {
    const p = parts(['db'])
    const error = await p.manager.addInstances(service(p, 'db'), version(p, 'db'), 1, 600).catch((e: Error) => e)
    expect(error).toMatchObject({code: 'MESH_STARTUP_FAILED'})
    expect((error as Error).message).toMatch(/instance db-v1-0 did not become healthy within 1s/)
    expect(p.manager.instancesOf('db')).toEqual([])
    expect(p.manager.statusOf('db')).toEqual([])
    expect(p.driver.stopped).toEqual(['db-v1-0'])
    expect(p.driver.forgotten).toEqual(['db-v1-0'])
  })

  test('a service that fails to start stays declared not started, so starting it again tries again', async () => {
    const p = parts(['db'])
    p.manager.markNotStarted('db', STOPPED_BY_MESH_STOP)
    await expect(p.manager.addInstances(service(p, 'db'), version(p, 'db'), 1, 600)).rejects.toMatchObject({code: 'MESH_STARTUP_FAILED'})
    // What startServices reads to skip a service already started.
    expect(p.manager.isStarted('db')).toBe(false)
    expect(p.manager.notStarted('db')).toBe(STOPPED_BY_MESH_STOP)
  })

  test('asked for no instance (a version scaled to zero, initialScale 0), the service is started all the same', async () => {
    const p = parts()
    p.manager.markNotStarted('db', STOPPED_BY_MESH_STOP)
    expect(await p.manager.addInstances(service(p, 'db'), version(p, 'db'), 0, 600)).toEqual([])
    expect(p.manager.instancesOf('db')).toEqual([])
    expect(p.manager.isStarted('db')).toBe(true)
  })

  test("a failed start carries the end of the instance's log (logTail), for the autoscaler to show once the instance is gone", async () => {
    const p = parts(['db'])
    mkdirSync(path.join(DIR, 'logs'), {recursive: true})
    writeFileSync(path.join(DIR, 'logs', 'db-v1-0.log'), 'connecting\nDB_URL is not set\n')
    const error = await p.manager.addInstances(service(p, 'db'), version(p, 'db'), 1, 600).catch((e: Error) => e)
    rmSync(path.join(DIR, 'logs', 'db-v1-0.log'))
    expect(error).toMatchObject({code: 'MESH_STARTUP_FAILED', logTail: ['connecting', 'DB_URL is not set']})
  })

  test('a crash loop while starting fails the wait at once, naming the exit', async () => {
    const p = parts(['db'])
    const adding = p.manager.addInstances(service(p, 'db'), version(p, 'db'), 1, 30_000)
    await new Promise((r) => setTimeout(r, 50))
    p.driver.crashLoop('db-v1-0')
    await expect(adding).rejects.toThrow(/instance db-v1-0 crashed 1 times while starting \(exit code 1\)/)
    expect(p.manager.instancesOf('db')).toEqual([])
  })

  test('removing an instance takes it out of the registry before its workload stops, and closes its sidecar', async () => {
    const p = parts()
    const [name] = await p.manager.addInstances(service(p, 'db'), version(p, 'db'), 1, 5_000)
    const inbound = p.manager.endpoint(name)!.inboundPort
    let registeredAtStop: boolean | undefined
    const stop = p.driver.stop.bind(p.driver)
    p.driver.stop = async (instance) => {
      registeredAtStop = p.registry.isRegistered(instance, 'db')
      return stop(instance)
    }
    expect(await listening(inbound)).toBe(true)
    await p.manager.removeInstance(name)
    expect(registeredAtStop).toBe(false)
    expect(p.manager.instancesOf('db')).toEqual([])
    expect(p.manager.endpoint(name)).toBeUndefined()
    expect(p.driver.forgotten).toEqual([name])
    expect(await listening(inbound)).toBe(false)
  })

  test('a removed instance finishes its requests under way first, and its workload gets what is left of the grace', async () => {
    const p = parts()
    const [name] = await p.manager.addInstances(service(p, 'db'), version(p, 'db'), 1, 5_000)
    const inbound = p.manager.endpoint(name)!.inboundPort
    const slow = fetch(`http://127.0.0.1:${inbound}/slow`).then((r) => r.text())
    await new Promise((r) => setTimeout(r, 50))
    const stop = p.driver.stop.bind(p.driver)
    let answeredAtStop: number | undefined
    p.driver.stop = async (instance, graceMs) => {
      answeredAtStop = p.driver.slowAnswered
      return stop(instance, graceMs)
    }
    await p.manager.removeInstance(name, 2_000)
    expect(await slow).toBe('slow')
    expect(answeredAtStop).toBe(1)
    const grace = p.driver.graces.get(name)!
    expect(grace).toBeLessThan(1_950)
    expect(grace).toBeGreaterThan(1_000)
  })

  test('a workload that exits leaves the registry at once and earns its way back when it runs again', async () => {
    const p = parts()
    const [name] = await p.manager.addInstances(service(p, 'db'), version(p, 'db'), 1, 5_000)
    expect(p.manager.running('db', undefined, 5)).toEqual([name])
    await p.manager.signal(name, 'SIGKILL')
    expect(p.registry.isRegistered(name, 'db')).toBe(false)
    expect(p.manager.statusOf('db')[0].health).toBe('starting')
    expect(p.events).toContainEqual({kind: 'instance-exited', instance: name, service: 'db', code: null, signal: 'SIGKILL'})
    const deadline = Date.now() + 3_000
    while (!p.registry.isRegistered(name, 'db') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    expect(p.manager.statusOf('db')[0]).toMatchObject({health: 'healthy', registered: true})
  })

  test('bringUp launches a service only once what it depends on is healthy', async () => {
    const p = parts()
    const started: string[] = []
    const start = p.driver.start.bind(p.driver)
    p.driver.start = (spec) => {
      started.push(`${spec.instance}:${p.registry.isRegistered('db-v1-0', 'db')}`)
      return start(spec)
    }
    await p.manager.bringUp(new Set(['api', 'db']), 5_000)
    expect(started).toEqual(['db-v1-0:false', 'api-v1-0:true'])
    expect(p.driver.specs.get('api-v1-0')!.env.DB_URL).toBe(`http://127.0.0.1:${p.manager.statusOf('api')[0].outbound!.dependencies.db.split(':')[1]}`)
  })

  test('stopping services removes callers before what they call, and leaves them declared until started again', async () => {
    const p = parts()
    await p.manager.bringUp(new Set(['api', 'db']), 5_000)
    expect(await p.manager.stopServices(['db', 'api'])).toEqual(['api-v1-0', 'db-v1-0'])
    expect(p.driver.stopped).toEqual(['api-v1-0', 'db-v1-0'])
    expect(p.events.filter((e) => e.kind === 'service-stopped').map((e) => e.service)).toEqual(['api', 'db'])
    expect(p.manager.notStarted('db')).toBe(STOPPED_BY_MESH_STOP)
    expect(await p.manager.startServices(new Set(['db']))).toEqual(['db-v1-1'])
    expect(p.manager.isStarted('db')).toBe(true)
    expect(p.manager.isStarted('api')).toBe(false)
    expect(p.manager.statusOf('db').map((s) => [s.instance, s.health])).toEqual([['db-v1-1', 'healthy']])
  })

  test('exec runs as the named instance, or the first healthy one', async () => {
    const p = parts()
    await p.manager.addInstances(service(p, 'db'), version(p, 'db'), 2, 5_000)
    expect(p.manager.execTarget('db', undefined, undefined).instance).toBe('db-v1-0')
    expect(p.manager.execTarget('db', 'v1', 'db-v1-1')).toMatchObject({instance: 'db-v1-1', cwd: DIR})
    expect(() => p.manager.execTarget('db', undefined, 'db-v1-7')).toThrow(/"db-v1-7" is not an instance of db/)
  })

  test('an ejection the data path decides is kept in the instance state until the detector lets go of it; it ends with the instance leaving the registry, not as a return', async () => {
    const p = parts()
    await p.manager.bringUp(new Set(['api', 'db']), 5_000)
    const dbUrl = p.driver.specs.get('api-v1-0')!.env.DB_URL
    expect(p.manager.phase('db-v1-0')).toBe('healthy')
    for (let i = 0; i < 5 && p.manager.phase('db-v1-0') !== 'ejected'; i++) await (await fetch(`${dbUrl}/fail`)).text()
    const state = p.manager.state('db-v1-0')!
    expect(state.ejected).toMatchObject({times: 1, reason: 'consecutive-5xx'})
    expect(state.ejected!.untilMs - state.ejected!.sinceMs).toBeCloseTo(30_000, 3)
    expect(p.manager.phase('db-v1-0')).toBe('ejected')
    const until = Date.parse(p.manager.statusOf('db')[0].ejected!.until)
    expect(Math.abs(until - (Date.now() + 30_000))).toBeLessThan(2_000)
    expect(p.events).toContainEqual({kind: 'instance-ejected', service: 'db', instance: 'db-v1-0', reason: 'consecutive-5xx'})
    // Its workload dies: out of the registry, so the detector forgets it, and so does its state.
    await p.manager.signal('db-v1-0', 'SIGKILL')
    expect(p.manager.state('db-v1-0')!.ejected).toBeUndefined()
    expect(p.manager.statusOf('db')[0].ejected).toBeUndefined()
    expect(p.manager.phase('db-v1-0')).toBe('starting')
    expect(p.events.filter((e) => e.kind === 'instance-returned')).toEqual([])
  })

  test('a service declared not started: the record is here, and the data path tells callers why until an instance is created', async () => {
    const p = parts()
    p.manager.markNotStarted('db', 'mesh up named other services')
    await p.manager.bringUp(new Set(['api']), 5_000)
    const dbUrl = p.driver.specs.get('api-v1-0')!.env.DB_URL
    const refused = await fetch(`${dbUrl}/x`)
    await refused.text()
    expect(refused.status).toBe(503)
    expect(refused.headers.get('x-mesh-reason')).toMatch(/service "db" is not started \(mesh up named other services;/)
    expect(await p.manager.startServices(new Set(['db']))).toEqual(['db-v1-0'])
    expect(p.manager.notStarted('db')).toBeUndefined()
    expect(await (await fetch(`${dbUrl}/x`)).text()).toBe('db-v1-0 /x')
    // A service apply removes leaves no record behind.
    p.manager.markNotStarted('gone', 'its profile is off')
    p.manager.forgetService('gone')
    expect(p.manager.notStarted('gone')).toBeUndefined()
  })

  test('an instance being removed is draining, then stopped; it is no longer offered to exec or deploys, but status still shows it', async () => {
    const p = parts()
    const [name] = await p.manager.addInstances(service(p, 'db'), version(p, 'db'), 1, 5_000)
    const removing = p.manager.removeInstance(name, 2_000)
    expect(p.manager.phase(name)).toBe('draining')
    expect(p.manager.state(name)).toMatchObject({leaving: true, health: 'healthy'})
    expect(p.manager.instancesOf('db')).toEqual([])
    expect(p.manager.statusOf('db').map((s) => s.instance)).toEqual([name])
    expect(() => p.manager.execTarget('db', undefined, undefined)).toThrow(/db has no instance running/)
    await removing
    expect(p.manager.phase(name)).toBe('stopped')
    expect(p.manager.state(name)).toBeUndefined()
  })
})
