// The fault layer alone over a scripted inner service, on a virtual clock: when
// the inner service was called, what came back or was thrown, and how bodies flow.
import {describe, expect, test} from 'vitest'
import {type FaultSpec, summariseFaults} from '../../src/sim/faults/fault.js'
import {FaultSet} from '../../src/sim/faults/fault-set.js'
import {ResponseBody} from '../../src/sim/proxy/body.js'
import {Cancellation} from '../../src/sim/proxy/cancellation.js'
import {fault} from '../../src/sim/proxy/layers/fault.js'
import {ProxyError} from '../../src/sim/proxy/respond.js'
import type {MeshRequest, MeshResponse} from '../../src/sim/proxy/stack.js'
import {VirtualClock} from '../../src/sim/time/clock.js'
import {type AsyncService, callContext, meshRequest, viaPromises} from '../helpers/proxy-context.js'

const request = (over: Partial<MeshRequest> = {}) => meshRequest({destination: 'payments', source: 'frontend', ...over})
const context = (clock: VirtualClock, controller?: Cancellation) =>
  callContext(clock, {controller, endpoint: {instance: 'payments-v1-0', service: 'payments', version: 'v1'}})

/** An inner service answering 200 with `body`, recording when it was called and the request it saw. */
function scripted(clock: VirtualClock, body?: () => ResponseBody) {
  const calls: Array<{at: number; req: MeshRequest}> = []
  const service: AsyncService = async (req) => {
    calls.push({at: clock.now(), req})
    return {status: 200, headers: [], body: body ? body() : null} satisfies MeshResponse
  }
  return {service, calls}
}

function layer(clock: VirtualClock, specs: FaultSpec[], options: {side?: 'callee' | 'caller'; allowHeaders?: boolean} = {}) {
  const faults = new FaultSet(clock)
  for (const s of specs) faults.add(s)
  return viaPromises(fault(options.side ?? 'callee', {faults, allowHeaders: () => options.allowHeaders ?? false}))
}

/** Reads a body on the virtual clock: the chunks with the time each arrived, and how it ended. */
async function drain(clock: VirtualClock, body: ResponseBody, stepMs = 10, maxMs = 10_000) {
  const chunks: Array<{at: number; bytes: number}> = []
  let ended: {at: number; error?: Error} | undefined
  body.pipeTo({
    write: (c) => chunks.push({at: clock.now(), bytes: c.length}) > 0,
    end: () => (ended ??= {at: clock.now()}),
    abort: (error) => (ended ??= {at: clock.now(), error}),
  })
  // advance() returns once the work each timer set going has run: no extra waiting between steps.
  for (let t = 0; t < maxMs && !ended; t += stepMs) await clock.advance(stepMs)
  return {chunks, ended: ended!, bytes: chunks.reduce((a, c) => a + c.bytes, 0)}
}

async function thrown(p: Promise<unknown>): Promise<ProxyError> {
  const e = await p.then(
    () => undefined,
    (error: unknown) => error,
  )
  expect(e).toBeInstanceOf(ProxyError)
  return e as ProxyError
}

