// Golden metrics: requests, success rate and latency percentiles per service,
// version, instance and edge, over a sliding window, plus Istio-style cumulative
// series for Prometheus that never reset.
//
//   data plane ──observe(o, now)──▶ one fine series per (reporter, source, destination, versions, instance)
//                                   └─ 1-second slots: counts + sparse log-linear histogram
//   `mesh stat` ──stat({windowMs, by}, now)──▶ merge the slots in the window, grouped by `by`
//   /metrics    ──promSeries()──▶ cumulative counters and Istio-bucket histograms
//               ──coldStartSeries()──▶ cold starts per destination service/version (only calls the activator held)
//
// Observing usually finds its two series among the few used last (compared field by
// field: no key string, no map lookup); grouping and percentiles are computed only
// when someone asks.
import {LatencyHistogram} from './histogram.js'
import {isSuccessOutcome} from './span.js'

export type Reporter = 'source' | 'destination'

/**
 * One request as one side saw it. The caller's sidecar reports `source` once per
 * call with the final outcome (after retries); the callee's sidecar reports
 * `destination` once per attempt that reached it.
 */
export interface Observation {
  source: string
  sourceVersion?: string
  destination: string
  destinationVersion?: string
  destinationInstance?: string
  status: number
  /** A gRPC call's grpc-status. */
  grpcStatus?: number
  durationMs: number
  responseFlags?: string
  reporter: Reporter
  attempt?: number
  requestBytes?: number
  responseBytes?: number
  /** Istio's request_protocol; http when absent. */
  protocol?: 'http' | 'grpc'
  /** A socket of the hop carried mutual TLS (connection_security_policy mutual_tls). */
  mtls?: boolean
  /** SPIFFE IDs proven on the hop, when it was mutual TLS. */
  sourcePrincipal?: string
  destinationPrincipal?: string
  /** The activator held the call while an instance cold-started: how long (ms). Source side, once per call. */
  coldStartMs?: number
}

export type StatBy = 'service' | 'version' | 'instance' | 'edge'

export interface StatQuery {
  windowMs: number
  by: StatBy
}

export interface StatRow {
  /** Destination service (every `by` except `edge`, where it is `destination`). */
  service?: string
  version?: string
  instance?: string
  source?: string
  destination?: string
  /** Calls as callers saw them (source-reported); attempts when nothing reported as source. */
  requests: number
  rps: number
  /** Effective: what callers saw, after retries (source-reported final outcomes). */
  successRate: number
  /** Attempts that reached the destination (destination-reported). */
  actualRequests: number
  /** Actual: every attempt, as the destination saw it. */
  actualSuccessRate: number
  /** Latency percentiles (ms) of the same reports `requests` counts. */
  p50: number
  p95: number
  p99: number
  /** Calls (source-reported) in the window that waited for an instance to cold-start. */
  coldStarts?: number
  /**
   * Of the calls at or above p99 (the slowest 1 %, at the histogram's 0.8 % resolution),
   * the fraction that waited for a cold start: 0..1, 0 with none.
   */
  coldStartShareOfP99?: number
}

/** Istio's default `istio_request_duration_milliseconds` buckets. */
export const ISTIO_DURATION_BUCKETS_MS = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000,
] as const
/** Istio's default `istio_request_bytes` / `istio_response_bytes` buckets (exponential, 1 × 10^n). */
export const ISTIO_BYTES_BUCKETS = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000] as const

export interface PromLabels {
  reporter: Reporter
  source_workload: string
  source_version: string
  /** The caller's SPIFFE ID when the hop was mutual TLS, else `unknown` (as Istio labels it). */
  source_principal: string
  destination_workload: string
  destination_service: string
  destination_version: string
  destination_principal: string
  /** `mutual_tls` or `none`. */
  connection_security_policy: string
  /** `http` or `grpc` (`protocol: tcp` connections are counted by the istio_tcp_* series). */
  request_protocol: string
  response_code: string
  /** A gRPC call's status code as Istio labels it; empty for plain HTTP. */
  grpc_response_status: string
  response_flags: string
}

export interface PromHistogram {
  /** Per-bucket counts, NOT cumulative; one more than the bounds (the last is +Inf only). */
  buckets: number[]
  sum: number
  count: number
}

export interface PromSeries {
  labels: PromLabels
  /** `response_code` as a number (0 when no response came back). */
  status: number
  grpcStatus?: number
  requests: number
  duration: PromHistogram
  requestBytes?: PromHistogram
  responseBytes?: PromHistogram
}

/** `mesh_cold_starts_total` and `mesh_cold_start_duration_milliseconds` of one destination service/version. */
export interface ColdStartSeries {
  destination: string
  /** `unknown` when the caller's report had none, as Istio labels it. */
  destinationVersion: string
  count: number
  /** The cold starts' own time (from the hold to the instance being ready), in Istio's duration buckets. */
  duration: PromHistogram
}

