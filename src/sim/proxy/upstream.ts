// The bottom of the stack: one HTTP exchange with the chosen instance over an
// undici keep-alive pool. Bodies stream both ways; nothing is buffered here.
import type {Agent} from 'undici'
import {stripHopByHop} from './headers.js'
import {connectFailure, ProxyError, upstreamReset} from './respond.js'
import type {Service} from './stack.js'

export function upstream(agent: Agent): Service {
  return async function upstream(req, ctx) {
    const endpoint = ctx.endpoint!
    try {
      const r = await agent.request({
        origin: endpoint.origin,
        method: req.method as 'GET',
        path: req.path,
        headers: req.headers,
        body: req.body ?? undefined,
        signal: ctx.signal,
      })
      return {status: r.statusCode, headers: stripHopByHop(r.headers as Record<string, string | string[]>), body: r.body, endpoint}
    } catch (error) {
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
