// `mesh sim`'s report: the per-service tables `mesh stat` prints (same columns, same
// formatting and colours), what only a simulation can say (queueing vs service time,
// utilisation, an unstable system), errors by cause, and the run over virtual time as one
// sparkline per service and metric.
//
//   frontend   ▁▂▄▆████████▆▄▂▁   0 … 502/s
import {Chalk, type ChalkInstance} from 'chalk'
import {formatDuration} from '../sim/config/duration.js'
import {formatLatency} from '../sim/telemetry/waterfall.js'
import {formatRps, successStyle} from '../sim/ui/snapshot.js'
import type {UnstableService} from '../sim/virtual/capacity-needs.js'
import type {SimPoint, SimResult, SimServiceStats} from '../sim/virtual/sim-result.js'
import {describeGrid, metricKind, type SweepResult} from '../sim/virtual/sweep.js'
import {renderTable, visibleLength} from './table.js'

export interface SimReportOptions {
  colour: boolean
  /** Columns to fill (the sparklines take what the names and ranges leave). */
  width: number
}

const BARS = '▁▂▃▄▅▆▇█'

/**
 * One character per value, scaled from 0 (or `min`) to `max`: zero-based, so a flat line at
 * 500 req/s does not look like noise. `undefined` (nothing happened in that step) is a space.
 */
export function sparkline(values: ReadonlyArray<number | undefined>, scale: {min?: number; max?: number} = {}): string {
  const defined = values.filter((v): v is number => v !== undefined && Number.isFinite(v))
  const min = scale.min ?? 0
  const max = scale.max ?? Math.max(min, ...defined)
  let out = ''
  for (const v of values) {
    if (v === undefined || !Number.isFinite(v)) out += ' '
    else if (max <= min) out += v > 0 ? BARS[BARS.length - 1] : BARS[0]
    else out += BARS[Math.max(0, Math.min(BARS.length - 1, Math.round(((v - min) / (max - min)) * (BARS.length - 1))))]
  }
  return out
}

type Fold = 'mean' | 'max' | 'min'

/**
 * `values` folded `perColumn` steps to a column (a 10-minute run has 600 steps; a terminal
 * ~60 cells for them), keeping the mean, the trough or the peak of the steps it covers.
 */
export function downsample(values: ReadonlyArray<number | undefined>, perColumn: number, fold: Fold): Array<number | undefined> {
  const k = Math.max(1, Math.floor(perColumn))
  if (k === 1) return values.slice()
  const out: Array<number | undefined> = []
  for (let from = 0; from < values.length; from += k) {
    let acc: number | undefined
    let count = 0
    for (let i = from; i < Math.min(values.length, from + k); i++) {
      const v = values[i]
      if (v === undefined || !Number.isFinite(v)) continue
      count++
      acc = acc === undefined ? v : fold === 'max' ? Math.max(acc, v) : fold === 'min' ? Math.min(acc, v) : acc + v
    }
    out.push(acc === undefined ? undefined : fold === 'mean' ? acc / count : acc)
  }
  return out
}

/** Each service's points in time order, services in the order of the result's table. */
export function seriesByService(result: Pick<SimResult, 'services' | 'series'>): Map<string, SimPoint[]> {
  const out = new Map<string, SimPoint[]>()
  for (const s of result.services) out.set(s.service, [])
  for (const p of result.series) {
    let points = out.get(p.service)
    if (!points) out.set(p.service, (points = []))
    points.push(p)
  }
  for (const points of out.values()) points.sort((a, b) => a.atMs - b.atMs)
  return out
}

const count = (n: number) => Math.round(n).toLocaleString('en-US')
const percent = (ratio: number) => `${(ratio * 100).toFixed(2)}%`

export function renderSimReport(result: SimResult, opts: SimReportOptions): string {
  const c = new Chalk({level: opts.colour ? 1 : 0})
  const sections = [
    renderHeadline(result),
    ...(result.unstable.length ? [renderUnstable(result, c)] : []),
    renderServiceTable(result, c),
    renderResilienceTable(result, c),
    renderErrors(result, c),
    renderSeriesCharts(result, c, opts.width),
    ...(result.scaling?.length ? [renderScaling(result.scaling)] : []),
    ...(result.expectations?.length ? [renderExpectations(result, c)] : []),
  ]
  return `${sections.filter((s) => s !== '').join('\n\n')}\n`
}

