// The CLI's side of the control API. node:http rather than undici: a CLI run makes a call
// or two, and undici's ~110 modules would be most of `mesh status`'s start-up.
import http from 'node:http'
import {MeshError} from '../errors.js'
import type {ExecTarget, MeshStatus} from './status.js'
import type {DaemonEvent} from './daemon.js'
import type {Stamped} from './event-log.js'
import type {ScalingRecord} from './scaling-history.js'
import type {Span} from '../telemetry/span.js'
import type {FaultInfo, FaultSpec} from '../faults/fault.js'
import type {CertificateListing} from '../security/workload-files.js'
import type {DeployPlan, DeployRecord} from '../deploy/deploy-types.js'
import type {ApplyResult} from './policy-diff.js'
import type {WarmUpResult} from './warm-up.js'
import type {StatBy, StatRow} from '../telemetry/metrics.js'
import type {TcpSeries} from '../telemetry/tcp-metrics.js'
import type {TraceQuery, TraceStoreStats, TraceSummary} from '../telemetry/trace-store.js'
import type {SamplingStats} from '../telemetry/trace-sampler.js'
import type {TapFilter, TapLine} from '../telemetry/tap.js'
import {type ControlStreams, type QueryOf, queryString, type RequestOf, type ResponseOf, type RouteKey, splitRoute, type StreamQueryOf} from './api.js'
import {type MeshPaths, type MeshState, readState, readToken, stateProcessTable} from './state-file.js'
import {stillRuns} from '../supervisor/process-identity.js'

export class ControlClient {
  constructor(
    readonly state: MeshState,
    private readonly token: string,
  ) {}

  status(): Promise<MeshStatus> {
    return this.call('GET /v1/status', {})
  }

  /** `mesh up SERVICE...` on a running mesh: starts those not started yet (and what they depend on); `profiles` stay enabled for apply. */
  start(services: string[], profiles: string[] = []): Promise<MeshStatus> {
    return this.call('POST /v1/start', {body: {services, profiles}})
  }

  /** `mesh stop [SERVICE...]`: their instances drained and stopped; the daemon keeps running. */
  stop(services: string[]): Promise<MeshStatus> {
    return this.call('POST /v1/stop', {body: {services}})
  }

  /** Runs the warm-up (warm-up.ts): resolves when it is over, bounded in time and requests. */
  warmUp(): Promise<WarmUpResult> {
    return this.call('POST /v1/warm-up', {})
  }

  down(): Promise<void> {
    return this.call('POST /v1/down', {}).then(() => undefined)
  }

  traces(query: TraceQuery = {}): Promise<TraceSummary[]> {
    return this.call('GET /v1/traces', {query: traceParams(query)})
  }

  /** Every span of the traces `query` selects (for export). */
  spans(query: TraceQuery = {}): Promise<Span[]> {
    return this.call('GET /v1/spans', {query: traceParams(query)})
  }

  /** What the trace store holds, and how it samples under load. */
  traceStore(): Promise<TraceStoreStats & {sampling: SamplingStats}> {
    return this.call('GET /v1/trace-store', {})
  }

  trace(id: string): Promise<Span[]> {
    return this.call('GET /v1/trace', {query: {id}})
  }

  stat(by: StatBy, windowMs: number): Promise<StatRow[]> {
    return this.call('GET /v1/stat', {query: {by, windowMs: String(windowMs)}})
  }

  /** TCP connections (protocol: tcp services, WebSocket sessions) since the mesh started, per caller and instance. */
  tcp(): Promise<TcpSeries[]> {
    return this.call('GET /v1/tcp', {})
  }

  /** An instance of `service` (the named one, or the first healthy one) as `mesh exec` runs a command as it. */
  execTarget(service: string, version?: string, instance?: string): Promise<ExecTarget> {
    return this.call('GET /v1/exec', {query: {service, version: version || undefined, instance: instance || undefined}})
  }

  /** `env`: the variables mesh.yaml's ${VAR} read, as the caller's shell has them now (compose reads them per command). */
  apply(env?: NodeJS.ProcessEnv, dryRun = false): Promise<ApplyResult> {
    return this.call('POST /v1/apply', {body: env || dryRun ? {env, dryRun} : undefined})
  }

  faults(): Promise<FaultInfo[]> {
    return this.call('GET /v1/faults', {})
  }

