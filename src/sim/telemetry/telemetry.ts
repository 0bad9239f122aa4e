// The daemon's telemetry hub: the data path hands it each span once; it keeps the
// span in the trace store, feeds golden metrics, writes the access log line of the
// sidecar that saw the hop, and queues the span for OTLP push.
//
//   data path ─record(span)▶ Telemetry ─┬─▶ TraceStore      (mesh traces / trace)
//                                       ├─▶ MetricsRecorder (mesh stat, /metrics)
//                                       ├─▶ access logs     (.mesh/access/<instance>.log)
//                                       ├─▶ OtlpPusher      (telemetry.otlp.endpoint)
//                                       └─▶ taps            (mesh tap, while one listens)
import {createWriteStream, mkdirSync, type WriteStream} from 'node:fs'
import path from 'node:path'
import type {TelemetrySink} from '../proxy/telemetry-sink.js'
import type {Clock, Timer} from '../time/clock.js'
import {MetricsRecorder, type Observation} from './metrics.js'
import {OtlpPusher} from './otlp-push.js'
import type {Span} from './span.js'
import {TraceSampler} from './trace-sampler.js'
import {TraceStore} from './trace-store.js'
import {TcpMetrics} from './tcp-metrics.js'

export interface TelemetryOptions {
  clock: Clock
  /** Where access logs go; none when absent. */
  accessLogDir?: string
  /** OTLP/HTTP collector base URL (spans are POSTed to <endpoint>/v1/traces). */
  otlpEndpoint?: string
  /** `telemetry.sampling.spansPerSecond`: what the trace store takes in under load (trace-sampler.ts). */
  spansPerSecond?: number
}

export class Telemetry implements TelemetrySink {
  readonly traces = new TraceStore()
  readonly sampler: TraceSampler
  readonly metrics = new MetricsRecorder()
  /** `protocol: tcp` connections: counted, never traced. */
  readonly tcp = new TcpMetrics()
  private pusher?: OtlpPusher
  /** Pushers `mesh apply` replaced, still sending what they had queued. */
  private readonly retiring = new Set<Promise<void>>()
  /** `mesh tap` subscribers (tap.ts): each sees every span while it listens. */
  readonly taps = new Set<(span: Span) => void>()
  private readonly observation: Observation = {
    reporter: 'source',
    source: '',
    sourceVersion: undefined,
    destination: '',
    destinationVersion: undefined,
    destinationInstance: undefined,
    status: 0,
    grpcStatus: undefined,
    durationMs: 0,
    responseFlags: undefined,
    attempt: undefined,
    protocol: undefined,
    mtls: undefined,
    sourcePrincipal: undefined,
    destinationPrincipal: undefined,
    coldStartMs: undefined,
  }
  private readonly accessLogs = new Map<string, {stream: WriteStream; pending: string[]; bytes: number}>()
  private flushTimer?: Timer

  constructor(private readonly opts: TelemetryOptions) {
    this.sampler = new TraceSampler(opts.spansPerSecond)
    this.setOtlpEndpoint(opts.otlpEndpoint)
    this.setAccessLogDir(opts.accessLogDir)
  }

  /** What `mesh apply` compares with mesh.yaml. */
  settings(): {accessLog: boolean; spansPerSecond: number; otlpEndpoint?: string} {
    return {accessLog: this.opts.accessLogDir !== undefined, spansPerSecond: this.sampler.rate, otlpEndpoint: this.opts.otlpEndpoint}
  }

  /** `mesh apply`: each setting takes effect for the spans that follow. */
  configure(settings: {accessLogDir?: string; spansPerSecond: number; otlpEndpoint?: string}): void {
    if (settings.accessLogDir !== this.opts.accessLogDir) this.setAccessLogDir(settings.accessLogDir)
    if (settings.spansPerSecond !== this.sampler.rate) this.sampler.setRate(settings.spansPerSecond)
    if (settings.otlpEndpoint !== this.opts.otlpEndpoint) this.setOtlpEndpoint(settings.otlpEndpoint)
  }

  /**
   * Spans from now on go to `endpoint` (none when undefined). What the previous collector's
   * pusher had queued is still sent to it, in the background: a slow or dead collector
   * never holds up an apply.
   */
  private setOtlpEndpoint(endpoint: string | undefined): void {
    const old = this.pusher
    this.opts.otlpEndpoint = endpoint
    this.pusher = endpoint ? new OtlpPusher({endpoint, clock: this.opts.clock}) : undefined
    if (!old) return
    const closing = old.close().finally(() => this.retiring.delete(closing))
    this.retiring.add(closing)
  }

