// The circuit-breaker layer gives back every slot it takes, on every way out: answered
// (when the body is done), failed, refused past a limit, aborted while it waited.
import {describe, expect, test} from 'vitest'
import {ResponseBody} from '../../src/sim/proxy/body.js'
import {Cancellation} from '../../src/sim/proxy/cancellation.js'
import {circuitBreaker} from '../../src/sim/proxy/layers/circuit-breaker.js'
import {CircuitBreaker} from '../../src/sim/proxy/policy/circuit-breaker.js'
import {ProxyError, upstreamReset} from '../../src/sim/proxy/respond.js'
import type {MeshResponse} from '../../src/sim/proxy/stack.js'
import {VirtualClock} from '../../src/sim/time/clock.js'
import {type AsyncService, callContext, meshRequest, readBody, viaPromises} from '../helpers/proxy-context.js'

const config = {maxConnections: 1, maxPendingRequests: 1, maxRequests: 10, maxRetries: 3}

/** A breaker layer over an instance whose answers the test ends (or fails) one by one. */
function setUp(limits = config) {
  const clock = new VirtualClock()
  const breaker = new CircuitBreaker(limits)
  const bodies: ResponseBody[] = []
  let failNext: Error | undefined
  const inner: AsyncService = async () => {
    if (failNext) throw failNext
    const body = new ResponseBody()
    bodies.push(body)
    return {status: 200, headers: [], body}
  }
  const service = viaPromises(circuitBreaker('api', breaker))(inner)
  const call = (controller = new Cancellation()) => service(meshRequest(), callContext(clock, {controller}))
  const held = () => {
    const {requests, pending, connections, retries} = breaker.snapshot()
    return {requests, pending, connections, retries}
  }
  return {call, held, bodies, failWith: (e: Error | undefined) => (failNext = e)}
}

const idle = {requests: 0, pending: 0, connections: 0, retries: 0}
const refusal = (p: Promise<MeshResponse>) => p.then(() => undefined, (e: unknown) => e as ProxyError)

describe('circuit breaker layer: slots given back', () => {
  test('an answered request holds its slots until its body is done, then gives both back', async () => {
    const {call, held, bodies} = setUp()
    const answer = await call()
    const read = readBody(answer.body!)
    expect(held()).toEqual({...idle, requests: 1, connections: 1})
    bodies[0].push(Buffer.from('partial'))
    expect(held()).toEqual({...idle, requests: 1, connections: 1})
    bodies[0].end()
    expect((await read).bytes.toString()).toBe('partial')
    expect(held()).toEqual(idle)
  })

  test('a body that ends, and a body cut short, both release', async () => {
    const {call, held, bodies} = setUp({...config, maxConnections: 2})
    const a = await call()
    const b = await call()
    const read = readBody(a.body!)
    bodies[0].end()
    await read
    expect(held()).toEqual({...idle, requests: 1, connections: 1})
    b.body!.destroy(new Error('the client left mid-body'))
    expect(held()).toEqual(idle)
  })

  test('the request slot goes back when the pending queue is full (503 UO maxPendingRequests)', async () => {
    const {call, held, bodies} = setUp({...config, maxPendingRequests: 0})
    await call()
    const refused = await refusal(call())
    expect([refused?.status, refused?.flag]).toEqual([503, 'UO'])
    expect(refused?.message).toContain('maxPendingRequests = 0')
    // Only the first request's slots are held: the refused one took a request slot and gave it back.
    expect(held()).toEqual({...idle, requests: 1, connections: 1})
    bodies[0].destroy()
    expect(held()).toEqual(idle)
  })

  test('a request aborted while it waits in the pending queue gives back its pending and request slots, and the connection is not handed to it', async () => {
    const {call, held, bodies} = setUp()
    await call()
    const controller = new Cancellation()
    const waiting = refusal(call(controller))
    expect(held()).toEqual({...idle, requests: 2, pending: 1, connections: 1})
    controller.abort(new ProxyError(499, 'DC', 'the caller closed the connection'))
    expect((await waiting)?.status).toBe(499)
    expect(held()).toEqual({...idle, requests: 1, connections: 1})
    bodies[0].destroy()
    expect(held()).toEqual(idle)
    expect(bodies).toHaveLength(1)
  })

  test('a request already aborted when it would queue takes nothing', async () => {
    const {call, held, bodies} = setUp()
    await call()
    const controller = new Cancellation()
    controller.abort(new ProxyError(499, 'DC', 'the caller closed the connection'))
    expect((await refusal(call(controller)))?.status).toBe(499)
    expect(held()).toEqual({...idle, requests: 1, connections: 1})
    bodies[0].destroy()
    expect(held()).toEqual(idle)
  })

  test('a failed attempt (the instance reset) gives both slots back at once', async () => {
    const {call, held, failWith} = setUp()
    failWith(upstreamReset('api-v1-0', Object.assign(new Error('socket hang up'), {code: 'UND_ERR_SOCKET'})))
    const failed = await refusal(call())
    expect([failed?.status, failed?.flag]).toEqual([502, 'UC'])
    expect(held()).toEqual(idle)
  })

  test('a waiting request gets the connection the one before it gives back; when both are done nothing is held', async () => {
    const {call, held, bodies} = setUp()
    await call()
    const second = call()
    bodies[0].destroy()
    const answer = await second
    // Handed over: the connection count never dropped, so a newcomer could not jump the queue.
    expect(held()).toEqual({...idle, requests: 1, connections: 1})
    answer.body!.destroy()
    expect(held()).toEqual(idle)
  })
})
