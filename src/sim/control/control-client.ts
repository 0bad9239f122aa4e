// The CLI's side of the control API. node:http rather than undici: a CLI run makes a call
// or two, and undici's ~110 modules would be most of `mesh status`'s start-up.
import http from 'node:http'
import {MeshError} from '../errors.js'
import type {ExecTarget, MeshStatus} from './status.js'
import type {DaemonEvent} from './daemon.js'
import type {Stamped} from './event-log.js'
import type {Span} from '../telemetry/span.js'
import type {FaultInfo, FaultSpec} from '../faults/fault.js'
import type {DeployPlan, DeployRecord} from '../deploy/deploy-types.js'
import type {ApplyResult} from './policy-diff.js'
import type {StatBy, StatRow} from '../telemetry/metrics.js'
import type {TcpSeries} from '../telemetry/tcp-metrics.js'
import type {TraceQuery, TraceStoreStats, TraceSummary} from '../telemetry/trace-store.js'
import type {SamplingStats} from '../telemetry/trace-sampler.js'
import type {TapFilter, TapLine} from '../telemetry/tap.js'
import {type MeshPaths, type MeshState, readState, readToken} from './state-file.js'
import {stillRuns} from '../supervisor/process-identity.js'
import {processTable} from '../supervisor/process-table.js'

export class ControlClient {
  constructor(
    readonly state: MeshState,
    private readonly token: string,
  ) {}

  status(): Promise<MeshStatus> {
    return this.call('GET', '/v1/status') as Promise<MeshStatus>
  }

  /** `mesh up SERVICE...` on a running mesh: starts those not started yet (and what they depend on); `profiles` stay enabled for apply. */
  start(services: string[], profiles: string[] = []): Promise<MeshStatus> {
    return this.call('POST', '/v1/start', {services, profiles}) as Promise<MeshStatus>
  }

  /** `mesh stop [SERVICE...]`: their instances drained and stopped; the daemon keeps running. */
  stop(services: string[]): Promise<MeshStatus> {
    return this.call('POST', '/v1/stop', {services}) as Promise<MeshStatus>
  }

  down(): Promise<void> {
    return this.call('POST', '/v1/down').then(() => undefined)
  }

  traces(query: TraceQuery = {}): Promise<TraceSummary[]> {
    return this.call('GET', `/v1/traces?${traceParams(query)}`) as Promise<TraceSummary[]>
  }

  /** Every span of the traces `query` selects (for export). */
  spans(query: TraceQuery = {}): Promise<Span[]> {
    return this.call('GET', `/v1/spans?${traceParams(query)}`) as Promise<Span[]>
  }

  /** What the trace store holds, and how it samples under load. */
  traceStore(): Promise<TraceStoreStats & {sampling: SamplingStats}> {
    return this.call('GET', '/v1/trace-store') as Promise<TraceStoreStats & {sampling: SamplingStats}>
  }

  trace(id: string): Promise<Span[]> {
    return this.call('GET', `/v1/trace?id=${encodeURIComponent(id)}`) as Promise<Span[]>
  }

  stat(by: StatBy, windowMs: number): Promise<StatRow[]> {
    return this.call('GET', `/v1/stat?by=${by}&windowMs=${windowMs}`) as Promise<StatRow[]>
  }

  /** TCP connections (protocol: tcp services, WebSocket sessions) since the mesh started, per caller and instance. */
  tcp(): Promise<TcpSeries[]> {
    return this.call('GET', '/v1/tcp') as Promise<TcpSeries[]>
  }

  /** An instance of `service` (the named one, or the first healthy one) as `mesh exec` runs a command as it. */
  execTarget(service: string, version?: string, instance?: string): Promise<ExecTarget> {
    const q = new URLSearchParams({service})
    if (version) q.set('version', version)
    if (instance) q.set('instance', instance)
    return this.call('GET', `/v1/exec?${q}`) as Promise<ExecTarget>
  }

  /** `env`: the variables mesh.yaml's ${VAR} read, as the caller's shell has them now (compose reads them per command). */
  apply(env?: NodeJS.ProcessEnv, dryRun = false): Promise<ApplyResult> {
    return this.call('POST', '/v1/apply', env || dryRun ? {env, dryRun} : undefined) as Promise<ApplyResult>
  }

  faults(): Promise<FaultInfo[]> {
    return this.call('GET', '/v1/faults') as Promise<FaultInfo[]>
  }

  injectFault(spec: FaultSpec): Promise<FaultInfo> {
    return this.call('POST', '/v1/faults', spec) as Promise<FaultInfo>
  }

  /** By id, by service, or all (no selector). */
  clearFaults(selector: {id?: string; service?: string} = {}): Promise<FaultInfo[]> {
    return this.call('POST', '/v1/faults/clear', selector) as Promise<FaultInfo[]>
  }

  deploy(plan: DeployPlan): Promise<DeployRecord> {
    return this.call('POST', '/v1/deploys', plan) as Promise<DeployRecord>
  }

  deployRecord(id: string): Promise<DeployRecord> {
    return this.call('GET', `/v1/deploy?id=${encodeURIComponent(id)}`) as Promise<DeployRecord>
  }

