// What `mesh top` shows, as data and as text: control-API answers become one view
// model, and the model becomes the whole screen as lines. `mesh top --once` prints
// renderFrame(); the live screen shows the same text, with a selection, once a second.
//
//   status + stat(service) + stat(edge) + traces + events ──buildModel──▶ TopModel
//   TopModel + size + view (selection, focus, filter) ──renderFrame──▶ lines ≤ width
import {Chalk, type ChalkInstance} from 'chalk'
import {describeSecurity, edgeSecurity, type MeshStatus} from '../control/status.js'
import type {Stamped} from '../control/event-log.js'
import type {StatRow} from '../telemetry/metrics.js'
import type {TraceSummary} from '../telemetry/trace-store.js'
import {describeServices} from '../telemetry/trace-list.js'
import {formatLatency} from '../telemetry/waterfall.js'
import {legibleTopology, type Point} from './topology-layout.js'

export interface ServiceView {
  name: string
  dependsOn: string[]
  versions: Array<{name: string; weight: number; replicas: number}>
  healthy: number
  total: number
  ejected: number
  restarts: number
  panic: boolean
  requests: number
  rps: number
  /** 0..1 as callers saw it; undefined with no requests in the window. */
  successRate?: number
  p50: number
  p99: number
  faults: string[]
  /** A deploy in progress, e.g. `canary v2 25%` (none until deploys exist). */
  deploy?: string
  instances: Array<{name: string; version: string; health: string; restarts: number; ejected?: string}>
  /** `protocol: tcp`: connections open now (it has no requests to rate). */
  tcpOpen?: number
  /** Its mTLS mode and the TLS to its instances (`mTLS STRICT, ISTIO_MUTUAL to its instances`), when the mesh has either. */
  security?: string
  /** Autoscaled (`scaling:`): what the autoscaler wants and what runs, its versions summed; a failed scale-up not yet made good. */
  scaling?: {desired: number; actual: number; panic: boolean; failed?: string; idle?: boolean}
}

export interface EdgeView {
  from: string
  to: string
  requests: number
  rps: number
  successRate?: number
  /** The hop to the callee's instances is mutual TLS (its policy.tls): the edge's label says `mTLS`. */
  mtls?: boolean
}

export interface TraceView {
  id: string
  method: string
  path: string
  service: string
  services: string[]
  /** Where the request entered the mesh (TraceSummary.entry). */
  entry: string
  startMs: number
  durationMs: number
  status: number
  error: boolean
  errorSpans: number
  spanCount: number
}

export type EventSeverity = 'bad' | 'warn' | 'good' | 'info'

export interface EventView {
  seq: number
  at: string
  text: string
  severity: EventSeverity
  service?: string
}

export interface TopModel {
  mesh: string
  phase: string
  ingress?: string
  /** Services the ingress routes to (depth 0 of the topology). */
  roots: string[]
  windowMs: number
  /** Wall clock (epoch ms) the model was built at. */
  at: number
  services: ServiceView[]
  edges: EdgeView[]
  traces: TraceView[]
  /** Newest last. */
  events: EventView[]
}

/** An event as the control API returns it; kinds this build does not know (deploy steps) are shown generically. */
export type AnyEvent = Stamped<{kind: string; [field: string]: unknown}>

export interface TopInputs {
  status: MeshStatus
  /** stat('service', windowMs) */
  serviceStats: StatRow[]
  /** stat('edge', windowMs) */
  edgeStats: StatRow[]
  traces: TraceSummary[]
  events: AnyEvent[]
  windowMs: number
  now: number
  /** A trace at least this long is slow (default: the slowest tenth of `traces`). */
  slowMs?: number
  /** Only traces that started this recently (default: all given). */
  traceHorizonMs?: number
}

// A trace is "slow" in the top tenth of what the store holds; failed ones always show.
const SLOW_QUANTILE = 0.9
const MAX_TRACES = 50
const MAX_EVENTS = 50

