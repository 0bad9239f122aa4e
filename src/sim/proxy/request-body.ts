// A request body on its way to the instance, and what a retry may replay of it.
import type {IncomingMessage} from 'node:http'
import type {Http2ServerRequest} from 'node:http2'
import {PassThrough, type Readable} from 'node:stream'
import {hasRequestBody} from './headers.js'

/** Request bodies up to this size are kept so a retry can replay them; larger ones stream and are never retried. */
export const MAX_REPLAY_BYTES = 64 * 1024

/** HTTP/2 needs no Content-Length for a body (gRPC never sends one): a request without a body ends with its headers. */
export function carriesBody(req: IncomingMessage): boolean {
  return req.httpVersionMajor === 2 ? !(req as unknown as Http2ServerRequest).stream.endAfterHeaders : hasRequestBody(req.rawHeaders)
}

/**
 * Reads a request body up to `limit` bytes so it can be replayed. A larger body is
 * handed on as a stream (what was read first, then the rest) and marked not replayable.
 */
export function holdBody(req: IncomingMessage, limit: number): Promise<{body: Buffer | Readable; replayable: boolean}> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const cleanup = () => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
    }
    const onData = (chunk: Buffer) => {
      chunks.push(chunk)
      size += chunk.length
      if (size > limit) {
        cleanup()
        const rest = new PassThrough()
        for (const c of chunks) rest.write(c)
        req.pipe(rest)
        resolve({body: rest, replayable: false})
      }
    }
    const onEnd = () => {
      cleanup()
      resolve({body: Buffer.concat(chunks), replayable: true})
    }
    const onError = (error: Error) => {
      cleanup()
      reject(error)
    }
    req.on('data', onData)
    req.once('end', onEnd)
    req.once('error', onError)
  })
}

/**
 * An HTTP/2 request body: streamed on as it comes, with a copy kept. When it ends within
 * `limit` bytes, `onWhole` listeners get the copy (a retry replays it, a mirror sends it);
 * past the bound nothing is kept and they never hear.
 */
export class TeeBody extends PassThrough {
  private kept: Buffer[] | undefined = []
  private whole: Buffer | undefined
  private waiting: Array<(body: Buffer) => void> = []

  constructor(req: Readable, limit: number) {
    super()
    let size = 0
    req.on('data', (chunk: Buffer) => {
      if (!this.kept) return
      size += chunk.length
      if (size <= limit) this.kept.push(chunk)
      else this.forget()
    })
    req.once('end', () => {
      if (!this.kept) return
      const whole = (this.whole = Buffer.concat(this.kept))
      const waiting = this.waiting
      this.forget()
      for (const listener of waiting) listener(whole)
    })
    req.once('error', (error) => this.destroy(error))
    req.pipe(this)
  }

  onWhole(listener: (body: Buffer) => void): void {
    if (this.whole) listener(this.whole)
    else if (this.kept) this.waiting.push(listener)
  }

  private forget(): void {
    this.kept = undefined
    this.waiting = []
  }
}
