import {Flags} from '@oclif/core'
import chalk, {Chalk, type ColorSupportLevel} from 'chalk'
import {durationFlag, MeshCommand} from '../cli/mesh-command.js'
import {renderTapEvent} from '../cli/tap-line.js'
import type {ControlClient} from '../sim/control/control-client.js'
import {ExitCode} from '../sim/errors.js'
import {type AnyEvent, buildModel, renderFrame, type TopModel} from '../sim/ui/snapshot.js'

// Long enough to smooth a second's noise, short enough that an injected fault shows within a refresh or two.
const WINDOW_MS = 10_000
// Traces asked for per list (failed, slow), from the last TRACE_HORIZON_MS only.
const TRACE_SAMPLE = 500
const EVENTS_KEPT = 50
// "Recent" in the traces pane: older traces leave it even if they were the slowest.
const TRACE_HORIZON_MS = 60_000

export default class Top extends MeshCommand {
  static override description =
    'A live full-screen view of the mesh, as k9s or `linkerd viz top`: topology with rps and success on every edge, services, slow or failed traces, events; inject and clear faults from it.'
  static override examples = ['<%= config.bin %> top', '<%= config.bin %> top --once', '<%= config.bin %> top --interval 2s --no-color']
  static override flags = {
    once: Flags.boolean({description: 'print one frame as plain text and exit (for scripts, tests and bug reports)'}),
    'no-color': Flags.boolean({description: 'no colour (NO_COLOR does the same)'}),
    interval: durationFlag({default: '1s', description: 'how often to refresh, e.g. 500ms, 2s', examples: '500ms, 1s, 2s', atLeast: 100}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Top)
    const intervalMs = flags.interval
    if (!flags.once && !process.stdout.isTTY) {
      // A full-screen UI into a pipe or file is escape-code garbage: say what to use instead.
      this.logToStderr('mesh top draws a full screen and needs a terminal, but stdout is not one.')
      this.logToStderr('  For one plain-text frame: `mesh top --once`')
      this.logToStderr('  For metrics a script can read: `mesh stat --json`')
      this.exit(ExitCode.badInput)
    }
    const client = this.connect(flags.file)
    // The live screen colours what it draws itself; one frame on stdout follows chalk (a TTY, NO_COLOR).
    const colour = flags.once ? !flags['no-color'] && chalk.level > 0 : !flags['no-color'] && !process.env.NO_COLOR
    const source = controlSource(client, WINDOW_MS, colour)
    if (flags.once) {
      const model = await source.snapshot()
      // Piped, there is no terminal to ask: COLUMNS (as `ls` and `git` read it), else 120.
      const width = process.stdout.columns || Number(process.env.COLUMNS) || 120
      const height = process.stdout.isTTY ? process.stdout.rows : undefined
      this.log(renderFrame(model, {width, height, colour}))
      return
    }
    // Imported here so `--once` and the non-TTY message never load blessed.
    const {runScreen} = await import('../sim/ui/screen.js')
    await runScreen({source, intervalMs, colour})
  }
}

/** The screen's data source over the control API: one snapshot is five calls in parallel. */
export function controlSource(client: ControlClient, windowMs: number, colour: boolean) {
  const c = new Chalk({level: colour ? (Math.max(1, chalk.level) as ColorSupportLevel) : 0})
  let lastSeq = 0
  let events: AnyEvent[] = []
  return {
    async snapshot(): Promise<TopModel> {
      const [status, serviceStats, edgeStats, fresh] = await Promise.all([
        client.status(),
        client.stat('service', windowMs),
        client.stat('edge', windowMs),
        client.events(lastSeq) as Promise<AnyEvent[]>,
      ])
      // Slow means at least the p95 the ingress's services show in the window. The store
      // lists failed then slowest first (not newest), so each list is asked for separately.
      const roots = new Set((status.ingress?.routes ?? []).map((r) => r.service))
      const slowMs = Math.max(0, ...serviceStats.filter((r) => r.service && roots.has(r.service) && r.requests > 0).map((r) => r.p95))
      const sinceMs = Date.now() - TRACE_HORIZON_MS
      // Only requests that are over: a trace in flight holds just the calls ended so far (a
      // failed attempt the caller may yet retry), and says nothing of how the request went.
      const [failed, slow] = await Promise.all([
        client.traces({errorsOnly: true, sinceMs, completeOnly: true, limit: TRACE_SAMPLE}),
        client.traces({minDurationMs: slowMs, sinceMs, completeOnly: true, limit: TRACE_SAMPLE}),
      ])
      // A restarted daemon numbers its events from 1 again.
      if (fresh.length && fresh[0].seq <= lastSeq) events = []
      events = [...events, ...fresh].slice(-EVENTS_KEPT)
      if (fresh.length) lastSeq = fresh[fresh.length - 1].seq
      const traces = [...failed, ...slow]
      return buildModel({status, serviceStats, edgeStats, traces, events, windowMs, now: Date.now(), slowMs: slowMs || undefined, traceHorizonMs: TRACE_HORIZON_MS})
    },
    trace: (id: string) => client.trace(id),
    injectFault: (spec: Parameters<ControlClient['injectFault']>[0]) => client.injectFault(spec),
    clearFaults: (service: string) => client.clearFaults({service}),
    // As `mesh tap SERVICE` with its default --max-rps: what it left out is said once a second.
    tap(service: string, onLine: (line: string) => void, onError: (message: string) => void): () => void {
      const tap = client.tap({service, maxRps: 100}, (line) => onLine('skipped' in line ? c.dim(`… ${line.skipped} more in the last second (over 100/s)`) : renderTapEvent(line, c)))
      let stopped = false
      const fail = (message: string) => {
        if (stopped) return
        stopped = true
        onError(message)
      }
      tap.opened.catch((error: unknown) => fail(error instanceof Error ? error.message : String(error)))
      void tap.ended.then(() => fail('the mesh closed the stream (mesh down?)'))
      return () => {
        stopped = true
        tap.stop()
      }
    },
  }
}
