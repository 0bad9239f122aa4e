// The bottom of the stack: one HTTP exchange with the chosen instance over an
// undici keep-alive pool. Bodies stream both ways; nothing is buffered here.
// `dispatch` with a raw handler (not `request()`): no undici BodyReadable, no header
// object parsed and copied again — the response headers are filtered once from the
// raw pairs, and the body (body.ts) pauses undici on backpressure.
import type {Duplex} from 'node:stream'
import type {Agent, Dispatcher} from 'undici'
import {type BodySource, DISCARDED, ResponseBody} from './body.js'
import {endToEndPairs, trailerPairs} from './headers.js'
import {badRequest, connectFailure, ProxyError, tlsFailure, upstreamProtocolError, upstreamReset} from './respond.js'
import {isTlsError, tlsReason} from './tls-errors.js'
import type {Abortable} from '../abort-signal.js'
import type {Cancellation} from './cancellation.js'
import type {Reply, Service} from './stack.js'
import type {Endpoint} from './registry.js'

/**
 * `inflight`: requests under way per instance (a drained instance is stopped only when it reaches 0).
 * `secure`: the agent speaks TLS (upstream-tls.ts), so instances are dialled at https://.
 */
export function upstream(agent: Agent, inflight: Map<string, number>, secure = false): Service {
  return function upstream(req, ctx, reply) {
    const endpoint = ctx.endpoint!
    const signal = ctx.signal
    if (signal.aborted) return reply.fail(abortReason(signal))
    countStart(inflight, endpoint.instance)
    const exchange = new Exchange(endpoint, signal, inflight, reply)
    try {
      agent.dispatch(
        {
          origin: secure ? httpsOrigin(endpoint) : endpoint.origin,
          method: req.method as Dispatcher.HttpMethod,
          path: req.path,
          headers: req.headers as Record<string, string>,
          body: req.body ?? undefined,
          // undici sends Connection/Upgrade itself and hands over the socket on a 101 (onUpgrade).
          upgrade: req.upgrade,
        },
        exchange,
      )
    } catch (error) {
      // undici throws for what it cannot send (a bad header value): the exchange fails as a reset would.
      if (!exchange.finished) exchange.onError(error as Error)
    }
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
    private readonly signal: Cancellation,
    private readonly inflight: Map<string, number>,
    private readonly reply: Reply,
  ) {
    signal.addEventListener('abort', this.onAbort, {once: true})
  }

  onConnect(abort: (reason?: Error) => void): void {
    this.abortUpstream = abort
    // undici calls this only when it writes the request (after a free connection, a connect):
    // a caller that left while it waited in undici's queue has no listener left to tell.
    if (this.signal.aborted) abort(abortReason(this.signal))
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[] | string[] | null, resume: () => void): boolean {
    // 1xx are informational; the final answer follows.
    if (statusCode < 200) return true
    this.resumeUpstream = resume
    const body = (this.body = new ResponseBody(this))
    body.onDone(this)
    this.reply.ok({status: statusCode, headers: endToEndPairs(rawHeaders as Buffer[]), body, endpoint: this.endpoint})
    return true
  }

  /** A 101 to an Upgrade request: the socket is the tunnel's now, and no longer a request under way. */
  onUpgrade(statusCode: number, rawHeaders: Buffer[] | string[] | null, socket: Duplex): void {
    this.settle()
    this.done()
    const raw = (rawHeaders ?? []) as Buffer[]
    let protocol = ''
    for (let i = 0; i < raw.length; i += 2) if (raw[i].toString('latin1').toLowerCase() === 'upgrade') protocol = raw[i + 1].toString('latin1')
    this.reply.ok({status: statusCode, headers: endToEndPairs(raw), body: null, endpoint: this.endpoint, tunnel: {socket, protocol}})
  }

  onData(chunk: Buffer): boolean {
    return this.body!.push(chunk)
  }

  onComplete(trailers?: unknown): void {
    this.settle()
    this.body!.end(trailerPairs(trailers))
  }

  onError(error: Error): void {
    this.settle()
    // Cut after the head: the body says why (a malformed chunk is the instance's protocol error).
    if (this.body) return void this.body.fail(classify(error, this.signal, this.endpoint))
    this.done()
    this.reply.fail(classify(error, this.signal, this.endpoint))
  }

  resume(): void {
    this.resumeUpstream?.()
  }

  /** The body was discarded or cut (a retried attempt, a timeout, a client that left): stop reading from the instance. */
  cancel(error?: Error): void {
    if (this.finished) return
    // Replies run inside undici's own callbacks (a retry decided in onHeaders discards this
    // body there): the abort waits for them to return (nextTick: queueMicrotask would wrap
    // the callback in an AsyncResource). undici wants a reason; a quietly dropped body
    // needs no stack trace of its own.
    process.nextTick(() => {
      if (!this.finished) this.abortUpstream?.(error ?? DISCARDED)
    })
  }

  private settle(): void {
    this.finished = true
    this.signal.removeEventListener('abort', this.onAbort)
  }

  bodyDone(): void {
    this.done()
  }

  private done(): void {
    countDone(this.inflight, this.endpoint.instance)
  }
}

