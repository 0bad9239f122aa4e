// The retry-storm template (issue #24, item 7): a 20 s slowdown of db, the leaf of
// gateway → api → svc → db, with retries at every layer. Without a retry budget the mesh stays
// collapsed after the slowdown ends (a metastable failure); with Linkerd's budget it recovers;
// at half the load it recovers without one. Nothing here is scripted: the collapse comes from
// the data plane's own retry, timeout and budget layers over the instance models, and from
// what a real server does with a request whose caller has gone (checked first).
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {afterAll, describe, expect, test} from 'vitest'
import {loadConfig, parseConfig} from '../../src/sim/config/load-config.js'
import type {MeshConfig} from '../../src/sim/config/types.js'
import {type ChaosScenario, parseScenario} from '../../src/sim/faults/chaos-scenario.js'
import {Cancellation} from '../../src/sim/proxy/cancellation.js'
import type {MeshResponse, Reply} from '../../src/sim/proxy/stack.js'
import {writeTemplate} from '../../src/sim/templates/templates.js'
import type {SimResult} from '../../src/sim/virtual/sim-result.js'
import {runSimulation, simulatedMesh} from '../../src/sim/virtual/simulation.js'
import {mesh, ROOT} from '../helpers/mesh.js'

const TEMPLATE = path.join(ROOT, 'templates/retry-storm')
const RATE = 30

async function scenario(config: MeshConfig, name: string): Promise<ChaosScenario> {
  const file = path.join(TEMPLATE, 'scenarios', name)
  const known = Object.fromEntries(config.services.map((s) => [s.name, s.versions.map((v) => v.name)]))
  const parsed = parseScenario(readFileSync(file, 'utf8'), file, known)
  expect(parsed.issues).toEqual([])
  return parsed.scenario!
}

async function simulate(meshFile: string, scenarioFile: string): Promise<SimResult> {
  const config = await loadConfig(path.join(TEMPLATE, meshFile))
  const s = await scenario(config, scenarioFile)
  return runSimulation(config, {shape: s.load!.shape, seed: 1, scenario: s})
}

/** Goodput: ingress requests answered with success per second of virtual time, over [fromS, toS). */
function goodput(r: SimResult, fromS: number, toS: number): number {
  const steps = r.series.filter((p) => p.service === 'gateway' && p.atMs >= fromS * 1000 && p.atMs < toS * 1000)
  return steps.reduce((n, p) => n + p.rps * p.successRate, 0) / steps.length
}

const BEFORE: [number, number] = [0, 20]
const DURING: [number, number] = [20, 40]
/** Well after: the slowdown ended at 40 s. */
const AFTER: [number, number] = [60, 90]

describe('what the storm rests on: an instance and a caller that gives up', () => {
  const config = parseConfig(
    ['name: abandon', 'services:', '  db:', '    simulate: {latency: 100ms, concurrency: 1}'].join('\n'),
    '/tmp/abandon/mesh.yaml',
    {},
  ).config!

  test('work whose caller left keeps its slot to the end (as a real server); a queued one gives its place up', async () => {
    const sim = simulatedMesh(config, 1)
    const station = [...sim.instances.values()][0].station
    const answered: Record<string, number> = {}
    const send = (name: string) => {
      const cancellation = new Cancellation()
      const reply: Reply = {
        ok: (response: MeshResponse) => {
          response.body?.discard()
          answered[name] = sim.clock.now()
        },
        fail: () => {
          answered[name] = -sim.clock.now()
        },
      }
      sim.send('/', reply, {service: 'db', cancellation})
      return cancellation
    }
    const working = send('working')
    send('next')
    const queued = send('queued')
    sim.clock.setTimer(10, () => {
      working.abort(new Error('the caller gave up'))
      queued.abort(new Error('the caller gave up'))
    })
    await sim.clock.run(() => Object.keys(answered).length === 3 && sim.clock.nextDue() === undefined)
    sim.close()
    // Both callers were told at once that their requests ended.
    expect(answered.working).toBe(-10)
    expect(answered.queued).toBe(-10)
    // The abandoned work went on to its 100 ms: "next" got the slot only then.
    expect(answered.next).toBe(200)
    expect(station.totals).toMatchObject({arrived: 3, started: 2, finished: 2, departed: 3, servedMs: 200})
  })
})

