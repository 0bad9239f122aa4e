// What a proxy must get right: malformed requests stop at the ingress, hop-by-hop
// headers never cross a hop, outsiders cannot forge mesh headers, and both
// outbound modes (<DEP>_URL and HTTP_PROXY) reach the dependency.
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import type {MeshStatus} from '../../src/sim/control/status.js'
import {eventually, freePort, get, mesh, meshDir} from '../helpers/mesh.js'
import {raw, statusOf} from '../helpers/raw-http.js'

/**
 * A WebSocket session (undici's client): `say` sends a text frame and resolves with the next one back.
 * undici's error event says only that the handshake failed; the handshake goes through an interceptor
 * that keeps its answer (status, the mesh's flags and reason, the body's start) or its network error,
 * so a failure says why. Each session dials a connection of its own, as browsers do for a WebSocket,
 * not one the pool kept from an earlier test.
 */
async function openSocket(url: string) {
  const {WebSocket, Agent} = await import('undici')
  const seen: {started: boolean; status?: number; headers?: Record<string, string | string[] | undefined>; body: string; error?: Error} = {started: false, body: ''}
  const agent = new Agent({pipelining: 0})
  const dispatcher = agent.compose((dispatch) => (opts, handler) =>
    dispatch(opts, {
      onRequestStart: (c, context) => {
        seen.started = true
        handler.onRequestStart?.(c, context)
      },
      onRequestUpgrade: (c, status, headers, socket) => {
        seen.status = status
        seen.headers = headers
        handler.onRequestUpgrade?.(c, status, headers, socket)
      },
      onResponseStart: (c, status, headers, message) => {
        seen.status = status
        seen.headers = headers
        handler.onResponseStart?.(c, status, headers, message)
      },
      onResponseData: (c, chunk) => {
        if (seen.body.length < 500) seen.body += chunk.toString('utf8')
        handler.onResponseData?.(c, chunk)
      },
      onResponseEnd: (c, trailers) => handler.onResponseEnd?.(c, trailers),
      onResponseError: (c, error) => {
        seen.error = error
        handler.onResponseError?.(c, error)
      },
    }),
  )
  const ws = new WebSocket(url, {dispatcher})
  const inbox: string[] = []
  let waiting: ((text: string) => void) | undefined
  ws.onmessage = (e) => (waiting ? waiting(String(e.data)) : inbox.push(String(e.data)))
  ws.addEventListener('close', () => void agent.close().catch(() => {}))
  await new Promise((resolve, reject) => {
    ws.onopen = resolve
    ws.onerror = (event) => {
      const h = seen.headers ?? {}
      const answer = seen.status === undefined ? 'no answer' : `${seen.status} flags=${h['x-mesh-response-flags'] ?? '-'} reason=${h['x-mesh-reason'] ?? '-'} upstream=${h['x-mesh-upstream'] ?? '-'} body=${JSON.stringify(seen.body)}`
      const cause = seen.error ? `${seen.error.name}: ${seen.error.message}${(seen.error as {code?: string}).code ? ` (${(seen.error as {code?: string}).code})` : ''}` : 'none'
      const reported = (event as {error?: unknown}).error
      reject(new Error(`WebSocket to ${url} failed: request ${seen.started ? 'sent' : 'never sent'}; handshake answer ${answer}; network error ${cause}; undici says ${reported instanceof Error ? `${reported.name}: ${reported.message} ${String((reported as {cause?: unknown}).cause ?? '')}` : String(reported)}`))
    }
  })
  const say = (text: string) =>
    new Promise<string>((resolve) => {
      waiting = (t) => {
        waiting = undefined
        resolve(t)
      }
      ws.send(text)
      if (inbox.length) waiting(inbox.shift()!)
    })
  return {ws, say}
}

