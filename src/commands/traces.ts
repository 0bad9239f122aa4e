import {Flags} from '@oclif/core'
import chalk from 'chalk'
import {durationFlag, MeshCommand} from '../cli/mesh-command.js'
import {toOtlp, type OtlpTracesRequest} from '../sim/telemetry/export-otlp.js'
import {toZipkin, type ZipkinSpan} from '../sim/telemetry/export-zipkin.js'
import {renderSamplingNote, renderTraceList} from '../sim/telemetry/trace-list.js'
import type {TraceQuery, TraceSummary} from '../sim/telemetry/trace-store.js'
import {readTraceFile, traceStoreOf} from '../sim/virtual/trace-file.js'

export default class Traces extends MeshCommand {
  static override description =
    'List recent traces, failed first then slowest, one line each; --export writes them as OTLP/JSON or Zipkin v2 JSON. ' +
    'A busy mesh keeps a sample of healthy traces (telemetry.sampling.spansPerSecond) and every failed one; the list says when.'
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> traces',
    '<%= config.bin %> traces --service payments --errors',
    '<%= config.bin %> traces --min-duration 100ms --limit 5',
    '<%= config.bin %> traces --since 30s --errors',
    '<%= config.bin %> traces --export otlp > traces.json',
    '<%= config.bin %> traces --traces sim-traces.jsonl --errors',
  ]
  static override flags = {
    service: Flags.string({description: 'only traces that touched this service'}),
    errors: Flags.boolean({description: 'only traces with a failed span'}),
    'min-duration': durationFlag({description: 'only traces at least this long, e.g. 100ms', examples: '100ms, 1.5s'}),
    since: durationFlag({description: 'only traces that started within this long before now, e.g. 30s or 5m', examples: '30s, 5m'}),
    limit: Flags.integer({description: 'traces to show (default 20; every matching trace with --export)', min: 1}),
    traces: Flags.string({description: 'list the traces of this file (`mesh sim --traces FILE` wrote it) instead of the running mesh\'s', exclusive: ['since']}),
    export: Flags.option({options: ['otlp', 'zipkin'] as const, description: 'print the selected traces\' spans in this format'})(),
  }

  async run(): Promise<TraceSummary[] | OtlpTracesRequest | ZipkinSpan[]> {
    const {flags} = await this.parse(Traces)
    const query: TraceQuery = {service: flags.service, errorsOnly: flags.errors, limit: flags.limit ?? (flags.export ? undefined : 20)}
    query.minDurationMs = flags['min-duration']
    const since = flags.since
    if (since !== undefined) query.sinceMs = Date.now() - since
    const file = flags.traces
    // A file (virtual times, no daemon) is read into a store of its own and queried the same way.
    const store = file === undefined ? undefined : traceStoreOf(await readTraceFile(file))
    const client = store ? undefined : this.connect(flags.file)
    if (flags.export) {
      const spans = store ? store.list(query).flatMap((t) => store.get(t.traceId)) : await client!.spans(query)
      const out = flags.export === 'otlp' ? toOtlp(spans) : toZipkin(spans)
      // Straight to stdout, so `> file.json` holds the document and nothing else.
      if (!this.jsonEnabled()) process.stdout.write(`${JSON.stringify(out, null, 2)}\n`)
      return out
    }
    const summaries = store ? store.list(query) : await client!.traces(query)
    if (!this.jsonEnabled()) {
      const colour = chalk.level > 0
      const note = client ? renderSamplingNote((await client.traceStore()).sampling, {colour}) : ''
      process.stdout.write(renderTraceList(summaries, {colour}) + note)
    }
    return summaries
  }
}