export interface MetricsOptions {
  /** The longest window `stat` can be asked for; older slots are dropped. */
  retentionMs?: number
}

interface Slot {
  second: number
  requests: number
  successes: number
  latency: LatencyHistogram
  /** Calls that waited for a cold start, and their whole latencies (set only when there was one). */
  coldStarts: number
  coldLatency: LatencyHistogram | undefined
}

interface Series {
  reporter: Reporter
  source: string
  sourceVersion: string
  destination: string
  destinationVersion: string
  destinationInstance: string
  slots: Slot[]
}

interface Group {
  row: Pick<StatRow, 'service' | 'version' | 'instance' | 'source' | 'destination'>
  effRequests: number
  effSuccesses: number
  effLatency: LatencyHistogram
  actRequests: number
  actSuccesses: number
  actLatency: LatencyHistogram
  coldStarts: number
  coldLatency: LatencyHistogram | undefined
}

const SLOT_MS = 1000
const SEP = '\u0001'
/** Series compared field by field before a key is built: a mesh has a few busy edges at a time. */
const RECENT = 8

/** Keeps `item` among the last RECENT used (newest last). */
function remember<T>(recent: T[], item: T): void {
  if (recent.length >= RECENT) recent.shift()
  recent.push(item)
}

export class MetricsRecorder {
  private readonly series = new Map<string, Series>()
  private readonly cumulative = new Map<string, PromSeries>()
  private readonly recentSeries: Series[] = []
  private readonly recentCumulative: PromSeries[] = []
  private readonly coldStarts = new Map<string, ColdStartSeries>()
  private readonly retentionMs: number
  private firstObservedMs: number | undefined
  private lastSweepSecond = -Infinity

  constructor(options: MetricsOptions = {}) {
    this.retentionMs = options.retentionMs ?? 15 * 60_000
  }

  /** `o` is read, never kept: a caller may refill one object for every observation. */
  observe(o: Observation, nowMs: number): void {
    this.firstObservedMs ??= nowMs
    this.recordWindow(o, nowMs)
    this.recordCumulative(o)
    if (o.coldStartMs !== undefined) this.recordColdStart(o)
  }

  /** Rows for every group seen in the window, busiest first. */
  stat(query: StatQuery, nowMs: number): StatRow[] {
    this.sweep(nowMs)
    const windowMs = Math.max(SLOT_MS, query.windowMs)
    // A slot counts when any part of it overlaps (now - window, now]: the window is
    // rounded out to whole seconds, which is as fine as `mesh stat` needs.
    const fromSecond = Math.floor((nowMs - windowMs) / SLOT_MS)
    const groups = new Map<string, Group>()
    for (const s of this.series.values()) {
      let g: Group | undefined
      for (let i = s.slots.length - 1; i >= 0; i--) {
        const slot = s.slots[i]
        if (slot.second < fromSecond) break
        if (slot.second * SLOT_MS > nowMs) continue
        g ??= this.group(groups, s, query.by)
        if (s.reporter === 'source') {
          g.effRequests += slot.requests
          g.effSuccesses += slot.successes
          g.effLatency.merge(slot.latency)
          if (slot.coldLatency) {
            g.coldStarts += slot.coldStarts
            ;(g.coldLatency ??= new LatencyHistogram()).merge(slot.coldLatency)
          }
        } else {
          g.actRequests += slot.requests
          g.actSuccesses += slot.successes
          g.actLatency.merge(slot.latency)
        }
      }
    }
    const elapsed = this.firstObservedMs === undefined ? windowMs : nowMs - this.firstObservedMs
    const seconds = Math.max(SLOT_MS, Math.min(windowMs, elapsed)) / 1000
    const rows: StatRow[] = []
    for (const g of groups.values()) {
      const effective = g.effRequests > 0
      const requests = effective ? g.effRequests : g.actRequests
      const latency = effective ? g.effLatency : g.actLatency
      const [p50, p95, p99] = latency.percentiles([0.5, 0.95, 0.99])
      // Only callers report cold starts: a group seen by destinations alone has none to show.
      const coldTail = effective && g.coldLatency ? g.coldLatency.countAtOrAbove(p99) : 0
      const actualSuccessRate = g.actRequests > 0 ? g.actSuccesses / g.actRequests : effective ? g.effSuccesses / g.effRequests : 0
      rows.push({
        ...g.row,
        requests,
        rps: requests / seconds,
        successRate: effective ? g.effSuccesses / g.effRequests : actualSuccessRate,
        actualRequests: g.actRequests,
        actualSuccessRate,
        p50,
        p95,
        p99,
        coldStarts: effective ? g.coldStarts : 0,
        coldStartShareOfP99: coldTail > 0 ? coldTail / latency.countAtOrAbove(p99) : 0,
      })
    }
    rows.sort((a, b) => b.requests - a.requests || keyOf(a).localeCompare(keyOf(b)))
    return rows
  }

