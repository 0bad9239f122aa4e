// The one place where the data path turns a failure into an HTTP reply. Every reply
// the mesh makes itself carries Envoy's response-flag code and a plain-English
// reason, so a user can tell a mesh 503 from their own service's 503.
import {type ServerResponse, STATUS_CODES} from 'node:http'
import {grpcMessage, grpcStatusIn, grpcStatusOfReply, isGrpcRequest} from './grpc.js'
import {REASON_HEADER, RESPONSE_FLAGS_HEADER} from './headers.js'
import type {Outcome} from './policy/retry-classify.js'
import {type Span, spanName} from '../telemetry/span.js'
import type {TelemetrySink} from './telemetry-sink.js'
import {type CallContext, type MeshRequest, type MeshResponse, onBodyDone, type Reply} from './stack.js'

/** `notStarted` of a service `mesh stop` stopped (what `mesh start` with no names starts again). */
export const STOPPED_BY_MESH_STOP = 'stopped by mesh stop'

/**
 * Envoy's response flags (a subset grows with the policies). `RBAC` is meshsim's own: Envoy
 * leaves the flags empty for a refusal by its RBAC filter and says
 * `rbac_access_denied_matched_policy[...]` in the response code details instead.
 * `JWT` is meshsim's too, for a token request authentication refused (Envoy: `jwt_authn_access_denied`).
 * `DPE`: the request itself cannot be served (the client's fault); `UPE`: the instance's
 * response broke HTTP (its fault). `TH` is meshsim's: a scaled version's concurrency limit
 * refused the request (Lambda's 429 TooManyRequestsException; Envoy has no such flag).
 */
export type ResponseFlag = 'UH' | 'UF' | 'UO' | 'NR' | 'URX' | 'UT' | 'UC' | 'LR' | 'DI' | 'FI' | 'RL' | 'DC' | 'RBAC' | 'DPE' | 'UPE' | 'JWT' | 'TH'

export class ProxyError extends Error {
  /** How the retry layer and outlier detection see this failure (undefined: not an upstream failure). */
  readonly outcome?: Outcome
  /** Extra reply headers (Retry-After). */
  readonly headers?: Record<string, string>
  /** Reset the client's connection instead of replying (an injected reset on the caller's side). */
  readonly resetClient: boolean
  /** The gRPC status a gRPC caller gets, when not the one the HTTP status maps to (an abort fault's). */
  private readonly grpc?: number

  constructor(
    readonly status: number,
    readonly flag: ResponseFlag,
    message: string,
    options?: {cause?: unknown; outcome?: Outcome; headers?: Record<string, string>; resetClient?: boolean; grpcStatus?: number},
  ) {
    super(message, options?.cause === undefined ? undefined : {cause: options.cause})
    this.name = 'ProxyError'
    this.outcome = options?.outcome
    this.headers = options?.headers
    this.resetClient = options?.resetClient ?? false
    this.grpc = options?.grpcStatus
  }

  /** What a gRPC caller gets for this reply (grpc.ts). */
  get grpcStatus(): number {
    return this.grpc ?? grpcStatusOfReply(this.status, this.flag)
  }
}

const CONNECT_FAILURE: Outcome = {kind: 'connect-failure'}
const RESET: Outcome = {kind: 'reset'}
const TIMEOUT: Outcome = {kind: 'timeout'}

/** Which deadline fired: the policy's overall or per-try timeout, or the gRPC caller's own. */
export type TimeoutSource = 'overall' | 'per-try' | 'grpc-timeout'

export const timeoutError = (service: string, which: TimeoutSource, ms: number) =>
  new ProxyError(
    504,
    'UT',
    which === 'overall'
      ? `upstream request timeout: "${service}" did not answer within its ${ms} ms timeout (policy.timeout)`
      : which === 'per-try'
        ? `upstream request timeout: one try to "${service}" took longer than its ${ms} ms per-try timeout (policy.retries.perTryTimeout)`
        : `upstream request timeout: "${service}" did not answer within the ${ms} ms the caller's deadline left (grpc-timeout)`,
    {outcome: TIMEOUT},
  )

/** `whose`: ` from "frontend"` and the like (KeyedRateLimiter.whose); `headers`: the RateLimit-* ones. */
export const rateLimited = (service: string, retryAfterMs: number, whose = '', headers?: Record<string, string>) =>
  new ProxyError(
    429,
    'RL',
    `rate limited: "${service}" admits no more requests${whose} right now (policy.rateLimit); retry after ${Math.ceil(retryAfterMs / 1000)} s`,
    {headers: {...headers, 'retry-after': String(Math.max(1, Math.ceil(retryAfterMs / 1000)))}},
  )

/** Starts as Envoy's body for it does ("RBAC: access denied"), so Istio users' habits still find it. */
export const accessDenied = (service: string, source: string, reason: string) =>
  new ProxyError(403, 'RBAC', `RBAC: access denied: "${source}" may not make this call to "${service}": ${reason} (policy.authorization)`)

