// A `protocol: grpc` service behind the mesh, called by a real gRPC client (@grpc/grpc-js):
// the listeners speak h2c as well as HTTP/1.1, and every call on one HTTP/2 connection is
// balanced and policed on its own — what Linkerd is known for, where a TCP proxy would pin
// a gRPC channel to one instance.
import http2 from 'node:http2'
import path from 'node:path'
import grpc from '@grpc/grpc-js'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import type {MeshStatus} from '../../src/sim/control/status.js'
import {downMesh, eventually, FIXTURES, get, json, mesh, upMesh} from '../helpers/mesh.js'
import {sumSeries} from '../helpers/prometheus-parser.js'
// @ts-expect-error: a plain JS fixture without types
import {EchoService} from '../fixtures/grpc-echo-service.js'

type EchoClient = grpc.Client & {
  Echo(req: object, done: (error: grpc.ServiceError | null, reply: {instance: string; text?: string}) => void): void
  Count(req: object): grpc.ClientReadableStream<{instance: string; i: number}>
  Chat(): grpc.ClientDuplexStream<{text: string}, {instance: string; text: string}>
}

const Client = grpc.makeGenericClientConstructor(EchoService, 'Echo') as unknown as new (address: string, creds: grpc.ChannelCredentials, options: object) => EchoClient

/** Reads a server stream to its end: how many messages came, and the status. */
function drain(stream: grpc.ClientReadableStream<unknown>): Promise<{count: number; code: number; details?: string}> {
  let count = 0
  return new Promise((resolve) => {
    stream.on('data', () => count++)
    stream.on('error', () => undefined)
    stream.on('status', (s: grpc.StatusObject) => resolve(s.code === grpc.status.OK ? {count, code: s.code} : {count, code: s.code, details: s.details}))
  })
}

function echo(client: EchoClient, req: object): Promise<{reply?: {instance: string; text?: string}; error?: grpc.ServiceError}> {
  return new Promise((resolve) => client.Echo(req, (error, reply) => resolve(error ? {error} : {reply})))
}

