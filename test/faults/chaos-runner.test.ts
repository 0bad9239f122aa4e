// Chaos scenarios: the file's checks (with line:column), and the runner on a
// VirtualClock with a fake control client and the real load generator sending
// to a fake mesh that honours the faults the client holds.
import {describe, expect, test} from 'vitest'
import {parseScenario, phaseStarts} from '../../src/sim/faults/chaos-scenario.js'
import {type ChaosClient, phaseOf, runChaos, summarize} from '../../src/sim/faults/chaos-runner.js'
import {renderChaosReport} from '../../src/commands/chaos.js'
import type {FaultInfo, FaultSpec} from '../../src/sim/faults/fault.js'
import {runLoad, type SendFn} from '../../src/sim/load/load-generator.js'
import {VirtualClock} from '../../src/sim/time/clock.js'

/** A control client that keeps faults in a list and records when each call happened. */
function fakeClient(clock: VirtualClock, options: {refuse?: (spec: FaultSpec) => string | undefined} = {}) {
  const active: FaultInfo[] = []
  const calls: Array<{at: number; call: string}> = []
  let next = 1
  const client: ChaosClient = {
    async injectFault(spec) {
      calls.push({at: clock.now(), call: `inject ${spec.service} ${spec.kind}`})
      const refused = options.refuse?.(spec)
      if (refused) throw new Error(refused)
      const info: FaultInfo = {...spec, id: `f${next++}`, seen: 0, hits: 0, createdAt: ''}
      if (spec.kind === 'kill') return {...info, instances: [`${spec.service}-v1-0`]}
      active.push(info)
      return info
    },
    async clearFaults(sel) {
      calls.push({at: clock.now(), call: `clear ${sel.id ?? sel.service ?? 'all'}`})
      const gone = active.filter((f) => (!sel.id || f.id === sel.id) && (!sel.service || f.service === sel.service))
      for (const f of gone) active.splice(active.indexOf(f), 1)
      return gone
    },
  }
  return {client, active, calls}
}

/** A mesh answering in 10 ms, or as its faults say (abort → the status with FI; delay → that much longer). */
function fakeMesh(clock: VirtualClock, active: FaultInfo[]): SendFn {
  return async (_req, signal) => {
    const abort = active.find((f) => f.kind === 'abort')
    if (abort) return {status: abort.status ?? 503, responseFlags: 'FI'}
    const delay = active.find((f) => f.kind === 'delay')
    await clock.sleep(10 + (delay?.delayMs ?? 0), signal)
    return {status: 200}
  }
}

const SCENARIO = `
duration: 30s
load: {target: ingress, path: /, rps: 20}
timeline:
  - at: 10s
    name: slow
    inject: {service: payments, delay: 500ms}
  - at: 20s
    clear: slow
  - at: 20s
    name: broken
    inject: {service: payments, abort: 503, percent: 100}
expect:
  - successRate >= 99%
  - {phase: 1, successRate: ">= 99%"}
  - {phase: 2, p99: <= 800ms}
  - {phase: broken, expect: errorRate >= 99%}
  - {phase: 1, p50: < 100ms}
  - requests == 600
`

function scenario(text = SCENARIO) {
  const {scenario, issues} = parseScenario(text, '/tmp/chaos.yaml')
  expect(issues).toEqual([])
  return scenario!
}

async function play(text = SCENARIO, options: {refuse?: (spec: FaultSpec) => string | undefined} = {}) {
  const clock = new VirtualClock()
  const fake = fakeClient(clock, options)
  const s = scenario(text)
  const report = runChaos(s, {
    client: fake.client,
    clock,
    target: {origin: 'http://mesh', path: '/'},
    load: (o) => runLoad({...o, send: fakeMesh(clock, fake.active)}),
  })
  await clock.runAll()
  return {report: await report, ...fake, clock}
}

