import {readFile} from 'node:fs/promises'
import path from 'node:path'
import {Flags} from '@oclif/core'
import chalk from 'chalk'
import {durationFlag, MeshCommand} from '../cli/mesh-command.js'
import {type FitReport, fitFromRunningMesh} from '../cli/sim-fit.js'
import {finishRun, outputOptions, runSweepFlags, simOutputFlags} from '../cli/sim-output.js'
import {renderSimReport, renderSweepReport} from '../cli/sim-report.js'
import {ConfigError} from '../sim/config/config-error.js'
import {loadConfigWithWarnings} from '../sim/config/load-config.js'
import type {MeshConfig} from '../sim/config/types.js'
import {ExitCode, MeshError} from '../sim/errors.js'
import {type ChaosScenario, parseScenario} from '../sim/faults/chaos-scenario.js'
import {ARRIVALS, type LoadShape, type ShapeRequest, shapeOf} from '../sim/load/arrival-schedule.js'
import {withInstancesNeeded} from '../sim/virtual/capacity-needs.js'
import type {SimResult} from '../sim/virtual/sim-result.js'
import {runSimulation} from '../sim/virtual/simulation.js'
import type {SweepResult} from '../sim/virtual/sweep.js'

export default class Sim extends MeshCommand {
  static override description = `Run the mesh in virtual time: the same mesh.yaml, the data plane's own policy code (balancers, retries and budgets, timeouts, outlier detection, circuit breakers, rate limits, faults) over a virtual clock with no sockets, every service a model (its simulate:, or the simulate: written beside a command:). Minutes of traffic in seconds, the same answer for the same --seed.

Load enters at the ingress (path /; without an ingress, at the first service), with the flags of \`mesh load\`. A chaos scenario (\`mesh chaos\`'s file) plays on the virtual timeline, its load replacing the flags'; exit 4 when one of its expectations does not hold.

--vary KEY=V1,V2 (repeatable) runs the grid of every combination, each cell its own run with the same seed, and prints one row per cell of the --metrics asked for.`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> sim --rps 500 --duration 1m',
    '<%= config.bin %> sim --ramp 0:2000/30s --rps 2000 --duration 1m --arrivals poisson --seed 7',
    '<%= config.bin %> sim --scenario chaos.yaml --json',
    '<%= config.bin %> sim --rps 2000 --vary services.catalog.replicas=2,3,4 --metrics p99,catalog.utilisation',
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
    ...simOutputFlags,
    fit: Flags.boolean({description: "fit each command: service's model (latency, errors, calls) from the running mesh's traces and print its simulate: block", exclusive: ['rps', 'ramp', 'scenario', 'vary']}),
    out: Flags.string({description: 'with --fit: write mesh.yaml with the fitted simulate: blocks beside the commands to this file (mesh.yaml itself: in place)', dependsOn: ['fit']}),
  }

  async run(): Promise<SimResult | SweepResult | FitReport> {
    const {flags} = await this.parse(Sim)
    const file = path.resolve(flags.file)
    if (flags.fit) {
      return fitFromRunningMesh(this.connect(flags.file), {file, out: flags.out, json: this.jsonEnabled(), colour: chalk.level > 0, log: (text) => this.log(text)})
    }
    const {config, warnings} = await loadConfigWithWarnings(file)
    this.warnUnsetVariables(warnings)
    const scenario = flags.scenario === undefined ? undefined : await readScenario(flags.scenario, config)
    const load = loadRequest(flags)
    if (flags.vary !== undefined) return this.sweep(file, load, scenario, flags)

    const {options, traces} = outputOptions(flags)
    let raw: SimResult
    try {
      raw = await runSimulation(config, {shape: scenario?.load?.shape ?? shapeFor(load), seed: flags.seed, scenario, hopLatencyMs: flags['hop-latency'], ...options})
    } catch (error) {
      traces?.close()
      throw error
    }
    raw.unstable = withInstancesNeeded(config, raw.unstable)
    const result = await finishRun(raw, flags, traces, (line) => this.logToStderr(line))
    const failed = result.expectations?.some((e) => !e.passed) ?? false
    if (this.jsonEnabled()) {
      // The result is the output whatever the verdict; the exit code carries it.
      if (failed) process.exitCode = ExitCode.rolledBack
      return result
    }
    this.log(renderSimReport(result, {colour: chalk.level > 0, width: flags.width ?? process.stdout.columns ?? 100}).trimEnd())
    if (failed) this.exit(ExitCode.rolledBack)
    return result
  }

  /**
   * `--vary`: every cell run, one table (or the sweep's JSON). With a scenario, exit 4 when no
   * cell kept all its expectations: a sweep asks which values do, and failing cells are part
   * of the answer (the capacity plan's too few replicas).
   */
  private async sweep(file: string, load: ShapeRequest, scenario: ChaosScenario | undefined, flags: Parameters<typeof runSweepFlags>[0] & {seed: number; 'hop-latency'?: number}): Promise<SweepResult> {
    const one = flags.traces !== undefined ? '--traces' : flags.series !== undefined ? '--series' : undefined
    if (one) {
      throw new MeshError('MESH_BAD_FLAG', `${one} writes the file of one run, and --vary runs many.`, {
        hints: [`Drop --vary, and run the cell you want with its values written in mesh.yaml (or drop ${one}).`],
      })
    }
    const live = !this.jsonEnabled() && process.stderr.isTTY === true
    let sweep: SweepResult
    try {
      sweep = await runSweepFlags(
        flags,
        {file, source: await readFile(file, 'utf8'), load, options: {seed: flags.seed, scenario, seriesStepMs: flags.step, hopLatencyMs: flags['hop-latency']}},
        live ? (line) => process.stderr.write(`\r\x1b[K${line}`) : undefined,
      )
    } finally {
      if (live) process.stderr.write('\r\x1b[K')
    }
    const failed = scenario?.expect.length ? sweep.cells.every((cell) => cell.result.expectations?.some((e) => !e.passed)) : false
    if (this.jsonEnabled()) {
      if (failed) process.exitCode = ExitCode.rolledBack
      return sweep
    }
    this.log(renderSweepReport(sweep, {colour: chalk.level > 0}).trimEnd())
    if (failed) this.exit(ExitCode.rolledBack)
    return sweep
  }
}

