import {describe, expect, test} from 'vitest'
import {fullJitterBackoff} from '../../src/sim/proxy/policy/backoff.js'
import {RetryBudget} from '../../src/sim/proxy/policy/retry-budget.js'
import {httpStatusOfGrpc} from '../../src/sim/proxy/grpc.js'
import {type Outcome, isNamedGrpcRetry, isRetriable, outlierOutcome} from '../../src/sim/proxy/policy/retry-classify.js'
import {isIdempotent} from '../../src/sim/config/retry-semantics.js'
import {VirtualClock} from '../../src/sim/time/clock.js'
import {SeededRandom} from '../../src/sim/time/random.js'

describe('fullJitterBackoff', () => {
  const cfg = {baseMs: 25, maxMs: 250}

  test('stays within [0, min(max, base·2^(n-1))]', () => {
    const random = new SeededRandom(1)
    for (let attempt = 1; attempt <= 10; attempt++) {
      const ceiling = Math.min(250, 25 * 2 ** (attempt - 1))
      let max = 0
      for (let i = 0; i < 500; i++) {
        const d = fullJitterBackoff(attempt, cfg, random)
        expect(d).toBeGreaterThanOrEqual(0)
        expect(d).toBeLessThanOrEqual(ceiling)
        max = Math.max(max, d)
      }
      // Full jitter uses the whole range.
      expect(max).toBeGreaterThan(ceiling * 0.9)
    }
  })

  test('is deterministic per seed and survives huge attempt numbers', () => {
    const a = new SeededRandom(5)
    const b = new SeededRandom(5)
    const xs = [1, 2, 3, 4].map((n) => fullJitterBackoff(n, cfg, a))
    expect([1, 2, 3, 4].map((n) => fullJitterBackoff(n, cfg, b))).toEqual(xs)
    expect(fullJitterBackoff(5000, cfg, a)).toBeLessThanOrEqual(250)
  })
})

describe('RetryBudget', () => {
  test('against a 100% failing service at 100 req/s for 10 s, retries ≤ 0.2 × requests + 10 × 10, exactly', async () => {
    const clock = new VirtualClock()
    const budget = new RetryBudget({ratio: 0.2, minPerSecond: 10}, clock)
    let requests = 0
    let retries = 0
    for (let i = 0; i < 1000; i++) {
      if (i > 0) await clock.advance(10) // requests at 0, 10, …, 9990 ms: all inside one 10 s window
      budget.deposit()
      requests++
      // Every attempt fails; each request would retry 3 times if the budget let it.
      for (let r = 0; r < 3 && budget.withdraw(); r++) retries++
      expect(retries).toBeLessThanOrEqual(0.2 * requests + 10 * 10)
    }
    expect(requests).toBe(1000)
    expect(retries).toBe(0.2 * 1000 + 10 * 10)
    expect(budget.remaining()).toBe(0)
    expect(budget.withdraw()).toBe(false)
  })

  test('the floor alone allows minPerSecond × ttl retries with no traffic', () => {
    const budget = new RetryBudget({ratio: 0.2, minPerSecond: 10, ttlMs: 10_000}, new VirtualClock())
    expect(budget.remaining()).toBe(100)
    // Bounded: a budget that never runs dry fails here rather than hanging the run.
    let n = 0
    while (n < 1_000 && budget.withdraw()) n++
    expect(n).toBe(100)
  })

  test('requests age out bucket by bucket: a ttl after a burst of requests, only the later ones fund retries', async () => {
    const clock = new VirtualClock()
    const budget = new RetryBudget({ratio: 0.5, minPerSecond: 0, ttlMs: 1_000}, clock)
    for (let i = 0; i < 10; i++) budget.deposit() // bucket 0
    await clock.advance(500)
    for (let i = 0; i < 10; i++) budget.deposit() // bucket 5
    expect(budget.remaining()).toBe(10)
    await clock.advance(499) // t = 999: both still in the window
    expect(budget.remaining()).toBe(10)
    await clock.advance(1) // t = 1000: the first ten left it
    expect(budget.remaining()).toBe(5)
    await clock.advance(499) // t = 1499
    expect(budget.remaining()).toBe(5)
    await clock.advance(1) // t = 1500: all of them
    expect(budget.remaining()).toBe(0)
  })

  test('old requests and retries age out of the window', async () => {
    const clock = new VirtualClock()
    const budget = new RetryBudget({ratio: 0.5, minPerSecond: 0, ttlMs: 1_000}, clock)
    for (let i = 0; i < 10; i++) budget.deposit()
    expect(budget.remaining()).toBe(5)
    for (let i = 0; i < 5; i++) expect(budget.withdraw()).toBe(true)
    expect(budget.withdraw()).toBe(false)
    await clock.advance(1_000)
    expect(budget.remaining()).toBe(0) // the deposits aged out with the withdrawals
    budget.deposit()
    budget.deposit()
    expect(budget.withdraw()).toBe(true)
    expect(budget.withdraw()).toBe(false)
    await clock.advance(60_000)
    expect(budget.remaining()).toBe(0)
  })
})

