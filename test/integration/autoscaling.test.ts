// `scaling:` acted on, on a real mesh: a simulated service answering in 200 ms, driven with
// 50 requests at once, is scaled up by the KPA's panic mode (50 / (10 × 70%) wants 8,
// capped at 6), every request served; with only a trickle left it drains back to one, the
// trickle still served while instances leave. Bounded: about 25 s, under 3000 requests.
// The burst is a step, not a ramp: its connections are opened beforehand (on `ping`, which
// nothing scales), so the autoscaler's first look at catalog finds all 50 there at once.
import {readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import {ControlClient} from '../../src/sim/control/control-client.js'
import type {ScalingEvent, ScalingStatus} from '../../src/sim/scaling/autoscaler.js'
import {meshPaths, readState, readToken} from '../../src/sim/control/state-file.js'
import type {MeshStatus} from '../../src/sim/control/status.js'
import {downMesh, eventually, mesh, sendMany, type Sent, sendUntilStopped, upMesh} from '../helpers/mesh.js'

const yaml = (port: number) => `
name: autoscaling
ingress:
  port: ${port}
  routes: [{prefix: /search, service: search}, {prefix: /ping, service: ping}, {prefix: /, service: catalog}]
services:
  ping:
    simulate: {latency: 1ms}
  catalog:
    simulate: {latency: 200ms}
    scaling: {minScale: 1, maxScale: 6, target: 10, window: 6s}
  search:
    simulate: {latency: 10ms}
    scaling: {minScale: 1, maxScale: 3, metric: rps, target: 20, window: 6s}
`

describe('autoscaling a simulated service (minScale 1)', () => {
  let dir = ''
  let ingress = ''
  beforeAll(async () => {
    ;({dir, ingress} = await upMesh(yaml))
  })
  afterAll(async () => {
    if (dir) await downMesh(dir)
  })

  // The control API straight (what `mesh status --json` prints): a CLI run per poll is slower than what it watches.
  let control: ControlClient | undefined
  const status = async (): Promise<MeshStatus> => (control ??= new ControlClient(readState(meshPaths(dir))!, readToken(meshPaths(dir))!)).status()
  const scaling = async (service = 'catalog'): Promise<ScalingStatus> => (await status()).services.find((s) => s.name === service)!.scaling![0]
  const inFlight = async (service: string): Promise<number> => Object.values((await status()).services.find((s) => s.name === service)!.load?.instances ?? {}).reduce((a, b) => a + b, 0)
  const notOk = (sent: Sent[]) => sent.filter((s) => s.status !== 200)

  test('scales up under 50 concurrent requests, serving all of them, then drains back to 1 without dropping one', async () => {
    expect(await scaling()).toMatchObject({version: 'v1', actual: 1, desired: 1})

    // 50 connections open and idle, so the burst's 50 requests leave at once on them.
    expect(notOk(await sendMany(`${ingress}/ping`, 50, 50))).toEqual([])
    // ~250 requests/s for about 5 s; the status is polled meanwhile.
    const burst = sendMany(`${ingress}/items`, 1250, 50)
    // What the decision below is asked to see: at least 22 in flight, the least that wants 4 at target 7.
    const driven = eventually(async () => {
      const n = await inFlight('catalog')
      return n >= 22 ? n : undefined
    }, 10_000, 50)
    const scaledUp = eventually(async () => {
      const s = await scaling()
      return s.actual >= 4 ? s : undefined
    }, 15_000, 250)
    const [sent, up] = await Promise.all([burst, scaledUp, driven])
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
    const scaled = events.map((e) => e.event).filter((e): e is ScalingEvent => e.kind === 'scaled')
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
    // Busy again, so the panic holds its instances: only the new maxScale can bring it to 1 within seconds.
    await sendMany(`${ingress}/search`, 400, 4)
    expect((await scaling('search')).actual).toBeGreaterThanOrEqual(2)
    const file = path.join(dir, 'mesh.yaml')
    writeFileSync(file, readFileSync(file, 'utf8').replace('minScale: 1, maxScale: 3, metric: rps', 'minScale: 1, maxScale: 1, metric: rps'))
    const applied = await mesh(dir, ['apply'])
    expect(applied.exitCode, applied.stderr + applied.stdout).toBe(0)
    expect(applied.stdout).toContain('search: v1 scaling changed (the autoscaler follows it from its next decision)')
    await eventually(async () => (await scaling('search')).actual === 1, 4000, 200)
    const paths = meshPaths(dir)
    const events = await new ControlClient(readState(paths)!, readToken(paths)!).events()
    const last = events.map((e) => e.event).filter((e): e is ScalingEvent => e.kind === 'scaled' && e.service === 'search').at(-1)
    expect(last).toMatchObject({to: 1})
    expect(last!.reason).toMatch(/; capped at maxScale 1$/)
  }, 30_000)
})
