// Row (d)'s `front` service: an app behind the mesh that answers each request by
// calling `api` through its outbound sidecar ($API_URL) and returning api's body.
// It forwards the trace headers from its inbound request, as the README asks apps to.
import http from 'node:http'
import {Pool} from 'undici'
import {exitOnSignal} from './lib.js'

const api = process.env.API_URL
if (!api) {
  console.error('front: API_URL is not set (dependsOn: [api])')
  process.exit(2)
}
const pool = new Pool(api, {connections: 128, pipelining: 1, keepAliveTimeout: 4_000})
const PROPAGATE = ['traceparent', 'tracestate', 'x-request-id']

const server = http.createServer(async (req, res) => {
  req.resume()
  const headers = {}
  for (const name of PROPAGATE) if (req.headers[name]) headers[name] = req.headers[name]
  try {
    const r = await pool.request({path: '/', method: 'GET', headers})
    const body = Buffer.from(await r.body.arrayBuffer())
    res.writeHead(r.statusCode, {'content-type': 'text/plain', 'content-length': body.length})
    res.end(body)
  } catch (error) {
    res.writeHead(502, {'content-type': 'text/plain'})
    res.end(`front: ${error.message}\n`)
  }
})
server.keepAliveTimeout = 65_000
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1')
exitOnSignal(server, pool)
