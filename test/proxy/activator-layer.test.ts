// The activator in a Destination's stack (virtual clock, scripted instances): a scaled
// version's requests take a slot on an instance with a place free, wait in the queue, are
// throttled (429 TH), time out or hear of a failed start (503 UH); a request held while
// the version had no instance is a cold start (x-mesh-cold-start, the client span). Every
// slot comes back on every way out: the body done, a failure, a client that left.
import {PassThrough} from 'node:stream'
import {describe, expect, test} from 'vitest'
import {FaultSet} from '../../src/sim/faults/fault-set.js'
import {ResponseBody} from '../../src/sim/proxy/body.js'
import {Cancellation} from '../../src/sim/proxy/cancellation.js'
import {Destination} from '../../src/sim/proxy/destination.js'
import {instanceActivator} from '../../src/sim/proxy/layers/activator.js'
import {firstHeader, headerObject} from '../../src/sim/proxy/headers.js'
import {type Endpoint, Registry} from '../../src/sim/proxy/registry.js'
import {ProxyError, upstreamReset} from '../../src/sim/proxy/respond.js'
import {type CallContext, callService, type MeshResponse, type Reply} from '../../src/sim/proxy/stack.js'
import {ActivationHub} from '../../src/sim/scaling/activation.js'
import {ConcurrencyAccount} from '../../src/sim/scaling/concurrency-gate.js'
import type {Span} from '../../src/sim/telemetry/span.js'
import {VirtualClock} from '../../src/sim/time/clock.js'
import {parsed, yaml} from '../config/helpers.js'
import {callContext, meshRequest, readBody} from '../helpers/proxy-context.js'

interface Outcome {
  res?: MeshResponse
  error?: ProxyError
  ctx: CallContext
}

const endpoint = (i: number): Endpoint => ({instance: `api-v1-${i}`, service: 'api', version: 'v1', host: '127.0.0.1', port: 10_000 + i, inboundPort: 20_000 + i, origin: `http://127.0.0.1:${10_000 + i}`})

/** A Destination whose instances answer when the test says: each call to the leaf waits in `calls`. */
function setUp(scaling: string, instances: number, accountConcurrency?: number) {
  const clock = new VirtualClock()
  const config = parsed(yaml('name: t', 'services:', '  api:', '    simulate: {}', `    scaling: ${scaling}`))
  const registry = new Registry(['api'])
  for (let i = 0; i < instances; i++) registry.add(endpoint(i))
  const calls: Array<{instance: string; reply: Reply}> = []
  const spans: Span[] = []
  const hub = new ActivationHub()
  const pokes: string[] = []
  hub.onPoke((s, v) => pokes.push(`${s}/${v}`))
  const d = new Destination(config.services[0], new Map([['v1', 100]]), {
    registry,
    faults: {faults: new FaultSet(clock), allowHeaders: () => false},
    clock,
    leaf: () => (_req, ctx, reply) => void calls.push({instance: ctx.endpoint!.instance, reply}),
    sink: {record: (s) => void spans.push(s)},
    seed: 1,
    account: new ConcurrencyAccount(() => accountConcurrency),
    activation: hub,
  })
  const call = (controller = new Cancellation()) => {
    const ctx = callContext(clock, {controller})
    return callService(d.service, meshRequest({destination: 'api'}), ctx).then(
      (res): Outcome => ({res, ctx}),
      (error: unknown): Outcome => ({error: error as ProxyError, ctx}),
    )
  }
  /** The instance answers call `i` with a body the test ends later. */
  const answer = (i: number) => {
    const body = new ResponseBody()
    calls[i].reply.ok({status: 200, headers: [], body})
    return body
  }
  const activator = () => d.load().activator!.v1
  return {clock, registry, d, service: config.services[0], calls, spans, call, answer, activator, pokes, hub}
}

