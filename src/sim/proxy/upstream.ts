// The bottom of the stack: one HTTP exchange with the chosen instance over an
// undici keep-alive pool. Bodies stream both ways; nothing is buffered here.
// `dispatch` with a raw handler (not `request()`): no undici BodyReadable, no header
// object parsed and copied again — the response headers are filtered once from the
// raw pairs, and the body is a plain Readable that pauses undici on backpressure.
import {Readable} from 'node:stream'
import type {Agent, Dispatcher} from 'undici'
import {endToEndHeaders} from './headers.js'
import {connectFailure, ProxyError, upstreamReset} from './respond.js'
import {onBodyDone, type MeshResponse, type Service} from './stack.js'
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
 * created for every request.
 */
class Exchange implements Dispatcher.DispatchHandler {
  private abortUpstream: ((reason?: Error) => void) | undefined
  body: UpstreamBody | undefined
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
    const body = (this.body = new UpstreamBody(this, resume))
    const response: MeshResponse = {status: statusCode, headers: endToEndHeaders(rawHeaders as Buffer[]), body, endpoint: this.endpoint}
    onBodyDone(response, () => this.done())
    this.resolve(response)
    return true
  }

  onData(chunk: Buffer): boolean {
    return this.body!.push(chunk)
  }

  onComplete(): void {
    this.settle()
    this.body!.push(null)
  }

  onError(error: Error): void {
    this.settle()
    if (this.body) return void this.body.destroy(error)
    this.done()
    this.reject(classify(error, this.signal, this.endpoint))
  }

  /** Stops reading from the instance (a discarded attempt, a client that left). */
  abort(error: Error): void {
    this.abortUpstream?.(error)
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

/** The response body as a Readable that pauses undici on backpressure. */
class UpstreamBody extends Readable {
  constructor(
    private readonly exchange: Exchange,
    private readonly resumeUpstream: () => void,
  ) {
    super()
  }

  override _read(): void {
    this.resumeUpstream()
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Every body is destroyed when it ends (autoDestroy): build an Error (and its stack) only when one is cut short.
    if (!this.exchange.finished) this.exchange.abort(error ?? new Error('response discarded'))
    callback(error)
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