describe('chaos runner', () => {
  test('plays each step at its time and clears what it injected at the end', async () => {
    const {report, calls, active} = await play()
    expect(calls).toEqual([
      {at: 10_000, call: 'inject payments delay'},
      {at: 20_000, call: 'clear f1'},
      {at: 20_000, call: 'inject payments abort'},
      {at: 30_000, call: 'clear f1'},
      {at: 30_000, call: 'clear f2'},
    ])
    expect(active).toEqual([])
    expect(report.steps.map((s) => [s.atMs, s.action, s.ok, s.faultId ?? s.removed])).toEqual([
      [10_000, 'inject', true, 'f1'],
      [20_000, 'clear', true, ['f1']],
      [20_000, 'inject', true, 'f2'],
    ])
  })

  test("requests the load could not send (due at its in-flight cap) are reported as dropped, not hidden", async () => {
    const {report} = await play(SCENARIO.replace('rps: 20}', 'rps: 20, concurrency: 4}'))
    // The slow phase needs ~10 in flight at 20/s: at 4, about half of its 200 were never sent.
    expect(report.dropped).toBeGreaterThan(50)
    expect(report.sent + report.dropped).toBe(600)
    expect(renderChaosReport(report, false)).toContain(`${report.dropped} were due while the load's ${4} in flight (load.concurrency) were under way, and were not sent`)
    const {report: clean} = await play()
    expect(clean.dropped).toBe(0)
    expect(renderChaosReport(clean, false)).not.toContain('not sent')
  })

  test('splits requests into phases by when they were due; the counts add up to the requests sent', async () => {
    const {report} = await play()
    expect(report.phases.map((p) => [p.index, p.startMs, p.endMs, p.label, p.requests])).toEqual([
      [1, 0, 10_000, 'start', 200],
      [2, 10_000, 20_000, 'slow', 200],
      [3, 20_000, 30_000, 'clear slow + broken', 200],
    ])
    expect([report.sent, report.completed, report.overall.requests, report.transition]).toEqual([600, 600, 600, 0])
    expect(report.phases[0]).toMatchObject({errors: 0, successRate: 1, errorsByCause: {}, statuses: {200: 200}})
    // Exact, not within LatencyHistogram's 1/128: every request of a phase took as long, and percentiles are clamped to the observed min..max.
    expect(report.phases[0].latency.p50).toBe(10)
    expect(report.phases[1].latency.p50).toBe(510)
    expect(report.phases[2]).toMatchObject({errors: 200, successRate: 0, errorsByCause: {FI: 200}, statuses: {503: 200}})
    expect(report.overall.errorsByCause).toEqual({FI: 200})
  })

  test('judges each expectation on its phase, and fails the run when one does not hold', async () => {
    const {report} = await play()
    expect(report.expectations.map((e) => [e.text, e.phase, e.held, e.reason])).toEqual([
      ['successRate >= 99%', 'overall', false, 'successRate was 66.67%'],
      ['successRate >= 99%', 1, true, undefined],
      ['p99 <= 800ms', 2, true, undefined],
      ['errorRate >= 99%', 3, true, undefined],
      ['p50 < 100ms', 1, true, undefined],
      ['requests == 600', 'overall', true, undefined],
    ])
    expect([report.stepsOk, report.passed]).toEqual([true, false])
  })

  test('every expectation holding passes; the same scenario twice gives the same report', async () => {
    const text = SCENARIO.replace('  - successRate >= 99%\n', '')
    const a = await play(text)
    const b = await play(text)
    expect(a.report.passed).toBe(true)
    expect(b.report).toEqual(a.report)
  })

  test('a step the mesh refuses is reported, the rest still plays, and the run does not pass', async () => {
    const text = `
duration: 5s
load: {rps: 10}
timeline:
  - {at: 1s, inject: {service: cart, kill: 1}}
  - {at: 2s, inject: {service: payments, abort: 503}}
expect: [requests >= 1]
`
    const {report} = await play(text, {refuse: (s) => (s.kind === 'kill' ? 'no running instance of "cart" to kill.' : undefined)})
    expect(report.steps.map((s) => [s.ok, s.error])).toEqual([
      [false, 'no running instance of "cart" to kill.'],
      [true, undefined],
    ])
    expect(report.expectations.every((e) => e.held)).toBe(true)
    expect([report.stepsOk, report.passed]).toEqual([false, false])
  })

  test('without load, the timeline plays for the whole duration; kill reports its instances', async () => {
    const clock = new VirtualClock()
    const fake = fakeClient(clock)
    const s = scenario('duration: 8s\ntimeline:\n  - {at: 7s, inject: {service: cart, kill: 1}}\n')
    const done = runChaos(s, {client: fake.client, clock})
    await clock.runAll()
    const report = await done
    expect(clock.now()).toBe(8000)
    expect(report.steps[0]).toMatchObject({atMs: 7000, ok: true, instances: ['cart-v1-0'], description: 'kill 1 on cart'})
    expect([report.sent, report.phases.length, report.passed]).toEqual([0, 2, true])
  })

  test('a phase begins when its step took effect: requests due while the control call was on its way count before it', async () => {
    const clock = new VirtualClock()
    const fake = fakeClient(clock)
    const slow: ChaosClient = {
      injectFault: async (spec) => {
        await clock.sleep(250)
        return fake.client.injectFault(spec)
      },
      clearFaults: (sel) => fake.client.clearFaults(sel),
    }
    const s = scenario('duration: 2s\nload: {rps: 10}\ntimeline: [{at: 1s, inject: {service: a, abort: 503}}]\n')
    const done = runChaos(s, {client: slow, clock, target: {origin: 'http://mesh', path: '/'}, load: (o) => runLoad({...o, send: fakeMesh(clock, fake.active)})})
    await clock.runAll()
    const report = await done
    expect(report.steps[0]).toMatchObject({atMs: 1000, doneAtMs: 1250})
    expect(report.phases.map((p) => [p.startMs, p.endMs, p.requests, p.errors])).toEqual([
      [0, 1000, 10, 0],
      [1250, 2000, 7, 7],
    ])
    // Due at 1000, 1100, 1200 ms: the mesh was mid-change. They count in the whole run only.
    expect([report.transition, report.overall.requests]).toEqual([3, 20])
  })

  test('an expectation on a phase with no requests fails and says why', async () => {
    const {report} = await play(`
duration: 1s
load: {rps: 2}
timeline: [{at: 900ms, inject: {service: a, delay: 1ms}}]
expect: [{phase: 2, p99: <= 1s}]
`)
    expect(report.expectations[0]).toMatchObject({held: false, reason: 'no request completed in phase 2, so p99 was not measured'})
  })

  test('helpers: phases start at 0 and each distinct step time', () => {
    expect(phaseStarts([{atMs: 0}, {atMs: 5}, {atMs: 5}, {atMs: 50}], 50)).toEqual([0, 5])
    const starts = [0, 5, 9]
    const ends = [5, 9, 20]
    expect([4.9, 5, 100].map((ms) => phaseOf(starts, ends, ms))).toEqual([0, 1, 2])
    expect(phaseOf([0, 6], [5, 20], 5.5)).toBe(-1)
  })

  test('phase percentiles are nearest rank within 1/128 (LatencyHistogram); max and mean exact; zeros when empty', () => {
    const outcome = (latencyMs: number) => ({index: 0, intendedMs: 0, sentMs: 0, endMs: latencyMs, latencyMs, status: 200})
    const {latency} = summarize(1, 'start', 0, 1000, Array.from({length: 100}, (_, i) => outcome(100 - i)))
    for (const [got, rank] of [[latency.p50, 50], [latency.p90, 90], [latency.p95, 95], [latency.p99, 99]]) expect(Math.abs(got - rank) / rank).toBeLessThanOrEqual(1 / 128)
    expect([latency.max, latency.mean]).toEqual([100, 50.5])
    expect(summarize(1, 'start', 0, 1000, []).latency).toEqual({p50: 0, p75: 0, p90: 0, p95: 0, p99: 0, p999: 0, max: 0, mean: 0})
  })
})

