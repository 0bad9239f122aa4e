// One port, two protocols: every HTTP listener of the mesh answers HTTP/1.1 and HTTP/2
// over cleartext (h2c with prior knowledge, as gRPC clients speak it), telling them
// apart by the first bytes a client sends — Istio's sidecars sniff the same way. A
// client learns one address (`$CATALOG_URL`) whatever it speaks.
//
// node:http reads a connection handed to it after the sniff as usual (what was read is
// put back with unshift). node:http2 reads the socket's handle directly and would lose
// those bytes, so an HTTP/2 connection reaches it through a small Duplex that replays
// them first; gRPC's long-lived connections pay for that once, not per request.
import http, {type IncomingMessage, type ServerResponse} from 'node:http'
import http2 from 'node:http2'
import net, {type Socket} from 'node:net'
import {Duplex} from 'node:stream'
import type {TLSSocket} from 'node:tls'
import {type ProxyError, replyOnSocket, sendProxyError, tooManyHeaders, versionNotSupported} from './respond.js'
import {type TlsMaterial, TlsTerminator, type TlsTerminatorOptions} from './tls-terminator.js'

/** Envoy's default max_headers_count. */
export const DEFAULT_MAX_REQUEST_HEADERS = 100

/** The client connection preface of RFC 9113 §3.4. */
const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1')

export interface HttpListenerOptions {
  headersTimeoutMs: number
  keepAliveTimeoutMs: number
  requestTimeoutMs: number
  /** How often node:http checks the two timeouts above (its default: 30 s). */
  connectionsCheckingIntervalMs?: number
  /** A request of either protocol: node:http2's compatibility request/response have the surface the data plane uses. */
  onRequest(req: IncomingMessage, res: ServerResponse): void
  onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void
  /** An HTTP/1.1 CONNECT: the socket is the handler's (node:http closes it when no one listens). */
  onConnect?(req: IncomingMessage, socket: Socket, head: Buffer): void
  /** Read per request (a shared object, so a new limit applies to listeners already open): above it, 431. */
  limits?: {maxRequestHeaders: number}
  /** TLS on the port (tls-terminator.ts), offering h2 and http/1.1 by ALPN; a client that sends plaintext where TLS is required is told why. */
  tls?: {options: Omit<TlsTerminatorOptions, 'alpn' | 'refusePlaintext'>; material: TlsMaterial; plaintextRefused: ProxyError}
}

export class HttpListener {
  /** The listening socket: connections are sniffed here and handed on. */
  readonly server: net.Server
  private readonly http1: http.Server
  private readonly http2: http2.Http2Server
  private readonly sessions = new Set<http2.ServerHttp2Session>()
  /** The response still going out on a connection, until it closes (see onSocket). */
  private readonly responding = new WeakMap<Socket, ServerResponse>()

  private readonly headersTimeoutMs: number
  /** Present when the port speaks TLS: new certificates go to it. */
  readonly tls?: TlsTerminator

