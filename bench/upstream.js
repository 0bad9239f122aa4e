// The benchmark's upstream: the smallest useful node:http server. Every request gets
// the same small body with a Content-Length (no chunking), on a keep-alive connection.
// Listens on 127.0.0.1:$PORT (0 = any) and prints `LISTENING <port>` when ready.
// With TLS_CERT, TLS_KEY and TLS_CA (files) it serves HTTPS and takes only clients with a
// certificate from that CA, as an app serving with its MESH_TLS_* files does (row e). A path
// containing `close` is answered with `Connection: close`, so every such request opens a new
// connection (and, over TLS, makes a new handshake).
import {readFileSync} from 'node:fs'
import http from 'node:http'
import https from 'node:https'

const BODY = Buffer.from('hello from the benchmark upstream\n')
const HEADERS = {'content-type': 'text/plain', 'content-length': String(BODY.length)}
const CLOSE = {...HEADERS, connection: 'close'}

const handler = (req, res) => {
  // Drain any request body before answering (the benchmark sends none).
  if (req.headers['content-length'] || req.headers['transfer-encoding']) req.resume()
  res.writeHead(200, req.url.includes('close') ? CLOSE : HEADERS)
  res.end(BODY)
}
const tls = process.env.TLS_CERT
  ? {cert: readFileSync(process.env.TLS_CERT), key: readFileSync(process.env.TLS_KEY), ca: readFileSync(process.env.TLS_CA), requestCert: true, rejectUnauthorized: true}
  : undefined
const server = tls ? https.createServer(tls, handler) : http.createServer(handler)
// Above undici's 4 s client idle timeout, so a pooled connection is never closed under a caller.
server.keepAliveTimeout = 65_000
server.headersTimeout = 66_000

server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  console.log(`LISTENING ${server.address().port}`)
})
const stop = () => server.close(() => process.exit(0)) && server.closeAllConnections()
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
