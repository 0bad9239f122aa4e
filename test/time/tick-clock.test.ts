import {describe, expect, test} from 'vitest'
import {TickClock} from '../../src/sim/time/tick-clock.js'

const busyWait = (ms: number) => {
  const until = performance.now() + ms
  while (performance.now() < until) {
    // spin: the point is that real time passes inside one synchronous run
  }
}

describe('TickClock', () => {
  test('one reading per callback; a new one in the next', async () => {
    const clock = new TickClock()
    const first = clock.now()
    busyWait(3)
    expect(clock.now()).toBe(first)
    expect(clock.wallNow()).toBe(clock.wallAt(first))
    await new Promise((resolve) => setImmediate(resolve))
    const second = clock.now()
    expect(second - first).toBeGreaterThanOrEqual(3)
    await new Promise((resolve) => setTimeout(resolve, 5))
    expect(clock.now() - second).toBeGreaterThanOrEqual(4)
  })

  test('timers and sleep are the real clock\'s', async () => {
    const clock = new TickClock()
    const start = performance.now()
    await clock.sleep(20)
    expect(performance.now() - start).toBeGreaterThanOrEqual(19)
    const controller = new AbortController()
    const slept = clock.sleep(10_000, controller.signal).catch((e: Error) => e.message)
    controller.abort(new Error('stop'))
    expect(await slept).toBe('stop')
    let fired = false
    clock.setTimer(1, () => (fired = true)).cancel()
    await new Promise((resolve) => setTimeout(resolve, 10))
    expect(fired).toBe(false)
  })
})
