// Scale to zero on a real mesh (Knative's minimums to keep it short: window 6s, grace 6s):
// a minScale 0 service with no traffic drains its last instance and its process is gone;
// one with initialScale 0 starts with none; `mesh status` says "scaled to zero", not down.
// Its first request is held by the activator while one cold-starts, then served with
// x-mesh-cold-start, and it goes back to zero; a service whose command fails at start
// answers the held request 503 with why, at once. A killed instance of an autoscaled
// version is restarted by the supervisor, or (restart: no) replaced by the autoscaler.
// Bounded: about 50 s, a few requests.
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import {ControlClient} from '../../src/sim/control/control-client.js'
import {meshPaths, readState, readToken} from '../../src/sim/control/state-file.js'
import type {MeshStatus, ServiceStatus} from '../../src/sim/control/status.js'
import type {ScalingEvent} from '../../src/sim/scaling/autoscaler.js'
import {accepts, downMesh, eventually, get, json, mesh, upMesh} from '../helpers/mesh.js'

const ZERO = 'scaling: {minScale: 0, window: 6s, scaleToZeroGracePeriod: 6s}'

const yaml = (port: number) => `
name: scale-to-zero
ingress:
  port: ${port}
  routes: [{prefix: /fn, service: fn}, {prefix: /idle, service: idle}, {prefix: /worker, service: worker}, {prefix: /crashy, service: crashy}, {prefix: /steady, service: steady}]
services:
  fn:
    simulate: {latency: 5ms, coldStart: 300ms}
    ${ZERO}
  idle:
    simulate: {latency: 5ms}
    scaling: {minScale: 0, initialScale: 0, window: 6s, scaleToZeroGracePeriod: 6s}
  worker:
    simulate: {latency: 5ms}
    restart: "no"
    scaling: {minScale: 1, maxScale: 2, window: 6s}
  steady:
    simulate: {latency: 5ms}
    scaling: {minScale: 1, maxScale: 2, window: 6s}
  crashy:
    command: node -e "console.log('connecting'); console.error('DB_URL is not set (fatal)'); process.exit(3)"
    health: {path: /healthz}
    scaling: {minScale: 0, initialScale: 0, window: 6s, scaleToZeroGracePeriod: 6s}
`

