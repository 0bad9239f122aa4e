import {Args, Flags} from '@oclif/core'
import chalk from 'chalk'
import {MeshCommand} from '../cli/mesh-command.js'
import type {Span} from '../sim/telemetry/span.js'
import {renderWaterfall} from '../sim/telemetry/waterfall.js'
import {findTraceInFile, readTraceFile} from '../sim/virtual/trace-file.js'

export default class Trace extends MeshCommand {
  static override description = 'Show one trace as a waterfall: the span tree on a common time axis, status, retries and faults; --why adds each hop\'s authentication, authorization and routing decision.'
  static override enableJsonFlag = true
  static override examples = ['<%= config.bin %> trace 4bf92f3577b3', '<%= config.bin %> trace 4bf92f3577b3 --why', '<%= config.bin %> trace 4bf92f3577b3 --json', '<%= config.bin %> trace --traces sim-traces.jsonl 4bf92f3577b3']
  static override args = {id: Args.string({description: 'trace id, or a unique prefix of one (as `mesh traces` prints it)', required: true})}
  static override flags = {
    why: Flags.boolean({description: 'show why each hop went where it went (who the caller was and what vouched for it, the authorization rule that decided, candidates, chosen instance, retries, timeouts, faults)'}),
    width: Flags.integer({description: 'columns to fill (default: the terminal width, or 100 when piped)', min: 40}),
    traces: Flags.string({description: 'read the trace from this file (`mesh sim --traces FILE` wrote it) instead of the running mesh'}),
  }

  async run(): Promise<Span[]> {
    const {args, flags} = await this.parse(Trace)
    const file = flags.traces
    const spans = file === undefined ? await this.connect(flags.file).trace(args.id) : findTraceInFile(await readTraceFile(file), args.id, file)
    if (!this.jsonEnabled()) {
      const width = flags.width ?? process.stdout.columns ?? 100
      // A file's times may be virtual (mesh sim): the trace's age would mean nothing.
      const now = file === undefined ? Date.now() : undefined
      process.stdout.write(renderWaterfall(spans, {width, colour: chalk.level > 0, why: flags.why, now}))
    }
    return spans
  }
}
