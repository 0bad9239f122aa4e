// Each layer alone over a scripted inner service, on a virtual clock: what it
// returns or throws, and when each inner call happened.
import {Readable} from 'node:stream'
import {describe, expect, test} from 'vitest'
import {type Endpoint, Registry} from '../../src/sim/proxy/registry.js'
import {createBalancer} from '../../src/sim/proxy/balance/create-balancer.js'
import {EndpointSet} from '../../src/sim/proxy/endpoint-set.js'
import {ResponseBody} from '../../src/sim/proxy/body.js'
import {Cancellation} from '../../src/sim/proxy/cancellation.js'
import {balance} from '../../src/sim/proxy/layers/balance.js'
import {circuitBreaker} from '../../src/sim/proxy/layers/circuit-breaker.js'
import {retry} from '../../src/sim/proxy/layers/retry.js'
import {route} from '../../src/sim/proxy/layers/route.js'
import {timeout} from '../../src/sim/proxy/layers/timeout.js'
import {CircuitBreaker} from '../../src/sim/proxy/policy/circuit-breaker.js'
import {RetryBudget} from '../../src/sim/proxy/policy/retry-budget.js'
import {connectFailure, ProxyError} from '../../src/sim/proxy/respond.js'
import type {CallContext, MeshResponse} from '../../src/sim/proxy/stack.js'
import {VirtualClock} from '../../src/sim/time/clock.js'
import {SeededRandom} from '../../src/sim/time/random.js'
import type {RetryConfig} from '../../src/sim/config/types.js'
import {type AsyncService, callContext, fromAsync, meshRequest, readBody, viaPromises} from '../helpers/proxy-context.js'

const request = meshRequest
const context = (clock: VirtualClock, controller?: Cancellation) => callContext(clock, {controller})

const ok = (status = 200): MeshResponse => ({status, headers: [], body: null})

/** An inner service that answers from a script and records when and how it was called. */
function scripted(clock: VirtualClock, script: Array<(ctx: CallContext) => Promise<MeshResponse>>) {
  const calls: Array<{at: number; attempt: number; endpoint?: string}> = []
  const service: AsyncService = async (_req, ctx) => {
    calls.push({at: clock.now(), attempt: ctx.attempt, endpoint: ctx.endpoint?.instance})
    const step = script[Math.min(calls.length - 1, script.length - 1)]
    return step(ctx)
  }
  return {service, calls}
}

const retries: RetryConfig = {attempts: 2, on: ['5xx'], backoff: {baseMs: 100, maxMs: 1000}, budget: {ratio: 0.2, minPerSecond: 10}}

