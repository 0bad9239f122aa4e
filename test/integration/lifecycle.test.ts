// The mesh's lifecycle as a user meets it: bad input starts nothing, and down drains.
// Crash restarts and `mesh down` after a dead daemon are in lifecycle-cases.ts, run under
// each process table.
import {existsSync, readFileSync, statSync} from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import type {MeshStatus} from '../../src/sim/control/status.js'
import {downMesh, eventually, freePort, get, json, mesh, meshDir, upMesh} from '../helpers/mesh.js'

const echoMesh = (port: number, extra = '') => `
name: life
ingress:
  port: ${port}
  routes: [{prefix: /, service: echo}]
services:
  echo:
    command: node fixtures/echo-server.js
    replicas: 2
    health: {path: /healthz, interval: 100ms}
    stopGracePeriod: 5s
${extra}`

const status = async (dir: string) => json<MeshStatus>(await mesh(dir, ['status', '--json']))

describe('lifecycle', () => {
  test('a broken mesh.yaml gives file:line:column errors and starts nothing', async () => {
    const dir = meshDir(`name: broken
services:
  echo:
    command: node fixtures/echo-server.js
    replicas: three
  caller:
    command: node fixtures/echo-server.js
    dependsOn: [ecko]
`)
    const up = await mesh(dir, ['up', '-d'])
    expect(up.exitCode).toBe(2)
    expect(up.stderr).toContain('mesh.yaml:5:15 services.echo.replicas: expected a positive integer, got "three"')
    expect(up.stderr).toMatch(/mesh\.yaml:8:\d+ services\.caller\.dependsOn\[0\]: .*"ecko".*did you mean "echo"/)
    expect(existsSync(path.join(dir, '.mesh/state.json'))).toBe(false)
    const validate = await mesh(dir, ['validate', '--json'])
    expect(validate.exitCode).toBe(2)
    expect(JSON.parse(validate.stdout).error.issues.length).toBeGreaterThanOrEqual(2)
  })

  test('a port already in use is reported with the port and who wanted it; nothing is left running', async () => {
    const blocker = net.createServer()
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()))
    const busy = (blocker.address() as net.AddressInfo).port
    try {
      const dir = meshDir(echoMesh(busy))
      const up = await mesh(dir, ['up', '-d'])
      expect(up.exitCode).toBe(1)
      expect(up.stderr).toContain(`port ${busy} is already in use; the ingress (ingress.port) wants it.`)
      expect(existsSync(path.join(dir, '.mesh/state.json'))).toBe(false)

      const dir2 = meshDir(`name: fixed
services:
  api:
    command: node fixtures/echo-server.js
    port: ${busy}
`)
      const up2 = await mesh(dir2, ['up', '-d'])
      expect(up2.exitCode).toBe(1)
      expect(up2.stderr).toContain(`port ${busy} is already in use; service "api"`)
    } finally {
      blocker.close()
    }
  })

  test('an instance that never gets healthy fails up -d, naming it and showing its last log lines', async () => {
    const dir = meshDir(`name: crashy
services:
  bad:
    command: node -e "console.log('booting'); console.error('cannot open database'); process.exit(3)"
`)
    const up = await mesh(dir, ['up', '-d'], {timeoutMs: 90_000})
    expect(up.exitCode).toBe(1)
    expect(up.stderr).toMatch(/instance bad-v1-0 crashed \d+ times while starting \(exit code 3\)/)
    expect(up.stderr).toContain('cannot open database')
    expect(existsSync(path.join(dir, '.mesh/state.json'))).toBe(false)
  })

  test('mesh down lets in-flight requests finish before stopping processes', async () => {
    const port = await freePort()
    const dir = meshDir(echoMesh(port))
    expect((await mesh(dir, ['up', '-d'])).exitCode).toBe(0)
    const slow = Promise.all([get(`http://127.0.0.1:${port}/?delay=1500`), get(`http://127.0.0.1:${port}/?delay=1000`)])
    await new Promise((r) => setTimeout(r, 300))
    const down = await mesh(dir, ['down'])
    expect(down.exitCode).toBe(0)
    const results = await slow
    expect(results.map((r) => r.status)).toEqual([200, 200])
  })
})

