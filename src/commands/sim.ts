import {readFile} from 'node:fs/promises'
import path from 'node:path'
import {Flags} from '@oclif/core'
import chalk from 'chalk'
import {durationFlag, MeshCommand} from '../cli/mesh-command.js'
import {renderSimReport} from '../cli/sim-report.js'
import {ConfigError} from '../sim/config/config-error.js'
import {loadConfigWithWarnings} from '../sim/config/load-config.js'
import type {MeshConfig} from '../sim/config/types.js'
import {ExitCode, MeshError} from '../sim/errors.js'
import {type ChaosScenario, parseScenario} from '../sim/faults/chaos-scenario.js'
import {ARRIVALS, type LoadShape, shapeOf} from '../sim/load/arrival-schedule.js'
import type {SimResult} from '../sim/virtual/sim-result.js'
import {runSimulation} from '../sim/virtual/simulation.js'
import {writeSeries} from '../sim/virtual/series-file.js'
import {stableResult} from '../sim/virtual/stable-json.js'
import {TraceFileWriter} from '../sim/virtual/trace-file.js'

export default class Sim extends MeshCommand {
  static override description = `Run the mesh in virtual time: the same mesh.yaml, the data plane's own policy code (balancers, retries and budgets, timeouts, outlier detection, circuit breakers, rate limits, faults) over a virtual clock with no sockets, every service a model (its simulate:, or the simulate: written beside a command:). Minutes of traffic in seconds, the same answer for the same --seed.

Load enters at the ingress (path /; without an ingress, at the first service), with the flags of \`mesh load\`. A chaos scenario (\`mesh chaos\`'s file) plays on the virtual timeline, its load replacing the flags'; exit 4 when one of its expectations does not hold.`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> sim --rps 500 --duration 1m',
    '<%= config.bin %> sim --ramp 0:2000/30s --rps 2000 --duration 1m --arrivals poisson --seed 7',
    '<%= config.bin %> sim --scenario chaos.yaml --json',
  ]
  static override flags = {
    rps: Flags.string({description: 'requests per second at the ingress, held for --duration (default 100 when no --ramp)'}),
    duration: durationFlag({description: 'virtual time to hold --rps (default 10s)', examples: '10s, 10m', atLeast: 'positive'}),
    after: durationFlag({description: 'stay idle this long first, then send', examples: '10s, 1m'}),
    ramp: Flags.string({multiple: true, description: 'FROM:TO/DURATION: the rate moving linearly, e.g. 0:200/30s (repeatable; played in order, before --rps)'}),
    arrivals: Flags.string({options: [...ARRIVALS], default: 'uniform', description: 'uniform: evenly spaced; poisson: exponential gaps of mean 1/rate'}),
    scenario: Flags.string({description: 'a chaos scenario (mesh chaos) to play on the virtual timeline; its load replaces --rps/--ramp'}),
    'hop-latency': durationFlag({description: 'added to every attempt: what one hop through a running mesh (sidecars, loopback) takes; default 0', examples: '0.5ms, 1ms'}),
    seed: Flags.integer({default: 1, description: 'every dice roll of the run comes from it: the same seed, the same result'}),
    traces: Flags.string({description: 'write sampled requests\' spans to this file (read it with mesh trace --traces FILE ID)'}),
    'trace-every': Flags.integer({min: 1, default: 100, description: 'with --traces: keep one request in this many'}),
    series: Flags.string({description: 'write the time series (per service, per second of virtual time) to this file: CSV, or JSON for a .json name'}),
  }

  async run(): Promise<SimResult> {
    const {flags} = await this.parse(Sim)
    const {config, warnings} = await loadConfigWithWarnings(path.resolve(flags.file))
    this.warnUnsetVariables(warnings)
    const scenario = flags.scenario === undefined ? undefined : await readScenario(flags.scenario, config)
    const shape = scenario?.load?.shape ?? loadShape(flags)
    const traces = flags.traces === undefined ? undefined : new TraceFileWriter(path.resolve(flags.traces))
    let raw: SimResult
    try {
      raw = await runSimulation(config, {shape, seed: flags.seed, scenario, hopLatencyMs: flags['hop-latency'], traceSampleEvery: traces ? flags['trace-every'] : 0, onSpan: traces?.record})
    } finally {
      traces?.close()
    }
    const result = stableResult(raw)
    if (flags.series !== undefined) await writeSeries(path.resolve(flags.series), result.series)
    const failed = result.expectations?.some((e) => !e.passed) ?? false
    if (this.jsonEnabled()) {
      // The result is the output whatever the verdict; the exit code carries it.
      if (failed) process.exitCode = ExitCode.rolledBack
      return result
    }
    this.log(renderSimReport(result, {colour: chalk.level > 0, width: process.stdout.columns ?? 100}).trimEnd())
    if (failed) this.exit(ExitCode.rolledBack)
    return result
  }
}

function loadShape(flags: {rps?: string; duration?: number; after?: number; ramp?: string[]; arrivals: string}): LoadShape {
  const bad = (message: string, hint: string) => new MeshError('MESH_BAD_FLAG', message, {hints: [hint]})
  const rps = flags.rps === undefined ? (flags.ramp ? undefined : 100) : Number(flags.rps)
  if (rps !== undefined && (!(rps > 0) || !Number.isFinite(rps))) throw bad(`--rps "${flags.rps}" is not a positive number.`, 'Example: --rps 500')
  const durationMs = rps === undefined ? flags.duration : (flags.duration ?? 10_000)
  if (rps === undefined && durationMs !== undefined) throw bad('--duration needs --rps: the rate to hold after the ramps.', 'Example: --ramp 0:200/30s --rps 200 --duration 1m')
  const shape = shapeOf({afterMs: flags.after, ramps: flags.ramp, rps, durationMs, arrivals: flags.arrivals as 'uniform' | 'poisson'})
  if (typeof shape === 'string') throw bad(`${flags.ramp?.some((r) => shape.startsWith(`"${r}"`)) ? '--ramp ' : ''}${shape}.`, 'Examples: --rps 200 --duration 5s, --ramp 0:200/30s')
  return shape
}

/** The scenario with its services checked against mesh.yaml's (there is no running mesh to ask). */
async function readScenario(file: string, config: MeshConfig): Promise<ChaosScenario> {
  let source: string
  try {
    source = await readFile(path.resolve(file), 'utf8')
  } catch (error) {
    throw new MeshError('MESH_BAD_FLAG', `cannot read the scenario ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, {
      cause: error,
      hints: ['Give the path of a scenario YAML file; `mesh chaos --help` shows its shape.'],
    })
  }
  const known = Object.fromEntries(config.services.map((s) => [s.name, s.versions.map((v) => v.name)]))
  const parsed = parseScenario(source, path.resolve(file), known)
  if (parsed.scenario) return parsed.scenario
  const error = new ConfigError(parsed.issues)
  Object.assign(error, {hints: ['Fix these in the scenario file; `mesh chaos --help` shows its shape.']})
  throw error
}
