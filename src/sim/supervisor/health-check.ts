// Is an instance ready for traffic? A probe (HTTP GET, gRPC health check, a command or TCP connect) runs every
// intervalMs; HealthState turns its results into transitions with thresholds, so
// one slow answer neither admits nor ejects an instance.
//
//   clock ─▶ probe() ─▶ HealthState.record(ok) ─▶ 'healthy' | 'unhealthy' (on change only)

import {EventEmitter} from 'node:events'
import {execa} from 'execa'
import http2 from 'node:http2'
import net from 'node:net'
import tls from 'node:tls'
import type {Clock, Timer} from '../time/clock.js'

export interface HealthThresholds {
  /** Successes in a row that make an unhealthy instance healthy. */
  healthyThreshold: number
  /** Failures in a row that make a healthy instance unhealthy. */
  unhealthyThreshold: number
}

export interface ProbeResult {
  ok: boolean
  detail: string
}

export type Probe = () => Promise<ProbeResult>

/** Starts unhealthy: an instance earns traffic by passing healthyThreshold probes. */
export class HealthState {
  healthy = false
  private streak = 0

  constructor(private readonly thresholds: HealthThresholds) {}

  record(ok: boolean): 'became-healthy' | 'became-unhealthy' | undefined {
    // The streak counts results that disagree with the current state.
    if (ok === this.healthy) {
      this.streak = 0
      return undefined
    }
    this.streak++
    const needed = ok ? this.thresholds.healthyThreshold : this.thresholds.unhealthyThreshold
    if (this.streak < Math.max(1, needed)) return undefined
    this.healthy = ok
    this.streak = 0
    return ok ? 'became-healthy' : 'became-unhealthy'
  }
}

/**
 * GET http://host:port/path; ok on 2xx and 3xx. Never rejects. Written on a bare socket
 * rather than node:http's client: the daemon's data plane runs node:http's server and
 * undici, and a ClientRequest going through the functions they share (OutgoingMessage's,
 * the parser callbacks) every few seconds made the request path measurably slower
 * (bench/process-environment.js, mode `probes`). The status line is all a probe needs.
 */