function renderHeadline(r: SimResult): string {
  return `Simulated ${formatDuration(r.durationMs)} of virtual time (seed ${r.seed}): ${count(r.ingressRequests)} ingress requests, ${count(r.hopRequests)} hops through a sidecar into a service.`
}

/** Arrivals above capacity: the queue only grows, so every latency is the run's length talking. */
function renderUnstable(r: SimResult, c: ChalkInstance): string {
  const list = r.unstable.map((u: UnstableService) => `${u.service} (utilisation ${percent(u.utilisation)}${needs(u, 'long')})`).join(', ')
  return c.red(
    `Unstable: requests arrive faster than ${r.unstable.length === 1 ? 'this service' : 'these services'} can serve them: ${list}. ` +
      `${r.unstable.length === 1 ? 'Its queue grows' : 'Their queues grow'} for as long as the run lasts, so ${r.unstable.length === 1 ? 'its latencies measure' : 'their latencies measure'} the run's length, not a steady state. ` +
      'Add replicas or concurrency, make the service faster, or send less load.',
  )
}

/** What a service found unstable needs (capacity-needs.ts): ', 1 instance: needs at least 2' or ' (needs ≥ 2)'. */
function needs(u: UnstableService, form: 'long' | 'short'): string {
  if (u.needs === undefined) return ''
  if (form === 'short') return ` (needs ≥ ${u.needs})`
  return `, ${u.instances} instance${u.instances === 1 ? '' : 's'}: needs at least ${u.needs} at this load`
}

/** The golden metrics, as `mesh stat` shows them, plus the mean and p99.9 a simulation can afford. */
function renderServiceTable(r: SimResult, c: ChalkInstance): string {
  const seconds = r.durationMs / 1000
  const rate = (ratio: number, n: number) => (n > 0 ? c[successStyle(ratio)](percent(ratio)) : '-')
  const rows = r.services.map((s) => [
    s.service,
    count(s.requests),
    formatRps(seconds > 0 ? s.requests / seconds : 0),
    rate(s.successRate, s.requests),
    rate(s.actualSuccessRate, s.actualRequests || s.requests),
    formatLatency(s.meanMs),
    formatLatency(s.p50),
    formatLatency(s.p95),
    formatLatency(s.p99),
    formatLatency(s.p999),
  ])
  return renderTable(['NAME', 'REQUESTS', 'RPS', 'SUCCESS', 'ACTUAL', 'MEAN', 'P50', 'P95', 'P99', 'P99.9'], rows)
}

/** What the policies did, and where the time went: waiting for a slot or being served. */
function renderResilienceTable(r: SimResult, c: ChalkInstance): string {
  const n = (v: number) => (v > 0 ? count(v) : c.dim('0'))
  // Red where the engine found arrivals above capacity. Without a concurrency limit there are
  // no slots to fill: the figure would be requests in flight per replica, which may pass
  // 100% and mean nothing bad, so the column says so instead.
  const unstable = new Set(r.unstable.map((u) => u.service))
  const utilisation = (s: SimServiceStats) => (s.slots === 0 ? c.dim('no limit') : unstable.has(s.service) ? c.red(percent(s.utilisation)) : percent(s.utilisation))
  const rows = r.services.map((s) => [
    s.service,
    count(s.actualRequests),
    n(s.retries),
    n(s.retriesBudgetDenied),
    n(s.ejections),
    n(s.breakerRefusals),
    n(s.rateLimited),
    formatLatency(s.queueMsMean),
    formatLatency(s.serviceMsMean),
    utilisation(s),
  ])
  return renderTable(['NAME', 'ATTEMPTS', 'RETRIES', 'BUDGET-DENIED', 'EJECTIONS', 'BREAKER', 'RATE-LIMITED', 'QUEUE', 'SERVICE', 'UTILISATION'], rows)
}

function renderErrors(r: SimResult, c: ChalkInstance): string {
  const causes = Object.entries(r.errorsByCause)
    .filter(([, n]) => n > 0)
    .sort(([a, x], [b, y]) => y - x || (a < b ? -1 : 1))
  if (causes.length === 0) return c.green('No failed calls.')
  const total = causes.reduce((sum, [, n]) => sum + n, 0)
  return `Failed calls by cause (${count(total)}): ${causes.map(([cause, n]) => `${c.red(cause)} ${count(n)}`).join(', ')}  ${c.dim('(response flags: docs/policies.md)')}`
}

