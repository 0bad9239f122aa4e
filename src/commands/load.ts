import {Args, Flags} from '@oclif/core'
import chalk, {Chalk} from 'chalk'
import {isUrlTarget, type LoadTarget, meshTarget, parseHeaders, urlTarget} from '../cli/load-target.js'
import {durationFlag, MeshCommand} from '../cli/mesh-command.js'
import {MeshError} from '../sim/errors.js'
import {ARRIVALS, describeShape, expectedArrivals, peakRps, shapeOf} from '../sim/load/arrival-schedule.js'
import {defaultConcurrency, LoadError, type LoadProgress, type LoadResult, runLoad} from '../sim/load/load-generator.js'
import {formatLatency} from '../sim/telemetry/waterfall.js'
import {successColour} from './stat.js'

export default class Load extends MeshCommand {
  static override description =
    'Send open-loop load at a fixed rate, a ramp or a burst after idle, with uniform or Poisson arrivals (latency counted from each request\'s intended send time, so stalls cannot hide), then print percentiles, throughput and errors.'
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> load ingress --rps 100 --duration 30s',
    '<%= config.bin %> load frontend --rps 50 --duration 10s --path /checkout --method POST -H x-user=alice',
    '<%= config.bin %> load http://127.0.0.1:8000/items --rps 200 --duration 5s --json',
    '<%= config.bin %> load ingress --after 10s --rps 500 --for 5s',
    '<%= config.bin %> load ingress --ramp 0:200/30s --rps 200 --duration 1m --arrivals poisson',
  ]
  static override args = {
    target: Args.string({required: true, description: 'a URL, `ingress`, or a service the ingress routes to'}),
  }
  static override flags = {
    rps: Flags.string({description: 'requests per second, held whatever the target does (with --duration)'}),
    duration: durationFlag({description: 'how long to hold --rps, e.g. 10s, 1m', examples: '5s, 1m', atLeast: 'positive'}),
    for: durationFlag({description: 'the same as --duration, for a burst: --after 10s --rps 500 --for 5s', examples: '5s, 1m', atLeast: 'positive'}),
    after: durationFlag({description: 'stay idle this long first, then send (a burst after idle)', examples: '10s, 1m'}),
    ramp: Flags.string({
      multiple: true,
      description: 'FROM:TO/DURATION: the rate moving linearly, e.g. 0:200/30s (repeatable; played in order, before --rps)',
    }),
    arrivals: Flags.string({options: [...ARRIVALS], default: 'uniform', description: 'uniform: evenly spaced; poisson: exponential gaps of mean 1/rate'}),
    seed: Flags.integer({description: 'seed of the Poisson gaps, to replay the same arrivals (default: from the time; --json reports it)'}),
    path: Flags.string({description: 'request path (default: the URL\'s path, or the service\'s ingress route)'}),
    method: Flags.string({default: 'GET', description: 'HTTP method'}),
    header: Flags.string({char: 'H', multiple: true, description: 'request header name=value (repeatable)'}),
    concurrency: Flags.integer({min: 1, description: 'requests in flight at most (default: the rate, 16 to 1000); one due at the cap is dropped and counted, never sent late'}),
  }

  async run(): Promise<LoadResult> {
    const {args, flags} = await this.parse(Load)
    const rps = flags.rps === undefined ? undefined : Number(flags.rps)
    if (rps !== undefined && (!(rps > 0) || !Number.isFinite(rps))) throw badFlag(`--rps "${flags.rps}" is not a positive number.`, 'Example: --rps 200')
    if (flags.duration !== undefined && flags.for !== undefined) throw badFlag('--duration and --for are the same thing: give one.')
    const durationMs = flags.duration ?? flags.for
    if (rps !== undefined && durationMs === undefined) throw badFlag(`--rps ${flags.rps} needs --duration (or --for): how long to hold it.`, 'Example: --rps 200 --duration 10s')
    if (rps === undefined && durationMs !== undefined) throw badFlag('--duration (or --for) needs --rps: the rate to hold.', 'Example: --rps 200 --duration 10s')
    if (rps === undefined && flags.ramp === undefined) {
      throw badFlag('Nothing to send: give --rps with --duration, or --ramp.', 'Examples: --rps 100 --duration 10s, --ramp 0:200/30s')
    }
    const shape = shapeOf({afterMs: flags.after, ramps: flags.ramp, rps, durationMs, arrivals: flags.arrivals as 'uniform' | 'poisson'})
    if (typeof shape === 'string') {
      throw badFlag(`${flags.ramp?.some((r) => shape.startsWith(`"${r}"`)) ? '--ramp ' : ''}${shape}.`, 'Examples: --rps 200 --duration 5s, --ramp 0:200/30s, --after 10s --rps 500 --for 5s')
    }
    const planned = Math.round(expectedArrivals(shape))
    const headers = parseHeaders(flags.header)
    const method = flags.method.toUpperCase()
    const target: LoadTarget = isUrlTarget(args.target)
      ? urlTarget(args.target, flags.path)
      : meshTarget(args.target, await this.connect(flags.file).status(), flags.path)
    const concurrency = flags.concurrency ?? defaultConcurrency(peakRps(shape))

    const quiet = this.jsonEnabled()
    const live = !quiet && process.stderr.isTTY === true
    if (!quiet) {
      this.logToStderr(
        `Sending ${method} ${target.origin}${target.path}: ${describeShape(shape)} ` +
          `(${shape.arrivals === 'poisson' ? 'about ' : ''}${planned} requests, at most ${concurrency} in flight)…`,
      )
    }
    const abort = new AbortController()
    // The first Ctrl-C lets what is in flight finish (cut off, the mesh would count clients
    // hanging up); this handler is then gone, so a second one quits at once.
    const onSigint = () => {
      if (!quiet) this.logToStderr('\nStopping: nothing more is sent; waiting for the requests in flight (Ctrl-C again quits now).')
      abort.abort()
    }
    process.once('SIGINT', onSigint)
    let result: LoadResult
    try {
      result = await runLoad({
        target: target.origin,
        caFile: target.caFile,
        path: target.path,
        method,
        headers,
        shape,
        seed: flags.seed,
        concurrency,
        signal: abort.signal,
        onProgress: live ? (p) => process.stderr.write(`\r\x1b[K${progressLine(p, planned)}`) : undefined,
      })
    } catch (error) {
      if (error instanceof LoadError) throw badFlag(error.message)
      throw error
    } finally {
      process.off('SIGINT', onSigint)
      if (live) process.stderr.write('\r\x1b[K')
    }
    if (!quiet) this.log(renderLoadResult(result, chalk.level > 0))
    return result
  }
}