export function probeHttp(host: string, port: number, path: string, timeoutMs: number, tlsOptions?: tls.ConnectionOptions): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let settled = false
    // A fresh connection per probe, so a pooled socket cannot hide a dead listener. An
    // instance that serves TLS (policy.tls) is probed over TLS.
    const socket = tlsOptions ? tls.connect({host, port, ...tlsOptions}) : net.connect({host, port})
    const done = (result: ProbeResult) => {
      if (settled) return
      settled = true
      socket.destroy()
      resolve(result)
    }
    let head = ''
    socket.setEncoding('latin1')
    socket.setTimeout(timeoutMs, () => done({ok: false, detail: `GET ${path}: no answer within ${timeoutMs}ms`}))
    socket.once(tlsOptions ? 'secureConnect' : 'connect', () => {
      const authority = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${authority}\r\nUser-Agent: meshsim-health-check\r\nConnection: close\r\n\r\n`)
    })
    socket.on('data', (chunk: string) => {
      head += chunk
      const eol = head.indexOf('\r\n')
      if (eol === -1) {
        if (head.length > 8192) done({ok: false, detail: `GET ${path}: not an HTTP response`})
        return
      }
      const match = /^HTTP\/\d(?:\.\d)? (\d{3})/.exec(head.slice(0, eol))
      if (!match) return done({ok: false, detail: `GET ${path}: not an HTTP response`})
      const status = Number(match[1])
      // 1xx is not the answer (a server may send 103 Early Hints): wait for the final status line.
      if (status < 200) {
        const blank = head.indexOf('\r\n\r\n')
        if (blank !== -1) head = head.slice(blank + 4)
        return
      }
      done({ok: status < 400, detail: `GET ${path}: HTTP ${status}`})
    })
    socket.once('end', () => done({ok: false, detail: `GET ${path}: ECONNRESET`}))
    socket.once('error', (error: NodeJS.ErrnoException) => done({ok: false, detail: `GET ${path}: ${error.code ?? error.message}`}))
  })
}

// grpc.health.v1.HealthCheckResponse.ServingStatus, by number.
const SERVING_STATUS = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN']

/**
 * gRPC's health checking protocol (grpc.health.v1.Health/Check over h2c), as Kubernetes'
 * gRPC probes and grpc_health_probe ask it: ok when `service` ('' for the whole server)
 * is SERVING. The two messages are one string field and one enum field, written and read
 * by hand rather than with a protobuf library. Never rejects.
 */
export function probeGrpc(host: string, port: number, service: string, timeoutMs: number, clock: Clock, tlsOptions?: tls.ConnectionOptions): Promise<ProbeResult> {
  const what = `grpc health${service ? ` ${service}` : ''}`
  return new Promise((resolve) => {
    let settled = false
    const authority = `${host.includes(':') ? `[${host}]` : host}:${port}`
    const session = tlsOptions ? http2.connect(`https://${authority}`, tlsOptions) : http2.connect(`http://${authority}`)
    const done = (result: ProbeResult) => {
      if (settled) return
      settled = true
      timer.cancel()
      session.destroy()
      resolve(result)
    }
    const timer = clock.setTimer(timeoutMs, () => done({ok: false, detail: `${what}: no answer within ${timeoutMs}ms`}))
    session.on('error', (error: NodeJS.ErrnoException) => done({ok: false, detail: `${what}: ${error.code ?? error.message}`}))
    const name = Buffer.from(service, 'utf8')
    // HealthCheckRequest {string service = 1}: tag 0x0a, length, bytes (nothing for '').
    const message = name.length ? Buffer.concat([Buffer.from([0x0a]), varint(name.length), name]) : Buffer.alloc(0)
    const frame = Buffer.alloc(5 + message.length)
    frame.writeUInt32BE(message.length, 1)
    message.copy(frame, 5)
    const stream = session.request({':method': 'POST', ':path': '/grpc.health.v1.Health/Check', 'content-type': 'application/grpc', te: 'trailers'})
    const chunks: Buffer[] = []
    let grpcStatus: string | undefined
    stream.on('response', (headers) => (grpcStatus = headers['grpc-status'] as string | undefined))
    stream.on('trailers', (trailers) => (grpcStatus = (trailers['grpc-status'] as string | undefined) ?? grpcStatus))
    stream.on('data', (chunk: Buffer) => chunks.push(chunk))
    // A stream cancelled because its connection failed carries that failure as its cause.
    stream.on('error', (error: NodeJS.ErrnoException) => {
      const cause = error.cause as NodeJS.ErrnoException | undefined
      done({ok: false, detail: `${what}: ${cause?.code ?? error.code ?? error.message}`})
    })
    stream.on('end', () => {
      if (grpcStatus !== '0') return done({ok: false, detail: `${what}: grpc-status ${grpcStatus ?? 'missing'}${grpcStatus === '12' ? ' (no health service)' : ''}`})
      const status = SERVING_STATUS[servingStatus(Buffer.concat(chunks).subarray(5))] ?? 'UNKNOWN'
      done({ok: status === 'SERVING', detail: `${what}: ${status}`})
    })
    stream.end(frame)
  })
}

function varint(n: number): Buffer {
  const bytes: number[] = []
  while (n > 0x7f) {
    bytes.push((n & 0x7f) | 0x80)
    n >>>= 7
  }
  bytes.push(n)
  return Buffer.from(bytes)
}

/** HealthCheckResponse {ServingStatus status = 1}: the varint after tag 0x08 (absent: 0, UNKNOWN). */
function servingStatus(message: Buffer): number {
  if (message[0] !== 0x08) return 0
  let value = 0
  for (let i = 1, shift = 0; i < message.length; i++, shift += 7) {
    value |= (message[i] & 0x7f) << shift
    if (message[i] < 0x80) break
  }
  return value
}

/**
 * Runs `command` in a shell, as docker compose's healthcheck `test` does (`pg_isready`,
 * `redis-cli ping`); ok when it exits 0 within `timeoutMs`. Never rejects.
 */
