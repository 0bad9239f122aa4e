// Deploys of an autoscaled service on a real mesh, under load: a canary's new version is
// scaled by its share of the traffic, the old one gives instances back as its share falls,
// every request is answered, and at promotion the old version's instances go and its
// autoscaling is let go; a `mesh rollback` mid-canary leaves the old version autoscaled.
// Load: 8 requests at once to a 100 ms service (8 concurrent, target 2 × 70%: 6 instances;
// half of it: 3). Bounded: about 70 s, under 6000 requests.
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import {ControlClient} from '../../src/sim/control/control-client.js'
import {meshPaths, readState, readToken} from '../../src/sim/control/state-file.js'
import type {ServiceStatus} from '../../src/sim/control/status.js'
import type {ScalingEvent} from '../../src/sim/scaling/autoscaler.js'
import {downMesh, eventually, mesh, type Sent, sendUntilStopped, upMesh} from '../helpers/mesh.js'

const yaml = (port: number) => `
name: autoscaled-deploys
ingress:
  port: ${port}
  routes: [{prefix: /, service: catalog}]
services:
  catalog:
    simulate: {latency: 100ms, seed: 1}
    scaling: {minScale: 1, maxScale: 8, target: 2, window: 6s}
`

type Scaled = Extract<ScalingEvent, {kind: 'scaled'}>

interface Seen {
  deploy?: string
  /** Instances per version (not leaving). */
  counts: Record<string, number>
  scaled: string[]
}

describe('deploys of an autoscaled service', () => {
  let dir = ''
  let ingress = ''
  let load: {stop(): Promise<Sent[]>} | undefined
  beforeAll(async () => {
    ;({dir, ingress} = await upMesh(yaml))
  })
  afterAll(async () => {
    await load?.stop()
    if (dir) await downMesh(dir)
  })

  // The control API straight (what `mesh status --json` prints): a CLI process per sample is too slow to watch a step with.
  const control = () => {
    const paths = meshPaths(dir)
    return new ControlClient(readState(paths)!, readToken(paths)!)
  }
  const catalog = async (): Promise<ServiceStatus> => (await control().status()).services.find((s) => s.name === 'catalog')!
  const seen = async (): Promise<Seen> => {
    const s = await catalog()
    const counts: Record<string, number> = {}
    for (const i of s.instances) counts[i.version] = (counts[i.version] ?? 0) + 1
    return {deploy: s.deploy, counts, scaled: (s.scaling ?? []).map((r) => r.version)}
  }
  /** Polls `mesh status` until `done` resolves; every sample. */
  const watch = async (done: Promise<unknown>): Promise<Seen[]> => {
    const out: Seen[] = []
    let over = false
    void done.finally(() => (over = true))
    while (!over) {
      out.push(await seen())
      await new Promise((r) => setTimeout(r, 200))
    }
    return out
  }
  const scalingEvents = async (): Promise<Scaled[]> => {
    const events = await control().events()
    return events.map((e) => e.event).filter((e): e is Scaled => e.kind === 'scaled')
  }
  const bad = (sent: Sent[]) => sent.filter((s) => s.status !== 200)

  test('a canary: the new version scaled by its share, the old one shrinking, every request answered; promoted, the old version gone and let go', async () => {
    load = sendUntilStopped(`${ingress}/items`, 40, 8)
    const before = await eventually(async () => {
      const s = await seen()
      return (s.counts.v1 ?? 0) >= 5 ? s : undefined
    }, 15_000, 250)
    expect(before.scaled).toEqual(['v1'])

    const canary = mesh(dir, ['canary', 'catalog', '--to', 'v2', '--set', 'simulate.seed=2', '--steps', '50,100', '--interval', '15s', '--min-requests', '5'], {timeoutMs: 60_000})
    const samples = await watch(canary)
    const done = await canary
    expect(done.exitCode, done.stdout + done.stderr).toBe(0)
    expect(done.stdout).toMatch(/promoted/)

    const at50 = samples.filter((s) => s.deploy?.includes('at 50%'))
    expect(at50.length).toBeGreaterThan(3)
    // v2 started at initialScale 1; half the load (4 concurrent) wants 3.
    expect(Math.max(...at50.map((s) => s.counts.v2 ?? 0))).toBeGreaterThanOrEqual(2)
    // v1 gave instances back as its share halved, and never went below what half the load needs.
    expect(at50.at(-1)!.counts.v1).toBeLessThan(before.counts.v1)
    expect(Math.min(...at50.map((s) => s.counts.v1 ?? 0))).toBeGreaterThanOrEqual(2)
    // Both were autoscaled meanwhile.
    expect(at50.at(-1)!.scaled.sort()).toEqual(['v1', 'v2'])
    const events = await scalingEvents()
    expect(events.some((e) => e.version === 'v2' && e.to > e.from)).toBe(true)
    expect(events.some((e) => e.version === 'v1' && e.to < e.from)).toBe(true)

    // Promoted: no v1 instance is left, and only v2 is autoscaled.
    const after = await eventually(async () => {
      const s = await seen()
      return s.counts.v1 === undefined ? s : undefined
    }, 10_000, 250)
    expect(after.scaled).toEqual(['v2'])
    expect(after.counts.v2).toBeGreaterThanOrEqual(3)

    const sent = await load.stop()
    load = undefined
    expect(sent.length).toBeGreaterThan(500)
    expect(bad(sent)).toEqual([])
  }, 75_000)

  test('`mesh rollback` mid-canary: the canary goes, the old version stays autoscaled and scales back up for its whole load', async () => {
    load = sendUntilStopped(`${ingress}/items`, 40, 8)
    const started = await mesh(dir, ['canary', 'catalog', '--to', 'v3', '--set', 'simulate.seed=3', '--steps', '50,100', '--interval', '60s', '--min-requests', '5', '-d'])
    expect(started.exitCode, started.stdout + started.stderr).toBe(0)
    // At 50%, v2 (the primary now) gives instances back for its half.
    let last: Seen | undefined
    const shrunk = await eventually(
      async () => {
        const s = (last = await seen())
        return s.deploy?.includes('at 50%') && (s.counts.v3 ?? 0) >= 1 && (s.counts.v2 ?? 0) <= 4 ? s : undefined
      },
      40_000,
      300,
      () => JSON.stringify(last),
    )
    expect(shrunk.scaled.sort()).toEqual(['v2', 'v3'])

    // It returns once traffic is back on v2 and v3's instances are gone; v2 may scale up while
    // v3's drain, so its events are counted from before the rollback, v3's from after it.
    const beforeRollback = (await scalingEvents()).length
    const rolledBack = await mesh(dir, ['rollback', 'catalog'])
    expect(rolledBack.exitCode, rolledBack.stdout + rolledBack.stderr).toBe(0)
    const eventsBefore = (await scalingEvents()).length
    const after = await eventually(async () => {
      const s = await seen()
      return s.counts.v3 === undefined && s.deploy === undefined ? s : undefined
    }, 10_000, 250)
    expect(after.scaled).toEqual(['v2'])
    // All the load is v2's again: its autoscaler scales it back up; v3 is never scaled again.
    await eventually(async () => ((await seen()).counts.v2 ?? 0) >= 5, 15_000, 300)
    const events = await scalingEvents()
    expect(events.slice(beforeRollback).some((e) => e.version === 'v2' && e.to > e.from)).toBe(true)
    expect(events.slice(eventsBefore).filter((e) => e.version === 'v3')).toEqual([])

    const sent = await load.stop()
    load = undefined
    expect(bad(sent)).toEqual([])
  }, 75_000)
})