  /** Cumulative series for Prometheus, in first-seen order. */
  promSeries(): PromSeries[] {
    return [...this.cumulative.values()]
  }

  /** Cold starts per destination service/version since the mesh started, in first-seen order. */
  coldStartSeries(): ColdStartSeries[] {
    return [...this.coldStarts.values()]
  }

  private recordWindow(o: Observation, nowMs: number): void {
    const s = this.recentSeriesFor(o) ?? this.seriesFor(o)
    const second = Math.floor(nowMs / SLOT_MS)
    let slot = s.slots[s.slots.length - 1]
    if (!slot || slot.second < second) {
      slot = {second, requests: 0, successes: 0, latency: new LatencyHistogram(), coldStarts: 0, coldLatency: undefined}
      s.slots.push(slot)
      this.prune(s, second)
    } else if (slot.second > second) {
      // A late report (clock moved back): file it in its own second when still kept.
      slot = s.slots.find((x) => x.second === second) ?? slot
    }
    slot.requests++
    if (isSuccessOutcome(o)) slot.successes++
    slot.latency.record(o.durationMs)
    if (o.coldStartMs !== undefined) {
      slot.coldStarts++
      ;(slot.coldLatency ??= new LatencyHistogram()).record(o.durationMs)
    }
  }

  /** A cold start is rare (one per instance started from a hold): a keyed lookup is cheap enough. */
  private recordColdStart(o: Observation): void {
    const version = o.destinationVersion ?? 'unknown'
    const key = o.destination + SEP + version
    let c = this.coldStarts.get(key)
    if (!c) {
      c = {destination: o.destination, destinationVersion: version, count: 0, duration: emptyHistogram(ISTIO_DURATION_BUCKETS_MS.length)}
      this.coldStarts.set(key, c)
    }
    c.count++
    observeInto(c.duration, ISTIO_DURATION_BUCKETS_MS, o.coldStartMs! > 0 ? o.coldStartMs! : 0)
  }

  private recentSeriesFor(o: Observation): Series | undefined {
    const sourceVersion = o.sourceVersion ?? ''
    const destinationVersion = o.destinationVersion ?? ''
    const destinationInstance = o.destinationInstance ?? ''
    for (const s of this.recentSeries) {
      if (
        s.reporter === o.reporter && s.source === o.source && s.destination === o.destination && s.sourceVersion === sourceVersion &&
        s.destinationVersion === destinationVersion && s.destinationInstance === destinationInstance
      ) {
        return s
      }
    }
    return undefined
  }

  private seriesFor(o: Observation): Series {
    const key =
      o.reporter + SEP + o.source + SEP + (o.sourceVersion ?? '') + SEP + o.destination + SEP +
      (o.destinationVersion ?? '') + SEP + (o.destinationInstance ?? '')
    let s = this.series.get(key)
    if (!s) {
      s = {
        reporter: o.reporter,
        source: o.source,
        sourceVersion: o.sourceVersion ?? '',
        destination: o.destination,
        destinationVersion: o.destinationVersion ?? '',
        destinationInstance: o.destinationInstance ?? '',
        slots: [],
      }
      this.series.set(key, s)
    }
    remember(this.recentSeries, s)
    return s
  }

  private recordCumulative(o: Observation): void {
    const p = this.recentCumulativeFor(o) ?? this.cumulativeFor(o)
    p.requests++
    observeInto(p.duration, ISTIO_DURATION_BUCKETS_MS, o.durationMs > 0 ? o.durationMs : 0)
    if (o.requestBytes !== undefined) {
      observeInto((p.requestBytes ??= emptyHistogram(ISTIO_BYTES_BUCKETS.length)), ISTIO_BYTES_BUCKETS, o.requestBytes)
    }
    if (o.responseBytes !== undefined) {
      observeInto((p.responseBytes ??= emptyHistogram(ISTIO_BYTES_BUCKETS.length)), ISTIO_BYTES_BUCKETS, o.responseBytes)
    }
  }

  private recentCumulativeFor(o: Observation): PromSeries | undefined {
    const sourceVersion = o.sourceVersion ?? 'unknown'
    const destinationVersion = o.destinationVersion ?? 'unknown'
    const flags = o.responseFlags || '-'
    const protocol = o.protocol ?? 'http'
    const security = o.mtls ? 'mutual_tls' : 'none'
    const sourcePrincipal = (o.mtls && o.sourcePrincipal) || 'unknown'
    const destinationPrincipal = (o.mtls && o.destinationPrincipal) || 'unknown'
    for (const p of this.recentCumulative) {
      const l = p.labels
      if (
        p.status === o.status && p.grpcStatus === o.grpcStatus && l.reporter === o.reporter && l.source_workload === o.source && l.destination_workload === o.destination &&
        l.source_version === sourceVersion && l.destination_version === destinationVersion && l.response_flags === flags &&
        l.request_protocol === protocol && l.connection_security_policy === security && l.source_principal === sourcePrincipal && l.destination_principal === destinationPrincipal
      ) {
        return p
      }
    }
    return undefined
  }

