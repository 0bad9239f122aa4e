// The shop's frontend: a real service with zero dependencies, written the way any
// service behind a mesh is. It reaches its dependencies through its sidecar in the
// two usual ways:
//   catalog  via $CATALOG_URL  (one URL per dependency, as meshsim gives it)
//   cart     via $HTTP_PROXY   (a forward proxy; the target is http://cart/cart)
// and forwards the trace headers it received, so the mesh can stitch one trace.
//
//   GET /                    → {service, instance, catalog, cart}
//   GET /healthz             → 200 {"status":"ok"}
//   GET /direct/<dep>/<path> → <dep> via $<DEP>_URL, status and body relayed
//   GET /proxy/<dep>/<path>  → <dep> via $HTTP_PROXY, status and body relayed

import http from 'node:http'

const PORT = Number(process.env.PORT)
const INSTANCE = process.env.MESH_INSTANCE ?? 'frontend'
const CALL_TIMEOUT_MS = 10_000
let stopping = false

if (!Number.isInteger(PORT) || PORT < 0 || PORT > 65535 || process.env.PORT === undefined) {
  console.error(`frontend: PORT must be a port number, got ${JSON.stringify(process.env.PORT ?? null)}`)
  process.exit(2)
}

// Headers a service forwards unchanged so its hops join the caller's trace.
const TRACE_HEADERS = ['traceparent', 'tracestate', 'baggage', 'x-request-id', 'b3']

function traceHeaders(incoming) {
  const out = {}
  for (const [name, value] of Object.entries(incoming)) {
    if (TRACE_HEADERS.includes(name) || name.startsWith('x-b3-')) out[name] = value
  }
  return out
}

// `catalog` → `CATALOG_URL`, as meshsim names them.
function envNameFor(dep) {
  return `${dep.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_URL`
}

const agent = new http.Agent({keepAlive: true})

/** Sends one request and collects the answer: {status, headers, body}. */
function send(options) {
  return new Promise((resolve, reject) => {
    const req = http.request({agent, timeout: CALL_TIMEOUT_MS, ...options}, (res) => {
      const chunks = []
      res.on('data', (chunk) => chunks.push(chunk))
      res.on('end', () => resolve({status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8')}))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`no answer within ${CALL_TIMEOUT_MS}ms`)))
    req.on('error', reject)
    req.end()
  })
}

/** GET <dep><path> through $<DEP>_URL. */
function direct(dep, path, headers) {
  const envName = envNameFor(dep)
  const base = process.env[envName]
  if (!base) return Promise.reject(new Error(`${envName} is not set; add ${dep} to frontend's dependsOn in mesh.yaml`))
  const url = new URL(base.replace(/\/+$/, '') + path)
  return send({host: url.hostname, port: url.port, path: url.pathname + url.search, method: 'GET', headers})
}

/** GET http://<dep><path> through the forward proxy in $HTTP_PROXY, as curl does. */
function viaProxy(dep, path, headers) {
  const proxy = process.env.HTTP_PROXY ?? process.env.http_proxy
  if (!proxy) return Promise.reject(new Error('HTTP_PROXY is not set; the mesh sets it for every service'))
  const {hostname, port} = new URL(proxy)
  // Absolute-form request target, Host naming the dependency: the proxy routes on it.
  return send({host: hostname, port, path: `http://${dep}${path}`, method: 'GET', headers: {...headers, host: dep}})
}

function reply(res, status, body, contentType = 'application/json') {
  if (res.headersSent) return
  const text = typeof body === 'string' ? body : JSON.stringify(body)
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(text),
    'x-mesh-served-by': INSTANCE,
    ...(stopping ? {connection: 'close'} : {}),
  })
  res.end(text)
}

function parseBody(answer) {
  try {
    return JSON.parse(answer.body)
  } catch {
    return answer.body
  }
}

async function home(req, res) {
  const headers = traceHeaders(req.headers)
  const [catalog, cart] = await Promise.allSettled([
    direct('catalog', '/items', headers),
    viaProxy('cart', '/cart', headers),
  ])
  for (const [dep, result] of [['catalog', catalog], ['cart', cart]]) {
    if (result.status === 'rejected') {
      return reply(res, 502, {service: 'frontend', instance: INSTANCE, error: `${dep} failed: ${result.reason.message}`})
    }
    if (result.value.status >= 500) {
      return reply(res, 502, {service: 'frontend', instance: INSTANCE, error: `${dep} answered ${result.value.status}`, body: parseBody(result.value)})
    }
  }
  reply(res, 200, {service: 'frontend', instance: INSTANCE, catalog: parseBody(catalog.value), cart: parseBody(cart.value)})
}

/** /direct/<dep>/<path> and /proxy/<dep>/<path>: call one dependency and relay its answer. */
async function relay(req, res, how, rest) {
  const end = rest.search(/[/?]/)
  const dep = end < 0 ? rest : rest.slice(0, end)
  const tail = end < 0 ? '' : rest.slice(end)
  const path = tail.startsWith('/') ? tail : `/${tail}`
  if (!dep) return reply(res, 400, {error: `usage: /${how}/<dependency>/<path>`})
  try {
    const call = how === 'direct' ? direct : viaProxy
    const answer = await call(dep, path, traceHeaders(req.headers))
    reply(res, answer.status, answer.body, answer.headers['content-type'] ?? 'application/octet-stream')
  } catch (error) {
    reply(res, 502, {service: 'frontend', instance: INSTANCE, error: `${dep} failed: ${error.message}`})
  }
}

const server = http.createServer((req, res) => {
  req.resume()
  const url = new URL(req.url ?? '/', 'http://frontend')
  const target = url.pathname + url.search
  let work
  if (url.pathname === '/healthz') work = Promise.resolve(reply(res, 200, {status: 'ok'}))
  else if (url.pathname === '/') work = home(req, res)
  else if (url.pathname.startsWith('/direct/')) work = relay(req, res, 'direct', target.slice('/direct/'.length))
  else if (url.pathname.startsWith('/proxy/')) work = relay(req, res, 'proxy', target.slice('/proxy/'.length))
  else work = Promise.resolve(reply(res, 404, {error: `no route for ${url.pathname}`}))
  work.catch((error) => reply(res, 500, {service: 'frontend', instance: INSTANCE, error: String(error?.message ?? error)}))
})

server.on('error', (error) => {
  console.error(`frontend: cannot listen on 127.0.0.1:${PORT}: ${error.code ?? error.message}`)
  process.exit(1)
})

server.listen(PORT, '127.0.0.1', () => {
  console.log(`frontend (${INSTANCE}) listening on 127.0.0.1:${server.address().port}`)
})

// Graceful stop: refuse new connections, finish what is in flight, then exit.
function stop(signal) {
  if (stopping) process.exit(1)
  stopping = true
  console.log(`frontend (${INSTANCE}) received ${signal}; finishing in-flight requests`)
  server.close(() => {
    agent.destroy()
    process.exit(0)
  })
  server.closeIdleConnections()
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