  /** The dev issuer's public keys (`mesh token --jwks`). */
  jwks(): Promise<ResponseOf<'GET /v1/jwks'>> {
    return this.call('GET /v1/jwks', {})
  }

  injectFault(spec: FaultSpec): Promise<FaultInfo> {
    return this.call('POST /v1/faults', {body: spec})
  }

  /** By id, by service, or all (no selector). */
  clearFaults(selector: {id?: string; service?: string} = {}): Promise<FaultInfo[]> {
    return this.call('POST /v1/faults/clear', {body: selector})
  }

  /** `mesh certs`: each identity's presented certificate and its files. */
  certs(): Promise<CertificateListing[]> {
    return this.call('GET /v1/certs', {})
  }

  /** `mesh certs rotate [SERVICE]`: new certificates now; the listing after. */
  rotateCerts(service?: string): Promise<CertificateListing[]> {
    return this.call('POST /v1/certs/rotate', {body: {service}})
  }

  deploy(plan: DeployPlan): Promise<DeployRecord> {
    return this.call('POST /v1/deploys', {body: plan})
  }

  deployRecord(id: string): Promise<DeployRecord> {
    return this.call('GET /v1/deploy', {query: {id}})
  }

  history(service?: string): Promise<DeployRecord[]> {
    return this.call('GET /v1/deploys', {query: {service: service || undefined}})
  }

  /** The autoscaler's decisions and failed starts, oldest first. */
  scalingHistory(service?: string): Promise<Array<Stamped<ScalingRecord>>> {
    return this.call('GET /v1/scaling', {query: {service: service || undefined}})
  }

  rollback(service: string): Promise<DeployRecord> {
    return this.call('POST /v1/rollback', {body: {service}})
  }

  events(since = 0): Promise<Array<Stamped<DaemonEvent>>> {
    return this.call('GET /v1/events', {query: {since: String(since)}})
  }

  /**
   * `mesh tap`: the requests the filter selects, as they complete, until `stop()` (or the
   * mesh stops). `opened` resolves once the daemon accepted the filter (or rejects with why not).
   */
  tap(filter: TapFilter & {maxRps?: number}, onLine: (line: TapLine) => void): {opened: Promise<void>; ended: Promise<void>; stop(): void} {
    const {errors, maxRps, ...names} = filter
    const q = queryString({...names, errors: errors ? '1' : undefined, maxRps: maxRps?.toString()} satisfies StreamQueryOf<'/v1/tap'>)
    let req: http.ClientRequest
    let stopped = false
    let ended!: Promise<void>
    const opened = new Promise<void>((resolve, reject) => {
      req = http.get(`${this.state.controlUrl}/v1/tap${q}`, {headers: {authorization: `Bearer ${this.token}`}, agent: false}, (res) => {
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
            if (line && !stopped) onLine(JSON.parse(line) as ControlStreams['/v1/tap']['line'])
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

  /** One route of the map (api.ts), typed by it: what it takes, what it answers. */
  async call<K extends RouteKey>(route: K, {body, query}: RequestOf<K>): Promise<ResponseOf<K>> {
    const {method, path} = splitRoute(route)
    let res: {statusCode: number; text: string}
    try {
      res = await send(this.state.controlUrl + path + queryString(query), method, this.token, body === undefined ? undefined : JSON.stringify(body))
    } catch (error) {
      throw new MeshError('MESH_DAEMON_UNREACHABLE', `the mesh daemon at ${this.state.controlUrl} did not answer.`, {
        cause: error,
        hints: ['Run `mesh down` to clean up, then `mesh up` again.'],
      })
    }
    if (res.statusCode >= 400) throw controlError(res.statusCode, res.text)
    // The daemon of this build answered K: its response is K's (api.ts types both sides).
    return JSON.parse(res.text) as ResponseOf<K>
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
  return stillRuns(stateProcessTable(state).readSync(), state.daemon)
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

function traceParams(q: TraceQuery): QueryOf<'GET /v1/traces'> {
  return {
    service: q.service || undefined,
    errors: q.errorsOnly ? '1' : undefined,
    minDurationMs: q.minDurationMs?.toString(),
    since: q.sinceMs?.toString(),
    complete: q.completeOnly ? '1' : undefined,
    limit: q.limit?.toString(),
  }
}
