// Envoy's circuit breaking per destination. Each attempt holds a request slot and a
// connection slot; with every connection busy it may wait in the pending queue; past
// any limit the caller gets 503 UO at once, never a hang. Slots are held until the
// response body is done, because the connection is busy until then.
import type {CircuitBreaker} from '../policy/circuit-breaker.js'
import type {CircuitBreakerConfig} from '../../config/types.js'
import {overflow} from '../respond.js'
import {type Layer, onBodyDone} from '../stack.js'

export const circuitBreaker = (service: string, breaker: CircuitBreaker, config: () => CircuitBreakerConfig): Layer => {
  const waiting: Array<() => void> = []
  const releaseConnection = () => {
    const next = waiting.shift()
    // Hand the slot straight to the next in line, so a newcomer cannot jump the queue.
    if (next) next()
    else breaker.releaseConnection()
  }
  return (inner) =>
    async function circuitBreaker(req, ctx) {
      if (!breaker.tryAcquireRequest()) throw overflow(service, 'maxRequests', config().maxRequests)
      let connected = false
      try {
        if (breaker.tryAcquireConnection()) connected = true
        else {
          if (!breaker.tryAcquirePending()) throw overflow(service, 'maxPendingRequests', config().maxPendingRequests)
          try {
            await new Promise<void>((resolve, reject) => {
              const go = () => {
                ctx.signal.removeEventListener('abort', abort)
                resolve()
              }
              const abort = () => {
                const i = waiting.indexOf(go)
                if (i >= 0) waiting.splice(i, 1)
                reject(ctx.signal.reason)
              }
              waiting.push(go)
              ctx.signal.addEventListener('abort', abort, {once: true})
            })
            connected = true
          } finally {
            breaker.releasePending()
          }
        }
        const response = await inner(req, ctx)
        onBodyDone(response, () => {
          releaseConnection()
          breaker.releaseRequest()
        })
        connected = false
        return response
      } catch (error) {
        if (connected) releaseConnection()
        breaker.releaseRequest()
        throw error
      }
    }
}
