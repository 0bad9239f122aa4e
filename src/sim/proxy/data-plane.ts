// The data plane: every sidecar listener of the mesh lives in the daemon process.
// A call from one instance to another takes ONE proxy pass: the caller's outbound
// listener resolves the destination from the registry, applies the callee's
// inbound side, and forwards straight to the chosen instance.
//
//   app ──▶ outbound listener (CATALOG_URL or HTTP_PROXY) ──┐
//   client ──▶ ingress listener (path prefix → service) ────┼─▶ pick endpoint ─▶ undici ─▶ instance
//   anyone ──▶ inbound listener (published address) ────────┘   (fixed endpoint)
import http, {type IncomingMessage, type ServerResponse} from 'node:http'
import type {AddressInfo} from 'node:net'
import {pipeline} from 'node:stream'
import {Agent} from 'undici'
import {MeshError} from '../errors.js'
import type {Endpoint, Registry} from '../control/registry.js'
import {formatTraceparent, newSpanId, newTraceId, parseTraceparent} from '../telemetry/trace-context.js'
import {EndpointSet} from './endpoint-set.js'
import {
  endToEndHeaders,
  firstHeader,
  type HeaderMap,
  MESH_HEADER_PREFIX,
  SERVED_BY_HEADER,
  stripHopByHop,
} from './headers.js'
import {connectFailure, noHealthyUpstream, noRoute, ProxyError, sendProxyError, upstreamReset} from './respond.js'

/** How a listener decides where a request goes. */
export type ListenerRole =
  | {kind: 'ingress'; routes: Array<{prefix: string; service: string}>}
  | {kind: 'outbound'; source: string; sourceInstance: string; destination: string}
  | {kind: 'forward-proxy'; source: string; sourceInstance: string}
  | {kind: 'inbound'; instance: string; service: string}

export interface ListenerInfo {
  role: ListenerRole
  port: number
  server: http.Server
}

// Above undici's 4 s idle timeout so a pooled client never writes into a socket we just closed.
const KEEP_ALIVE_TIMEOUT_MS = 5_000
// Slow clients must send their headers promptly (slowloris → 408).
const HEADERS_TIMEOUT_MS = 10_000

export class DataPlane {
  private readonly destinations = new Map<string, EndpointSet>()
  private readonly endpointsByInstance = new Map<string, Endpoint>()
  private readonly listeners: ListenerInfo[] = []
  private readonly agent = new Agent({keepAliveTimeout: 4_000, connections: 512, connect: {timeout: 2_000}})
  private inflight = 0
  private draining = false
  private drainWaiters: Array<() => void> = []

  /** `weights`: per service, version → percent of its traffic. */
  constructor(registry: Registry, weights: Map<string, Map<string, number>>) {
    for (const service of registry.services()) {
      this.destinations.set(service, new EndpointSet(service, registry, weights.get(service) ?? new Map()))
    }
  }

  /** Every instance's own address, also before it is healthy (the inbound listener needs it). */
  setInstance(endpoint: Endpoint): void {
    this.endpointsByInstance.set(endpoint.instance, endpoint)
  }

  get inflightRequests(): number {
    return this.inflight
  }

