import {describe, expect, test} from 'vitest'
import type {RateLimitAlgorithm, RateLimitConfig} from '../../src/sim/config/types.js'
import {ALLOWED, createLimiter, createRateLimiter, type KeyedRateLimiter} from '../../src/sim/proxy/policy/rate-limit.js'
import {VirtualClock} from '../../src/sim/time/clock.js'

/** One request from `source` through a keyed limiter, at the clock's now. */
const acquire = (limits: KeyedRateLimiter, clock: VirtualClock, source: string) => limits.limiterFor({source, headers: {}}).tryAcquire(clock.now())

const ALGORITHMS: RateLimitAlgorithm[] = ['token-bucket', 'leaky-bucket', 'fixed-window', 'sliding-log', 'sliding-window']

// burst 5: the bucket algorithms otherwise admit a whole extra burst on top of 3 s
// of steady rate (with the schema's default burst = 50, 200 instead of 150).
const fiftyPerSecond = (algorithm: RateLimitAlgorithm, over: Partial<RateLimitConfig> = {}): RateLimitConfig => ({
  algorithm,
  requests: 50,
  periodMs: 1_000,
  burst: 5,
  perSource: false,
  ...over,
})

describe.each(ALGORITHMS)('%s', (algorithm) => {
  test('50/s driven at 200/s for 3 s admits 150 ± 10%, with sensible retryAfterMs', async () => {
    const clock = new VirtualClock()
    const limiter = createRateLimiter(fiftyPerSecond(algorithm), clock)
    let admitted = 0
    const waits: number[] = []
    for (let i = 0; i < 600; i++) {
      const d = acquire(limiter, clock, 'any')
      if (d.allowed) {
        admitted++
        expect(d.retryAfterMs).toBe(0)
      } else {
        waits.push(d.retryAfterMs)
      }
      await clock.advance(5)
    }
    expect(admitted).toBeGreaterThanOrEqual(135)
    expect(admitted).toBeLessThanOrEqual(165)
    expect(waits.length).toBe(600 - admitted)
    // Never "now", never more than one period away.
    for (const w of waits) {
      expect(w).toBeGreaterThan(0)
      expect(w).toBeLessThanOrEqual(1_000)
    }
  })

  test('retryAfterMs is honest: waiting exactly that long gets the request in, and not much earlier', () => {
    const limiter = createLimiter(fiftyPerSecond(algorithm), 0)
    let now = 0
    let d = limiter.tryAcquire(now)
    // Bounded (50/s can admit at most ~50 in a second of 1 ms steps): a limiter that never refuses fails, not hangs.
    while (d.allowed && now < 10_000) d = limiter.tryAcquire((now += 1))
    expect(d.allowed).toBe(false)
    const wait = d.retryAfterMs
    expect(wait).toBeGreaterThan(1)
    // A refused probe consumes nothing, so probing at wait - 1 leaves the answer at wait unchanged.
    expect(limiter.tryAcquire(now + wait - 1).allowed).toBe(false)
    expect(limiter.tryAcquire(now + wait).allowed).toBe(true)
  })

  test('an admitted request gets the shared ALLOWED decision (no allocation)', () => {
    const limiter = createLimiter(fiftyPerSecond(algorithm), 0)
    expect(limiter.tryAcquire(0)).toBe(ALLOWED)
  })

  test('per-source keys are independent', () => {
    const clock = new VirtualClock()
    const limiter = createRateLimiter(fiftyPerSecond(algorithm, {requests: 2, burst: 2, perSource: true}), clock)
    expect([1, 2, 3].map(() => acquire(limiter, clock, 'frontend').allowed)).toEqual([true, true, false])
    expect([1, 2, 3].map(() => acquire(limiter, clock, 'checkout').allowed)).toEqual([true, true, false])
    expect(limiter.size()).toBe(2)
  })
})

describe('keyed limiter', () => {
  test('without perSource, all sources share one limiter', () => {
    const clock = new VirtualClock()
    const limiter = createRateLimiter(fiftyPerSecond('fixed-window', {requests: 2}), clock)
    expect(acquire(limiter, clock, 'a').allowed).toBe(true)
    expect(acquire(limiter, clock, 'b').allowed).toBe(true)
    expect(acquire(limiter, clock, 'c').allowed).toBe(false)
    expect(limiter.size()).toBe(1)
  })

  test('keeps at most maxConsumers sources, dropping the least recently seen', () => {
    const clock = new VirtualClock()
    const limiter = createRateLimiter(fiftyPerSecond('fixed-window', {requests: 1, perSource: true, maxConsumers: 3}), clock)
    for (const k of ['a', 'b', 'c']) expect(acquire(limiter, clock, k).allowed).toBe(true)
    expect(acquire(limiter, clock, 'a').allowed).toBe(false) // a is now the most recent
    expect(acquire(limiter, clock, 'd').allowed).toBe(true) // evicts b
    expect(limiter.size()).toBe(3)
    expect(acquire(limiter, clock, 'a').allowed).toBe(false) // a kept its state
    expect(acquire(limiter, clock, 'b').allowed).toBe(true) // b started afresh
  })
})

