import {readFile} from 'node:fs/promises'
import path from 'node:path'
import {Args} from '@oclif/core'
import chalk, {Chalk} from 'chalk'
import {isUrlTarget, meshTarget, urlTarget} from '../cli/load-target.js'
import {MeshCommand} from '../cli/mesh-command.js'
import {renderTable} from '../cli/table.js'
import {ConfigError} from '../sim/config/config-error.js'
import {formatDuration} from '../sim/config/duration.js'
import type {ConfigIssue} from '../sim/config/types.js'
import {ExitCode, MeshError} from '../sim/errors.js'
import {describeShape} from '../sim/load/arrival-schedule.js'
import {type ChaosScenario, parseScenario} from '../sim/faults/chaos-scenario.js'
import {type ChaosReport, formatMetric, type PhaseReport, runChaos, type StepResult} from '../sim/faults/chaos-runner.js'
import {realClock} from '../sim/time/clock.js'

export default class Chaos extends MeshCommand {
  static override description = `Play a chaos scenario against the running mesh: inject and clear faults on a timeline, drive load while it plays, and report requests, errors by cause and latency per phase. Exit 0 when every expectation held, 4 when one did not (1 when a step could not be played), so it can gate CI.

SCENARIO.yaml:
  duration: 40s                                # how long the run lasts
  load: {target: ingress, path: /, rps: 100}   # optional: also method, headers, timeout (default 10s), concurrency
                                               # and a shape: after: 10s (idle first), ramp: 0:200/30s (or a list),
                                               # then rps to the end; arrivals: uniform | poisson, seed
  timeline:                                    # each step at a time from the start
    - at: 10s
      name: slow-payments                      # optional: name it to clear it or to name its phase
      inject: {service: payments, delay: 500ms, duration: 30s}
    - at: 20s
      inject: {service: cart, kill: 1}
    - at: 30s
      clear: slow-payments                     # a step's name, {service: NAME}, or all
  expect:                                      # needs load:
    - successRate >= 99%                       # over the whole run
    - {phase: 2, p99: <= 800ms}                # phase 2 = from 10s to 20s
    - {phase: slow-payments, expect: errorRate < 5%}

A fault in inject: takes the keys of \`mesh inject-fault\`'s flags in camelCase: service, version, delay, jitter, abort, reset, afterBytes, partition, blackhole, bandwidth, slowClose, kill, pause, cert, count, percent, first, from, header ({name: value}), path, duration, seed, at.
Phases: phase 1 runs from the start to the first step's time, each later step time starts the next one; a request belongs to the phase it was due in. A phase begins once its steps took effect (the mesh confirmed them): requests due in those few milliseconds count in the whole run only.
Metrics: successRate, errorRate (as 99% or 0.99), p50, p90, p95, p99, max, mean (durations), requests, errors (counts); operators >=, <=, >, <, ==. A value starting with > must be quoted in YAML, or written as expect: METRIC >= VALUE.
Every fault the run injected is cleared at its end.`
  static override enableJsonFlag = true
  static override examples = ['<%= config.bin %> chaos chaos.yaml', '<%= config.bin %> chaos scenarios/payments-slow.yaml --json']
  static override args = {scenario: Args.string({required: true, description: 'the scenario file (YAML)'})}