describe('timeout layer', () => {
  test('answers 504 UT at the deadline and aborts the work below', async () => {
    const clock = new VirtualClock()
    let aborted: unknown
    const inner: AsyncService = (_req, ctx) =>
      new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject((aborted = ctx.signal.reason))))
    const svc = viaPromises(timeout({service: 'api', timeoutMs: 300, which: 'overall'}))(inner)
    const ctx = context(clock)
    const result = svc(request(), ctx).catch((e: ProxyError) => e)
    await clock.advance(299)
    expect(aborted).toBeUndefined()
    await clock.advance(1)
    const error = (await result) as ProxyError
    expect(error).toBeInstanceOf(ProxyError)
    expect([error.status, error.flag]).toEqual([504, 'UT'])
    expect(aborted).toBe(error)
    expect(ctx.decision.timeoutFired).toBe('overall')
  })

  test('the overall deadline covers the body: one still streaming when it fires is cut with UT (as Envoy\'s route timeout)', async () => {
    const clock = new VirtualClock()
    const body = new ResponseBody()
    body.push(Buffer.from('first bytes'))
    const svc = viaPromises(timeout({service: 'api', timeoutMs: 300, which: 'overall'}))(async () => ({...ok(), body}))
    const ctx = context(clock)
    const response = await svc(request(), ctx)
    expect(response.body).toBe(body)
    const read = readBody(response.body!)
    await clock.advance(300)
    const {bytes, error} = await read
    expect(bytes.toString()).toBe('first bytes')
    expect([(error as ProxyError).status, (error as ProxyError).flag]).toEqual([504, 'UT'])
    expect(body.closed).toBe(true)
    expect(body.errored).toBe(error)
    expect(ctx.decision.timeoutFired).toBe('overall')
  })

  test("a gRPC caller's sooner deadline (grpc-timeout) is the overall one; a later one leaves the policy's", async () => {
    const clock = new VirtualClock()
    const hang: AsyncService = (_req, ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)))
    const svc = viaPromises(timeout({service: 'api', timeoutMs: 300, which: 'overall', callerDeadline: true}))(hang)

    const sooner = context(clock)
    const first = svc(request({headers: {'grpc-timeout': '200000u'}}), sooner).catch((e: ProxyError) => e)
    await clock.advance(199)
    expect(sooner.decision.timeoutFired).toBeUndefined()
    await clock.advance(1)
    const error = (await first) as ProxyError
    expect([error.status, error.flag]).toEqual([504, 'UT'])
    expect(error.message).toBe('upstream request timeout: "api" did not answer within the 200 ms the caller\'s deadline left (grpc-timeout)')
    expect(sooner.decision.timeoutFired).toBe('grpc-timeout')

    const later = context(clock)
    const second = svc(request({headers: {'grpc-timeout': '1S'}}), later).catch((e: ProxyError) => e)
    await clock.advance(300)
    expect(((await second) as ProxyError).message).toContain('its 300 ms timeout (policy.timeout)')
    expect(later.decision.timeoutFired).toBe('overall')
    await clock.advance(1000)
    expect(clock.pending()).toBe(0)
  })

  test('with no timeout configured the overall layer applies only a grpc-timeout, and cancels its timer when answered', async () => {
    const clock = new VirtualClock()
    let answer: ((r: MeshResponse) => void) | undefined
    const svc = viaPromises(timeout({service: 'api', timeoutMs: 0, which: 'overall', callerDeadline: true}))(() => new Promise((resolve) => (answer = resolve)))
    const plain = context(clock)
    const untimed = svc(request(), plain)
    expect(clock.pending()).toBe(0)
    await clock.advance(60_000)
    answer!(ok())
    expect((await untimed).status).toBe(200)

    const timed = svc(request({headers: {'grpc-timeout': '5S'}}), context(clock))
    expect(clock.pending()).toBe(1)
    await clock.advance(10)
    answer!(ok())
    expect((await timed).status).toBe(200)
    // Cancelled, not left to lapse: a call that answered in time is not kept for the rest of its deadline.
    expect(clock.pending()).toBe(0)

    const malformed = context(clock)
    const ignored = svc(request({headers: {'grpc-timeout': 'soon'}}), malformed)
    expect(clock.pending()).toBe(0)
    answer!(ok())
    expect((await ignored).status).toBe(200)
  })

  test('a body that ends before the overall deadline cancels it; a per-try deadline never cuts a body', async () => {
    const clock = new VirtualClock()
    const ending = new ResponseBody()
    const overall = viaPromises(timeout({service: 'api', timeoutMs: 300, which: 'overall'}))(async () => ({...ok(), body: ending}))
    const first = context(clock)
    const read = readBody((await overall(request(), first)).body!)
    ending.push(Buffer.from('done'))
    ending.end()
    expect((await read).bytes.toString()).toBe('done')
    await clock.advance(1000)
    expect(first.decision.timeoutFired).toBeUndefined()
    expect(ending.errored).toBeNull()
    // The clock timer lapsed with nothing due, and was not re-armed.
    expect(clock.pending()).toBe(0)

    const stalled = new ResponseBody()
    const perTry = viaPromises(timeout({service: 'api', timeoutMs: 300, which: 'per-try'}))(async () => ({...ok(), body: stalled}))
    const ctx = context(clock)
    void readBody((await perTry(request(), ctx)).body!)
    await clock.advance(1000)
    expect(stalled.closed).toBe(false)
    expect(ctx.decision.timeoutFired).toBeUndefined()
  })

  test('a fast answer cancels its deadline', async () => {
    const clock = new VirtualClock()
    let aborted = false
    const svc = viaPromises(timeout({service: 'api', timeoutMs: 300, which: 'per-try'}))(async (_req, ctx) => {
      ctx.signal.addEventListener('abort', () => (aborted = true))
      return ok()
    })
    const ctx = context(clock)
    expect((await svc(request(), ctx)).status).toBe(200)
    await clock.advance(1000)
    expect(aborted).toBe(false)
    expect(ctx.decision.timeoutFired).toBeUndefined()
    expect(clock.pending()).toBe(0)
  })
})

