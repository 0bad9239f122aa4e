// Fault injection through the ingress, on real processes: `mesh inject-fault`,
// `mesh faults`, `mesh clear-faults`, `mesh status` and `mesh chaos`, driven
// through the real CLI against one mesh started once for the file.
import {readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {Agent, request} from 'undici'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import {connect} from '../../src/sim/control/control-client.js'
import {meshPaths} from '../../src/sim/control/state-file.js'
import type {MeshStatus} from '../../src/sim/control/status.js'
import type {ChaosReport} from '../../src/sim/faults/chaos-runner.js'
import type {FaultInfo} from '../../src/sim/faults/fault.js'
import {eventually, freePort, mesh, meshDir, sendMany} from '../helpers/mesh.js'

const agent = new Agent({connections: 16})
let dir: string
let base: string


async function cli(args: string[]) {
  return mesh(dir, args)
}

async function inject(args: string[]): Promise<FaultInfo> {
  const r = await cli(['inject-fault', ...args, '--json'])
  expect(r.exitCode, r.stdout + r.stderr).toBe(0)
  return JSON.parse(r.stdout) as FaultInfo
}

/** Set-up and clean-up go straight to the control API (a CLI start costs a second on a busy machine); the commands under test go through the CLI. */
const control = () => connect(meshPaths(dir))

async function clearAll() {
  await control().clearFaults({})
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

beforeAll(async () => {
  const port = await freePort()
  base = `http://127.0.0.1:${port}`
  dir = meshDir(`
name: faults
ingress:
  port: ${port}
  routes: [{prefix: /a, service: a}, {prefix: /b, service: b}, {prefix: /timed, service: timed}, {prefix: /, service: api}]
services:
  api:
    command: node fixtures/echo-server.js
    health: {path: /healthz, interval: 200ms}
  timed:
    command: node fixtures/echo-server.js
    health: {path: /healthz, interval: 200ms}
    policy: {timeout: 200ms}
  a: {simulate: {latency: 1ms, calls: [{service: c}], seed: 1}}
  b: {simulate: {latency: 1ms, calls: [{service: c}], seed: 2}}
  c: {simulate: {latency: 1ms, seed: 3}}
`)
  const up = await mesh(dir, ['up', '-d'])
  expect(up.exitCode, up.stdout + up.stderr).toBe(0)
})

afterAll(async () => {
  if (dir) await mesh(dir, ['down'])
  await agent.close()
})

describe('fault injection through the ingress', () => {
  test('100% abort 503: every response is 503 with the FI cause header; clear-faults brings back 200', async () => {
    const fault = await inject(['api', '--abort', '503'])
    expect(fault).toMatchObject({service: 'api', kind: 'abort', status: 503})
    const text = await cli(['faults'])
    expect(text.stdout).toMatch(new RegExp(`${fault.id}\\s+api\\s+abort 503\\s+every request`))
    const failed = await sendMany(`${base}/`, 50, 4)
    expect(failed.map((r) => `${r.status} ${r.flags}`)).toEqual(Array(50).fill('503 FI'))
    const cleared = await cli(['clear-faults', fault.id])
    expect(cleared.stdout).toMatch(new RegExp(`removed ${fault.id} abort 503 on api`))
    const ok = await sendMany(`${base}/`, 50, 4)
    expect(ok.map((r) => r.status)).toEqual(Array(50).fill(200))
  })

  test('30% abort over 2000 requests hits 30% ± 3%; the same seed twice hits the same requests; faults and status show it', async () => {
    const run = async () => {
      const fault = await control().injectFault({service: 'api', kind: 'abort', status: 503, percent: 30, seed: 7})
      // Sequential, so the requests reach the fault's dice in the same order both times.
      const results = await sendMany(`${base}/`, 2000, 1)
      const hit = results.flatMap((r, i) => (r.status === 503 && r.flags === 'FI' ? [i] : []))
      expect(results.filter((r) => r.status !== 200 && r.status !== 503)).toEqual([])
      return {fault, hit}
    }
    const first = await run()
    expect(first.hit.length / 2000).toBeGreaterThanOrEqual(0.27)
    expect(first.hit.length / 2000).toBeLessThanOrEqual(0.33)

    const listed = JSON.parse((await cli(['faults', '--json'])).stdout) as FaultInfo[]
    expect(listed).toEqual([expect.objectContaining({id: first.fault.id, seen: 2000, hits: first.hit.length, percent: 30, seed: 7})])
    const status = JSON.parse((await cli(['status', '--json'])).stdout) as MeshStatus
    expect(status.services.find((s) => s.name === 'api')!.faults).toEqual([`${first.fault.id} abort 503 30%`])

    await clearAll()
    const second = await run()
    expect(second.fault.id).not.toBe(first.fault.id)
    expect(second.hit).toEqual(first.hit)
    await clearAll()
  })

  test('a 300 ms delay adds at least 300 ms to p50; under a 200 ms timeout the caller answers 504 UT', async () => {
    const baseline = median((await sendMany(`${base}/`, 30, 1)).map((r) => r.ms))
    await control().injectFault({service: 'api', kind: 'delay', delayMs: 300})
    const delayed = await sendMany(`${base}/`, 20, 10)
    expect(delayed.every((r) => r.status === 200)).toBe(true)
    expect(median(delayed.map((r) => r.ms))).toBeGreaterThanOrEqual(baseline + 300)

    await control().injectFault({service: 'timed', kind: 'delay', delayMs: 300})
    const timedOut = await sendMany(`${base}/timed`, 10, 5)
    expect(timedOut.map((r) => `${r.status} ${r.flags}`)).toEqual(Array(10).fill('504 UT'))
    await clearAll()
  })

  test('--from hits one edge only: a → c fails, b → c does not', async () => {
    const fault = await inject(['c', '--from', 'a', '--abort', '503'])  // the CLI: --from checked against the mesh
    expect(fault.from).toBe('a')
    const viaA = await sendMany(`${base}/a`, 20, 4)
    const viaB = await sendMany(`${base}/b`, 20, 4)
    // The simulated caller answers 500 when its dependency fails.
    expect(viaA.map((r) => r.status)).toEqual(Array(20).fill(500))
    expect(viaB.map((r) => r.status)).toEqual(Array(20).fill(200))
    const [listed] = await control().faults()
    expect([listed.seen, listed.hits]).toEqual([20, 20])
    await clearAll()
  })

  test('--reset --after-bytes 100: the client gets a truncated, failed response, never a hang', async () => {
    await control().injectFault({service: 'api', kind: 'reset', afterBytes: 100})
    const outcome = await (async () => {
      const r = await request(`${base}/`, {dispatcher: agent, headersTimeout: 5000, bodyTimeout: 5000})
      const chunks: Buffer[] = []
      try {
        for await (const c of r.body) chunks.push(c as Buffer)
        return {status: r.statusCode, bytes: Buffer.concat(chunks).length, error: undefined as string | undefined}
      } catch (error) {
        return {status: r.statusCode, bytes: Buffer.concat(chunks).length, error: (error as {code?: string}).code ?? String(error)}
      }
    })().catch((error: {code?: string}) => ({status: 0, bytes: 0, error: error.code ?? String(error)}))
    expect(outcome.error).toBeDefined()
    expect(outcome.error).not.toMatch(/TIMEOUT/)
    expect(outcome.bytes).toBeLessThanOrEqual(100)
    await clearAll()
  })

  test('a fault with --duration is gone by itself', async () => {
    const fault = await control().injectFault({service: 'api', kind: 'abort', status: 500, durationMs: 1000})
    expect(fault.expiresAt).toBeDefined()
    expect((await sendMany(`${base}/`, 1))[0].status).toBe(500)
    const gone = await eventually(async () => (await control().faults()).length === 0, 5000, 50)
    expect(gone).toBe(true)
    expect((await sendMany(`${base}/`, 1))[0].status).toBe(200)
  })

  test('--kill: the instance is SIGKILLed and restarted by the supervisor; traffic recovers', async () => {
    const r = await cli(['inject-fault', 'c', '--kill'])
    expect(r.exitCode, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/kill 1 on c: killed c-v1-0 \(SIGKILL; the supervisor restarts them\)/)
    const restarted = await eventually(async () => {
      const s = await control().status()
      const i = s.services.find((x) => x.name === 'c')!.instances[0]
      return i.restarts >= 1 && i.health === 'healthy'
    }, 20_000, 250)
    expect(restarted).toBe(true)
    const recovered = await eventually(async () => (await sendMany(`${base}/b`, 5)).every((x) => x.status === 200), 10_000, 200)
    expect(recovered).toBe(true)
  })

  test('--pause: the process group is stopped (SIGSTOP) for the duration, then runs again (SIGCONT)', async () => {
    const procState = (pid: number) => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[0]
    const before = (await control().status()).services.find((x) => x.name === 'api')!.instances[0]
    const r = await cli(['inject-fault', 'api', '--pause', '1500ms'])
    expect(r.exitCode, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/paused api-v1-0/)
    expect(await eventually(() => procState(before.pid!) === 'T', 3_000, 20)).toBe(true)
    expect((await control().status()).services.find((x) => x.name === 'api')!.faults.join()).toMatch(/pause/)
    // Ended by itself: the process runs again, it was never restarted, and it serves.
    expect(await eventually(() => procState(before.pid!) !== 'T', 10_000, 50)).toBe(true)
    const recovered = await eventually(async () => (await sendMany(`${base}/`, 3)).every((x) => x.status === 200), 10_000, 200)
    expect(recovered).toBe(true)
    const after = (await control().status()).services.find((x) => x.name === 'api')!.instances[0]
    expect(after.pid).toBe(before.pid)
    expect(after.restarts).toBe(before.restarts)
  })

  test('mesh chaos: a short timeline with load; exit 4 naming the expectation that failed, exit 0 when all hold', async () => {
    const failing = path.join(dir, 'chaos-fail.yaml')
    writeFileSync(
      failing,
      `duration: 4s
load: {target: ingress, path: /, rps: 25}
timeline:
  - at: 1s
    name: broken
    inject: {service: api, abort: 503}
  - at: 2s
    clear: broken
expect:
  - {phase: 1, expect: successRate >= 99%}
  - {phase: broken, expect: errorRate >= 99%}
  - successRate >= 99%
`,
    )
    const r = await mesh(dir, ['chaos', failing])
    expect(r.exitCode, r.stdout + r.stderr).toBe(4)
    expect(r.stdout).toMatch(/ f\d+ abort 503 on api\n/)
    expect(r.stdout).toMatch(/clear broken \(removed f\d+\)/)
    // Phase 2 begins when the daemon confirmed the fault (a few ms after 1s) and ends when it confirmed the clear.
    expect(r.stdout).toMatch(/^1 +0ms–1s +start +25 +0 +100\.00%/m)
    expect(r.stdout).toMatch(/^2 +1(\.\d+)?s–2s +broken +(\d+) +\2 +0\.00%.*FI × \2$/m)
    expect(r.stdout).toMatch(/100 requests completed of 100 sent\./)
    expect(r.stdout).toMatch(/1 of 3 expectations failed: successRate >= 99% \(whole run\)\./)
    // The run cleared what it injected.
    expect(await control().faults()).toEqual([])

    const passing = path.join(dir, 'chaos-pass.yaml')
    writeFileSync(
      passing,
      `duration: 2s
load: {target: api, rps: 20}
timeline:
  - {at: 1s, inject: {service: api, delay: 50ms}}
expect:
  - successRate >= 99%
  - {phase: 2, p50: ">= 50ms"}
`,
    )
    const ok = await mesh(dir, ['chaos', passing, '--json'])
    expect(ok.exitCode, ok.stdout + ok.stderr).toBe(0)
    const report = JSON.parse(ok.stdout) as ChaosReport
    expect([report.sent, report.completed, report.overall.requests, report.passed]).toEqual([40, 40, 40, true])
    expect(report.phases[0].requests).toBe(20)
    expect(report.phases[1].requests + report.transition).toBe(20)
    expect(report.expectations.map((e) => e.held)).toEqual([true, true])
  })
})
