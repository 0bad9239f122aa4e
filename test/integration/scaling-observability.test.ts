// Scaling made visible on a real mesh: the autoscaler's decisions in `mesh history SERVICE`
// (text, and `--scaling --json`; plain `--json` still the deploy records), in `mesh top`'s
// SCALE column, and a scale-up whose instance exits at start as an event and a `mesh status`
// line. One mesh; bounded: about 40 s (mostly CLI runs), under 150 requests.
import {writeFileSync} from 'node:fs'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import type {Stamped} from '../../src/sim/control/event-log.js'
import type {ScalingRecord} from '../../src/sim/control/scaling-history.js'
import type {MeshStatus} from '../../src/sim/control/status.js'
import type {DeployRecord} from '../../src/sim/deploy/deploy-types.js'
import {downMesh, eventually, json, mesh, sendMany, type Sent, upMesh} from '../helpers/mesh.js'

// `flaky` starts while no-more-instances is absent; once the test writes it, a new instance exits at start.
const yaml = (port: number) => `
name: scaling-observability
ingress:
  port: ${port}
  routes: [{prefix: /flaky, service: flaky}, {prefix: /, service: catalog}]
services:
  catalog:
    simulate: {latency: 200ms}
    scaling: {minScale: 1, maxScale: 3, target: 2, window: 6s}
  flaky:
    command: "if [ -e no-more-instances ]; then echo 'refusing to start: no-more-instances exists' >&2; exit 1; fi; exec node fixtures/echo-server.js"
    health: {path: /healthz, interval: 200ms}
    restart: "no"
    scaling: {minScale: 1, maxScale: 2, target: 1, window: 6s}
`

describe('scaling in history, top and status', () => {
  let dir = ''
  let ingress = ''
  beforeAll(async () => {
    ;({dir, ingress} = await upMesh(yaml))
  })
  afterAll(async () => {
    if (dir) await downMesh(dir)
  })
  const status = async () => json<MeshStatus>(await mesh(dir, ['status', '--json']))
  const notOk = (sent: Sent[]) => sent.filter((s) => s.status !== 200)

  test('a scale-up is listed by mesh history (from → to, panic, reason) and shown in mesh top', async () => {
    // 8 at once for ~2 s of 200 ms calls: 8 / (2 × 70%) wants 6, capped at 3, decided in panic.
    const burst = sendMany(`${ingress}/items`, 80, 8)
    await eventually(async () => (await status()).services.find((s) => s.name === 'catalog')!.scaling![0].actual >= 2, 15_000, 250)
    expect(notOk(await burst)).toEqual([])

    const scaling = json<Array<Stamped<ScalingRecord>>>(await mesh(dir, ['history', 'catalog', '--scaling', '--json']))
    const first = scaling[0]
    expect(first.event).toMatchObject({kind: 'scaled', service: 'catalog', version: 'v1', from: 1, panic: true})
    expect(first.event.kind === 'scaled' && first.event.to).toBeGreaterThanOrEqual(2)
    expect(first.at).toMatch(/^\d{4}-\d\d-\d\dT/)
    // Plain --json is what it was: the deploy records (none here).
    expect(json<DeployRecord[]>(await mesh(dir, ['history', 'catalog', '--json']))).toEqual([])

    const text = await mesh(dir, ['history', 'catalog'])
    expect(text.exitCode, text.stderr).toBe(0)
    expect(text.stdout).toContain('No deploys of catalog yet.')
    expect(text.stdout).toMatch(/^\d\d:\d\d:\d\d {2}catalog {2}v1 {7}1 → \d {3}panic {2}panic, observed \d+(\.\d)? concurrent over 0\.6 s, target 1\.4/m)
    // Another service's are not listed under this one; every service's without a name.
    expect(json<Array<Stamped<ScalingRecord>>>(await mesh(dir, ['history', 'flaky', '--scaling', '--json']))).toEqual([])
    expect((await mesh(dir, ['history'])).stdout).toMatch(/1 → \d {3}panic/)
    expect((await mesh(dir, ['history', 'nosuch', '--scaling'])).exitCode).not.toBe(0)

    const top = await mesh(dir, ['top', '--once'], {env: {COLUMNS: '120'}})
    expect(top.exitCode, top.stderr).toBe(0)
    expect(top.stdout).toMatch(/INST\s+SCALE\s+RPS/)
    expect(top.stdout).toMatch(/^ {2}catalog\s+v1\s+\d\/\d\s+\d\/\d( panic)?\s/m)
  }, 40_000)

  test('a scale-up whose instance exits at start is an event, a mesh status line and a history line', async () => {
    writeFileSync(path.join(dir, 'no-more-instances'), '')
    // 4 at once, each held 500 ms by the app: 4 / (1 × 70%) wants 2; the second instance exits.
    const burst = sendMany(`${ingress}/flaky?drip=5`, 24, 4)
    const failed = await eventually(async () => (await status()).services.find((s) => s.name === 'flaky')!.scaleFailed, 15_000, 250)
    const sent = await burst
    // The one instance it has serves them all: a failed scale-up drops nothing.
    expect(notOk(sent)).toEqual([])
    expect(failed.reason).toMatch(/^instance flaky-v1-\d+ failed \(exit code 1\)/)
    const text = await mesh(dir, ['status'])
    expect(text.stdout).toMatch(/^flaky: scale-up failed at \d\d:\d\d:\d\d: .*flaky-v1-\d+.* \(the autoscaler retries; `mesh logs flaky` says more\)$/m)
    const history = json<Array<Stamped<ScalingRecord>>>(await mesh(dir, ['history', 'flaky', '--scaling', '--json']))
    expect(history.map((r) => r.event.kind)).toContain('scale-failed')
    expect((await mesh(dir, ['history', 'flaky'])).stdout).toMatch(/^\d\d:\d\d:\d\d\s+flaky\s+-\s+failed\s+-\s+instance flaky-v1-\d+ failed \(exit code 1\)/m)
  }, 40_000)
})