interface Chart {
  title: string
  fold: Fold
  value: (p: SimPoint) => number | undefined
  scale?: {min?: number; max?: number}
  format: (v: number) => string
  /** Colour of one column by its value, where a threshold means something (success). */
  colourOf?: (v: number) => ReturnType<typeof successStyle>
  /** Said instead of flat lines when every value is 0. */
  whenNone?: string
  /** Only the services with a value (the chart is left out when none has one). */
  onlyDefined?: boolean
}

const CHARTS: Chart[] = [
  {title: 'Throughput (requests/s)', fold: 'mean', value: (p) => p.rps, format: (v) => `${formatRps(v)}/s`},
  {
    title: 'Success (effective)',
    fold: 'min',
    // A step with no request has no success rate: a gap, not a 0% or a 100%.
    value: (p) => (p.rps > 0 ? p.successRate : undefined),
    scale: {min: 0, max: 1},
    format: percent,
    colourOf: (v) => successStyle(v),
  },
  {title: 'P99 latency', fold: 'max', value: (p) => (p.rps > 0 ? p.p99 : undefined), format: formatLatency},
  {
    title: 'Queue depth (attempts waiting for a slot, at each step\'s end)',
    fold: 'max',
    value: (p) => p.queueDepth,
    format: (v) => count(v),
    whenNone: 'no attempt waited for a slot',
  },
  {title: 'Instances (ready, at each step\'s end; services with scaling:)', fold: 'max', value: (p) => p.instances, scale: {min: 0}, format: (v) => count(v), onlyDefined: true},
]

/** One block per metric, one sparkline per service, its range beside it. */
function renderSeriesCharts(r: SimResult, c: ChalkInstance, width: number): string {
  const byService = seriesByService(r)
  const steps = Math.max(0, ...[...byService.values()].map((p) => p.length))
  if (steps === 0) return ''
  const names = [...byService.keys()]
  const nameWidth = Math.max(...names.map((n) => n.length))
  // name, two gaps, the sparkline, two gaps, a range such as "12.3ms … 1.25s" (~20).
  const room = Math.max(10, Math.floor(width) - nameWidth - 4 - 22)
  // Whole steps per column, so every column covers the same stretch of virtual time.
  const perColumn = Math.ceil(steps / room)
  const columns = Math.ceil(steps / perColumn)
  const stepMs = stepOf(byService)
  const blocks: string[] = [
    c.dim(
      `Over virtual time: ${formatDuration(r.durationMs)}, one column = ${formatDuration(perColumn * stepMs)}` +
        (perColumn > 1 ? ' (mean throughput, lowest success, highest p99 and queue of the steps it covers)' : ''),
    ),
  ]
  for (const chart of CHARTS) {
    const lines = [c.bold(chart.title)]
    const rows = names
      .map((name) => {
        const values = downsample((byService.get(name) ?? []).map(chart.value), perColumn, chart.fold)
        return {name, values}
      })
      .filter((row) => !chart.onlyDefined || row.values.some((v) => v !== undefined))
    if (rows.length === 0) continue
    if (chart.whenNone && rows.every((row) => row.values.every((v) => v === undefined || v === 0))) {
      lines.push(c.dim(`  ${chart.whenNone}`))
      blocks.push(lines.join('\n'))
      continue
    }
    for (const {name, values} of rows) {
      const line = sparkline(values, chart.scale)
      const coloured = chart.colourOf ? [...line].map((ch, i) => (values[i] === undefined ? ch : c[chart.colourOf!(values[i]!)](ch))).join('') : line
      const defined = values.filter((v): v is number => v !== undefined)
      const range = defined.length ? `${chart.format(Math.min(...defined))} … ${chart.format(Math.max(...defined))}` : c.dim('no requests')
      lines.push(`  ${name.padEnd(nameWidth)}  ${coloured}${' '.repeat(Math.max(0, columns - visibleLength(line)))}  ${range}`)
    }
    blocks.push(lines.join('\n'))
  }
  return blocks.join('\n')
}

/** The series' step: the smallest gap between a service's points (1 s by default). */
function stepOf(byService: Map<string, SimPoint[]>): number {
  let step = Infinity
  for (const points of byService.values()) for (let i = 1; i < points.length; i++) step = Math.min(step, points[i].atMs - points[i - 1].atMs)
  return Number.isFinite(step) && step > 0 ? step : 1000
}

