// The sidecar's request path as a stack of small layers, read top to bottom like
// linkerd2-proxy's `.push(layer)` chains. A layer wraps the service below it.
//
// A service answers through a Reply (ok or fail, exactly once) rather than a promise:
// a layer that watches the answer passes down one small object of its own, and the
// answer climbs back up in the same tick it arrives. With a promise per layer a call
// made a dozen promises and as many microtask hops, and closures for each.
//
//   trace → rate-limit → fault(caller) → route → timeout(overall) → retry → timeout(per-try)
//         → circuit-breaker → activator (scaled services only) → balance → outcome → server span → fault(callee) → upstream (undici; node:http2 for gRPC)
import type {Duplex, Readable} from 'node:stream'
import type {Endpoint} from './registry.js'
import {callDone, type DoneListener, type ResponseBody} from './body.js'
import type {Cancellation} from './cancellation.js'
import type {Clock} from '../time/clock.js'
import type {HeaderMap, HeaderPairs} from './headers.js'
import type {ResponseFlag} from './respond.js'
import type {RoutingDecision} from '../telemetry/span.js'

/**
 * Who is calling, as the mesh established it: `listener` — the listener the call came in on
 * says (each instance has its own outbound listeners, so the port is the caller's name);
 * `mtls` and `jwt` are for a peer certificate or a token to say it instead.
 */
export interface Peer {
  /** A service name, `ingress`, or `unknown` (someone dialled an instance's published address). */
  identity: string
  /**
   * The caller's SPIFFE ID (`spiffe://<trustDomain>/ns/<mesh>/sa/<service>`) when the mesh knows
   * it: from the listener for a caller in the mesh, from its certificate under mTLS.
   */
  principal?: string
  authn: 'listener' | 'mtls' | 'jwt'
}

/**
 * What request authentication (a JWT rule) made of the request: Istio's request principal
 * `<iss>/<sub>` and the token's claims when a valid token was presented; `outcome: 'none'`
 * when there was no token (not a refusal by itself, as in Istio).
 */
export interface RequestAuth {
  outcome: 'valid' | 'none'
  principal?: string
  claims?: Readonly<Record<string, unknown>>
  /** Which jwtRule accepted the token (its issuer), for `mesh trace --why`. */
  rule?: string
}

export interface MeshRequest {
  method: string
  /** Origin-form path with query. */
  path: string
  /** End-to-end headers only (hop-by-hop already stripped). */
  headers: HeaderMap
  /** A body the retry layer may replay (buffered within the bound), a one-shot stream, or none. */
  body: Buffer | Readable | null
  /** False when the body was too large to buffer: such a request is never retried. */
  replayable: boolean
  destination: string
  /** The caller's workload for telemetry (metrics, spans, access logs). */
  source: string
  /** Who is calling, for authorization: set where the call came in. */
  peer: Peer
  /** Set by the request-authentication layer: absent where no jwtRule applies. */
  auth?: RequestAuth
  sourceVersion?: string
  sourceInstance?: string
  /** The spans' name (`GET /items`), made by the first span that records: the call's spans share it. */
  spanName?: string
  /** The protocol of an Upgrade request (`websocket`): answered 101, it becomes a tunnel (tunnel.ts). */
  upgrade?: string
}

export interface MeshResponse {
  status: number
  /** End-to-end headers as a list (hop-by-hop already stripped). */
  headers: HeaderPairs
  body: ResponseBody | null
  endpoint?: Endpoint
  /** A gRPC answer's status when its headers carry it (Trailers-Only: an error before any message). */
  grpcStatus?: number
  /** Set when the mesh made this reply itself. */
  flags?: ResponseFlag
  cause?: string
  /** A 101 to an Upgrade request: the instance's socket, now speaking `protocol`. */
  tunnel?: {socket: Duplex; protocol: string}
}

export type {RoutingDecision}