describe('retry layer', () => {
  const deps = (clock: VirtualClock) => ({budget: new RetryBudget(retries.budget, clock), random: new SeededRandom(3)})

  test('retries a 5xx after a jittered backoff and returns the first success', async () => {
    const clock = new VirtualClock()
    const {service, calls} = scripted(clock, [async () => ok(503), async () => ok(503), async () => ok(200)])
    const ctx = context(clock)
    const result = viaPromises(retry(retries, deps(clock)))(service)(request(), ctx)
    await clock.runAll()
    expect((await result).status).toBe(200)
    expect(calls.map((c) => c.attempt)).toEqual([1, 2, 3])
    // Full jitter: each wait within [0, base·2^(n-1)].
    expect(calls[1].at - calls[0].at).toBeLessThanOrEqual(100)
    expect(calls[2].at - calls[1].at).toBeLessThanOrEqual(200)
    expect(ctx.decision.attempts).toBe(3)
  })

  test('gives up after `attempts` retries and returns the last answer', async () => {
    const clock = new VirtualClock()
    const {service, calls} = scripted(clock, [async () => ok(500)])
    const result = viaPromises(retry(retries, deps(clock)))(service)(request(), context(clock))
    await clock.runAll()
    expect((await result).status).toBe(500)
    expect(calls).toHaveLength(3)
  })

  test('never retries a POST after a 5xx, nor a body too large to replay — but does retry a POST whose connection failed', async () => {
    const clock = new VirtualClock()
    const fail = scripted(clock, [async () => ok(503)])
    const post = viaPromises(retry(retries, deps(clock)))(fail.service)(request({method: 'POST', body: Buffer.from('x')}), context(clock))
    await clock.runAll()
    expect((await post).status).toBe(503)
    expect(fail.calls).toHaveLength(1)

    const streamed = scripted(clock, [async () => ok(503)])
    const big = viaPromises(retry(retries, deps(clock)))(streamed.service)(request({method: 'PUT', body: Readable.from(['x']), replayable: false}), context(clock))
    await clock.runAll()
    expect((await big).status).toBe(503)
    expect(streamed.calls).toHaveLength(1)

    const refused = scripted(clock, [
      async () => {
        throw connectFailure('api-v1-0', '127.0.0.1:1', Object.assign(new Error('refused'), {code: 'ECONNREFUSED'}))
      },
      async () => ok(201),
    ])
    const post2 = viaPromises(retry({...retries, on: ['connect-failure']}, deps(clock)))(refused.service)(request({method: 'POST', body: Buffer.from('x')}), context(clock))
    await clock.runAll()
    expect((await post2).status).toBe(201)
  })

  test('a retry goes to another instance when one exists', async () => {
    const clock = new VirtualClock()
    const registry = new Registry(['api'])
    for (const i of [0, 1, 2]) {
      registry.add({instance: `api-v1-${i}`, service: 'api', version: 'v1', host: '127.0.0.1', port: i, inboundPort: i, origin: ''})
    }
    const endpoints = new EndpointSet('api', registry, new Map([['v1', 100]]))
    const balancer = createBalancer<Endpoint>({kind: 'round-robin'}, {clock, random: new SeededRandom(1), key: (e) => e.instance})
    const {service, calls} = scripted(clock, [async () => ok(503)])
    const stackOf = viaPromises((inner) =>
      retry(retries, deps(clock))(balance({service: 'api', endpoints, balancer: () => balancer, outlier: () => undefined, hashOn: () => undefined})(inner)),
    )(service)
    const ctx = {...context(clock), version: 'v1'}
    const result = stackOf(request(), ctx)
    await clock.runAll()
    await result
    expect(new Set(calls.map((c) => c.endpoint)).size).toBe(3)
  })

  test('with a per-try timeout between them: a try that times out is cut alone, the retry goes elsewhere, and the request keeps its own signal', async () => {
    const clock = new VirtualClock()
    const registry = new Registry(['api'])
    for (const i of [0, 1]) {
      registry.add({instance: `api-v1-${i}`, service: 'api', version: 'v1', host: '127.0.0.1', port: i, inboundPort: i, origin: ''})
    }
    const endpoints = new EndpointSet('api', registry, new Map([['v1', 100]]))
    const balancer = createBalancer<Endpoint>({kind: 'round-robin'}, {clock, random: new SeededRandom(1), key: (e) => e.instance})
    const trySignals: Cancellation[] = []
    const {service, calls} = scripted(clock, [
      (ctx) => {
        trySignals.push(ctx.signal)
        return new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)))
      },
      async (ctx) => {
        trySignals.push(ctx.signal)
        return ok()
      },
    ])
    const stackOf = viaPromises((inner) =>
      retry({...retries, on: ['5xx', 'gateway-error']}, deps(clock))(
        timeout({service: 'api', timeoutMs: 300, which: 'per-try'})(
          balance({service: 'api', endpoints, balancer: () => balancer, outlier: () => undefined, hashOn: () => undefined})(inner),
        ),
      ),
    )(service)
    const controller = new Cancellation()
    const ctx = {...context(clock, controller), version: 'v1'}
    const result = stackOf(request(), ctx)
    await clock.runAll()
    expect((await result).status).toBe(200)
    expect(calls.map((c) => c.endpoint)).toEqual(['api-v1-0', 'api-v1-1'])
    expect(ctx.decision.timeoutFired).toBe('per-try')
    expect(trySignals[0].aborted).toBe(true)
    expect(trySignals[1]).not.toBe(trySignals[0])
    expect(trySignals[1].aborted).toBe(false)
    expect(ctx.signal).toBe(controller)
    expect(controller.aborted).toBe(false)
  })
})

