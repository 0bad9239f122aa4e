// Spans → Zipkin v2 JSON (what `mesh traces --export zipkin` writes and Zipkin's
// POST /api/v2/spans accepts): times in integer microseconds, tags all strings.
import {isErrorSpan, type Span} from './span.js'

export interface ZipkinSpan {
  traceId: string
  id: string
  parentId?: string
  name: string
  kind: 'CLIENT' | 'SERVER'
  timestamp: number
  duration: number
  localEndpoint: {serviceName: string}
  remoteEndpoint?: {serviceName: string}
  /** Timed marks (µs) on the span's timeline. */
  annotations?: Array<{timestamp: number; value: string}>
  tags: Record<string, string>
}

export function toZipkinSpan(span: Span): ZipkinSpan {
  const tags: Record<string, string> = {
    'http.method': span.method,
    'http.path': span.path,
  }
  if (span.status > 0) tags['http.status_code'] = String(span.status)
  if (span.grpcStatus !== undefined) tags['grpc.status_code'] = String(span.grpcStatus)
  if (span.version) tags['mesh.version'] = span.version
  if (span.instance) tags['mesh.instance'] = span.instance
  if (span.attempt !== undefined) tags['mesh.attempt'] = String(span.attempt)
  if (span.responseFlags) tags['mesh.response_flags'] = span.responseFlags
  if (span.fault) tags['mesh.fault'] = span.fault
  if (span.cause) tags['mesh.cause'] = span.cause
  if (span.peerPrincipal) tags['mesh.peer.principal'] = span.peerPrincipal
  if (span.peerAuthn) tags['mesh.peer.authn'] = span.peerAuthn
  if (span.requestAuthn) tags['mesh.request.authn'] = span.requestAuthn
  if (span.requestPrincipal) tags['mesh.request.principal'] = span.requestPrincipal
  if (span.authnRule) tags['mesh.request.authn_rule'] = span.authnRule
  if (span.coldStartMs !== undefined) tags['mesh.cold_start_ms'] = String(span.coldStartMs)
  const d = span.decision
  if (d) {
    tags['mesh.decision.candidates'] = (d.candidates ?? []).join(',')
    if (d.chosen) tags['mesh.decision.chosen'] = d.chosen
    if (d.version) tags['mesh.decision.version'] = d.version
    if (d.routeMatched) tags['mesh.decision.route'] = d.routeMatched
    if (d.attempts) tags['mesh.decision.attempts'] = String(d.attempts)
    if (d.ejected?.length) tags['mesh.decision.ejected'] = d.ejected!.join(',')
    if (d.retryBudgetLeft !== undefined) tags['mesh.decision.retry_budget_left'] = String(d.retryBudgetLeft)
    if (d.timeoutFired) tags['mesh.decision.timeout_fired'] = d.timeoutFired
    if (d.authorization) tags['mesh.decision.authorization'] = d.authorization
    if (d.faults?.length) tags['mesh.decision.faults'] = d.faults.join(',')
  }
  for (const [k, v] of Object.entries(span.attributes ?? {})) tags[k] = String(v)
  // Zipkin's UI marks a span failed when it has an `error` tag; its value is the message.
  if (isErrorSpan(span)) tags.error = span.cause ?? (span.status > 0 ? String(span.status) : 'no response')
  const out: ZipkinSpan = {
    traceId: span.traceId.toLowerCase(),
    id: span.spanId.toLowerCase(),
    name: span.name.toLowerCase(),
    kind: span.kind === 'client' ? 'CLIENT' : 'SERVER',
    timestamp: Math.max(1, Math.round(span.startMs * 1000)),
    // Zipkin treats 0 as "unknown"; a hop that took under a microsecond still took one.
    duration: Math.max(1, Math.round((span.durationMs > 0 ? span.durationMs : 0) * 1000)),
    localEndpoint: {serviceName: span.service},
    tags,
  }
  if (span.parentId) out.parentId = span.parentId.toLowerCase()
  if (span.peerService) out.remoteEndpoint = {serviceName: span.peerService}
  // Zipkin's UI draws annotations on the span: the cold start is what lies before this one.
  if (span.coldStartMs !== undefined) out.annotations = [{timestamp: Math.round((span.startMs + span.coldStartMs) * 1000), value: 'mesh.cold_start.ready'}]
  return out
}

export function toZipkin(spans: Span[]): ZipkinSpan[] {
  return spans.map(toZipkinSpan)
}
