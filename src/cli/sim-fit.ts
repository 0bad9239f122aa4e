// `mesh sim --fit`: the running mesh's traces → a model of each command: service → its
// simulate: block, printed, or written beside its command: in a copy of mesh.yaml (--out).
import {readFile} from 'node:fs/promises'
import path from 'node:path'
import {Chalk} from 'chalk'
import {writeFileAtomically} from '../sim/atomic-file.js'
import {ConfigError} from '../sim/config/config-error.js'
import {loadConfigWithWarnings, parseConfig} from '../sim/config/load-config.js'
import type {ControlClient} from '../sim/control/control-client.js'
import {MeshError} from '../sim/errors.js'
import {type ModelEdit, simulateBlock, writeModels} from '../sim/virtual/fitted-yaml.js'
import type {Span} from '../sim/telemetry/span.js'
import {fitModels, MIN_FIT_REQUESTS, type ServiceFit} from '../sim/virtual/model-fit.js'

export interface FitReport {
  /** Spans read from the running mesh's trace store. */
  spans: number
  /** Spans the store's sampler left out while recording: error rates are then upper bounds. */
  sampledOut: number
  services: Array<ServiceFit & {simulate?: Record<string, unknown>}>
  /** Services that run no command (or reach an address): nothing to fit, their simulate: stays. */
  notFitted: Array<{service: string; why: string}>
  /** The file written (--out). */
  written?: string
  edits: ModelEdit[]
}

export interface FitCommandOptions {
  /** mesh.yaml, absolute. */
  file: string
  out?: string
  json: boolean
  colour: boolean
  log: (text: string) => void
}

export async function fitFromRunningMesh(client: ControlClient, options: FitCommandOptions): Promise<FitReport> {
  const {config} = await loadConfigWithWarnings(options.file)
  const notFitted: FitReport['notFitted'] = []
  const commandServices: string[] = []
  for (const s of config.services) {
    const kinds = new Set(s.versions.map((v) => v.workload.kind))
    if (kinds.has('address')) notFitted.push({service: s.name, why: 'it is reached at an address: the mesh sees no request it serves, and mesh sim cannot model it'})
    else if (s.protocol === 'tcp') notFitted.push({service: s.name, why: 'protocol: tcp: mesh sim models requests, not connections'})
    else if (kinds.has('command')) commandServices.push(s.name)
  }
  if (commandServices.length === 0) {
    throw new MeshError('MESH_BAD_FLAG', `${path.basename(options.file)} has no command: service: --fit models the services that run a command, and every service here is simulated already.`, {
      hints: ['mesh sim runs this file as it is: mesh sim --rps 100'],
    })
  }
  const [spans, store] = await readTraces(client)
  const fits = fitModels(spans, commandServices, {minRequests: MIN_FIT_REQUESTS})
  // Traces can outlive a service: a model's calls must name services of the file.
  const known = new Set(config.services.map((s) => s.name))
  for (const f of fits) {
    const gone = f.model?.calls.filter((c) => !known.has(c.service)) ?? []
    if (gone.length === 0) continue
    f.model!.calls = f.model!.calls.filter((c) => known.has(c.service))
    f.notes.push(`its calls to ${[...new Set(gone.map((c) => c.service))].join(', ')} are left out: no such service in ${path.basename(options.file)}`)
  }
  const report: FitReport = {
    spans: spans.length,
    sampledOut: store.sampling.sampledOut,
    services: fits.map((f) => (f.model ? {...f, simulate: simulateBlock(f.model)} : f)),
    notFitted,
    edits: [],
  }
  const fitted = fits.filter((f) => f.model)
  if (fitted.length === 0) {
    throw new MeshError('MESH_TRACE_NOT_FOUND', `The running mesh's traces hold too few requests of ${quoteList(commandServices)} to fit a model.`, {
      hints: [...fits.map((f) => `${f.service}: ${f.skipped}`), 'Drive load through the mesh first (mesh load ingress --rps 50 --duration 10s), then mesh sim --fit again.'],
    })
  }
  const source = await readFile(options.file, 'utf8')
  const day = new Date().toISOString().slice(0, 10)
  const written = writeModels(
    source,
    fitted.map((f) => ({service: f.service, model: f.model!, comment: `from ${f.measured} requests on ${day}`})),
  )
  report.edits = written.edits
  for (const n of written.notWritten) report.services.find((s) => s.service === n.service)!.notes.push(n.why)
  // The written file must be one mesh validate accepts: checked before it is written.
  const target = options.out === undefined ? options.file : path.resolve(options.out)
  const checked = parseConfig(written.text, options.file)
  if (!checked.config) {
    throw Object.assign(new ConfigError(checked.issues), {hints: ['mesh sim --fit wrote a file mesh validate refuses: a bug of mesh sim --fit; nothing was written.']})
  }
  if (options.out !== undefined) {
    writeOut(target, written.text)
    report.written = target
  }
  if (!options.json) options.log(renderFit(report, {file: options.file, colour: options.colour}))
  return report
}

