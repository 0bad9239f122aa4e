// `mesh tap`, as `linkerd viz tap`: the requests going through the mesh right now, one
// event per request as it completes, filtered by who calls whom, path and method, and
// capped per second (Linkerd's --max-rps) so a busy mesh cannot flood the terminal or
// slow the data path. The data path pays one Set size check while nobody taps.
import type {RateLimitConfig} from '../config/types.js'
import {createLimiter, type RateLimiter} from '../proxy/policy/rate-limit.js'
import type {Clock, Timer} from '../time/clock.js'
import {isErrorSpan, type Span} from './span.js'

export interface TapFilter {
  /** Requests to or from this service. */
  service?: string
  from?: string
  to?: string
  /** A path prefix. */
  path?: string
  /** Upper case. */
  method?: string
  /** Only failed requests (5xx, no answer, or the mesh's own answer). */
  errors?: boolean
}

/** One request as `mesh tap` prints it. */
export interface TapEvent {
  /** Wall-clock epoch ms when it started. */
  at: number
  traceId: string
  source: string
  destination: string
  version?: string
  instance?: string
  method: string
  path: string
  status: number
  grpcStatus?: number
  durationMs: number
  flags?: string
  cause?: string
  /** Tries made, when the request was retried. */
  attempts?: number
}

/** A line of the tap stream: a request, or how many the rate cap left out in the last second. */
export type TapLine = TapEvent | {skipped: number}

/**
 * A request is its caller's span (the client span of a mesh call); a call to an instance's
 * published address has only the instance's server span, from "unknown". The server spans
 * of attempts are not requests of their own.
 */
export function tapEvent(span: Span, filter: TapFilter): TapEvent | undefined {
  const client = span.kind === 'client'
  if (!client && span.peerService !== 'unknown') return undefined
  const source = client ? span.service : 'unknown'
  const destination = client ? (span.peerService ?? 'unknown') : span.service
  if (filter.service && source !== filter.service && destination !== filter.service) return undefined
  if (filter.from && source !== filter.from) return undefined
  if (filter.to && destination !== filter.to) return undefined
  if (filter.method && span.method !== filter.method) return undefined
  if (filter.path && !span.path.startsWith(filter.path)) return undefined
  if (filter.errors && !isErrorSpan(span)) return undefined
  const attempts = span.decision?.attempts
  return {
    at: span.startMs,
    traceId: span.traceId,
    source,
    destination,
    version: client ? span.peerVersion : span.version,
    instance: client ? span.peerInstance : span.instance,
    method: span.method,
    path: span.path,
    status: span.status,
    grpcStatus: span.grpcStatus,
    durationMs: span.durationMs,
    flags: span.responseFlags,
    cause: span.cause,
    attempts: attempts !== undefined && attempts > 1 ? attempts : undefined,
  }
}

/** One subscriber: its filter, its cap, and where its lines go. */
export class Tap {
  private readonly limiter: RateLimiter
  private skipped = 0
  /** Armed by the first request left out: a second later it says how many were. */
  private report?: Timer

  constructor(
    private readonly filter: TapFilter,
    maxRps: number,
    private readonly clock: Clock,
    private readonly send: (line: TapLine) => void,
    /** Whether the subscriber takes more now: one that stops reading is skipped, never buffered for. */
    private readonly keepingUp: () => boolean = () => true,
  ) {
    const config: RateLimitConfig = {algorithm: 'token-bucket', requests: maxRps, periodMs: 1000, burst: Math.max(1, Math.ceil(maxRps)), perSource: false}
    this.limiter = createLimiter(config, clock.now())
  }

  /** Called for every span the mesh records. */
  readonly onSpan = (span: Span): void => {
    const event = tapEvent(span, this.filter)
    if (!event) return
    if (this.keepingUp() && this.limiter.tryAcquire(this.clock.now()).allowed) return this.send(event)
    this.skipped++
    this.armReport()
  }

  /** A second after the first request left out, says how many were (later again while the subscriber lags). */
  private armReport(): void {
    this.report ??= this.clock.setTimer(1000, () => {
      this.report = undefined
      if (!this.keepingUp()) return this.armReport()
      this.send({skipped: this.skipped})
      this.skipped = 0
    })
  }

  close(): void {
    this.report?.cancel()
  }
}