describe('the retry-storm template', () => {
  const dirs: string[] = []
  afterAll(() => {
    for (const d of dirs) rmSync(d, {recursive: true, force: true})
  })

  test('budgets.yaml is mesh.yaml with Linkerd’s retry budgets and nothing else changed', async () => {
    const [storm, budgets] = await Promise.all([loadConfig(path.join(TEMPLATE, 'mesh.yaml')), loadConfig(path.join(TEMPLATE, 'budgets.yaml'))])
    for (const s of storm.services) expect(s.policy.retries?.budget).toEqual({ratio: 1, minPerSecond: 1_000_000})
    for (const s of budgets.services) expect(s.policy.retries?.budget).toEqual({ratio: 0.2, minPerSecond: 10})
    for (const s of budgets.services) s.policy.retries!.budget = {ratio: 1, minPerSecond: 1_000_000}
    expect(budgets.services).toEqual(storm.services)
  })

  test(
    'without a budget: goodput collapses in the slowdown and stays collapsed after it; the scenario fails (exit 4)',
    {timeout: 90_000},
    async () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'meshsim-storm-'))
      dirs.push(dir)
      expect(await writeTemplate('retry-storm', dir)).toEqual(['budgets.yaml', 'mesh.yaml', 'scenarios/light-load.yaml', 'scenarios/slowdown.yaml'])
      const run = await mesh(dir, ['sim', '--scenario', 'scenarios/slowdown.yaml', '--json'], {timeoutMs: 80_000})
      expect(run.exitCode, run.stderr).toBe(4)
      const r = JSON.parse(run.stdout) as SimResult
      expect(r.expectations!.map((e) => [e.phase, e.passed])).toEqual([
        [1, true],
        [4, false],
      ])
      const before = goodput(r, ...BEFORE)
      expect(before).toBeGreaterThan(RATE * 0.9)
      expect(goodput(r, ...DURING)).toBeLessThan(before * 0.1)
      expect(goodput(r, ...AFTER)).toBeLessThan(before * 0.2)
      // Why: db's queue never empties after the slowdown, fed by retries from every layer…
      const db = r.series.filter((p) => p.service === 'db' && p.atMs >= 45_000)
      expect(db.every((p) => p.queueDepth > 0)).toBe(true)
      expect(r.unstable.map((u) => u.service)).toEqual(['db'])
      // …and its instances are busy with attempts whose callers have given up (few of db's answers count).
      const dbStats = r.services.find((s) => s.service === 'db')!
      expect(dbStats.actualRequests).toBeGreaterThan(10 * r.ingressRequests)
      expect(dbStats.successRate).toBeLessThan(0.5)
    },
  )

  test('with Linkerd’s budgets the same slowdown ends when db recovers', {timeout: 60_000}, async () => {
    const r = await simulate('budgets.yaml', 'slowdown.yaml')
    expect(r.expectations!.every((e) => e.passed)).toBe(true)
    const before = goodput(r, ...BEFORE)
    expect(before).toBeGreaterThan(RATE * 0.9)
    expect(goodput(r, ...DURING)).toBeLessThan(before * 0.1)
    expect(goodput(r, ...AFTER)).toBeGreaterThanOrEqual(before * 0.9)
    // The budgets refused retries: that, and nothing else, is the difference from mesh.yaml.
    expect(r.services.reduce((n, s) => n + s.retriesBudgetDenied, 0)).toBeGreaterThan(0)
    expect(r.unstable).toEqual([])
  })

  test('at half the load the mesh recovers without a budget: the failure is metastable only above some load', {timeout: 60_000}, async () => {
    const r = await simulate('mesh.yaml', 'light-load.yaml')
    expect(r.expectations!.every((e) => e.passed)).toBe(true)
    const before = goodput(r, ...BEFORE)
    expect(goodput(r, ...AFTER)).toBeGreaterThanOrEqual(before * 0.9)
    // It did storm: no budget refused anything, and db's queue filled after the slowdown before draining.
    expect(r.services.every((s) => s.retriesBudgetDenied === 0)).toBe(true)
    expect(r.series.some((p) => p.service === 'db' && p.atMs >= 40_000 && p.queueDepth > 0)).toBe(true)
    expect(r.series.filter((p) => p.service === 'db' && p.atMs >= 70_000).every((p) => p.successRate === 1)).toBe(true)
  })
})
