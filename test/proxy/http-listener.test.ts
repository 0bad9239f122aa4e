import http from 'node:http'
import http2 from 'node:http2'
import net, {type AddressInfo} from 'node:net'
import {afterEach, describe, expect, test} from 'vitest'
import {HttpListener} from '../../src/sim/proxy/http-listener.js'
import {h2Status} from '../helpers/raw-http.js'

let listener: HttpListener | undefined

async function start(opts: {headersTimeoutMs?: number; limits?: {maxRequestHeaders: number}} = {}): Promise<{port: number; seen: string[]}> {
  const seen: string[] = []
  listener = new HttpListener({
    headersTimeoutMs: opts.headersTimeoutMs ?? 10_000,
    // Long: an idle connection that closes must have been closed by close(), not by its keep-alive timeout.
    keepAliveTimeoutMs: 60_000,
    requestTimeoutMs: 300_000,
    connectionsCheckingIntervalMs: 50,
    limits: opts.limits,
    onRequest: (req, res) => {
      seen.push(`HTTP/${req.httpVersionMajor} ${req.method} ${req.url}`)
      res.writeHead(200, ['content-type', 'text/plain'])
      res.end(`hello ${req.httpVersion}`)
    },
    onUpgrade: (_req, socket) => socket.destroy(),
  })
  await new Promise<void>((resolve) => listener!.server.listen(0, '127.0.0.1', resolve))
  return {port: (listener.server.address() as AddressInfo).port, seen}
}

afterEach(() => {
  listener?.closeAll()
  listener?.close()
  listener = undefined
})

/** Sends `text` on a raw connection; resolves with all it got back once the server closed it. */
function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(text))
    let got = ''
    socket.on('data', (d) => (got += d.toString()))
    socket.on('error', () => undefined)
    socket.on('close', () => resolve(got))
  })
}

function h2get(session: http2.ClientHttp2Session, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stream = session.request({':path': path})
    let body = ''
    stream.on('data', (c: Buffer) => (body += c.toString()))
    stream.on('end', () => resolve(body))
    stream.on('error', reject)
  })
}

describe('HttpListener: HTTP/1.1 and h2c on one port', () => {
  test('an HTTP/1.1 client and an HTTP/2 (prior knowledge) client both reach the handler, each in its own protocol', async () => {
    const {port, seen} = await start()
    const h1 = await new Promise<string>((resolve) => http.get(`http://127.0.0.1:${port}/one`, (res) => {
      let body = ''
      res.on('data', (c) => (body += c))
      res.on('end', () => resolve(body))
    }))
    expect(h1).toBe('hello 1.1')
    const session = http2.connect(`http://127.0.0.1:${port}`)
    expect(await h2get(session, '/two')).toBe('hello 2.0')
    session.close()
    // A request line that starts like the preface's "P" (POST) is still HTTP/1.1.
    const post = await raw(port, 'POST /three HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
    expect(post).toMatch(/^HTTP\/1.1 200/)
    expect(seen).toEqual(['HTTP/1 GET /one', 'HTTP/2 GET /two', 'HTTP/1 POST /three'])
  })

  test('close(): an idle keep-alive HTTP/1.1 connection is closed, an HTTP/2 session gets GOAWAY', async () => {
    const {port} = await start()
    const socket = net.connect(port, '127.0.0.1')
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()))
    socket.on('error', () => undefined)
    const first = await new Promise<string>((resolve) => {
      socket.once('data', (d) => resolve(d.toString()))
      socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
    })
    expect(first).toMatch(/^HTTP\/1.1 200/)
    const session = http2.connect(`http://127.0.0.1:${port}`)
    expect(await h2get(session, '/')).toBe('hello 2.0')
    const goaway = new Promise<void>((resolve) => session.once('goaway', () => resolve()))
    listener!.close()
    await closed
    await goaway
    session.destroy()
  })

  test('a client that never finishes its headers, or never sends a byte, is not kept: 408, or closed', async () => {
    const {port} = await start({headersTimeoutMs: 200})
    expect(await raw(port, 'GET / HTTP/1.1\r\nHost: x\r\n')).toMatch(/^HTTP\/1.1 408/)
    expect(await raw(port, '')).toBe('')
  })
})

describe('HttpListener: requests refused before the handler', () => {
  test('more request headers than the limit: 431 over HTTP/1.1 and HTTP/2 (pseudo-headers not counted); at the limit the handler serves it; a new limit applies at once', async () => {
    const limits = {maxRequestHeaders: 5}
    const {port, seen} = await start({limits})
    const h1 = (n: number) => raw(port, `GET /h1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${Array.from({length: n - 2}, (_, i) => `x-${i}: v\r\n`).join('')}\r\n`)
    expect(await h1(5)).toMatch(/^HTTP\/1\.1 200/)
    const refused = await h1(6)
    expect(refused).toMatch(/^HTTP\/1\.1 431 /)
    expect(refused).toContain('6 headers, more than the 5 the mesh takes')
    const session = http2.connect(`http://127.0.0.1:${port}`)
    const h2 = (n: number) => h2Status(session, '/h2', n)
    expect(await h2(5)).toBe(200)
    expect(await h2(6)).toBe(431)
    limits.maxRequestHeaders = 6
    expect(await h2(6)).toBe(200)
    session.close()
    expect(seen).toEqual(['HTTP/1 GET /h1', 'HTTP/2 GET /h2', 'HTTP/2 GET /h2'])
  })

  test('an HTTP/2.0 request line on an HTTP/1.1 connection: 505, for a request and an Upgrade alike, and the handler never sees it', async () => {
    const {port, seen} = await start()
    for (const text of ['GET /x HTTP/2.0\r\nHost: x\r\n\r\n', 'GET /x HTTP/2.0\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n']) {
      const reply = await raw(port, text)
      expect(reply).toMatch(/^HTTP\/1\.1 505 HTTP Version Not Supported/)
      expect(reply).toContain('HTTP/2.0 on an HTTP/1.1 connection')
    }
    expect(seen).toEqual([])
  })
})