describe('activator layer: slots on instances', () => {
  test('containerConcurrency 1: each request on its own instance; one held in the queue; past it 429 TH; a body done frees the place for the oldest', async () => {
    const {clock, call, calls, answer, activator} = setUp('{minScale: 2, maxScale: 2, containerConcurrency: 1, queue: 1}', 2)
    const first = call()
    const second = call()
    const third = call()
    const fourth = await call()
    await clock.advance(0)
    expect(calls.map((c) => c.instance).sort()).toEqual(['api-v1-0', 'api-v1-1'])
    expect(fourth.error).toBeInstanceOf(ProxyError)
    expect(fourth.error).toMatchObject({status: 429, flag: 'TH'})
    expect(fourth.error!.message).toBe('throttled: concurrency limit: "api" v1 runs 2 of maxScale 2 instances, busy with 1 request each (containerConcurrency), and its queue of 1 is full (scaling.queue)')
    expect(activator()).toEqual({inFlight: 2, held: 1})

    // The second instance frees first: round-robin's next pick would be the first, still busy.
    const body = answer(1)
    const done = await second
    expect(done.res!.status).toBe(200)
    // The response is on its way: its instance is still busy until the body is done.
    expect(calls).toHaveLength(2)
    const read = readBody(done.res!.body!)
    body.end()
    await read
    expect(calls).toHaveLength(3)
    expect(calls[2].instance).toBe(calls[1].instance)
    expect(activator()).toEqual({inFlight: 2, held: 0})

    // A failure gives its place back at once.
    calls[0].reply.fail(upstreamReset(calls[0].instance, new Error('ECONNRESET')))
    expect((await first).error).toMatchObject({flag: 'UC'})
    answer(2).end()
    await readBody((await third).res!.body!)
    expect(activator()).toEqual({inFlight: 0, held: 0})
  })

  test('a client that leaves while held gives its place back; a later request is served', async () => {
    const {clock, call, calls, answer, activator} = setUp('{minScale: 1, maxScale: 1, containerConcurrency: 1, queue: 5}', 1)
    const busy = call()
    const client = new Cancellation()
    const leaving = call(client)
    await clock.advance(0)
    expect(activator()).toEqual({inFlight: 1, held: 1})
    client.abort(new Error('client closed'))
    expect((await leaving).error!.message).toBe('client closed')
    expect(activator()).toEqual({inFlight: 1, held: 0})
    const later = call()
    answer(0).end()
    await readBody((await busy).res!.body!)
    await clock.advance(0)
    expect(calls).toHaveLength(2)
    answer(1).end()
    await readBody((await later).res!.body!)
    expect(activator()).toEqual({inFlight: 0, held: 0})
  })

  test('a client that leaves mid-response (its body dropped) gives the slot back', async () => {
    const {clock, call, answer, activator} = setUp('{minScale: 1, maxScale: 1, containerConcurrency: 1, queue: 0}', 1)
    const pending = call()
    await clock.advance(0)
    answer(0)
    const {res} = await pending
    expect(activator().inFlight).toBe(1)
    res!.body!.destroy(new Error('client went away'))
    expect(activator()).toEqual({inFlight: 0, held: 0})
  })

  test('a WebSocket session (a 101 and its tunnel) holds its place until the session closes, not only its handshake', async () => {
    const {clock, call, calls, activator} = setUp('{minScale: 1, maxScale: 1, containerConcurrency: 1, queue: 1}', 1)
    const session = call()
    await clock.advance(0)
    const socket = new PassThrough()
    calls[0].reply.ok({status: 101, headers: [], body: null, tunnel: {socket, protocol: 'websocket'}})
    expect((await session).res!.status).toBe(101)
    const next = call()
    await clock.advance(0)
    // The session is open: the one place is taken, the next request waits.
    expect(activator()).toEqual({inFlight: 1, held: 1})
    expect(calls).toHaveLength(1)
    socket.destroy()
    await new Promise((resolve) => setImmediate(resolve))
    await clock.advance(0)
    expect(calls).toHaveLength(2)
    calls[1].reply.ok({status: 200, headers: [], body: null})
    expect((await next).res!.status).toBe(200)
    expect(activator()).toEqual({inFlight: 0, held: 0})
  })

  test('a held request answered 503 UH after activatorTimeout, saying why', async () => {
    const {clock, call, activator} = setUp('{minScale: 1, maxScale: 1, containerConcurrency: 1, queue: 1, activatorTimeout: 2s}', 1)
    void call()
    const held = call()
    await clock.advance(2000)
    const {error} = await held
    expect(error).toMatchObject({status: 503, flag: 'UH'})
    expect(error!.message).toBe('no healthy upstream: none of the 1 instances of "api" v1 had a free slot within 2000 ms (scaling.activatorTimeout) (containerConcurrency 1)')
    expect(activator()).toEqual({inFlight: 1, held: 0})
  })
})

