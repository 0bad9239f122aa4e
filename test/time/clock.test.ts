import {describe, expect, test, vi} from 'vitest'
import {MAX_TIMEOUT_MS, RealClock, VirtualClock} from '../../src/sim/time/clock.js'
import {SeededRandom} from '../../src/sim/time/random.js'

describe('VirtualClock', () => {
  test('fires alarms in (due, insertion) order and only when advanced', async () => {
    const clock = new VirtualClock()
    const fired: string[] = []
    clock.setTimer(20, () => fired.push('b@20'))
    clock.setTimer(10, () => fired.push('a@10'))
    clock.setTimer(20, () => fired.push('c@20'))
    const cancelled = clock.setTimer(15, () => fired.push('never'))
    cancelled.cancel()
    cancelled.cancel()
    await clock.advance(19)
    expect(fired).toEqual(['a@10'])
    await clock.advance(1)
    expect(fired).toEqual(['a@10', 'b@20', 'c@20'])
    expect(clock.now()).toBe(20)
  })

  test('sleep resolves at its time and rejects when aborted', async () => {
    const clock = new VirtualClock()
    const times: number[] = []
    void clock.sleep(100).then(() => times.push(clock.now()))
    const abort = new AbortController()
    const aborted = clock.sleep(50, abort.signal).catch((e: Error) => e.message)
    abort.abort(new Error('stop'))
    await clock.advance(100)
    expect(times).toEqual([100])
    expect(await aborted).toBe('stop')
  })
})

describe('SeededRandom', () => {
  test('the same seed gives the same sequence; another seed does not', () => {
    const a = Array.from({length: 5}, ((r) => () => r.next())(new SeededRandom(42)))
    const b = Array.from({length: 5}, ((r) => () => r.next())(new SeededRandom(42)))
    const c = Array.from({length: 5}, ((r) => () => r.next())(new SeededRandom(43)))
    expect(a).toEqual(b)
    expect(a).not.toEqual(c)
    for (const x of a) expect(x >= 0 && x < 1).toBe(true)
  })

  test('normal deviates have mean about 0 and variance about 1', () => {
    const r = new SeededRandom(7)
    const xs = Array.from({length: 50_000}, () => r.normal())
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length
    const variance = xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length
    expect(Math.abs(mean)).toBeLessThan(0.02)
    expect(Math.abs(variance - 1)).toBeLessThan(0.03)
  })
})

describe('RealClock', () => {
  test('a timer longer than setTimeout can hold (24.8 days) waits its whole time, and cancels in any leg', () => {
    vi.useFakeTimers()
    try {
      const clock = new RealClock()
      const DAY = 86_400_000
      let fired = 0
      clock.setTimer(30 * DAY, () => fired++)
      const cancelled = clock.setTimer(60 * DAY, () => fired++)
      vi.advanceTimersByTime(1000)
      expect(fired).toBe(0)
      vi.advanceTimersByTime(MAX_TIMEOUT_MS)
      expect(fired).toBe(0)
      vi.advanceTimersByTime(30 * DAY - MAX_TIMEOUT_MS - 1000)
      expect(fired).toBe(1)
      cancelled.cancel()
      vi.advanceTimersByTime(60 * DAY)
      expect(fired).toBe(1)
    } finally {
      vi.useRealTimers()
    }
  })
})