export function buildModel(i: TopInputs): TopModel {
  const stats = new Map(i.serviceStats.filter((r) => r.service).map((r) => [r.service!, r]))
  const services: ServiceView[] = i.status.services.map((s) => {
    const st = stats.get(s.name)
    const requests = st?.requests ?? 0
    return {
      name: s.name,
      dependsOn: s.dependsOn ?? [],
      versions: s.versions.map((v) => ({name: v.name, weight: v.weight, replicas: v.replicas})),
      // A one-shot job that completed is as it should be, not missing.
      healthy: s.instances.filter((x) => (x.health === 'healthy' && !x.ejected) || x.health === 'completed').length,
      total: s.instances.length,
      ejected: s.instances.filter((x) => x.ejected).length,
      restarts: s.instances.reduce((a, x) => a + x.restarts, 0),
      panic: s.panic,
      requests,
      rps: st?.rps ?? 0,
      successRate: requests > 0 ? st!.successRate : undefined,
      p50: st?.p50 ?? 0,
      p99: st?.p99 ?? 0,
      faults: s.faults ?? [],
      deploy: (s as {deploy?: string}).deploy,
      tcpOpen: s.tcp?.open,
      security: describeSecurity(s.security),
      ...(s.scaling?.length ? {scaling: scalingView(s)} : {}),
      instances: s.instances.map((x) => ({
        name: x.instance,
        version: x.version,
        health: x.state === 'backoff' || x.state === 'crash-loop' ? x.state : x.health,
        restarts: x.restarts,
        ejected: x.ejected?.reason,
      })),
    }
  })
  const securityOf = new Map(i.status.services.map((s) => [s.name, s.security]))
  const edges: EdgeView[] = i.edgeStats
    .filter((r) => r.source && r.destination)
    .map((r) => ({
      from: r.source!,
      to: r.destination!,
      requests: r.requests,
      rps: r.rps,
      successRate: r.requests > 0 ? r.successRate : undefined,
      ...(edgeSecurity(securityOf.get(r.destination!)) === 'mutual_tls' ? {mtls: true} : {}),
    }))
  return {
    mesh: i.status.name,
    phase: i.status.phase,
    ingress: i.status.ingress?.url,
    roots: [...new Set((i.status.ingress?.routes ?? []).map((r) => r.service))],
    windowMs: i.windowMs,
    at: i.now,
    services,
    edges,
    traces: pickTraces(i.traces, {slowMs: i.slowMs, since: i.traceHorizonMs === undefined ? undefined : i.now - i.traceHorizonMs}),
    events: i.events.slice(-MAX_EVENTS).map(describeEvent),
  }
}

function scalingView(s: MeshStatus['services'][number]): NonNullable<ServiceView['scaling']> {
  const rows = s.scaling ?? []
  return {
    desired: rows.reduce((n, r) => n + r.desired, 0),
    actual: rows.reduce((n, r) => n + r.actual, 0),
    panic: rows.some((r) => r.panic),
    // Scaled to zero: not down, waiting for a request (the activator starts one).
    ...(rows.every((r) => r.scaledToZero) ? {idle: true} : {}),
    ...(s.scaleFailed || rows.some((r) => r.startFailed) ? {failed: s.scaleFailed?.reason ?? rows.find((r) => r.startFailed)!.startFailed!.reason} : {}),
  }
}

/** The service's details overlay: what the autoscaler wants and has, and a failed scale-up's reason. */
export function scalingLines(s: ServiceView): string[] {
  const a = s.scaling
  if (!a) return []
  const lines = [`scaling: desired ${a.desired}, actual ${a.actual}${a.panic ? ' (panic)' : ''}`]
  if (a.failed) lines.push(`scale-up failed: ${a.failed}`)
  return lines
}

/** Failed traces and slow ones (at least `slowMs`, or the slowest tenth), newest first, each once. */
export function pickTraces(traces: TraceSummary[], opts: {slowMs?: number; since?: number} = {}): TraceView[] {
  const seen = new Set<string>()
  const recent = traces.filter((t) => (opts.since === undefined || t.startMs >= opts.since) && !seen.has(t.traceId) && seen.add(t.traceId))
  const durations = recent.map((t) => t.durationMs).sort((a, b) => a - b)
  const slowAt = opts.slowMs ?? (durations.length >= 5 ? durations[Math.floor((durations.length - 1) * SLOW_QUANTILE)] : 0)
  return recent
    .filter((t) => t.error || t.errorSpans > 0 || t.durationMs >= slowAt)
    .sort((a, b) => b.startMs - a.startMs || a.traceId.localeCompare(b.traceId))
    .slice(0, MAX_TRACES)
    .map((t) => ({
      id: t.traceId,
      method: t.root.method,
      path: t.root.path,
      service: t.root.service,
      services: t.services,
      entry: t.entry,
      startMs: t.startMs,
      durationMs: t.durationMs,
      status: t.status,
      error: t.error,
      errorSpans: t.errorSpans,
      spanCount: t.spanCount,
    }))
}

