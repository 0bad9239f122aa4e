// Deploys on real processes with load through the ingress: `mesh rollout` (rolling,
// blue-green), `mesh canary` (weights, --mirror, --check, --load), `mesh rollback`,
// `mesh history`, `mesh status`. One mesh
// for the file; each test deploys its own service, so they do not depend on each other.
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import type {MeshStatus} from '../../src/sim/control/status.js'
import {connect} from '../../src/sim/control/control-client.js'
import {meshPaths} from '../../src/sim/control/state-file.js'
import type {DeployRecord} from '../../src/sim/deploy/deploy-types.js'
import {type RequestOutcome, runLoad} from '../../src/sim/load/load-generator.js'
import {accepts, eventually, freePort, get, mesh, meshDir} from '../helpers/mesh.js'

let dir: string
let base: string

// Routed by the ingress; cdeep is not: only cfront calls it.
const SERVICES = ['roll', 'bg', 'cbad', 'cgood', 'broken', 'bgrb', 'cfront', 'rst', 'cchk', 'cmir']

beforeAll(async () => {
  const port = await freePort()
  base = `http://127.0.0.1:${port}`
  const ok = '{simulate: {latency: 2ms, seed: 1}}'
  dir = meshDir(`
name: deploys
ingress:
  port: ${port}
  routes: [${SERVICES.map((s) => `{prefix: /${s}, service: ${s}}`).join(', ')}]
services:
  roll:
    versions:
      v1: {replicas: 3, simulate: {latency: 2ms, seed: 1}}
      v2: {replicas: 3, simulate: {latency: 2ms, seed: 2}}
  bg:
    versions:
      v1: {replicas: 2, simulate: {latency: 2ms, seed: 1}}
      v2: {replicas: 2, simulate: {latency: 2ms, seed: 2}}
  cbad:
    versions:
      v1: ${ok}
      v2: {simulate: {latency: 2ms, errorRate: 0.2, seed: 3}}
  cgood:
    versions:
      v1: ${ok}
      v2: {simulate: {latency: 2ms, seed: 4}}
  broken:
    versions:
      v1: ${ok}
  bgrb:
    versions:
      v1: {replicas: 2, simulate: {latency: 2ms, seed: 1}}
      v2: {replicas: 2, simulate: {latency: 2ms, seed: 2}}
  cfront:
    dependsOn: [cdeep]
    simulate: {latency: 1ms, calls: [{service: cdeep}]}
  rst:
    replicas: 2
    simulate: {latency: 2ms, seed: 6}
  cchk:
    versions:
      v1: ${ok}
      v2: {simulate: {latency: 2ms, seed: 7}}
  cmir:
    versions:
      v1: ${ok}
      v2: {simulate: {latency: 2ms, errorRate: 1, seed: 8}}
  cdeep:
    versions:
      v1: ${ok}
      v2: {simulate: {latency: 2ms, seed: 5}}
`)
  const up = await mesh(dir, ['up', '-d'])
  expect(up.exitCode, up.stdout + up.stderr).toBe(0)
})

afterAll(async () => {
  if (dir) await mesh(dir, ['down'])
})

