// The serverless template as a user walks it: init, up (api at zero processes), then its
// chaos scenarios — cold starts, then throttles at the account limit; then, with the limit
// raised by `mesh apply`, no throttles but db saturated and its latency most of each
// request's. The scenarios' own expectations are the test; what they cannot say (the
// cause of the errors, where the latency is) is checked beside them.
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import {ControlClient} from '../../src/sim/control/control-client.js'
import {meshPaths, readState, readToken} from '../../src/sim/control/state-file.js'
import type {MeshStatus} from '../../src/sim/control/status.js'
import type {ChaosReport} from '../../src/sim/faults/chaos-runner.js'
import {parseScenario} from '../../src/sim/faults/chaos-scenario.js'
import {templatesDir} from '../../src/sim/templates/templates.js'
import {downMesh, freePort, get, json, mesh} from '../helpers/mesh.js'

const SCENARIOS = ['burst.yaml', 'db-saturates.yaml']

describe('serverless template: its scenarios read as written', () => {
  test.each(SCENARIOS)('%s checks without a mesh, and names only the template\'s services', (name) => {
    const file = path.join(templatesDir(), 'serverless', 'scenarios', name)
    const parsed = parseScenario(readFileSync(file, 'utf8'), file, {api: ['v1'], db: ['v1']})
    expect(parsed.issues).toEqual([])
    // Three phases: the trickle (a cold start), the climb, the burst.
    expect(parsed.scenario!.phaseStarts).toEqual([0, 4000, 8000])
  })
})

describe('serverless template end to end', () => {
  let dir: string
  let ingress: string
  // The control API straight: a CLI run per poll would be slower than what it watches.
  let control: ControlClient
  const status = async () => json<MeshStatus>(await mesh(dir, ['status', '--json']))
  const chaos = async (name: string) => {
    const r = await mesh(dir, ['chaos', `scenarios/${name}`, '--json'], {timeoutMs: 60_000})
    const report = JSON.parse(r.stdout) as ChaosReport
    const failed = report.expectations.filter((e) => !e.held)
    expect(failed, JSON.stringify(report.phases.map((p) => ({...p, latency: undefined})))).toEqual([])
    expect(r.exitCode, r.stderr).toBe(0)
    return report
  }

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'meshsim-serverless-'))
    const init = await mesh(dir, ['init', '--template', 'serverless'])
    expect(init.exitCode, init.stderr).toBe(0)
    const file = path.join(dir, 'mesh.yaml')
    const port = await freePort()
    writeFileSync(file, readFileSync(file, 'utf8').replace(/port: 8000/, `port: ${port}`))
    ingress = `http://127.0.0.1:${port}`
    const validate = await mesh(dir, ['validate'])
    expect(validate.stdout + validate.stderr).not.toMatch(/warning/)
    expect(validate.stdout).toContain('2 services, 1 instance at start, 1 autoscaled.')
    const up = await mesh(dir, ['up', '-d'], {timeoutMs: 90_000})
    expect(up.exitCode, up.stderr + up.stdout).toBe(0)
  }, 120_000)

  afterAll(async () => {
    await downMesh(dir)
  })

  test('mesh up starts db and no api process: the function is at zero until a request comes', async () => {
    const services = (await status()).services
    expect(services.find((s) => s.name === 'api')!.instances).toEqual([])
    expect(services.find((s) => s.name === 'db')!.instances.map((i) => i.health)).toEqual(['healthy'])
  })

  test('burst.yaml: the first request waits for a cold start and is served; at 25/s the account limit of 2 throttles (429 TH, nothing else)', async () => {
    const report = await chaos('burst.yaml')
    const [trickle, , burst] = report.phases
    expect(trickle.errors).toBe(0)
    // Every refusal is a throttle: no 5xx, no timeout, no client-side error.
    expect(Object.keys(report.overall.errorsByCause)).toEqual(['TH'])
    expect(burst.statuses['429']).toBe(burst.errorsByCause.TH)
  }, 90_000)

  test('raised to 1000 by mesh apply (live, no restart), the same load is not throttled: db saturates and its latency is most of each request', async () => {
    const file = path.join(dir, 'mesh.yaml')
    writeFileSync(file, readFileSync(file, 'utf8').replace('functions: {accountConcurrency: 2}', 'functions: {accountConcurrency: 1000}'))
    const applied = await mesh(dir, ['apply'])
    expect(applied.exitCode, applied.stderr + applied.stdout).toBe(0)
    expect(applied.stdout).toContain('functions: accountConcurrency 2 → 1000')
    expect(applied.stdout + applied.stderr).not.toMatch(/restart the mesh/)

    // db's requests in flight (its sidecar's count) every 100 ms while the scenario plays.
    control ??= new ControlClient(readState(meshPaths(dir))!, readToken(meshPaths(dir))!)
    const samples: Array<{at: number; inFlight: number}> = []
    let playing = true
    const sampling = (async () => {
      while (playing) {
        const db = (await control.status()).services.find((s) => s.name === 'db')!
        samples.push({at: performance.now(), inFlight: Object.values(db.load?.instances ?? {}).reduce((a, b) => a + b, 0)})
        await new Promise((r) => setTimeout(r, 100))
      }
    })()
    const report = await chaos('db-saturates.yaml').finally(() => (playing = false))
    await sampling
    expect(report.overall.errors).toBe(0)
    // The burst phase (the run's last 8 s): db saturated, its 3 places in use most of the time
    // (a queue behind them at times)…
    const end = samples.at(-1)!.at
    const burst = samples.filter((x) => x.at >= end - 7_500)
    const full = burst.filter((x) => x.inFlight >= 3).length / burst.length
    expect(full, JSON.stringify(burst.map((x) => x.inFlight))).toBeGreaterThanOrEqual(0.5)
    // …and, as the sidecars measured it, db's latency is the larger part of api's (the rest
    // of api's is mostly a wait for a free instance, each of which is waiting on db).
    const stat = json<Array<{service: string; p50: number}>>(await mesh(dir, ['stat', '--json', '--window', '8s']))
    const p50 = (s: string) => stat.find((r) => r.service === s)!.p50
    expect(p50('db') / p50('api'), JSON.stringify(stat)).toBeGreaterThanOrEqual(0.5)
  }, 90_000)

  test('idle, the function goes back to zero processes (a window and the grace period), and the next request is a cold start again', async () => {
    const deadline = Date.now() + 40_000
    while ((await status()).services.find((s) => s.name === 'api')!.instances.length > 0) {
      expect(Date.now(), 'api still runs an instance 40 s after the load ended').toBeLessThan(deadline)
      await new Promise((r) => setTimeout(r, 500))
    }
    const cold = await get(`${ingress}/`)
    expect(cold.status, cold.text).toBe(200)
    expect(Number(cold.headers['x-mesh-cold-start'])).toBeGreaterThanOrEqual(300)
    expect(JSON.parse(cold.text)).toMatchObject({function: 'api', coldStart: true, db: {service: 'db'}})
  }, 60_000)
})