/** The load the flags ask for, as a sweep's cells vary it (load.rps, load.duration, load.arrivals). */
function loadRequest(flags: {rps?: string; duration?: number; after?: number; ramp?: string[]; arrivals: string}): ShapeRequest {
  const rps = flags.rps === undefined ? (flags.ramp ? undefined : 100) : Number(flags.rps)
  if (rps !== undefined && (!(rps > 0) || !Number.isFinite(rps))) throw badLoad(`--rps "${flags.rps}" is not a positive number.`, 'Example: --rps 500')
  const durationMs = rps === undefined ? flags.duration : (flags.duration ?? 10_000)
  if (rps === undefined && durationMs !== undefined) throw badLoad('--duration needs --rps: the rate to hold after the ramps.', 'Example: --ramp 0:200/30s --rps 200 --duration 1m')
  const request: ShapeRequest = {afterMs: flags.after, ramps: flags.ramp, rps, durationMs, arrivals: flags.arrivals as ShapeRequest['arrivals']}
  shapeFor(request)
  return request
}

function shapeFor(request: ShapeRequest): LoadShape {
  const shape = shapeOf(request)
  if (typeof shape === 'string') throw badLoad(`${request.ramps?.some((r) => shape.startsWith(`"${r}"`)) ? '--ramp ' : ''}${shape}.`, 'Examples: --rps 200 --duration 5s, --ramp 0:200/30s')
  return shape
}

function badLoad(message: string, hint: string): MeshError {
  return new MeshError('MESH_BAD_FLAG', message, {hints: [hint]})
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