describe('activator layer: scale from zero', () => {
  test('a version at zero is routed to and held (the autoscaler poked, held counted); the first instance ready forwards it as a cold start', async () => {
    const {clock, registry, d, call, calls, answer, spans, pokes, hub} = setUp('{minScale: 0, maxScale: 3, containerConcurrency: 1, queue: 0}', 0)
    hub.reportHeld((s, v) => (s === 'api' ? d.held(v) : 0))
    const pending = call()
    await clock.advance(0)
    expect(pokes).toEqual(['api/v1'])
    expect(hub.held('api', 'v1')).toBe(1)
    await clock.advance(750)
    registry.add(endpoint(0))
    expect(calls.map((c) => c.instance)).toEqual(['api-v1-0'])
    answer(0).end()
    const {res, ctx} = await pending
    await readBody(res!.body!)
    expect(ctx.coldStartMs).toBe(750)
    expect(firstHeader(headerObject(res!.headers), 'x-mesh-cold-start')).toBe('750')
    const client = spans.find((s) => s.kind === 'client')!
    expect(client.coldStartMs).toBe(750)
    expect(spans.find((s) => s.kind === 'server')!.coldStartMs).toBeUndefined()
    expect(hub.held('api', 'v1')).toBe(0)

    // Warm now: no cold start, no header.
    const warm = call()
    await clock.advance(0)
    answer(1).end()
    const second = await warm
    expect(second.ctx.coldStartMs).toBeUndefined()
    expect(firstHeader(headerObject(second.res!.headers), 'x-mesh-cold-start')).toBeUndefined()
  })

  test('a failed start answers every held request 503 UH at once with the startup error', async () => {
    const {clock, d, call, activator} = setUp('{minScale: 0, maxScale: 1, containerConcurrency: 1, queue: 3}', 0)
    const held = [call(), call(), call()]
    await clock.advance(0)
    expect(activator()).toEqual({inFlight: 0, held: 3})
    d.startFailed('v1', 'api-v1-0 exited with code 1 before it was healthy: Error: listen EADDRINUSE')
    for (const h of held) {
      const {error} = await h
      expect(error).toMatchObject({status: 503, flag: 'UH', message: 'no healthy upstream: api-v1-0 exited with code 1 before it was healthy: Error: listen EADDRINUSE'})
    }
    expect(activator()).toEqual({inFlight: 0, held: 0})
  })

  test('a start failure told in answer to the poke itself (the autoscaler backing off) answers the request at once', async () => {
    const {d, call, hub, activator} = setUp('{minScale: 0, maxScale: 1, containerConcurrency: 1, queue: 3}', 0)
    hub.onPoke((_s, v) => d.startFailed(v, 'the last start failed 2 s ago: exited with code 1; next try in 2 s'))
    const {error} = await call()
    expect(error).toMatchObject({status: 503, flag: 'UH', message: 'no healthy upstream: the last start failed 2 s ago: exited with code 1; next try in 2 s'})
    expect(activator()).toEqual({inFlight: 0, held: 0})
  })

  test('a service not started (mesh stop) is not held at zero: 503 UH at once, as before', async () => {
    const {d, call} = setUp('{minScale: 0, maxScale: 1}', 0)
    d.endpoints.declareNotStarted('stopped by mesh stop')
    const {error} = await call()
    expect(error).toMatchObject({status: 503, flag: 'UH'})
    expect(error!.message).toMatch(/is not started/)
  })
})