/** The store's spans and its figures; the mesh stopping meanwhile (mesh down) is said as such. */
async function readTraces(client: ControlClient): Promise<[Span[], Awaited<ReturnType<ControlClient['traceStore']>>]> {
  try {
    return await Promise.all([client.spans({}), client.traceStore()])
  } catch (error) {
    if (!(error instanceof MeshError) || error.code !== 'MESH_DAEMON_UNREACHABLE') throw error
    throw new MeshError('MESH_DAEMON_UNREACHABLE', `The running mesh stopped answering while mesh sim --fit read its traces (${error.message.replace(/\.$/, '')}): nothing was written.`, {
      cause: error,
      hints: ['Was it stopped (mesh down)? Start it again (mesh up -d), drive load through it, then run mesh sim --fit again.'],
    })
  }
}

/**
 * Replaced in one step: `--out mesh.yaml` edits the user's own file, and a write cut short
 * (a full disk, Ctrl-C) must leave it as it was, not half of it.
 */
function writeOut(target: string, text: string): void {
  try {
    writeFileAtomically(target, text)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message
    throw new MeshError('MESH_BAD_FLAG', `cannot write --out ${target}: ${code}${code === 'EISDIR' ? ' (a directory: --out takes a file)' : ''}; nothing was written.`, {
      cause: error,
      hints: ['Give --out a file path in a directory you can write to (mesh.yaml itself: edited in place).'],
    })
  }
}

function renderFit(report: FitReport, {file, colour}: {file: string; colour: boolean}): string {
  const c = new Chalk({level: colour ? 1 : 0})
  const name = path.basename(file)
  const lines: string[] = [`Fitted from ${report.spans} span(s) in the running mesh's trace store.`]
  if (report.sampledOut > 0) {
    lines.push(
      c.yellow(
        `The store sampled while recording (${report.sampledOut} span(s) left out, failed traces always kept): the error rates are upper bounds. ` +
          'Record under telemetry.sampling.spansPerSecond (500 a second by default), or raise it, for exact ones.',
      ),
    )
  }
  for (const s of report.services) {
    lines.push('')
    if (!s.model) {
      lines.push(`${c.bold(s.service)}: ${c.yellow('not fitted')}: ${s.skipped}`)
      continue
    }
    lines.push(`${c.bold(s.service)}: ${s.requests} request(s) in the traces, ${s.measured} measured; latency ${s.latencyChoice}`)
    const edit = report.edits.find((e) => e.service === s.service)
    if (edit) {
      lines.push(c.dim(`${report.written ? path.basename(report.written) : name}:${edit.line}`))
      for (const l of edit.removed) lines.push(c.red(`- ${l}`))
      for (const l of edit.added) lines.push(c.green(`+ ${l}`))
    }
    for (const n of s.notes) lines.push(`  note: ${n}`)
  }
  for (const n of report.notFitted) lines.push('', `${c.bold(n.service)}: not fitted: ${n.why}`)
  lines.push('')
  const count = report.edits.length
  if (report.written) lines.push(`Wrote ${count} simulate: block(s) to ${report.written}. Run it: mesh sim -f ${path.relative(process.cwd(), report.written) || report.written}`)
  else lines.push(`Nothing written. To write ${count === 1 ? 'this block' : 'these blocks'}: mesh sim --fit --out ${name} (in place, comments kept) or --out another file.`)
  return lines.join('\n')
}

function quoteList(names: string[]): string {
  return names.map((n) => `"${n}"`).join(', ')
}