/** Open-loop load on one service's route until stopped; every outcome kept, with its wall-clock time. */
function backgroundLoad(service: string, rps = 200) {
  const abort = new AbortController()
  // wallMs: when the request was meant to go; endWallMs: when its answer came.
  const outcomes: Array<RequestOutcome & {wallMs: number; endWallMs: number}> = []
  const done = runLoad({
    target: base,
    path: `/${service}`,
    rps,
    durationMs: 120_000,
    timeoutMs: 10_000,
    signal: abort.signal,
    onResponse: (o) => outcomes.push({...o, wallMs: performance.timeOrigin + o.intendedMs, endWallMs: performance.timeOrigin + o.endMs}),
  })
  return {
    outcomes,
    failed: () => outcomes.filter((o) => o.error),
    async stop() {
      abort.abort()
      return done
    },
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** `mesh status --json` for one service; `viaCli: false` asks the control API directly (the same object, a CLI start cheaper). */
async function status(service: string, viaCli: boolean) {
  if (!viaCli) return (await control().status()).services.find((s) => s.name === service)!
  const r = await mesh(dir, ['status', '--json'])
  expect(r.exitCode, r.stderr).toBe(0)
  return (JSON.parse(r.stdout) as MeshStatus).services.find((s) => s.name === service)!
}

/** Weights by version, the instances that are up, and the deploy in progress. */
async function shape(service: string, viaCli = false) {
  const s = await status(service, viaCli)
  const weights = Object.fromEntries(s.versions.map((v) => [v.name, Math.round(v.weight)]))
  const instances = s.instances.map((i) => i.instance).sort()
  return {weights, instances, deploy: s.deploy}
}

async function deployCli(args: string[]): Promise<{exitCode: number; record: DeployRecord; stderr: string}> {
  const r = await mesh(dir, [...args, '--json'], {timeoutMs: 60_000})
  let record: DeployRecord
  try {
    record = JSON.parse(r.stdout) as DeployRecord
  } catch {
    throw new Error(`mesh ${args.join(' ')} printed no JSON record (exit ${r.exitCode}):\n${r.stdout}\n${r.stderr}`)
  }
  return {exitCode: r.exitCode, record, stderr: r.stderr}
}

const control = () => connect(meshPaths(dir))

/** The instances that answered `n` requests to a service's route (x-mesh-upstream). */
async function upstreams(service: string, n = 20): Promise<string[]> {
  const seen = new Set<string>()
  for (let i = 0; i < n; i++) {
    const r = await get(`${base}/${service}`)
    expect(r.status).toBe(200)
    seen.add(String(r.headers['x-mesh-upstream']))
  }
  return [...seen].sort()
}
const summary = (r: DeployRecord) => r.steps.map((s) => s.kind)
const failures = (o: Array<{error?: string}>) => o.filter((x) => x.error).map((x) => x.error)

describe('deploys under load', () => {
  test('rolling 3 → 3 under 200 requests/s: 0 failed requests, v2 serves everything, the v1 instances are gone', async () => {
    const load = backgroundLoad('roll')
    await sleep(500)
    const {exitCode, record, stderr} = await deployCli(['rollout', 'roll', '--to', 'v2', '--max-surge', '1', '--max-unavailable', '0'])
    await sleep(500)
    const result = await load.stop()

    expect(exitCode, stderr).toBe(0)
    expect(record.outcome).toBe('promoted')
    expect(summary(record)).toEqual(['start', 'scale-up', 'scale-down', 'scale-up', 'scale-down', 'scale-up', 'scale-down', 'done'])
    expect(failures(load.outcomes)).toEqual([])
    // The load ran through the whole rollout (a second of it at least: hosted instances start fast).
    expect(result.requests).toBeGreaterThan(200)
    expect(await shape('roll', true)).toEqual({weights: {v1: 0, v2: 100}, instances: ['roll-v2-0', 'roll-v2-1', 'roll-v2-2'], deploy: undefined})
    expect(await upstreams('roll')).toEqual(['roll-v2-0', 'roll-v2-1', 'roll-v2-2'])
  })

  test('blue-green under 200 requests/s with a smoke check and --keep 1s: 0 failed requests, blue gone after keep', async () => {
    const load = backgroundLoad('bg')
    await sleep(500)
    const {exitCode, record, stderr} = await deployCli(['rollout', 'bg', '--to', 'v2', '--strategy', 'blue-green', '--smoke', 'GET /healthz', '--keep', '1s'])
    await sleep(300)
    await load.stop()

    expect(exitCode, stderr).toBe(0)
    expect(record.outcome).toBe('promoted')
    expect(summary(record)).toEqual(['start', 'scale-up', 'smoke', 'switch', 'keep', 'done'])
    expect(record.steps.find((s) => s.kind === 'switch')!.weights).toEqual({v2: 100})
    expect(failures(load.outcomes)).toEqual([])
    expect(await shape('bg')).toEqual({weights: {v1: 0, v2: 100}, instances: ['bg-v2-0', 'bg-v2-1'], deploy: undefined})
  })

  test('a canary with a 20% error rate rolls back by itself: exit 4, v1 back at 100%, v2 gone, user-visible failures bounded by the step weight', async () => {
    const load = backgroundLoad('cbad')
    await sleep(500)
    const {exitCode, record, stderr} = await deployCli([
      'canary', 'cbad', '--to', 'v2', '--steps', '20,50,100', '--interval', '1s', '--max-error-rate', '5%', '--failure-threshold', '2',
    ])
    await sleep(500)
    await load.stop()

    expect(exitCode, stderr).toBe(4)
    expect(record.outcome).toBe('rolled-back')
    expect(summary(record)).toEqual(['start', 'scale-up', 'weights', 'analysis', 'analysis', 'rollback'])
    // It never went past the first step.
    expect(record.steps.filter((s) => s.weights).map((s) => s.weights)).toEqual([
      {v1: 80, v2: 20},
      {v1: 100},
    ])
    const analyses = record.steps.filter((s) => s.kind === 'analysis').map((s) => s.analysis!)
    expect(analyses.map((a) => a.verdict)).toEqual(['fail', 'fail'])
    // 20% of 200 requests/s over 1s: about 40 canary requests per interval, well over --min-requests 20.
    for (const a of analyses) expect(a.requests).toBeGreaterThanOrEqual(20)

    // Users only met v2's errors while v2 had 20% of the traffic: expected failures are
    // 20% (weight) × 20% (error rate) = 4% of the requests in that window (~2 s × 200/s → ~16).
    // The bound allows 2.5× that (the seeded error sequence and smooth-WRR make it near
    // exact; the factor covers the window's edges) and nothing outside the window.
    const from = Date.parse(record.steps.find((s) => s.kind === 'weights')!.at) - 50
    const to = Date.parse(record.steps.find((s) => s.kind === 'rollback')!.at) + 50
    const inWindow = load.outcomes.filter((o) => o.wallMs >= from && o.wallMs <= to)
    // A request can meet v2 only if it was sent before the rollback and answered after the
    // weights moved: on a busy machine one sent just before the move can reach the mesh after it.
    const metV2 = (o: {wallMs: number; endWallMs: number}) => o.endWallMs >= from && o.wallMs <= to
    const failedIn = load.failed().filter(metV2)
    expect(load.failed().filter((o) => !metV2(o))).toEqual([])
    expect(inWindow.length).toBeGreaterThan(300)
    expect(failedIn.length).toBeGreaterThan(0)
    expect(failedIn.length).toBeLessThanOrEqual(Math.ceil(0.2 * 0.2 * inWindow.length * 2.5))
    expect(new Set(failedIn.map((o) => o.error))).toEqual(new Set(['HTTP 500']))

    expect(await shape('cbad')).toEqual({weights: {v1: 100, v2: 0}, instances: ['cbad-v1-0'], deploy: undefined})
    expect(await upstreams('cbad')).toEqual(['cbad-v1-0'])
  })

  test('canary --mirror: a v2 failing every request is analysed on copies of the traffic and rolled back before any caller meets it', async () => {
    const load = backgroundLoad('cmir')
    await sleep(300)
    const {exitCode, record, stderr} = await deployCli(['canary', 'cmir', '--to', 'v2', '--mirror', '--interval', '1s', '--failure-threshold', '1'])
    await load.stop()

    expect(exitCode, stderr).toBe(4)
    expect(summary(record)).toEqual(['start', 'scale-up', 'weights', 'analysis', 'rollback'])
    expect(record.steps[2].message).toBe('a copy of every request goes to v2 (mirrored: its answers are discarded)')
    const [analysis] = record.steps.filter((s) => s.kind === 'analysis').map((s) => s.analysis!)
    expect(analysis.verdict).toBe('fail')
    expect(analysis.requests).toBeGreaterThanOrEqual(20)
    expect(analysis.successRate).toBe(0)
    // Every answer a caller got came from v1: the canary's 500s were discarded.
    expect(load.outcomes.length).toBeGreaterThan(200)
    expect(failures(load.outcomes)).toEqual([])
    expect(await shape('cmir')).toEqual({weights: {v1: 100, v2: 0}, instances: ['cmir-v1-0'], deploy: undefined})
  })

  test('a healthy canary with --load is promoted to 100% and the v1 instances are stopped', async () => {
    const {exitCode, record, stderr} = await deployCli(['canary', 'cgood', '--to', 'v2', '--steps', '50,100', '--interval', '1s', '--max-error-rate', '1%', '--load', '100'])

    expect(exitCode, stderr).toBe(0)
    expect(record.outcome).toBe('promoted')
    expect(summary(record)).toEqual(['load', 'start', 'scale-up', 'weights', 'analysis', 'weights', 'promote'])
    expect(record.steps[0].message).toBe('100 requests/s through the ingress at /cgood (ingress → cgood)')
    const [analysis] = record.steps.filter((s) => s.kind === 'analysis').map((s) => s.analysis!)
    expect(analysis).toMatchObject({verdict: 'pass', successRate: 1})
    // --load 100 at 50%: about 50 canary requests in the interval.
    expect(analysis.requests).toBeGreaterThanOrEqual(20)
    expect(await shape('cgood')).toEqual({weights: {v1: 0, v2: 100}, instances: ['cgood-v2-0'], deploy: undefined})
    expect(await upstreams('cgood')).toEqual(['cgood-v2-0'])
  })

  test('canary --check: an acceptance test against the healthy canary before any traffic; a failing one rolls back (exit 4)', async () => {
    const failed = await deployCli(['canary', 'cchk', '--to', 'v2', '--steps', '100', '--check', 'echo "2 of 40 failing"; exit 3'])
    expect(failed.exitCode, failed.stderr).toBe(4)
    expect(failed.record.outcome).toBe('rolled-back')
    expect(summary(failed.record)).toEqual(['start', 'scale-up', 'rollback'])
    expect(failed.record.steps.at(-1)!.message).toContain('acceptance check failed before any traffic moved: `echo "2 of 40 failing"; exit 3`: exit 3 (2 of 40 failing)')
    expect(await shape('cchk')).toEqual({weights: {v1: 100, v2: 0}, instances: ['cchk-v1-0'], deploy: undefined})

    // $CANARY_URL reaches the canary through its sidecar: the check exits 0 only on a 2xx from it.
    const passed = await deployCli(['canary', 'cchk', '--to', 'v2', '--steps', '100', '--check', 'CALL=CANARY_URL node fixtures/call-dependency.js'])
    expect(passed.exitCode, passed.stderr).toBe(0)
    expect(summary(passed.record)).toEqual(['start', 'scale-up', 'check', 'weights', 'promote'])
    expect(passed.record.steps[2].message).toBe('acceptance check passed: `CALL=CANARY_URL node fixtures/call-dependency.js`: exit 0')
    expect(await shape('cchk')).toEqual({weights: {v1: 0, v2: 100}, instances: ['cchk-v2-1'], deploy: undefined})
  })

  test('canary --load reaches a service the ingress does not route to through the service that calls it', async () => {
    const {exitCode, record, stderr} = await deployCli(['canary', 'cdeep', '--to', 'v2', '--steps', '50,100', '--interval', '1s', '--load', '100'])

    expect(exitCode, stderr).toBe(0)
    expect(record.steps[0]).toMatchObject({kind: 'load', message: '100 requests/s through the ingress at /cfront (ingress → cfront → cdeep)'})
    const [analysis] = record.steps.filter((s) => s.kind === 'analysis').map((s) => s.analysis!)
    // Every call to cfront calls cdeep: at 50% about 50 canary requests in the interval.
    expect(analysis).toMatchObject({verdict: 'pass', successRate: 1})
    expect(analysis.requests).toBeGreaterThanOrEqual(20)
    expect(record.outcome).toBe('promoted')
  })

  test('mesh restart replaces every instance one at a time under 200 requests/s: 0 failed requests, new processes, same version', async () => {
    const before = await status('rst', false)
    const load = backgroundLoad('rst')
    await sleep(300)
    const {exitCode, record, stderr} = await deployCli(['restart', 'rst'])
    await sleep(300)
    await load.stop()

    expect(exitCode, stderr).toBe(0)
    expect(record).toMatchObject({outcome: 'restarted', from: ['v1'], plan: {strategy: 'restart', to: 'v1'}})
    expect(summary(record)).toEqual(['start', 'scale-up', 'scale-down', 'scale-up', 'scale-down', 'done'])
    expect(failures(load.outcomes)).toEqual([])
    expect(load.outcomes.length).toBeGreaterThan(200)
    const after = await status('rst', false)
    expect(after.instances.map((i) => i.instance).sort()).toEqual(['rst-v1-2', 'rst-v1-3'])
    // New runs: a simulated instance's pid is its host's, shared with the instances it replaced.
    const oldRuns = new Set(before.instances.map((i) => i.runId))
    expect(after.instances.every((i) => i.runId !== undefined && !oldRuns.has(i.runId))).toBe(true)
    for (const old of before.instances) expect(await accepts(old.address)).toBe(false)
    expect(after.versions.map((v) => [v.name, Math.round(v.weight)])).toEqual([['v1', 100]])
    expect(await upstreams('rst')).toEqual(['rst-v1-2', 'rst-v1-3'])
  })

  test('a v2 whose instances never get healthy aborts the rollout: v1 serves everything, 0 failed requests', async () => {
    const load = backgroundLoad('broken')
    await sleep(300)
    const {exitCode, record, stderr} = await deployCli(['rollout', 'broken', '--to', 'v2', '--command', 'node -e "process.exit(1)"', '--progress-deadline', '5s'])
    await sleep(300)
    await load.stop()

    expect(exitCode, stderr).toBe(4)
    expect(record.outcome).toBe('rolled-back')
    expect(summary(record)).toEqual(['start', 'rollback'])
    expect(record.steps.at(-1)!.message).toMatch(/broken-v2-0/)
    expect(failures(load.outcomes)).toEqual([])
    expect(await shape('broken')).toEqual({weights: {v1: 100, v2: 0}, instances: ['broken-v1-0'], deploy: undefined})
  })

  test('mesh rollback during blue-green --keep restores blue with 0 failed requests; status shows the deploy while it runs', async () => {
    const load = backgroundLoad('bgrb')
    await sleep(300)
    const started = await deployCli(['rollout', 'bgrb', '--to', 'v2', '--strategy', 'blue-green', '--keep', '60s', '-d'])
    expect(started.exitCode, started.stderr).toBe(0)
    expect(started.record.outcome).toBe('running')

    const inKeep = await eventually(async () => (await control().deployRecord(started.record.id)).steps.some((s) => s.kind === 'keep'), 20_000, 100)
    expect(inKeep).toBe(true)
    const during = await shape('bgrb', true)
    expect(during.deploy).toBe('blue-green → v2 at 100%: keep')
    expect(during.weights).toEqual({v1: 0, v2: 100})
    expect(during.instances).toEqual(['bgrb-v1-0', 'bgrb-v1-1', 'bgrb-v2-0', 'bgrb-v2-1'])
    expect(await upstreams('bgrb')).toEqual(['bgrb-v2-0', 'bgrb-v2-1'])
    // The version not promoted yet says who holds it, in --json and in the text.
    const held = `held by deploy ${started.record.id} (blue-green → v2 at 100%, step 4: keep): not promoted yet`
    expect((await status('bgrb', true)).versions.find((v) => v.name === 'v2')!.heldBack).toBe(held)
    expect((await mesh(dir, ['status'])).stdout).toContain(`bgrb v2: held back — ${held}`)
    await sleep(300)

    const rb = await mesh(dir, ['rollback', 'bgrb', '--json'])
    await sleep(300)
    await load.stop()

    expect(rb.exitCode, rb.stderr).toBe(0)
    const record = JSON.parse(rb.stdout) as DeployRecord
    expect(record.id).toBe(started.record.id)
    expect(record.outcome).toBe('rolled-back')
    expect(summary(record)).toEqual(['start', 'scale-up', 'switch', 'keep', 'rollback'])
    expect(failures(load.outcomes)).toEqual([])
    // Some requests reached green before the rollback, and blue after it.
    expect(load.outcomes.length).toBeGreaterThan(200)
    expect(await shape('bgrb')).toEqual({weights: {v1: 100, v2: 0}, instances: ['bgrb-v1-0', 'bgrb-v1-1'], deploy: undefined})
    expect(await upstreams('bgrb')).toEqual(['bgrb-v1-0', 'bgrb-v1-1'])
    expect((await status('bgrb', false)).versions.find((v) => v.name === 'v2')!.heldBack).toBe(`deploy ${record.id} (blue-green → v2) was rolled back: \`mesh history bgrb\` says why`)
  })

  // Reads the deploys the tests above made (run the file whole).
  test('mesh history lists every deploy with its outcome', async () => {
    const all = JSON.parse((await mesh(dir, ['history', '--json'])).stdout) as DeployRecord[]
    expect(all.map((r) => [r.plan.service, r.plan.strategy, r.from.join(','), r.plan.to, r.outcome])).toEqual([
      ['roll', 'rolling', 'v1', 'v2', 'promoted'],
      ['bg', 'blue-green', 'v1', 'v2', 'promoted'],
      ['cbad', 'canary', 'v1', 'v2', 'rolled-back'],
      ['cmir', 'canary', 'v1', 'v2', 'rolled-back'],
      ['cgood', 'canary', 'v1', 'v2', 'promoted'],
      ['cchk', 'canary', 'v1', 'v2', 'rolled-back'],
      ['cchk', 'canary', 'v1', 'v2', 'promoted'],
      ['cdeep', 'canary', 'v1', 'v2', 'promoted'],
      ['rst', 'restart', 'v1', 'v1', 'restarted'],
      ['broken', 'rolling', 'v1', 'v2', 'rolled-back'],
      ['bgrb', 'blue-green', 'v1', 'v2', 'rolled-back'],
    ])
    const one = await mesh(dir, ['history', 'cbad', '--json'])
    expect(one.exitCode, one.stderr).toBe(0)
    const [cbad] = JSON.parse(one.stdout) as DeployRecord[]
    expect(cbad.steps.filter((s) => s.analysis).map((s) => s.analysis!.verdict)).toEqual(['fail', 'fail'])
    const text = await mesh(dir, ['history', 'cbad'])
    expect(text.stdout).toMatch(/cbad\s+canary\s+v1\s+v2\s+rolled-back/)
  })

  // Runs last: it moves traffic back to mesh.yaml's split.
  test('mesh apply with mesh.yaml unchanged after the deploys: warns for each promoted one and restores its split; no restart asked for', async () => {
    const r = await mesh(dir, ['apply'], {timeoutMs: 60_000})
    expect(r.exitCode, r.stderr).toBe(0)
    const warnings = r.stderr.split('\n').filter((l) => l.includes('warning:'))
    for (const service of ['roll', 'bg', 'cgood']) {
      const w = warnings.find((l) => l.includes(`${service}: deploy `))
      expect(w, r.stderr).toBeDefined()
      expect(w).toContain(`was promoted, but mesh.yaml says v1 100%`)
      expect(w).toContain(`set services.${service}.policy.weights to {v2: 100}`)
    }
    // Rolled back deploys left mesh.yaml's split in place: nothing to warn about.
    for (const service of ['cbad', 'broken', 'bgrb']) expect(r.stderr).not.toContain(`${service}: deploy `)
    // \`broken\`'s v2 came from --command: a deploy's version is not a mesh.yaml edit.
    expect(r.stdout).not.toContain('not applied')
    expect(await shape('cgood')).toMatchObject({weights: {v1: 100, v2: 0}})
    expect((await get(`${base}/cgood`)).status).toBe(200)
  })
})
