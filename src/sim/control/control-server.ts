// The daemon's control API: JSON over HTTP on 127.0.0.1, guarded by a bearer token
// that only the user can read. The CLI is its only client.
import http, {type IncomingMessage, type ServerResponse} from 'node:http'
import type {AddressInfo} from 'node:net'
import {timingSafeEqual} from 'node:crypto'
import {MeshError} from '../errors.js'
import {type ControlHandlers, controlRoutes, type ControlStreams, type RouteKey, splitRoute} from './api.js'

type Handler = (input: {body: unknown; query: unknown}) => Promise<unknown> | unknown
/**
 * A long-lived GET answered as NDJSON: called with the query (it may throw, answered as any
 * error), it returns what opens the stream; that gets the line writer and returns what
 * to do when the client goes away (or the daemon stops).
 */
export type StreamHandler<P extends keyof ControlStreams> = (
  query: ControlStreams[P]['query'],
) => (send: (line: ControlStreams[P]['line']) => void, keepingUp: () => boolean) => () => void
/** A stream handler as the server holds it: its types were checked where it was registered. */
type RawStream = (query: Record<string, string>) => (send: (line: unknown) => void, keepingUp: () => boolean) => () => void

/** The largest body read: the biggest real one is `mesh apply`'s env, which the OS caps near 2 MiB. */
const MAX_BODY_BYTES = 8 * 1024 * 1024

export class ControlServer {
  private readonly server: http.Server
  private readonly routes = new Map<string, {handler: Handler; body?: (value: unknown) => unknown; query?: (value: unknown) => unknown}>()
  private readonly publicText = new Map<string, {contentType: string; handler: () => string}>()
  private readonly streams = new Map<string, RawStream>()

  constructor(
    private readonly token: string,
    private readonly maxBodyBytes = MAX_BODY_BYTES,
  ) {
    this.server = http.createServer((req, res) => void this.handle(req, res))
  }

  /** Every route of the map (api.ts), each by its handler; nothing else is served. */
  serve(handlers: ControlHandlers): this {
    // The types say so already; this holds for a handler object built some other way too.
    const mapped = Object.keys(controlRoutes)
    const missing = mapped.filter((key) => typeof (handlers as Record<string, unknown>)[key] !== 'function')
    const extra = Object.keys(handlers).filter((key) => !mapped.includes(key))
    if (missing.length || extra.length) throw new Error(`control routes disagree with api.ts: missing ${missing.join(', ') || 'none'}; not in the map ${extra.join(', ') || 'none'}`)
    for (const key of mapped as RouteKey[]) {
      const {method, path} = splitRoute(key)
      const {body, query} = controlRoutes[key] as {body?: (value: unknown) => unknown; query?: (value: unknown) => unknown}
      this.routes.set(`${method} ${path}`, {handler: handlers[key] as Handler, body, query})
    }
    return this
  }

  stream<P extends keyof ControlStreams>(path: P, handler: StreamHandler<P>): this {
    this.streams.set(path, handler as RawStream)
    return this
  }

  /** What is served, as "METHOD /path" (the agreement test compares it with api.ts). */
  served(): string[] {
    return [...this.routes.keys(), ...[...this.streams.keys()].map((p) => `GET ${p}`), ...[...this.publicText.keys()].map((p) => `GET ${p}`)]
  }

  /** A read-only text endpoint that needs no token (Prometheus scrapes /metrics; it is loopback-only). */
  text(path: string, contentType: string, handler: () => string): this {
    this.publicText.set(path, {contentType, handler})
    return this
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(0, '127.0.0.1', () => resolve())
    })
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
  }

  async close(): Promise<void> {
    this.server.closeAllConnections()
    await new Promise((resolve) => this.server.close(resolve))
  }

  private authorised(req: IncomingMessage): boolean {
    const given = Buffer.from(req.headers.authorization ?? '')
    const wanted = Buffer.from(`Bearer ${this.token}`)
    return given.length === wanted.length && timingSafeEqual(given, wanted)
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Before the token is checked: any local process can send a target that is no URL (`GET http://[`).
    if (!URL.canParse(req.url ?? '/', 'http://control')) return reply(res, 400, {error: {code: 'MESH_BAD_REQUEST', message: `control API: "${req.url}" is not a request path.`}})
    const url = new URL(req.url ?? '/', 'http://control')
    const text = req.method === 'GET' ? this.publicText.get(url.pathname) : undefined
    if (text) {
      const body = text.handler()
      res.writeHead(200, {'content-type': text.contentType, 'content-length': Buffer.byteLength(body)})
      res.end(body)
      return
    }
    if (!this.authorised(req)) return reply(res, 401, {error: {code: 'MESH_UNAUTHORISED', message: 'missing or wrong bearer token'}})
    const stream = req.method === 'GET' ? this.streams.get(url.pathname) : undefined
    if (stream) return this.openStream(stream, url, req, res)
    const route = this.routes.get(`${req.method} ${url.pathname}`)
    if (!route) return reply(res, 404, {error: {code: 'MESH_NOT_FOUND', message: `no control endpoint ${req.method} ${url.pathname}`}})
    try {
      const raw = parseJson(await readBody(req, res, this.maxBodyBytes))
      const body = route.body ? route.body(raw) : undefined
      const query = Object.fromEntries(url.searchParams)
      const result = await route.handler({body, query: route.query ? route.query(query) : query})
      reply(res, 200, result ?? {})
    } catch (error) {
      replyError(res, error)
    }
  }

  private openStream(stream: RawStream, url: URL, req: IncomingMessage, res: ServerResponse): void {
    let open: ReturnType<RawStream>
    try {
      open = stream(Object.fromEntries(url.searchParams))
    } catch (error) {
      return replyError(res, error)
    }
    req.resume()
    res.writeHead(200, {'content-type': 'application/x-ndjson', 'cache-control': 'no-cache'})
    // Out at once: a client waits for the head to know the stream is open.
    res.flushHeaders()
    // A client that stops reading is not buffered for: while its socket is backed up, lines are skipped (and counted).
    const close = open((line) => void res.write(`${JSON.stringify(line)}\n`), () => !res.writableNeedDrain)
    res.once('close', close)
  }
}

/**
 * The body as text, refused (400) past `limit` bytes without holding more than that: the
 * connection is closed after the answer, so the rest is discarded, never buffered.
 */
function readBody(req: IncomingMessage, res: ServerResponse, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const tooLarge = () => {
      res.setHeader('connection', 'close')
      reject(new MeshError('MESH_BAD_REQUEST', `control API: the body is larger than ${limit} bytes.`))
    }
    if (Number(req.headers['content-length']) > limit) return tooLarge()
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size <= limit) return void chunks.push(chunk)
      req.off('data', onData)
      chunks.length = 0
      tooLarge()
    }
    req.on('data', onData)
    req.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.once('error', reject)
  })
}

/** A request's body: none, or JSON (anything else is the sender's fault: 400). */
function parseJson(text: string): unknown {
  if (!text) return undefined
  try {
    return JSON.parse(text)
  } catch {
    throw new MeshError('MESH_BAD_REQUEST', 'control API: the body is not JSON.')
  }
}

function replyError(res: ServerResponse, error: unknown): void {
  const e = error as MeshError
  reply(res, e instanceof MeshError ? 400 : 500, {error: {code: e.code ?? 'MESH_INTERNAL', message: e.message, hints: e.hints ?? []}})
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, {'content-type': 'application/json', 'content-length': Buffer.byteLength(text)})
  res.end(text)
}