describe('chaos scenario file', () => {
  test('every problem with its line:column and path', () => {
    const {scenario, issues} = parseScenario(
      `duration: 10s
load: {rps: fast}
timeline:
  - at: 12s
    inject: {service: payments, delay: soon}
  - at: 1s
    clear: nobody
  - at: 2s
expect:
  - successRate >= lots
  - {phase: 9, p99: <= 1s}
`,
      '/tmp/s.yaml',
    )
    expect(scenario).toBeUndefined()
    expect(issues.map((i) => `${i.line}:${i.column} ${i.path}: ${i.message}`)).toEqual([
      '2:13 load.rps: expected a positive number of requests per second, got "fast"',
      '4:9 timeline[0].at: "12s" is not before the end of the run (duration "10s")',
      '5:40 timeline[0].inject.delay: expected a positive duration such as 300ms or 2s, got "soon"',
      '7:12 timeline[1].clear: no earlier step is named "nobody"; write clear: {service: NAME} or clear: all',
      '8:5 timeline[2]: a step either injects a fault (inject: {…}) or clears faults (clear: NAME | {service: NAME} | all)',
      '10:5 expect[0]: successRate compares with a percentage such as 99% (or a ratio 0..1), got "lots"',
      // Steps with problems start no phase: there is one.
      '11:13 expect[1].phase: expected a phase from 1 to 1, a step\'s name, or overall; got 9 (phases start at 0s)',
    ])
  })

  test('a duration without its unit is refused, naming the units', () => {
    const {issues} = parseScenario('duration: 40\ntimeline:\n  - {at: 10, inject: {service: payments, abort: 503}}\n', '/tmp/s.yaml')
    expect(issues.map((i) => `${i.path}: ${i.message}`)).toEqual([
      'duration: expected a positive duration such as 40s, got 40 (a duration needs a unit: ms, s, m or h; did you mean 40ms or 40s?)',
      'timeline[0].at: expected a duration from the start such as 10s, got 10 (a duration needs a unit: ms, s, m or h; did you mean 10ms or 10s?)',
    ])
  })

  test('names are checked against the mesh when it is known; expectations need load', () => {
    const {issues} = parseScenario('duration: 5s\ntimeline:\n  - {at: 1s, inject: {service: paymnts, abort: 503}}\nexpect: [requests >= 1]\n', '/tmp/s.yaml', {payments: ['v1']})
    expect(issues.map((i) => i.message)).toEqual([
      'service "paymnts" is not in the mesh; did you mean "payments"? (known: payments)',
      'expectations need load: to measure (add load: {target: ingress, rps: 50})',
    ])
    const clear = parseScenario('duration: 5s\ntimeline:\n  - {at: 1s, clear: {service: pyaments}}\n', '/tmp/s.yaml', {payments: ['v1']})
    expect(clear.issues.map((i) => `${i.path}: ${i.message}`)).toEqual(['timeline[0].clear.service: service "pyaments" is not in the mesh; did you mean "payments"? (known: payments)'])
  })

  test('a value starting with > is not YAML: the message says how to write it', () => {
    const {issues} = parseScenario('duration: 5s\nload: {rps: 1}\nexpect:\n  - {phase: 1, successRate: >= 99%}\n', '/tmp/s.yaml')
    expect(issues[0].message).toMatch(/quote a value that starts with > \(">= 99%"\), or write \{phase: 2, expect: successRate >= 99%\}/)
  })

  test('defaults: load target ingress, GET, a 10 s request timeout; steps in time order', () => {
    const s = scenario('duration: 5s\nload: {rps: 5}\ntimeline:\n  - {at: 3s, clear: all}\n  - {at: 1s, inject: {service: a, abort: 500}}\n')
    expect(s.load).toEqual({
      target: 'ingress',
      path: undefined,
      rps: 5,
      shape: {segments: [{durationMs: 5000, fromRps: 5, toRps: 5}], arrivals: 'uniform'},
      seed: undefined,
      method: 'GET',
      headers: {},
      timeoutMs: 10_000,
      concurrency: undefined,
    })
    expect(s.timeline.map((t) => [t.atMs, t.action])).toEqual([
      [1000, 'inject'],
      [3000, 'clear'],
    ])
    expect(s.phaseStarts).toEqual([0, 1000, 3000])
  })

  test('a load shape: idle after, the ramps, then rps to the end of the run; poisson with its seed', () => {
    const s = scenario('duration: 10s\nload: {after: 2s, ramp: 0:100/4s, rps: 100, arrivals: poisson, seed: 9}\n')
    expect(s.load).toMatchObject({
      rps: 100,
      seed: 9,
      shape: {
        segments: [
          {durationMs: 2000, fromRps: 0, toRps: 0},
          {durationMs: 4000, fromRps: 0, toRps: 100},
          {durationMs: 4000, fromRps: 100, toRps: 100},
        ],
        arrivals: 'poisson',
      },
    })
    // A ramp alone: the load ends with it, the run goes on to its duration.
    expect(scenario('duration: 10s\nload: {ramp: [0:50/2s, 50:0/2s]}\n').load!.shape.segments).toEqual([
      {durationMs: 2000, fromRps: 0, toRps: 50},
      {durationMs: 2000, fromRps: 50, toRps: 0},
    ])
  })

  test('a bad load shape: each problem at its key', () => {
    const {issues} = parseScenario(
      `duration: 10s
load:
  ramp: [0:100/4s, 200]
  arrivals: gamma
  seed: 1.5
`,
      '/tmp/s.yaml',
    )
    expect(issues.map((i) => `${i.line}:${i.column} ${i.path}: ${i.message}`)).toEqual([
      '3:20 load.ramp[1]: "200" is not a ramp: write FROM:TO/DURATION, e.g. 0:200/30s (0 to 200 requests/s over 30 s)',
      '5:9 load.seed: expected a whole number, got 1.5',
    ])
    const arrivals = parseScenario('duration: 10s\nload: {rps: 5, arrivals: gamma}\n', '/tmp/s.yaml').issues
    expect(arrivals.map((i) => `${i.path}: ${i.message}`)).toEqual(['load.arrivals: expected uniform or poisson, got "gamma"'])
    const long = parseScenario('duration: 10s\nload: {after: 5s, ramp: 0:10/5s, rps: 5}\n', '/tmp/s.yaml').issues
    expect(long.map((i) => `${i.path}: ${i.message}`)).toEqual(['load: after and ramp take 10s, leaving no time for rps in a run of 10s'])
    const none = parseScenario('duration: 10s\nload: {target: ingress}\n', '/tmp/s.yaml').issues
    expect(none.map((i) => i.message)).toEqual(['load needs rps: (requests per second) or ramp: (FROM:TO/DURATION, e.g. 0:200/30s)'])
  })
})

describe('a burst after idle in a chaos run', () => {
  test('no request in the idle phase; the burst lands in the phase it was due in', async () => {
    const {report} = await play(`
duration: 4s
load: {after: 2s, rps: 20}
timeline: [{at: 2s, inject: {service: a, delay: 1ms}}]
`)
    expect(report.phases.map((p) => [p.startMs, p.requests])).toEqual([
      [0, 0],
      [2000, 40],
    ])
    expect(report.overall.requests).toBe(40)
  })
})
