// The daemon's memory of recent traces: spans grouped by trace id, bounded by span
// count and by approximate bytes. When over either bound, whole traces leave oldest
// first (by when their first span arrived), so a kept trace is never half a trace.
//
//   data plane ──add(span)──▶ TraceStore ──list(query)──▶ `mesh traces`
//                                        └──get(id)─────▶ `mesh trace ID`
import {isErrorSpan, type Span, spanEndMs} from './span.js'

export interface TraceStoreOptions {
  /** Total spans kept across all traces. */
  maxSpans?: number
  /** Approximate bytes kept across all traces (estimated from string lengths). */
  maxBytes?: number
  /** A runaway trace (a retry storm, a loop) stops growing here; later spans are dropped and counted. */
  maxSpansPerTrace?: number
}

export interface TraceQuery {
  /** Traces that touched this service (any span's own service). */
  service?: string
  /** Traces whose root failed or that contain any failed span. */
  errorsOnly?: boolean
  minDurationMs?: number
  /** Traces that started at or after this wall-clock time (epoch ms). */
  sinceMs?: number
  /** Only traces whose request is over (TraceSummary.complete): what `mesh top` shows. */
  completeOnly?: boolean
  limit?: number
}

/**
 * A `since` scan goes newest first and stops at a trace that arrived this long before
 * `since`: every span is recorded as it ends, so arrival follows the wall clock, give
 * or take a clock step.
 */
const SINCE_SLACK_MS = 60_000

export interface TraceSummary {
  traceId: string
  root: {service: string; method: string; path: string}
  /** The service the request entered the mesh at: the one the ingress called, else the root span's own. */
  entry: string
  /**
   * The request is over: the span where it entered the mesh has ended (isEntrySpan). Until
   * then the trace holds only the calls that ended so far, and says nothing yet of how
   * the request went: status is 0 and error false.
   */
  complete: boolean
  startMs: number
  durationMs: number
  spanCount: number
  /** Every service the trace touched, in order of first appearance by start time. */
  services: string[]
  /** The entry span's status (as the request's first caller saw it); 0 while in flight. */
  status: number
  /** That span's gRPC status, for a gRPC call. */
  grpcStatus?: number
  /** The request failed as its first caller saw it. */
  error: boolean
  /** Failed spans anywhere in the trace (a retried-and-recovered call counts here). */
  errorSpans: number
}

export interface TraceStoreStats {
  traces: number
  spans: number
  bytes: number
  evictedTraces: number
  droppedSpans: number
}

interface Entry {
  spans: Span[]
  /** When the first span arrived: it is recorded as it ends. */
  arrivedMs: number
  bytes: number
  summary?: TraceSummary
}

const DEFAULTS = {maxSpans: 50_000, maxBytes: 32 * 1024 * 1024, maxSpansPerTrace: 2_000}
// A span object's fixed cost in V8 (header, ~20 slots, two numbers) before its strings.
const SPAN_OVERHEAD_BYTES = 200

export class TraceStore {
  private readonly traces = new Map<string, Entry>()
  /**
   * Trace ids oldest first, consumed from `head`. Not `traces.keys().next()`: a V8 Map
   * used as a FIFO keeps deleted slots at its front until it rehashes, so finding the
   * first key after many evictions walks them all (it cost ~30 µs per span).
   */
  private order: string[] = []
  private head = 0
  private readonly maxSpans: number
  private readonly maxBytes: number
  private readonly maxSpansPerTrace: number
  private spanCount = 0
  private byteCount = 0
  private evicted = 0
  private dropped = 0

  constructor(options: TraceStoreOptions = {}) {
    this.maxSpans = Math.max(1, options.maxSpans ?? DEFAULTS.maxSpans)
    this.maxBytes = Math.max(1, options.maxBytes ?? DEFAULTS.maxBytes)
    this.maxSpansPerTrace = Math.max(1, options.maxSpansPerTrace ?? DEFAULTS.maxSpansPerTrace)
  }

  add(span: Span): void {
    let entry = this.traces.get(span.traceId)
    if (!entry) {
      entry = {spans: [], arrivedMs: spanEndMs(span), bytes: 0}
      this.traces.set(span.traceId, entry)
      this.order.push(span.traceId)
    }
    // The same span reported twice (a replayed export, a test) is kept once. A scan, not
    // a Set per trace: traces are a handful of spans, and this runs twice per mesh call.
    const spans = entry.spans
    for (let i = 0; i < spans.length; i++) if (spans[i].spanId === span.spanId && spans[i].kind === span.kind) return
    // The entry span still gets in: without it the trace would look in flight for ever.
    if (spans.length >= this.maxSpansPerTrace && !isEntrySpan(span)) {
      this.dropped++
      return
    }
    const bytes = estimateBytes(span)
    spans.push(span)
    entry.bytes += bytes
    entry.summary = undefined
    this.spanCount++
    this.byteCount += bytes
    this.evict(span.traceId)
  }