  async listen(role: ListenerRole, port = 0, wantedBy?: string): Promise<ListenerInfo> {
    const server = http.createServer({headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: 300_000})
    server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS
    server.on('request', (req, res) => this.handle(role, req, res))
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => {
        if (error.code === 'EADDRINUSE') {
          reject(
            new MeshError('MESH_PORT_IN_USE', `port ${port} is already in use; ${wantedBy ?? 'a listener'} wants it.`, {
              cause: error,
              hints: [`Stop whatever listens on ${port} (\`lsof -i :${port}\`), or change the port in mesh.yaml.`],
            }),
          )
        } else reject(error)
      })
      server.listen(port, '127.0.0.1', () => resolve())
    })
    const info = {role, port: (server.address() as AddressInfo).port, server}
    this.listeners.push(info)
    return info
  }

  /** Stop accepting, let in-flight requests finish (up to graceMs), then close everything. */
  async drain(graceMs: number): Promise<void> {
    this.draining = true
    for (const l of this.listeners) {
      l.server.close()
      l.server.closeIdleConnections()
    }
    if (this.inflight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs)
        this.drainWaiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
    for (const l of this.listeners) l.server.closeAllConnections()
    for (const d of this.destinations.values()) d.close()
    await this.agent.close().catch(() => undefined)
  }

  private handle(role: ListenerRole, req: IncomingMessage, res: ServerResponse): void {
    this.inflight++
    res.once('close', () => {
      if (--this.inflight === 0 && this.draining) for (const w of this.drainWaiters.splice(0)) w()
    })
    if (this.draining) res.setHeader('connection', 'close')
    try {
      const target = this.resolve(role, req)
      this.forward(role, req, res, target.endpoint, target.path)
    } catch (error) {
      req.resume()
      if (error instanceof ProxyError) sendProxyError(res, error)
      else sendProxyError(res, new ProxyError(500, 'DC', `mesh internal error: ${(error as Error).message}`))
    }
  }

  /** Which instance gets this request, and with which origin-form path. */
  private resolve(role: ListenerRole, req: IncomingMessage): {endpoint: Endpoint; path: string} {
    let path = req.url ?? '/'
    let service: string
    switch (role.kind) {
      case 'inbound': {
        const endpoint = this.endpointsByInstance.get(role.instance)
        if (!endpoint) throw noHealthyUpstream(role.service, 0)
        return {endpoint, path}
      }
      case 'ingress': {
        const route = longestPrefix(role.routes, path)
        if (!route) throw new ProxyError(404, 'NR', `no route: no ingress route matches path ${path.split('?')[0]}`)
        service = route.service
        break
      }
      case 'outbound':
      case 'forward-proxy': {
        if (req.method === 'CONNECT') {
          throw new ProxyError(405, 'NR', 'CONNECT tunnels are not supported by the mesh proxy; call services with http://')
        }
        if (!path.startsWith('/')) {
          // Absolute form, as curl, requests and Go send through HTTP_PROXY: route by host name.
          let url: URL
          try {
            url = new URL(path)
          } catch {
            throw new ProxyError(400, 'NR', `bad request target ${path}`)
          }
          service = serviceFromHost(url.hostname)
          path = url.pathname + url.search
        } else if (role.kind === 'outbound') {
          service = role.destination
        } else {
          service = serviceFromHost(req.headers.host ?? '')
        }
        break
      }
    }
    const destination = this.destinations.get(service)
    if (!destination) throw noRoute(service, [...this.destinations.keys()])
    const endpoint = destination.pick()
    if (!endpoint) throw noHealthyUpstream(service, 0)
    return {endpoint, path}
  }

  private forward(role: ListenerRole, req: IncomingMessage, res: ServerResponse, endpoint: Endpoint, path: string): void {
    const headers = endToEndHeaders(req.rawHeaders)
    const client = req.socket.remoteAddress ?? '127.0.0.1'
    if (role.kind === 'ingress') sanitiseAtIngress(headers, client, req)
    else appendForwardedFor(headers, client)
    propagateTrace(headers)

    const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined
    const abort = new AbortController()
    res.once('close', () => {
      if (!res.writableFinished) abort.abort()
    })
    const address = `${endpoint.host}:${endpoint.port}`
    this.agent
      .request({
        origin: `http://${address}`,
        method: req.method as 'GET',
        path,
        headers,
        body: hasBody ? req : undefined,
        signal: abort.signal,
      })
      .then(
        (upstream) => {
          const out = stripHopByHop(upstream.headers as Record<string, string | string[]>)
          out[SERVED_BY_HEADER] = endpoint.instance
          if (this.draining) out['connection'] = 'close'
          res.writeHead(upstream.statusCode, out)
          pipeline(upstream.body, res, () => undefined)
        },
        (error: NodeJS.ErrnoException) => {
          if (abort.signal.aborted) return
          const code = (error.cause as NodeJS.ErrnoException | undefined)?.code ?? error.code
          const refused = code === 'ECONNREFUSED' || code === 'UND_ERR_CONNECT_TIMEOUT'
          sendProxyError(res, refused ? connectFailure(endpoint.instance, address, error) : upstreamReset(endpoint.instance, error))
        },
      )
  }
}

function longestPrefix<T extends {prefix: string}>(routes: T[], path: string): T | undefined {
  let best: T | undefined
  for (const r of routes) {
    if (path.startsWith(r.prefix) && (!best || r.prefix.length > best.prefix.length)) best = r
  }
  return best
}

/** `catalog`, `catalog:9080`, `catalog.mesh` → `catalog`. */
function serviceFromHost(host: string): string {
  return host.replace(/:\d+$/, '').split('.')[0].toLowerCase()
}

function appendForwardedFor(headers: HeaderMap, client: string): void {
  const prior = firstHeader(headers, 'x-forwarded-for')
  headers['x-forwarded-for'] = prior ? `${prior}, ${client}` : client
}

/** Nothing from outside may claim to be the mesh, or forge where it came from. */
function sanitiseAtIngress(headers: HeaderMap, client: string, req: IncomingMessage): void {
  for (const name of Object.keys(headers)) {
    if (name.startsWith(MESH_HEADER_PREFIX) || name.startsWith('x-forwarded-')) delete headers[name]
  }
  headers['x-forwarded-for'] = client
  headers['x-forwarded-proto'] = 'http'
  if (req.headers.host) headers['x-forwarded-host'] = req.headers.host
  if (!headers['x-request-id']) headers['x-request-id'] = crypto.randomUUID()
}

/** Continue the caller's trace, or start one; each hop gets a fresh span id. */
function propagateTrace(headers: HeaderMap): void {
  const incoming = parseTraceparent(firstHeader(headers, 'traceparent'))
  if (!incoming) delete headers['tracestate']
  headers['traceparent'] = formatTraceparent({
    traceId: incoming?.traceId ?? newTraceId(),
    parentId: newSpanId(),
    flags: incoming?.flags ?? '01',
  })
}