  private cumulativeFor(o: Observation): PromSeries {
    const code = o.status > 0 ? String(o.status) : '0'
    const grpc = o.grpcStatus === undefined ? '' : String(o.grpcStatus)
    const flags = o.responseFlags || '-'
    const protocol = o.protocol ?? 'http'
    const security = o.mtls ? 'mutual_tls' : 'none'
    // Principals only where a certificate proved them, as Istio reports them: one per service, so bounded by the mesh.
    const sourcePrincipal = (o.mtls && o.sourcePrincipal) || 'unknown'
    const destinationPrincipal = (o.mtls && o.destinationPrincipal) || 'unknown'
    const key =
      o.reporter + SEP + o.source + SEP + (o.sourceVersion ?? '') + SEP + o.destination + SEP +
      (o.destinationVersion ?? '') + SEP + code + SEP + grpc + SEP + flags + SEP + protocol + SEP + security + SEP + sourcePrincipal + SEP + destinationPrincipal
    let p = this.cumulative.get(key)
    if (!p) {
      p = {
        labels: {
          reporter: o.reporter,
          source_workload: o.source,
          source_version: o.sourceVersion ?? 'unknown',
          source_principal: sourcePrincipal,
          destination_workload: o.destination,
          destination_service: o.destination,
          destination_version: o.destinationVersion ?? 'unknown',
          destination_principal: destinationPrincipal,
          connection_security_policy: security,
          request_protocol: protocol,
          response_code: code,
          grpc_response_status: grpc,
          response_flags: flags,
        },
        status: o.status > 0 ? o.status : 0,
        grpcStatus: o.grpcStatus,
        requests: 0,
        duration: emptyHistogram(ISTIO_DURATION_BUCKETS_MS.length),
      }
      this.cumulative.set(key, p)
    }
    remember(this.recentCumulative, p)
    return p
  }
  private prune(s: Series, second: number): void {
    const oldest = second - Math.ceil(this.retentionMs / SLOT_MS)
    let n = 0
    while (n < s.slots.length && s.slots[n].second < oldest) n++
    if (n > 0) s.slots.splice(0, n)
  }

  /** Drop series nobody has reported for a whole retention period (an instance long gone). */
  private sweep(nowMs: number): void {
    const second = Math.floor(nowMs / SLOT_MS)
    if (second - this.lastSweepSecond < 10) return
    this.lastSweepSecond = second
    for (const [key, s] of this.series) {
      this.prune(s, second)
      if (s.slots.length === 0) {
        this.series.delete(key)
        // A series kept in the recent list would be written to but never read again.
        const i = this.recentSeries.indexOf(s)
        if (i >= 0) this.recentSeries.splice(i, 1)
      }
    }
  }

  private group(groups: Map<string, Group>, s: Series, by: StatBy): Group {
    let key: string
    let row: Group['row']
    switch (by) {
      case 'service':
        key = s.destination
        row = {service: s.destination}
        break
      case 'version':
        key = s.destination + SEP + s.destinationVersion
        row = {service: s.destination, version: s.destinationVersion || undefined}
        break
      case 'instance':
        key = s.destination + SEP + s.destinationVersion + SEP + s.destinationInstance
        row = {
          service: s.destination,
          version: s.destinationVersion || undefined,
          instance: s.destinationInstance || undefined,
        }
        break
      case 'edge':
        key = s.source + SEP + s.destination
        row = {source: s.source, destination: s.destination}
        break
    }
    let g = groups.get(key)
    if (!g) {
      g = {
        row,
        effRequests: 0,
        effSuccesses: 0,
        effLatency: new LatencyHistogram(),
        actRequests: 0,
        actSuccesses: 0,
        actLatency: new LatencyHistogram(),
        coldStarts: 0,
        coldLatency: undefined,
      }
      groups.set(key, g)
    }
    return g
  }
}

function emptyHistogram(bounds: number): PromHistogram {
  return {buckets: new Array<number>(bounds + 1).fill(0), sum: 0, count: 0}
}

function observeInto(h: PromHistogram, bounds: readonly number[], value: number): void {
  let i = 0
  while (i < bounds.length && value > bounds[i]) i++
  h.buckets[i]++
  h.sum += value
  h.count++
}

function keyOf(r: StatRow): string {
  return [r.source, r.destination, r.service, r.version, r.instance].join(SEP)
}
