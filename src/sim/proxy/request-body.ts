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
 * Streams `req` on as it comes and keeps a copy of it: when it ends within `limit`
 * bytes, `whole` gets the copy (a retry replays it); a longer one is not kept.
 */
export function teeBody(req: Readable, limit: number, whole: (body: Buffer) => void): Readable {
  const live = new PassThrough()
  let kept: Buffer[] | undefined = []
  let size = 0
  req.on('data', (chunk: Buffer) => {
    if (!kept) return
    size += chunk.length
    if (size <= limit) kept.push(chunk)
    else kept = undefined
  })
  req.once('end', () => {
    if (kept) whole(Buffer.concat(kept))
  })
  req.once('error', (error) => live.destroy(error))
  req.pipe(live)
  return live
}
