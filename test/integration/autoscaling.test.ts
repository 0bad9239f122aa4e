// `scaling:` acted on, on a real mesh: a simulated service answering in 200 ms, driven with
// 50 requests at once, is scaled up by the KPA's panic mode (50 / (10 × 70%) wants 8,
// capped at 6), every request served; with only a trickle left it drains back to one, the
// trickle still served while instances leave. What the first decision sees is the burst, not
// its first requests: its connections are opened beforehand (on `ping`, which nothing scales),
// so its 50 requests leave at once, and panic is asked for at 4× (not 2×) what one instance
// takes, so a tick that still caught them arriving (8 to 21 in flight) decides nothing.
// Then scaling made visible: the autoscaler's decisions in `mesh history SERVICE` (text, and
// `--scaling --json`; plain `--json` still the deploy records), in `mesh top`'s SCALE column,
// and a scale-up whose instance exits at start as an event and a `mesh status` line; a real
// cold start (a service at zero) counted by /metrics and `mesh stat`, and drawn by `mesh trace`.
// One mesh for the file; bounded: about 60 s, under 3200 requests.
import {readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import {ControlClient} from '../../src/sim/control/control-client.js'
import type {Stamped} from '../../src/sim/control/event-log.js'
import type {ScalingRecord} from '../../src/sim/control/scaling-history.js'
import {meshPaths, readState, readToken} from '../../src/sim/control/state-file.js'
import type {MeshStatus} from '../../src/sim/control/status.js'
import type {DeployRecord} from '../../src/sim/deploy/deploy-types.js'
import type {ScalingEvent, ScalingStatus} from '../../src/sim/scaling/autoscaler.js'
import type {StatRow} from '../../src/sim/telemetry/metrics.js'
import type {Span} from '../../src/sim/telemetry/span.js'
import {downMesh, eventually, get, json, mesh, sendMany, type Sent, sendUntilStopped, upMesh} from '../helpers/mesh.js'
import {parseExposition} from '../helpers/prometheus-parser.js'

const COLD_TRACE = '5bf92f3577b34da6a3ce929d0e0e4737'

// `flaky` starts while no-more-instances is absent; once the test writes it, a new instance exits at start.
const yaml = (port: number) => `
name: autoscaling
ingress:
  port: ${port}
  routes:
    - {prefix: /search, service: search}
    - {prefix: /ping, service: ping}
    - {prefix: /listing, service: listing}
    - {prefix: /flaky, service: flaky}
    - {prefix: /cold, service: cold}
    - {prefix: /, service: catalog}
services:
  ping:
    simulate: {latency: 1ms}
  catalog:
    simulate: {latency: 200ms}
    scaling: {minScale: 1, maxScale: 6, target: 10, window: 6s, panicThresholdPercentage: 400}
  search:
    simulate: {latency: 10ms}
    scaling: {minScale: 1, maxScale: 3, metric: rps, target: 20, window: 6s}
  listing:
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

let dir = ''
let ingress = ''
// The control API straight (what `mesh status --json` prints): a CLI run per poll is slower than what it watches.
let control: ControlClient | undefined
const status = async (): Promise<MeshStatus> => (control ??= new ControlClient(readState(meshPaths(dir))!, readToken(meshPaths(dir))!)).status()
const notOk = (sent: Sent[]) => sent.filter((s) => s.status !== 200)

beforeAll(async () => {
  ;({dir, ingress} = await upMesh(yaml))
})
afterAll(async () => {
  if (dir) await downMesh(dir)
})

describe('autoscaling a simulated service (minScale 1)', () => {
  const scaling = async (service = 'catalog'): Promise<ScalingStatus> => (await status()).services.find((s) => s.name === service)!.scaling![0]

  test('scales up under 50 concurrent requests, serving all of them, then drains back to 1 without dropping one', async () => {
    expect(await scaling()).toMatchObject({version: 'v1', actual: 1, desired: 1})

    // 50 connections open and idle, so the burst's 50 requests leave at once on them.
    expect(notOk(await sendMany(`${ingress}/ping`, 50, 50))).toEqual([])
    // ~250 requests/s for about 5 s; the status is polled meanwhile.
    const burst = sendMany(`${ingress}/items`, 1250, 50)
    const scaledUp = eventually(async () => {
      const s = await scaling()
      return s.actual >= 4 ? s : undefined
    }, 15_000, 250)
    const [sent, up] = await Promise.all([burst, scaledUp])
    expect(notOk(sent)).toEqual([])
    expect(up.actual).toBeGreaterThanOrEqual(4)
    expect(new Set(sent.map((s) => s.instance)).size).toBeGreaterThanOrEqual(2)

    // A trickle (one at a time: ~1 concurrent, which one instance carries) while it scales down.
    const trickle = sendUntilStopped(`${ingress}/items`, 5, 1)
    const down = await eventually(async () => {
      const s = await scaling()
      return s.actual === 1 && s.desired === 1 ? s : undefined
    }, 20_000, 250)
    const during = await trickle.stop()
    expect(down).toMatchObject({actual: 1, panic: false})
    expect(during.length).toBeGreaterThan(0)
    expect(notOk(during)).toEqual([])

    const paths = meshPaths(dir)
    const events = await new ControlClient(readState(paths)!, readToken(paths)!).events()
    const scaled = events.map((e) => e.event).filter((e): e is ScalingEvent => e.kind === 'scaled' && e.service === 'catalog')
    expect(scaled[0]).toMatchObject({service: 'catalog', from: 1, panic: true})
    expect(scaled[0].to).toBeGreaterThanOrEqual(4)
    expect(scaled[0].message).toMatch(/^1 → \d: panic, observed \d+(\.\d)? concurrent over 0\.6 s, target 7/)
    expect(scaled.at(-1)).toMatchObject({to: 1, panic: false})
    expect(scaled.at(-1)!.message).toMatch(/: stable, observed \d+(\.\d)? concurrent over 6 s, target 7/)

    const text = await mesh(dir, ['status'])
    expect(text.stdout).toMatch(/^catalog: autoscaled, desired 1, actual 1 — stable, observed .* target 7/m)
  }, 45_000)

  test('with metric rps, scales on the rate of requests its instances answer', async () => {
    // Few at once (4 in flight would never want a second instance at target 20), but ~100/s: 100 / 14 wants 3.
    const burst = sendMany(`${ingress}/search`, 600, 4)
    const up = eventually(async () => {
      const s = await scaling('search')
      return s.actual >= 2 ? s : undefined
    }, 15_000, 250)
    const [sent, s] = await Promise.all([burst, up])
    expect(notOk(sent)).toEqual([])
    expect(s.reason).toMatch(/observed \d+(\.\d)? req\/s over/)
  }, 30_000)

  test('mesh apply changing scaling: is followed live: a lower maxScale drains down to it', async () => {
    // Busy again, and kept busy until it is at 1, so the autoscaler holds its instances: only
    // the new maxScale can bring it to 1 (a load that ended first could let it scale down by itself).
    const busy = sendUntilStopped(`${ingress}/search`, 40, 4)
    await eventually(async () => (await scaling('search')).actual >= 2, 15_000, 250)
    const file = path.join(dir, 'mesh.yaml')
    writeFileSync(file, readFileSync(file, 'utf8').replace('minScale: 1, maxScale: 3, metric: rps', 'minScale: 1, maxScale: 1, metric: rps'))
    const applied = await mesh(dir, ['apply'])
    expect(applied.exitCode, applied.stderr + applied.stdout).toBe(0)
    expect(applied.stdout).toContain('search: v1 scaling changed (the autoscaler follows it from its next decision)')
    await eventually(async () => (await scaling('search')).actual === 1, 4000, 200)
    await busy.stop()
    const paths = meshPaths(dir)
    const events = await new ControlClient(readState(paths)!, readToken(paths)!).events()
    const last = events.map((e) => e.event).filter((e): e is ScalingEvent => e.kind === 'scaled' && e.service === 'search').at(-1)
    expect(last).toMatchObject({to: 1})
    expect(last!.reason).toMatch(/; capped at maxScale 1$/)
  }, 30_000)
})

describe('scaling in history, top and status', () => {
  test('a scale-up is listed by mesh history (from → to, panic, reason) and shown in mesh top', async () => {
    // 8 at once for ~2 s of 200 ms calls: 8 / (2 × 70%) wants 6, capped at 3, decided in panic.
    const burst = sendMany(`${ingress}/listing/items`, 80, 8)
    await eventually(async () => (await status()).services.find((s) => s.name === 'listing')!.scaling![0].actual >= 2, 15_000, 250)
    expect(notOk(await burst)).toEqual([])

    const scaling = json<Array<Stamped<ScalingRecord>>>(await mesh(dir, ['history', 'listing', '--scaling', '--json']))
    const first = scaling[0]
    expect(first.event).toMatchObject({kind: 'scaled', service: 'listing', version: 'v1', from: 1, panic: true})
    expect(first.event.kind === 'scaled' && first.event.to).toBeGreaterThanOrEqual(2)
    expect(first.at).toMatch(/^\d{4}-\d\d-\d\dT/)
    // Plain --json is what it was: the deploy records (none here).
    expect(json<DeployRecord[]>(await mesh(dir, ['history', 'listing', '--json']))).toEqual([])

    const text = await mesh(dir, ['history', 'listing'])
    expect(text.exitCode, text.stderr).toBe(0)
    expect(text.stdout).toContain('No deploys of listing yet.')
    expect(text.stdout).toMatch(/^\d\d:\d\d:\d\d {2}listing {2}v1 {7}1 → \d {3}panic {2}panic, observed \d+(\.\d)? concurrent over 0\.6 s, target 1\.4/m)
    // Another service's are not listed under this one; every service's without a name.
    expect(json<Array<Stamped<ScalingRecord>>>(await mesh(dir, ['history', 'flaky', '--scaling', '--json']))).toEqual([])
    expect((await mesh(dir, ['history'])).stdout).toMatch(/ listing {2}v1 {7}1 → \d {3}panic/)
    expect((await mesh(dir, ['history', 'nosuch', '--scaling'])).exitCode).not.toBe(0)

    const top = await mesh(dir, ['top', '--once'], {env: {COLUMNS: '120'}})
    expect(top.exitCode, top.stderr).toBe(0)
    expect(top.stdout).toMatch(/INST\s+SCALE\s+RPS/)
    expect(top.stdout).toMatch(/^ {2}listing\s+v1\s+\d\/\d\s+\d\/\d( panic)?\s/m)
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