/** The autoscaler's decisions, as `mesh top`'s event log shows them, at their virtual time. */
function renderScaling(events: NonNullable<SimResult['scaling']>): string {
  const shown = events.slice(0, SCALING_EVENTS_SHOWN)
  const lines = ['Scaling']
  for (const e of shown) lines.push(`  ${formatDuration(Math.round(e.atMs))}  ${e.service} ${e.message}`)
  if (events.length > shown.length) lines.push(`  … ${events.length - shown.length} more (--json lists them all)`)
  return lines.join('\n')
}

const SCALING_EVENTS_SHOWN = 20

/** As `mesh chaos` reports them: each expectation, held or not, with what was measured. */
function renderExpectations(r: SimResult, c: ChalkInstance): string {
  const all = r.expectations ?? []
  const lines = ['Expectations']
  for (const e of all) {
    const where = e.phase === 'overall' ? 'whole run' : `phase ${e.phase}`
    lines.push(`  ${e.passed ? c.green('✔') : c.red('✘')} ${e.text} (${where}): ${formatActual(e.actual)}`)
  }
  const failed = all.filter((e) => !e.passed).length
  lines.push(failed === 0 ? c.green(`All ${all.length} expectations held.`) : c.red(`${failed} of ${all.length} expectations failed.`))
  return lines.join('\n')
}

function formatActual(v: number): string {
  return Number.isInteger(v) ? String(v) : String(Math.round(v * 1000) / 1000)
}

/** A sweep: one row per cell, its varied values then the metrics asked for, as the single-run tables format them. */
export function renderSweepReport(sweep: SweepResult, opts: Pick<SimReportOptions, 'colour'>): string {
  const c = new Chalk({level: opts.colour ? 1 : 0})
  const keys = sweep.vary.map((a) => a.key)
  const unstable = sweep.cells.some((cell) => cell.unstable.length > 0)
  const cellText = (label: string, v: number | null) => {
    if (v === null) return '-'
    const kind = metricKind(label.slice(label.lastIndexOf('.') + 1))
    if (kind === 'ms') return formatLatency(v)
    if (kind === 'ratio') return label.endsWith('utilisation') ? percent(v) : c[successStyle(v)](percent(v))
    return count(v)
  }
  // A scenario's verdict per cell: which values keep its expectations is often the question.
  const judged = sweep.cells.some((cell) => cell.result.expectations?.length)
  const verdict = (e: SimResult['expectations']) => {
    const failed = (e ?? []).filter((x) => !x.passed).length
    return failed === 0 ? c.green(`${e?.length ?? 0} held`) : c.red(`${failed} of ${e!.length} failed`)
  }
  const rows = sweep.cells.map((cell) => [
    ...keys.map((k) => cell.values[k] ?? ''),
    ...sweep.metrics.map((m) => cellText(m, cell.metrics[m] ?? null)),
    ...(judged ? [verdict(cell.result.expectations)] : []),
    ...(unstable ? [cell.unstable.length ? c.red(cell.unstable.map((u) => `${u.service} ${percent(u.utilisation)}${needs(u, 'short')}`).join(', ')) : ''] : []),
  ])
  const head = [...keys, ...sweep.metrics, ...(judged ? ['EXPECTATIONS'] : []), ...(unstable ? ['UNSTABLE (utilisation)'] : [])]
  const first = sweep.cells[0]?.result
  const lines = [
    `Sweep of ${describeGrid(sweep.vary)}, seed ${sweep.seed}${first ? `, ${formatDuration(first.durationMs)} of virtual time each` : ''}:`,
    '',
    renderTable(head, rows),
  ]
  if (judged) {
    // The grid's answer: the first cell (the keys' values in the order given) that kept them all.
    const held = sweep.cells.filter((cell) => !cell.result.expectations?.some((e) => !e.passed))
    const values = (cell: SweepResult['cells'][number]) => keys.map((k) => `${k}=${cell.values[k]}`).join(' ')
    lines.push(
      '',
      held.length === 0
        ? c.red(`No cell kept every expectation of the scenario.`)
        : c.green(`Every expectation held in ${held.length} of ${sweep.cells.length} cells; the first: ${values(held[0])}`),
    )
  }
  if (unstable) {
    lines.push('', c.red('A cell marked unstable had a service whose arrivals exceeded its capacity: its latencies measure the run\'s length, not a steady state.'))
  }
  return `${lines.join('\n')}\n`
}
