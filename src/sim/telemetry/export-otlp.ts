// Spans → OTLP/JSON, as the OpenTelemetry protocol's JSON mapping specifies:
// resourceSpans (one per service/version/instance) → scopeSpans (scope "meshsim") → spans,
// ids as lowercase hex, kind and status.code as integers, times as decimal nanosecond strings.
// What `mesh traces --export otlp` writes and what the OTLP pusher POSTs to /v1/traces.
import {isErrorSpan, type Span, spanEndMs} from './span.js'

export type OtlpAnyValue =
  | {stringValue: string}
  | {intValue: string}
  | {doubleValue: number}
  | {boolValue: boolean}

export interface OtlpKeyValue {
  key: string
  value: OtlpAnyValue
}

export interface OtlpSpan {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  kind: number
  startTimeUnixNano: string
  endTimeUnixNano: string
  attributes: OtlpKeyValue[]
  /** Timed marks within the span (OTLP's Span.Event). */
  events?: Array<{timeUnixNano: string; name: string; attributes: OtlpKeyValue[]}>
  status: {code: number; message?: string}
}

export interface OtlpTracesRequest {
  resourceSpans: Array<{
    resource: {attributes: OtlpKeyValue[]}
    scopeSpans: Array<{scope: {name: string; version?: string}; spans: OtlpSpan[]}>
  }>
}

/** OTLP's SpanKind enum. */
export const OTLP_SPAN_KIND = {internal: 1, server: 2, client: 3} as const
/** OTLP's StatusCode enum. */
export const OTLP_STATUS = {unset: 0, ok: 1, error: 2} as const

export const SCOPE_NAME = 'meshsim'

/** Epoch milliseconds (float) → decimal nanoseconds, exactly (a double cannot hold ns since 1970). */
export function msToUnixNano(ms: number): string {
  if (!Number.isFinite(ms) || ms <= 0) return '0'
  const whole = Math.floor(ms)
  const frac = Math.round((ms - whole) * 1e6)
  return (BigInt(whole) * 1_000_000n + BigInt(frac)).toString()
}

function attr(key: string, value: string | number | boolean): OtlpKeyValue {
  if (typeof value === 'string') return {key, value: {stringValue: value}}
  if (typeof value === 'boolean') return {key, value: {boolValue: value}}
  // int64 is a decimal string in protobuf's JSON mapping.
  return Number.isInteger(value) ? {key, value: {intValue: String(value)}} : {key, value: {doubleValue: value}}
}

export function toOtlpSpan(span: Span): OtlpSpan {
  const a: OtlpKeyValue[] = [attr('http.request.method', span.method), attr('url.path', span.path)]
  if (span.status > 0) a.push(attr('http.response.status_code', span.status))
  // OpenTelemetry's gRPC convention.
  if (span.grpcStatus !== undefined) a.push(attr('rpc.system', 'grpc'), attr('rpc.grpc.status_code', span.grpcStatus))
  const server = span.kind === 'client' ? span.peerService : span.service
  if (server) a.push(attr('server.address', server))
  if (span.peerService) a.push(attr('mesh.peer.service', span.peerService))
  const error = isErrorSpan(span)
  if (error) a.push(attr('error.type', span.responseFlags ?? (span.status > 0 ? String(span.status) : 'no_response')))
  if (span.attempt !== undefined) a.push(attr('mesh.attempt', span.attempt))
  if (span.responseFlags) a.push(attr('mesh.response_flags', span.responseFlags))
  if (span.fault) a.push(attr('mesh.fault', span.fault))
  if (span.cause) a.push(attr('mesh.cause', span.cause))
  if (span.peerPrincipal) a.push(attr('mesh.peer.principal', span.peerPrincipal))
  if (span.peerAuthn) a.push(attr('mesh.peer.authn', span.peerAuthn))
  if (span.requestAuthn) a.push(attr('mesh.request.authn', span.requestAuthn))
  if (span.requestPrincipal) a.push(attr('mesh.request.principal', span.requestPrincipal))
  if (span.authnRule) a.push(attr('mesh.request.authn_rule', span.authnRule))
  if (span.coldStartMs !== undefined) a.push(attr('mesh.cold_start_ms', span.coldStartMs))
  const d = span.decision
  if (d) {
    a.push(attr('mesh.decision.candidates', (d.candidates ?? []).join(',')))
    if (d.chosen) a.push(attr('mesh.decision.chosen', d.chosen))
    if (d.version) a.push(attr('mesh.decision.version', d.version))
    if (d.routeMatched) a.push(attr('mesh.decision.route', d.routeMatched))
    if (d.attempts) a.push(attr('mesh.decision.attempts', d.attempts))
    if (d.ejected?.length) a.push(attr('mesh.decision.ejected', d.ejected!.join(',')))
    if (d.panic) a.push(attr('mesh.decision.panic', true))
    if (d.retryBudgetLeft !== undefined) a.push(attr('mesh.decision.retry_budget_left', d.retryBudgetLeft))
    if (d.timeoutFired) a.push(attr('mesh.decision.timeout_fired', d.timeoutFired))
    if (d.faults?.length) a.push(attr('mesh.decision.faults', d.faults.join(',')))
    if (d.authorization) a.push(attr('mesh.decision.authorization', d.authorization))
  }
  for (const [k, v] of Object.entries(span.attributes ?? {})) a.push(attr(k, v))
  const out: OtlpSpan = {
    traceId: span.traceId.toLowerCase(),
    spanId: span.spanId.toLowerCase(),
    name: span.name,
    kind: OTLP_SPAN_KIND[span.kind],
    startTimeUnixNano: msToUnixNano(span.startMs),
    endTimeUnixNano: msToUnixNano(spanEndMs(span)),
    attributes: a,
    status: error ? {code: OTLP_STATUS.error, ...(span.cause ? {message: span.cause} : {})} : {code: OTLP_STATUS.unset},
  }
  if (span.parentId) out.parentSpanId = span.parentId.toLowerCase()
  // Where the wait ended on the timeline: a trace UI shows the cold start as the part before it.
  if (span.coldStartMs !== undefined) out.events = [{timeUnixNano: msToUnixNano(span.startMs + span.coldStartMs), name: 'mesh.cold_start.ready', attributes: []}]
  return out
}

/** One resource per (service, version, instance), in first-seen order. */
export function toOtlp(spans: Span[]): OtlpTracesRequest {
  const resources = new Map<string, {attributes: OtlpKeyValue[]; spans: OtlpSpan[]}>()
  for (const span of spans) {
    const key = `${span.service}\u0001${span.version ?? ''}\u0001${span.instance ?? ''}`
    let r = resources.get(key)
    if (!r) {
      const attributes = [attr('service.name', span.service)]
      if (span.version) attributes.push(attr('service.version', span.version))
      if (span.instance) attributes.push(attr('service.instance.id', span.instance))
      r = {attributes, spans: []}
      resources.set(key, r)
    }
    r.spans.push(toOtlpSpan(span))
  }
  return {
    resourceSpans: [...resources.values()].map((r) => ({
      resource: {attributes: r.attributes},
      scopeSpans: [{scope: {name: SCOPE_NAME}, spans: r.spans}],
    })),
  }
}
