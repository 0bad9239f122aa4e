// Knative's KPA decisions against numbers worked out by hand, on a virtual clock ticking
// once a second. Unless a test says otherwise: target 10 at 100% utilization (so the
// per-instance target is 10), a 60 s window and a 6 s panic window.
import {describe, expect, it} from 'vitest'
import {KpaDecider, type KpaDecision, type KpaSpec, targetValue} from '../../src/sim/scaling/kpa.js'
import {VirtualClock} from '../../src/sim/time/clock.js'
import {scalingConfig} from '../helpers/scaling.js'

const SPEC: KpaSpec = scalingConfig({target: 10, targetUtilization: 100, maxScale: 1000, windowMs: 60_000})

function setup(spec: Partial<KpaSpec> = {}, readyAtStart = 0) {
  const clock = new VirtualClock()
  const kpa = new KpaDecider({...SPEC, ...spec}, clock, readyAtStart)
  /** One tick: record `value` (unless undefined), decide with `ready`, then let a second pass. */
  const tick = async (value: number | undefined, ready: number): Promise<KpaDecision> => {
    if (value !== undefined) kpa.record(value)
    const d = kpa.decide(ready)!
    await clock.advance(1000)
    return d
  }
  return {clock, kpa, tick}
}

describe('KPA windows', () => {
  it('averages the stable window over the seconds since the first sample, a silent second counting as zero', async () => {
    const {clock, kpa} = setup()
    for (let t = 0; t < 10; t++) {
      kpa.record(20)
      await clock.advance(1000)
    }
    // t=10: buckets 0..9 hold 20 each, bucket 10 is empty: 200 / 11 seconds.
    expect(kpa.average(60_000)).toBeCloseTo(200 / 11)
    await clock.advance(49_000)
    // t=59: a full window, buckets 0..59: 200 / 60.
    expect(kpa.average(60_000)).toBeCloseTo(200 / 60)
    // t=59, panic window 54..59: nothing.
    expect(kpa.average(6_000)).toBe(0)
    // Ready 2: stable wants ceil(3.33 / 10) = 1, within the scale-down limit floor(2 / 2) = 1.
    expect(kpa.decide(2)).toMatchObject({desired: 1, panic: false})
    await clock.advance(1000)
    // t=60: bucket 0 has left the window: 180 / 60.
    expect(kpa.average(60_000)).toBeCloseTo(3)
    await clock.advance(10_000)
    expect(kpa.average(60_000)).toBe(0)
  })

  it('two samples in one second are one data point, their mean', async () => {
    const {kpa} = setup()
    kpa.record(10)
    kpa.record(30)
    expect(kpa.average(60_000)).toBe(20)
  })

  it('decides nothing before the first sample (Knative: no data to scale on yet)', () => {
    expect(setup().kpa.decide(3)).toBeUndefined()
  })

  it('applies utilization and caps the target at containerConcurrency', () => {
    expect(targetValue({...SPEC, target: 100, targetUtilization: 70})).toBeCloseTo(70)
    expect(targetValue({...SPEC, target: 100, targetUtilization: 70, containerConcurrency: 5})).toBeCloseTo(3.5)
    // Never below one: Lambda's one request per instance targets 1, not 0.7.
    expect(targetValue({...SPEC, target: 100, targetUtilization: 70, containerConcurrency: 1})).toBe(1)
    // rps has no per-instance concurrency limit to respect.
    expect(targetValue({...SPEC, metric: 'rps', target: 100, targetUtilization: 70, containerConcurrency: 1})).toBeCloseTo(70)
  })
})

