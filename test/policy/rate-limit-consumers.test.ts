// Per-consumer rate limits (policy.rateLimit key and tiers) on a virtual clock: each
// consumer its own bucket at its tier's rate, the anonymous bucket, the LRU bound, the
// IETF draft's RateLimit-* headers, and a consumer dropped while its request is in flight.
import {describe, expect, test} from 'vitest'
import type {ConsumerKey, RateLimitAlgorithm, RateLimitConfig, RateTier} from '../../src/sim/config/types.js'
import {rateLimit} from '../../src/sim/proxy/layers/rate-limit.js'
import {createLimiter, createRateLimiter, DEFAULT_MAX_CONSUMERS, type KeyedRateLimiter, type RateLimitedRequest} from '../../src/sim/proxy/policy/rate-limit.js'
import {Cancellation} from '../../src/sim/proxy/cancellation.js'
import {ProxyError} from '../../src/sim/proxy/respond.js'
import {whenAborted} from '../../src/sim/abort-signal.js'
import type {MeshResponse} from '../../src/sim/proxy/stack.js'
import {VirtualClock} from '../../src/sim/time/clock.js'
import {callContext, meshRequest, viaPromises} from '../helpers/proxy-context.js'

const ALGORITHMS: RateLimitAlgorithm[] = ['token-bucket', 'leaky-bucket', 'fixed-window', 'sliding-log', 'sliding-window']

const perSecond = (requests: number, burst: number): RateTier => ({requests, periodMs: 1000, burst})

/** free 10/s, gold 200/s, anyone else 5/s; small bursts, so 3 s of steady rate is what the buckets admit too. */
const plans = (algorithm: RateLimitAlgorithm, key: ConsumerKey, by: ConsumerKey, over: Partial<RateLimitConfig> = {}): RateLimitConfig => ({
  algorithm,
  ...perSecond(5, 1),
  perSource: false,
  key,
  tiers: {by, limits: {free: perSecond(10, 2), gold: perSecond(200, 20)}},
  ...over,
})
const byHeader = (algorithm: RateLimitAlgorithm, over: Partial<RateLimitConfig> = {}) => plans(algorithm, {header: 'x-api-key'}, {header: 'x-plan'}, over)

const withClaims = (claims: Record<string, unknown>): RateLimitedRequest => ({source: 'ingress', headers: {}, auth: {outcome: 'valid', principal: `mesh/${claims.sub}`, claims}})
const withHeaders = (headers: Record<string, string>): RateLimitedRequest => ({source: 'ingress', headers})
const acquire = (limits: KeyedRateLimiter, clock: VirtualClock, req: RateLimitedRequest) => limits.limiterFor(req).tryAcquire(clock.now()).allowed

describe.each(ALGORITHMS)('%s', (algorithm) => {
  test('free (10/s) and gold (200/s) driven at 100/s each for 3 s get about 30 and 300', async () => {
    const clock = new VirtualClock()
    const limits = createRateLimiter(plans(algorithm, {claim: 'sub'}, {claim: 'plan'}), clock)
    const alice = withClaims({sub: 'alice', plan: 'free'})
    const bob = withClaims({sub: 'bob', plan: 'gold'})
    let free = 0
    let gold = 0
    for (let i = 0; i < 300; i++) {
      if (acquire(limits, clock, alice)) free++
      if (acquire(limits, clock, bob)) gold++
      await clock.advance(10)
    }
    expect(free).toBeGreaterThanOrEqual(27)
    expect(free).toBeLessThanOrEqual(33)
    expect(gold).toBeGreaterThanOrEqual(270)
    expect(gold).toBeLessThanOrEqual(300)
    expect(limits.size()).toBe(2)
  })

  test('gold driven past its rate is held to it, while free is held to its own', () => {
    const clock = new VirtualClock()
    const limits = createRateLimiter(byHeader(algorithm), clock)
    // 1 s at 1,000/s each (1 ms apart): gold gets about 200 (+ its burst), free about 10.
    let free = 0
    let gold = 0
    for (let t = 0; t < 1000; t++) {
      if (limits.limiterFor(withHeaders({'x-api-key': 'k-free', 'x-plan': 'free'})).tryAcquire(t).allowed) free++
      if (limits.limiterFor(withHeaders({'x-api-key': 'k-gold', 'x-plan': 'gold'})).tryAcquire(t).allowed) gold++
    }
    expect(free).toBeGreaterThanOrEqual(9)
    expect(free).toBeLessThanOrEqual(12)
    expect(gold).toBeGreaterThanOrEqual(180)
    expect(gold).toBeLessThanOrEqual(221)
  })

  test('quota: limit, remaining and reset from fresh, after some, and when refused', () => {
    // 10/s, burst 10: every algorithm lets 10 arrive at once from fresh.
    const limiter = createLimiter({algorithm, ...perSecond(10, 10)}, 0)
    expect(limiter.quota(0)).toEqual({limit: 10, remaining: 10, resetMs: 0})
    for (let i = 0; i < 3; i++) expect(limiter.tryAcquire(0).allowed).toBe(true)
    const after3 = limiter.quota(0)
    expect(after3.limit).toBe(10)
    expect(after3.remaining).toBe(7)
    expect(after3.resetMs).toBeGreaterThan(0)
    expect(after3.resetMs).toBeLessThanOrEqual(2000)
    while (limiter.tryAcquire(0).allowed);
    expect(limiter.quota(0).remaining).toBe(0)
    // Asking changes nothing: the same answer twice, and the next decision unchanged.
    expect(limiter.quota(0)).toEqual(limiter.quota(0))
    expect(limiter.tryAcquire(0).allowed).toBe(false)
    // After the reset it says, the quota is whole again.
    const reset = limiter.quota(0).resetMs
    expect(limiter.quota(reset)).toMatchObject({remaining: 10, resetMs: 0})
  })
})

