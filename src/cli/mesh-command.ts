// The base of every `mesh` command: where mesh.yaml is, how to reach the daemon,
// and the one place library errors become CLI errors (message, hints, exit code).
import path from 'node:path'
import {Command, Flags} from '@oclif/core'
import chalk from 'chalk'
import {connect, type ControlClient} from '../sim/control/control-client.js'
import {type MeshPaths, meshPaths} from '../sim/control/state-file.js'
import {ExitCode, MeshError} from '../sim/errors.js'
import {ConfigError, formatIssue} from '../sim/config/config-error.js'
import type {ConfigIssue} from '../sim/config/types.js'
import {formatDuration, missingUnit, parseDuration} from '../sim/config/duration.js'

// NO_COLOR (https://no-color.org) wins over everything; chalk alone only checks the TTY.
if (process.env.NO_COLOR) chalk.level = 0

/** `-f FILE` everywhere except where `-f` means follow (`mesh logs -f`, as docker compose). */
export const fileFlag = (short = true) =>
  Flags.string({
    char: short ? 'f' : undefined,
    description: 'path to mesh.yaml',
    default: 'mesh.yaml',
    env: 'MESH_FILE',
  })

/**
 * A duration flag (`30s`, `1.5s`, `500ms`), parsed once by oclif into ms; a bad value is a
 * MESH_BAD_FLAG that names the flag and gives `examples`. `atLeast`: 'positive' refuses 0,
 * a number of ms anything shorter. `default` is written as the user would write it (help shows it so).
 */
export function durationFlag(opts: {description: string; examples: string; atLeast?: 'positive' | number; default?: string; required?: boolean}) {
  const {examples, atLeast} = opts
  const flag = Flags.custom<number>({
    description: opts.description,
    async parse(value, _context, {name}) {
      const ms = parseDuration(value)
      const tooShort = ms !== undefined && (atLeast === 'positive' ? ms <= 0 : atLeast !== undefined && ms < atLeast)
      if (ms !== undefined && !tooShort) return ms
      const what = atLeast === 'positive' ? 'a positive duration' : atLeast !== undefined ? `a duration of at least ${formatDuration(atLeast)}` : 'a duration'
      throw keepMessage(new MeshError('MESH_BAD_FLAG', `--${name} "${value}" is not ${what}${missingUnit(value)}.`, {hints: [`Examples: ${examples}`]}))
    },
  })
  const given = opts.default
  if (given === undefined) return opts.required ? flag({required: true}) : flag()
  // oclif does not parse a default: it is given parsed, and shown as written.
  return flag({default: parseDuration(given)!, defaultHelp: async () => given})
}

/**
 * oclif rewrites a flag parser's error message ("Parsing --flag ... See more help with
 * --help"); ours already names the flag and says what to write, so it stays as it is.
 */
function keepMessage(error: MeshError): MeshError {
  const message = error.message
  Object.defineProperty(error, 'message', {get: () => message, set: () => undefined})
  return error
}

/**
 * The exit code of every MeshError code (README's table, docs/cli.md): what the user asked
 * for was wrong, names nothing that exists, or is refused as things stand → 2; no mesh → 3;
 * the mesh itself failed → 1. test/cli/exit-codes.test.ts fails on a code thrown anywhere in
 * src/ that is not listed here, so a new one is a decision, not a default.
 */