export function describeEvent(e: AnyEvent): EventView {
  const ev = e.event
  const s = (k: string) => (typeof ev[k] === 'string' ? (ev[k] as string) : undefined)
  const service = s('service')
  const base = {seq: e.seq, at: e.at, service}
  switch (ev.kind) {
    case 'instance-healthy':
      return {...base, severity: 'good', text: `${s('instance')} healthy`}
    case 'instance-unhealthy':
      return {...base, severity: 'bad', text: `${s('instance')} unhealthy${s('detail') ? `: ${s('detail')}` : ''}`}
    case 'instance-exited': {
      const how = ev.signal ? `signal ${String(ev.signal)}` : `code ${String(ev.code)}`
      return {...base, severity: 'bad', text: `${s('instance')} exited (${how})`}
    }
    case 'service-healthy':
      return {...base, severity: 'good', text: `${service} healthy`}
    case 'instance-ejected':
      return {...base, severity: 'bad', text: `${s('instance')} ejected (${s('reason') ?? 'outlier'})`}
    case 'instance-returned':
      return {...base, severity: 'good', text: `${s('instance')} back from ejection`}
    case 'config-applied': {
      const changes = Array.isArray(ev.changes) ? (ev.changes as string[]) : []
      return {...base, severity: 'info', text: `config applied${changes.length ? `: ${changes.join(', ')}` : ''}`}
    }
    case 'scaled':
      return {...base, severity: ev.panic ? 'warn' : 'info', text: `scaled ${service} ${s('message') ?? ''}`.trimEnd()}
    case 'scale-failed':
      return {...base, severity: 'bad', text: `${service} ${s('message') ?? `scale-up failed: ${s('reason')}`}`}
    case 'fault-added':
      return {...base, severity: 'warn', text: `fault ${s('id')} on ${service}: ${s('fault')}`}
    case 'fault-removed':
      return {...base, severity: 'info', text: `fault ${s('id')} cleared on ${service}`}
    case 'fault-expired':
      return {...base, severity: 'info', text: `fault ${s('id')} expired on ${service}`}
    default: {
      // Kinds added later (deploy steps) still read: kind, service, and any message-like field.
      const detail = s('message') ?? s('step') ?? s('detail') ?? ''
      const severity: EventSeverity = /fail|roll(ed)?[- ]?back|abort/.test(ev.kind) ? 'bad' : 'info'
      return {...base, severity, text: [ev.kind.replace(/-/g, ' '), service, detail].filter(Boolean).join(' ')}
    }
  }
}

// ── rendering ──────────────────────────────────────────────────────────────────

export type Focus = 'services' | 'traces'

export interface FrameOptions {
  width: number
  /** Lines to fill exactly; without it every section takes its natural size (`--once` when piped). */
  height?: number
  colour: boolean
  /** Selection state of the live screen; `--once` shows none. */
  view?: ViewState
}

export interface ViewState {
  focus: Focus
  /** Index into the filtered services / traces. */
  service: number
  trace: number
  filter?: string
}

type Style = 'green' | 'yellow' | 'red' | 'dim' | 'magenta' | 'cyan' | 'bold' | 'inverse'

const STYLE_RANK: Record<string, number> = {dim: 0, green: 1, yellow: 2, red: 3}

/** Green at 99% and above, yellow from 95%, red below: Linkerd viz's thresholds (as `mesh stat`). */
export function successStyle(ratio: number | undefined): Style {
  if (ratio === undefined) return 'dim'
  return ratio >= 0.99 ? 'green' : ratio >= 0.95 ? 'yellow' : 'red'
}

export function formatRps(rps: number): string {
  if (!(rps > 0)) return '0'
  if (rps >= 100) return rps.toFixed(0)
  if (rps >= 10) return rps.toFixed(1)
  return rps.toFixed(2)
}

