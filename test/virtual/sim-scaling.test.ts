// Autoscaling in `mesh sim`: a function's version (the serverless template's shape) scales
// from zero on its first request, after its model's cold start, in virtual time; later
// requests are warm; a while without traffic takes it back to zero; past maxScale with one
// request per instance, requests are throttled (429 TH). The autoscaler and the activator
// are the running mesh's own (scaling/autoscaler.ts, proxy/layers/activator.ts).
import {rmSync} from 'node:fs'
import {describe, expect, test} from 'vitest'
import {parseScenario} from '../../src/sim/faults/chaos-scenario.js'
import type {LoadShape} from '../../src/sim/load/arrival-schedule.js'
import {renderSimReport} from '../../src/cli/sim-report.js'
import {seriesCsv} from '../../src/sim/virtual/series-file.js'
import {stableJson} from '../../src/sim/virtual/stable-json.js'
import {runSimulation} from '../../src/sim/virtual/simulation.js'
import {parsed, yaml} from '../config/helpers.js'
import {mesh, meshDir} from '../helpers/mesh.js'

/** A function behind the ingress: one request per instance, a 50 ms answer, a 400 ms cold start. */
function fn(o: {minScale?: number; maxScale?: number; queue?: number; coldStart?: string; extra?: string[]; policy?: string; top?: string[]; target?: number} = {}) {
  return parsed(
    yaml(
      'name: fn',
      ...(o.top ?? []),
      'ingress:',
      '  port: 8000',
      '  routes: [{prefix: /, service: api}]',
      'services:',
      '  api:',
      `    scaling: {minScale: ${o.minScale ?? 0}, initialScale: ${o.minScale ?? 0}, maxScale: ${o.maxScale ?? 5}, containerConcurrency: 1, target: ${o.target ?? 1}, window: 6s, scaleToZeroGracePeriod: 6s, queue: ${o.queue ?? 20}${(o.extra ?? []).map((e) => `, ${e}`).join('')}}`,
      ...(o.policy ? [`    policy: ${o.policy}`] : []),
      '    simulate:',
      '      latency: {distribution: constant, mean: 50ms}',
      `      coldStart: {p50: ${o.coldStart ?? '400ms'}, p99: ${o.coldStart ?? '400ms'}}`,
    ),
  )
}

/** `rps` for `busyMs`, then nothing for `quietMs`. */
function burstThenQuiet(rps: number, busyMs: number, quietMs: number, arrivals: LoadShape['arrivals'] = 'uniform'): LoadShape {
  return {segments: [{durationMs: busyMs, fromRps: rps, toRps: rps}, {durationMs: quietMs, fromRps: 0, toRps: 0}], arrivals}
}