export interface CallContext {
  readonly clock: Clock
  /**
   * Aborts the work below: the client went away or a timeout fired. A per-try timeout
   * puts its own here while its try is under way (one context per request, not a copy
   * per try), so a layer reads it when it starts its work and keeps what it read.
   */
  signal: Cancellation
  /**
   * Cancels the whole request (the overall timeout): the request's own cancellation
   * (or, in tests, an AbortController), so `signal` then aborts with `reason`.
   */
  readonly canceller: {abort(reason: Error): void}
  readonly traceId: string
  readonly traceFlags: string
  /** The client span of this call (the caller's outbound side). */
  readonly clientSpanId: string
  /** The span the caller's traceparent named (the caller's own server span), if any. */
  readonly parentSpanId?: string
  readonly decision: RoutingDecision
  /** 1 for the first try; set by the retry layer. */
  attempt: number
  /** Set by the route layer. */
  version?: string
  /** Set by the balance layer, per attempt. */
  endpoint?: Endpoint
  /** Instances tried by earlier attempts (set by the retry layer): a retry goes elsewhere when it can. */
  tried?: Set<string>
  /** Set by the leaf when it originates TLS to the instance (policy.tls): the spans' security labels. */
  upstreamTls?: UpstreamSecurity
  /** Set by the activator when the call waited for an instance to cold-start (ms): the span, metrics and `x-mesh-cold-start` take it. */
  coldStartMs?: number
  /**
   * Set by the activator for the balance layer just below it, per attempt to a scaled version:
   * the instances with a free slot, and where the chosen one's slot is taken (layers/activator.ts).
   */
  slot?: InstanceSlot
  /**
   * A mirrored copy (set on the shadow's own context only): fire and forget, as Envoy's shadow.
   * It takes a free place or none: never held, never waking a version at zero.
   */
  mirror?: true
}

/** A scaled version's admitted attempt, as the balancer sees it: pick among `free`, then `claim` the one picked. */
export interface InstanceSlot {
  /** The endpoints of `all` with a place free; never empty for an admitted attempt. */
  free(all: readonly Endpoint[]): readonly Endpoint[]
  claim(endpoint: Endpoint): void
}

/** The TLS the mesh speaks to a destination's instances, and the identities on each end when they are the mesh's. */
export interface UpstreamSecurity {
  mode: 'ISTIO_MUTUAL' | 'MUTUAL' | 'SIMPLE'
  /** The SPIFFE ID presented (ISTIO_MUTUAL: the caller's). */
  source?: string
  /** The SPIFFE ID the instance had to prove (ISTIO_MUTUAL). */
  destination?: string
}

/** Where a service's answer goes: `ok` or `fail`, exactly once. Neither may throw. */
export interface Reply {
  ok(response: MeshResponse): void
  fail(error: unknown): void
}

/** Never throws: a failure goes to `reply.fail`. */
export type Service = (req: MeshRequest, ctx: CallContext, reply: Reply) => void
export type Layer = (inner: Service) => Service

/**
 * Calls `service` with `reply`. A service does not throw; one that does (a bug) fails
 * through `reply` like any failure, so the layers above still record and release.
 */
export function forward(service: Service, req: MeshRequest, ctx: CallContext, reply: Reply): void {
  try {
    service(req, ctx, reply)
  } catch (error) {
    reply.fail(error)
  }
}

/** A service's answer as a promise, for the rare paths (faults, tests) that await it. */
export function callService(service: Service, req: MeshRequest, ctx: CallContext): Promise<MeshResponse> {
  return new Promise((resolve, reject) => forward(service, req, ctx, {ok: resolve, fail: reject}))
}

/** Sends a promise's outcome on to a reply. */
export function replyWith(pending: Promise<MeshResponse>, reply: Reply): void {
  pending.then(
    (response) => reply.ok(response),
    (error) => reply.fail(error),
  )
}

export interface Stack {
  push(layer: Layer | undefined): Stack
  service(): Service
}

/** Layers pushed later wrap those pushed earlier; `undefined` (a policy not configured) is skipped. */
export function stack(base: Service): Stack {
  let current = base
  return {
    push(layer) {
      if (layer) current = layer(current)
      return this
    },
    service: () => current,
  }
}

/** A response no one will read (a retried attempt, an answer that came too late): its body and any tunnel go. */
export function dropResponse(response: MeshResponse): void {
  response.body?.destroy()
  response.tunnel?.socket.destroy()
}

/** Runs `fn` once the response body is done (consumed, cut or discarded), or at once if there is none. */
export function onBodyDone(res: MeshResponse, listener: DoneListener): void {
  if (res.body) res.body.onDone(listener)
  else callDone(listener)
}