describe('circuit breaker layer', () => {
  test('past maxPendingRequests the caller gets 503 UO at once; a waiting request proceeds when a slot frees', async () => {
    const clock = new VirtualClock()
    const config = {maxConnections: 1, maxPendingRequests: 1, maxRequests: 10, maxRetries: 3}
    const breaker = new CircuitBreaker(config)
    const releases: Array<() => void> = []
    const inner: AsyncService = async () => {
      const body = new ResponseBody()
      releases.push(() => body.end())
      return {status: 200, headers: [], body}
    }
    const svc = viaPromises(circuitBreaker('api', breaker))(inner)
    const first = await svc(request(), context(clock))
    void readBody(first.body!)
    const second = svc(request(), context(clock)) // waits: the only connection is busy
    const third = await svc(request(), context(clock)).catch((e: ProxyError) => e)
    expect(third).toBeInstanceOf(ProxyError)
    expect([(third as ProxyError).status, (third as ProxyError).flag]).toEqual([503, 'UO'])
    expect((third as ProxyError).message).toContain('maxPendingRequests = 1')
    releases[0]()
    const s = await second
    expect(s.status).toBe(200)
  })
})

describe('route layer', () => {
  test('a header rule picks its version first; otherwise weights; mirrored copies go to the mirror version', async () => {
    const clock = new VirtualClock()
    const registry = new Registry(['api'])
    registry.add({instance: 'api-v1-0', service: 'api', version: 'v1', host: '', port: 1, inboundPort: 1, origin: ''})
    registry.add({instance: 'api-v2-0', service: 'api', version: 'v2', host: '', port: 2, inboundPort: 2, origin: ''})
    const endpoints = new EndpointSet('api', registry, new Map([['v1', 100]]))
    const seen: string[] = []
    const mirrored: string[] = []
    const inner: AsyncService = async (_req, ctx) => {
      seen.push(ctx.version!)
      return ok()
    }
    const svc = viaPromises(route({
      service: 'api',
      endpoints,
      rules: () => [{match: {headers: {'x-canary': 'true'}}, version: 'v2'}],
      mirror: () => ({version: 'v2', percent: 50}),
      random: new SeededRandom(9),
      mirrorService: () =>
        fromAsync(async (req, ctx) => {
          mirrored.push(`${ctx.version} ${req.headers['x-mesh-mirror']}`)
          return ok()
        }),
      mirrorTimeoutMs: () => 1_000,
    }))(inner)
    const ctx = context(clock)
    await svc(request({headers: {'x-canary': 'true'}}), ctx)
    expect(ctx.decision.routeMatched).toBe('x-canary: true → v2')
    for (let i = 0; i < 200; i++) await svc(request(), context(clock))
    expect(seen[0]).toBe('v2')
    expect(seen.slice(1).every((v) => v === 'v1')).toBe(true)
    // About half the v1 requests were shadowed to v2, marked as mirror copies.
    expect(mirrored.length).toBeGreaterThan(70)
    expect(mirrored.length).toBeLessThan(130)
    expect(new Set(mirrored)).toEqual(new Set(['v2 true']))
    // Each copy's deadline went with its answer.
    expect(clock.pending()).toBe(0)
  })

  test('a mirrored copy has a deadline of its own (the route timeout): a hung copy is cancelled at it, and not when the client leaves', async () => {
    const clock = new VirtualClock()
    const registry = new Registry(['api'])
    registry.add({instance: 'api-v1-0', service: 'api', version: 'v1', host: '', port: 1, inboundPort: 1, origin: ''})
    const endpoints = new EndpointSet('api', registry, new Map([['v1', 100]]))
    const copies: Array<{signal: CallContext['signal']; ended?: string}> = []
    const svc = viaPromises(route({
      service: 'api',
      endpoints,
      rules: () => [],
      mirror: () => ({version: 'v2', percent: 100}),
      random: new SeededRandom(1),
      // v2 never answers: the copy waits until its signal aborts.
      mirrorService: () =>
        fromAsync((_req, ctx) => {
          const copy: {signal: CallContext['signal']; ended?: string} = {signal: ctx.signal}
          copies.push(copy)
          return new Promise<MeshResponse>((_resolve, reject) => ctx.signal.addEventListener('abort', () => {
            copy.ended = String((ctx.signal.reason as Error).message)
            reject(ctx.signal.reason)
          }))
        }),
      mirrorTimeoutMs: () => 2_000,
    }))(async () => ok())
    const client = new Cancellation()
    expect((await svc(request(), context(clock, client))).status).toBe(200)
    expect(copies).toHaveLength(1)
    client.abort(new Error('the client went away'))
    await clock.advance(1_999)
    expect(copies[0].ended).toBeUndefined()
    await clock.advance(1)
    expect(copies[0].ended).toBe('the mirrored copy took longer than the route timeout')
    expect(clock.pending()).toBe(0)
  })
})
