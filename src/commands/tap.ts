import {Args, Flags} from '@oclif/core'
import chalk, {Chalk} from 'chalk'
import {durationFlag, MeshCommand} from '../cli/mesh-command.js'
import {formatDuration} from '../sim/config/duration.js'
import {describeEnd, renderTapEvent} from '../cli/tap-line.js'
import type {TapLine} from '../sim/telemetry/tap.js'

export default class Tap extends MeshCommand {
  static override description =
    'Watch the requests going through the mesh as they complete, one line each (as `linkerd viz tap`): caller → instance, method and path, status, latency, ' +
    "the mesh's flag and reason when it answered itself, and how many tries a retried request took. Until Ctrl-C, --count or --duration; --json prints one JSON object per request."
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> tap',
    '<%= config.bin %> tap catalog --errors',
    '<%= config.bin %> tap --from frontend --to catalog --path /items --method GET',
    '<%= config.bin %> tap payments --count 20 --json',
  ]
  static override args = {service: Args.string({description: 'only requests to or from this service'})}
  static override flags = {
    from: Flags.string({description: 'only requests from this service (or ingress, or unknown: calls to an instance\'s published address)'}),
    to: Flags.string({description: 'only requests to this service'}),
    path: Flags.string({description: 'only requests whose path starts with this'}),
    method: Flags.string({description: 'only requests with this method'}),
    errors: Flags.boolean({description: "only failed requests (5xx, no answer, or the mesh's own answer)"}),
    'max-rps': Flags.integer({description: 'at most this many requests a second are shown; the rest are counted', min: 1, default: 100}),
    count: Flags.integer({description: 'stop after this many requests', min: 1}),
    duration: durationFlag({description: 'stop after this long, e.g. 30s', examples: '30s, 5m'}),
  }

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Tap)
    const durationMs = flags.duration
    const json = this.jsonEnabled()
    const c = new Chalk({level: chalk.level})
    let seen = 0
    let stop = () => undefined as void
    const tap = this.connect(flags.file).tap(
      {service: args.service, from: flags.from, to: flags.to, path: flags.path, method: flags.method, errors: flags.errors, maxRps: flags['max-rps']},
      (line: TapLine) => {
        if ('skipped' in line) {
          if (json) process.stdout.write(`${JSON.stringify(line)}\n`)
          else this.logToStderr(c.dim(`… ${line.skipped} more in the last second (--max-rps ${flags['max-rps']})`))
          return
        }
        process.stdout.write(json ? `${JSON.stringify(line)}\n` : `${renderTapEvent(line, c)}\n`)
        if (flags.count !== undefined && ++seen >= flags.count) stop()
      },
    )
    stop = tap.stop
    await tap.opened
    if (!json) this.logToStderr(c.dim(`tapping ${describeFilter(args.service, flags)}; ${describeEnd(flags.count, durationMs === undefined ? undefined : formatDuration(durationMs))}`))
    const timer = durationMs === undefined ? undefined : setTimeout(stop, durationMs)
    process.once('SIGINT', stop)
    await tap.ended
    if (timer) clearTimeout(timer)
    process.off('SIGINT', stop)
  }

  // Each request went out as it came; the command's result is that stream, not one more document.
  protected override logJson(): void {}
}

function describeFilter(service: string | undefined, f: {from?: string; to?: string; path?: string; method?: string; errors?: boolean}): string {
  const parts = [service && `requests to or from ${service}`, f.from && `from ${f.from}`, f.to && `to ${f.to}`, f.method, f.path && `${f.path}*`, f.errors && 'failed only']
  return parts.filter(Boolean).join(', ') || 'every request'
}

