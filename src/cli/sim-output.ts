// What `mesh sim` does with a run besides running it: the flags of its output (the series
// file, the traces file, the sweep), and the steps around runSimulation they take. The
// command (commands/sim.ts) parses, runs and calls these; the rendering is sim-report.ts.
import {Flags} from '@oclif/core'
import {durationFlag} from './mesh-command.js'
import {formatDuration} from '../sim/config/duration.js'
import {writeSeries} from '../sim/virtual/series-file.js'
import type {SimOptions, SimResult} from '../sim/virtual/sim-result.js'
import {stableResult} from '../sim/virtual/stable-json.js'
import {DEFAULT_METRICS, parseVary, describeGrid} from '../sim/virtual/sweep.js'
import {type SweepRequest, runSweep} from '../sim/virtual/sweep-run.js'
import type {SweepResult} from '../sim/virtual/sweep.js'
import {TraceFileWriter} from '../sim/virtual/trace-file.js'

/** One request in this many keeps its trace for --traces, unless --trace-every says otherwise. */
export const DEFAULT_TRACE_EVERY = 100

export const simOutputFlags = {
  series: Flags.string({description: 'write the time series (per service and step: throughput, success, p99, queue depth) to this file: CSV, or JSON when it ends in .json'}),
  step: durationFlag({description: 'one point of the series (and one step of the sparklines) per this much virtual time', examples: '1s, 10s, 1m', atLeast: 'positive', default: '1s'}),
  traces: Flags.string({description: 'write the spans of sampled requests to this file (one per line as JSON), for `mesh traces --traces FILE` and `mesh trace --traces FILE ID`'}),
  'trace-every': Flags.integer({description: `keep one request in N for --traces (default ${DEFAULT_TRACE_EVERY})`, min: 1, dependsOn: ['traces']}),
  vary: Flags.string({
    multiple: true,
    description: 'KEY=V1,V2,…: run once per value (repeatable: every combination) and compare; KEY a dotted path into mesh.yaml (services.payments.policy.retries.attempts) or load.rps, load.duration, load.arrivals',
  }),
  metrics: Flags.string({description: `the sweep table's columns, comma-separated: a service's figure (p99; payments.p99 for another than the entry), ingressRequests, hopRequests (default ${DEFAULT_METRICS.join(',')})`, dependsOn: ['vary']}),
  width: Flags.integer({description: 'columns to fill (default: the terminal width, or 100 when piped)', min: 40}),
}

export interface SimOutputFlags {
  series?: string
  step: number
  traces?: string
  'trace-every'?: number
  vary?: string[]
  metrics?: string
  width?: number
}

/** What the output flags add to a run's options, and the traces file they open (closed by finishRun). */
export function outputOptions(flags: SimOutputFlags): {options: Pick<SimOptions, 'seriesStepMs' | 'traceSampleEvery' | 'onSpan'>; traces?: TraceFileWriter} {
  const traces = flags.traces === undefined ? undefined : new TraceFileWriter(flags.traces)
  return {
    options: {
      seriesStepMs: flags.step,
      traceSampleEvery: traces ? (flags['trace-every'] ?? DEFAULT_TRACE_EVERY) : undefined,
      onSpan: traces?.record,
    },
    traces,
  }
}

/**
 * After a run: the series and traces files written, and lines saying where they are and
 * which trace to look at first (on stderr, so stdout stays the report or the JSON).
 */
export async function finishRun(result: SimResult, flags: SimOutputFlags, traces: TraceFileWriter | undefined, note: (line: string) => void): Promise<SimResult> {
  if (flags.series !== undefined) {
    await writeSeries(flags.series, result.series)
    note(`Wrote the series (${result.series.length} points, one per service per ${formatDuration(flags.step)}) to ${flags.series}.`)
  }
  if (traces) {
    traces.close()
    const file = traces.file
    note(`Wrote ${traces.traces} traces (${traces.spans} spans; one request in ${flags['trace-every'] ?? DEFAULT_TRACE_EVERY}) to ${file}. List them: mesh traces --traces ${file}`)
    if (traces.firstFailed) note(`  a failed one:  mesh trace --traces ${file} ${traces.firstFailed.traceId.slice(0, 12)} --why`)
    if (traces.slowest) note(`  the slowest:   mesh trace --traces ${file} ${traces.slowest.traceId.slice(0, 12)}`)
  }
  return stableResult(result)
}

/**
 * `--vary`: the sweep the flags ask for, run. `progress` is told where it is, one whole line
 * at a time (the command rewrites one terminal line with it).
 */
export async function runSweepFlags(
  flags: SimOutputFlags,
  request: Omit<SweepRequest, 'axes' | 'metrics' | 'onDone'>,
  progress?: (line: string) => void,
): Promise<SweepResult> {
  const axes = parseVary(flags.vary ?? [])
  const metrics = flags.metrics === undefined ? DEFAULT_METRICS : flags.metrics.split(',').map((m) => m.trim()).filter((m) => m !== '')
  const title = `Sweeping ${describeGrid(axes)}…`
  progress?.(title)
  return runSweep({...request, axes, metrics, onDone: progress && ((done, total) => progress(`${title} ${done}/${total} done`))})
}