export const EXIT_BY_CODE: Readonly<Record<string, number>> = {
  MESH_CONFIG_INVALID: ExitCode.badInput,
  MESH_CONFIG_NOT_FOUND: ExitCode.badInput,
  MESH_CONFIG_UNREADABLE: ExitCode.badInput,
  MESH_BAD_FLAG: ExitCode.badInput,
  MESH_FAULT_NOT_FOUND: ExitCode.badInput,
  MESH_SERVICE_NOT_FOUND: ExitCode.badInput,
  MESH_INSTANCE_NOT_FOUND: ExitCode.badInput,
  MESH_VERSION_NOT_FOUND: ExitCode.badInput,
  MESH_TRACE_NOT_FOUND: ExitCode.badInput,
  MESH_TRACE_AMBIGUOUS: ExitCode.badInput,
  MESH_TEMPLATE_NOT_FOUND: ExitCode.badInput,
  MESH_DEPLOY_NOT_FOUND: ExitCode.badInput,
  MESH_NO_LOGS: ExitCode.badInput,
  MESH_FILE_EXISTS: ExitCode.badInput,
  MESH_ALREADY_RUNNING: ExitCode.badInput,
  // Another command holds the mesh directory for a moment (cleanup, start, stop): refused as things stand.
  MESH_LOCKED: ExitCode.badInput,
  MESH_STARTING: ExitCode.badInput,
  MESH_STOPPING: ExitCode.badInput,
  MESH_DEPLOY_IN_PROGRESS: ExitCode.badInput,
  MESH_DEPLOY_NOTHING_TO_REPLACE: ExitCode.badInput,
  MESH_NOTHING_TO_ROLL_BACK: ExitCode.badInput,
  MESH_NOTHING_TO_RESTART: ExitCode.badInput,
  MESH_NOT_STARTED: ExitCode.badInput,
  MESH_NO_INSTANCE: ExitCode.badInput,
  MESH_NOT_RUNNING: ExitCode.notRunning,
  MESH_STARTUP_FAILED: ExitCode.failure,
  MESH_DAEMON_DIED: ExitCode.failure,
  MESH_DAEMON_UNREACHABLE: ExitCode.failure,
  MESH_CONTROL_ERROR: ExitCode.failure,
  MESH_PORT_IN_USE: ExitCode.failure,
  MESH_NO_FREE_PORT: ExitCode.failure,
  MESH_TEMPLATES_MISSING: ExitCode.failure,
  // mesh import wrote a mesh.yaml that mesh validate refuses: import's own bug, not the input's.
  MESH_IMPORT_FAILED: ExitCode.failure,
  MESH_PS_FAILED: ExitCode.failure,
  // The CA files in .mesh/ca are there but cannot be used: the user must fix or remove them.
  MESH_CA_INVALID: ExitCode.badInput,
  // `mesh ca` before any `mesh up` here: nothing to print yet.
  MESH_CA_NOT_FOUND: ExitCode.badInput,
  // Not the user's input: the mesh cannot run here at all (issue #26 says exit 1).
  MESH_UNSUPPORTED_PLATFORM: ExitCode.failure,
  // The control API's own refusals: a token or a CLI that does not match the daemon.
  MESH_UNAUTHORISED: ExitCode.failure,
  MESH_NOT_FOUND: ExitCode.failure,
  MESH_BAD_REQUEST: ExitCode.failure,
  MESH_INTERNAL: ExitCode.failure,
  // Thrown inside the daemon or a simulated service's process, never to the CLI as such.
  MESH_INSTANCE_ALREADY_STARTED: ExitCode.failure,
  MESH_INSTANCE_NOT_STOPPED: ExitCode.failure,
  MESH_BAD_ENV: ExitCode.failure,
}

export abstract class MeshCommand extends Command {
  /** Every command reads mesh.yaml, but for the few that set baseFlags to {} (init, schema). */
  static override baseFlags: {file?: ReturnType<typeof fileFlag>} = {file: fileFlag()}

  /** Where `.mesh/` lives for the mesh.yaml at `file`. */
  protected meshPaths(file: string): MeshPaths {
    return meshPaths(path.dirname(path.resolve(file)))
  }

  /** The seam tests replace: a client for the running mesh. */
  protected connect(file: string): ControlClient {
    return connect(this.meshPaths(file))
  }

  /** A client for the mesh running here, or none (`mesh up` starts one then). */
  protected running(file: string): ControlClient | undefined {
    try {
      return this.connect(file)
    } catch (error) {
      if (error instanceof MeshError && error.code === 'MESH_NOT_RUNNING') return undefined
      throw error
    }
  }

  /** On stderr, as compose warns of each variable it used without a value; the other warnings are `mesh validate`'s. */
  protected warnUnsetVariables(warnings: readonly ConfigIssue[]): void {
    for (const w of warnings) if (w.code === 'unset-variable') this.logToStderr(chalk.yellow(formatIssue(w)))
  }

  protected override async catch(error: Error & {exitCode?: number; oclif?: {exit?: number}}): Promise<unknown> {
    // oclif's own exits (help, parse errors) keep their behaviour.
    if (!(error instanceof MeshError)) return super.catch(error)
    const exit = EXIT_BY_CODE[error.code] ?? ExitCode.failure
    if (this.jsonEnabled()) {
      const body: Record<string, unknown> = {code: error.code, message: error.message}
      if (error instanceof ConfigError) body.issues = error.issues
      process.stdout.write(`${JSON.stringify({error: body}, null, 2)}\n`)
    } else {
      const lines =
        error instanceof ConfigError
          ? error.issues.map((i) => (i.severity === 'error' ? chalk.red(formatIssue(i)) : chalk.yellow(formatIssue(i))))
          : [`${chalk.red('Error:')} ${error.message}`]
      for (const hint of error.hints) lines.push(`  ${hint}`)
      process.stderr.write(`${lines.join('\n')}\n`)
    }
    this.exit(exit)
  }
}