describe('retry classification', () => {
  const res = (status: number): Outcome => ({kind: 'response', status})
  const cf: Outcome = {kind: 'connect-failure'}
  const reset: Outcome = {kind: 'reset'}
  const timeout: Outcome = {kind: 'timeout'}

  test('5xx: any 5xx or no response at all', () => {
    for (const o of [res(500), res(503), res(599), cf, reset, timeout]) expect(isRetriable(o, ['5xx'])).toBe(true)
    for (const o of [res(200), res(404), res(429)]) expect(isRetriable(o, ['5xx'])).toBe(false)
  })

  test('gateway-error: 502/503/504 or no response', () => {
    for (const o of [res(502), res(503), res(504), cf, reset]) expect(isRetriable(o, ['gateway-error'])).toBe(true)
    for (const o of [res(500), res(501), res(200)]) expect(isRetriable(o, ['gateway-error'])).toBe(false)
  })

  test('reset and connect-failure', () => {
    expect(isRetriable(reset, ['reset'])).toBe(true)
    expect(isRetriable(timeout, ['reset'])).toBe(true)
    expect(isRetriable(res(503), ['reset'])).toBe(false)
    expect(isRetriable(cf, ['connect-failure'])).toBe(true)
    expect(isRetriable(reset, ['connect-failure'])).toBe(false)
  })

  test('retriable status codes are the numbers in `on`', () => {
    expect(isRetriable(res(409), ['retriable-status-codes', 409])).toBe(true)
    expect(isRetriable(res(429), [429])).toBe(true)
    expect(isRetriable(res(410), ['retriable-status-codes', 409])).toBe(false)
    expect(isRetriable(res(500), ['retriable-status-codes'])).toBe(false)
    expect(isRetriable(res(500), [])).toBe(false)
  })

  test("gRPC names match a call's grpc-status; a gRPC status also counts as its HTTP equivalent", () => {
    // UNAVAILABLE (14) → 503, INTERNAL (13) → 500, NOT_FOUND (5) → 404 (grpc.ts).
    const grpc = (code: number): Outcome => ({kind: 'response', status: httpStatusOfGrpc(code), grpcStatus: code})
    expect(isRetriable(grpc(14), ['unavailable'])).toBe(true)
    expect(isRetriable(grpc(4), ['deadline-exceeded'])).toBe(true)
    expect(isRetriable(grpc(13), ['unavailable'])).toBe(false)
    expect(isRetriable(grpc(14), ['gateway-error'])).toBe(true)
    expect(isRetriable(grpc(13), ['5xx'])).toBe(true)
    expect(isRetriable(grpc(5), ['5xx', 'unavailable', 'internal'])).toBe(false)
    // An HTTP 503 is not a gRPC status: the gRPC names do not match it.
    expect(isRetriable(res(503), ['unavailable'])).toBe(false)
    // Named by its gRPC name, a call is replayed although gRPC calls are POSTs; 5xx alone does not say so.
    expect(isNamedGrpcRetry(grpc(14), ['unavailable'])).toBe(true)
    expect(isNamedGrpcRetry(grpc(14), ['5xx'])).toBe(false)
    expect(isNamedGrpcRetry(res(503), ['unavailable'])).toBe(false)
    expect(outlierOutcome(grpc(14))).toBe('gateway-error')
    expect(outlierOutcome(grpc(5))).toBe('success')
  })

  test('idempotent methods', () => {
    for (const m of ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE', 'get']) expect(isIdempotent(m)).toBe(true)
    for (const m of ['POST', 'PATCH', 'CONNECT', 'post']) expect(isIdempotent(m)).toBe(false)
  })

  test('outcomes as outlier detection counts them', () => {
    expect(outlierOutcome(res(200))).toBe('success')
    expect(outlierOutcome(res(404))).toBe('success')
    expect(outlierOutcome(res(500))).toBe('5xx')
    expect(outlierOutcome(res(503))).toBe('gateway-error')
    expect(outlierOutcome(cf)).toBe('local-failure')
    expect(outlierOutcome(reset)).toBe('local-failure')
    expect(outlierOutcome(timeout)).toBe('local-failure')
  })
})
