// The engine of `mesh load`: open-loop load at a fixed rate, as wrk2 does it.
// Request i is due at t0 + i/rps whatever happened to earlier requests, and its
// latency runs from that INTENDED time, so a server that stalls cannot hide the stall
// by slowing the sender (coordinated omission). `concurrency` caps requests in flight;
// a request due while the cap is reached is dropped and counted (k6's dropped iterations),
// never sent late: a queue would make an overloaded open-loop run a closed one, sending
// after the run's end at the pace the target allows, and its rate and latency would lie.
//
//   clock timer ──due(i)──▶ in flight < concurrency ? send(i) : dropped++
//   send(i) done ──▶ latency = now − intended(i) ──▶ LatencyHistogram
//
// Stopping (the signal) sends nothing more and lets the requests in flight finish, each
// bounded by its timeout: cutting them off would show in the mesh as clients that hung
// up (499s in its traces and metrics) when nobody did.
import {readFileSync} from 'node:fs'
import {Pool} from 'undici'
import {RESPONSE_FLAGS_HEADER} from '../proxy/headers.js'
import {LatencyHistogram, type LatencySummary} from '../telemetry/histogram.js'
import {type Clock, realClock, type Timer} from '../time/clock.js'
import {type Random, SeededRandom, seedFrom} from '../time/random.js'
import {type Arrivals, ArrivalSchedule, constantShape, expectedArrivals, type LoadShape, peakRps, shapeProblem} from './arrival-schedule.js'

export interface SendRequest {
  /** Path (and query) on the target, e.g. '/items'. */
  path: string
  method: string
  headers: Record<string, string>
}

/** What one response looked like; a network failure is a thrown error with a `code`. */
export interface SendResult {
  status: number
  /** The mesh's `x-mesh-response-flags` header, when it answered itself. */
  responseFlags?: string
}

export type SendFn = (req: SendRequest, signal: AbortSignal) => Promise<SendResult>

export interface LoadProgress {
  sent: number
  completed: number
  errors: number
  /** Due while `concurrency` were in flight: not sent. */
  dropped: number
  elapsedMs: number
  /** Completions over the last progress interval, per second. */
  currentRps: number
}

export interface RequestOutcome {
  index: number
  intendedMs: number
  sentMs: number
  endMs: number
  latencyMs: number
  status: number
  /** Set when the request counts as an error: a response flag, 'HTTP 5xx', or a network error code. */
  error?: string
}

export interface LoadOptions {
  /** Base URL of the target (the ingress, or a sidecar's address). Needed by the default `send`. */
  target?: string
  /** An https target's certificate must chain to the PEM certificates in this file (the mesh CA's, for the HTTPS ingress). */
  caFile?: string
  /** A constant rate for `durationMs`; ignored when `shape` is given. */
  rps?: number
  durationMs?: number
  /** Idle stretches, ramps and constant rates one after another, with uniform or Poisson arrivals. */
  shape?: LoadShape
  /** Where Poisson gaps come from; default a SeededRandom of `seed`. */
  random?: Random
  seed?: number
  path?: string
  method?: string
  headers?: Record<string, string>
  /** Requests in flight at most; default max(16, rps) capped at 1000. One due at the cap is dropped (counted, never sent late). */
  concurrency?: number
  /** A request taking longer is abandoned and counted as error 'timeout'. */
  timeoutMs?: number
  clock?: Clock
  send?: SendFn
  /** Stops the run: nothing more is sent, and the result comes once the requests in flight have finished. */
  signal?: AbortSignal
  onProgress?: (p: LoadProgress) => void
  progressIntervalMs?: number
  onResponse?: (o: RequestOutcome) => void
}

/** Percentiles are nearest rank within 1/128 of the sample (LatencyHistogram's buckets); max and mean are exact. */
export interface LoadResult {
  /** Requests completed (answered or failed). */
  requests: number
  /** Requests sent (started). */
  sent: number
  /** Requests due while `concurrency` were in flight: never sent (k6's dropped iterations); the rate and latency are of those sent. */
  dropped: number
  /** The cap on requests in flight the run had. */
  concurrency: number
  /** Requests the shape still planned when the run was stopped (about, for Poisson arrivals): never sent. */
  cancelled: number
  durationMs: number
  throughputRps: number
  /** Milliseconds, from intended send time to response. */
  latency: LatencySummary
  statuses: Record<string, number>
  errors: Record<string, number>
  successRate: number
  aborted: boolean
  arrivals: Arrivals
  /** The seed of the Poisson gaps, to replay the same arrivals. */
  seed?: number
}

export class LoadError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'LoadError'
  }
}

/** How many requests a run of `durationMs` at `rps` sends: 200 rps × 5 s = 1000. */
export function plannedRequests(rps: number, durationMs: number): number {
  return Math.max(0, Math.floor((rps * durationMs) / 1000 + 1e-9))
}