  constructor(opts: HttpListenerOptions) {
    this.headersTimeoutMs = opts.headersTimeoutMs
    this.http1 = http.createServer({
      headersTimeout: opts.headersTimeoutMs,
      requestTimeout: opts.requestTimeoutMs,
      connectionsCheckingInterval: opts.connectionsCheckingIntervalMs,
    })
    this.http1.keepAliveTimeout = opts.keepAliveTimeoutMs
    // node:http starts tracking connections (the headers and request timeouts, closing idle
    // connections) when it starts listening; this one never listens itself, so it is told.
    this.http1.emit('listening')
    // What the mesh refuses before any handler: the requests node:http parses but cannot be proxied.
    const limits = opts.limits ?? {maxRequestHeaders: DEFAULT_MAX_REQUEST_HEADERS}
    this.http1.on('request', (req: IncomingMessage, res: ServerResponse) => {
      // Kept: req.socket can be null by the time the response closes.
      const socket = req.socket
      this.responding.set(socket, res)
      res.once('close', () => this.responding.get(socket) === res && this.responding.delete(socket))
      const refused = refusal(req, limits)
      if (refused) return refuseRequest(req, res, refused, true)
      opts.onRequest(req, res)
    })
    // node:http answers a request it cannot parse (431, 400…) with a write and a destroy in the
    // same tick: a TLS socket is destroyed before the answer is encrypted, so a client over TLS
    // saw the connection close in silence. The same answers, ended instead.
    this.http1.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
      if (!socket.writable) return void socket.destroy()
      // A response under way keeps its bytes (they may still be in TLS) and gets nothing after them.
      const message = (socket as {_httpMessage?: ServerResponse})._httpMessage
      socket.end(message?.headersSent ? undefined : clientErrorResponse(error.code))
      // A client that does not read its answer does not keep the socket.
      setTimeout(() => socket.destroy(), CLIENT_ERROR_LINGER_MS).unref()
    })
    const onSocket = (handler: (req: IncomingMessage, socket: Socket, head: Buffer) => void) => (req: IncomingMessage, socket: Socket, head: Buffer) => {
      // node:http hands the socket over as soon as it has read the request, even while the
      // connection's previous response is still going out (a pipelining client): their bytes
      // would interleave, and a ServerResponse cannot take a socket node:http still holds.
      // So this one waits for it.
      const before = this.responding.get(socket)
      if (before) {
        return void before.once('close', () => {
          if (socket.destroyed) return
          // node:http armed the keep-alive timeout when that response finished: this connection is no longer its.
          socket.setTimeout(0)
          onSocket(handler)(req, socket, head)
        })
      }
      const refused = refusal(req, limits)
      if (!refused) return handler(req, socket, head)
      socket.on('error', () => undefined)
      replyOnSocket(socket, refused)
    }
    this.http1.on('upgrade', onSocket(opts.onUpgrade))
    if (opts.onConnect) this.http1.on('connect', onSocket(opts.onConnect))
    // Enough pairs that a request over the limit arrives and is answered 431, rather than the
    // stream being reset by nghttp2 (its default is 128); the header bytes stay bounded by its size limit.
    this.http2 = http2.createServer({maxHeaderListPairs: Math.max(128, limits.maxRequestHeaders * 2)})
    this.http2.on('request', (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
      const count = req.rawHeaders.length / 2
      // Pseudo-headers (:method, :path, …) are HTTP/2's request line, not headers the limit counts.
      if (count > limits.maxRequestHeaders && count - pseudoHeaders(req.rawHeaders) > limits.maxRequestHeaders) {
        return refuseRequest(req as unknown as IncomingMessage, res as unknown as ServerResponse, tooManyHeaders(count - pseudoHeaders(req.rawHeaders), limits.maxRequestHeaders), false)
      }
      opts.onRequest(req as unknown as IncomingMessage, res as unknown as ServerResponse)
    })
    this.http2.on('session', (session) => {
      this.sessions.add(session)
      // A client sends its SETTINGS right after the preface (RFC 9113 §3.4): one that stays silent
      // (after a TLS handshake, with no sniff to time it out) goes as a silent HTTP/1.1 client does.
      const silent = setTimeout(() => session.destroy(), this.headersTimeoutMs)
      session.once('remoteSettings', () => clearTimeout(silent))
      session.once('close', () => {
        clearTimeout(silent)
        this.sessions.delete(session)
      })
      // An idle gRPC connection stays open as long as its client keeps it (as Envoy's default).
      session.on('error', () => undefined)
    })
    if (opts.tls) {
      const {plaintextRefused} = opts.tls
      const options = {...opts.tls.options, alpn: ['h2', 'http/1.1'], refusePlaintext: (socket: Socket) => replyOnSocket(socket, plaintextRefused)}
      this.tls = new TlsTerminator(options, opts.tls.material, (socket, security) => this.accept(socket, security.tls))
    }
    const tls = this.tls
    // As node:http's own servers do: a response is not held back waiting for an ACK (Nagle).
    this.server = net.createServer({noDelay: true}, tls ? (socket) => tls.accept(socket) : (socket) => this.accept(socket))
  }

  /**
   * A connection to serve: its own (from `server`, after TLS if the port speaks it: `tls`), or
   * one that arrived some other way (a CONNECT tunnel).
   */
  accept(socket: Socket, tls = false): void {
    socket.on('error', () => undefined)
    // ALPN chose HTTP/2: node:http2 reads the TLS socket itself, which keeps what the handshake
    // proved on it (a replaying Duplex would hide it). Anything else is sniffed, TLS or not.
    if ((socket as TLSSocket).alpnProtocol === 'h2') return void this.http2.emit('connection', socket)
    // Silent connections go as node:http's headers timeout would have them go.
    socket.setTimeout(this.headersTimeoutMs, () => socket.destroy())
    let seen: Buffer | undefined
    const onData = (chunk: Buffer) => {
      seen = seen ? Buffer.concat([seen, chunk]) : chunk
      const n = Math.min(seen.length, H2_PREFACE.length)
      const h2 = seen.compare(H2_PREFACE, 0, n, 0, n) === 0
      // "P" could still be POST or PUT: wait for the rest of the preface.
      if (h2 && n < H2_PREFACE.length) return
      socket.off('data', onData)
      socket.pause()
      socket.setTimeout(0)
      // Over TLS, HTTP/2 is spoken only once ALPN chose it (RFC 9113 §3.2).
      if (h2 && tls) return void socket.destroy()
      if (h2) return void this.http2.emit('connection', replaying(socket, seen))
      socket.unshift(seen)
      this.http1.emit('connection', socket)
      socket.resume()
    }
    socket.on('data', onData)
    // One the TLS sniff paused (and put its first bytes back into) does not flow by itself.
    socket.resume()
  }

  /** Stops accepting and closes idle connections; requests under way finish. */
  close(): void {
    this.server.close()
    // Closes the idle connections and stops the timeouts' checker.
    this.http1.close()
    // GOAWAY: the client opens no new streams here; those under way finish.
    for (const s of this.sessions) s.close()
  }

  /** Closes every connection, requests under way or not. */
  closeAll(): void {
    this.http1.closeAllConnections()
    for (const s of this.sessions) s.destroy()
  }
}