export function formatSuccess(ratio: number | undefined): string {
  return ratio === undefined ? '-' : `${(ratio * 100).toFixed(ratio >= 0.9995 || ratio === 0 ? 0 : 1)}%`
}

export function filterServices(model: TopModel, filter?: string): ServiceView[] {
  const f = filter?.trim().toLowerCase()
  return f ? model.services.filter((s) => s.name.toLowerCase().includes(f)) : model.services
}

export function filterTraces(model: TopModel, filter?: string): TraceView[] {
  const f = filter?.trim().toLowerCase()
  if (!f) return model.traces
  return model.traces.filter((t) => t.services.some((s) => s.toLowerCase().includes(f)) || t.path.toLowerCase().includes(f) || t.id.startsWith(f))
}

/** How many lines each section gets: fixed proportions, so panes do not jump as traffic changes. */
export function frameSections(model: TopModel, height: number | undefined, view?: ViewState): {topology?: number; services: number; traces: number} {
  const nServices = filterServices(model, view?.filter).length
  const nTraces = filterTraces(model, view?.filter).length
  if (height === undefined) return {services: Math.max(1, nServices), traces: Math.max(1, Math.min(10, nTraces))}
  // title, three section rules, the table header, the events line
  const rest = Math.max(3, height - 6)
  const services = Math.max(1, Math.min(Math.max(1, nServices), Math.floor(rest * 0.35)))
  const traces = Math.max(1, Math.floor(rest * 0.2))
  const topology = Math.max(0, rest - services - traces)
  return {topology, services, traces}
}

export function renderFrame(model: TopModel, opts: FrameOptions): string {
  const width = Math.max(20, Math.floor(opts.width))
  const c = new Chalk({level: opts.colour ? 1 : 0})
  const view = opts.view
  const sizes = frameSections(model, opts.height, view)
  const lines: string[] = []
  lines.push(titleLine(model, width, c))

  lines.push(rule('topology', width, c, false))
  lines.push(...renderTopology(model, {width, height: sizes.topology, colour: opts.colour, selected: selectedService(model, view), filter: view?.filter}))

  const services = filterServices(model, view?.filter)
  lines.push(rule(`services (${services.length}${view?.filter ? ` matching "${view.filter}"` : ''})`, width, c, view?.focus === 'services'))
  const table = serviceTable(services, width, c, view?.focus === 'services' ? view.service : -1)
  lines.push(table.header)
  lines.push(...windowed(table.rows, sizes.services, view?.service ?? 0, opts.height !== undefined))

  const traces = filterTraces(model, view?.filter)
  lines.push(rule(`slow or failed traces (${traces.length})${view ? ' — Enter opens' : ''}`, width, c, view?.focus === 'traces'))
  const traceLines = traces.length
    ? traceRows(traces, width, c, view?.focus === 'traces' ? view.trace : -1, model.at)
    : [c.dim(fit('  none in the last minute: failed traces, and slow ones (over the ingress services p95), show here', width))]
  lines.push(...windowed(traceLines, sizes.traces, view?.trace ?? 0, opts.height !== undefined))

  lines.push(eventsLine(model, width, c))
  return lines.join('\n')
}

function selectedService(model: TopModel, view?: ViewState): string | undefined {
  if (!view || view.focus !== 'services') return undefined
  return filterServices(model, view.filter)[view.service]?.name
}

/** Exactly `size` lines (padding with blanks when `pad`), scrolled so `selected` shows. */
function windowed(lines: string[], size: number, selected: number, pad: boolean): string[] {
  let top = 0
  if (lines.length > size) top = Math.min(Math.max(0, selected - size + 1), lines.length - size)
  const shown = lines.slice(top, top + size)
  if (lines.length > size && top + size < lines.length && shown.length > 0) {
    shown[shown.length - 1] = `  … ${lines.length - top - size + 1} more`
  }
  while (pad && shown.length < size) shown.push('')
  return shown
}