test('fixed-window: Retry-After is the rest of the window, in a later window as in the first', () => {
  const limiter = createLimiter(fiftyPerSecond('fixed-window', {requests: 3}), 0)
  for (let i = 0; i < 3; i++) expect(limiter.tryAcquire(5_020).allowed).toBe(true)
  expect(limiter.tryAcquire(5_050)).toEqual({allowed: false, retryAfterMs: 950})
  expect(limiter.tryAcquire(5_999).allowed).toBe(false)
  expect(limiter.tryAcquire(6_000).allowed).toBe(true)
})

describe('sliding-window: its estimate and its Retry-After, exactly', () => {
  const tenPerSecond = () => createLimiter(fiftyPerSecond('sliding-window', {requests: 10}), 0)

  test('full in this window: the wait runs into the next one, until the previous window\'s share has shrunk enough', () => {
    const limiter = tenPerSecond()
    for (let i = 0; i < 10; i++) expect(limiter.tryAcquire(0).allowed).toBe(true)
    // At 500 ms: nothing until the next window (500 ms), and then until 10 × (1 - t/1000) + 1 ≤ 10 (100 ms more).
    expect(limiter.tryAcquire(500)).toEqual({allowed: false, retryAfterMs: 600})
    expect(limiter.tryAcquire(1_099).allowed).toBe(false)
    expect(limiter.tryAcquire(1_100).allowed).toBe(true)
  })

  test('in a new window weighed down by the previous one: the wait is within this window', () => {
    const limiter = tenPerSecond()
    for (let i = 0; i < 10; i++) limiter.tryAcquire(999)
    // previous = 10, current = 0 at 1000: room for 9 more once 10 × (1 - t/1000) ≤ 9, at t = 100.
    expect(limiter.tryAcquire(1_000)).toEqual({allowed: false, retryAfterMs: 100})
    expect(limiter.tryAcquire(1_050)).toEqual({allowed: false, retryAfterMs: 50})
    expect(limiter.tryAcquire(1_100).allowed).toBe(true)
    // One more at 1100 fills it again: 10 × 0.9 + 1 = 10; the next needs 10 × (1 - t) + 1 ≤ 9, t = 200.
    expect(limiter.tryAcquire(1_100)).toEqual({allowed: false, retryAfterMs: 100})
  })

  test('a window two periods back counts for nothing', () => {
    const limiter = tenPerSecond()
    for (let i = 0; i < 10; i++) limiter.tryAcquire(0)
    let admitted = 0
    while (admitted < 20 && limiter.tryAcquire(2_000).allowed) admitted++
    expect(admitted).toBe(10)
  })
})

describe('algorithm shapes', () => {
  test('token-bucket admits its burst at once, then the steady rate', () => {
    const limiter = createLimiter(fiftyPerSecond('token-bucket', {burst: 10}), 0)
    let n = 0
    while (n < 1_000 && limiter.tryAcquire(0).allowed) n++
    expect(n).toBe(10)
    expect(limiter.tryAcquire(0).retryAfterMs).toBe(20)
    expect(limiter.tryAcquire(20).allowed).toBe(true)
  })

  test('leaky-bucket admits `burst` back to back, then one per 1/rate', () => {
    const limiter = createLimiter(fiftyPerSecond('leaky-bucket', {burst: 3}), 0)
    expect([0, 0, 0, 0].map((t) => limiter.tryAcquire(t).allowed)).toEqual([true, true, true, false])
    expect(limiter.tryAcquire(1).retryAfterMs).toBe(19)
    expect(limiter.tryAcquire(20).allowed).toBe(true)
    expect(limiter.tryAcquire(21).allowed).toBe(false)
  })

  test('fixed-window resets at the window edge; sliding-window does not give 2× there', () => {
    const fixed = createLimiter(fiftyPerSecond('fixed-window', {requests: 10}), 0)
    const sliding = createLimiter(fiftyPerSecond('sliding-window', {requests: 10}), 0)
    const burstAt = (l: ReturnType<typeof createLimiter>, t: number) => {
      let n = 0
      for (let i = 0; i < 20; i++) if (l.tryAcquire(t).allowed) n++
      return n
    }
    expect(burstAt(fixed, 999) + burstAt(fixed, 1_000)).toBe(20)
    expect(burstAt(sliding, 999) + burstAt(sliding, 1_000)).toBe(10)
  })

  test('sliding-log is exact over any period', () => {
    const log = createLimiter(fiftyPerSecond('sliding-log', {requests: 3}), 0)
    expect([0, 400, 800, 999].map((t) => log.tryAcquire(t).allowed)).toEqual([true, true, true, false])
    expect(log.tryAcquire(999).retryAfterMs).toBe(1)
    expect(log.tryAcquire(1_000).allowed).toBe(true)
    expect(log.tryAcquire(1_300).allowed).toBe(false)
    expect(log.tryAcquire(1_400).allowed).toBe(true)
  })
})
