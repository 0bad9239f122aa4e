import {Flags} from '@oclif/core'
import chalk, {Chalk, type ChalkInstance} from 'chalk'
import {durationFlag, MeshCommand} from '../cli/mesh-command.js'
import {renderTable} from '../cli/table.js'
import {formatDuration, formatSize} from '../sim/config/duration.js'
import type {StatBy, StatRow} from '../sim/telemetry/metrics.js'
import type {TcpSeries} from '../sim/telemetry/tcp-metrics.js'
import {formatLatency} from '../sim/telemetry/waterfall.js'

export default class Stat extends MeshCommand {
  static override description =
    'Golden metrics over a sliding window, as `linkerd viz stat`: requests, rate, success (effective: what callers saw; actual: every attempt) and latency percentiles.'
  static override enableJsonFlag = true
  static override examples = ['<%= config.bin %> stat', '<%= config.bin %> stat --by instance --window 1m', '<%= config.bin %> stat --edges', '<%= config.bin %> stat --tcp']
  static override flags = {
    by: Flags.option({options: ['service', 'version', 'instance'] as const, default: 'service' as const, description: 'one row per'})(),
    edges: Flags.boolean({description: 'one row per caller → callee pair instead'}),
    window: durationFlag({default: '30s', description: 'how far back to look, e.g. 30s, 5m', examples: '30s, 5m, 1h', atLeast: 'positive'}),
    tcp: Flags.boolean({description: 'TCP connections instead (protocol: tcp services, WebSocket sessions): per caller and instance, since mesh up', exclusive: ['edges', 'by', 'window']}),
  }

  async run(): Promise<StatRow[] | TcpSeries[]> {
    const {flags} = await this.parse(Stat)
    if (flags.tcp) {
      const series = await this.connect(flags.file).tcp()
      if (!this.jsonEnabled()) this.log(renderTcpStat(series))
      return series
    }
    const windowMs = flags.window
    const by: StatBy = flags.edges ? 'edge' : flags.by
    const rows = await this.connect(flags.file).stat(by, windowMs)
    if (!this.jsonEnabled()) this.log(renderStat(rows, {by, windowMs, colour: chalk.level > 0}))
    return rows
  }
}

/** One row per caller → instance: connections open and opened, bytes each way (of closed ones). */
export function renderTcpStat(series: TcpSeries[]): string {
  if (series.length === 0) return 'No TCP connections yet: protocol: tcp services and WebSocket sessions show here.'
  const rows = series.map((s) => [
    `${s.edge.source} → ${s.edge.destination}`,
    s.edge.destinationInstance,
    String(s.opened - s.closed),
    String(s.opened),
    formatSize(s.receivedBytes),
    formatSize(s.sentBytes),
  ])
  return renderTable(['CALLER → SERVICE', 'INSTANCE', 'OPEN', 'OPENED', 'IN', 'OUT'], rows)
}

export interface StatRenderOptions {
  by: StatBy
  windowMs: number
  colour: boolean
}

/** Green at 99% and above, yellow from 95%, red below: Linkerd viz's thresholds. */
export function successColour(ratio: number, c: ChalkInstance): ChalkInstance {
  return ratio >= 0.99 ? c.green : ratio >= 0.95 ? c.yellow : c.red
}

export function renderStat(rows: StatRow[], opts: StatRenderOptions): string {
  if (rows.length === 0) {
    return `No requests in the last ${formatDuration(opts.windowMs)}. Send some with \`mesh load ingress --rps 50 --duration 10s\`.`
  }
  const c = new Chalk({level: opts.colour ? 1 : 0})
  const rate = (ratio: number, n: number) => (n > 0 ? successColour(ratio, c)(`${(ratio * 100).toFixed(2)}%`) : '-')
  const srcWidth = Math.max(3, ...rows.map((r) => (r.source ?? '?').length))
  const name = (r: StatRow) =>
    opts.by === 'edge' ? `${(r.source ?? '?').padEnd(srcWidth)} → ${r.destination ?? '?'}` : rowName(r, opts.by)
  // Only a mesh whose calls waited for cold starts gets their columns: scale to zero is the exception.
  const cold = rows.some((r) => (r.coldStarts ?? 0) > 0)
  const body = rows.map((r) => [
    name(r),
    String(r.requests),
    r.rps.toFixed(1),
    rate(r.successRate, r.requests),
    rate(r.actualSuccessRate, r.actualRequests || r.requests),
    formatLatency(r.p50),
    formatLatency(r.p95),
    formatLatency(r.p99),
    ...(cold ? coldCells(r, c) : []),
  ])
  const head = [opts.by === 'edge' ? `${'SRC'.padEnd(srcWidth)} → DST` : 'NAME', 'REQUESTS', 'RPS', 'SUCCESS', 'ACTUAL', 'P50', 'P95', 'P99']
  return renderTable(cold ? [...head, 'COLD', 'COLD@P99'] : head, body)
}

/** Cold starts in the window, and their share of the calls at or above p99 (docs/observability.md). */
function coldCells(r: StatRow, c: ChalkInstance): string[] {
  const n = r.coldStarts ?? 0
  if (n === 0) return ['0', '-']
  const share = `${Math.round((r.coldStartShareOfP99 ?? 0) * 100)}%`
  return [String(n), (r.coldStartShareOfP99 ?? 0) >= 0.5 ? c.yellow(share) : share]
}

function rowName(r: StatRow, by: StatBy): string {
  if (by === 'instance') return r.instance ?? `${r.service ?? '?'} (unknown instance)`
  if (by === 'version') return `${r.service ?? '?'} ${r.version ?? '-'}`
  return r.service ?? '?'
}