/** How long an answer to an unreadable request may take to leave before its socket is destroyed. */
const CLIENT_ERROR_LINGER_MS = 1000

/** node:http's own answers to a request it cannot parse (lib/_http_server.js). */
function clientErrorResponse(code: string | undefined): string {
  const [status, reason] =
    code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large']
      : code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW'
        ? [413, 'Payload Too Large']
        : code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'Request Timeout']
          : [400, 'Bad Request']
  return `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\n\r\n`
}

/** Why an HTTP/1.x request is refused before it is served: another HTTP version on the request line, too many headers. */
function refusal(req: IncomingMessage, limits: {maxRequestHeaders: number}): ProxyError | undefined {
  // node:http parses `HTTP/2.0` (and keeps its version) though it speaks only 1.x on this connection.
  if (req.httpVersionMajor !== 1) return versionNotSupported(`${req.httpVersionMajor}.${req.httpVersionMinor}`)
  const count = req.rawHeaders.length / 2
  if (count > limits.maxRequestHeaders) return tooManyHeaders(count, limits.maxRequestHeaders)
  return undefined
}

function refuseRequest(req: IncomingMessage, res: ServerResponse, error: ProxyError, http1: boolean): void {
  // The connection carries no other request after one it could not read (HTTP/2: only the stream ends).
  if (http1) res.shouldKeepAlive = false
  req.resume()
  sendProxyError(res, error)
}

function pseudoHeaders(raw: readonly string[]): number {
  let n = 0
  for (let i = 0; i < raw.length; i += 2) if (raw[i].charCodeAt(0) === 58) n++
  return n
}

/** `socket` as a Duplex that yields `first` before what the socket reads next. */
function replaying(socket: Socket, first: Buffer): Duplex {
  const duplex = new Duplex({
    read: () => void socket.resume(),
    write: (chunk: Buffer, _encoding, done) => void socket.write(chunk, done),
    final: (done) => {
      socket.end()
      done()
    },
    destroy: (error, done) => {
      socket.destroy(error ?? undefined)
      done(error)
    },
  })
  duplex.push(first)
  socket.on('data', (chunk: Buffer) => {
    if (!duplex.push(chunk)) socket.pause()
  })
  socket.once('end', () => duplex.push(null))
  socket.once('close', () => duplex.destroy())
  socket.resume()
  return duplex
}
