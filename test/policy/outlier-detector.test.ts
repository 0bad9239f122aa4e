import {describe, expect, test} from 'vitest'
import type {OutlierDetectionConfig} from '../../src/sim/config/types.js'
import {type OutlierEvent, OutlierDetector} from '../../src/sim/proxy/outlier/outlier-detector.js'
import {VirtualClock} from '../../src/sim/time/clock.js'

const config = (over: Partial<OutlierDetectionConfig> = {}): OutlierDetectionConfig => ({
  consecutive5xxErrors: 5,
  consecutiveGatewayErrors: 0,
  intervalMs: 1_000,
  baseEjectionTimeMs: 10_000,
  maxEjectionPercent: 100,
  ...over,
})

function setup(over: Partial<OutlierDetectionConfig> = {}, ids = ['a', 'b', 'c', 'd']) {
  const clock = new VirtualClock()
  const events: Array<OutlierEvent & {at: number}> = []
  const detector = new OutlierDetector(config(over), clock, (e) => events.push({...e, at: clock.now()}))
  detector.setEndpoints(ids)
  return {clock, detector, events}
}

const fail = (d: OutlierDetector, id: string, n: number, outcome: '5xx' | 'gateway-error' | 'local-failure' = '5xx') => {
  for (let i = 0; i < n; i++) d.record(id, outcome)
}

