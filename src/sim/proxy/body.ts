// A response body on its way from the instance (through any fault that shapes it) to
// the client. Not a stream.Readable, for two measured reasons:
//  - a Readable delivers its end a tick after its last chunk, so node:http wrote
//    every proxied response to the client in two syscalls (headers + body, then the
//    end); here the chunks and the end reach the client in the tick they arrive, and a
//    small response goes out in one write, as the bare proxy's does;
//  - a Readable (an EventEmitter, its state, its nextTicks) per response was a few µs
//    of the data path's own cost.
// One producer pushes (undici's callbacks, or a fault), one consumer attaches with
// pipeTo (the client's response, a fault, a discard); backpressure runs both ways.
import type {HeaderPairs} from './headers.js'

/** Where a body's bytes go. */
export interface BodySink {
  /** False: full; the sink calls `body.resume()` when it can take more. */
  write(chunk: Buffer): boolean
  /** `trailers`: what came after the body (gRPC's status), if anything. */
  end(trailers?: HeaderPairs): void
  /** The body was cut (`error` says why): the receiver sees a truncated response. */
  abort(error: Error): void
}

/** Who fills a body. */
export interface BodySource {
  /** The consumer can take more again (after push returned false). */
  resume(): void
  /** The consumer gave up before the end: stop producing. `error` is why it was cut; none when it was dropped quietly. */
  cancel(error?: Error): void
}

// Bytes held while no consumer is attached yet (undici delivers a small body before the
// layers have handed the response up) or while the consumer is full.
const HIGH_WATER_BYTES = 64 * 1024
// A body discarded on purpose (a retried attempt, a mirror) needs no stack trace of its own.
export const DISCARDED = new Error('response discarded')
const DISCARD_SINK: BodySink = {write: () => true, end() {}, abort() {}}
const ENDED = Symbol('ended')

export class ResponseBody {
  /** Why the body was cut (a fault's reset, the overall timeout, the instance's reset); null while whole. */
  errored: Error | null = null
  /** What came after the body (HTTP/2 trailers: gRPC's grpc-status), once it ended. */
  trailers: HeaderPairs | undefined = undefined
  /** Ended, failed or destroyed: nothing more happens, and every onDone callback has run. */
  closed = false
  private sink: BodySink | undefined
  private queue: Buffer[] | undefined
  private queuedBytes = 0
  /** How the producer finished (ENDED or the error); it reaches the sink after the queue. */
  private finishing: Error | typeof ENDED | undefined
  private full = false
  private producerWaiting = false
  // Five or so per body (the exchange, both spans, the breaker, the overall timeout): room
  // for six from the start, as `[]` would grow room for 17 on its first push.
  private whenDone: Array<DoneListener | undefined> | undefined
  private doneCount = 0

  constructor(private readonly source?: BodySource) {}

  /** A body that is all there already (mesh-made replies, tests). */
  static of(...chunks: Array<Buffer | string>): ResponseBody {
    const body = new ResponseBody()
    for (const c of chunks) body.push(typeof c === 'string' ? Buffer.from(c) : c)
    body.end()
    return body
  }

  // ── the producer's side

  /** False: stop until the source's resume(). */
  push(chunk: Buffer): boolean {
    if (this.closed || this.finishing !== undefined) return false
    if (this.sink !== undefined && !this.full && this.queue === undefined) {
      if (this.sink.write(chunk)) return true
      this.full = true
      this.producerWaiting = true
      return false
    }
    // A literal sized to its one element: `[]` grows room for 17 on its first push.
    if (this.queue === undefined) this.queue = [chunk]
    else this.queue.push(chunk)
    this.queuedBytes += chunk.length
    if (!this.full && this.queuedBytes < HIGH_WATER_BYTES) return true
    this.producerWaiting = true
    return false
  }

  /** The whole body is pushed; the consumer gets the end (and `trailers`) after the chunks. */
  end(trailers?: HeaderPairs): void {
    if (trailers !== undefined && trailers.length > 0 && !this.closed && this.finishing === undefined) this.trailers = trailers
    this.finishWith(ENDED)
  }

  /** The body is cut here (the instance reset, a reset fault): the consumer gets what came, then the cut. */
  fail(error: Error): void {
    if (this.closed || this.finishing !== undefined) return
    this.errored = error
    this.finishWith(error)
  }

  // ── the consumer's side

  pipeTo(sink: BodySink): void {
    if (this.sink !== undefined) throw new Error('a response body has one consumer')
    this.sink = sink
    if (this.closed) {
      // Destroyed before anyone read it (a finished body waits for its consumer).
      sink.abort(this.errored ?? DISCARDED)
      return
    }
    this.flush()
  }

  /** Reads and drops the body (a mirrored request's reply). */
  discard(): void {
    this.pipeTo(DISCARD_SINK)
  }

  /** The sink drained: deliver what waits, then let the producer go on. */
  resume(): void {
    this.full = false
    this.flush()
  }

  /**
   * Cuts the body: with `error`, the consumer sees a truncated response (the overall
   * timeout fired); without, it is dropped quietly (a retried attempt). The producer stops.
   */
  destroy(error?: Error): void {
    if (this.closed) return
    if (error) this.errored = error
    this.queue = undefined
    const producing = this.finishing === undefined
    // Closed first: whatever the source or the sink do now finds the body done.
    this.close()
    if (producing) this.source?.cancel(error)
    if (error) this.sink?.abort(error)
  }

  /**
   * Runs `listener` once the body is closed (at once if it is). Spans, the breaker and the
   * timeout wait on it; on the data path they pass themselves (an object with bodyDone),
   * so no closure is made per request.
   */
  onDone(listener: DoneListener): void {
    if (this.closed) return callDone(listener)
    if (this.whenDone === undefined) this.whenDone = [listener, undefined, undefined, undefined, undefined, undefined]
    else if (this.doneCount < this.whenDone.length) this.whenDone[this.doneCount] = listener
    else this.whenDone.push(listener)
    this.doneCount++
  }

  private flush(): void {
    const sink = this.sink!
    const queue = this.queue
    if (queue !== undefined) {
      let i = 0
      while (i < queue.length && !this.full && !this.closed) {
        const chunk = queue[i++]
        this.queuedBytes -= chunk.length
        if (!sink.write(chunk)) this.full = true
      }
      if (this.closed) return
      if (i < queue.length) {
        this.queue = queue.slice(i)
        return
      }
      this.queue = undefined
      this.queuedBytes = 0
    }
    if (this.full) return
    if (this.finishing !== undefined) return this.finish()
    if (this.producerWaiting) {
      this.producerWaiting = false
      this.source?.resume()
    }
  }

  private finishWith(how: Error | typeof ENDED): void {
    if (this.closed || this.finishing !== undefined) return
    this.finishing = how
    if (this.sink !== undefined && !this.full && this.queue === undefined) this.finish()
  }

  private finish(): void {
    const sink = this.sink!
    const how = this.finishing
    this.close()
    if (how === ENDED) sink.end(this.trailers)
    else sink.abort(how!)
  }

  private close(): void {
    this.closed = true
    const listeners = this.whenDone
    const n = this.doneCount
    this.whenDone = undefined
    this.doneCount = 0
    if (listeners) for (let i = 0; i < n; i++) callDone(listeners[i]!)
  }
}

/** What waits for a body to close: a function, or an object that is told (no closure per request). */
export type DoneListener = (() => void) | {bodyDone(): void}

export function callDone(listener: DoneListener): void {
  if (typeof listener === 'function') listener()
  else listener.bodyDone()
}