function titleLine(model: TopModel, width: number, c: ChalkInstance): string {
  const time = clockTime(model.at)
  const parts = [`mesh ${model.mesh}`, model.phase, model.ingress ? `ingress ${model.ingress}` : 'no ingress', `window ${Math.round(model.windowMs / 1000)}s`, time]
  const right = '? help  q quit'
  const left = fit(parts.join(' · '), Math.max(0, width - right.length - 1))
  const pad = Math.max(1, width - left.length - right.length)
  const line = left + ' '.repeat(pad) + right
  return line.length <= width ? c.bold(left) + ' '.repeat(pad) + c.dim(right) : c.bold(fit(left, width))
}

function rule(title: string, width: number, c: ChalkInstance, focused: boolean): string {
  const head = `── ${fit(title, width - 4)} `
  const line = head + '─'.repeat(Math.max(0, width - head.length))
  return focused ? c.inverse(line) : c.dim(line)
}

/** Plain text cut to `width` cells with … (all text here is one cell per char). */
export function fit(text: string, width: number): string {
  if (width <= 0) return ''
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`
}

function clockTime(ms: number): string {
  const d = new Date(ms)
  const two = (n: number) => String(n).padStart(2, '0')
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`
}

// ── services table ──

interface Cell {
  text: string
  style?: Style
  right?: boolean
}

const SERVICE_HEADER: Cell[] = [
  {text: 'SERVICE'},
  {text: 'VERSIONS'},
  {text: 'INST', right: true},
  {text: 'SCALE'},
  {text: 'RPS', right: true},
  {text: 'SUCCESS', right: true},
  {text: 'P50', right: true},
  {text: 'P99', right: true},
  {text: 'DEPLOY'},
  {text: 'FAULTS'},
]
// Caps so one long name or version list cannot push the numbers off an 80-column screen.
const MAX_CELL = [20, 18, 7, 12, 7, 7, 8, 8, 14, 999]
/** The SCALE column: shown only when some service is autoscaled. */
const SCALE_COLUMN = 3

/** `desired/actual`, and why to look: `5/2 panic`, `2/1 failed`, `0/0 idle` (scaled to zero); `-` for a service with a fixed count. */
function scaleCell(s: ServiceView): Cell {
  const a = s.scaling
  if (!a) return {text: '-', style: 'dim'}
  const text = `${a.desired}/${a.actual}`
  if (a.failed) return {text: `${text} failed`, style: 'red'}
  if (a.panic) return {text: `${text} panic`, style: 'yellow'}
  if (a.idle) return {text: `${text} idle`, style: 'dim'}
  return {text, style: a.desired !== a.actual ? 'cyan' : undefined}
}

function serviceCells(s: ServiceView): Cell[] {
  const versions = s.versions.length > 1 ? s.versions.map((v) => `${v.name}:${v.weight}`).join(' ') : (s.versions[0]?.name ?? '-')
  const inst = `${s.healthy}/${s.total}`
  return [
    {text: s.name, style: s.faults.length ? 'magenta' : undefined},
    {text: versions},
    {text: inst, right: true, style: s.healthy < s.total || s.panic ? 'red' : undefined},
    scaleCell(s),
    // A TCP service has connections, not requests: how many are open, and no success rate.
    s.tcpOpen !== undefined ? {text: `${s.tcpOpen} open`, right: true} : {text: formatRps(s.rps), right: true},
    s.tcpOpen !== undefined ? {text: 'tcp', right: true, style: 'dim'} : {text: formatSuccess(s.successRate), right: true, style: successStyle(s.successRate)},
    {text: s.requests ? formatLatency(s.p50) : '-', right: true},
    {text: s.requests ? formatLatency(s.p99) : '-', right: true},
    {text: s.deploy ?? '-', style: s.deploy ? 'cyan' : 'dim'},
    {text: s.faults.length ? s.faults.join('; ') : '-', style: s.faults.length ? 'magenta' : 'dim'},
  ]
}

function serviceTable(services: ServiceView[], width: number, c: ChalkInstance, selected: number): {header: string; rows: string[]} {
  const scaled = services.some((s) => s.scaling)
  const shown = <T>(cells: T[]) => (scaled ? cells : cells.filter((_, i) => i !== SCALE_COLUMN))
  const header = shown(SERVICE_HEADER)
  const caps = shown(MAX_CELL)
  const rows = services.map((s) => shown(serviceCells(s)))
  const widths = header.map((h, i) => Math.min(caps[i], Math.max(h.text.length, ...rows.map((r) => r[i].text.length))))
  return {
    header: c.dim(cellsLine(header, widths, width, c, '  ')),
    rows: rows.map((r, i) => {
      const line = cellsLine(r, widths, width, c, i === selected ? '▶ ' : '  ')
      return i === selected ? c.inverse(line) : line
    }),
  }
}

