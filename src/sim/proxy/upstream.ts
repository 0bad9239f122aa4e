// The bottom of the stack: one HTTP exchange with the chosen instance over an
// undici keep-alive pool. Bodies stream both ways; nothing is buffered here.
// `dispatch` with a raw handler (not `request()`): no undici BodyReadable, no header
// object parsed and copied again — the response headers are filtered once from the
// raw pairs, and the body is a plain Readable that pauses undici on backpressure.
import {Readable} from 'node:stream'
import type {Agent, Dispatcher} from 'undici'
import {isHopByHop, type HeaderMap} from './headers.js'
import {connectFailure, ProxyError, upstreamReset} from './respond.js'
import {onBodyDone, type MeshResponse, type Service} from './stack.js'

/** `inflight`: requests under way per instance (a drained instance is stopped only when it reaches 0). */
export function upstream(agent: Agent, inflight: Map<string, number>): Service {
  const done = (instance: string) => {
    const n = (inflight.get(instance) ?? 1) - 1
    if (n <= 0) inflight.delete(instance)
    else inflight.set(instance, n)
  }
  return function upstream(req, ctx) {
    const endpoint = ctx.endpoint!
    const signal = ctx.signal
    if (signal.aborted) return Promise.reject(abortReason(signal))
    inflight.set(endpoint.instance, (inflight.get(endpoint.instance) ?? 0) + 1)
    return new Promise<MeshResponse>((resolve, reject) => {
      let abortUpstream: ((reason?: Error) => void) | undefined
      let resume: (() => void) | undefined
      let body: Readable | undefined
      let finished = false
      const onAbort = () => abortUpstream?.(abortReason(signal))
      signal.addEventListener('abort', onAbort, {once: true})
      const settle = () => {
        finished = true
        signal.removeEventListener('abort', onAbort)
      }
      const handler: Dispatcher.DispatchHandler = {
        onConnect(abort) {
          abortUpstream = abort
        },
        onHeaders(statusCode, rawHeaders, resumeFn) {
          // 1xx are informational; the final answer follows.
          if (statusCode < 200) return true
          resume = resumeFn
          body = new Readable({
            read: () => resume?.(),
            destroy: (error, callback) => {
              // Discarded (a retried attempt) or the client left: stop reading from the instance.
              if (!finished) abortUpstream?.(error ?? new Error('response discarded'))
              callback(error)
            },
          })
          const response: MeshResponse = {status: statusCode, headers: responseHeaders(rawHeaders as Buffer[]), body, endpoint}
          onBodyDone(response, () => done(endpoint.instance))
          resolve(response)
          return true
        },
        onData(chunk) {
          return body!.push(chunk)
        },
        onComplete() {
          settle()
          body!.push(null)
        },
        onError(error) {
          settle()
          if (body) return void body.destroy(error)
          done(endpoint.instance)
          reject(classify(error, signal, endpoint))
        },
      }
      agent.dispatch(
        {origin: endpoint.origin, method: req.method as Dispatcher.HttpMethod, path: req.path, headers: req.headers as Record<string, string>, body: req.body ?? undefined},
        handler,
      )
    })
  }
}

/** Raw [name, value, …] pairs → end-to-end headers (hop-by-hop and Connection-named ones dropped). */
function responseHeaders(raw: Buffer[]): HeaderMap {
  const out: HeaderMap = {}
  let named: string[] | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toString('latin1').toLowerCase()
    const value = raw[i + 1].toString('latin1')
    if (name === 'connection') named = value.toLowerCase().split(',').map((t) => t.trim())
    if (isHopByHop(name)) continue
    const prev = out[name]
    if (prev === undefined) out[name] = value
    else if (Array.isArray(prev)) prev.push(value)
    else out[name] = [prev, value]
  }
  if (named) for (const n of named) delete out[n]
  return out
}

function abortReason(signal: AbortSignal): ProxyError {
  const reason = signal.reason
  return reason instanceof ProxyError ? reason : new ProxyError(499, 'DC', 'the caller closed the connection')
}

function classify(error: Error, signal: AbortSignal, endpoint: {instance: string; host: string; port: number}): ProxyError {
  // Aborted from above: a timeout (its error is the reason) or the client went away.
  if (signal.aborted) return abortReason(signal)
  const e = error as NodeJS.ErrnoException
  const code = (e.cause as NodeJS.ErrnoException | undefined)?.code ?? e.code
  if (code === 'ECONNREFUSED' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'EHOSTUNREACH') {
    return connectFailure(endpoint.instance, `${endpoint.host}:${endpoint.port}`, error)
  }
  return upstreamReset(endpoint.instance, error)
}