// One mesh for the tests that only look at a running one (each `mesh up` and `down` costs
// seconds on a loaded machine); the health test puts its instance back as it found it, and the
// address: test, last, takes its app away.
describe('registry and control API', () => {
  let dir: string
  let port: number
  // An app the mesh does not start, reached as an address: service.
  const outside = http.createServer((req, res) => res.end(req.url === '/healthz' ? 'ok' : `outside saw ${req.url}`))
  let outsidePort: number

  beforeAll(async () => {
    await new Promise<void>((r) => outside.listen(0, '127.0.0.1', () => r()))
    outsidePort = (outside.address() as net.AddressInfo).port
    ;({dir, port} = await upMesh(
      (p) => `
name: life
ingress:
  port: ${p}
  routes: [{prefix: /db, service: db}, {prefix: /, service: echo}]
services:
  echo:
    command: node fixtures/echo-server.js
    replicas: 2
    health: {path: /healthz, interval: 100ms}
    stopGracePeriod: 5s
  other:
    command: node fixtures/echo-server.js
    health: {path: /healthz, interval: 100ms}
  db:
    address: 127.0.0.1:${outsidePort}
    health: {path: /healthz, interval: 100ms}
`,
    ))
  })

  afterAll(async () => {
    try {
      if (dir) await downMesh(dir)
    } finally {
      outside.closeAllConnections()
      outside.close()
    }
  })

  test('a second mesh up on a running mesh says so and starts nothing', async () => {
    const before = await status(dir)
    const again = await mesh(dir, ['up', '-d'])
    expect(again.exitCode).not.toBe(0)
    expect(again.stderr).toMatch(/mesh "life" is already running here \(daemon pid \d+\)/)
    const after = await status(dir)
    expect(after.daemonPid).toBe(before.daemonPid)
    expect(after.services.flatMap((s) => s.instances.map((i) => i.pid))).toEqual(before.services.flatMap((s) => s.instances.map((i) => i.pid)))
  })

  test('an instance failing its health checks leaves the registry and gets no traffic; it rejoins when it recovers', async () => {
    const [sick, well] = (await status(dir)).services[0].instances
    // Reach the instance itself (not through the mesh) to make it fail its checks.
    await get(`http://${sick.address}/toggle-health`)
    const out = await eventually(async () => {
      const i = (await status(dir)).services[0].instances.find((x) => x.instance === sick.instance)!
      return !i.registered && i.health === 'unhealthy' ? i : undefined
    })
    expect(out?.state).toBe('running')
    for (let i = 0; i < 10; i++) expect(JSON.parse((await get(`http://127.0.0.1:${port}/`)).text).instance).toBe(well.instance)
    await get(`http://${sick.address}/toggle-health`)
    const back = await eventually(async () => (await status(dir)).services[0].instances.find((x) => x.instance === sick.instance)!.registered)
    expect(back).toBe(true)
  })

  test('the control API listens on 127.0.0.1, refuses requests without the token, and the token file is private', async () => {
    const state = JSON.parse(readFileSync(path.join(dir, '.mesh/state.json'), 'utf8'))
    expect(state.controlUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect((await get(`${state.controlUrl}/v1/status`)).status).toBe(401)
    expect((await get(`${state.controlUrl}/v1/status`, {authorization: 'Bearer nope'})).status).toBe(401)
    expect(statSync(state.tokenFile).mode & 0o777).toBe(0o600)
    const token = readFileSync(state.tokenFile, 'utf8')
    expect((await get(`${state.controlUrl}/v1/status`, {authorization: `Bearer ${token}`})).status).toBe(200)
    expect(state.children.map((c: {instance: string}) => c.instance).sort()).toEqual(['echo-v1-0', 'echo-v1-1', 'other-v1-0'])
  })

  test('mesh logs shows each instance prefixed; mesh logs SERVICE filters; an unknown service is an error', async () => {
    const all = await mesh(dir, ['logs'])
    expect(all.exitCode).toBe(0)
    expect(all.stdout).toMatch(/^echo-v1-0\s+\| echo echo-v1-0 on \d+$/m)
    expect(all.stdout).toMatch(/^other-v1-0\s+\| echo other-v1-0 on \d+$/m)
    const one = await mesh(dir, ['logs', 'other'])
    expect(one.stdout).toContain('echo other-v1-0 on')
    expect(one.stdout).not.toContain('echo-v1-0')
    const bad = await mesh(dir, ['logs', 'nope'])
    expect(bad.exitCode).toBe(2)
    expect(bad.stderr).toContain('service "nope" is not in the mesh')
  })

  test('an address: service the mesh does not start is health-checked and routed to like the others', async () => {
    const inst = (await status(dir)).services.find((s) => s.name === 'db')!.instances[0]
    expect(inst).toMatchObject({kind: 'address', state: 'external', health: 'healthy', registered: true, address: `127.0.0.1:${outsidePort}`})
    expect((await get(`http://127.0.0.1:${port}/db/q`)).text).toBe('outside saw /db/q')
    // When it goes away the mesh answers 503 UH, saying so, instead of hanging.
    outside.closeAllConnections()
    await new Promise((r) => outside.close(r))
    const down = await eventually(async () => {
      const r = await get(`http://127.0.0.1:${port}/db/q`)
      return r.status === 503 ? r : undefined
    })
    expect(down!.headers['x-mesh-response-flags']).toBe('UH')
    expect(down!.text).toContain('no healthy upstream')
  })
})
