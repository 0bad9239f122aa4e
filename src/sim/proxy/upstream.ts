// The bottom of the stack: one HTTP exchange with the chosen instance over an
// undici keep-alive pool. Bodies stream both ways; nothing is buffered here.
// `dispatch` with a raw handler (not `request()`): no undici BodyReadable, no header
// object parsed and copied again — the response headers are filtered once from the
// raw pairs, and the body (body.ts) pauses undici on backpressure.
import type {Agent, Dispatcher} from 'undici'
import {type BodySource, DISCARDED, ResponseBody} from './body.js'
import {endToEndPairs} from './headers.js'
import {connectFailure, ProxyError, upstreamReset} from './respond.js'
import type {MeshResponse, Service} from './stack.js'
import type {Endpoint} from '../control/registry.js'

/** `inflight`: requests under way per instance (a drained instance is stopped only when it reaches 0). */
export function upstream(agent: Agent, inflight: Map<string, number>): Service {
  return function upstream(req, ctx) {
    const endpoint = ctx.endpoint!
    const signal = ctx.signal
    if (signal.aborted) return Promise.reject(abortReason(signal))
    inflight.set(endpoint.instance, (inflight.get(endpoint.instance) ?? 0) + 1)
    return new Promise<MeshResponse>((resolve, reject) => {
      agent.dispatch(
        {origin: endpoint.origin, method: req.method as Dispatcher.HttpMethod, path: req.path, headers: req.headers as Record<string, string>, body: req.body ?? undefined},
        new Exchange(endpoint, signal, inflight, resolve, reject),
      )
    })
  }
}

/**
 * One attempt's undici handler, as a class rather than a bag of closures: it is
 * created for every request. It fills the response body and is that body's source.
 */
class Exchange implements Dispatcher.DispatchHandler, BodySource {
  private abortUpstream: ((reason?: Error) => void) | undefined
  private resumeUpstream: (() => void) | undefined
  body: ResponseBody | undefined
  finished = false
  private readonly onAbort = () => this.abortUpstream?.(abortReason(this.signal))

  constructor(
    private readonly endpoint: Endpoint,
    private readonly signal: AbortSignal,
    private readonly inflight: Map<string, number>,
    private readonly resolve: (response: MeshResponse) => void,
    private readonly reject: (error: ProxyError) => void,
  ) {
    signal.addEventListener('abort', this.onAbort, {once: true})
  }

  onConnect(abort: (reason?: Error) => void): void {
    this.abortUpstream = abort
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[] | string[] | null, resume: () => void): boolean {
    // 1xx are informational; the final answer follows.
    if (statusCode < 200) return true
    this.resumeUpstream = resume
    const body = (this.body = new ResponseBody(this))
    body.onDone(() => this.done())
    this.resolve({status: statusCode, headers: endToEndPairs(rawHeaders as Buffer[]), body, endpoint: this.endpoint})
    return true
  }

  onData(chunk: Buffer): boolean {
    return this.body!.push(chunk)
  }

  onComplete(): void {
    this.settle()
    this.body!.end()
  }

  onError(error: Error): void {
    this.settle()
    if (this.body) return void this.body.fail(error)
    this.done()
    this.reject(classify(error, this.signal, this.endpoint))
  }

  resume(): void {
    this.resumeUpstream?.()
  }

  /** The body was discarded or cut (a retried attempt, a timeout, a client that left): stop reading from the instance. */
  cancel(error?: Error): void {
    // undici wants a reason; a quietly dropped body needs no stack trace of its own.
    if (!this.finished) this.abortUpstream?.(error ?? DISCARDED)
  }

  private settle(): void {
    this.finished = true
    this.signal.removeEventListener('abort', this.onAbort)
  }

  private done(): void {
    const instance = this.endpoint.instance
    const n = (this.inflight.get(instance) ?? 1) - 1
    if (n <= 0) this.inflight.delete(instance)
    else this.inflight.set(instance, n)
  }
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