describe('activator layer: the account across destinations', () => {
  test('the account limit refuses past it with 429 TH even where instances could take more', async () => {
    // The pool across versions is tested in concurrency-gate.test.ts, across services on a mesh in concurrency-limits.test.ts.
    const {clock, call, calls, answer} = setUp('{minScale: 1, maxScale: 1, containerConcurrency: 0, queue: 0}', 1, 2)
    const a = call()
    const b = call()
    const refused = await call()
    await clock.advance(0)
    expect(calls).toHaveLength(2)
    expect(refused.error).toMatchObject({status: 429, flag: 'TH'})
    answer(0).end()
    answer(1).end()
    await Promise.all([a, b])
  })
})

describe('versions that come and go', () => {
  test("a deploy's new version (added to the service in place) is gated from its first instance on", async () => {
    const {clock, registry, d, service, call, calls, activator} = setUp('{minScale: 1, maxScale: 1, containerConcurrency: 1, queue: 0}', 1)
    service.versions.push({...service.versions[0], name: 'v2'})
    registry.add({...endpoint(5), instance: 'api-v2-5', version: 'v2'})
    d.endpoints.setWeights(new Map([['v2', 100]]))
    const admitted = call()
    const throttled = await call()
    await clock.advance(0)
    expect(calls.map((c) => c.instance)).toEqual(['api-v2-5'])
    expect(throttled.error).toMatchObject({status: 429, flag: 'TH'})
    expect(d.load().activator).toEqual({v1: {inFlight: 0, held: 0}, v2: {inFlight: 1, held: 0}})
    calls[0].reply.fail(new Error('gone'))
    await admitted
    expect(activator()).toEqual({inFlight: 0, held: 0})
  })
})

describe('mesh apply', () => {
  test('a containerConcurrency raised live lets a held request through at once; scaling removed answers those still held', async () => {
    const {clock, d, service, call, calls, activator} = setUp('{minScale: 1, maxScale: 1, containerConcurrency: 1, queue: 2}', 1)
    const first = call()
    const second = call()
    const third = call()
    await clock.advance(0)
    expect(activator()).toEqual({inFlight: 1, held: 2})
    service.versions[0].scaling = {...service.versions[0].scaling!, containerConcurrency: 2}
    d.apply(service.policy)
    expect(calls).toHaveLength(2)
    expect(activator()).toEqual({inFlight: 2, held: 1})
    service.versions[0].scaling = undefined
    d.apply(service.policy)
    const {error} = await third
    expect(error).toMatchObject({status: 503, flag: 'UH'})
    expect(error!.message).toMatch(/"api" v1 is no longer an autoscaled version of the service/)
    expect(d.load().activator).toBeUndefined()
    for (const c of calls) c.reply.fail(new Error('done'))
    await Promise.all([first, second])
  })
})

describe('unscaled services', () => {
  test('have no activator: no gate, nothing counted', () => {
    const clock = new VirtualClock()
    const config = parsed(yaml('name: t', 'services:', '  api:', '    simulate: {}'))
    const d = new Destination(config.services[0], new Map([['v1', 100]]), {
      registry: new Registry(['api']),
      faults: {faults: new FaultSet(clock), allowHeaders: () => false},
      clock,
      leaf: () => () => undefined,
      sink: {record: () => undefined},
      seed: 1,
    })
    expect(d.load().activator).toBeUndefined()
    expect(d.held('v1')).toBe(0)
  })
})