export function defaultConcurrency(rps: number): number {
  return Math.min(1000, Math.max(16, Math.ceil(rps)))
}

/** The error class of a response, or undefined when it succeeded. */
export function classify(result: SendResult): string | undefined {
  if (result.responseFlags) return result.responseFlags
  if (result.status >= 500 || result.status <= 0) return `HTTP ${result.status}`
  return undefined
}

export function networkErrorCode(error: unknown): string {
  const e = error as {code?: string; name?: string; cause?: {code?: string}; message?: string}
  return e?.code ?? e?.cause?.code ?? e?.name ?? e?.message ?? 'error'
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  let shape = options.shape
  if (shape) {
    const problem = shapeProblem(shape)
    if (problem) throw new LoadError(`the load shape is not valid: ${problem}`)
  } else {
    const {rps = NaN, durationMs = NaN} = options
    if (!(rps > 0) || !Number.isFinite(rps)) throw new LoadError(`--rps must be a positive number, got ${options.rps}`)
    if (!(durationMs > 0)) throw new LoadError(`--duration must be positive, got ${options.durationMs}ms`)
    shape = constantShape(rps, durationMs)
  }
  const clock = options.clock ?? realClock
  const concurrency = Math.max(1, Math.floor(options.concurrency ?? defaultConcurrency(peakRps(shape))))
  let send = options.send
  let pool: Pool | undefined
  if (!send) {
    if (!options.target) throw new LoadError('a target URL is needed when no send function is given')
    const created = undiciSend(options.target, concurrency, options.caFile === undefined ? undefined : readFileSync(options.caFile, 'utf8'))
    send = created.send
    pool = created.pool
  }
  try {
    return await new Run(options, shape, clock, concurrency, send).result()
  } finally {
    await pool?.close().catch(() => undefined)
  }
}

/** The default sender: one keep-alive pool sized to the concurrency cap. */
export function undiciSend(target: string, connections: number, ca?: string): {send: SendFn; pool: Pool} {
  const url = new URL(target)
  const pool = new Pool(url.origin, {connections, keepAliveTimeout: 4_000, pipelining: 1, ...(ca ? {connect: {ca}} : {})})
  const base = url.pathname.replace(/\/+$/, '')
  const send: SendFn = async (req, signal) => {
    const res = await pool.request({
      path: base + req.path,
      method: req.method as 'GET',
      headers: req.headers,
      signal,
    })
    await res.body.dump()
    const flags = res.headers[RESPONSE_FLAGS_HEADER]
    return {status: res.statusCode, responseFlags: Array.isArray(flags) ? flags.join(',') : flags || undefined}
  }
  return {send, pool}
}

class Run {
  private readonly schedule: ArrivalSchedule
  private readonly seed: number | undefined
  /** When the next request is due (absolute ms), undefined once the shape is over. */
  private nextDue: number | undefined
  private readonly t0: number
  private readonly histogram = new LatencyHistogram()
  private readonly statuses: Record<string, number> = {}
  private readonly errors: Record<string, number> = {}
  private next = 0
  private dropped = 0
  private sent = 0
  private completed = 0
  private errorCount = 0
  private inFlight = 0
  private lastEnd: number
  private dueTimer: Timer | undefined
  private progressTimer: Timer | undefined
  private completedAtLastProgress = 0
  private lastProgressAt: number
  private aborted = false
  private stoppedAt = 0
  private finished = false
  private resolve!: (r: LoadResult) => void
  private readonly done: Promise<LoadResult>

  constructor(
    private readonly options: LoadOptions,
    private readonly shape: LoadShape,
    private readonly clock: Clock,
    private readonly concurrency: number,
    private readonly send: SendFn,
  ) {
    let random = options.random
    if (shape.arrivals === 'poisson' && !random) {
      // A run nobody asked to replay gets a seed from the time; the result reports it so it can be.
      this.seed = options.seed ?? seedFrom('load', clock.wallNow())
      random = new SeededRandom(this.seed)
    } else this.seed = shape.arrivals === 'poisson' ? options.seed : undefined
    this.schedule = new ArrivalSchedule(shape, random)
    this.t0 = clock.now()
    this.nextDue = this.due()
    this.lastEnd = this.t0
    this.lastProgressAt = this.t0
    this.done = new Promise((resolve) => (this.resolve = resolve))
  }

  result(): Promise<LoadResult> {
    const signal = this.options.signal
    if (signal?.aborted) {
      this.stop()
      return this.done
    }
    signal?.addEventListener('abort', () => this.stop(), {once: true})
    if (this.options.onProgress) this.armProgress()
    this.dispatch()
    return this.done
  }

  private due(): number | undefined {
    const offset = this.schedule.next()
    return offset === undefined ? undefined : this.t0 + offset
  }

