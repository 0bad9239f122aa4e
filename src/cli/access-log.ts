// `mesh logs --access`: the sidecars' JSON access-log records (.mesh/access/<instance>.log,
// written by the telemetry hub) as one compact line each, as `kubectl logs` of an
// Envoy sidecar would show them, minus the noise.
//
//   {"time":…,"side":"outbound","source":"front-v1-0","destination":"mid-v1-0",…}
//   12:00:00.123 out front-v1-0 → mid-v1-0  GET /work  200  12.3ms  -  4bf92f3577b3
import {Chalk, type ChalkInstance} from 'chalk'
import {SHORT_ID_LENGTH} from '../sim/telemetry/trace-list.js'
import {formatLatency} from '../sim/telemetry/waterfall.js'

/** One record as `Telemetry.writeAccessLog` writes it: a request line's fields, and which side saw it. */
export interface AccessRecord extends Omit<RequestLine, 'side' | 'note'> {
  side: 'outbound' | 'inbound'
  spanId?: string
  attempt?: number
}

/**
 * One line per record. A line that is not a record (a torn write, a future format)
 * is shown as it is rather than dropped: the user asked to see the log.
 */
export function renderAccessLines(lines: string[], colour: boolean): string[] {
  const c = new Chalk({level: colour ? 1 : 0})
  const out: string[] = []
  for (const line of lines) {
    if (line.trim() === '') continue
    const r = parseRecord(line)
    if (!r) {
      out.push(line)
      continue
    }
    out.push(requestLine({...r, side: r.side === 'inbound' ? 'in ' : 'out', note: r.attempt !== undefined && r.attempt > 1 ? `attempt ${r.attempt}` : undefined}, c))
  }
  return out
}

/** What a one-line request shows: an access-log record's, or a `mesh tap` event's. */
export interface RequestLine {
  time: string
  /** `in `/`out` for an access log; none for tap. */
  side?: string
  traceId?: string
  source: string
  destination: string
  method: string
  path: string
  status: number
  durationMs: number
  flags?: string
  cause?: string
  /** `attempt 2`, `3 tries`. */
  note?: string
}

/** `12:00:00.123 out front-v1-0 → mid-v1-0  GET /work  200  12.3ms  -  4bf92f3577b3` */
export function requestLine(r: RequestLine, c: ChalkInstance): string {
  const status = r.status > 0 ? String(r.status) : '---'
  const statusColour = r.status <= 0 || r.status >= 500 ? c.red : r.status >= 400 ? c.yellow : c.green
  const parts = [
    c.dim(clockTime(r.time)),
    ...(r.side ? [r.side] : []),
    `${r.source} → ${r.destination}`,
    `${r.method} ${r.path}`,
    statusColour(status),
    formatLatency(r.durationMs),
    r.flags && r.flags !== '-' ? c.magenta(r.flags) : c.dim('-'),
    c.dim(r.traceId ? r.traceId.slice(0, SHORT_ID_LENGTH) : '-'),
  ]
  if (r.note) parts.push(c.yellow(r.note))
  if (r.cause) parts.push(c.dim(`(${r.cause})`))
  return parts.join('  ')
}

function parseRecord(line: string): AccessRecord | undefined {
  let v: unknown
  try {
    v = JSON.parse(line)
  } catch {
    return undefined
  }
  if (typeof v !== 'object' || v === null) return undefined
  const r = v as Partial<AccessRecord>
  if (typeof r.source !== 'string' || typeof r.destination !== 'string' || typeof r.method !== 'string') return undefined
  return {
    time: typeof r.time === 'string' ? r.time : '',
    side: r.side === 'inbound' ? 'inbound' : 'outbound',
    traceId: typeof r.traceId === 'string' ? r.traceId : undefined,
    source: r.source,
    destination: r.destination,
    method: r.method,
    path: typeof r.path === 'string' ? r.path : '?',
    status: typeof r.status === 'number' ? r.status : 0,
    durationMs: typeof r.durationMs === 'number' ? r.durationMs : 0,
    attempt: typeof r.attempt === 'number' ? r.attempt : undefined,
    flags: typeof r.flags === 'string' ? r.flags : undefined,
    cause: typeof r.cause === 'string' ? r.cause : undefined,
  }
}

/** Local wall-clock time with milliseconds; the date is noise in a live log. */
function clockTime(iso: string): string {
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return '??:??:??.???'
  const pad = (n: number, w = 2) => String(n).padStart(w, '0')
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`
}