describe('mesh sim: autoscaling', () => {
  test('from zero: the first request waits for the cold start, later ones are warm, and idle it goes back to zero', async () => {
    const r = await runSimulation(fn(), {shape: burstThenQuiet(2, 5_000, 30_000), seed: 1})
    const [api] = r.services
    expect(api.requests).toBe(10)
    expect(api.successRate).toBe(1)
    // One cold request (400 ms start + 50 ms), nine warm ones (50 ms).
    expect(api.meanMs).toBeCloseTo((450 + 9 * 50) / 10, 6)
    expect(api.p50).toBeLessThan(60)
    // Busy 10 × 50 ms of the 11.6 s its one instance was there (ready at 0.4 s, gone at 12 s), not of the whole run.
    expect(api.utilisation).toBeCloseTo(500 / 11_600, 6)
    expect(r.scaling!.map((e) => [e.atMs, e.from, e.to, e.coldStartMs])).toEqual([
      [400, 0, 1, 400],
      // The stable window (6 s) without traffic and the grace period (6 s) after the last request.
      [12_000, 1, 0, undefined],
    ])
    expect(r.scaling![0].message).toBe('0 → 1: a request is waiting (cold start 400 ms)')
    // Instances at each second's end: one while warm, none after.
    const instances = r.series.map((p) => p.instances)
    expect(instances.slice(0, 12)).toEqual(Array(12).fill(1))
    expect(instances.slice(12)).toEqual(Array(instances.length - 12).fill(0))
  })

  test('a service without scaling: reports no instances column and no scaling list', async () => {
    const config = fn()
    delete config.services[0].versions[0].scaling
    const r = await runSimulation(config, {shape: burstThenQuiet(2, 2_000, 1_000), seed: 1})
    expect(r.scaling).toBeUndefined()
    expect(r.series.every((p) => p.instances === undefined)).toBe(true)
  })

  test('under load it scales up (by the KPA on the held and in-flight requests) and down again, to maxScale at most', async () => {
    // 40 req/s × 50 ms: 2 in flight; target 1 at 70% utilisation asks for 3.
    const r = await runSimulation(fn({maxScale: 10}), {shape: burstThenQuiet(40, 20_000, 30_000, 'poisson'), seed: 2})

    const peak = Math.max(...r.series.map((p) => p.instances ?? 0))
    expect(peak).toBeGreaterThanOrEqual(3)
    expect(peak).toBeLessThanOrEqual(10)
    expect(r.services[0].successRate).toBe(1)
    expect(r.scaling!.some((e) => e.from! > 0 && e.to! > e.from!)).toBe(true)
    expect(r.scaling!.at(-1)!.to).toBe(0)
    expect(r.series.at(-1)!.instances).toBe(0)
  })

  test('past maxScale, with one request per instance and the queue full, requests are throttled: 429 TH', async () => {
    // 100 req/s × 50 ms: 5 in flight, 2 instances may run, nothing may wait.
    const r = await runSimulation(fn({minScale: 2, maxScale: 2, queue: 0}), {shape: burstThenQuiet(100, 5_000, 1_000), seed: 1})
    expect(r.errorsByCause.TH).toBeGreaterThan(100)
    expect(Math.max(...r.series.map((p) => p.instances ?? 0))).toBe(2)
    const [api] = r.services
    // Every admitted one is served; the throttled ones never reach an instance.
    expect(api.actualRequests + r.errorsByCause.TH).toBe(api.requests)
  })

  test('a cold start longer than the activator holds a request: the held requests are answered 503 UH, with why', async () => {
    const r = await runSimulation(fn({coldStart: '2s', extra: ['activatorTimeout: 1s']}), {shape: burstThenQuiet(2, 2_000, 1_000), seed: 1})
    expect(r.errorsByCause.UH).toBeGreaterThan(0)
    expect(r.scaling!.some((e) => e.kind === 'scale-failed' && /did not become ready within 1000 ms/.test(e.message))).toBe(true)
  })

  test('requests that give up while held (a 100 ms timeout, a 400 ms cold start) leave the queue; the start goes on, later ones are warm', async () => {
    const r = await runSimulation(fn({policy: '{timeout: 100ms}'}), {shape: burstThenQuiet(4, 3_000, 15_000), seed: 1})
    const [api] = r.services
    // Those held at zero (the first two: at 0 and 250 ms) time out there, never reaching an instance; the rest find it ready.
    expect(r.errorsByCause.UT).toBe(2)
    expect(api.requests).toBe(12)
    expect(api.actualRequests).toBe(10)
    expect(r.scaling![0]).toMatchObject({from: 0, to: 1, coldStartMs: 400})
    expect(r.scaling!.at(-1)!.to).toBe(0)
  })

  test('deterministic per seed: --json byte-identical twice; another seed differs', async () => {
    const run = async (seed: number) => stableJson(await runSimulation(fn({maxScale: 4}), {shape: burstThenQuiet(60, 10_000, 15_000, 'poisson'), seed}))
    const [a, b, c] = [await run(7), await run(7), await run(8)]
    expect(a).toBe(b)
    expect(c).not.toBe(a)
    expect(a).toContain('"scaling"')
  })

  test('the report shows the instances over time and each scaling decision; the CSV has an instances column', async () => {
    const r = await runSimulation(fn(), {shape: burstThenQuiet(2, 5_000, 30_000), seed: 1})
    const out = renderSimReport(r, {colour: false, width: 100})
    expect(out).toMatch(/Instances \(ready[^\n]*\n  api  [▁-█]+  0 … 1/)
    expect(out).toContain('Scaling\n  400ms  api 0 → 1: a request is waiting (cold start 400 ms)\n  12s  api 1 → 0: stable')
    const csv = seriesCsv(r.series).split('\n')
    expect(csv[0]).toBe('atMs,service,rps,successRate,p99,queueDepth,instances')
    expect(csv[1].endsWith(',1')).toBe(true)
    // Without a scaled service, neither appears.
    const config = fn()
    delete config.services[0].versions[0].scaling
    const plain = await runSimulation(config, {shape: burstThenQuiet(2, 2_000, 1_000), seed: 1})
    expect(renderSimReport(plain, {colour: false, width: 100})).not.toMatch(/Instances|Scaling/)
    expect(seriesCsv(plain.series).split('\n')[0]).toBe('atMs,service,rps,successRate,p99,queueDepth')
  })

  test('mesh sim --json on a function: the same bytes twice, with its scaling events', {timeout: 60_000}, async () => {
    const dir = meshDir(
      yaml(
        'name: fn',
        'ingress: {port: 0, routes: [{prefix: /, service: api}]}',
        'services:',
        '  api:',
        '    command: node fixtures/echo.js',
        '    scaling: {minScale: 0, initialScale: 0, maxScale: 3, containerConcurrency: 1, target: 1, queue: 2}',
        '    simulate: {latency: {p50: 40ms, p99: 120ms}, coldStart: {p50: 300ms, p99: 800ms}}',
      ),
    )
    try {
      const args = ['sim', '--rps', '40', '--duration', '5s', '--arrivals', 'poisson', '--json']
      const [a, b] = await Promise.all([mesh(dir, args), mesh(dir, args)])
      expect(a.exitCode).toBe(0)
      expect(a.stdout).toBe(b.stdout)
      const r = JSON.parse(a.stdout) as {scaling: Array<{from: number; to: number; coldStartMs?: number}>; errorsByCause: Record<string, number>}
      expect(r.scaling[0]).toMatchObject({from: 0, to: 1})
      expect(r.scaling[0].coldStartMs).toBeGreaterThan(0)
      expect(Math.max(...r.scaling.map((e) => e.to))).toBe(3)
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })

  test('a chaos kill of a scaled instance: the autoscaler replaces it (after a cold start), as a ReplicaSet a failed pod', async () => {
    const scenario = parseScenario(
      ['duration: 10s', 'load: {target: ingress, path: /, rps: 5}', 'timeline:', '  - {at: 3s, inject: {service: api, kill: true}}'].join('\n'),
      '/tmp/sim-scaling-kill.yaml',
    ).scenario!
    const r = await runSimulation(fn({minScale: 1}), {shape: scenario.load!.shape, seed: 1, scenario})
    // Killed at 3 s; the tick that same second sees it failed and starts another, ready 400 ms later.
    expect(r.scaling).toEqual([expect.objectContaining({atMs: 3_400, from: 0, to: 1, coldStartMs: 400, message: '0 → 1: replacing api-v1-0 (exited, not restarted) (cold start 400 ms)'})])
    // Meanwhile (minScale 1: not a version at zero, so nothing holds them) the two requests due find no instance.
    expect(r.errorsByCause).toEqual({UH: 2})
    expect(r.series.every((p) => p.instances === 1)).toBe(true)
  })

  test('the account limit (functions.accountConcurrency) is one pool for the run, as the data plane\'s: past it, 429 TH', async () => {
    // 100 req/s × 50 ms: 5 in flight; 20 instances may run, but the account admits 2 at once and nothing may wait.
    const r = await runSimulation(fn({maxScale: 20, queue: 0, top: ['functions: {accountConcurrency: 2}']}), {shape: burstThenQuiet(100, 5_000, 1_000), seed: 1})
    expect(r.errorsByCause.TH).toBeGreaterThan(100)
    expect(r.services[0].actualRequests + r.errorsByCause.TH).toBe(r.services[0].requests)
  })

  test('metric rps: the autoscaler scales on the rate the instances answer', async () => {
    // 40 req/s, a target of 10 req/s at 70%: ceil(40 / 7) = 6.
    const r = await runSimulation(fn({maxScale: 20, target: 10, extra: ['metric: rps']}), {shape: burstThenQuiet(40, 20_000, 1_000), seed: 1})
    const settled = r.series.filter((p) => p.atMs >= 10_000 && p.atMs < 20_000).map((p) => p.instances)
    expect(settled).toEqual(Array(10).fill(6))
  })

  test('a drain waits for what is under way to the instance, the hop to it included: scaling down fails no request', async () => {
    // Each attempt takes 100 ms to reach its instance (--hop-latency): one chosen just before its instance is drained is still answered by it.
    const r = await runSimulation(fn({maxScale: 10}), {shape: burstThenQuiet(40, 20_000, 30_000, 'poisson'), seed: 2, hopLatencyMs: 100})
    expect(r.scaling!.filter((e) => e.to! < e.from!).length).toBeGreaterThan(1)
    // Only the activator's throttles of the first burst (before the instances were up): no attempt met an instance gone.
    expect(Object.keys(r.errorsByCause)).toEqual(['TH'])
    expect(r.series.filter((p) => p.atMs >= 3_000).every((p) => p.successRate === 1)).toBe(true)
  })
})
