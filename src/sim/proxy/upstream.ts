// The bottom of the stack: one HTTP exchange with the chosen instance over an
// undici keep-alive pool. Bodies stream both ways; nothing is buffered here.
import type {Agent} from 'undici'
import {stripHopByHop} from './headers.js'
import {connectFailure, ProxyError, upstreamReset} from './respond.js'
import {onBodyDone, type Service} from './stack.js'

/** `inflight`: requests under way per instance (a drained instance is stopped only when it reaches 0). */
export function upstream(agent: Agent, inflight: Map<string, number>): Service {
  const done = (instance: string) => {
    const n = (inflight.get(instance) ?? 1) - 1
    if (n <= 0) inflight.delete(instance)
    else inflight.set(instance, n)
  }
  return async function upstream(req, ctx) {
    const endpoint = ctx.endpoint!
    inflight.set(endpoint.instance, (inflight.get(endpoint.instance) ?? 0) + 1)
    let counted = true
    try {
      const r = await agent.request({
        origin: endpoint.origin,
        method: req.method as 'GET',
        path: req.path,
        headers: req.headers,
        body: req.body ?? undefined,
        signal: ctx.signal,
      })
      const response = {status: r.statusCode, headers: stripHopByHop(r.headers as Record<string, string | string[]>), body: r.body, endpoint}
      counted = false
      onBodyDone(response, () => done(endpoint.instance))
      return response
    } catch (error) {
      if (counted) done(endpoint.instance)
      // Aborted from above: a timeout (its error is the reason) or the client went away.
      if (ctx.signal.aborted) {
        const reason = ctx.signal.reason
        throw reason instanceof ProxyError ? reason : new ProxyError(499, 'DC', 'the caller closed the connection')
      }
      const e = error as NodeJS.ErrnoException
      const code = (e.cause as NodeJS.ErrnoException | undefined)?.code ?? e.code
      if (code === 'ECONNREFUSED' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'EHOSTUNREACH') {
        throw connectFailure(endpoint.instance, `${endpoint.host}:${endpoint.port}`, error)
      }
      throw upstreamReset(endpoint.instance, error)
    }
  }
}