describe("a call to one instance's published address (instanceActivator)", () => {
  /** The inbound listener's path: the layer over the same leaf, the instance already chosen (ctx.endpoint). */
  function direct(t: ReturnType<typeof setUp>) {
    const layer = instanceActivator((service) => (service === 'api' ? t.d.versionGates : undefined), t.hub)
    const service = layer((_req, ctx, reply) => void t.calls.push({instance: ctx.endpoint!.instance, reply}))
    return (instance: number, controller = new Cancellation()) => {
      const ctx = callContext(t.clock, {controller, endpoint: endpoint(instance)})
      return callService(service, meshRequest({destination: 'api'}), ctx).then(
        (res): Outcome => ({res, ctx}),
        (error: unknown): Outcome => ({error: error as ProxyError, ctx}),
      )
    }
  }

  test('waits for a place on that instance: one that leaves while held gives its place back; a body done frees it for the next', async () => {
    const t = setUp('{minScale: 2, maxScale: 2, containerConcurrency: 1, queue: 5}', 2)
    const callOn = direct(t)
    const first = callOn(0)
    const client = new Cancellation()
    const leaving = callOn(0, client)
    const second = callOn(0)
    await t.clock.advance(0)
    // Instance 1 is free, yet the calls for instance 0 wait for it.
    expect(t.calls.map((c) => c.instance)).toEqual(['api-v1-0'])
    expect(t.activator()).toEqual({inFlight: 1, held: 2})
    client.abort(new Error('client closed'))
    expect((await leaving).error!.message).toBe('client closed')
    expect(t.activator()).toEqual({inFlight: 1, held: 1})
    // Through the mesh, the free instance serves at once.
    const viaMesh = t.call()
    await t.clock.advance(0)
    expect(t.calls.map((c) => c.instance)).toEqual(['api-v1-0', 'api-v1-1'])
    const body = t.answer(0)
    await endAndRead(body, (await first).res!)
    expect(t.calls.map((c) => c.instance)).toEqual(['api-v1-0', 'api-v1-1', 'api-v1-0'])
    t.answer(1).end()
    t.answer(2).end()
    await readBody((await viaMesh).res!.body!)
    await readBody((await second).res!.body!)
    expect(t.activator()).toEqual({inFlight: 0, held: 0})
  })

  test('an instance not ready yet (cold-starting): held until it is, then served with x-mesh-cold-start; an instance gone answers 503 UH', async () => {
    const t = setUp('{minScale: 0, maxScale: 2, containerConcurrency: 1}', 0)
    const callOn = direct(t)
    const cold = callOn(0)
    const gone = callOn(1)
    await t.clock.advance(400)
    expect(t.activator()).toEqual({inFlight: 0, held: 2})
    t.registry.add(endpoint(0))
    t.answer(0).end()
    const {res} = await cold
    expect(firstHeader(headerObject(res!.headers), 'x-mesh-cold-start')).toBe('400')
    await readBody(res!.body!)
    t.d.versionGates.instanceGone('api-v1-1')
    expect((await gone).error).toMatchObject({status: 503, flag: 'UH', message: expect.stringContaining('instance api-v1-1 of "api" v1 left the mesh')})
    expect(t.activator()).toEqual({inFlight: 0, held: 0})
  })
})

/** Ends `body` and reads the response it belongs to. */
async function endAndRead(body: ResponseBody, res: MeshResponse): Promise<void> {
  const read = readBody(res.body!)
  body.end()
  await read
}

