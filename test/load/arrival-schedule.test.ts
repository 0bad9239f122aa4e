import {describe, expect, it} from 'vitest'
import {
  ArrivalSchedule,
  constantShape,
  describeShape,
  expectedArrivals,
  type LoadShape,
  parseRamp,
  shapeOf,
  shapeProblem,
} from '../../src/sim/load/arrival-schedule.js'
import {runLoad, type SendFn} from '../../src/sim/load/load-generator.js'
import {VirtualClock} from '../../src/sim/time/clock.js'
import {SeededRandom} from '../../src/sim/time/random.js'

function all(schedule: ArrivalSchedule): number[] {
  const out: number[] = []
  for (let t = schedule.next(); t !== undefined; t = schedule.next()) out.push(t)
  return out
}

function gapsCv(times: number[]): {mean: number; cv: number} {
  const gaps = times.slice(1).map((t, i) => t - times[i])
  const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length
  const variance = gaps.reduce((a, g) => a + (g - mean) ** 2, 0) / gaps.length
  return {mean, cv: Math.sqrt(variance) / mean}
}

describe('ArrivalSchedule', () => {
  it('uniform at a constant rate is unchanged: request i at i/rps, floor(rps × T) of them', () => {
    const times = all(new ArrivalSchedule(constantShape(200, 5000)))
    expect(times).toHaveLength(1000)
    times.forEach((t, i) => expect(t).toBeCloseTo(i * 5, 9))
    expect(all(new ArrivalSchedule(constantShape(3, 1000)))).toEqual([0, 1000 / 3, 2000 / 3])
  })

  it('a ramp 0→200/s over 30 s sends the area under it (3000), denser as the rate rises', () => {
    const shape: LoadShape = {segments: [{durationMs: 30_000, fromRps: 0, toRps: 200}], arrivals: 'uniform'}
    const times = all(new ArrivalSchedule(shape))
    expect(expectedArrivals(shape)).toBe(3000)
    expect(times).toHaveLength(3000)
    // Λ(t) = 200/30 · t²/2 (t in s): a quarter of the requests by half time, request k at sqrt(0.3·k) s.
    expect(times.filter((t) => t < 15_000)).toHaveLength(750)
    expect(times[1200]).toBeCloseTo(Math.sqrt(0.3 * 1200) * 1000, 6)
    for (let i = 1; i < times.length; i++) expect(times[i]).toBeGreaterThan(times[i - 1])
    expect(times.at(-1)!).toBeLessThan(30_000)
  })

  it('a falling ramp and a burst after idle: nothing in the idle stretch, then the burst at its rate', () => {
    const falling = all(new ArrivalSchedule({segments: [{durationMs: 10_000, fromRps: 100, toRps: 0}], arrivals: 'uniform'}))
    expect(falling).toHaveLength(500)
    expect(falling.filter((t) => t < 5000)).toHaveLength(375) // 100→50 over the first half: 375
    const burst = all(new ArrivalSchedule({segments: [{durationMs: 10_000, fromRps: 0, toRps: 0}, {durationMs: 5000, fromRps: 500, toRps: 500}], arrivals: 'uniform'}))
    expect(burst).toHaveLength(2500)
    expect(burst[0]).toBe(10_000)
    expect(burst[1]).toBeCloseTo(10_002, 9)
    expect(burst.at(-1)!).toBeCloseTo(14_998, 6)
  })

  it('poisson: count over a long window within 3% of rate × T, exponential gaps (CV ≈ 1, mean 1/rate), replayable by seed', () => {
    const shape = constantShape(100, 600_000, 'poisson')
    const times = all(new ArrivalSchedule(shape, new SeededRandom(7)))
    expect(Math.abs(times.length - 60_000) / 60_000).toBeLessThan(0.03)
    const {mean, cv} = gapsCv(times)
    expect(mean).toBeGreaterThan(9.7)
    expect(mean).toBeLessThan(10.3)
    expect(cv).toBeGreaterThan(0.97)
    expect(cv).toBeLessThan(1.03)
    // uniform gaps have no spread at all
    expect(gapsCv(all(new ArrivalSchedule(constantShape(100, 60_000)))).cv).toBeLessThan(1e-6)
    expect(all(new ArrivalSchedule(constantShape(50, 10_000, 'poisson'), new SeededRandom(3)))).toEqual(
      all(new ArrivalSchedule(constantShape(50, 10_000, 'poisson'), new SeededRandom(3))),
    )
  })

  it('poisson over a ramp: the count follows the area, each half of the ramp its own share', () => {
    const shape: LoadShape = {segments: [{durationMs: 300_000, fromRps: 0, toRps: 200}], arrivals: 'poisson'}
    const times = all(new ArrivalSchedule(shape, new SeededRandom(11)))
    expect(Math.abs(times.length - 30_000) / 30_000).toBeLessThan(0.03)
    const firstHalf = times.filter((t) => t < 150_000).length
    expect(Math.abs(firstHalf - 7500) / 7500).toBeLessThan(0.05)
  })

  it('parses FROM:TO/DURATION and says what is wrong with the rest', () => {
    expect(parseRamp('0:200/30s')).toEqual({durationMs: 30_000, fromRps: 0, toRps: 200})
    expect(parseRamp('50:10/s/2m')).toEqual({durationMs: 120_000, fromRps: 50, toRps: 10})
    expect(parseRamp('200')).toMatch(/not a ramp: write FROM:TO\/DURATION/)
    expect(parseRamp('0:200')).toMatch(/not a ramp/)
    expect(parseRamp('-5:200/30s')).toMatch(/rate "-5" is not a number of requests per second ≥ 0/)
    expect(parseRamp('0:200/30')).toMatch(/"30" is not a positive duration/)
    expect(shapeProblem({segments: [{durationMs: 1000, fromRps: 0, toRps: 0}], arrivals: 'uniform'})).toMatch(/no request at all/)
    expect(shapeProblem({segments: [{durationMs: 1000, fromRps: -1, toRps: 5}], arrivals: 'uniform'})).toMatch(/≥ 0, got -1/)
    expect(() => new ArrivalSchedule(constantShape(10, 1000, 'poisson'))).toThrow(/need a Random/)
  })
})