const httpsOrigins = new WeakMap<Endpoint, string>()

/** `https://host:port` of an instance, made once per endpoint (its `origin` is the http:// one). */
function httpsOrigin(endpoint: Endpoint): string {
  let origin = httpsOrigins.get(endpoint)
  if (origin === undefined) httpsOrigins.set(endpoint, (origin = `https${endpoint.origin.slice(endpoint.origin.indexOf(':'))}`))
  return origin
}

/** One more request under way to `instance`. */
export function countStart(inflight: Map<string, number>, instance: string): void {
  inflight.set(instance, (inflight.get(instance) ?? 0) + 1)
}

/** One request to `instance` is over. */
export function countDone(inflight: Map<string, number>, instance: string): void {
  const n = inflight.get(instance)
  // Left at 0, not deleted: a Map emptied and refilled on every request reallocates its
  // table each time. The data plane drops the entry when the instance leaves; one that
  // left with this request under way is not counted again.
  if (n !== undefined) inflight.set(instance, Math.max(0, n - 1))
}

export function abortReason(signal: Abortable): ProxyError {
  const reason = signal.reason
  return reason instanceof ProxyError ? reason : new ProxyError(499, 'DC', 'the caller closed the connection')
}

/**
 * What undici and node:http2 refuse to send because of the request itself (a second Host,
 * a header value or name they reject, `expect`): nothing reached the instance.
 */
const REQUEST_REFUSED = new Set([
  'UND_ERR_INVALID_ARG',
  'UND_ERR_NOT_SUPPORTED',
  'ERR_INVALID_HTTP_TOKEN',
  'ERR_INVALID_CHAR',
  'ERR_HTTP2_INVALID_HEADER_VALUE',
  'ERR_HTTP2_INVALID_CONNECTION_HEADERS',
  'ERR_HTTP2_HEADER_SINGLE_VALUE',
  'ERR_HTTP2_INVALID_PSEUDOHEADER',
])

export function classify(error: Error, signal: Abortable, endpoint: {instance: string; host: string; port: number}): ProxyError {
  // Aborted from above: a timeout (its error is the reason) or the client went away.
  if (signal.aborted) return abortReason(signal)
  if (error instanceof ProxyError) return error
  const e = error as NodeJS.ErrnoException
  const code = (e.cause as NodeJS.ErrnoException | undefined)?.code ?? e.code
  if (code === 'ECONNREFUSED' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'EHOSTUNREACH') {
    return connectFailure(endpoint.instance, `${endpoint.host}:${endpoint.port}`, error)
  }
  // A certificate refused either way, or no TLS spoken: nothing reached the app, so a connect failure.
  if (isTlsError(error)) return tlsFailure(endpoint.instance, `${endpoint.host}:${endpoint.port}`, tlsReason(error), error)
  // The client's fault, not the instance's: 400, no outcome (never retried, never ejects).
  if (code !== undefined && REQUEST_REFUSED.has(code)) return badRequest(error.message)
  // undici's parse errors (a bad chunk size, a bad status line): the instance broke HTTP.
  if (error.name === 'HTTPParserError' || code?.startsWith('HPE_')) return upstreamProtocolError(endpoint.instance, error)
  return upstreamReset(endpoint.instance, error)
}