describe('scale to zero (minScale 0)', () => {
  let dir = ''
  let ingress = ''
  beforeAll(async () => {
    ;({dir, ingress} = await upMesh(yaml))
  })
  afterAll(async () => {
    if (dir) await downMesh(dir)
  })

  const status = async () => json<MeshStatus>(await mesh(dir, ['status', '--json']))
  const service = async (name: string): Promise<ServiceStatus> => (await status()).services.find((s) => s.name === name)!
  const scaledEvents = async () => {
    const paths = meshPaths(dir)
    const events = await new ControlClient(readState(paths)!, readToken(paths)!).events()
    return events.map((e) => e.event).filter((e): e is ScalingEvent => e.kind === 'scaled')
  }

  test('initialScale 0 starts none: no process, and mesh status says scaled to zero, not down', async () => {
    const idle = await service('idle')
    expect(idle.instances).toEqual([])
    expect(idle.notStarted).toBeUndefined()
    expect(idle.scaling).toEqual([expect.objectContaining({version: 'v1', actual: 0, scaledToZero: true})])
    const text = await mesh(dir, ['status'])
    expect(text.stdout).toMatch(/^idle: scaled to zero — its next request starts an instance$/m)
  })

  test('with no traffic the last instance drains after the window and the grace period: its process is gone', async () => {
    const [first] = (await service('fn')).instances
    expect(first.runId).toBeGreaterThan(0)
    expect(await accepts(first.address)).toBe(true)
    // Its decider began at mesh up: 6 s without traffic, then 6 s of grace, then the drain.
    const fn = await eventually(async () => {
      const s = await service('fn')
      return s.instances.length === 0 ? s : undefined
    }, 25_000, 250)
    expect(fn.scaling).toEqual([expect.objectContaining({actual: 0, desired: 0, scaledToZero: true})])
    // Gone: its port refuses (a simulated instance in a simulation host has no process of its own to end).
    await eventually(async () => !(await accepts(first.address)), 5000, 100)
    expect((await scaledEvents()).filter((e) => e.service === 'fn')).toEqual([expect.objectContaining({from: 1, to: 0, panic: false})])
    expect((await mesh(dir, ['status'])).stdout).toMatch(/^fn: scaled to zero/m)
    // No process of the mesh's is left for it in state.json either.
    expect(readState(meshPaths(dir))!.children.filter((c) => c.service === 'fn')).toEqual([])
    // A mesh apply (nothing changed) does not wake it: its requests are the activator's to hold.
    const applied = await mesh(dir, ['apply'])
    expect(applied.exitCode, applied.stderr + applied.stdout).toBe(0)
    expect(applied.stdout).not.toMatch(/started \d+ instances? of/)
    expect((await service('fn')).instances).toEqual([])
  }, 35_000)

  test('the first request after zero is held while one cold-starts, answered 200 with x-mesh-cold-start; then back to zero', async () => {
    // The test before left fn at zero; wait for it when run alone.
    await eventually(async () => (await service('fn')).instances.length === 0, 25_000, 250)
    const first = await get(`${ingress}/fn`)
    expect(first.status).toBe(200)
    // simulate.coldStart 300ms is part of it: the process waits that long before it listens.
    const coldMs = Number(first.headers['x-mesh-cold-start'])
    expect(coldMs).toBeGreaterThanOrEqual(300)
    const warm = await get(`${ingress}/fn`)
    expect(warm.status).toBe(200)
    expect(warm.headers['x-mesh-cold-start']).toBeUndefined()
    const up = (await scaledEvents()).filter((e) => e.service === 'fn').at(-1)!
    expect(up).toMatchObject({from: 0, to: 1})
    expect(up.message).toMatch(/^0 → 1: a request is waiting \(cold start \d+ ms\)$/)
    expect(up.coldStartMs).toBeGreaterThanOrEqual(300)
    // Then a window without traffic and the grace period: back to zero, its process gone.
    const [instance] = (await service('fn')).instances
    await eventually(async () => (await service('fn')).instances.length === 0, 25_000, 250)
    await eventually(async () => !(await accepts(instance.address)), 5000, 100)
  }, 60_000)

  test('a service whose command fails at start answers the held request 503 with the startup failure, not after the timeout', async () => {
    const began = Date.now()
    const failed = await get(`${ingress}/crashy`)
    // Three crashes in a row (restarts after 1 s and 2 s) are a crash loop: well before activatorTimeout's 60 s.
    expect(Date.now() - began).toBeLessThan(20_000)
    expect(failed.status).toBe(503)
    expect(failed.headers['x-mesh-response-flags']).toBe('UH')
    expect(failed.text).toMatch(/instance crashy-v1-0 crashed 3 times while starting \(exit code 3\)/)
    expect(failed.text).toContain('DB_URL is not set (fatal)')
    // Within the backoff (1 s after the first failure) a request is answered at once with the same why; no new start.
    const again = await get(`${ingress}/crashy`)
    expect(again.status).toBe(503)
    expect(again.text).toMatch(/crashed 3 times while starting.*next try in \d+ s/)
    // mesh status keeps it, with the end of the log; no instance is left running.
    const crashy = await service('crashy')
    expect(crashy.instances).toEqual([])
    expect(crashy.scaling![0].startFailed).toMatchObject({reason: expect.stringContaining('crashed 3 times while starting')})
    expect(crashy.scaling![0].startFailed!.logTail).toContain('DB_URL is not set (fatal)')
    expect((await mesh(dir, ['status'])).stdout).toMatch(/^crashy: cold start failed at .*crashed 3 times while starting/m)
  }, 30_000)

  test('--kill on an instance of an autoscaled version (restart: no) is a crash: the autoscaler replaces it', async () => {
    const [before] = (await service('worker')).instances
    const killed = await mesh(dir, ['inject-fault', 'worker', '--kill'])
    expect(killed.exitCode, killed.stderr + killed.stdout).toBe(0)
    const after = await eventually(async () => {
      const w = await service('worker')
      const healthy = w.instances.filter((i) => i.health === 'healthy')
      return healthy.length === 1 && healthy[0].instance !== before.instance ? w : undefined
    }, 15_000, 200)
    expect(after.instances.map((i) => i.instance)).not.toContain(before.instance)
    expect(await accepts(before.address)).toBe(false)
    const replaced = (await scaledEvents()).filter((e) => e.service === 'worker').at(-1)
    expect(replaced?.message).toMatch(new RegExp(`^0 → 1: replacing ${before.instance} \\(exited, not restarted\\)`))
  }, 25_000)

  test('--kill on an instance of an autoscaled version (restart: always) is restarted by the supervisor, counted as the same one', async () => {
    const [before] = (await service('steady')).instances
    const killed = await mesh(dir, ['inject-fault', 'steady', '--kill'])
    expect(killed.exitCode, killed.stderr + killed.stdout).toBe(0)
    const after = await eventually(async () => {
      const [i] = (await service('steady')).instances
      return i && i.health === 'healthy' && i.runId !== before.runId ? i : undefined
    }, 15_000, 200)
    expect(after).toMatchObject({instance: before.instance, restarts: 1})
    expect((await service('steady')).instances).toHaveLength(1)
    // Nothing for the autoscaler to do: no scaling of steady at all.
    expect((await scaledEvents()).filter((e) => e.service === 'steady')).toEqual([])
    expect((await get(`${ingress}/steady`)).status).toBe(200)
  }, 25_000)
})