describe('KPA panic mode', () => {
  it('says why, in the words of the issue', async () => {
    // target 10 at 70% = 7; 41 concurrent in the panic window wants ceil(41 / 7) = 6, 6 / 2 ready = 300% ≥ 200%.
    const {tick} = setup({targetUtilization: 70})
    expect(await tick(41, 2)).toMatchObject({desired: 6, panic: true, reason: 'panic, observed 41 concurrent over 6 s, target 7'})
  })

  it('enters at the threshold, never scales down while in it, and leaves a stable window after the last time over it', async () => {
    const {tick} = setup()
    for (let t = 0; t < 60; t++) expect(await tick(10, 1)).toMatchObject({desired: 1, panic: false})
    // t=60: panic window 55..60 = (5×10 + 50) / 6 = 16.7 → 2; 2 / 1 ready = 200%: panic.
    // Stable (59×10 + 50) / 60 = 10.7 → 2.
    const entered = await tick(50, 1)
    expect(entered).toMatchObject({desired: 2, panic: true})
    expect(entered.observedPanic).toBeCloseTo(100 / 6)
    // t=61: panic window (4×10 + 2×50) / 6 = 23.3 → 3; 3 / 2 ready = 150%, under the
    // threshold, but the panic started at 60 holds for a stable window: it scales to 3.
    expect(await tick(50, 2)).toMatchObject({desired: 3, panic: true})
    // t=62..120: no traffic. The stable desire falls to 1 (by t=80: (39×10 + 100) / 60 = 8.2),
    // the panic desire to 0, yet panic keeps the 3 it asked for.
    for (let t = 62; t < 80; t++) expect(await tick(0, 3)).toMatchObject({desired: 3, panic: true})
    // t=80: the panic window 75..80 is empty, stable (39×10 + 100) / 60 = 8.2 wants 1.
    expect(await tick(0, 3)).toMatchObject({desired: 3, panic: true, reason: 'panic, observed 8.2 concurrent over 60 s, target 10; no scale-down in panic (holding 3)'})
    for (let t = 81; t <= 120; t++) expect(await tick(0, 3)).toMatchObject({desired: 3, panic: true})
    // t=121: 60 + 60 < 121, under the threshold: stable again. Buckets 62..121 are all 0,
    // so stable wants 0, held at floor(3 / 2) = 1 by the scale-down rate.
    expect(await tick(0, 3)).toMatchObject({desired: 1, panic: false, reason: 'stable, observed 0 concurrent over 60 s, target 10'})
  })

  it('starts in panic holding the current scale when it starts with more than one instance ready', async () => {
    // A restarted autoscaler has no history: 1 concurrent would otherwise shrink 4 instances to 2.
    const {tick} = setup({}, 4)
    expect(await tick(1, 4)).toMatchObject({desired: 4, panic: true})
  })
})

describe('KPA rate limits', () => {
  it('scales up at most maxScaleUpRate × ready, and at least by one', async () => {
    // 100 concurrent wants 10; from 2 ready at rate 2 at most ceil(2 × 2) = 4.
    expect(await setup({maxScaleUpRate: 2}).tick(100, 2)).toMatchObject({desired: 4})
    // From none ready the rate is relative to one: ceil(2 × 1) = 2.
    expect(await setup({maxScaleUpRate: 2}).tick(100, 0)).toMatchObject({desired: 2})
    // Rate 1.1 from 2: ceil(2.2) = 3, not stuck at 2.
    expect(await setup({maxScaleUpRate: 1.1}).tick(100, 2)).toMatchObject({desired: 3})
  })

  it('scales down at most to ready / maxScaleDownRate', async () => {
    const {kpa} = setup()
    kpa.record(0)
    expect(kpa.decide(8)).toMatchObject({desired: 4})
    expect(kpa.decide(4)).toMatchObject({desired: 2})
    expect(kpa.decide(2)).toMatchObject({desired: 1})
    const three = setup({maxScaleDownRate: 3})
    three.kpa.record(0)
    // floor(8 / 3) = 2.
    expect(three.kpa.decide(8)).toMatchObject({desired: 2})
  })
})

describe('KPA scale to zero', () => {
  it('goes to zero only a stable window after the last traffic plus the grace period', async () => {
    const {tick} = setup()
    for (let t = 0; t < 10; t++) expect(await tick(5, 1)).toMatchObject({desired: 1})
    // t=10..68: bucket 9 still in the window, ceil(small / 10) = 1.
    for (let t = 10; t <= 68; t++) expect(await tick(0, 1)).toMatchObject({desired: 1})
    // t=69: the window 10..69 is empty: zero is wanted, the grace period of 30 s starts.
    expect(await tick(0, 1)).toMatchObject({desired: 1, reason: 'stable, observed 0 concurrent over 60 s, target 10; no traffic, scale to zero in 30 s'})
    for (let t = 70; t <= 98; t++) expect(await tick(0, 1)).toMatchObject({desired: 1})
    // t=99 = 9 + 60 + 30.
    expect(await tick(0, 1)).toMatchObject({desired: 0})
  })

  it('starts the grace period over when traffic comes back', async () => {
    const {tick} = setup({windowMs: 6000})
    // Window 6 s: one sample of 5 at t=0 leaves the window at t=6.
    await tick(5, 1)
    for (let t = 1; t <= 5; t++) await tick(0, 1)
    expect(await tick(0, 1)).toMatchObject({desired: 1}) // t=6: grace starts
    for (let t = 7; t <= 20; t++) await tick(0, 1)
    expect(await tick(3, 1)).toMatchObject({desired: 1}) // t=21: traffic again
    for (let t = 22; t <= 26; t++) await tick(0, 1)
    // t=27: the window 22..27 is empty again, a fresh 30 s grace: not zero at t=36 (6 + 30).
    for (let t = 27; t <= 56; t++) expect(await tick(0, 1)).toMatchObject({desired: 1})
    expect(await tick(0, 1)).toMatchObject({desired: 0}) // t=57 = 27 + 30
  })
})