/** Cells padded to their column widths, cut at `width` visible cells, coloured after cutting. */
function cellsLine(cells: Cell[], widths: number[], width: number, c: ChalkInstance, prefix: string): string {
  let out = prefix
  let used = prefix.length
  for (let i = 0; i < cells.length && used < width; i++) {
    const cell = cells[i]
    const w = i === cells.length - 1 ? Math.max(0, width - used) : widths[i]
    const text = fit(cell.text, w)
    const padded = i === cells.length - 1 ? text : cell.right ? text.padStart(w) : text.padEnd(w)
    const room = width - used
    const shown = padded.length > room ? fit(padded.trimEnd(), room) : padded
    out += paint(shown, cell.style, c)
    used += shown.length
    if (i < cells.length - 1 && used + 2 <= width) {
      out += '  '
      used += 2
    }
  }
  return out.trimEnd()
}

function paint(text: string, style: Style | undefined, c: ChalkInstance): string {
  return style ? c[style](text) : text
}

// ── traces ──

function traceRows(traces: TraceView[], width: number, c: ChalkInstance, selected: number, now: number): string[] {
  return traces.map((t, i) => {
    const mark = t.error ? '✗' : t.errorSpans ? '!' : '·'
    const status = String(t.status || 'ERR')
    const age = ageText(now - t.startMs)
    const head = `${i === selected ? '▶' : ' '} ${mark} ${t.id.slice(0, 8)}  ${age.padStart(4)}  ${status.padStart(3)}  ${formatLatency(t.durationMs).padStart(8)}  `
    const rest = `${t.method} ${t.path}  ${describeServices(t)}`
    const line = fit(head + rest, width)
    const style: Style | undefined = t.error ? 'red' : t.errorSpans ? 'yellow' : undefined
    const painted = paint(line, style, c)
    return i === selected ? c.inverse(painted) : painted
  })
}