  /** Turns access logs on (into `dir`) or off (undefined) for the hops that follow. */
  private setAccessLogDir(dir: string | undefined): void {
    if (dir) mkdirSync(dir, {recursive: true})
    else this.flushAccessLogs()
    this.opts.accessLogDir = dir
  }


  record(span: Span): void {
    const now = this.opts.clock.now()
    if (this.sampler.keep(span, now)) this.traces.add(span)
    // The collector gets every span: sampling there is the collector's choice.
    this.pusher?.push(span)
    // Metrics speak of source and destination; a span of itself and its peer. One
    // observation object, refilled per span: the recorder copies what it keeps.
    const client = span.kind === 'client'
    const o = this.observation
    o.reporter = client ? 'source' : 'destination'
    o.source = client ? span.service : (span.peerService ?? 'unknown')
    o.sourceVersion = client ? span.version : span.peerVersion
    o.destination = client ? (span.peerService ?? 'unknown') : span.service
    o.destinationVersion = client ? span.peerVersion : span.version
    o.destinationInstance = client ? span.peerInstance : span.instance
    o.status = span.status
    o.grpcStatus = span.grpcStatus
    o.durationMs = span.durationMs
    o.responseFlags = span.responseFlags
    o.attempt = span.attempt
    const security = span.security
    o.protocol = security?.protocol
    o.mtls = security?.mtls
    o.sourcePrincipal = security?.sourcePrincipal
    o.destinationPrincipal = security?.destinationPrincipal
    // The caller's side saw the wait for an instance to start (the activator's).
    o.coldStartMs = client ? span.coldStartMs : undefined
    this.metrics.observe(o, now)
    if (this.opts.accessLogDir) this.writeAccessLog(span)
    if (this.taps.size > 0) for (const tap of this.taps) tap(span)
  }

  async close(): Promise<void> {
    this.flushTimer?.cancel()
    this.flushAccessLogs()
    await Promise.all([this.pusher?.close(), ...this.retiring])
    await Promise.all([...this.accessLogs.values()].map((s) => new Promise((r) => s.stream.end(r))))
  }

  /** Access-log lines are written in batches: one write per file per 100 ms instead of one per hop. */
  flushAccessLogs(): void {
    this.flushTimer = undefined
    for (const log of this.accessLogs.values()) {
      if (log.pending.length === 0) continue
      log.stream.write(log.pending.join(''))
      log.pending = []
      log.bytes = 0
    }
  }

  private isoSecond = 0
  private isoPrefix = ''

  /** ISO-8601 with ms; the date-and-second part is formatted once per second. */
  private isoTime(ms: number): string {
    const second = Math.floor(ms / 1000)
    if (second !== this.isoSecond) {
      this.isoSecond = second
      this.isoPrefix = new Date(second * 1000).toISOString().slice(0, 20)
    }
    return `${this.isoPrefix}${String(Math.floor(ms - second * 1000)).padStart(3, '0')}Z`
  }

  private writeAccessLog(span: Span): void {
    // Each sidecar logs what it saw: the caller's outbound side the call, the callee's inbound side each attempt.
    const owner = span.instance ?? span.service
    let log = this.accessLogs.get(owner)
    if (!log) {
      const stream = createWriteStream(path.join(this.opts.accessLogDir!, `${owner}.log`), {flags: 'a'})
      stream.on('error', () => undefined)
      this.accessLogs.set(owner, (log = {stream, pending: [], bytes: 0}))
    }
    // Built by hand: only the path and the cause can hold characters JSON must escape
    // (the method is an HTTP token, checked by node:http).
    const self = span.instance ?? span.service
    const peer = span.peerInstance ?? span.peerService ?? 'unknown'
    const client = span.kind === 'client'
    const line =
      `{"time":"${this.isoTime(span.startMs)}","side":"${client ? 'outbound' : 'inbound'}","traceId":"${span.traceId}",` +
      `"spanId":"${span.spanId}","source":"${client ? self : peer}","destination":"${client ? peer : self}","method":"${span.method}",` +
      `"path":${jsonString(span.path)},"status":${span.status},"durationMs":${Math.round(span.durationMs * 100) / 100},` +
      `"attempt":${span.attempt ?? 1},"flags":"${span.responseFlags ?? '-'}"${span.cause ? `,"cause":${JSON.stringify(span.cause)}` : ''}}\n`
    log.pending.push(line)
    log.bytes += line.length
    if (log.bytes > 64 * 1024) this.flushAccessLogs()
    else this.flushTimer ??= this.opts.clock.setTimer(100, () => this.flushAccessLogs())
  }
}

/** JSON.stringify for a string, skipped when nothing in it needs escaping (the usual path). */
function jsonString(value: string): string {
  return NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : `"${value}"`
}
const NEEDS_ESCAPE = /["\\\u0000-\u001f\u007f-\uffff]/
