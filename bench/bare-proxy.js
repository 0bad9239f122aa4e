// The fastest bare Node reverse proxy we know how to write, as the yardstick for
// the mesh: node:http in front, one undici Pool behind it driven with
// `Pool.dispatch` and a raw (legacy, non-wrapped) handler, so no Readable, no
// Promise, no header object is created per response on the undici side. No
// policies, no tracing, no logging; the only header work is dropping the
// hop-by-hop headers undici rejects or that must not cross a hop.
//
//   UPSTREAM=http://127.0.0.1:PORT PORT=0 node bench/bare-proxy.js   → prints `LISTENING <port>`
import http from 'node:http'
import crypto from 'node:crypto'
import {Pool} from 'undici'
import {exitOnSignal} from './lib.js'
import {tuneHeapForProxying} from '../dist/sim/control/heap-tuning.js'


// Hop-by-hop names (RFC 9110 §7.6.1); a length switch keeps the common case to one compare.
function hopByHop(lower) {
  switch (lower.length) {
    case 2: return lower === 'te'
    case 7: return lower === 'trailer' || lower === 'upgrade'
    case 10: return lower === 'connection' || lower === 'keep-alive'
    case 6: return lower === 'expect'
    case 17: return lower === 'transfer-encoding'
    case 16: return lower === 'proxy-connection'
    default: return false
  }
}

class Forward {
  constructor(res, meshHeaders) {
    this.res = res
    this.meshHeaders = meshHeaders
    this.resume = null
    this.onDrain = null
  }
  onConnect(abort) {
    this.res.once('close', () => {
      if (!this.res.writableFinished) abort(new Error('client went away'))
    })
  }
  onHeaders(status, raw, resume) {
    if (status < 200) return true // 1xx: wait for the final response
    const headers = []
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i].toString('latin1')
      if (hopByHop(name.toLowerCase())) continue
      headers.push(name, raw[i + 1].toString('latin1'))
    }
    if (this.meshHeaders) headers.push('x-mesh-upstream', 'api-0')
    this.res.writeHead(status, headers)
    this.resume = resume
    return true
  }
  onData(chunk) {
    const ok = this.res.write(chunk)
    if (!ok && !this.onDrain) {
      this.onDrain = () => {
        this.onDrain = null
        this.resume()
      }
      this.res.once('drain', this.onDrain)
    }
    return ok
  }
  onComplete() {
    this.res.end()
  }
  onError(error) {
    const res = this.res
    if (res.headersSent) res.destroy(error)
    else {
      res.writeHead(502, {'content-type': 'text/plain', 'content-length': 12})
      res.end('bad gateway\n')
    }
  }
}

// BARE_MESH_HEADERS=1: also add the headers a mesh call adds (x-forwarded-*, x-request-id,
// traceparent on the request; the serving instance on the response) — what those alone cost.
const MESH_HEADERS = process.env.BARE_MESH_HEADERS === '1'

/** The bare proxy's server and pool (what-if.js also runs one inside the daemon's process). */
export function createBareProxy(upstream, {meshHeaders = MESH_HEADERS} = {}) {
  const pool = new Pool(upstream, {connections: 256, pipelining: 1, keepAliveTimeout: 4_000})
  const server = http.createServer((req, res) => {
    const raw = req.rawHeaders
    const headers = []
    for (let i = 0; i < raw.length; i += 2) {
      if (!hopByHop(raw[i].toLowerCase())) headers.push(raw[i], raw[i + 1])
    }
    if (meshHeaders) {
      headers.push('x-forwarded-for', req.socket.remoteAddress, 'x-forwarded-proto', 'http')
      headers.push('x-request-id', crypto.randomUUID(), 'traceparent', `00-${crypto.randomUUID().replace(/-/g, '')}-${'1'.repeat(16)}-01`)
    }
    const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined
    pool.dispatch({path: req.url, method: req.method, headers, body: hasBody ? req : null}, new Forward(res, meshHeaders))
  })
  server.keepAliveTimeout = 65_000
  server.headersTimeout = 66_000
  return {server, pool}
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const upstream = process.env.UPSTREAM
  if (!upstream) {
    console.error('bare-proxy: set UPSTREAM=http://host:port')
    process.exit(2)
  }
  // The daemon's V8 setting, so that (b) and (c) differ by the proxy alone (it changes
  // little here: the bare proxy's objects were not being pretenured).
  tuneHeapForProxying()
  // bench/process-environment.js: the same proxy in a process prepared as the daemon's is.
  await prepareEnvironment(process.env.BARE_ENV ?? 'plain')
  const {server, pool} = createBareProxy(upstream)
  server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
    console.log(`LISTENING ${server.address().port}`)
  })
  exitOnSignal(server, pool)
}

/** What else the process holds or has run before the proxy serves (process-environment.js). */
async function prepareEnvironment(mode) {
  if (mode === 'plain') return
  const {MeshDaemon} = await import('../dist/sim/control/daemon.js')
  const {loadConfig} = await import('../dist/sim/config/load-config.js')
  if (mode === 'daemon') {
    const daemon = new MeshDaemon(await loadConfig(process.env.BARE_ENV_MESH))
    await daemon.start()
    process.once('SIGTERM', () => void daemon.stop().then(() => process.exit(0)))
  }
  if (mode === 'probes' || mode === 'http-client') {
    // The daemon's HTTP health probe (probes), or the node:http GET it was before session 10
    // (http-client), once a second against another local server, as the daemon checks an instance.
    const {probeHttp} = await import('../dist/sim/supervisor/health-check.js')
    const viaClient = (port) => new Promise((resolve) => http.get({host: '127.0.0.1', port, path: '/healthz', agent: false}, (res) => res.resume().on('end', resolve)).on('error', resolve))
    const probe = mode === 'probes' ? (port) => probeHttp('127.0.0.1', port, '/healthz', 1000) : viaClient
    const other = http.createServer((req, res) => res.end('ok'))
    await new Promise((resolve) => other.listen(0, '127.0.0.1', resolve))
    const port = other.address().port
    for (let i = 0; i < 20; i++) await probe(port)
    setInterval(() => void probe(port), 1000).unref()
    return
  }
  if (mode !== 'pollute') return
  // Other shapes through node:http, undici and net: a server answering three ways, requests with and without bodies.
  const {Agent, request} = await import('undici')
  const net = await import('node:net')
  const other = http.createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      if (req.url === '/json') {
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({a: 1, b: [1, 2]}))
      } else if (req.url === '/chunked') {
        res.write('a')
        res.write(Buffer.from('b'))
        res.end()
      } else {
        res.writeHead(201, {'x-a': '1', 'x-b': ['2', '3']})
        res.end(Buffer.alloc(100))
      }
    })
  })
  await new Promise((resolve) => other.listen(0, '127.0.0.1', resolve))
  const base = `http://127.0.0.1:${other.address().port}`
  const agent = new Agent({connections: 8})
  for (let i = 0; i < 3000; i++) {
    const r = await request(`${base}${['/json', '/chunked', '/x'][i % 3]}`, {dispatcher: agent, method: i % 2 ? 'POST' : 'GET', body: i % 2 ? 'hello' : undefined, headers: {'x-i': String(i)}})
    await r.body.text()
    if (i % 10 === 0) await new Promise((resolve) => net.connect(other.address().port, '127.0.0.1', function () { this.destroy(); resolve() }))
    if (i % 7 === 0) await new Promise((resolve) => http.get(`${base}/json`, (res) => res.resume().on('end', resolve)))
  }
  other.close()
  await agent.close()
}