export async function probeCommand(command: string, where: {cwd: string; env: Record<string, string>}, timeoutMs: number): Promise<ProbeResult> {
  const run = await execa(command, {shell: true, cwd: where.cwd, env: where.env, stdin: 'ignore', timeout: timeoutMs, killSignal: 'SIGKILL', reject: false, all: true})
  if (run.timedOut) return {ok: false, detail: `\`${command}\`: no exit within ${timeoutMs}ms`}
  if (run.exitCode === 0) return {ok: true, detail: `\`${command}\`: exit 0`}
  const said = String(run.all ?? '').trim().split('\n').pop()?.slice(0, 120)
  return {ok: false, detail: `\`${command}\`: ${run.exitCode === undefined ? run.shortMessage : `exit ${run.exitCode}`}${said ? ` (${said})` : ''}`}
}

/** Connects to host:port; ok once the connection is accepted. Never rejects. */
export function probeTcp(host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let settled = false
    const socket = net.connect({host, port})
    const done = (result: ProbeResult) => {
      if (settled) return
      settled = true
      socket.destroy()
      resolve(result)
    }
    socket.setTimeout(timeoutMs, () => done({ok: false, detail: `tcp ${host}:${port}: no answer within ${timeoutMs}ms`}))
    socket.once('connect', () => done({ok: true, detail: `tcp ${host}:${port}: connected`}))
    socket.once('error', (error: NodeJS.ErrnoException) => done({ok: false, detail: `tcp ${host}:${port}: ${error.code ?? error.message}`}))
  })
}

/** The first probe after a failed one at start; doubled each time up to startIntervalMs. */
const FIRST_START_PROBE_MS = 10

export interface HealthCheckerOptions {
  probe: Probe
  intervalMs: number
  /** Probe interval until the first time the instance is healthy (default: intervalMs). */
  startIntervalMs?: number
  thresholds: HealthThresholds
  clock: Clock
}

/**
 * Runs a probe every intervalMs on the clock (the next one is scheduled when the
 * last has answered, so slow probes never pile up). Emits 'healthy' (detail) and
 * 'unhealthy' (detail) on transitions, and 'probe' (result) after every probe.
 */
export class HealthChecker extends EventEmitter {
  lastDetail: string | undefined
  private readonly state: HealthState
  private timer: Timer | undefined
  private running = false
  private generation = 0
  private everHealthy = false
  /** Probes made since start() before the first pass (the start cadence doubles from FIRST_START_PROBE_MS). */
  private startProbes = 0

  constructor(private readonly opts: HealthCheckerOptions) {
    super()
    this.state = new HealthState(opts.thresholds)
  }

  get healthy(): boolean {
    return this.state.healthy
  }

  /** Probes at once, then every intervalMs. Idempotent. */
  start(): void {
    if (this.running) return
    this.running = true
    this.startProbes = 0
    const generation = ++this.generation
    void this.tick(generation)
  }

  stop(): void {
    this.running = false
    this.generation++
    this.timer?.cancel()
    this.timer = undefined
  }

  private async tick(generation: number): Promise<void> {
    let result: ProbeResult
    try {
      result = await this.opts.probe()
    } catch (error) {
      result = {ok: false, detail: `probe failed: ${(error as Error).message}`}
    }
    // A stop() (or a stop() and start()) while the probe was in flight discards its answer.
    if (generation !== this.generation) return
    this.lastDetail = result.detail
    this.emit('probe', result)
    const transition = this.state.record(result.ok)
    if (transition === 'became-healthy') this.emit('healthy', result.detail)
    else if (transition === 'became-unhealthy') this.emit('unhealthy', result.detail)
    if (generation !== this.generation) return // a listener stopped us
    if (transition === 'became-healthy') this.everHealthy = true
    // Until the first pass, probe fast (a Kubernetes startup probe): a new instance
    // joins the registry within ~100 ms of listening instead of one interval later.
    // The first few come sooner still (10, 20, 40, 80 ms): a simulated instance in a host
    // listens a few ms after its start, and `mesh up` starts a 40-deep chain one level at a
    // time, so a flat 100 ms made 4 s of a chain's start; a refused probe costs next to nothing.
    const {intervalMs, startIntervalMs} = this.opts
    const delay = this.everHealthy || startIntervalMs === undefined
      ? intervalMs
      : Math.min(intervalMs, startIntervalMs, FIRST_START_PROBE_MS * 2 ** this.startProbes++)
    this.timer = this.opts.clock.setTimer(delay, () => void this.tick(generation))
  }
}