describe('protocol: grpc', () => {
  let dir: string
  let port: number
  let client: EchoClient
  let slowClient: EchoClient
  const fixture = path.join(FIXTURES, 'grpc-echo.js')

  beforeAll(async () => {
    ;({dir, port} = await upMesh(
      (port) => `
name: grpc
ingress: {port: ${port}, routes: [{prefix: /meshsim.Echo/, service: echo}, {prefix: /web/, service: web}, {prefix: /, service: app}]}
services:
  web:
    command: node fixtures/echo-server.js
  app:
    command: node ${fixture}
    env: {CALLS: echo}
    dependsOn: [echo, slow]
  # Its timeout apart from echo's calls, whose streams take as long as the machine makes them.
  slow:
    protocol: grpc
    command: node ${fixture}
    policy: {timeout: 1s}
  echo:
    protocol: grpc
    command: node ${fixture}
    replicas: 3
    versions:
      v1: {}
      v2: {replicas: 1}
    health: {grpc: meshsim.Echo, interval: 200ms, unhealthyThreshold: 2}
    policy:
      mirror: {version: v2, percent: 100}
      retries: {attempts: 2, on: [unavailable]}
      outlierDetection: {consecutive5xxErrors: 50, consecutiveGatewayErrors: 3, interval: 200ms, baseEjectionTime: 30s, maxEjectionPercent: 34}
`,
    ))
    client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {'grpc.enable_http_proxy': 0})
    // `slow` through app's own listener for it, as app would call it.
    const status = json<MeshStatus>(await mesh(dir, ['status', '--json']))
    const viaApp = status.services.find((s) => s.name === 'app')!.instances[0].outbound!.dependencies.slow
    slowClient = new Client(viaApp, grpc.credentials.createInsecure(), {'grpc.enable_http_proxy': 0})
  })

  afterAll(async () => {
    client?.close()
    slowClient?.close()
    await downMesh(dir)
  })

  test('calls on one gRPC channel (one HTTP/2 connection) are balanced per request over every instance', async () => {
    const served: string[] = []
    for (let i = 0; i < 30; i++) {
      const {reply, error} = await echo(client, {text: `hi ${i}`})
      expect(error).toBeUndefined()
      expect(reply!.text).toBe(`hi ${i}`)
      served.push(reply!.instance)
    }
    // Round robin: ten each.
    const counts = Object.fromEntries(['echo-v1-0', 'echo-v1-1', 'echo-v1-2'].map((n) => [n, served.filter((s) => s === n).length]))
    expect(counts).toEqual({'echo-v1-0': 10, 'echo-v1-1': 10, 'echo-v1-2': 10})
  })

  test('a call mirrored to v2 once its request ended: the caller gets v1\'s answer, v2 a copy', async () => {
    const status = json<MeshStatus>(await mesh(dir, ['status', '--json']))
    const mirrored = async () => sumSeries((await get(`${status.controlUrl}/metrics`)).text, 'istio_requests_total', {reporter: 'destination', destination_version: 'v2'})
    const before = await mirrored()
    for (let i = 0; i < 10; i++) expect((await echo(client, {text: `m${i}`})).reply?.instance).toMatch(/^echo-v1-/)
    // Shadows are sent beside the call, never waited for: v2 gets one copy of each, in time.
    const after = await eventually(async () => {
      const n = await mirrored()
      return n >= before + 10 ? n : undefined
    })
    expect(after).toBe(before + 10)
  })

  test('a server stream arrives whole, with its status in the trailers', async () => {
    const stream = client.Count({n: 5})
    const got: number[] = []
    const status = await new Promise<grpc.StatusObject>((resolve, reject) => {
      stream.on('data', (m) => got.push(m.i))
      stream.on('status', resolve)
      stream.on('error', reject)
    })
    expect(got).toEqual([0, 1, 2, 3, 4])
    expect(status.code).toBe(grpc.status.OK)
    // Far more than HTTP/2's flow-control windows hold: the instance waits for the client,
    // and the trailers wait for the last message.
    expect(await drain(client.Count({n: 8_000}))).toEqual({count: 8_000, code: grpc.status.OK})
  })

  test("a stream still running when the service's timeout fires ends with DEADLINE_EXCEEDED and the reason, not a reset", async () => {
    // slow's policy.timeout: 1s covers the whole stream, as Envoy's route timeout does.
    const {count, code, details} = await drain(slowClient.Count({n: 100, intervalMs: 50}))
    expect(code).toBe(grpc.status.DEADLINE_EXCEEDED)
    expect(details).toMatch(/upstream request timeout/)
    expect(count).toBeGreaterThan(0)
    expect(count).toBeLessThan(100)
  })

  test("a caller's grpc-timeout is the call's deadline: the mesh answers DEADLINE_EXCEEDED itself when it passes (echo has no timeout of its own)", async () => {
    // A bare HTTP/2 client with no deadline of its own: only the deadline can end this call before echo answers in 3 s.
    const call = async () => {
      const session = http2.connect(`http://127.0.0.1:${port}`)
      try {
        const payload = Buffer.from(JSON.stringify({text: 'late', delayMs: 3_000}))
        const prefix = Buffer.alloc(5)
        prefix.writeUInt32BE(payload.length, 1)
        const stream = session.request({':method': 'POST', ':path': '/meshsim.Echo/Echo', 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '300m'})
        stream.end(Buffer.concat([prefix, payload]))
        return await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
          let head: http2.IncomingHttpHeaders = {}
          stream.on('response', (h) => (head = h))
          stream.on('trailers', (t) => resolve({...head, ...t}))
          stream.on('end', () => resolve(head))
          stream.on('error', reject)
          stream.resume()
        })
      } finally {
        session.close()
      }
    }
    // echo (grpc-js) keeps the same deadline, from when the call reached it: on a loaded machine
    // its timer can fire before the mesh's and its own DEADLINE_EXCEEDED (no flag) comes back.
    // Either way the call ends at its deadline; the mesh's own answer must show within three calls.
    for (let i = 0; ; i++) {
      const answer = await call()
      expect(answer['grpc-status']).toBe(String(grpc.status.DEADLINE_EXCEEDED))
      if (answer['x-mesh-response-flags'] === undefined && i < 2) continue
      expect(answer['x-mesh-response-flags']).toBe('UT')
      expect(decodeURIComponent(String(answer['grpc-message']))).toBe('upstream request timeout: "echo" did not answer within the 300 ms the caller\'s deadline left (grpc-timeout)')
      break
    }
  })

  test('a bidirectional stream flows both ways while it is open: each message is answered before the next is sent', async () => {
    const chat = client.Chat()
    const replies: string[] = []
    const reply = () =>
      new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no reply within 5 s: the mesh held the request stream')), 5_000)
        chat.once('data', (m: {text: string}) => {
          clearTimeout(timer)
          resolve(m.text)
        })
      })
    try {
      for (const text of ['one', 'two', 'three']) {
        chat.write({text})
        replies.push(await reply())
      }
    } finally {
      chat.end()
    }
    const status = await new Promise<grpc.StatusObject>((resolve) => chat.on('status', resolve))
    expect(replies).toEqual(['one', 'two', 'three'])
    expect(status.code).toBe(grpc.status.OK)
  })

  test("the service's own error status and message reach the client unchanged", async () => {
    const {error} = await echo(client, {code: grpc.status.NOT_FOUND, message: 'no such item'})
    expect(error?.code).toBe(grpc.status.NOT_FOUND)
    expect(error?.details).toBe('no such item')
  })

  test('mesh status names a gRPC service\'s protocol', async () => {
    expect((await mesh(dir, ['status'])).stdout).toMatch(/^echo \(grpc\) +v1 \(100%\) +echo-v1-0 /m)
  })

  test('an app reaches its gRPC dependency at $ECHO_ADDR, through its outbound sidecar', async () => {
    const status = json<MeshStatus>(await mesh(dir, ['status', '--json']))
    const address = status.services.find((s) => s.name === 'app')!.instances[0].outbound!.dependencies.echo
    const r = await get(`http://127.0.0.1:${port}/call?text=via-app`)
    expect(r.status, r.text).toBe(200)
    const body = JSON.parse(r.text)
    expect(body).toMatchObject({address, text: 'via-app'})
    expect(body.instance).toMatch(/^echo-v1-\d$/)
  })

  test('an app that dials its gRPC dependency by name (echo:50051) is tunnelled through its HTTP_PROXY with CONNECT, each call balanced', async () => {
    const served = new Set<string>()
    for (let i = 0; i < 6; i++) {
      const r = await get(`http://127.0.0.1:${port}/call?by=name&text=n${i}`)
      expect(r.status, r.text).toBe(200)
      const body = JSON.parse(r.text)
      expect(body.text).toBe(`n${i}`)
      served.add(body.instance)
    }
    expect(served.size).toBe(3)
  })

  test('any HTTP/2 client reaches a plain HTTP/1.1 service through the same port: the mesh translates both ways', async () => {
    const session = http2.connect(`http://127.0.0.1:${port}`)
    try {
      const answer = await new Promise<{status: number; headers: http2.IncomingHttpHeaders; body: string}>((resolve, reject) => {
        const stream = session.request({':method': 'POST', ':path': '/web/items', 'content-type': 'text/plain', 'x-kept': 'yes'})
        let body = ''
        let head: http2.IncomingHttpHeaders = {}
        stream.on('response', (h) => (head = h))
        stream.on('data', (c: Buffer) => (body += c.toString()))
        stream.on('end', () => resolve({status: Number(head[':status']), headers: head, body}))
        stream.on('error', reject)
        stream.end('posted over h2')
      })
      expect(answer.status).toBe(200)
      expect(answer.headers['x-mesh-upstream']).toBe('web-v1-0')
      const seen = JSON.parse(answer.body)
      expect(seen).toMatchObject({method: 'POST', url: '/web/items', body: 'posted over h2'})
      expect(seen.headers).toMatchObject({host: `127.0.0.1:${port}`, 'x-kept': 'yes'})
      expect(Object.keys(seen.headers).filter((h: string) => h.startsWith(':'))).toEqual([])
    } finally {
      session.close()
    }
  })

  test('each call is traced: a client and a server span named by its method', async () => {
    const spans = json<Array<{name: string; kind: string; localEndpoint: {serviceName: string}; tags: Record<string, string>}>>(
      await mesh(dir, ['traces', '--export', 'zipkin', '--service', 'echo', '--json']),
    ).filter((s) => s.name === 'post /meshsim.echo/echo')
    expect(spans.some((s) => s.kind === 'CLIENT' && s.tags['http.status_code'] === '200')).toBe(true)
    expect(spans.some((s) => s.kind === 'SERVER' && s.localEndpoint.serviceName === 'echo')).toBe(true)
  })

  test("the mesh's own answers reach a gRPC client as gRPC statuses, with the flag and the reason", async () => {
    const inject = await mesh(dir, ['inject-fault', 'echo', '--abort', '503', '--json'])
    expect(inject.exitCode, inject.stderr).toBe(0)
    const id = json<{id: string}>(inject).id
    try {
      const {error} = await echo(client, {text: 'x'})
      expect(error?.code).toBe(grpc.status.UNAVAILABLE)
      expect(error?.details).toMatch(/fault/)
      expect(error?.metadata.get('x-mesh-response-flags')).toEqual(['FI'])
    } finally {
      expect((await mesh(dir, ['clear-faults', id])).exitCode).toBe(0)
    }
    // A fault with a gRPC status, as Istio's abort.grpcStatus.
    const named = await mesh(dir, ['inject-fault', 'echo', '--abort', 'RESOURCE_EXHAUSTED', '--first', '1'])
    expect(named.exitCode, named.stderr).toBe(0)
    const exhausted = await echo(client, {text: 'y'})
    expect(exhausted.error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED)
    expect(exhausted.error?.details).toMatch(/abort RESOURCE_EXHAUSTED/)
    expect((await echo(client, {text: 'z'})).reply?.text).toBe('z')
    // slow's policy.timeout: 1s → DEADLINE_EXCEEDED, not a generic UNAVAILABLE.
    const {error} = await echo(slowClient, {text: 'late', delayMs: 3_000})
    expect(error?.code).toBe(grpc.status.DEADLINE_EXCEEDED)
    expect(error?.details).toMatch(/upstream request timeout/)
  })

  test('an instance answering UNAVAILABLE: retries on: [unavailable] take the call elsewhere, and outlier detection ejects it', async () => {
    const replies = []
    for (let i = 0; i < 30; i++) replies.push(await echo(client, {text: `r${i}`, code: grpc.status.UNAVAILABLE, onlyOn: 'echo-v1-0'}))
    expect(replies.filter((r) => r.error).map((r) => r.error!.code)).toEqual([])
    expect(new Set(replies.map((r) => r.reply!.instance))).toEqual(new Set(['echo-v1-1', 'echo-v1-2']))
    const status = json<MeshStatus>(await mesh(dir, ['status', '--json']))
    const failing = status.services.find((s) => s.name === 'echo')!.instances.find((i) => i.instance === 'echo-v1-0')!
    expect(failing.ejected?.reason).toBe('consecutive-gateway-errors')
    // Istio's label: the failed tries are counted with their gRPC status.
    const metrics = (await get(`${status.controlUrl}/metrics`)).text
    expect(metrics).toMatch(/istio_requests_total\{reporter="destination",[^}]*destination_service="echo"[^}]*response_code="200",grpc_response_status="14",response_flags="-"\} [1-9]/)
    expect(metrics).toMatch(/istio_requests_total\{reporter="source",[^}]*destination_service="echo"[^}]*grpc_response_status="0"[^}]*\} [1-9]/)
  })

  test('health.grpc asks each instance grpc.health.v1: one answering NOT_SERVING leaves the balancer until it serves again', async () => {
    const {reply} = await echo(client, {text: 'sick', health: 'NOT_SERVING'})
    const sick = reply!.instance
    const instanceOf = async () => json<MeshStatus>(await mesh(dir, ['status', '--json'])).services.find((s) => s.name === 'echo')!.instances.find((i) => i.instance === sick)!
    const down = (await eventually(async () => {
      const i = await instanceOf()
      return i.health === 'unhealthy' ? i : undefined
    }))!
    expect(down.healthDetail).toBe('grpc health meshsim.Echo: NOT_SERVING')
    for (let i = 0; i < 6; i++) expect((await echo(client, {text: `h${i}`})).reply?.instance).not.toBe(sick)
    // Its own published address still reaches it: tell it to serve again.
    const direct = new Client(down.inboundAddress, grpc.credentials.createInsecure(), {'grpc.enable_http_proxy': 0})
    try {
      expect((await echo(direct, {text: 'well', health: 'SERVING'})).reply?.instance).toBe(sick)
    } finally {
      direct.close()
    }
    await eventually(async () => ((await instanceOf()).health === 'healthy' ? true : undefined))
  })

  test('an instance killed mid-traffic: its HTTP/2 connection is replaced when it is back, and calls succeed again', async () => {
    const killed = json<{instances?: string[]}>(await mesh(dir, ['inject-fault', 'echo@v1', '--kill', '--json'])).instances![0]
    const back = await eventually(async () => {
      const i = json<MeshStatus>(await mesh(dir, ['status', '--json'])).services.find((s) => s.name === 'echo')!.instances.find((x) => x.instance === killed)!
      return i.restarts >= 1 && i.health === 'healthy' ? i : undefined
    })
    expect(back.lastExit?.signal).toBe('SIGKILL')
    // Every instance answers again, the restarted one over a new connection.
    await eventually(async () => {
      for (let i = 0; i < 9; i++) if ((await echo(client, {text: `k${i}`})).reply?.instance === killed) return true
      return undefined
    })
    const served: string[] = []
    for (let i = 0; i < 9; i++) {
      const {reply, error} = await echo(client, {text: `after ${i}`})
      expect(error).toBeUndefined()
      expect(reply!.text).toBe(`after ${i}`)
      served.push(reply!.instance)
    }
    expect(new Set(served)).toEqual(new Set(['echo-v1-0', 'echo-v1-1', 'echo-v1-2']))
  })
})
