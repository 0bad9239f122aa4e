// Envoy's circuit breaking per destination. Each attempt holds a request slot and a
// connection slot; with every connection busy it may wait in the pending queue; past
// any limit the caller gets 503 UO at once, never a hang. Slots are held until the
// response body is done, because the connection is busy until then.
import type {Cancellation} from '../cancellation.js'
import type {CircuitBreaker} from '../policy/circuit-breaker.js'
import {overflow} from '../respond.js'
import {type CallContext, type Layer, type MeshRequest, type MeshResponse, onBodyDone, type Reply} from '../stack.js'
import {whenAborted} from '../../abort-signal.js'

export const circuitBreaker = (service: string, breaker: CircuitBreaker): Layer => {
  const waiting: Array<() => void> = []
  const releaseConnection = () => {
    const next = waiting.shift()
    // Hand the slot straight to the next in line, so a newcomer cannot jump the queue.
    if (next) next()
    else breaker.connections.release()
  }
  const slots = {breaker, releaseConnection}
  return (inner) => {
    const withSlots = (req: MeshRequest, ctx: CallContext, reply: Reply) => inner(req, ctx, new HoldingSlots(reply, slots))
    return function circuitBreaker(req, ctx, reply) {
      if (!breaker.requests.tryAcquire()) return reply.fail(overflow(service, 'maxRequests', breaker.requests.max))
      if (breaker.connections.tryAcquire()) return withSlots(req, ctx, reply)
      if (!breaker.pending.tryAcquire()) {
        breaker.requests.release()
        return reply.fail(overflow(service, 'maxPendingRequests', breaker.pending.max))
      }
      wait(waiting, ctx.signal, () => {
        breaker.pending.release()
        withSlots(req, ctx, reply)
      }, (error) => {
        breaker.pending.release()
        breaker.requests.release()
        reply.fail(error)
      })
    }
  }
}

/** In the pending queue until a connection slot is handed over, or the request is aborted. */
function wait(waiting: Array<() => void>, signal: Cancellation, go: () => void, abort: (error: unknown) => void): void {
  if (signal.aborted) return abort(signal.reason)
  const proceed = () => {
    stopWaiting()
    go()
  }
  waiting.push(proceed)
  const stopWaiting = whenAborted(signal, () => {
    const i = waiting.indexOf(proceed)
    if (i >= 0) waiting.splice(i, 1)
    abort(signal.reason)
  })
}

/** The connection slot is held until the body is done; a failed attempt gives both back at once. */
class HoldingSlots implements Reply {
  constructor(
    private readonly next: Reply,
    private readonly slots: {breaker: CircuitBreaker; releaseConnection: () => void},
  ) {}

  ok(response: MeshResponse): void {
    onBodyDone(response, this)
    this.next.ok(response)
  }

  /** The response body is done: both slots go back. */
  bodyDone(): void {
    this.slots.releaseConnection()
    this.slots.breaker.requests.release()
  }

  fail(error: unknown): void {
    this.bodyDone()
    this.next.fail(error)
  }
}

