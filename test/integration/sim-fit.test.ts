// `mesh sim --fit` on a real mesh: a command service (a small script that calls two simulated
// services one after the other, works 20 ms, and fails every tenth request of its own) is
// driven through the ingress; the fitted model has its calls, in order, its own latency net of
// them, and its error rate; the file it writes validates and runs in `mesh sim`.
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import type {FitReport} from '../../src/cli/sim-fit.js'
import {ExitCode} from '../../src/sim/errors.js'
import type {StatRow} from '../../src/sim/telemetry/metrics.js'
import type {SimResult} from '../../src/sim/virtual/sim-result.js'
import {downMesh, json, mesh, meshDir, meshOnFreePort, sendMany} from '../helpers/mesh.js'

const CHECKOUT = `
import http from 'node:http'
let served = 0
const call = (url, method, traceparent) => new Promise((resolve, reject) => {
  const req = http.request(url, {method, headers: traceparent ? {traceparent} : {}}, (res) => {
    res.resume()
    res.on('end', () => resolve(res.statusCode))
  })
  req.on('error', reject)
  req.end()
})
http.createServer(async (req, res) => {
  if (req.url === '/healthz') return res.end('ok')
  try {
    // The trace context the sidecar gave this request goes on with its calls.
    const paid = await call(process.env.PAYMENTS_URL + '/pay', 'POST', req.headers.traceparent)
    const stock = await call(process.env.INVENTORY_URL + '/stock', 'GET', req.headers.traceparent)
    await new Promise((r) => setTimeout(r, 20))
    const own = ++served % 10 === 0
    res.writeHead(own || paid >= 500 || stock >= 500 ? 503 : 200).end('done')
  } catch {
    res.writeHead(502).end()
  }
}).listen(process.env.PORT)
`

let dir: string
let ingress: string

beforeAll(async () => {
  ;({dir, ingress} = await meshOnFreePort(
    (port) => `
name: fit
ingress:
  port: ${port}
  routes: [{prefix: /, service: checkout}]
telemetry: {sampling: {spansPerSecond: 20000}}   # every span kept: the fit's error rate is then exact
services:
  checkout:   # the real one
    command: node fixtures/checkout.js
    dependsOn: [payments, inventory]
    health: {path: /healthz, interval: 200ms}
  payments: {simulate: {latency: 5ms, seed: 1}}
  inventory: {simulate: {latency: {p50: 2ms, p99: 8ms}, seed: 2}}
`,
  ))
  writeFileSync(path.join(dir, 'fixtures', 'checkout.js'), CHECKOUT)
  const up = await mesh(dir, ['up', '-d'])
  expect(up.exitCode, up.stderr + up.stdout).toBe(0)
}, 60_000)

afterAll(async () => {
  if (dir) await downMesh(dir)
})

describe('mesh sim --fit', () => {
  test('fits the command service from its traces, writes a file mesh validate accepts, and mesh sim runs it', async () => {
    const sent = await sendMany(`${ingress}/buy`, 300, 4)
    expect(sent.filter((s) => s.status === 503).length).toBe(30)

    const before = readFileSync(path.join(dir, 'mesh.yaml'), 'utf8')
    const printed = await mesh(dir, ['sim', '--fit'])
    expect(printed.exitCode, printed.stderr + printed.stdout).toBe(0)
    expect(printed.stdout).toMatch(/^\+ {5}simulate:$/m)
    expect(printed.stdout).toMatch(/Nothing written/)
    expect(readFileSync(path.join(dir, 'mesh.yaml'), 'utf8')).toBe(before)

    const report = json<FitReport>(await mesh(dir, ['sim', '--fit', '--out', 'fitted.yaml', '--json']))
    expect(report.services.map((s) => s.service)).toEqual(['checkout'])
    const [checkout] = report.services
    expect(checkout.requests).toBe(300)
    const model = checkout.model!
    expect(model.calls).toEqual([
      {service: 'payments', probability: 1, method: 'POST', path: '/pay'},
      {service: 'inventory', probability: 1, method: 'GET', path: '/stock'},
    ])
    expect(model.callMode).toBe('sequential')
    expect(model.errorRate).toBe(0.1)
    expect(model.errorStatus).toBe(503)
    // Its own 20 ms (and the sidecar's hop), not the calls' time added to it.
    expect(model.latency.p50Ms).toBeGreaterThan(15)
    expect(model.latency.p50Ms).toBeLessThan(60)

    const fitted = readFileSync(path.join(dir, 'fitted.yaml'), 'utf8')
    // Beside command:, the user's lines and comments as they were.
    expect(fitted).toContain('  checkout:   # the real one\n    command: node fixtures/checkout.js\n    # fitted by mesh sim --fit from 300 requests')
    expect(fitted.replace(/ {4}# fitted by[^]*?(?= {4}dependsOn)/, '')).toBe(before)
    const validate = await mesh(dir, ['validate', '-f', 'fitted.yaml'])
    expect(validate.exitCode, validate.stderr + validate.stdout).toBe(0)

    const sim = json<SimResult>(await mesh(dir, ['sim', '-f', 'fitted.yaml', '--rps', '50', '--duration', '5s', '--json']))
    const simulated = sim.services.find((s) => s.service === 'checkout')!
    expect(simulated.requests).toBe(250)
    expect(sim.services.find((s) => s.service === 'inventory')!.requests).toBeGreaterThan(200)
    // Its calls and its own time together: the simulated checkout answers about as the real one
    // did for the ingress (a loose bound: the machine is shared).
    const real = json<StatRow[]>(await mesh(dir, ['stat', '--window', '10m', '--json'])).find((r) => r.service === 'checkout')!.p50
    // Measured: real 39.7 ms, simulated 34.0 ms; the gap is the simulated callees' (payments'
    // and inventory's p50 were 6.8 and 4.8 ms on the shared machine, their models say 5 and 2).
    expect(simulated.p50).toBeGreaterThan(real / 2)
    expect(simulated.p50).toBeLessThan(real * 2)
  }, 40_000)

  // Last: it stops the mesh. Which side wins is the machine's choice; either way the outcome is whole.
  test('racing mesh down: it fits, or says the mesh went away and exits non-zero; never a stack trace, never part of a file', async () => {
    const raced = path.join(dir, 'raced.yaml')
    const [fit, down] = await Promise.all([mesh(dir, ['sim', '--fit', '--out', 'raced.yaml']), mesh(dir, ['down'])])
    expect(down.exitCode, down.stderr).toBe(0)
    expect(fit.stderr).not.toMatch(/^\s+at /m)
    if (fit.exitCode === 0) {
      const validate = await mesh(dir, ['validate', '-f', 'raced.yaml'])
      expect(validate.exitCode, validate.stderr + validate.stdout).toBe(0)
    } else {
      expect(fit.stderr, fit.stderr).toMatch(/^Error: .*(no mesh is running|stopped answering|is stopping|did not answer)/im)
      expect(existsSync(raced)).toBe(false)
    }
  }, 60_000)

  test('with no mesh running it says so and exits 3', async () => {
    const idle = meshDir('name: idle\nservices:\n  a: {command: node fixtures/echo-server.js}\n')
    const r = await mesh(idle, ['sim', '--fit'])
    expect(r.exitCode, r.stderr).toBe(ExitCode.notRunning)
    expect(r.stderr).toMatch(/not running|mesh up/i)
  })
})