  history(service?: string): Promise<DeployRecord[]> {
    return this.call('GET', `/v1/deploys${service ? `?service=${encodeURIComponent(service)}` : ''}`) as Promise<DeployRecord[]>
  }

  rollback(service: string): Promise<DeployRecord> {
    return this.call('POST', '/v1/rollback', {service}) as Promise<DeployRecord>
  }

  events(since = 0): Promise<Array<Stamped<DaemonEvent>>> {
    return this.call('GET', `/v1/events?since=${since}`) as Promise<Array<Stamped<DaemonEvent>>>
  }

  /**
   * `mesh tap`: the requests the filter selects, as they complete, until `stop()` (or the
   * mesh stops). `opened` resolves once the daemon accepted the filter (or rejects with why not).
   */
  tap(filter: TapFilter & {maxRps?: number}, onLine: (line: TapLine) => void): {opened: Promise<void>; ended: Promise<void>; stop(): void} {
    const q = new URLSearchParams()
    for (const [key, value] of Object.entries(filter)) if (value !== undefined && value !== false) q.set(key, value === true ? '1' : String(value))
    let req: http.ClientRequest
    let stopped = false
    let ended!: Promise<void>
    const opened = new Promise<void>((resolve, reject) => {
      req = http.get(`${this.state.controlUrl}/v1/tap?${q}`, {headers: {authorization: `Bearer ${this.token}`}, agent: false}, (res) => {
        if (res.statusCode !== 200) {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('end', () => reject(controlError(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'))))
          return
        }
        resolve()
        let pending = ''
        res.setEncoding('utf8')
        res.on('data', (text: string) => {
          pending += text
          let nl: number
          while ((nl = pending.indexOf('\n')) >= 0) {
            const line = pending.slice(0, nl)
            pending = pending.slice(nl + 1)
            if (line && !stopped) onLine(JSON.parse(line) as TapLine)
          }
        })
      })
      ended = new Promise<void>((done) => req.once('close', () => done()))
      req.on('error', (error) => {
        if (!stopped) reject(new MeshError('MESH_DAEMON_UNREACHABLE', `the mesh daemon at ${this.state.controlUrl} did not answer.`, {cause: error}))
      })
    })
    return {
      opened,
      ended,
      stop: () => {
        stopped = true
        req.destroy()
      },
    }
  }

  async call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
    let res: {statusCode: number; text: string}
    try {
      res = await send(this.state.controlUrl + path, method, this.token, body === undefined ? undefined : JSON.stringify(body))
    } catch (error) {
      throw new MeshError('MESH_DAEMON_UNREACHABLE', `the mesh daemon at ${this.state.controlUrl} did not answer.`, {
        cause: error,
        hints: ['Run `mesh down` to clean up, then `mesh up` again.'],
      })
    }
    if (res.statusCode >= 400) throw controlError(res.statusCode, res.text)
    return JSON.parse(res.text)
  }
}

/** The daemon's error answer as the MeshError it was. */
function controlError(statusCode: number, text: string): MeshError {
  let json: {error?: {code: string; message: string; hints?: string[]}} = {}
  try {
    json = JSON.parse(text)
  } catch {
    // Not ours: say what came back.
  }
  return new MeshError(json.error?.code ?? 'MESH_CONTROL_ERROR', json.error?.message ?? `control API answered ${statusCode}`, {hints: json.error?.hints})
}

/** One control API call; no connection is kept, so the CLI exits as soon as it is done. */
function send(url: string, method: string, token: string, payload: string | undefined): Promise<{statusCode: number; text: string}> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = {authorization: `Bearer ${token}`, 'content-type': 'application/json'}
    if (payload !== undefined) headers['content-length'] = Buffer.byteLength(payload)
    // A rollback waits for a deploy to finish undoing itself: up to two minutes of silence.
    const req = http.request(url, {method, headers, agent: false, timeout: 120_000}, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({statusCode: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8')}))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error('no answer within 120 s')))
    req.on('error', reject)
    req.end(payload)
  })
}

/** The recorded daemon still runs (a zombie has exited: it no longer serves, whatever `kill -0` says). */
export function daemonAlive(state: MeshState): boolean {
  // With the table that recorded its start time: the two tables' times do not compare.
  return stillRuns(processTable(state.processTable ?? 'proc').readSync(), state.daemon)
}

/** A client for the running mesh, or an error that says there is none. */
export function connect(paths: MeshPaths): ControlClient {
  const state = readState(paths)
  const token = readToken(paths)
  if (!state || !token || !daemonAlive(state)) {
    throw new MeshError('MESH_NOT_RUNNING', 'no mesh is running here.', {hints: ['Start one with `mesh up -d`.']})
  }
  return new ControlClient(state, token)
}

function traceParams(q: TraceQuery): string {
  const p = new URLSearchParams()
  if (q.service) p.set('service', q.service)
  if (q.errorsOnly) p.set('errors', '1')
  if (q.minDurationMs !== undefined) p.set('minDurationMs', String(q.minDurationMs))
  if (q.sinceMs !== undefined) p.set('since', String(q.sinceMs))
  if (q.completeOnly) p.set('complete', '1')
  if (q.limit !== undefined) p.set('limit', String(q.limit))
  return p.toString()
}
