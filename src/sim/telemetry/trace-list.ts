// `mesh traces`: one line per trace, failed first then slowest (the store's order).
import {Chalk} from 'chalk'
import {describeGrpcStatus} from '../proxy/grpc.js'
import type {SamplingStats} from './trace-sampler.js'
import type {TraceSummary} from './trace-store.js'
import {formatLatency} from './waterfall.js'

export interface TraceListOptions {
  colour: boolean
  /** Print the column header line (default true). */
  header?: boolean
}

/** Enough of the id to be unique among recent traces; `mesh trace` accepts a prefix. */
export const SHORT_ID_LENGTH = 12

/**
 * `frontend ▸ cart, catalog, inventory`: where the request entered, then every other
 * service it reached, by name. Not a chain: the set says who took part, and `mesh trace`
 * shows who called whom. The ingress is left out: the root column names its route.
 */
export function describeServices(t: {entry: string; services: string[]}): string {
  const others = t.services.filter((s) => s !== t.entry && s !== 'ingress').sort()
  return others.length ? `${t.entry} ▸ ${others.join(', ')}` : t.entry
}

export function renderTraceList(summaries: TraceSummary[], opts: TraceListOptions): string {
  const c = new Chalk({level: opts.colour ? 1 : 0})
  if (summaries.length === 0) return 'No traces yet. Send a request through the ingress, or run `mesh load`.\n'
  const roots = summaries.map((s) => `${s.root.method} ${s.root.path}`)
  const rootWidth = Math.min(40, Math.max(4, ...roots.map((r) => r.length)))
  const lines: string[] = []
  if (opts.header ?? true) {
    lines.push(
      c.dim(
        ['TRACE'.padEnd(SHORT_ID_LENGTH), 'ROOT'.padEnd(rootWidth), 'DURATION'.padStart(9), 'SPANS'.padStart(5), 'STATUS', 'SERVICES'].join('  '),
      ),
    )
  }
  summaries.forEach((s, i) => {
    const root = roots[i].length > rootWidth ? roots[i].slice(0, rootWidth - 1) + '…' : roots[i].padEnd(rootWidth)
    // In flight: no status yet, and a call that failed so far may still be retried.
    const code = !s.complete ? '…' : s.status > 0 ? String(s.status) : '---'
    const colour = !s.complete ? c.dim : s.error ? c.red : s.errorSpans > 0 || s.status >= 400 ? c.yellow : c.green
    const status = colour(code.padEnd(6))
    const failed = !s.error && s.errorSpans > 0 ? c.yellow(` (${s.errorSpans} failed span${s.errorSpans === 1 ? '' : 's'}${s.complete ? '' : ' so far'})`) : ''
    const inFlight = s.complete ? '' : c.dim(' (in flight)')
    // A gRPC call answers 200 whatever happened: its status says how it went.
    const grpc = s.grpcStatus ? colour(` grpc ${describeGrpcStatus(s.grpcStatus)}`) : ''
    lines.push(
      [
        s.traceId.slice(0, SHORT_ID_LENGTH).padEnd(SHORT_ID_LENGTH),
        root,
        formatLatency(s.durationMs).padStart(9),
        String(s.spanCount).padStart(5),
        status,
        describeServices(s) + grpc + failed + inFlight,
      ].join('  '),
    )
  })
  return lines.join('\n') + '\n'
}

/** A line under the list when the store is sampling (the mesh is busy), so a missing trace is not a mystery. */
export function renderSamplingNote(sampling: SamplingStats, opts: TraceListOptions): string {
  if (sampling.keepProbability >= 1 && sampling.sampledOut === 0) return ''
  const c = new Chalk({level: opts.colour ? 1 : 0})
  const now =
    sampling.keepProbability >= 1
      ? 'every trace is kept right now'
      : `${formatShare(sampling.keepProbability)} of healthy traces are kept right now`
  return c.dim(
    `Sampled: ${now} (telemetry.sampling.spansPerSecond: ${sampling.spansPerSecond}); failed spans are always kept. ` +
      `${sampling.sampledOut} span(s) left out so far; metrics count every request.\n`,
  )
}

function formatShare(p: number): string {
  const pct = p * 100
  return `${pct >= 10 ? pct.toFixed(0) : pct >= 1 ? pct.toFixed(1) : pct.toFixed(2)}%`
}
