// The serverless template's function: a real Node.js process with no dependencies,
// written as a Lambda behind API Gateway would be, and run the way Knative runs one:
// the mesh starts it on the first request (a cold start), sends it one request at a
// time (containerConcurrency: 1) and stops it once it has been idle.
//
//   INIT: load code, open clients (INIT_MS: what a real function's imports and SDK
//         clients cost; the process listens only after it)      ── the cold start's own part
//   GET /         → reads from db through $DB_URL, answers {function, instance, coldStart, db}
//   GET /healthz  → 200 once INIT is done
//
// It forwards the trace headers it received, so each request is one trace: the cold
// start, the function's own time and the db call side by side in `mesh trace`.

import http from 'node:http'
import {setTimeout as sleep} from 'node:timers/promises'

const PORT = Number(process.env.PORT)
const INSTANCE = process.env.MESH_INSTANCE ?? 'api'
const INIT_MS = Number(process.env.INIT_MS ?? 0)
const DB_URL = process.env.DB_URL
const CALL_TIMEOUT_MS = 10_000
const TRACE_HEADERS = ['traceparent', 'tracestate', 'baggage', 'x-request-id', 'b3']

if (process.env.PORT === undefined || !Number.isInteger(PORT) || PORT < 0 || PORT > 65535) {
  console.error(`api: PORT must be a port number, got ${JSON.stringify(process.env.PORT ?? null)}`)
  process.exit(2)
}
if (!Number.isFinite(INIT_MS) || INIT_MS < 0) {
  console.error(`api: INIT_MS must be a number of milliseconds, got ${JSON.stringify(process.env.INIT_MS)}`)
  process.exit(2)
}
if (!DB_URL) {
  console.error('api: DB_URL is not set; add db to the dependsOn of api in mesh.yaml')
  process.exit(2)
}

const agent = new http.Agent({keepAlive: true})
/** Lambda reuses an execution environment: only its first invocation is a cold one. */
let invocations = 0
let stopping = false

function traceHeaders(incoming) {
  const out = {}
  for (const [name, value] of Object.entries(incoming)) if (TRACE_HEADERS.includes(name) || name.startsWith('x-b3-')) out[name] = value
  return out
}

/** GET db<path> through the sidecar: {status, body}. */
function readDb(path, headers) {
  const url = new URL(DB_URL.replace(/\/+$/, '') + path)
  return new Promise((resolve, reject) => {
    const req = http.request({agent, host: url.hostname, port: url.port, path: url.pathname + url.search, method: 'GET', headers, timeout: CALL_TIMEOUT_MS}, (res) => {
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => resolve({status: res.statusCode, body: Buffer.concat(chunks).toString('utf8')}))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`db gave no answer within ${CALL_TIMEOUT_MS}ms`)))
    req.on('error', reject)
    req.end()
  })
}

function reply(res, status, body) {
  if (res.headersSent) return
  const text = JSON.stringify(body)
  res.writeHead(status, {'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...(stopping ? {connection: 'close'} : {})})
  res.end(text)
}

async function invoke(req, res) {
  const coldStart = invocations++ === 0
  const answer = await readDb('/items', traceHeaders(req.headers))
  let db
  try {
    db = JSON.parse(answer.body)
  } catch {
    db = answer.body
  }
  // A db that failed is the function's failure too: 502, with what db said.
  reply(res, answer.status >= 500 ? 502 : 200, {function: 'api', instance: INSTANCE, coldStart, db})
}

// INIT: the part of a cold start that is the function's own, before it can take a request.
await sleep(INIT_MS)

const server = http.createServer((req, res) => {
  req.resume()
  const path = new URL(req.url ?? '/', 'http://api').pathname
  if (path === '/healthz') return reply(res, 200, {status: 'ok'})
  if (path !== '/') return reply(res, 404, {error: `no route for ${path}`})
  invoke(req, res).catch((error) => reply(res, 502, {function: 'api', instance: INSTANCE, error: `db failed: ${error.message}`}))
})
server.on('error', (error) => {
  console.error(`api: cannot listen on 127.0.0.1:${PORT}: ${error.code ?? error.message}`)
  process.exit(1)
})
server.listen(PORT, '127.0.0.1', () => console.log(`api (${INSTANCE}) ready after ${INIT_MS}ms of init, on 127.0.0.1:${server.address().port}`))

// Scaled down: finish the request in flight, then exit.
function stop(signal) {
  if (stopping) process.exit(1)
  stopping = true
  console.log(`api (${INSTANCE}) received ${signal} after ${invocations} invocations`)
  server.close(() => {
    agent.destroy()
    process.exit(0)
  })
  server.closeIdleConnections()
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