  /** The trace's spans in arrival order; empty when unknown or evicted. */
  get(traceId: string): Span[] {
    return this.traces.get(traceId.toLowerCase())?.spans.slice() ?? []
  }

  has(traceId: string): boolean {
    return this.traces.has(traceId.toLowerCase())
  }

  /** Trace ids that start with `prefix` (so users can type the short id `mesh traces` shows). */
  findByPrefix(prefix: string): string[] {
    const p = prefix.toLowerCase()
    const out: string[] = []
    for (const id of this.traces.keys()) if (id.startsWith(p)) out.push(id)
    return out
  }

  /** Failed first, then slowest first. */
  list(query: TraceQuery = {}): TraceSummary[] {
    const out: TraceSummary[] = []
    const keep = (traceId: string, entry: Entry): TraceSummary | undefined => {
      const s = (entry.summary ??= summarise(traceId, entry.spans))
      if (query.service !== undefined && !s.services.includes(query.service)) return undefined
      if (query.errorsOnly && !s.error && s.errorSpans === 0) return undefined
      if (query.minDurationMs !== undefined && s.durationMs < query.minDurationMs) return undefined
      if (query.sinceMs !== undefined && s.startMs < query.sinceMs) return undefined
      if (query.completeOnly && !s.complete) return undefined
      return s
    }
    if (query.sinceMs !== undefined) {
      // Newest first, so a `since` query (mesh top, every second) reads only recent traces.
      // An id can stand twice in the order (a late span re-created an evicted trace).
      const seen = new Set<string>()
      for (let i = this.order.length - 1; i >= this.head; i--) {
        const traceId = this.order[i]
        const entry = this.traces.get(traceId)
        if (!entry || seen.has(traceId)) continue
        if (entry.arrivedMs < query.sinceMs - SINCE_SLACK_MS) break
        seen.add(traceId)
        const s = keep(traceId, entry)
        if (s) out.push(s)
      }
    } else {
      for (const [traceId, entry] of this.traces) {
        const s = keep(traceId, entry)
        if (s) out.push(s)
      }
    }
    out.sort(
      (a, b) =>
        Number(b.error) - Number(a.error) ||
        Number(b.errorSpans > 0) - Number(a.errorSpans > 0) ||
        b.durationMs - a.durationMs ||
        b.startMs - a.startMs,
    )
    return query.limit !== undefined ? out.slice(0, Math.max(0, query.limit)) : out
  }

  stats(): TraceStoreStats {
    return {
      traces: this.traces.size,
      spans: this.spanCount,
      bytes: this.byteCount,
      evictedTraces: this.evicted,
      droppedSpans: this.dropped,
    }
  }

  clear(): void {
    this.traces.clear()
    this.order = []
    this.head = 0
    this.spanCount = 0
    this.byteCount = 0
  }

  private evict(keep: string): void {
    while (this.spanCount > this.maxSpans || this.byteCount > this.maxBytes) {
      const id = this.oldestExcept(keep)
      // The trace being written is the only one left and alone exceeds a bound: keep it.
      if (id === undefined) return
      const entry = this.traces.get(id)!
      this.traces.delete(id)
      this.spanCount -= entry.spans.length
      this.byteCount -= entry.bytes
      this.evicted++
    }
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head)
      this.head = 0
    }
  }

  /** The oldest stored trace other than `keep`; ids already gone are skipped (and dropped at the head). */
  private oldestExcept(keep: string): string | undefined {
    while (this.head < this.order.length && !this.traces.has(this.order[this.head])) this.head++
    for (let i = this.head; i < this.order.length; i++) {
      const id = this.order[i]
      if (id !== keep && this.traces.has(id)) return id
    }
    return undefined
  }
}