describe('OutlierDetector', () => {
  test('5 consecutive 5xx eject at once, for the base ejection time, returning at the next interval tick', async () => {
    const {clock, detector, events} = setup()
    fail(detector, 'a', 4)
    expect(detector.isEjected('a')).toBe(false)
    detector.record('a', '5xx')
    expect(detector.isEjected('a')).toBe(true)
    expect(detector.ejections()).toEqual([{id: 'a', sinceMs: 0, untilMs: 10_000, times: 1, reason: 'consecutive-5xx'}])
    await clock.advance(9_999)
    expect(detector.isEjected('a')).toBe(true)
    await clock.advance(1) // the tick at 10 000 finds its time up
    expect(detector.isEjected('a')).toBe(false)
    expect(events).toEqual([
      {id: 'a', kind: 'ejected', reason: 'consecutive-5xx', sinceMs: 0, untilMs: 10_000, times: 1, at: 0},
      {id: 'a', kind: 'returned', reason: 'consecutive-5xx', at: 10_000},
    ])
    detector.close()
  })

  test('un-ejection waits for the interval tick after the ejection time', async () => {
    const {clock, detector, events} = setup({intervalMs: 3_000})
    await clock.advance(500)
    fail(detector, 'a', 5)
    await clock.advance(10_000) // due at 10 500; ticks at 3 000, 6 000, 9 000, 12 000
    expect(detector.isEjected('a')).toBe(true)
    await clock.advance(1_500)
    expect(events.map((e) => [e.kind, e.at])).toEqual([
      ['ejected', 500],
      ['returned', 12_000],
    ])
    detector.close()
  })

  test('a success in between resets the counter', () => {
    const {detector} = setup()
    fail(detector, 'a', 4)
    detector.record('a', 'success')
    fail(detector, 'a', 4)
    expect(detector.isEjected('a')).toBe(false)
    detector.record('a', '5xx')
    expect(detector.isEjected('a')).toBe(true)
    detector.close()
  })

  test('the second ejection lasts 2× base; staying healthy intervals brings the multiplier back down', async () => {
    const {clock, detector} = setup()
    fail(detector, 'a', 5)
    await clock.advance(10_000)
    expect(detector.isEjected('a')).toBe(false)
    fail(detector, 'a', 5) // right after returning: multiplier 2
    expect(detector.ejections()[0]).toMatchObject({times: 2, sinceMs: 10_000, untilMs: 30_000})
    await clock.advance(19_999)
    expect(detector.isEjected('a')).toBe(true)
    await clock.advance(1)
    expect(detector.isEjected('a')).toBe(false)
    expect(detector.timesEjected('a')).toBe(2)
    await clock.advance(1_000) // one full interval in: 2 → 1
    expect(detector.timesEjected('a')).toBe(1)
    await clock.advance(1_000)
    expect(detector.timesEjected('a')).toBe(0)
    fail(detector, 'a', 5)
    expect(detector.ejections()[0]).toMatchObject({times: 1, untilMs: clock.now() + 10_000})
    detector.close()
  })

  test('gateway errors: their own threshold, and they also count as 5xx; local failures count as gateway errors', () => {
    const {detector} = setup({consecutive5xxErrors: 5, consecutiveGatewayErrors: 3})
    fail(detector, 'a', 2, 'gateway-error')
    detector.record('a', 'local-failure')
    expect(detector.ejections()).toMatchObject([{id: 'a', reason: 'consecutive-gateway-errors'}])
    // A plain 500 breaks a gateway run but continues a 5xx run.
    fail(detector, 'b', 2, 'gateway-error')
    fail(detector, 'b', 2, '5xx')
    expect(detector.isEjected('b')).toBe(false)
    detector.record('b', 'gateway-error')
    expect(detector.ejections().find((e) => e.id === 'b')).toMatchObject({reason: 'consecutive-5xx'})
    detector.close()
  })

  test('a threshold of 0 disables that detector', () => {
    const {detector} = setup({consecutive5xxErrors: 0, consecutiveGatewayErrors: 0})
    fail(detector, 'a', 100, 'gateway-error')
    expect(detector.isEjected('a')).toBe(false)
    detector.close()
  })

  test('maxEjectionPercent caps ejections; the refused endpoint needs a fresh run of errors', () => {
    const {detector} = setup({maxEjectionPercent: 50})
    fail(detector, 'a', 5)
    fail(detector, 'b', 5)
    fail(detector, 'c', 5) // 3 of 4 = 75% > 50%: refused
    expect(['a', 'b', 'c'].map((id) => detector.isEjected(id))).toEqual([true, true, false])
    expect(detector.overflowed).toBe(1)
    detector.record('c', '5xx')
    expect(detector.isEjected('c')).toBe(false)
    detector.close()
  })

  test('at least one endpoint may always be ejected, however low the percentage', () => {
    const {detector} = setup({maxEjectionPercent: 10}, ['a', 'b', 'c'])
    fail(detector, 'a', 5)
    fail(detector, 'b', 5)
    expect(detector.isEjected('a')).toBe(true)
    expect(detector.isEjected('b')).toBe(false)
    detector.close()
  })

  test('membership: removed endpoints are forgotten (freeing their ejection slot); unknown ids are ignored', () => {
    const {detector} = setup({maxEjectionPercent: 34}, ['a', 'b', 'c'])
    fail(detector, 'a', 5)
    detector.setEndpoints(['b', 'c', 'e'])
    expect(detector.isEjected('a')).toBe(false)
    expect(detector.ejections()).toEqual([])
    fail(detector, 'zzz', 10)
    fail(detector, 'b', 5)
    expect(detector.ejectedCountNow()).toBe(1)
    detector.close()
  })

  test('membership changes keep what still holds: an ejected endpoint that stays is still ejected, and only ejected ones free a slot', () => {
    const {detector} = setup({maxEjectionPercent: 50}, ['a', 'b', 'c', 'd'])
    fail(detector, 'a', 4) // a run of errors under way
    fail(detector, 'b', 5)
    expect(detector.ejectedCountNow()).toBe(1)
    // A scale-up: b stays out, a's run goes on.
    detector.setEndpoints(['a', 'b', 'c', 'd', 'e'])
    expect(detector.isEjected('b')).toBe(true)
    expect(detector.ejectedCountNow()).toBe(1)
    fail(detector, 'a', 1)
    expect(detector.isEjected('a')).toBe(true)
    expect(detector.ejectedCountNow()).toBe(2)
    // A healthy endpoint leaving frees nothing: 2 of 4 is the cap, c is refused.
    detector.setEndpoints(['a', 'b', 'c', 'd'])
    expect(detector.ejectedCountNow()).toBe(2)
    fail(detector, 'c', 5)
    expect(detector.isEjected('c')).toBe(false)
    // An ejected one leaving frees its slot.
    detector.setEndpoints(['b', 'c', 'd'])
    expect(detector.ejectedCountNow()).toBe(1)
    detector.close()
  })

  test('whoever keeps a record of ejections hears when one ends without a return: the endpoint left, or detection was turned off', () => {
    const {detector, events} = setup({}, ['a', 'b', 'c'])
    fail(detector, 'a', 5)
    fail(detector, 'b', 5)
    detector.setEndpoints(['b', 'c'])
    expect(events.map((e) => [e.id, e.kind])).toEqual([
      ['a', 'ejected'],
      ['b', 'ejected'],
      ['a', 'forgotten'],
    ])
    // c was never ejected: turning detection off forgets only b.
    detector.close()
    expect(events.slice(3).map((e) => [e.id, e.kind])).toEqual([['b', 'forgotten']])
  })

  test('close() cancels the interval timer', async () => {
    const {clock, detector} = setup()
    expect(clock.pending()).toBe(1)
    detector.close()
    expect(clock.pending()).toBe(0)
    await clock.advance(60_000)
    expect(clock.pending()).toBe(0)
  })
})