describe('fault layer', () => {
  test('no fault on the service: the inner service is called at once with the same request', async () => {
    const clock = new VirtualClock()
    const {service, calls} = scripted(clock)
    const svc = layer(clock, [{service: 'cart', kind: 'abort', status: 503}])(service)
    const req = request()
    const ctx = context(clock)
    expect((await svc(req, ctx)).status).toBe(200)
    expect(calls).toEqual([{at: 0, req}])
    expect(ctx.decision.faults).toBeUndefined()
  })

  test('delay holds the request before it reaches the service; the span records the fault', async () => {
    const clock = new VirtualClock()
    const {service, calls} = scripted(clock)
    const ctx = context(clock)
    const result = layer(clock, [{service: 'payments', kind: 'delay', delayMs: 300}])(service)(request(), ctx)
    await clock.advance(299)
    expect(calls).toEqual([])
    await clock.advance(1)
    expect((await result).status).toBe(200)
    expect(calls.map((c) => c.at)).toEqual([300])
    expect(ctx.decision.faults).toEqual(['delay 300ms (f1)'])
  })

  test('jitter stays within ± jitter of the delay, and is the same for the same trace', async () => {
    const clock = new VirtualClock()
    const {service, calls} = scripted(clock)
    const svc = layer(clock, [{service: 'payments', kind: 'delay', delayMs: 300, jitterMs: 50}])(service)
    for (let i = 0; i < 2; i++) {
      const start = clock.now()
      const r = svc(request(), context(clock))
      await clock.advance(400)
      await r
      calls[i].at -= start
    }
    expect(calls[0].at).toBeGreaterThanOrEqual(250)
    expect(calls[0].at).toBeLessThanOrEqual(350)
    expect(calls[1].at).toBeCloseTo(calls[0].at, 6)
  })

  test('abort answers with the status, flag FI and an outcome the retry layer and outlier detection read; the service is not called', async () => {
    const clock = new VirtualClock()
    const {service, calls} = scripted(clock)
    const e = await thrown(layer(clock, [{service: 'payments', kind: 'abort', status: 503}])(service)(request(), context(clock)))
    expect([e.status, e.flag]).toEqual([503, 'FI'])
    expect(e.outcome).toEqual({kind: 'response', status: 503})
    expect(e.message).toMatch(/fault injected: abort 503 on "payments" \(f1\)/)
    expect(calls).toEqual([])
  })

  test('partition: refused at once as 503 UF (a connect failure)', async () => {
    const clock = new VirtualClock()
    const {service, calls} = scripted(clock)
    const e = await thrown(layer(clock, [{service: 'payments', kind: 'partition'}])(service)(request(), context(clock)))
    expect([e.status, e.flag, e.outcome?.kind]).toEqual([503, 'UF', 'connect-failure'])
    expect(calls).toEqual([])
  })

  test('partition --blackhole: the request hangs until the caller gives up (the signal aborts)', async () => {
    const clock = new VirtualClock()
    const {service, calls} = scripted(clock)
    const controller = new Cancellation()
    let settled = false
    const result = layer(clock, [{service: 'payments', kind: 'partition', blackhole: true}])(service)(request(), context(clock, controller))
    result.then(
      () => (settled = true),
      () => (settled = true),
    )
    await clock.advance(60_000)
    expect(settled).toBe(false)
    const reason = new Error('caller timeout')
    controller.abort(reason)
    await expect(result).rejects.toBe(reason)
    expect(calls).toEqual([])
  })

  test('reset: 502 UC on the callee side (retryable), a reset of the client on the caller side', async () => {
    const clock = new VirtualClock()
    const {service} = scripted(clock)
    const callee = await thrown(layer(clock, [{service: 'payments', kind: 'reset'}])(service)(request(), context(clock)))
    expect([callee.status, callee.flag, callee.outcome?.kind, callee.resetClient]).toEqual([502, 'UC', 'reset', false])
    const caller = await thrown(layer(clock, [{service: 'payments', kind: 'reset', at: 'caller'}], {side: 'caller'})(service)(request(), context(clock)))
    expect(caller.resetClient).toBe(true)
  })

  test('reset after N bytes: the body is truncated at N and then fails', async () => {
    const clock = new VirtualClock()
    const {service} = scripted(clock, () => ResponseBody.of(Buffer.alloc(60, 'a'), Buffer.alloc(60, 'b'), Buffer.alloc(60, 'c')))
    const res = await layer(clock, [{service: 'payments', kind: 'reset', afterBytes: 100}])(service)(request(), context(clock))
    expect(res.status).toBe(200)
    const {bytes, ended} = await drain(clock, res.body!)
    expect(bytes).toBe(100)
    expect(ended.error?.message).toMatch(/connection reset mid-response/)
  })

  test('reset after N bytes on a shorter body: it ends normally', async () => {
    const clock = new VirtualClock()
    const {service} = scripted(clock, () => ResponseBody.of(Buffer.alloc(50)))
    const res = await layer(clock, [{service: 'payments', kind: 'reset', afterBytes: 100}])(service)(request(), context(clock))
    const {bytes, ended} = await drain(clock, res.body!)
    expect([bytes, ended.error]).toEqual([50, undefined])
  })

  test('bandwidth paces the body: 1000 bytes at 1000 B/s take a second, in tenths', async () => {
    const clock = new VirtualClock()
    const {service} = scripted(clock, () => ResponseBody.of(Buffer.alloc(1000)))
    const res = await layer(clock, [{service: 'payments', kind: 'bandwidth', bytesPerSecond: 1000}])(service)(request(), context(clock))
    const {chunks, ended, bytes} = await drain(clock, res.body!, 10)
    expect(bytes).toBe(1000)
    expect(chunks.map((c) => c.bytes)).toEqual(Array(10).fill(100))
    expect(chunks.map((c) => c.at)).toEqual([0, 100, 200, 300, 400, 500, 600, 700, 800, 900])
    expect(ended.at).toBeGreaterThanOrEqual(1000)
    expect(ended.at).toBeLessThanOrEqual(1010)
  })

  test('slow close holds the end of the body', async () => {
    const clock = new VirtualClock()
    const {service} = scripted(clock, () => ResponseBody.of('hello'))
    const res = await layer(clock, [{service: 'payments', kind: 'slow-close', delayMs: 500}])(service)(request(), context(clock))
    const {chunks, ended} = await drain(clock, res.body!, 10)
    expect(chunks.map((c) => c.at)).toEqual([0])
    expect(ended.at).toBe(500)
  })

  test('x-mesh-fault-* headers act only where allowed, and never reach the service', async () => {
    const clock = new VirtualClock()
    const headers = () => ({'x-mesh-fault-abort': '429', 'x-mesh-fault-delay': '200ms'})

    const denied = scripted(clock)
    expect((await layer(clock, [])(denied.service)(request({headers: headers()}), context(clock))).status).toBe(200)
    expect(denied.calls.map((c) => c.at)).toEqual([0])

    const allowed = scripted(clock)
    const start = clock.now()
    const result = layer(clock, [], {allowHeaders: true})(allowed.service)(request({headers: headers()}), context(clock)).catch((e: unknown) => e)
    await clock.advance(199)
    let settled = false
    void result.then(() => (settled = true))
    await clock.advance(0)
    expect(settled).toBe(false)
    await clock.advance(1)
    const e = (await result) as ProxyError
    expect(e).toBeInstanceOf(ProxyError)
    expect([e.status, e.flag]).toEqual([429, 'FI'])
    expect(clock.now() - start).toBe(200)
    expect(allowed.calls).toEqual([])

    const delayOnly = scripted(clock)
    const r = layer(clock, [], {allowHeaders: true})(delayOnly.service)(request({headers: {'x-mesh-fault-delay': '50ms', 'x-keep': '1'}}), context(clock))
    await clock.advance(50)
    expect((await r).status).toBe(200)
    expect(delayOnly.calls[0].req.headers).toEqual({'x-keep': '1'})

    // A bare number is milliseconds, as Envoy's x-envoy-fault-delay-request.
    const bare = scripted(clock)
    const before = clock.now()
    const b = layer(clock, [], {allowHeaders: true})(bare.service)(request({headers: {'x-mesh-fault-delay': '30'}}), context(clock))
    await clock.advance(29)
    expect(bare.calls).toHaveLength(0)
    await clock.advance(1)
    expect((await b).status).toBe(200)
    expect(clock.now() - before).toBe(30)
  })

  test('first N on the callee side: each attempt counts, so a retrying caller gets through', async () => {
    const clock = new VirtualClock()
    const {service, calls} = scripted(clock)
    const svc = layer(clock, [{service: 'payments', kind: 'abort', status: 503, first: 2}])(service)
    const results = []
    for (let i = 0; i < 3; i++) results.push(await svc(request(), context(clock)).then((r) => r.status, (e: ProxyError) => e.status))
    expect(results).toEqual([503, 503, 200])
    expect(calls).toHaveLength(1)
  })
})

describe('a call\'s faults in its span', () => {
  test('each fault once, with how many tries met it, in the order first met', () => {
    expect(summariseFaults(['abort 503 (f1)', 'delay 20ms (f2)', 'abort 503 (f1)', 'abort 503 (f1)'])).toBe('abort 503 (f1) × 3, delay 20ms (f2)')
    expect(summariseFaults(['abort 503 (f1)'])).toBe('abort 503 (f1)')
  })
})