describe('mirrored copies (fire and forget)', () => {
  /** v1 serves; v2 (scaled, one instance of containerConcurrency 1) is the mirror target. */
  function mirrored(v2: string, v2Instances: number, circuitBreaker = '') {
    const clock = new VirtualClock()
    const config = parsed(
      yaml(
        'name: t',
        'services:',
        '  api:',
        '    versions:',
        '      v1: {simulate: {}}',
        `      v2: {simulate: {}, scaling: ${v2}}`,
        `    policy: {weights: {v1: 100, v2: 0}, routes: [{match: {headers: {x-v2: "yes"}}, version: v2}], mirror: {version: v2, percent: 100}${circuitBreaker}}`,
      ),
    )
    const registry = new Registry(['api'])
    registry.add({...endpoint(0), instance: 'api-v1-0'})
    for (let i = 0; i < v2Instances; i++) registry.add({...endpoint(i + 1), instance: `api-v2-${i + 1}`, version: 'v2'})
    const calls: Array<{instance: string; mirror: boolean; reply: Reply}> = []
    const hub = new ActivationHub()
    const pokes: string[] = []
    hub.onPoke((s, v) => pokes.push(`${s}/${v}`))
    const d = new Destination(config.services[0], new Map([['v1', 100], ['v2', 0]]), {
      registry,
      faults: {faults: new FaultSet(clock), allowHeaders: () => false},
      clock,
      leaf: () => (req, ctx, reply) => void calls.push({instance: ctx.endpoint!.instance, mirror: req.headers['x-mesh-mirror'] === 'true', reply}),
      sink: {record: () => undefined},
      seed: 1,
      account: new ConcurrencyAccount(),
      activation: hub,
    })
    const call = (headers: Record<string, string> = {}) => {
      const ctx = callContext(clock)
      return callService(d.service, meshRequest({destination: 'api', headers}), ctx).then(
        (res): Outcome => ({res, ctx}),
        (error: unknown): Outcome => ({error: error as ProxyError, ctx}),
      )
    }
    return {clock, d, calls, call, pokes, v2: () => d.load().activator!.v2, mirrors: () => d.load().mirrorBreaker!.requests}
  }

  test('a copy for a version at zero wakes nothing and is held nowhere: the real request goes on alone', async () => {
    const {clock, calls, call, pokes, v2} = mirrored('{minScale: 0, initialScale: 0, maxScale: 1, containerConcurrency: 1}', 0)
    const real = call()
    await clock.advance(0)
    expect(calls.map((c) => `${c.instance} ${c.mirror}`)).toEqual(['api-v1-0 false'])
    expect(pokes).toEqual([])
    expect(v2()).toEqual({inFlight: 0, held: 0})
    calls[0].reply.ok({status: 200, headers: [], body: null})
    expect((await real).res!.status).toBe(200)
  })

  test('a copy takes a place only when one is free and no real request waits; it is never queued ahead of a real one', async () => {
    const {clock, calls, call, pokes, v2} = mirrored('{minScale: 1, maxScale: 1, containerConcurrency: 1, queue: 5}', 1)
    // The first copy finds v2's one place free: it goes (the instance is really busy with it).
    const first = call()
    await clock.advance(0)
    expect(calls.map((c) => `${c.instance} ${c.mirror}`)).toEqual(['api-v2-1 true', 'api-v1-0 false'])
    expect(v2()).toEqual({inFlight: 1, held: 0})
    // A real request for v2 (the header route) waits for the place.
    const real = call({'x-v2': 'yes'})
    await clock.advance(0)
    expect(v2()).toEqual({inFlight: 1, held: 1})
    // The next copy finds the place taken and a real request waiting: dropped at once, not held, no poke.
    const third = call()
    await clock.advance(0)
    expect(calls.filter((c) => c.mirror)).toHaveLength(1)
    expect(v2()).toEqual({inFlight: 1, held: 1})
    expect(pokes).toEqual(['api/v2'])
    // The copy's place goes to the real request.
    calls[0].reply.ok({status: 200, headers: [], body: null})
    expect(calls.map((c) => `${c.instance} ${c.mirror}`)).toEqual(['api-v2-1 true', 'api-v1-0 false', 'api-v1-0 false', 'api-v2-1 false'])
    for (const c of calls.slice(1)) c.reply.ok({status: 200, headers: [], body: null})
    for (const r of [first, real, third]) expect((await r).res!.status).toBe(200)
    expect(v2()).toEqual({inFlight: 0, held: 0})
  })

  test("copies never take the real requests' circuit-breaker slots", async () => {
    const {clock, d, calls, call, mirrors} = mirrored('{minScale: 1, maxScale: 1, containerConcurrency: 0}', 1, ', circuitBreaker: {maxRequests: 1}')
    const real = call()
    await clock.advance(0)
    // The copy and the real request each hold one request; the real one was not refused 503 UO for the copy.
    expect(calls.map((c) => `${c.instance} ${c.mirror}`)).toEqual(['api-v2-1 true', 'api-v1-0 false'])
    expect([d.load().breaker.requests, mirrors()]).toEqual([1, 1])
    for (const c of calls) c.reply.ok({status: 200, headers: [], body: null})
    expect((await real).res!.status).toBe(200)
    expect([d.load().breaker.requests, mirrors()]).toEqual([0, 0])
  })
})
