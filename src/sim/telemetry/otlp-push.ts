// Live export of spans to an OTLP/HTTP collector named in mesh.yaml. The data path
// only appends to a queue; a timer (or a full batch) sends one POST at a time.
// A collector that is down or slow costs dropped spans, counted, never a slower request.
//
//   push(span) ──▶ queue ──(maxBatch or every flushMs)──▶ POST <endpoint>/v1/traces (OTLP/JSON)
import {request} from 'undici'
import type {Clock, Timer} from '../time/clock.js'
import {toOtlp} from './export-otlp.js'
import type {Span} from './span.js'

/** Sends one body; resolves to the HTTP status. Injected in tests. */
export type OtlpPost = (url: string, body: string, signal: AbortSignal) => Promise<number>

export interface OtlpPusherOptions {
  /** Collector base URL, e.g. http://127.0.0.1:4318 */
  endpoint: string
  clock: Clock
  flushMs?: number
  maxBatch?: number
  /** Spans waiting beyond this are dropped (newest first), so a dead collector cannot eat memory. */
  maxQueue?: number
  /** A POST that takes longer is abandoned and its spans counted as dropped. */
  timeoutMs?: number
  post?: OtlpPost
}

export interface OtlpPusherStats {
  queued: number
  sent: number
  dropped: number
  failedRequests: number
  lastError?: string
}

const defaultPost: OtlpPost = async (url, body, signal) => {
  const res = await request(url, {
    method: 'POST',
    headers: {'content-type': 'application/json'},
    body,
    signal,
  })
  // Drain the body so the keep-alive socket can be reused.
  await res.body.dump()
  return res.statusCode
}

export class OtlpPusher {
  private queue: Span[] = []
  private timer: Timer | undefined
  private inFlight: Promise<void> | undefined
  private closed = false
  private readonly url: string
  private readonly flushMs: number
  private readonly maxBatch: number
  private readonly maxQueue: number
  private readonly timeoutMs: number
  private readonly post: OtlpPost
  private readonly clock: Clock
  private readonly counters: OtlpPusherStats = {queued: 0, sent: 0, dropped: 0, failedRequests: 0}

  constructor(options: OtlpPusherOptions) {
    this.url = options.endpoint.replace(/\/+$/, '') + '/v1/traces'
    this.clock = options.clock
    this.flushMs = options.flushMs ?? 2000
    this.maxBatch = Math.max(1, options.maxBatch ?? 512)
    this.maxQueue = Math.max(this.maxBatch, options.maxQueue ?? this.maxBatch * 20)
    this.timeoutMs = options.timeoutMs ?? 5000
    this.post = options.post ?? defaultPost
  }

  /** Never blocks and never throws. */
  push(span: Span): void {
    if (this.closed || this.queue.length >= this.maxQueue) {
      this.counters.dropped++
      return
    }
    this.queue.push(span)
    if (this.queue.length >= this.maxBatch) this.kick()
    else this.timer ??= this.clock.setTimer(this.flushMs, () => {
      this.timer = undefined
      this.kick()
    })
  }

  /** Send everything queued now (batch by batch); resolves when done. */
  async flush(): Promise<void> {
    while (this.inFlight || this.queue.length > 0) {
      if (this.inFlight) await this.inFlight
      else this.kick()
    }
  }

  /** Flush what is queued, then refuse further spans. */
  async close(): Promise<void> {
    this.closed = true
    this.timer?.cancel()
    this.timer = undefined
    await this.flush()
  }

  stats(): OtlpPusherStats {
    return {...this.counters, queued: this.queue.length}
  }

  private kick(): void {
    if (this.inFlight || this.queue.length === 0) return
    this.timer?.cancel()
    this.timer = undefined
    const batch = this.queue.splice(0, this.maxBatch)
    this.inFlight = this.send(batch).finally(() => {
      this.inFlight = undefined
      // More arrived while we were sending: a full batch goes now, a partial one on the timer.
      if (this.queue.length >= this.maxBatch) this.kick()
      else if (this.queue.length > 0 && !this.closed) {
        this.timer ??= this.clock.setTimer(this.flushMs, () => {
          this.timer = undefined
          this.kick()
        })
      }
    })
  }

  private async send(batch: Span[]): Promise<void> {
    const controller = new AbortController()
    const deadline = this.clock.setTimer(this.timeoutMs, () => controller.abort(new Error('OTLP push timed out')))
    try {
      const status = await this.post(this.url, JSON.stringify(toOtlp(batch)), controller.signal)
      if (status >= 200 && status < 300) this.counters.sent += batch.length
      else this.fail(batch, `collector answered HTTP ${status}`)
    } catch (error) {
      this.fail(batch, (error as {code?: string}).code ?? (error as Error).message ?? String(error))
    } finally {
      deadline.cancel()
    }
  }

  private fail(batch: Span[], reason: string): void {
    this.counters.dropped += batch.length
    this.counters.failedRequests++
    this.counters.lastError = reason
  }
}