  async run(): Promise<ChaosReport> {
    const {args, flags} = await this.parse(Chaos)
    const file = path.resolve(args.scenario)
    let source: string
    try {
      source = await readFile(file, 'utf8')
    } catch (error) {
      throw new MeshError('MESH_BAD_FLAG', `cannot read the scenario ${args.scenario}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, {
        cause: error,
        hints: ['Give the path of a scenario YAML file; `mesh chaos --help` shows its shape.'],
      })
    }
    // The file's own problems first, without a mesh; then its names against the running mesh.
    check(parseScenario(source, file))
    const client = this.connect(flags.file)
    const status = await client.status()
    const known = Object.fromEntries(status.services.map((s) => [s.name, s.versions.map((v) => v.name)]))
    const scenario = check(parseScenario(source, file, known))
    const target = scenario.load
      ? isUrlTarget(scenario.load.target)
        ? urlTarget(scenario.load.target, scenario.load.path)
        : meshTarget(scenario.load.target, status, scenario.load.path)
      : undefined

    const quiet = this.jsonEnabled()
    if (!quiet) this.log(header(scenario, target ? `${target.origin}${target.path}` : undefined))
    const abort = new AbortController()
    const onSigint = () => abort.abort()
    process.once('SIGINT', onSigint)
    let report: ChaosReport
    try {
      report = await runChaos(scenario, {
        client,
        clock: realClock,
        target,
        signal: abort.signal,
        onStep: quiet ? undefined : (s) => this.log(stepLine(s, chalk.level > 0)),
      })
    } finally {
      process.off('SIGINT', onSigint)
    }
    if (quiet) {
      // The report is the JSON output whatever the verdict; the exit code carries the verdict.
      // (this.exit() under --json would print an error document after it.)
      if (!report.passed) process.exitCode = report.stepsOk ? ExitCode.rolledBack : ExitCode.failure
      return report
    }
    this.log(renderChaosReport(report, chalk.level > 0))
    if (!report.stepsOk) this.exit(ExitCode.failure)
    if (!report.passed) this.exit(ExitCode.rolledBack)
    return report
  }
}

/** Scenario problems, as mesh.yaml's: file:line:column path: message, exit 2. */
function check(parsed: {scenario?: ChaosScenario; issues: ConfigIssue[]}): ChaosScenario {
  if (parsed.scenario) return parsed.scenario
  const error = new ConfigError(parsed.issues)
  Object.assign(error, {hints: ['Fix these in the scenario file; `mesh chaos --help` shows its shape.']})
  throw error
}

function header(s: ChaosScenario, url: string | undefined): string {
  const load = s.load && url ? `, ${s.load.method} ${url}: ${describeShape(s.load.shape)}` : ', no load'
  return `Playing ${path.basename(s.file)}: ${formatDuration(s.durationMs)}${load}, ${s.timeline.length} step${s.timeline.length === 1 ? '' : 's'}…`
}

export function stepLine(s: StepResult, colour: boolean): string {
  const c = new Chalk({level: colour ? 1 : 0})
  const at = formatDuration(s.atMs).padStart(6)
  if (!s.ok) return `${at}  ${c.red('failed')} ${s.description}: ${s.error}`
  const what =
    s.action === 'inject'
      ? `${c.bold(s.faultId ?? '')} ${s.description}${s.instances?.length ? ` (${s.instances.join(', ')})` : ''}`
      : `${s.description}${s.removed?.length ? ` (removed ${s.removed.join(', ')})` : ' (nothing active)'}`
  return `${at}  ${what}`
}

export function renderChaosReport(r: ChaosReport, colour: boolean): string {
  const c = new Chalk({level: colour ? 1 : 0})
  const lines: string[] = []
  if (r.completed > 0 || r.sent > 0) {
    const row = (p: PhaseReport) => [
      p.index === 0 ? 'all' : String(p.index),
      `${formatDuration(Math.round(p.startMs))}–${formatDuration(Math.round(p.endMs))}`,
      p.index === 0 ? '' : p.label,
      String(p.requests),
      String(p.errors),
      p.requests ? formatMetric('successRate', p.successRate) : '-',
      p.requests ? formatMetric('p50', p.latency.p50) : '-',
      p.requests ? formatMetric('p99', p.latency.p99) : '-',
      causes(p.errorsByCause),
    ]
    lines.push(
      '',
      renderTable(['PHASE', 'TIME', 'BEGAN WITH', 'REQUESTS', 'ERRORS', 'SUCCESS', 'P50', 'P99', 'ERRORS BY CAUSE'], [...r.phases.map(row), row(r.overall)]),
      `${r.completed} requests completed of ${r.sent} sent.` +
        (r.dropped ? c.red(` ${r.dropped} were due while the load's ${r.concurrency} in flight (load.concurrency) were under way, and were not sent: the phases count only those sent.`) : '') +
        (r.transition ? ` ${r.transition} were due while a step was taking effect: they count in the whole run only.` : ''),
    )
  }
  if (r.aborted) lines.push(c.yellow('Stopped early (Ctrl-C): the numbers cover what ran.'))
  const failedSteps = r.steps.filter((s) => !s.ok)
  if (failedSteps.length) lines.push(c.red(`${failedSteps.length} step${failedSteps.length === 1 ? '' : 's'} failed; the run did not play as written.`))
  if (r.expectations.length) {
    lines.push('', 'expectations')
    for (const e of r.expectations) {
      const where = e.phase === 'overall' ? 'whole run' : `phase ${e.phase}`
      const measured = e.actual !== undefined ? `: ${formatMetric(metricOf(e.text), e.actual)}` : ''
      lines.push(e.held ? `  ${c.green('✓')} ${e.text} (${where})${measured}` : `  ${c.red('✗')} ${e.text} (${where}) — ${e.reason}`)
    }
    const failed = r.expectations.filter((e) => !e.held)
    lines.push(
      failed.length === 0
        ? c.green(`All ${r.expectations.length} expectations held.`)
        : c.red(`${failed.length} of ${r.expectations.length} expectations failed: ${failed.map((e) => `${e.text} (${e.phase === 'overall' ? 'whole run' : `phase ${e.phase}`})`).join('; ')}.`),
    )
  }
  return lines.join('\n')
}

function metricOf(text: string) {
  return text.split(/\s/)[0] as Parameters<typeof formatMetric>[0]
}

function causes(o: Record<string, number>): string {
  return (
    Object.entries(o)
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .map(([k, n]) => `${k} × ${n}`)
      .join(', ') || '-'
  )
}
