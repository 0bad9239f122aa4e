// Scaling made visible on a real mesh: the autoscaler's decisions in `mesh history SERVICE`
// (text, and `--scaling --json`; plain `--json` still the deploy records), in `mesh top`'s
// SCALE column, and a scale-up whose instance exits at start as an event and a `mesh status`
// line; a real cold start (a service at zero) counted by /metrics and `mesh stat`, and drawn
// by `mesh trace`. One mesh; bounded: about 30 s, under 150 requests.
import {writeFileSync} from 'node:fs'
import path from 'node:path'
import {readFileSync} from 'node:fs'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import {ControlClient} from '../../src/sim/control/control-client.js'
import type {Stamped} from '../../src/sim/control/event-log.js'
import {meshPaths, readState, readToken} from '../../src/sim/control/state-file.js'
import type {ScalingRecord} from '../../src/sim/control/scaling-history.js'
import type {MeshStatus} from '../../src/sim/control/status.js'
import type {DeployRecord} from '../../src/sim/deploy/deploy-types.js'
import type {StatRow} from '../../src/sim/telemetry/metrics.js'
import type {Span} from '../../src/sim/telemetry/span.js'
import {downMesh, eventually, get, json, mesh, sendMany, type Sent, upMesh} from '../helpers/mesh.js'
import {parseExposition} from '../helpers/prometheus-parser.js'

const COLD_TRACE = '5bf92f3577b34da6a3ce929d0e0e4737'

// `flaky` starts while no-more-instances is absent; once the test writes it, a new instance exits at start.
const yaml = (port: number) => `
name: scaling-observability
ingress:
  port: ${port}
  routes: [{prefix: /flaky, service: flaky}, {prefix: /cold, service: cold}, {prefix: /, service: catalog}]
services:
  catalog:
    simulate: {latency: 200ms}
    scaling: {minScale: 1, maxScale: 3, target: 2, window: 6s}
  flaky:
    command: "if [ -e no-more-instances ]; then echo 'refusing to start: no-more-instances exists' >&2; exit 1; fi; exec node fixtures/echo-server.js"
    health: {path: /healthz, interval: 200ms}
    restart: "no"
    scaling: {minScale: 1, maxScale: 2, target: 1, window: 6s}
  cold:
    simulate: {latency: 10ms}
    scaling: {minScale: 0, initialScale: 0, maxScale: 1}
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
  // Polled through the control API: a CLI run per poll would be slower than what it watches.
  let control: ControlClient | undefined
  const status = async (): Promise<MeshStatus> => (control ??= new ControlClient(readState(meshPaths(dir))!, readToken(meshPaths(dir))!)).status()
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
    expect((await mesh(dir, ['history', 'flaky'])).stdout).toMatch(/^\d\d:\d\d:\d\d\s+flaky\s+v1\s+failed\s+-\s+instance flaky-v1-\d+ failed \(exit code 1\)/m)
  }, 40_000)

  test('a real cold start: /metrics counts it, mesh stat shows it as the p99 tail, mesh trace draws it', async () => {
    const first = await get(`${ingress}/cold`, {traceparent: `00-${COLD_TRACE}-00f067aa0ba902b7-01`})
    expect(first.status).toBe(200)
    const coldMs = Number(first.headers['x-mesh-cold-start'])
    expect(coldMs).toBeGreaterThan(0)
    const warm = await get(`${ingress}/cold`)
    expect([warm.status, warm.headers['x-mesh-cold-start']]).toEqual([200, undefined])

    const state = JSON.parse(readFileSync(path.join(dir, '.mesh', 'state.json'), 'utf8')) as {controlUrl: string}
    const families = parseExposition((await get(`${state.controlUrl}/metrics`)).text)
    const labels = {destination_workload: 'cold', destination_service: 'cold', destination_version: 'v1'}
    expect(families.get('mesh_cold_starts_total')!.samples).toEqual([{name: 'mesh_cold_starts_total', labels, value: 1}])
    const duration = families.get('mesh_cold_start_duration_milliseconds')!.samples
    expect(duration.find((x) => x.name.endsWith('_count'))!.value).toBe(1)
    expect(duration.find((x) => x.name.endsWith('_sum'))!.value).toBeCloseTo(coldMs, 0)

    const row = json<StatRow[]>(await mesh(dir, ['stat', '--json'])).find((r) => r.service === 'cold')!
    // Two calls, the cold one the slower: it is the whole tail at or above p99.
    expect(row).toMatchObject({requests: 2, coldStarts: 1, coldStartShareOfP99: 1})
    expect((await mesh(dir, ['stat'])).stdout).toMatch(/^cold\s+2\s.*\s1\s+100%$/m)

    const spans = await eventually(async () => {
      const r = await mesh(dir, ['trace', COLD_TRACE, '--json'])
      return r.exitCode === 0 && (JSON.parse(r.stdout) as Span[])
    }, 5000, 200)
    const held = spans.find((x) => x.kind === 'client' && x.peerService === 'cold')!
    expect(held.coldStartMs).toBeCloseTo(coldMs, 0)
    const text = await mesh(dir, ['trace', COLD_TRACE, '--width', '120'])
    expect(text.stdout).toMatch(/│░+█*\s*│/)
    expect(text.stdout).toMatch(/↳ cold start: waited [\d.]+m?s for an instance of cold to start/)
  }, 40_000)
})
