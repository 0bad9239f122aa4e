import {Flags} from '@oclif/core'
import chalk from 'chalk'
import {durationFlag, MeshCommand} from '../cli/mesh-command.js'
import {toOtlp, type OtlpTracesRequest} from '../sim/telemetry/export-otlp.js'
import {toZipkin, type ZipkinSpan} from '../sim/telemetry/export-zipkin.js'
import {renderSamplingNote, renderTraceList} from '../sim/telemetry/trace-list.js'
import type {TraceQuery, TraceSummary} from '../sim/telemetry/trace-store.js'

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
  ]
  static override flags = {
    service: Flags.string({description: 'only traces that touched this service'}),
    errors: Flags.boolean({description: 'only traces with a failed span'}),
    'min-duration': durationFlag({description: 'only traces at least this long, e.g. 100ms', examples: '100ms, 1.5s'}),
    since: durationFlag({description: 'only traces that started within this long before now, e.g. 30s or 5m', examples: '30s, 5m'}),
    limit: Flags.integer({description: 'traces to show (default 20; every matching trace with --export)', min: 1}),
    export: Flags.option({options: ['otlp', 'zipkin'] as const, description: 'print the selected traces\' spans in this format'})(),
  }

  async run(): Promise<TraceSummary[] | OtlpTracesRequest | ZipkinSpan[]> {
    const {flags} = await this.parse(Traces)
    const query: TraceQuery = {service: flags.service, errorsOnly: flags.errors, limit: flags.limit ?? (flags.export ? undefined : 20)}
    query.minDurationMs = flags['min-duration']
    const since = flags.since
    if (since !== undefined) query.sinceMs = Date.now() - since
    const client = this.connect(flags.file)
    if (flags.export) {
      const spans = await client.spans(query)
      const out = flags.export === 'otlp' ? toOtlp(spans) : toZipkin(spans)
      // Straight to stdout, so `> file.json` holds the document and nothing else.
      if (!this.jsonEnabled()) process.stdout.write(`${JSON.stringify(out, null, 2)}\n`)
      return out
    }
    const summaries = await client.traces(query)
    if (!this.jsonEnabled()) {
      const colour = chalk.level > 0
      const {sampling} = await client.traceStore()
      process.stdout.write(renderTraceList(summaries, {colour}) + renderSamplingNote(sampling, {colour}))
    }
    return summaries
  }
}
