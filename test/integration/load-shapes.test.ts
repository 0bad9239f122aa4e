// `mesh load` with a shape against a real mesh: a ramp, and a burst after idle with Poisson
// arrivals, each reporting in --json exactly the requests its schedule asked for (the
// Poisson run's count comes from its seed, replayed here through the same schedule). An
// overloaded run (a slow service, a small in-flight cap) stays open loop: what is due at the
// cap is dropped and reported, nothing goes out after the schedule's end.
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import {ArrivalSchedule, type LoadShape, shapeOf} from '../../src/sim/load/arrival-schedule.js'
import type {LoadResult} from '../../src/sim/load/load-generator.js'
import {SeededRandom} from '../../src/sim/time/random.js'
import {downMesh, json, mesh, upMesh} from '../helpers/mesh.js'

const yaml = (port: number) => `
name: load-shapes
ingress:
  port: ${port}
  routes: [{prefix: /items, service: items}, {prefix: /slow, service: slow}]
services:
  items:
    simulate: {latency: 2ms, seed: 1}
  slow:
    simulate: {latency: 1s}
`

function scheduled(shape: LoadShape, seed: number): number {
  const schedule = new ArrivalSchedule(shape, new SeededRandom(seed))
  while (schedule.next() !== undefined);
  return schedule.issued
}

describe('mesh load with arrival patterns', () => {
  let dir = ''
  beforeAll(async () => {
    ;({dir} = await upMesh(yaml))
  })
  afterAll(async () => {
    if (dir) await downMesh(dir)
  })

  test('a uniform ramp 0→100/s over 2s sends the area under it: 100 requests', async () => {
    const r = json<LoadResult>(await mesh(dir, ['load', 'items', '--ramp', '0:100/2s', '--json']))
    expect(r).toMatchObject({requests: 100, sent: 100, statuses: {'200': 100}, errors: {}, arrivals: 'uniform', aborted: false})
    expect(r.durationMs).toBeGreaterThan(1700)
  }, 30_000)

  test('poisson arrivals over idle, a ramp and a burst: the count its seed gives, all answered', async () => {
    const shape = shapeOf({afterMs: 500, ramps: ['0:60/2s'], rps: 60, durationMs: 1000, arrivals: 'poisson'}) as LoadShape
    const expected = scheduled(shape, 42)
    expect(expected).toBeGreaterThan(80) // 120 on average
    expect(expected).toBeLessThan(300)
    const r = json<LoadResult>(
      await mesh(dir, ['load', 'items', '--after', '500ms', '--ramp', '0:60/2s', '--rps', '60', '--for', '1s', '--arrivals', 'poisson', '--seed', '42', '--json']),
    )
    expect(r).toMatchObject({requests: expected, sent: expected, statuses: {'200': expected}, errors: {}, arrivals: 'poisson', seed: 42})
    // Nothing is due in the idle half second, and the last arrival is near the end of 3.5 s.
    expect(r.durationMs).toBeGreaterThan(2500)
  }, 30_000)

  test('a slow service at a small in-flight cap: requests due at the cap are dropped and reported, none sent after the run', async () => {
    const r = json<LoadResult>(await mesh(dir, ['load', 'slow', '--rps', '20', '--duration', '2s', '--concurrency', '4', '--json']))
    // 40 due over 2 s; 4 at a time of 1 s each: about 8 sent, the rest dropped (a queue sent all 40, 10 s long).
    expect(r.sent + r.dropped).toBe(40)
    expect(r.dropped).toBeGreaterThanOrEqual(28)
    expect(r).toMatchObject({requests: r.sent, concurrency: 4, errors: {}})
    // The last one due at 1.95 s answered a second later: the run ends with its schedule, not 10 s on.
    expect(r.durationMs).toBeLessThan(4000)
    expect(r.latency.p50).toBeLessThan(1500)
    const text = await mesh(dir, ['load', 'slow', '--rps', '10', '--duration', '1s', '--concurrency', '2'])
    expect(text.exitCode, text.stderr).toBe(0)
    expect(text.stdout).toMatch(/^dropped {5}\d+ due while 2 were in flight, not sent/m)
  }, 30_000)

  test('bad shapes are refused before anything is sent, exit 2', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--ramp', '200'], /--ramp "200" is not a ramp: write FROM:TO\/DURATION, e\.g\. 0:200\/30s/],
      [['--rps=-5', '--duration', '1s'], /--rps "-5" is not a positive number/],
      [['--ramp', '0:-5/1s'], /--ramp "0:-5\/1s": rate "-5" is not a number of requests per second ≥ 0/],
      [['--rps', '10'], /--rps 10 needs --duration \(or --for\)/],
    ]
    for (const [args, message] of cases) {
      const r = await mesh(dir, ['load', 'items', ...args])
      expect(r.exitCode, `${args.join(' ')}: ${r.stderr}`).toBe(2)
      expect(r.stderr).toMatch(message)
    }
  }, 30_000)
})
