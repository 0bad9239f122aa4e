// A span is one hop of one request as one side of the hop saw it: the caller's
// outbound sidecar records a CLIENT span, the callee's inbound sidecar a SERVER span.
// Spans are plain objects so the data path can record them without formatting;
// everything that turns them into text or JSON happens later, off the hot path.
import {outcomeStatus} from '../proxy/grpc.js'

/** Why a hop went where it went (shown by `mesh trace ID --why`). */
export interface RoutingDecision {
  /** The version the route layer chose, and the header/path rule that chose it, if one did. */
  version?: string
  routeMatched?: string
  /** Instances the balancer could pick from (of the last attempt). */
  candidates?: string[]
  chosen?: string
  /** Instances skipped because outlier detection ejected them. */
  ejected?: string[]
  /** Tries made, retries included. */
  attempts?: number
  /** True when every candidate was ejected and the balancer ignored ejections. */
  panic?: boolean
  retryBudgetLeft?: number
  timeoutFired?: 'overall' | 'per-try' | 'grpc-timeout'
  /** Faults applied to this hop, e.g. 'delay 200ms', 'abort 503'. */
  faults?: string[]
  /** The authorization rule that decided: `allowed by allow rule 1 (from frontend)`, `denied: …`. */
  authorization?: string
}

export type SpanKind = 'client' | 'server'

/** How the hop travelled (proxy/hop-security.ts). */
export interface HopSecurity {
  protocol: 'http' | 'grpc'
  /** A socket of the hop carried mutual TLS. */
  mtls: boolean
  sourcePrincipal?: string
  destinationPrincipal?: string
}

export interface Span {
  /** 32 lowercase hex digits. */
  traceId: string
  /** 16 lowercase hex digits. */
  spanId: string
  parentId?: string
  kind: SpanKind
  /** e.g. 'GET /items' */
  name: string
  /** The span's own service: the caller for client spans, the callee for server spans. */
  service: string
  version?: string
  instance?: string
  /** The other side of the hop: the callee (as routed) for client spans, the caller for server spans. */
  peerService?: string
  peerVersion?: string
  peerInstance?: string
  method: string
  path: string
  /** HTTP status; 0 when there was none (reset, connect failure). */
  status: number
  /** A gRPC call's grpc-status (a gRPC call answers HTTP 200 whatever happened). */
  grpcStatus?: number
  /** Wall-clock epoch milliseconds (float). */
  startMs: number
  durationMs: number
  /** Retry number; 1 is the first attempt. */
  attempt?: number
  /** Envoy response flags, e.g. 'UT' or 'URX,UF'. */
  responseFlags?: string
  /** Plain-English reason when the mesh answered itself. */
  cause?: string
  /** The hop's protocol and transport security (Istio's request_protocol, connection_security_policy, principals). */
  security?: HopSecurity
  fault?: string
  decision?: RoutingDecision
  /** The caller's SPIFFE ID when the mesh knows it (not for a call to a published address without mTLS). */
  peerPrincipal?: string
  /** What vouched for the caller: its listener (a sidecar of the mesh), its mTLS certificate, or a token. */
  peerAuthn?: 'listener' | 'mtls' | 'jwt'
  /** Request authentication's outcome: `valid` (a token `authnRule` accepted) or `none` (no token); absent where no jwtRule applies. */
  requestAuthn?: 'valid' | 'none'
  /** The valid token's `<iss>/<sub>`. */
  requestPrincipal?: string
  /** The issuer of the jwtRule that accepted the token. */
  authnRule?: string
  attributes?: Record<string, string | number | boolean>
  /** The activator held this hop while an instance cold-started: how long (ms), from the hold to the instance being ready. */
  coldStartMs?: number
}

/** `GET /items` for `GET /items?page=2`: the query stays out of span names. */
export function spanName(method: string, path: string): string {
  const q = path.indexOf('?')
  return `${method} ${q < 0 ? path : path.slice(0, q)}`
}

/** Success as Linkerd and Istio dashboards count it: any response below 500. */
export function isSuccessStatus(status: number): boolean {
  return status > 0 && status < 500
}

/**
 * Whether `mesh stat` counts a call (or an attempt) a success: its outcome's status — a gRPC
 * call's grpc-status mapped to HTTP (grpc.ts) — below 500. A 429 (RL, TH) is one, as every
 * 4xx: the caller's to handle, as Linkerd's and Istio's success rates count it. `mesh sim`
 * counts with this too, so the two rates are the same figure.
 */
export function isSuccessOutcome(o: {status: number; grpcStatus?: number}): boolean {
  return isSuccessStatus(outcomeStatus(o))
}

/**
 * A span failed when the callee answered 5xx (or a gRPC status counted as one: grpc.ts),
 * nothing answered, or the mesh says why it
 * failed: a mesh-made 4xx (NR no route, RL rate limited) or a body the mesh cut after a
 * 200 (UT: the overall timeout fired mid-body; a reset fault).
 */
export function isErrorSpan(span: Span): boolean {
  return !isSuccessOutcome(span) || span.cause !== undefined
}

export function spanEndMs(span: Span): number {
  return span.startMs + (Number.isFinite(span.durationMs) && span.durationMs > 0 ? span.durationMs : 0)
}