function estimateBytes(span: Span): number {
  let n = SPAN_OVERHEAD_BYTES + span.traceId.length + span.spanId.length + (span.parentId?.length ?? 0)
  n += span.name.length + span.service.length + span.method.length + span.path.length
  n += (span.version?.length ?? 0) + (span.instance?.length ?? 0) + (span.peerService?.length ?? 0)
  n += (span.peerVersion?.length ?? 0) + (span.peerInstance?.length ?? 0)
  n += (span.responseFlags?.length ?? 0) + (span.cause?.length ?? 0) + (span.fault?.length ?? 0)
  n += (span.peerPrincipal?.length ?? 0) + (span.requestPrincipal?.length ?? 0) + (span.authnRule?.length ?? 0)
  const d = span.decision
  if (d) {
    n += 64
    for (const c of d.candidates ?? []) n += c.length + 8
    for (const e of d.ejected ?? []) n += e.length + 8
    for (const f of d.faults ?? []) n += f.length + 8
    n += (d.chosen?.length ?? 0) + (d.authorization?.length ?? 0)
  }
  if (span.attributes) {
    for (const k in span.attributes) n += k.length + String(span.attributes[k]).length + 16
  }
  return n
}

/**
 * The span the mesh recorded where a request entered it: one with no parent, the ingress's
 * call (whose parent may be an outside client's span), or an outside call to an instance's
 * published address (its caller is `unknown`). Spans are recorded as they end and this one
 * encloses every other, so once it is in the store the request is over.
 */
export function isEntrySpan(s: Span): boolean {
  return !s.parentId || (s.kind === 'client' && s.service === INGRESS) || (s.kind === 'server' && s.peerService === 'unknown')
}

/** The name spans give the ingress (data-plane.ts's caller for its listener). */
const INGRESS = 'ingress'

/** The root is the span with no parent (the earliest if several), else the earliest orphan. */
export function findRoot(spans: Span[]): Span | undefined {
  const ids = new Set<string>()
  for (const s of spans) ids.add(s.spanId)
  let root: Span | undefined
  let rootHasNoParent = false
  for (const s of spans) {
    const noParent = !s.parentId
    const orphan = noParent || !ids.has(s.parentId!)
    if (!orphan) continue
    if (
      !root ||
      (noParent && !rootHasNoParent) ||
      (noParent === rootHasNoParent && s.startMs < root.startMs)
    ) {
      root = s
      rootHasNoParent = noParent
    }
  }
  return root ?? spans[0]
}

/** How many parents above each span are in the trace (a missing parent ends the count; a cycle cannot loop). */
function depthsOf(spans: Span[]): Map<Span, number> {
  const byId = new Map<string, Span>()
  for (const s of spans) byId.set(s.spanId, s)
  const out = new Map<Span, number>()
  for (const s of spans) {
    let d = 0
    for (let p = s.parentId ? byId.get(s.parentId) : undefined; p && d < spans.length; p = p.parentId ? byId.get(p.parentId) : undefined) d++
    out.set(s, d)
  }
  return out
}

export function summarise(traceId: string, spans: Span[]): TraceSummary {
  const root = findRoot(spans)
  let start = Infinity
  let end = -Infinity
  let errorSpans = 0
  // Each service's first span, by start and then by depth in the call tree: a caller's
  // client span and its callee's server span start at the same clock reading, and the
  // caller must still come first (ingress→frontend, not frontend→ingress).
  const first = new Map<string, {startMs: number; depth: number}>()
  const depth = depthsOf(spans)
  for (const s of spans) {
    if (s.startMs < start) start = s.startMs
    const e = spanEndMs(s)
    if (e > end) end = e
    const seen = first.get(s.service)
    const d = depth.get(s) ?? 0
    if (seen === undefined || s.startMs < seen.startMs || (s.startMs === seen.startMs && d < seen.depth)) {
      first.set(s.service, {startMs: s.startMs, depth: d})
    }
    if (isErrorSpan(s)) errorSpans++
  }
  const services = [...first.keys()].sort((a, b) => {
    const x = first.get(a)!
    const y = first.get(b)!
    return x.startMs - y.startMs || x.depth - y.depth
  })
  // The earliest entry span, when there are several (an outside client's retries).
  let entry: Span | undefined
  for (const s of spans) if (isEntrySpan(s) && (!entry || s.startMs < entry.startMs)) entry = s
  const head = entry ?? root
  return {
    traceId,
    root: {service: head?.service ?? '?', method: head?.method ?? '?', path: head?.path ?? '?'},
    // A request the ingress had no route for entered nowhere further than the ingress.
    entry: head?.service === INGRESS && head.peerService && head.peerService !== 'unknown' ? head.peerService : (head?.service ?? '?'),
    complete: entry !== undefined,
    startMs: Number.isFinite(start) ? start : 0,
    durationMs: Number.isFinite(end) && Number.isFinite(start) ? Math.max(0, end - start) : 0,
    spanCount: spans.length,
    services,
    status: entry?.status ?? 0,
    grpcStatus: entry?.grpcStatus,
    error: entry ? isErrorSpan(entry) : false,
    errorSpans,
  }
}