export const overflow = (service: string, limit: string, value: number) =>
  new ProxyError(503, 'UO', `upstream overflow: "${service}" is at its circuit-breaker limit ${limit} = ${value} (policy.circuitBreaker)`)

/** `notStarted`: why the service runs no instance yet (`mesh up` left it out), when that is the reason. */
export const noHealthyUpstream = (service: string, known: number, notStarted?: string) =>
  new ProxyError(
    503,
    'UH',
    notStarted
      ? `no healthy upstream: service "${service}" is not started (${notStarted}; \`mesh ${notStarted === STOPPED_BY_MESH_STOP ? 'start' : 'up'} ${service}\` starts it)`
      : known === 0
        ? `no healthy upstream: service "${service}" has no healthy instance right now`
        : `no healthy upstream: none of the ${known} instances of "${service}" is healthy`,
  )

/**
 * The activator refused a request for a scaled version: no slot, the queue full, and the
 * version cannot grow (maxScale, the account or its reservation). `why` is the gate's reason.
 * Never retried (no outcome), as a rate limit's 429.
 */
export const throttled = (why: string) => new ProxyError(429, 'TH', `throttled: concurrency limit: ${why}`)

/**
 * A request the activator held got no instance: the activator timeout passed, the cold start
 * failed (`why` has the start's error), or the version stopped being served. 503 UH: there was
 * no instance for it, as Knative's activator answers 503 when its timeout passes.
 */
export const notActivated = (why: string) => new ProxyError(503, 'UH', `no healthy upstream: ${why}`)

/** A host name that is no service: 502, as a forward proxy that cannot resolve a name answers. */
export const noRoute = (name: string, known: string[]) =>
  new ProxyError(
    502,
    'NR',
    `no route: "${name}" is not a service in this mesh` + (known.length ? ` (known: ${known.join(', ')})` : ''),
  )

export const connectFailure = (instance: string, address: string, cause: unknown) =>
  new ProxyError(
    502,
    'UF',
    `upstream connect error: ${instance} at ${address} refused or dropped the connection (${errorCode(cause)})`,
    {cause, outcome: CONNECT_FAILURE},
  )

/**
 * TLS to the instance failed (policy.tls): its certificate did not verify, ours was refused, or
 * it does not speak TLS. 503 UF with the TLS reason, as Envoy answers a TLS connect failure:
 * nothing reached the app, so it is retried and ejected for as a connect failure.
 */
export const tlsFailure = (instance: string, address: string, reason: string, cause: unknown) =>
  new ProxyError(503, 'UF', `upstream connect error: TLS to ${instance} at ${address} failed: ${reason}`, {cause, outcome: CONNECT_FAILURE})

/**
 * The mesh could not set up TLS to `service` at all (no mesh CA for ISTIO_MUTUAL, a certificate
 * file gone since `mesh validate`): its own configuration's fault, so no outcome (not retried,
 * never counted against an instance).
 */
export const tlsSetupFailure = (service: string, reason: string, cause: unknown) =>
  new ProxyError(503, 'UF', `upstream connect error: the mesh cannot originate TLS to "${service}" (policy.tls): ${reason}`, {cause})

/**
 * A request the mesh cannot forward because of the request itself (two Host headers, a
 * header value undici or node:http2 refuses): the client's fault, answered 400 and never
 * counted against an instance or retried (no outcome).
 */
export const badRequest = (reason: string) => new ProxyError(400, 'DPE', `bad request: the mesh cannot forward it: ${reason}`)

/** More request headers than the listener takes (Envoy's max_headers_count): 431. */
export const tooManyHeaders = (count: number, limit: number) =>
  new ProxyError(431, 'DPE', `request header fields too large: ${count} headers, more than the ${limit} the mesh takes (ingress.maxRequestHeaders)`)

/** An `HTTP/2.0` (or any other) request line on an HTTP/1.1 connection: 505, as nginx answers. */
export const versionNotSupported = (version: string) =>
  new ProxyError(505, 'DPE', `HTTP version not supported: HTTP/${version} on an HTTP/1.1 connection (HTTP/2 is spoken with its connection preface, h2c prior knowledge)`)

/** The instance's response broke HTTP (a bad chunk size, a bad status line): its fault, as a reset is. */
export const upstreamProtocolError = (instance: string, cause: unknown) =>
  new ProxyError(502, 'UPE', `upstream protocol error: ${instance} sent a malformed response (${(cause as Error).message})`, {
    cause,
    outcome: RESET,
  })

export const upstreamReset = (instance: string, cause: unknown) =>
  new ProxyError(502, 'UC', `upstream reset: ${instance} closed the connection before responding (${errorCode(cause)})`, {
    cause,
    outcome: RESET,
  })

export function errorCode(error: unknown): string {
  const e = error as {code?: string; cause?: {code?: string}; message?: string}
  return e?.code ?? e?.cause?.code ?? e?.message ?? String(error)
}

/**
 * Write a mesh-made reply, unless headers already went out (then the only honest signal is
 * a reset). To a gRPC call (`grpc`) it is a gRPC status, in a Trailers-Only answer.
 */