describe('KPA scale to zero from the start', () => {
  it('a decider that begins without traffic waits a whole stable window, then the grace period', async () => {
    const {tick} = setup({windowMs: 6000, scaleToZeroGracePeriodMs: 6000})
    // t=0..11: the average is 0 from the first sample, but the window 0..6 has not passed yet, then the grace 6..12.
    expect(await tick(0, 1)).toMatchObject({desired: 1, reason: 'stable, observed 0 concurrent over 6 s, target 10; no traffic, scale to zero in 12 s'})
    for (let t = 1; t <= 11; t++) expect(await tick(0, 1)).toMatchObject({desired: 1})
    expect(await tick(0, 1)).toMatchObject({desired: 0}) // t=12 = 0 + 6 + 6
  })

  it('at zero it stays at zero: the grace period is for a last instance, not a reason to start one', async () => {
    const {tick} = setup({windowMs: 6000, scaleToZeroGracePeriodMs: 6000})
    expect(await tick(0, 0)).toMatchObject({desired: 0, reason: 'stable, observed 0 concurrent over 6 s, target 10'})
    // A held request at zero is demand: one instance (ceil of any share of the target).
    expect(await tick(1, 0)).toMatchObject({desired: 1})
  })
})

describe('KPA scaleDownDelay and bounds', () => {
  it('scaleDownDelay keeps the largest desire of the delay window', async () => {
    // Rate 100 so floor(3 / 100) = 0 does not hold anything up.
    const {tick} = setup({scaleDownDelayMs: 10_000, maxScaleDownRate: 100})
    // Undelayed desires: t=0: 30/1 → 3; t=1: 30/2 → 2; t=2..: 30/3, 30/4, ... → 1.
    const desired: number[] = []
    const reasons: string[] = []
    for (let t = 0; t <= 11; t++) {
      const d = await tick(t === 0 ? 30 : 0, 3)
      desired.push(d.desired)
      reasons.push(d.reason)
    }
    // The 3 of t=0 holds until it leaves the 10 s window at t=10; the 2 of t=1 at t=11.
    expect(desired).toEqual([3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 1])
    expect(reasons[5]).toBe('stable, observed 5 concurrent over 60 s, target 10; scale-down delayed (10 s)')
    expect(reasons[11]).not.toContain('delayed')
  })

  it("minScale and maxScale have the last word (ready 1: zero is wanted, minScale makes it 2)", async () => {
    const low = setup({minScale: 2, maxScale: 5})
    expect(await low.tick(0, 1)).toMatchObject({desired: 2, reason: 'stable, observed 0 concurrent over 60 s, target 10; minScale 2'})
    const high = setup({minScale: 2, maxScale: 5, panicThresholdPercentage: 1000})
    expect(await high.tick(100, 5)).toMatchObject({desired: 5, reason: 'stable, observed 100 concurrent over 60 s, target 10; capped at maxScale 5'})
  })

  it('update keeps the history: a lower target reads the same window', async () => {
    const {kpa, clock} = setup()
    kpa.record(30)
    expect(kpa.decide(3)).toMatchObject({desired: 3})
    await clock.advance(1000)
    kpa.update({...SPEC, target: 5})
    // t=1: buckets 0 (30) and 1 (empty) average 15: at the new target 5 that wants 3 (the old 10 would want 2).
    expect(kpa.decide(3)).toMatchObject({desired: 3, observedStable: 15})
  })

  it('speaks requests per second for the rps metric', async () => {
    expect((await setup({metric: 'rps', panicThresholdPercentage: 1000}).tick(25, 1)).reason).toBe('stable, observed 25 req/s over 60 s, target 10')
  })
})
