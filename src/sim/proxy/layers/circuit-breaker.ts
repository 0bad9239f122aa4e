// Envoy's circuit breaking per destination. Each attempt holds a request slot and a
// connection slot; with every connection busy it may wait in the pending queue; past
// any limit the caller gets 503 UO at once, never a hang. Slots are held until the
// response body is done, because the connection is busy until then.
import type {CircuitBreaker} from '../policy/circuit-breaker.js'
import type {CircuitBreakerConfig} from '../../config/types.js'
import {overflow} from '../respond.js'
import {type CallContext, type Layer, type MeshRequest, onBodyDone} from '../stack.js'

export const circuitBreaker = (service: string, breaker: CircuitBreaker, config: () => CircuitBreakerConfig): Layer => {
  const waiting: Array<() => void> = []
  const releaseConnection = () => {
    const next = waiting.shift()
    // Hand the slot straight to the next in line, so a newcomer cannot jump the queue.
    if (next) next()
    else breaker.releaseConnection()
  }
  return (inner) => {
    // The connection slot is held until the body is done; a failed attempt gives both back at once.
    const forward = (req: MeshRequest, ctx: CallContext) =>
      inner(req, ctx).then(
        (response) => {
          onBodyDone(response, () => {
            releaseConnection()
            breaker.releaseRequest()
          })
          return response
        },
        (error) => {
          releaseConnection()
          breaker.releaseRequest()
          throw error
        },
      )
    // Plain, not async: the usual case (a free connection) adds no promise of its own.
    return function circuitBreaker(req, ctx) {
      if (!breaker.tryAcquireRequest()) return Promise.reject(overflow(service, 'maxRequests', config().maxRequests))
      if (breaker.tryAcquireConnection()) return forward(req, ctx)
      if (!breaker.tryAcquirePending()) {
        breaker.releaseRequest()
        return Promise.reject(overflow(service, 'maxPendingRequests', config().maxPendingRequests))
      }
      const signal = ctx.signal
      return new Promise<void>((resolve, reject) => {
        const go = () => {
          signal.removeEventListener('abort', abort)
          resolve()
        }
        const abort = () => {
          const i = waiting.indexOf(go)
          if (i >= 0) waiting.splice(i, 1)
          reject(signal.reason)
        }
        waiting.push(go)
        signal.addEventListener('abort', abort, {once: true})
      }).then(
        () => {
          breaker.releasePending()
          return forward(req, ctx)
        },
        (error) => {
          breaker.releasePending()
          breaker.releaseRequest()
          throw error
        },
      )
    }
  }
}