describe('consumers and tiers', () => {
  test('a request with no key falls into one shared anonymous bucket at the default tier, whatever tier it claims', () => {
    const clock = new VirtualClock()
    const limits = createRateLimiter(byHeader('fixed-window'), clock)
    // Default 5/s: five anonymous requests in all, however they split between "callers".
    const anonymous = ([{}, {'x-plan': 'gold'}, {'x-api-key': ''}, {}, {'x-plan': 'gold'}, {}] as Array<Record<string, string>>).map((h) => acquire(limits, clock, withHeaders(h)))
    expect(anonymous).toEqual([true, true, true, true, true, false])
    expect(limits.size()).toBe(0)
    expect(acquire(limits, clock, withHeaders({'x-api-key': 'k1'}))).toBe(true)
    expect(limits.whose(withHeaders({'x-plan': 'gold'}))).toBe(' without x-api-key (they share one bucket; tier default: 5/1s)')
  })

  test('a tier not in limits, or none, is the default; default may name a tier', () => {
    const clock = new VirtualClock()
    const limits = createRateLimiter(byHeader('fixed-window', {tiers: {by: {header: 'x-plan'}, limits: {free: perSecond(2, 2), gold: perSecond(200, 20)}, defaultTier: 'free'}, ...perSecond(2, 2)}), clock)
    const burst = (h: Record<string, string>) => Array.from({length: 4}, () => acquire(limits, clock, withHeaders(h))).filter(Boolean).length
    expect(burst({'x-api-key': 'a', 'x-plan': 'platinum'})).toBe(2)
    expect(burst({'x-api-key': 'b'})).toBe(2)
    expect(burst({'x-api-key': 'c', 'x-plan': 'gold'})).toBe(4)
    // Named default and free are one tier: c's "no plan" and "free" requests share c's free bucket.
    expect(burst({'x-api-key': 'd', 'x-plan': 'free'}) + burst({'x-api-key': 'd'})).toBe(2)
    expect(limits.whose(withHeaders({'x-api-key': 'b'}))).toMatch(/^ from x-api-key #[0-9a-f]{8} \(tier free: 2\/1s\)$/)
  })

  test('each plan a consumer uses is its own bucket: switching plans cannot refill one', () => {
    const clock = new VirtualClock()
    const limits = createRateLimiter(byHeader('token-bucket'), clock)
    const as = (plan: string) => acquire(limits, clock, withHeaders({'x-api-key': 'k', 'x-plan': plan}))
    const admitted = Array.from({length: 40}, (_, i) => as(i % 2 ? 'free' : 'platinum')).filter(Boolean).length
    // free's burst 2 + the default tier's burst 1, never more.
    expect(admitted).toBe(3)
    expect(limits.size()).toBe(1)
  })

  test('claims: a number is a key; an object, a list, or no valid token is anonymous', () => {
    const clock = new VirtualClock()
    const limits = createRateLimiter(plans('fixed-window', {claim: 'sub'}, {claim: 'plan'}), clock)
    acquire(limits, clock, withClaims({sub: 42, plan: 'gold'}))
    acquire(limits, clock, withClaims({sub: {id: 1}}))
    acquire(limits, clock, withClaims({sub: ['a']}))
    acquire(limits, clock, {source: 'ingress', headers: {}, auth: {outcome: 'none'}})
    expect(limits.size()).toBe(1)
    expect(limits.whose(withClaims({sub: 42, plan: 'gold'}))).toBe(' from claim sub "42" (tier gold: 200/1s)')
    expect(limits.whose(withClaims({sub: 'alice'}))).toBe(' from claim sub "alice" (tier default: 5/1s)')
  })

  test('a key longer than 64 characters is kept as its hash: long keys neither collide nor grow the map', () => {
    const clock = new VirtualClock()
    const limits = createRateLimiter(byHeader('fixed-window', {tiers: undefined, ...perSecond(1, 1)}), clock)
    const long = (tail: string) => withHeaders({'x-api-key': `${'k'.repeat(8000)}${tail}`})
    expect(acquire(limits, clock, long('a'))).toBe(true)
    expect(acquire(limits, clock, long('b'))).toBe(true)
    expect(acquire(limits, clock, long('a'))).toBe(false)
    expect(limits.size()).toBe(2)
  })
})

describe('bounded memory (LRU of consumers)', () => {
  test(`25,000 distinct keys leave at most the default cap of ${DEFAULT_MAX_CONSUMERS.toLocaleString('en')} limiters, and a busy consumer keeps its state`, () => {
    const clock = new VirtualClock()
    const limits = createRateLimiter(byHeader('sliding-log', {tiers: undefined, ...perSecond(3, 3)}), clock)
    const hot = withHeaders({'x-api-key': 'hot'})
    for (let i = 0; i < 3; i++) expect(acquire(limits, clock, hot)).toBe(true)
    for (let i = 0; i < 25_000; i++) {
      if (!acquire(limits, clock, withHeaders({'x-api-key': `key-${i}`}))) throw new Error(`key-${i} refused`)
      // Seen every 1,000 keys, "hot" is never the least recently used: still refused, not refilled.
      if (i % 1000 === 0) {
        expect(acquire(limits, clock, hot)).toBe(false)
        expect(limits.size()).toBeLessThanOrEqual(DEFAULT_MAX_CONSUMERS)
      }
    }
    expect(limits.size()).toBe(DEFAULT_MAX_CONSUMERS)
    // The oldest keys went: key-0 starts afresh (admitted though it used its first request).
    expect(acquire(limits, clock, withHeaders({'x-api-key': 'key-0'}))).toBe(true)
  })

  test('maxConsumers sets the cap', () => {
    const clock = new VirtualClock()
    const limits = createRateLimiter(byHeader('token-bucket', {maxConsumers: 100}), clock)
    for (let i = 0; i < 1000; i++) acquire(limits, clock, withHeaders({'x-api-key': `key-${i}`, 'x-plan': i % 2 ? 'free' : 'gold'}))
    expect(limits.size()).toBe(100)
  })
})

describe('the layer: RateLimit-* headers and Retry-After', () => {
  const ok = (headers: string[] = []): MeshResponse => ({status: 200, headers, body: null})
  const header = (res: MeshResponse, name: string) => {
    const values = res.headers.filter((_, i) => i % 2 === 0 && res.headers[i] === name).length
    expect(values).toBeLessThanOrEqual(1)
    const i = res.headers.indexOf(name)
    return i >= 0 ? res.headers[i + 1] : undefined
  }

  test('admitted answers carry Limit, Remaining and Reset in place of the instance\'s own; refused ones add Retry-After', async () => {
    const clock = new VirtualClock()
    // Token bucket, free 10/s with burst 2: after one request, 1 left and 100 ms to refill → Reset 1 s.
    const limits = createRateLimiter(byHeader('token-bucket'), clock)
    const call = viaPromises(rateLimit('api', limits))(async () => ok(['RateLimit-Limit', '999', 'x-app', 'yes', 'ratelimit-remaining', '999']))
    const req = meshRequest({headers: {'x-api-key': 'secret-key', 'x-plan': 'free'}})
    const first = await call(req, callContext(clock))
    expect([header(first, 'ratelimit-limit'), header(first, 'ratelimit-remaining'), header(first, 'ratelimit-reset')]).toEqual(['2', '1', '1'])
    expect(header(first, 'RateLimit-Limit')).toBeUndefined()
    expect(header(first, 'x-app')).toBe('yes')
    const second = await call(req, callContext(clock))
    expect(header(second, 'ratelimit-remaining')).toBe('0')
    const refused = await call(req, callContext(clock)).catch((e: unknown) => e)
    expect(refused).toBeInstanceOf(ProxyError)
    const error = refused as ProxyError
    expect([error.status, error.flag]).toEqual([429, 'RL'])
    // 2 tokens at 10/s: 100 ms to the next (Retry-After 1 s), 200 ms to a full bucket (Reset 1 s).
    expect(error.headers).toEqual({'ratelimit-limit': '2', 'ratelimit-remaining': '0', 'ratelimit-reset': '1', 'retry-after': '1'})
    expect(error.message).toMatch(/^rate limited: "api" admits no more requests from x-api-key #[0-9a-f]{8} \(tier free: 10\/1s\) right now/)
    expect(error.message).not.toContain('secret-key')
  })

  test('Reset counts whole seconds to a fresh window (fixed-window, 10/m)', async () => {
    const clock = new VirtualClock(30_000)
    const limits = createRateLimiter({algorithm: 'fixed-window', requests: 10, periodMs: 60_000, burst: 10, perSource: false}, clock)
    const call = viaPromises(rateLimit('api', limits))(async () => ok())
    const res = await call(meshRequest(), callContext(clock))
    expect([header(res, 'ratelimit-limit'), header(res, 'ratelimit-remaining'), header(res, 'ratelimit-reset')]).toEqual(['10', '9', '30'])
  })

  test('an inner failure goes up as it is, with nothing added', async () => {
    const clock = new VirtualClock()
    const limits = createRateLimiter(byHeader('fixed-window'), clock)
    const boom = new ProxyError(503, 'UH', 'no healthy upstream')
    const call = viaPromises(rateLimit('api', limits))(async () => Promise.reject(boom))
    await expect(call(meshRequest(), callContext(clock))).rejects.toBe(boom)
    expect(boom.headers).toBeUndefined()
  })

  test('a consumer dropped from the map while its request is in flight: the answer still gets its headers; it comes back afresh', async () => {
    const clock = new VirtualClock()
    const limits = createRateLimiter(byHeader('sliding-log', {tiers: undefined, ...perSecond(1, 1), maxConsumers: 2}), clock)
    const pending: Array<() => void> = []
    const call = viaPromises(rateLimit('api', limits))(() => new Promise<MeshResponse>((resolve) => pending.push(() => resolve(ok()))))
    const as = (key: string) => call(meshRequest({headers: {'x-api-key': key}}), callContext(clock))
    const inFlight = as('a')
    await expect(as('a')).rejects.toMatchObject({status: 429})
    // b and c push a out while its first request is still under way.
    const others = [as('b'), as('c')]
    expect(limits.size()).toBe(2)
    for (const release of pending.splice(0)) release()
    const answer = await inFlight
    expect([header(answer, 'ratelimit-limit'), header(answer, 'ratelimit-remaining'), header(answer, 'ratelimit-reset')]).toEqual(['1', '0', '1'])
    await Promise.all(others)
    // a starts afresh: its old limiter (with its request counted) is gone, nothing left holding it.
    const again = as('a')
    expect(pending).toHaveLength(1)
    pending.pop()!()
    expect(header(await again, 'ratelimit-remaining')).toBe('0')
    expect(limits.size()).toBe(2)
  })

  test('an aborted request is counted (it arrived) and takes nothing it must give back', async () => {
    const clock = new VirtualClock()
    const limits = createRateLimiter(byHeader('token-bucket', {tiers: undefined, ...perSecond(1, 2)}), clock)
    const controller = new Cancellation()
    const call = viaPromises(rateLimit('api', limits))((_req, ctx) => new Promise<MeshResponse>((_resolve, reject) => whenAborted(ctx.signal, () => reject(ctx.signal.reason))))
    const req = meshRequest({headers: {'x-api-key': 'k'}})
    const aborted = call(req, callContext(clock, {controller}))
    controller.abort(new Error('client went away'))
    await expect(aborted).rejects.toThrow('client went away')
    expect(limits.limiterFor(req).quota(clock.now()).remaining).toBe(1)
  })
})