  /** Start (or queue) every request that is due, then sleep until the next one is. */
  private dispatch(): void {
    this.dueTimer = undefined
    if (this.aborted) return
    const now = this.clock.now()
    // A hair of tolerance: i × (1000/rps) is not always exact in floating point.
    while (this.nextDue !== undefined && this.nextDue <= now + 1e-6) {
      const index = this.next++
      const intended = this.nextDue
      this.nextDue = this.due()
      if (this.inFlight < this.concurrency) this.start(index, intended)
      else this.dropped++
    }
    if (this.nextDue !== undefined) {
      this.dueTimer = this.clock.setTimer(this.nextDue - now, () => this.dispatch())
    } else this.maybeFinish()
  }

  private start(i: number, intended: number): void {
    const sentMs = this.clock.now()
    const controller = new AbortController()
    this.inFlight++
    this.sent++
    const timeout = this.clock.setTimer(this.options.timeoutMs ?? 30_000, () =>
      controller.abort(Object.assign(new Error('request timed out'), {code: 'timeout'})),
    )
    const req: SendRequest = {
      path: this.options.path ?? '/',
      method: this.options.method ?? 'GET',
      headers: this.options.headers ?? {},
    }
    let promise: Promise<SendResult>
    try {
      promise = this.send(req, controller.signal)
    } catch (error) {
      promise = Promise.reject(error)
    }
    promise.then(
      (result) => this.complete(i, intended, sentMs, controller, timeout, result, undefined),
      (error) => this.complete(i, intended, sentMs, controller, timeout, undefined, error),
    )
  }

  private complete(
    index: number,
    intendedMs: number,
    sentMs: number,
    controller: AbortController,
    timeout: Timer,
    result: SendResult | undefined,
    error: unknown,
  ): void {
    timeout.cancel()
    this.inFlight--
    const endMs = this.clock.now()
    const latencyMs = Math.max(0, endMs - intendedMs)
    this.completed++
    this.lastEnd = Math.max(this.lastEnd, endMs)
    this.histogram.record(latencyMs)
    let cause: string | undefined
    let status = 0
    if (result) {
      status = result.status
      this.statuses[String(status)] = (this.statuses[String(status)] ?? 0) + 1
      cause = classify(result)
    } else {
      cause = controller.signal.aborted ? networkErrorCode(controller.signal.reason) : networkErrorCode(error)
    }
    if (cause !== undefined) {
      this.errorCount++
      this.errors[cause] = (this.errors[cause] ?? 0) + 1
    }
    this.options.onResponse?.({index, intendedMs, sentMs, endMs, latencyMs, status, error: cause})
    this.maybeFinish()
  }

  private maybeFinish(): void {
    if (this.finished || this.inFlight > 0) return
    if (!this.aborted && this.nextDue !== undefined) return
    this.finish()
  }

  /** Nothing more is sent; the run ends when the last request in flight does. */
  private stop(): void {
    if (this.finished || this.aborted) return
    this.aborted = true
    this.stoppedAt = this.clock.now()
    this.dueTimer?.cancel()
    this.dueTimer = undefined
    this.maybeFinish()
  }

  private finish(): void {
    this.finished = true
    this.dueTimer?.cancel()
    this.progressTimer?.cancel()
    const end = Math.max(this.lastEnd, this.stoppedAt)
    const durationMs = Math.max(0, end - this.t0)
    this.resolve({
      requests: this.completed,
      sent: this.sent,
      dropped: this.dropped,
      concurrency: this.concurrency,
      cancelled: this.aborted ? Math.max(0, Math.round(expectedArrivals(this.shape)) - this.next) : 0,
      durationMs,
      throughputRps: durationMs > 0 ? (this.completed * 1000) / durationMs : 0,
      latency: this.histogram.summary(),
      statuses: this.statuses,
      errors: this.errors,
      successRate: this.completed ? (this.completed - this.errorCount) / this.completed : 0,
      aborted: this.aborted,
      arrivals: this.shape.arrivals,
      ...(this.seed !== undefined ? {seed: this.seed} : {}),
    })
  }

  private armProgress(): void {
    const every = this.options.progressIntervalMs ?? 1000
    this.progressTimer = this.clock.setTimer(every, () => {
      if (this.finished) return
      const now = this.clock.now()
      const span = Math.max(1, now - this.lastProgressAt)
      const currentRps = ((this.completed - this.completedAtLastProgress) * 1000) / span
      this.completedAtLastProgress = this.completed
      this.lastProgressAt = now
      this.options.onProgress!({
        sent: this.sent,
        completed: this.completed,
        errors: this.errorCount,
        dropped: this.dropped,
        elapsedMs: now - this.t0,
        currentRps,
      })
      this.armProgress()
    })
  }
}
