// The benchmark's upstream: the smallest useful node:http server. Every request gets
// the same small body with a Content-Length (no chunking), on a keep-alive connection.
// Listens on 127.0.0.1:$PORT (0 = any) and prints `LISTENING <port>` when ready.
import http from 'node:http'

const BODY = Buffer.from('hello from the benchmark upstream\n')
const HEADERS = {'content-type': 'text/plain', 'content-length': String(BODY.length)}

const server = http.createServer((req, res) => {
  // Drain any request body before answering (the benchmark sends none).
  if (req.headers['content-length'] || req.headers['transfer-encoding']) req.resume()
  res.writeHead(200, HEADERS)
  res.end(BODY)
})
// Above undici's 4 s client idle timeout, so a pooled connection is never closed under a caller.
server.keepAliveTimeout = 65_000
server.headersTimeout = 66_000

server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  console.log(`LISTENING ${server.address().port}`)
})
const stop = () => server.close(() => process.exit(0)) && server.closeAllConnections()
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