/** The live line: where the run is, once a second. */
export function progressLine(p: LoadProgress, planned: number): string {
  const errors = p.errors > 0 ? `, ${p.errors} errors` : ''
  const dropped = p.dropped > 0 ? `, ${p.dropped} dropped` : ''
  return `${formatLatency(p.elapsedMs)}  ${p.completed}/${planned} done (${p.sent} sent${errors}${dropped}), ${p.currentRps.toFixed(0)} rps now`
}

export function renderLoadResult(r: LoadResult, colour: boolean): string {
  const c = new Chalk({level: colour ? 1 : 0})
  const l = r.latency
  const count = (o: Record<string, number>) =>
    Object.entries(o)
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .map(([k, n]) => `${k} × ${n}`)
      .join(', ') || 'none'
  const lines = [
    `${c.bold('requests')}    ${r.requests} completed of ${r.sent} sent in ${formatLatency(r.durationMs)}` +
      (r.aborted ? c.yellow(` (stopped early; ${r.cancelled} planned but not sent)`) : ''),
    ...(r.dropped > 0
      ? [
          `${c.bold('dropped')}     ${c.red(`${r.dropped} due while ${r.concurrency} were in flight, not sent`)}: the target could not keep up at this rate; ` +
            'the figures below are of those sent (raise --concurrency to send them all)',
        ]
      : []),
    `${c.bold('throughput')}  ${r.throughputRps.toFixed(1)} rps` + (r.arrivals === 'poisson' ? `  (poisson arrivals, --seed ${r.seed})` : ''),
    `${c.bold('success')}     ${r.requests > 0 ? successColour(r.successRate, c)(`${(r.successRate * 100).toFixed(2)}%`) : '-'}`,
    `${c.bold('latency')}     p50 ${formatLatency(l.p50)}  p90 ${formatLatency(l.p90)}  p95 ${formatLatency(l.p95)}  ` +
      `p99 ${formatLatency(l.p99)}  p99.9 ${formatLatency(l.p999)}  max ${formatLatency(l.max)}`,
    `${c.bold('statuses')}    ${count(r.statuses)}`,
    `${c.bold('errors')}      ${Object.keys(r.errors).length ? c.red(count(r.errors)) : 'none'}`,
  ]
  return lines.join('\n')
}

function badFlag(message: string, hint?: string): MeshError {
  return new MeshError('MESH_BAD_FLAG', message, {hints: hint ? [hint] : []})
}