function ageText(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m`
  return `${Math.floor(s / 3600)}h`
}

// ── events ──

const SEVERITY_STYLE: Record<EventSeverity, Style | undefined> = {bad: 'red', warn: 'magenta', good: 'green', info: undefined}

/** Newest first, as many as fit on one line. */
export function eventsLine(model: TopModel, width: number, c: ChalkInstance): string {
  const label = 'events: '
  if (model.events.length === 0) return c.dim(fit(`${label}none yet`, width))
  let used = label.length
  let out = c.dim(label)
  const sep = ' · '
  for (const e of [...model.events].reverse()) {
    const text = `${clockTime(Date.parse(e.at))} ${e.text}`
    const first = used === label.length
    const need = (first ? 0 : sep.length) + text.length
    if (used + need > width) {
      if (first) out += paint(fit(text, width - used), SEVERITY_STYLE[e.severity], c)
      break
    }
    if (!first) out += c.dim(sep)
    out += paint(text, SEVERITY_STYLE[e.severity], c)
    used += need
  }
  return out
}

// ── topology ──

export interface TopologyOptions {
  width: number
  /** Lines to fill exactly; undefined: as many as the drawing needs. */
  height?: number
  colour: boolean
  selected?: string
  /** The `/` filter: on a mesh too big to draw whole, the topology shows the matching services and their neighbours. */
  filter?: string
}

interface Cellx {
  ch: string
  style?: Style
  /** Line directions through this cell (N=1 E=2 S=4 W=8), resolved to a box-drawing char at the end. */
  dirs: number
  lineRank: number
  label?: boolean
  /** Every edge through this cell is mutual TLS: drawn with double lines. */
  mtls?: boolean
}

const N = 1
const E = 2
const S = 4
const Wd = 8
const LINE_CHARS: Record<number, string> = {
  [E]: '─', [Wd]: '─', [E | Wd]: '─', [N]: '│', [S]: '│', [N | S]: '│',
  [E | S]: '┌', [Wd | S]: '┐', [E | N]: '└', [Wd | N]: '┘',
  [E | Wd | S]: '┬', [E | Wd | N]: '┴', [N | S | E]: '├', [N | S | Wd]: '┤', [N | E | S | Wd]: '┼',
}
// An edge whose hop to the callee's instances is mutual TLS (policy.tls) is drawn double; a junction it shares stays single.
const DOUBLE_CHARS: Record<number, string> = {
  [E]: '═', [Wd]: '═', [E | Wd]: '═', [N]: '║', [S]: '║', [N | S]: '║', [E | S]: '╔', [Wd | S]: '╗', [E | N]: '╚', [Wd | N]: '╝',
}

/** The topology pane: boxes, edges labelled with rps and coloured by success rate, mutual TLS ones drawn double. */
export function renderTopology(model: TopModel, opts: TopologyOptions): string[] {
  const width = Math.max(1, Math.floor(opts.width))
  const natural = opts.height === undefined
  const height = natural ? Math.min(40, Math.max(3, model.services.length * 4)) : Math.max(0, Math.floor(opts.height!))
  if (height === 0) return []
  const c = new Chalk({level: opts.colour ? 1 : 0})
  if (model.services.length === 0) return pad([c.dim(fit('no services', width))], height, natural)

  const dependsEdges = new Set(model.services.flatMap((s) => s.dependsOn.map((d) => `${s.name}\u0000${d}`)))
  const topology = legibleTopology(
    {
      services: model.services.map((s) => ({name: s.name, dependsOn: s.dependsOn})),
      roots: model.roots,
      extraEdges: model.edges.filter((e) => !dependsEdges.has(`${e.from}\u0000${e.to}`)),
    },
    width,
    height,
    {filter: opts.filter, selected: opts.selected},
  )
  const {layout} = topology
  const traffic = new Map(model.edges.map((e) => [`${e.from}\u0000${e.to}`, e]))
  const rows = topology.part ? layout.height : height
  const grid: Cellx[][] = Array.from({length: rows}, () => Array.from({length: width}, () => ({ch: ' ', dirs: 0, lineRank: -1})))
  const at = (x: number, y: number) => (y >= 0 && y < rows && x >= 0 && x < width ? grid[y][x] : undefined)

  for (const edge of layout.edges) {
    const t = traffic.get(`${edge.from}\u0000${edge.to}`)
    const style = successStyle(t?.successRate)
    const mark = (x: number, y: number, dirs: number) => {
      const cell = at(x, y)
      if (!cell) return
      cell.mtls = (cell.dirs === 0 || cell.mtls === true) && t?.mtls === true
      cell.dirs |= dirs
      // Where edges share cells, the worse success rate shows.
      if (STYLE_RANK[style] > cell.lineRank) {
        cell.lineRank = STYLE_RANK[style]
        cell.style = style
      }
    }
    drawPolyline(edge.points, mark)
  }
  for (const row of grid) for (const cell of row) if (cell.dirs) cell.ch = (cell.mtls && DOUBLE_CHARS[cell.dirs]) || (LINE_CHARS[cell.dirs] ?? '┼')

  for (const edge of layout.edges) {
    const t = traffic.get(`${edge.from}\u0000${edge.to}`)
    const style = successStyle(t?.successRate)
    const end = edge.points[edge.points.length - 1]
    const head = at(end.x, end.y)
    if (head) Object.assign(head, {ch: edge.arrow, style})
    if (!t || t.requests === 0) continue
    const label = `${formatRps(t.rps)}/s`
    const {x, y, width: room} = edge.labelAt
    if (label.length > room) continue
    // Right-aligned against the arrow head, so a label reads as "into this box".
    const lx = edge.arrow === '▶' ? x + room - label.length : x
    const cells = [...label].map((_, k) => at(lx + k, y))
    if (cells.some((cell) => !cell || cell.label)) continue
    cells.forEach((cell, k) => Object.assign(cell!, {ch: label[k], style, label: true}))
  }

  const byName = new Map(model.services.map((s) => [s.name, s]))
  for (const box of layout.boxes) {
    const svc = byName.get(box.service)
    const border: Style | undefined = svc && (svc.healthy < svc.total || svc.panic) ? 'red' : svc?.faults.length ? 'magenta' : undefined
    const labelStyle: Style | undefined = box.service === opts.selected ? 'inverse' : svc?.faults.length ? 'magenta' : 'bold'
    const put = (x: number, y: number, ch: string, style?: Style) => {
      const cell = at(x, y)
      if (cell) Object.assign(cell, {ch, style, dirs: 0})
    }
    const inner = box.w - 2
    const text = box.label
    const left = Math.floor((inner - text.length) / 2)
    const mid = ' '.repeat(Math.max(0, left)) + text + ' '.repeat(Math.max(0, inner - left - text.length))
    if (box.h >= 3) {
      put(box.x, box.y, '┌', border)
      put(box.x + box.w - 1, box.y, '┐', border)
      put(box.x, box.y + box.h - 1, '└', border)
      put(box.x + box.w - 1, box.y + box.h - 1, '┘', border)
      for (let x = box.x + 1; x < box.x + box.w - 1; x++) {
        put(x, box.y, '─', border)
        put(x, box.y + box.h - 1, '─', border)
      }
      for (let y = box.y + 1; y < box.y + box.h - 1; y++) {
        put(box.x, y, '│', border)
        put(box.x + box.w - 1, y, '│', border)
        for (let x = box.x + 1; x < box.x + box.w - 1; x++) put(x, y, ' ')
      }
      const my = box.y + Math.floor(box.h / 2)
      ;[...mid].forEach((ch, k) => put(box.x + 1 + k, my, ch, ch === ' ' ? undefined : labelStyle))
    } else {
      put(box.x, box.y, '[', border)
      ;[...mid].forEach((ch, k) => put(box.x + 1 + k, box.y, ch, ch === ' ' ? undefined : labelStyle))
      put(box.x + box.w - 1, box.y, ']', border)
    }
  }

  let lines = grid.map((row) => joinStyled(row, c))
  if (layout.hidden.length && lines.length) {
    const note = fit(`+${layout.hidden.length} more not shown (${layout.hidden.join(', ')}): widen the terminal`, width)
    lines[lines.length - 1] = c.yellow(note)
  }
  if (natural) lines = trimBlank(lines)
  if (topology.part && height > 1) {
    const how = `/ filters${opts.filter ? '' : ' · select a service to focus it'}`
    lines.push(c.dim(fit(`${topology.shown} of ${topology.total} services: ${topology.part} · ${how}`, width)))
  }
  return lines
}

function drawPolyline(points: Point[], mark: (x: number, y: number, dirs: number) => void): void {
  if (points.length === 0) return
  // The first cell touches the caller's box on its left (or right, going back): draw it as a line leaving the box.
  const first = points[0]
  const second = points[1]
  mark(first.x, first.y, second && second.x < first.x ? E : Wd)
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1]
    const b = points[i]
    if (a.y === b.y) {
      const [lo, hi] = a.x < b.x ? [a.x, b.x] : [b.x, a.x]
      for (let x = lo; x <= hi; x++) mark(x, a.y, (x < hi ? E : 0) | (x > lo ? Wd : 0))
    } else {
      const [lo, hi] = a.y < b.y ? [a.y, b.y] : [b.y, a.y]
      for (let y = lo; y <= hi; y++) mark(a.x, y, (y < hi ? S : 0) | (y > lo ? N : 0))
    }
  }
}

function joinStyled(row: Cellx[], c: ChalkInstance): string {
  let out = ''
  let run = ''
  let style: Style | undefined
  const flush = () => {
    if (run) out += paint(run, style, c)
    run = ''
  }
  for (const cell of row) {
    if (cell.style !== style) {
      flush()
      style = cell.style
    }
    run += cell.ch
  }
  flush()
  return out.replace(/\s+$/, '')
}

function trimBlank(lines: string[]): string[] {
  let a = 0
  let b = lines.length
  while (a < b && lines[a].trim() === '') a++
  while (b > a && lines[b - 1].trim() === '') b--
  return lines.slice(a, b)
}

function pad(lines: string[], height: number, natural: boolean): string[] {
  if (natural) return lines
  const out = lines.slice(0, height)
  while (out.length < height) out.push('')
  return out
}
