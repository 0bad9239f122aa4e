// Prometheus text exposition (format 0.0.4) of the mesh's cumulative metrics, with
// Istio's metric and label names so existing dashboards and `promtool check metrics`
// accept it. Served at /metrics on the control address.
import {
  type ColdStartSeries,
  ISTIO_BYTES_BUCKETS,
  ISTIO_DURATION_BUCKETS_MS,
  type PromHistogram,
  type PromLabels,
  type PromSeries,
} from './metrics.js'
import type {TcpSeries} from './tcp-metrics.js'

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

const LABEL_ORDER: Array<keyof PromLabels> = [
  'reporter',
  'source_workload',
  'source_version',
  'source_principal',
  'destination_workload',
  'destination_service',
  'destination_version',
  'destination_principal',
  'connection_security_policy',
  'request_protocol',
  'response_code',
  'grpc_response_status',
  'response_flags',
]

/** A label value as the text format wants it: backslash, double quote and newline escaped. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

/** HELP text escapes only backslash and newline. */
export function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
}

export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN'
  if (v === Infinity) return '+Inf'
  if (v === -Infinity) return '-Inf'
  return String(v)
}

/** `{name="value",…}` in the order given, then `extra` (a histogram's `le`). */
function labelsText(labels: ReadonlyArray<readonly [string, string]>, extra?: string): string {
  const parts = labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`)
  if (extra) parts.push(extra)
  return `{${parts.join(',')}}`
}

function labelText(labels: PromLabels, extra?: string): string {
  return labelsText(
    LABEL_ORDER.map((k) => [k, labels[k]] as const),
    extra,
  )
}

function header(out: string[], name: string, type: 'counter' | 'histogram', help: string): void {
  out.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`)
}

function histogramLines(
  out: string[],
  name: string,
  /** The series' `{…}`, with `extra` (a bucket's `le`) last. */
  text: (extra?: string) => string,
  h: PromHistogram,
  bounds: readonly number[],
): void {
  let cumulative = 0
  for (let i = 0; i < bounds.length; i++) {
    cumulative += h.buckets[i]
    out.push(`${name}_bucket${text(`le="${formatValue(bounds[i])}"`)} ${cumulative}`)
  }
  cumulative += h.buckets[bounds.length]
  out.push(`${name}_bucket${text('le="+Inf"')} ${cumulative}`)
  out.push(`${name}_sum${text()} ${formatValue(h.sum)}`)
  out.push(`${name}_count${text()} ${h.count}`)
}

/** A cold start's labels: the destination's, as istio_requests_total names them. */
function coldStartLabels(s: ColdStartSeries): Array<readonly [string, string]> {
  return [
    ['destination_workload', s.destination],
    ['destination_service', s.destination],
    ['destination_version', s.destinationVersion],
  ]
}

/** A TCP edge's labels: Istio's, without the response's. */
function tcpLabelText(s: TcpSeries): string {
  const e = s.edge
  return labelsText([
    ['reporter', 'source'],
    ['source_workload', e.source],
    ['source_version', e.sourceVersion ?? 'unknown'],
    ['destination_workload', e.destinationInstance],
    ['destination_service', e.destination],
    ['destination_version', e.destinationVersion],
  ])
}

/** The whole exposition, ending with a newline. */
export function renderPrometheus(series: PromSeries[], tcp: TcpSeries[] = [], coldStarts: ColdStartSeries[] = []): string {
  const out: string[] = []
  header(out, 'istio_requests_total', 'counter', 'Requests seen by a sidecar, by reporter, source, destination and response.')
  for (const s of series) out.push(`istio_requests_total${labelText(s.labels)} ${s.requests}`)

  const duration = 'istio_request_duration_milliseconds'
  header(out, duration, 'histogram', 'Request duration in milliseconds, as the reporting sidecar measured it.')
  for (const s of series) histogramLines(out, duration, (e) => labelText(s.labels, e), s.duration, ISTIO_DURATION_BUCKETS_MS)

  if (series.some((s) => s.requestBytes)) {
    header(out, 'istio_request_bytes', 'histogram', 'Request body size in bytes.')
    for (const s of series) {
      if (s.requestBytes) histogramLines(out, 'istio_request_bytes', (e) => labelText(s.labels, e), s.requestBytes, ISTIO_BYTES_BUCKETS)
    }
  }
  if (series.some((s) => s.responseBytes)) {
    header(out, 'istio_response_bytes', 'histogram', 'Response body size in bytes.')
    for (const s of series) {
      if (s.responseBytes) histogramLines(out, 'istio_response_bytes', (e) => labelText(s.labels, e), s.responseBytes, ISTIO_BYTES_BUCKETS)
    }
  }
  if (tcp.length) {
    const counters: Array<[string, string, (s: TcpSeries) => number]> = [
      ['istio_tcp_connections_opened_total', 'TCP connections opened: to protocol: tcp services, and WebSocket sessions once upgraded.', (s) => s.opened],
      ['istio_tcp_connections_closed_total', 'TCP connections closed.', (s) => s.closed],
      ['istio_tcp_sent_bytes_total', 'Bytes the service sent back over closed TCP connections.', (s) => s.sentBytes],
      ['istio_tcp_received_bytes_total', 'Bytes the service received over closed TCP connections.', (s) => s.receivedBytes],
    ]
    for (const [name, help, value] of counters) {
      header(out, name, 'counter', help)
      for (const s of tcp) out.push(`${name}${tcpLabelText(s)} ${value(s)}`)
    }
  }
  // Only once a call waited for one: a mesh without scale to zero shows no empty families.
  if (coldStarts.length) {
    header(out, 'mesh_cold_starts_total', 'counter', 'Calls the activator held while an instance of the destination cold-started.')
    for (const s of coldStarts) out.push(`mesh_cold_starts_total${labelsText(coldStartLabels(s))} ${s.count}`)
    const name = 'mesh_cold_start_duration_milliseconds'
    header(out, name, 'histogram', 'How long a held call waited for its cold start (process start and health), in milliseconds.')
    for (const s of coldStarts) histogramLines(out, name, (e) => labelsText(coldStartLabels(s), e), s.duration, ISTIO_DURATION_BUCKETS_MS)
  }
  return out.join('\n') + '\n'
}
