// The control API's reads of telemetry that need more than a lookup: `mesh tap`'s stream
// (its filter's names checked against the mesh), `mesh traces`' query string and spans,
// `mesh trace`'s id or prefix, and the connections `mesh status` shows.
import {MeshError, serviceNotFound} from '../errors.js'
import type {Span} from '../telemetry/span.js'
import {Tap, type TapFilter, type TapLine} from '../telemetry/tap.js'
import type {Telemetry} from '../telemetry/telemetry.js'
import type {TcpTotals} from '../telemetry/tcp-metrics.js'
import type {ServiceConfig} from '../config/types.js'
import type {TraceQuery, TraceStore} from '../telemetry/trace-store.js'
import type {Clock} from '../time/clock.js'
import type {QueryOf, StreamQueryOf} from './api.js'

export interface TapParts {
  clock: Clock
  telemetry: Telemetry
  /** The mesh's services now: a filter naming another is a typo. */
  services: string[]
}

/** `mesh tap`: checks the filter's names, then streams the requests it selects until the client leaves. */
/** The most lines a second one tap sends, whatever it asks for. */
export const MAX_TAP_RPS = 10_000

export function tap(q: StreamQueryOf<'/v1/tap'>, {clock, telemetry, services}: TapParts): (send: (line: TapLine) => void, keepingUp?: () => boolean) => () => void {
  const name = (key: 'service' | 'from' | 'to', callers: string[] = []) => {
    const v = q[key]
    if (v !== undefined && !services.includes(v) && !callers.includes(v)) throw serviceNotFound(v, [...services, ...callers])
    return v
  }
  const filter: TapFilter = {
    service: name('service', ['ingress']),
    from: name('from', ['ingress', 'unknown']),
    to: name('to'),
    path: q.path,
    method: q.method?.toUpperCase(),
    errors: q.errors === '1',
  }
  const asked = Number(q.maxRps ?? 100)
  // Bounded: every line is JSON written to the client, and the daemon serves the data plane too.
  const maxRps = asked > 0 ? Math.min(asked, MAX_TAP_RPS) : 100
  return (send, keepingUp) => {
    const tap = new Tap(filter, maxRps, clock, send, keepingUp)
    telemetry.taps.add(tap.onSpan)
    return () => {
      telemetry.taps.delete(tap.onSpan)
      tap.close()
    }
  }
}

/** One trace's spans, by full id or a unique prefix (as `mesh traces` prints them). */
export function findTrace(traces: TraceStore, id: string): Span[] {
  const ids = traces.has(id) ? [id] : traces.findByPrefix(id)
  if (ids.length === 0) {
    throw new MeshError('MESH_TRACE_NOT_FOUND', `no trace ${id} in the store.`, {
      hints: ['List recent traces with `mesh traces`; the store keeps the newest ones only.'],
    })
  }
  if (ids.length > 1) throw new MeshError('MESH_TRACE_AMBIGUOUS', `${ids.length} traces start with ${id}.`, {hints: ['Give more of the id.']})
  return traces.get(ids[0])
}

export function traceQuery(p: QueryOf<'GET /v1/traces'>): TraceQuery {
  return {
    service: p.service,
    errorsOnly: p.errors === '1',
    minDurationMs: p.minDurationMs !== undefined ? Number(p.minDurationMs) : undefined,
    sinceMs: p.since !== undefined ? Number(p.since) : undefined,
    completeOnly: p.complete === '1',
    limit: p.limit !== undefined ? Number(p.limit) : undefined,
  }
}

/** `mesh traces --export`: every span of the traces the query selects. */
export function spansOf(traces: TraceStore, q: QueryOf<'GET /v1/spans'>): Span[] {
  return traces.list(traceQuery(q)).flatMap((t) => traces.get(t.traceId))
}

/** What `mesh status` shows of connections: a TCP service's, or an HTTP service's WebSocket sessions once it had one. */
export function tcpShown(telemetry: Telemetry, s: Pick<ServiceConfig, 'name' | 'protocol'>): TcpTotals | undefined {
  const totals = telemetry.tcp.ofService(s.name)
  return s.protocol === 'tcp' || totals.opened > 0 ? totals : undefined
}
