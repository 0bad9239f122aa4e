import {describe, expect, it} from 'vitest'
import {
  type LoadProgress,
  plannedRequests,
  type RequestOutcome,
  runLoad,
  type SendFn,
} from '../../src/sim/load/load-generator.js'
import {VirtualClock} from '../../src/sim/time/clock.js'

/** A fake server on the virtual clock: answers after `latency(now)` ms and records what it saw. */
function fakeServer(clock: VirtualClock, latency: (sentAt: number) => number, answer: (n: number) => {status: number; responseFlags?: string} = () => ({status: 200})) {
  const sentAt: number[] = []
  let inFlight = 0
  let maxInFlight = 0
  const send: SendFn = async (_req, signal) => {
    const n = sentAt.length
    sentAt.push(clock.now())
    inFlight++
    maxInFlight = Math.max(maxInFlight, inFlight)
    try {
      await clock.sleep(latency(clock.now()), signal)
      return answer(n)
    } finally {
      inFlight--
    }
  }
  return {send, sentAt, maxInFlight: () => maxInFlight}
}

describe('runLoad (open loop, virtual clock)', () => {
  it('schedules exactly 1000 requests at 200 rps × 5 s, each at t0 + i/rps', async () => {
    const clock = new VirtualClock(1000)
    const server = fakeServer(clock, () => 5)
    const run = runLoad({rps: 200, durationMs: 5000, clock, send: server.send})
    await clock.advance(6000)
    const result = await run
    expect(plannedRequests(200, 5000)).toBe(1000)
    expect(server.sentAt).toHaveLength(1000)
    expect(server.sentAt).toEqual(Array.from({length: 1000}, (_, i) => 1000 + i * 5))
    expect(result).toMatchObject({requests: 1000, sent: 1000, statuses: {'200': 1000}, errors: {}, successRate: 1, aborted: false})
    expect(result.latency.p50).toBeCloseTo(5, 1)
    expect(result.latency.max).toBeCloseTo(5, 1)
    expect(result.durationMs).toBe(5000) // last due at 4995, answered 5 ms later
    expect(result.throughputRps).toBeCloseTo(200, 5)
  })

  it('measures from the intended send time, so a 1 s stall shows in every request due during it', async () => {
    const clock = new VirtualClock()
    // the server freezes from t=1000 to t=2000: anything sent then is answered at 2000 at the earliest
    const server = fakeServer(clock, (t) => (t >= 1000 && t < 2000 ? 2000 - t + 5 : 5))
    const outcomes: RequestOutcome[] = []
    const run = runLoad({rps: 100, durationMs: 3000, concurrency: 200, clock, send: server.send, onResponse: (o) => outcomes.push(o)})
    await clock.advance(5000)
    const result = await run
    expect(result).toMatchObject({requests: 300, dropped: 0})
    const stalled = outcomes.filter((o) => o.intendedMs >= 1000 && o.intendedMs < 2000)
    expect(stalled).toHaveLength(100)
    for (const o of stalled) expect(o.latencyMs).toBeGreaterThanOrEqual(2000 - o.intendedMs)
    // Each went out on time: the sender never waited for the stalled server.
    for (const o of outcomes) expect(o.sentMs).toBe(o.intendedMs)
    expect(result.latency.max).toBeGreaterThanOrEqual(1000)
    expect(result.latency.p90).toBeGreaterThan(500)
    expect(result.latency.p50).toBeLessThan(50)
  })

  it('summarises latency as nearest rank within 1/128 of the outcomes (LatencyHistogram), max and mean exact', async () => {
    const clock = new VirtualClock()
    // spread over three orders of magnitude, fractional ms included, and queueing behind concurrency 8
    const server = fakeServer(clock, (t) => 0.25 + ((t * 7.3) % 400))
    const outcomes: RequestOutcome[] = []
    const run = runLoad({rps: 200, durationMs: 2000, concurrency: 8, clock, send: server.send, onResponse: (o) => outcomes.push(o)})
    await clock.runAll()
    const result = await run
    const sorted = outcomes.map((o) => o.latencyMs).sort((a, b) => a - b)
    const rank = (q: number) => sorted[Math.ceil(q * sorted.length) - 1]
    const {latency} = result
    for (const [got, q] of [[latency.p50, 0.5], [latency.p75, 0.75], [latency.p90, 0.9], [latency.p95, 0.95], [latency.p99, 0.99], [latency.p999, 0.999]]) {
      expect(Math.abs(got - rank(q)) / rank(q)).toBeLessThanOrEqual(1 / 128)
    }
    expect(latency.max).toBe(sorted.at(-1))
    expect(latency.mean).toBeCloseTo(sorted.reduce((a, b) => a + b, 0) / sorted.length, 9)
  })

  it('never has more than `concurrency` in flight: a request due at the cap is dropped and counted (k6 dropped iterations), never sent late', async () => {
    const clock = new VirtualClock()
    const server = fakeServer(clock, () => 100) // needs 10 in flight at 100 rps
    const outcomes: RequestOutcome[] = []
    const progress: LoadProgress[] = []
    const run = runLoad({rps: 100, durationMs: 1000, concurrency: 4, clock, send: server.send, onResponse: (o) => outcomes.push(o), onProgress: (p) => progress.push(p), progressIntervalMs: 500})
    await clock.advance(10_000)
    const result = await run
    expect(server.maxInFlight()).toBe(4)
    // Four sent every 100 ms (at 0, 10, 20, 30, then 100, 110…), the six due in between dropped.
    expect(result).toMatchObject({sent: 40, requests: 40, dropped: 60})
    for (const o of outcomes) expect(o.sentMs).toBe(o.intendedMs)
    // Nothing went out after the last request was due (990 ms): the run is as long as its schedule.
    expect(Math.max(...server.sentAt)).toBeLessThanOrEqual(990)
    expect(result.durationMs).toBe(1030)
    expect(result.latency.max).toBe(100)
    expect(progress[0]).toMatchObject({sent: 20, dropped: 30})
  })

  it('counts errors by response flag, HTTP 5xx and network error code', async () => {
    const clock = new VirtualClock()
    const send: SendFn = async (_req, signal) => {
      const n = clock.now() / 10
      await clock.sleep(2, signal)
      if (n % 10 === 1) return {status: 504, responseFlags: 'UT'}
      if (n % 10 === 2) return {status: 503}
      if (n % 10 === 3) throw Object.assign(new Error('socket hang up'), {code: 'ECONNRESET'})
      if (n % 10 === 4) return {status: 404}
      return {status: 200}
    }
    const run = runLoad({rps: 100, durationMs: 1000, clock, send})
    await clock.advance(2000)
    const result = await run
    expect(result.errors).toEqual({UT: 10, 'HTTP 503': 10, ECONNRESET: 10})
    expect(result.statuses).toEqual({'200': 60, '404': 10, '503': 10, '504': 10})
    expect(result.successRate).toBeCloseTo(0.7, 10)
  })

  it('times out a request that never answers', async () => {
    const clock = new VirtualClock()
    const send: SendFn = (_req, signal) =>
      new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason)))
    const run = runLoad({rps: 10, durationMs: 500, timeoutMs: 250, clock, send})
    await clock.advance(1000)
    const result = await run
    expect(result.errors).toEqual({timeout: 5})
    expect(result.latency.max).toBeCloseTo(250, 0)
  })

  it('reports progress about once a second', async () => {
    const clock = new VirtualClock()
    const server = fakeServer(clock, () => 5)
    const progress: LoadProgress[] = []
    const run = runLoad({rps: 50, durationMs: 3000, clock, send: server.send, onProgress: (p) => progress.push(p)})
    await clock.advance(4000)
    await run
    expect(progress.map((p) => p.elapsedMs)).toEqual([1000, 2000])
    expect(progress[0]).toEqual({sent: 50, completed: 50, errors: 0, dropped: 0, elapsedMs: 1000, currentRps: 50})
    expect(clock.pending()).toBe(0) // no timer left behind
  })

  it('stops early on abort and says so: nothing more is sent, and the request in flight finishes (no client hang-up)', async () => {
    const clock = new VirtualClock()
    const aborted: number[] = []
    const server = fakeServer(clock, () => 5)
    const send: SendFn = (req, signal) => {
      signal.addEventListener('abort', () => aborted.push(clock.now()))
      return server.send(req, signal)
    }
    const controller = new AbortController()
    let stopped = false
    const run = runLoad({rps: 100, durationMs: 10_000, clock, send, signal: controller.signal}).finally(() => (stopped = true))
    await clock.advance(1000)
    expect(server.sentAt.length).toBe(101) // the one due at 1000 ms is in flight
    controller.abort()
    await clock.advance(1)
    expect(stopped).toBe(false)
    await clock.advance(10_000)
    const result = await run
    expect(aborted).toEqual([])
    expect(server.sentAt.length).toBe(101)
    expect(result).toMatchObject({aborted: true, sent: 101, requests: 101, dropped: 0, cancelled: 899, errors: {}, statuses: {'200': 101}})
    expect(result.durationMs).toBe(1005)
  })

  it('a request in flight when the run stops is still bounded by its timeout; the rest of the schedule is not sent', async () => {
    const clock = new VirtualClock()
    const hang: SendFn = (_req, signal) => new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason)))
    const controller = new AbortController()
    const run = runLoad({rps: 10, durationMs: 10_000, concurrency: 2, timeoutMs: 500, clock, send: hang, signal: controller.signal})
    await clock.advance(250) // 3 due: 2 in flight, 1 dropped at the cap
    controller.abort()
    await clock.advance(1000)
    const result = await run
    // 100 planned: 3 were due, the other 97 are not sent.
    expect(result).toMatchObject({aborted: true, sent: 2, requests: 2, dropped: 1, cancelled: 97, errors: {timeout: 2}})
  })

  it('is deterministic on a virtual clock', async () => {
    const once = async () => {
      const clock = new VirtualClock()
      const server = fakeServer(clock, (t) => 3 + (t % 7))
      const run = runLoad({rps: 250, durationMs: 2000, concurrency: 3, clock, send: server.send})
      await clock.advance(5000)
      return run
    }
    expect(await once()).toEqual(await once())
  })

  it('rejects nonsense rates with a message', async () => {
    await expect(runLoad({rps: 0, durationMs: 1000, send: async () => ({status: 200})})).rejects.toThrow(/--rps/)
    await expect(runLoad({rps: 10, durationMs: 0, send: async () => ({status: 200})})).rejects.toThrow(/--duration/)
  })
})
