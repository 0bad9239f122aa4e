// The bottom of the stack for instances that speak HTTP/2 (`protocol: grpc`), on
// node:http2 itself, one multiplexed connection per instance as gRPC clients keep.
// Not undici's HTTP/2 client: it ends a response at its trailers and drops what it
// still holds when the caller reads slower than the instance writes — a long gRPC
// stream through the mesh lost its last messages (and with them its status). Here the
// trailers wait for the end of the data.
import http2, {type ClientHttp2Session, type ClientHttp2Stream} from 'node:http2'
import type {Endpoint} from './registry.js'
import {type BodySource, ResponseBody} from './body.js'
import {grpcStatusIn} from './grpc.js'
import {endToEndPairs, type HeaderPairs, trailerPairs} from './headers.js'
import {ProxyError} from './respond.js'
import type {Cancellation} from './cancellation.js'
import type {Reply, Service} from './stack.js'
import {abortReason, classify, countDone, countStart} from './upstream.js'

/**
 * One HTTP/2 connection per instance origin, opened on first use and again after it closes.
 * With `tls` (upstream-tls.ts) the connections are TLS, h2 by ALPN, with those certificates and checks.
 */
export class H2Sessions {
  private readonly sessions = new Map<string, ClientHttp2Session>()
  private closed = false
  readonly scheme: 'http' | 'https'

  constructor(private readonly tls?: http2.SecureClientSessionOptions) {
    this.scheme = tls ? 'https' : 'http'
  }

  get(endpoint: Endpoint): ClientHttp2Session {
    const origin = endpoint.origin
    const existing = this.sessions.get(origin)
    if (existing && !existing.closed && !existing.destroyed) return existing
    const session = this.tls ? http2.connect(`https://${hostPort(endpoint)}`, this.tls) : http2.connect(origin)
    // A failed connection fails its streams (with the cause); the session itself must not throw.
    session.on('error', () => undefined)
    const forget = () => {
      if (this.sessions.get(origin) === session) this.sessions.delete(origin)
    }
    session.once('close', forget)
    session.once('goaway', forget)
    // An idle connection does not keep the daemon alive.
    session.unref()
    this.sessions.set(origin, session)
    if (this.closed) session.close()
    return session
  }

  /** Closes every connection: streams under way finish, new ones get a new connection only before close. */
  close(): void {
    this.closed = true
    for (const s of this.sessions.values()) s.close()
    this.sessions.clear()
  }
}

export function h2Upstream(sessions: H2Sessions, inflight: Map<string, number>): Service {
  return function h2Upstream(req, ctx, reply) {
    const endpoint = ctx.endpoint!
    const signal = ctx.signal
    if (signal.aborted) return reply.fail(abortReason(signal))
    if (req.upgrade) return reply.fail(new ProxyError(502, 'UC', `"${endpoint.service}" is protocol: grpc (HTTP/2): it takes no Upgrade (${req.upgrade})`))
    countStart(inflight, endpoint.instance)
    const headers: http2.OutgoingHttpHeaders = {}
    for (const name in req.headers) if (name !== 'host') headers[name] = req.headers[name]
    headers[':method'] = req.method
    headers[':path'] = req.path
    headers[':scheme'] = sessions.scheme
    headers[':authority'] = (req.headers.host as string | undefined) ?? `${endpoint.host}:${endpoint.port}`
    const exchange = new H2Exchange(endpoint, signal, inflight, reply)
    let stream: ClientHttp2Stream
    try {
      stream = sessions.get(endpoint).request(headers, {endStream: req.body === null})
    } catch (error) {
      return exchange.failed(error as Error)
    }
    exchange.attach(stream)
    if (req.body === null) return
    if (Buffer.isBuffer(req.body)) stream.end(req.body)
    else req.body.pipe(stream)
  }
}

/** `host:port` of an instance, with an IPv6 host in brackets. */
export function hostPort(endpoint: {host: string; port: number}): string {
  return endpoint.host.includes(':') ? `[${endpoint.host}]:${endpoint.port}` : `${endpoint.host}:${endpoint.port}`
}

/** One attempt on one stream; fills the response body and is its source. */
class H2Exchange implements BodySource {
  private stream: ClientHttp2Stream | undefined
  private body: ResponseBody | undefined
  private trailers: HeaderPairs | undefined
  private finished = false
  private readonly onAbort = () => this.stream?.close(http2.constants.NGHTTP2_CANCEL)

  constructor(
    private readonly endpoint: Endpoint,
    private readonly signal: Cancellation,
    private readonly inflight: Map<string, number>,
    private readonly reply: Reply,
  ) {
    signal.addEventListener('abort', this.onAbort)
  }

  attach(stream: ClientHttp2Stream): void {
    this.stream = stream
    stream.on('response', (head) => {
      const status = Number(head[':status'])
      // 1xx are informational; the final answer follows.
      if (status < 200) return
      const headers = endToEndPairs(trailerPairs(head) ?? [])
      const body = (this.body = new ResponseBody(this))
      body.onDone(() => this.settle())
      this.reply.ok({status, headers, body, endpoint: this.endpoint, grpcStatus: grpcStatusIn(headers)})
    })
    stream.on('data', (chunk: Buffer) => {
      if (this.body && !this.body.push(chunk)) stream.pause()
    })
    // Trailers come before the data a slow reader has not taken yet: kept for the end.
    stream.on('trailers', (trailers) => (this.trailers = trailerPairs(trailers)))
    stream.on('end', () => {
      if (this.body) this.body.end(this.trailers)
      else this.failed(new Error('the stream ended without a response'))
    })
    stream.on('error', (error) => this.failed(error))
    stream.on('close', () => {
      // Reset (RST_STREAM) without an error event: the body, if any, is cut.
      if (!this.finished && stream.rstCode !== undefined && stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) {
        this.failed(new Error(`stream reset by ${this.endpoint.instance} (HTTP/2 code ${stream.rstCode})`))
      }
    })
  }

  failed(error: Error): void {
    if (this.finished) return
    if (this.body) return void this.body.fail(error)
    this.settle()
    this.reply.fail(classify(error, this.signal, this.endpoint))
  }

  resume(): void {
    this.stream?.resume()
  }

  /** The body was discarded or cut: the instance stops sending (its end is counted when the body closes). */
  cancel(): void {
    if (!this.finished) this.stream?.close(http2.constants.NGHTTP2_CANCEL)
  }

  private settle(): void {
    if (this.finished) return
    this.finished = true
    this.signal.removeEventListener('abort', this.onAbort)
    countDone(this.inflight, this.endpoint.instance)
  }
}