describe('shapeOf', () => {
  it('idle first, then the ramps in order, then the constant rate', () => {
    const shape = shapeOf({afterMs: 10_000, ramps: ['0:200/30s'], rps: 200, durationMs: 60_000, arrivals: 'poisson'})
    expect(shape).toEqual({
      segments: [
        {durationMs: 10_000, fromRps: 0, toRps: 0},
        {durationMs: 30_000, fromRps: 0, toRps: 200},
        {durationMs: 60_000, fromRps: 200, toRps: 200},
      ],
      arrivals: 'poisson',
    })
    expect(describeShape(shape as LoadShape)).toBe('idle 10s, then 0→200 rps over 30s, then 200 rps for 1m, poisson arrivals')
    expect(shapeOf({rps: 100, durationMs: 5000})).toEqual(constantShape(100, 5000))
  })

  it('refuses a rate without a duration, a negative rate, a bad ramp, or nothing to send', () => {
    expect(shapeOf({rps: 100})).toMatch(/needs a duration/)
    expect(shapeOf({durationMs: 5000})).toMatch(/needs a rate/)
    expect(shapeOf({rps: -3, durationMs: 5000})).toMatch(/positive number of requests per second, got -3/)
    expect(shapeOf({ramps: ['200']})).toMatch(/^"200" is not a ramp/)
    expect(shapeOf({afterMs: 5000})).toMatch(/no load asked for/)
    expect(shapeOf({ramps: ['0:0/10s']})).toMatch(/no load asked for/)
    expect(shapeOf({rps: 0.1, durationMs: 5000})).toMatch(/no request at all/)
  })
})

describe('runLoad with a shape (virtual clock)', () => {
  it('sends on the schedule and counts latency from each intended time; the seed is reported', async () => {
    const clock = new VirtualClock(0)
    const sentAt: number[] = []
    const send: SendFn = async (_req, signal) => {
      sentAt.push(clock.now())
      await clock.sleep(3, signal)
      return {status: 200}
    }
    const shape: LoadShape = {segments: [{durationMs: 2000, fromRps: 0, toRps: 0}, {durationMs: 4000, fromRps: 0, toRps: 100}], arrivals: 'poisson'}
    const run = runLoad({shape, seed: 5, clock, send})
    await clock.advance(7000)
    const result = await run
    const expected = all(new ArrivalSchedule(shape, new SeededRandom(5)))
    expect(sentAt).toEqual(expected)
    expect(sentAt[0]).toBeGreaterThanOrEqual(2000)
    expect(result).toMatchObject({requests: expected.length, sent: expected.length, arrivals: 'poisson', seed: 5, aborted: false})
    expect(result.latency.max).toBeCloseTo(3, 1)
  })

  it('an aborted shaped run sends nothing more and lets what is in flight finish', async () => {
    const clock = new VirtualClock(0)
    let inFlight = 0
    const send: SendFn = async (_req, signal) => {
      inFlight++
      try {
        await clock.sleep(50, signal)
        return {status: 200}
      } finally {
        inFlight--
      }
    }
    const abort = new AbortController()
    const run = runLoad({shape: {segments: [{durationMs: 10_000, fromRps: 0, toRps: 200}], arrivals: 'uniform'}, clock, send, signal: abort.signal})
    await clock.advance(5000)
    abort.abort()
    await clock.advance(100)
    const result = await run
    expect(inFlight).toBe(0)
    expect(result.aborted).toBe(true)
    expect(result.sent).toBeLessThan(2000)
    expect(result.requests).toBe(result.sent)
    expect(result.errors).toEqual({})
  })
})