describe('sidecar hardening', () => {
  let dir: string
  let port: number
  let status: MeshStatus

  beforeAll(async () => {
    port = await freePort()
    dir = meshDir(`
name: hardening
ingress:
  port: ${port}
  routes: [{prefix: /, service: echo}, {prefix: /echo-api, service: echo, rewrite: /}]
services:
  echo:
    command: node fixtures/echo-server.js
    health: {path: /healthz, interval: 200ms}
    stopGracePeriod: 5s
  caller:
    command: node fixtures/echo-server.js
    dependsOn: [echo]
    health: {path: /healthz, interval: 200ms}
`)
    const up = await mesh(dir, ['up', '-d'])
    expect(up.exitCode, up.stderr + up.stdout).toBe(0)
    status = JSON.parse((await mesh(dir, ['status', '--json'])).stdout)
  })

  afterAll(async () => {
    await mesh(dir, ['down'])
  })

  const count = async () => JSON.parse((await get(`http://127.0.0.1:${port}/count`)).text).count as number

  test('malformed requests get 4xx from the ingress and never reach the service', async () => {
    const before = await count()
    const cases: Array<[string, string]> = [
      ['CL+TE', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
      ['duplicate CL', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab'],
      ['bare CR', 'GET / HTTP/1.1\r\nHost: x\rX-Evil: 1\r\n\r\n'],
      ['20 KB header', `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`],
      ['bad chunk size', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n'],
    ]
    for (const [name, text] of cases) {
      const code = statusOf(await raw(port, text))
      expect(code, name).toBeGreaterThanOrEqual(400)
      expect(code, name).toBeLessThan(500)
    }
    expect(statusOf(await raw(port, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`))).toBe(431)
    expect(await count()).toBe(before)
  })

  test('a route with rewrite replaces its prefix before the service sees the path (Istio rewrite.uri)', async () => {
    const url = async (p: string) => JSON.parse((await get(`http://127.0.0.1:${port}${p}`)).text).url
    expect(await url('/echo-api/items?sort=asc')).toBe('/items?sort=asc')
    expect(await url('/echo-api')).toBe('/')
    expect(await url('/echo-api?x=1')).toBe('/?x=1')
    // Other routes are left as they are.
    expect(await url('/items')).toBe('/items')
  })

  test('hop-by-hop headers, and those named in Connection, do not reach the service', async () => {
    const response = await raw(
      port,
      'GET /hop HTTP/1.1\r\nHost: x\r\nConnection: close, X-Foo\r\nX-Foo: secret\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\nX-Kept: yes\r\n\r\n',
    )
    expect(statusOf(response)).toBe(200)
    const body = JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4))
    const names = Object.keys(body.headers)
    for (const h of ['x-foo', 'keep-alive', 'te', 'proxy-connection']) expect(names, h).not.toContain(h)
    expect(body.headers['x-kept']).toBe('yes')
    expect(body.headers['traceparent']).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/)
  })

  test('x-forwarded-* and x-mesh-* from outside are overwritten at the ingress', async () => {
    const r = await get(`http://127.0.0.1:${port}/fwd`, {'x-forwarded-for': '6.6.6.6', 'x-mesh-response-flags': 'UH', 'x-forwarded-host': 'evil', 'x-request-id': 'forged-by-client'})
    const body = JSON.parse(r.text)
    expect(body.headers['x-forwarded-for']).toBe('127.0.0.1')
    // Dropped: the Host header reaches the service unchanged, so the mesh sets none.
    expect(body.headers['x-forwarded-host']).toBeUndefined()
    expect(body.headers['x-forwarded-proto']).toBe('http')
    expect(body.headers['x-mesh-response-flags']).toBeUndefined()
    // A fresh id, as Envoy makes one: the caller's is kept only with ingress.preserveRequestId.
    expect(body.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/)
  })

  test('a valid incoming traceparent keeps its trace id; the span id is new', async () => {
    const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
    const body = JSON.parse((await get(`http://127.0.0.1:${port}/t`, {traceparent: tp})).text)
    expect(body.headers.traceparent).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/)
    expect(body.headers.traceparent).not.toBe(tp)
  })

  test('an app that speaks B3 keeps its trace: B3 is accepted and forwarded, traceparent joins it', async () => {
    const body = JSON.parse((await get(`http://127.0.0.1:${port}/b3`, {'x-b3-traceid': '80f198ee56343ba864fe8b2a57d3eff7', 'x-b3-spanid': 'e457b5a2e4d86bd1', 'x-b3-sampled': '1'})).text)
    expect(body.headers.traceparent).toMatch(/^00-80f198ee56343ba864fe8b2a57d3eff7-[0-9a-f]{16}-01$/)
    expect(body.headers['x-b3-traceid']).toBe('80f198ee56343ba864fe8b2a57d3eff7')
    expect(body.headers['x-b3-spanid']).toBe(body.headers.traceparent.split('-')[2])
    expect(body.headers['x-b3-parentspanid']).toMatch(/^[0-9a-f]{16}$/)
  })

  test('the inbound sidecar address the registry publishes serves the instance', async () => {
    const echo = status.services.find((s) => s.name === 'echo')!.instances[0]
    const r = await get(`http://${echo.inboundAddress}/inbound`)
    expect(r.status).toBe(200)
    expect(JSON.parse(r.text).instance).toBe(echo.instance)
  })

  test('the outbound side routes by listener (<DEP>_URL) and, as a forward proxy, by host name', async () => {
    const caller = status.services.find((s) => s.name === 'caller')!.instances[0]
    const echo = status.services.find((s) => s.name === 'echo')!.instances[0]
    const viaDep = await get(`http://${caller.outbound!.dependencies.echo}/dep?x=1`)
    expect(viaDep.status).toBe(200)
    expect(JSON.parse(viaDep.text)).toMatchObject({instance: echo.instance, url: '/dep?x=1'})
    const [host, proxyPort] = caller.outbound!.proxy.split(':')
    const viaProxy = await raw(Number(proxyPort), 'GET http://echo:9080/proxied?y=2 HTTP/1.1\r\nHost: echo:9080\r\nConnection: close\r\n\r\n')
    expect(statusOf(viaProxy)).toBe(200)
    expect(JSON.parse(viaProxy.slice(viaProxy.indexOf('\r\n\r\n') + 4))).toMatchObject({instance: echo.instance, url: '/proxied?y=2'})
    expect(host).toBe('127.0.0.1')
    const unknown = await raw(Number(proxyPort), 'GET http://ehco/x HTTP/1.1\r\nHost: ehco\r\nConnection: close\r\n\r\n')
    expect(statusOf(unknown)).toBe(502)
    expect(unknown).toMatch(/x-mesh-response-flags: NR/i)
    expect(unknown).toContain('"ehco" is not a service in this mesh')
  })

  test('mesh exec runs a command as an instance: its <DEP>_URL reaches the dependency through that instance\'s sidecar; its exit code comes back', async () => {
    const echo = status.services.find((s) => s.name === 'echo')!.instances[0]
    const script = 'fetch(process.env.ECHO_URL + "/from-exec").then(r => r.json()).then(b => console.log(process.env.MESH_INSTANCE, b.instance, b.url))'
    const ran = await mesh(dir, ['exec', 'caller', '--', 'node', '-e', script])
    expect(ran.exitCode, ran.stderr).toBe(0)
    expect(ran.stdout.trim()).toBe(`caller-v1-0 ${echo.instance} /from-exec`)
    expect((await mesh(dir, ['exec', 'caller', '--', 'node', '-e', 'process.exit(3)'])).exitCode).toBe(3)
    const wrong = await mesh(dir, ['exec', 'caller', '--instance', 'caller-v1-9', '--', 'true'])
    expect(wrong.exitCode).toBe(2)
    expect(wrong.stderr).toMatch(/"caller-v1-9" is not an instance of caller/)
    expect((await mesh(dir, ['exec', 'callr', '--', 'true'])).stderr).toMatch(/service "callr" is not in the mesh; did you mean "caller"\?/)
  })

  test('CONNECT through HTTP_PROXY tunnels to a mesh service by name (as gRPC clients do), and to nothing else', async () => {
    const caller = status.services.find((s) => s.name === 'caller')!.instances[0]
    const echo = status.services.find((s) => s.name === 'echo')!.instances[0]
    const proxyPort = Number(caller.outbound!.proxy.split(':')[1])
    const tunnelled = await raw(proxyPort, 'CONNECT echo:443 HTTP/1.1\r\nHost: echo:443\r\n\r\nGET /in-tunnel HTTP/1.1\r\nHost: echo\r\nConnection: close\r\n\r\n')
    expect(tunnelled).toMatch(/^HTTP\/1.1 200 Connection Established\r\n\r\nHTTP\/1.1 200 /)
    expect(tunnelled).toContain(`x-mesh-upstream: ${echo.instance}`)
    expect(tunnelled).toContain('"url":"/in-tunnel"')
    const unknown = await raw(proxyPort, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n')
    expect(statusOf(unknown)).toBe(502)
    expect(unknown).toMatch(/x-mesh-response-flags: NR/i)
    expect(unknown).toContain('"example" is not a service in this mesh')
    const atIngress = await raw(port, 'CONNECT echo:443 HTTP/1.1\r\nHost: echo:443\r\n\r\n')
    expect(statusOf(atIngress)).toBe(405)
  })

  test('request and response bodies stream through both ways, chunked or with a length', async () => {
    const body = 'x'.repeat(1024 * 1024)
    const {request} = await import('undici')
    const sized = await request(`http://127.0.0.1:${port}/upload`, {method: 'POST', body})
    const echoed = (await sized.body.json()) as {body: string; headers: Record<string, string>}
    expect(sized.statusCode).toBe(200)
    expect(echoed.body.length).toBe(body.length)
    expect(echoed.headers['content-length']).toBe(String(body.length))
    const {Readable} = await import('node:stream')
    const chunked = await request(`http://127.0.0.1:${port}/upload`, {method: 'PUT', body: Readable.from(['a'.repeat(70_000), 'b'.repeat(70_000)])})
    const echoed2 = (await chunked.body.json()) as {body: string; method: string}
    expect(echoed2.method).toBe('PUT')
    expect(echoed2.body.length).toBe(140_000)
  })

  test('a WebSocket goes through the ingress and an outbound sidecar: frames both ways on one session, a 101 naming the instance, a span for the handshake', async () => {
    const caller = status.services.find((s) => s.name === 'caller')!.instances[0]
    const echo = status.services.find((s) => s.name === 'echo')!.instances[0]
    for (const url of [`ws://127.0.0.1:${port}/chat`, `ws://${caller.outbound!.dependencies.echo}/chat`]) {
      const session = await openSocket(url)
      expect(await session.say('hello')).toBe(`${echo.instance} hello`)
      expect(await session.say('again')).toBe(`${echo.instance} again`)
      session.ws.close()
    }
    const handshake = await raw(port, `GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`, 1_000)
    expect(statusOf(handshake)).toBe(101)
    expect(handshake).toContain('Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=')
    expect(handshake).toContain(`x-mesh-upstream: ${echo.instance}`)
    const traces = JSON.parse((await mesh(dir, ['traces', '--json', '--service', 'echo', '--limit', '1000'])).stdout) as Array<{status: number; root: {path: string}}>
    expect(traces.filter((t) => t.status === 101 && t.root.path === '/chat').length).toBeGreaterThanOrEqual(3)
    // After the handshake a session counts as a TCP connection (as Istio's), from its caller.
    const metrics = (await get(`${status.controlUrl}/metrics`)).text
    for (const source of ['ingress', 'caller']) {
      expect(metrics).toMatch(new RegExp(`istio_tcp_connections_opened_total\\{reporter="source",source_workload="${source}",[^}]*destination_service="echo"[^}]*\\} [1-9]`))
    }
    // mesh status counts them too, for the HTTP service they reached.
    const now = JSON.parse((await mesh(dir, ['status', '--json'])).stdout) as MeshStatus
    expect(now.services.find((s) => s.name === 'echo')!.tcp?.opened).toBeGreaterThanOrEqual(3)
    expect(now.services.find((s) => s.name === 'caller')!.tcp).toBeUndefined()
    expect((await mesh(dir, ['status'])).stdout).toMatch(/echo: WebSocket \(Upgrade\) sessions: \d+ sessions? open, [3-9]\d* opened since mesh up/)
  })

  test('an Upgrade sent on a connection before its last response has finished waits for it, then goes through; nothing stays counted', async () => {
    const echo = status.services.find((s) => s.name === 'echo')!.instances[0]
    const {connect} = await import('node:net')
    const socket = connect(port, '127.0.0.1')
    let received = ''
    socket.on('data', (d: Buffer) => (received += d.toString('latin1')))
    // Pipelined: node:http reads the Upgrade while the first response is still going out.
    socket.write(`GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`)
    try {
      await eventually(() => received.includes('Sec-WebSocket-Accept'), 3_000, 20, () => received)
      expect(statusOf(received)).toBe(200)
      expect(received.indexOf('"url":"/first"')).toBeLessThan(received.indexOf('HTTP/1.1 101 '))
      // The session outlives the keep-alive timeout (5 s) node:http armed when the first response finished.
      await new Promise((r) => setTimeout(r, 5_500))
      const text = Buffer.from('ping')
      const mask = Buffer.from([1, 2, 3, 4])
      socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | text.length]), mask, text.map((b, i) => b ^ mask[i & 3])]))
      await eventually(() => received.includes(`${echo.instance} ping`), 3_000, 20, () => received)
    } finally {
      socket.destroy()
    }
    await eventually(async () => (JSON.parse((await mesh(dir, ['status', '--json'])).stdout) as MeshStatus).requestsInFlight === 0, 5_000)
  })

  test('an Upgrade the instance declines, or the mesh refuses, is answered as any request, then the connection closes', async () => {
    const upgrade = (path: string) =>
      raw(port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`)
    const declined = await upgrade('/no-upgrade')
    expect(statusOf(declined)).toBe(426)
    expect(declined).toContain('not here.')
    expect((await mesh(dir, ['inject-fault', 'echo', '--abort', '503'])).exitCode).toBe(0)
    try {
      const refused = await upgrade('/chat')
      expect(statusOf(refused)).toBe(503)
      expect(refused).toMatch(/x-mesh-response-flags: FI/i)
    } finally {
      await mesh(dir, ['clear-faults', '--all'])
    }
  })

  test('a client that stops reading holds the response back (backpressure to the instance) and then gets all of it', async () => {
    const {connect} = await import('node:net')
    const payload = 'z'.repeat(16 * 1024 * 1024)
    const socket = connect(port, '127.0.0.1')
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))
    socket.write(`POST /slow-reader HTTP/1.1\r\nHost: x\r\nContent-Length: ${payload.length}\r\nConnection: close\r\n\r\n`)
    socket.write(payload)
    // Read nothing for a while: the echoed 16 MB cannot all fit in the socket buffers.
    socket.pause()
    await new Promise((r) => setTimeout(r, 500))
    const chunks: Buffer[] = []
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.resume()
    await new Promise((resolve) => socket.once('end', resolve))
    const text = Buffer.concat(chunks).toString('latin1')
    expect(statusOf(text)).toBe(200)
    const echoed = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as {body: string; url: string}
    expect(echoed.url).toBe('/slow-reader')
    expect(echoed.body.length).toBe(payload.length)
  })
})