export function sendProxyError(res: ServerResponse, error: ProxyError, grpc = false): void {
  if (error.resetClient) {
    // HTTP/2: the stream, not the connection every other call shares.
    if (res.req.httpVersionMajor !== 2) res.socket?.resetAndDestroy?.()
    res.destroy()
    return
  }
  if (res.headersSent) {
    res.destroy(error)
    return
  }
  const mesh = meshReplyHeaders(error)
  if (grpc) {
    // Headers set before end(): node:http2 sends them on the frame that ends the stream.
    res.statusCode = 200
    const headers = {'content-type': 'application/grpc', ...grpcStatusHeaders(error), ...mesh}
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value)
    res.end()
    return
  }
  const body = `${error.message}\n`
  res.writeHead(error.status, {'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), ...mesh})
  res.end(body)
}

/** A mesh reply written straight to a socket no ServerResponse serves (a CONNECT, an Upgrade refused early); then it closes. */
export function replyOnSocket(socket: {end(text: string): void}, error: ProxyError): void {
  const body = `${error.message}\n`
  const headers = Object.entries(meshReplyHeaders(error)).map(([name, value]) => `${name}: ${value}\r\n`)
  socket.end(`HTTP/1.1 ${error.status} ${STATUS_CODES[error.status]}\r\n${headers.join('')}content-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
}

/** The flag and the reason every reply the mesh makes carries (and Retry-After and the like). */
export function meshReplyHeaders(error: ProxyError): Record<string, string> {
  return {
    [RESPONSE_FLAGS_HEADER]: error.flag,
    // Header values must be Latin-1; the reason is plain ASCII by construction.
    [REASON_HEADER]: error.message.replace(/[^\x20-\x7e]/g, '?'),
    ...error.headers,
  }
}

/** The mesh's reply as a gRPC status: in a Trailers-Only answer, or in the trailers of a cut stream. */
export function grpcStatusHeaders(error: ProxyError): Record<string, string> {
  return {'grpc-status': String(error.grpcStatus), 'grpc-message': grpcMessage(error.message)}
}

/**
 * A span's side of a hop (the client span of a call, or the server span of an attempt),
 * passed down as the reply of the work below. It records once the hop is over: with the
 * status when the response body is done, or with the mesh's status, flag and reason when
 * it failed (0 / DC when the caller went away).
 */
export abstract class SpanReply implements Reply {
  private settled = false
  private response: MeshResponse | undefined = undefined
  /** When the hop began (monotonic); the span's start and duration come from it. */
  protected readonly started: number

  constructor(
    private readonly next: Reply,
    protected readonly sink: TelemetrySink,
    protected readonly req: MeshRequest,
    protected readonly ctx: CallContext,
  ) {
    this.started = ctx.clock.now()
  }

  /** The span of this hop, ended now. */
  protected abstract span(status: number, flags?: string, cause?: string, grpcStatus?: number): Span

  private record(status: number, flags?: string, cause?: string, grpcStatus?: number): void {
    this.sink.record(this.withAuthn(this.span(status, flags, cause, grpcStatus)))
  }

  /** Who the caller is and what vouched for it, alike for both sides: `mesh trace --why` shows it. */
  private withAuthn(span: Span): Span {
    const {peer, auth} = this.req
    if (peer.principal) span.peerPrincipal = peer.principal
    span.peerAuthn = peer.authn
    if (auth) {
      span.requestAuthn = auth.outcome
      if (auth.principal) span.requestPrincipal = auth.principal
      if (auth.rule) span.authnRule = auth.rule
    }
    return span
  }

  /** The span's name and timing, alike for the client and the server side. */
  protected get name(): string {
    return (this.req.spanName ??= spanName(this.req.method, this.req.path))
  }

  protected get startMs(): number {
    return this.ctx.clock.wallAt(this.started)
  }

  protected get durationMs(): number {
    return this.ctx.clock.now() - this.started
  }

  ok(response: MeshResponse): void {
    if (this.settled) return
    this.settled = true
    this.response = response
    onBodyDone(response, this)
    this.next.ok(response)
  }

  /** @internal The response body is done: the hop is over. */
  bodyDone(): void {
    const response = this.response!
    // A gRPC call's status: in the headers of an error before any message, else in the trailers.
    const grpcStatus = response.grpcStatus ?? grpcStatusIn(response.body?.trailers)
    // A body cut by the mesh (the overall timeout, a reset fault) says why in the span.
    const cut = response.body?.errored
    if (cut instanceof ProxyError) this.record(response.status, cut.flag, cut.message, grpcStatus)
    else this.record(response.status, undefined, undefined, grpcStatus)
  }

  fail(error: unknown): void {
    if (this.settled) return
    this.settled = true
    // A gRPC caller got the mesh's answer as a gRPC status (sendProxyError).
    if (error instanceof ProxyError) this.record(error.status, error.flag, error.message, isGrpcRequest(this.req.headers) ? error.grpcStatus : undefined)
    else this.record(0, 'DC', `the caller went away (${(error as Error).message})`)
    this.next.fail(error)
  }
}
