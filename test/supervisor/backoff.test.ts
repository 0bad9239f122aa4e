import {describe, expect, it} from 'vitest'
import {RestartBackoff} from '../../src/sim/supervisor/backoff.js'

describe('RestartBackoff', () => {
  it('doubles the delay per crash from 1s and caps it at maxMs', () => {
    const backoff = new RestartBackoff({initialMs: 1000, maxMs: 30_000, resetAfterMs: 30_000})
    // Each process runs 10ms before crashing: never long enough to reset.
    const delays = Array.from({length: 8}, (_, i) => backoff.onExit(i * 100 + 10, i * 100))
    expect(delays).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000])
  })

  it('uses 1s / 30s / 30s by default', () => {
    const backoff = new RestartBackoff()
    expect([backoff.initialMs, backoff.maxMs, backoff.resetAfterMs]).toEqual([1000, 30_000, 30_000])
  })

  it('starts over at initialMs once a process has run for resetAfterMs', () => {
    const backoff = new RestartBackoff({initialMs: 1000, maxMs: 30_000, resetAfterMs: 30_000})
    expect(backoff.onExit(10, 0)).toBe(1000)
    expect(backoff.onExit(20, 10)).toBe(2000)
    expect(backoff.onExit(30, 20)).toBe(4000)
    // This one ran exactly resetAfterMs before it crashed.
    expect(backoff.onExit(30_030, 30)).toBe(1000)
    expect(backoff.crashes).toBe(1)
    // One ms short of the reset: the sequence continues.
    expect(backoff.onExit(60_029, 30_030)).toBe(2000)
  })

  it('calls three crashes in a row a crash loop, and a long run ends it', () => {
    const backoff = new RestartBackoff({initialMs: 50, maxMs: 400, resetAfterMs: 1000})
    expect(backoff.crashLoop).toBe(false)
    backoff.onExit(1, 0)
    backoff.onExit(2, 1)
    expect(backoff.crashLoop).toBe(false)
    backoff.onExit(3, 2)
    expect(backoff.crashLoop).toBe(true)
    backoff.onExit(2000, 3)
    expect(backoff.crashLoop).toBe(false)
  })

  it('stays finite however long the loop goes on', () => {
    const backoff = new RestartBackoff({initialMs: 1000, maxMs: 5000, resetAfterMs: 10})
    let last = 0
    for (let i = 0; i < 2000; i++) last = backoff.onExit(i, i)
    expect(last).toBe(5000)
  })
})
