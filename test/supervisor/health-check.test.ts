import {once} from 'node:events'
import http from 'node:http'
import net, {type AddressInfo} from 'node:net'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {realClock, VirtualClock} from '../../src/sim/time/clock.js'
import {HealthChecker, HealthState, probeCommand, probeGrpc, probeHttp, probeTcp, type ProbeResult} from '../../src/sim/supervisor/health-check.js'

describe('HealthState', () => {
  it('starts unhealthy and needs healthyThreshold successes in a row', () => {
    const state = new HealthState({healthyThreshold: 2, unhealthyThreshold: 3})
    expect(state.healthy).toBe(false)
    expect(state.record(true)).toBeUndefined()
    expect(state.record(false)).toBeUndefined() // breaks the streak
    expect(state.record(true)).toBeUndefined()
    expect(state.record(true)).toBe('became-healthy')
    expect(state.healthy).toBe(true)
    expect(state.record(true)).toBeUndefined()
  })

  it('needs unhealthyThreshold failures in a row to turn unhealthy', () => {
    const state = new HealthState({healthyThreshold: 1, unhealthyThreshold: 3})
    expect(state.record(true)).toBe('became-healthy')
    expect([false, false, true, false, false].map((ok) => state.record(ok))).toEqual([undefined, undefined, undefined, undefined, undefined])
    expect(state.record(false)).toBe('became-unhealthy')
    expect(state.healthy).toBe(false)
  })
})

describe('probes', () => {
  let server: http.Server
  let port: number
  let closedPort: number

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/healthz') res.end('ok')
      else if (req.url === '/moved') res.writeHead(302, {location: '/healthz'}).end()
      else if (req.url === '/hang') return // never answers
      else res.writeHead(500).end('broken')
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    port = (server.address() as AddressInfo).port

    const spare = net.createServer().listen(0, '127.0.0.1')
    await once(spare, 'listening')
    closedPort = (spare.address() as AddressInfo).port
    await new Promise((resolve) => spare.close(resolve))
  })

  afterAll(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })

  it('probeHttp: 2xx and 3xx are ok, 5xx is not', async () => {
    expect(await probeHttp('127.0.0.1', port, '/healthz', 1000)).toEqual({ok: true, detail: 'GET /healthz: HTTP 200'})
    expect((await probeHttp('127.0.0.1', port, '/moved', 1000)).ok).toBe(true)
    expect(await probeHttp('127.0.0.1', port, '/other', 1000)).toEqual({ok: false, detail: 'GET /other: HTTP 500'})
  })

  it('probeHttp: a closed port and a hung handler fail with a reason', async () => {
    expect(await probeHttp('127.0.0.1', closedPort, '/healthz', 1000)).toEqual({ok: false, detail: 'GET /healthz: ECONNREFUSED'})
    const hung = await probeHttp('127.0.0.1', port, '/hang', 100)
    expect(hung).toEqual({ok: false, detail: 'GET /hang: no answer within 100ms'})
  })

  it('probeHttp: reads the final status line across reads and past 1xx; a non-HTTP answer or a hang-up fails', async () => {
    const heads: string[] = []
    const raw = net.createServer((socket) => {
      socket.once('data', (head) => {
        heads.push(head.toString('latin1'))
        const path = head.toString('latin1').split(' ')[1]
        if (path === '/early') {
          socket.write('HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 2')
          setTimeout(() => socket.end('04 No Content\r\n\r\n'), 20)
        } else if (path === '/ssh') socket.end('SSH-2.0-OpenSSH_9.6\r\n')
        else socket.end()
      })
    })
    raw.listen(0, '127.0.0.1')
    await once(raw, 'listening')
    const rawPort = (raw.address() as AddressInfo).port
    try {
      expect(await probeHttp('127.0.0.1', rawPort, '/early', 1000)).toEqual({ok: true, detail: 'GET /early: HTTP 204'})
      expect(heads[0]).toBe(`GET /early HTTP/1.1\r\nHost: 127.0.0.1:${rawPort}\r\nUser-Agent: meshsim-health-check\r\nConnection: close\r\n\r\n`)
      expect(await probeHttp('127.0.0.1', rawPort, '/ssh', 1000)).toEqual({ok: false, detail: 'GET /ssh: not an HTTP response'})
      expect(await probeHttp('127.0.0.1', rawPort, '/close', 1000)).toEqual({ok: false, detail: 'GET /close: ECONNRESET'})
    } finally {
      await new Promise((resolve) => raw.close(resolve))
    }
  })

  it('probeTcp: ok against a listener, not against a closed port', async () => {
    expect(await probeTcp('127.0.0.1', port, 1000)).toEqual({ok: true, detail: `tcp 127.0.0.1:${port}: connected`})
    expect(await probeTcp('127.0.0.1', closedPort, 1000)).toEqual({ok: false, detail: `tcp 127.0.0.1:${closedPort}: ECONNREFUSED`})
  })
})

describe('HealthChecker', () => {
  it('probes every intervalMs on the clock and emits only transitions', async () => {
    const clock = new VirtualClock()
    const script = [false, true, true, true, false, false, true]
    const probeTimes: number[] = []
    const probe = async (): Promise<ProbeResult> => {
      probeTimes.push(clock.now())
      const ok = script.shift() ?? true
      return {ok, detail: ok ? 'HTTP 200' : 'HTTP 503'}
    }
    const checker = new HealthChecker({probe, intervalMs: 100, thresholds: {healthyThreshold: 2, unhealthyThreshold: 2}, clock})
    const events: string[] = []
    checker.on('healthy', (detail) => events.push(`${clock.now()} healthy ${detail}`))
    checker.on('unhealthy', (detail) => events.push(`${clock.now()} unhealthy ${detail}`))

    checker.start()
    await clock.advance(600)
    checker.stop()
    await clock.advance(1000)

    expect(probeTimes).toEqual([0, 100, 200, 300, 400, 500, 600])
    expect(events).toEqual(['200 healthy HTTP 200', '500 unhealthy HTTP 503'])
    expect(checker.lastDetail).toBe('HTTP 200')
    expect(checker.healthy).toBe(false)
    expect(clock.pending()).toBe(0)
  })

  it('probes a starting instance at 10, 20, 40, 80 ms, then at startIntervalMs, and at intervalMs once it has passed', async () => {
    const clock = new VirtualClock()
    const probeTimes: number[] = []
    const probe = async (): Promise<ProbeResult> => {
      probeTimes.push(clock.now())
      const ok = probeTimes.length >= 7
      return {ok, detail: ok ? 'HTTP 200' : 'ECONNREFUSED'}
    }
    const checker = new HealthChecker({probe, intervalMs: 1000, startIntervalMs: 100, thresholds: {healthyThreshold: 1, unhealthyThreshold: 1}, clock})
    checker.start()
    await clock.advance(2_500)
    checker.stop()
    expect(probeTimes).toEqual([0, 10, 30, 70, 150, 250, 350, 1350, 2350])
  })

  it('counts a probe that throws as a failure', async () => {
    const clock = new VirtualClock()
    let calls = 0
    const probe = async (): Promise<ProbeResult> => {
      calls++
      if (calls === 1) return {ok: true, detail: 'fine'}
      throw new Error('socket exploded')
    }
    const checker = new HealthChecker({probe, intervalMs: 10, thresholds: {healthyThreshold: 1, unhealthyThreshold: 1}, clock})
    const events: string[] = []
    checker.on('healthy', () => events.push('healthy'))
    checker.on('unhealthy', (detail) => events.push(`unhealthy: ${detail}`))
    checker.start()
    await clock.advance(10)
    checker.stop()
    expect(events).toEqual(['healthy', 'unhealthy: probe failed: socket exploded'])
  })
})

describe('probeGrpc (grpc.health.v1, as Kubernetes gRPC probes)', () => {
  let server: import('@grpc/grpc-js').Server
  let port: number
  let serving = true

  beforeAll(async () => {
    const grpc = await import('@grpc/grpc-js')
    // @ts-expect-error: a plain JS fixture without types
    const {healthAnswer, HealthService, healthServiceName} = await import('../fixtures/grpc-echo-service.js')
    server = new grpc.Server()
    server.addService(HealthService, {
      Check: (call: {request: Buffer}, done: (error: null, answer: Buffer) => void) => {
        const name = healthServiceName(call.request)
        done(null, healthAnswer(name === 'unknown.Service' ? 3 : serving ? 1 : 2))
      },
    })
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, p) => (error ? reject(error) : resolve(p))),
    )
  })

  afterAll(() => server.forceShutdown())

  it('is ok while the server, or the named service, is SERVING, and says why not otherwise', async () => {
    expect(await probeGrpc('127.0.0.1', port, '', 1000, realClock)).toEqual({ok: true, detail: 'grpc health: SERVING'})
    expect(await probeGrpc('127.0.0.1', port, 'shop.Ratings', 1000, realClock)).toEqual({ok: true, detail: 'grpc health shop.Ratings: SERVING'})
    expect(await probeGrpc('127.0.0.1', port, 'unknown.Service', 1000, realClock)).toEqual({ok: false, detail: 'grpc health unknown.Service: SERVICE_UNKNOWN'})
    serving = false
    expect(await probeGrpc('127.0.0.1', port, '', 1000, realClock)).toEqual({ok: false, detail: 'grpc health: NOT_SERVING'})
    serving = true
  })

  it('fails on a server without the health service, and on a closed port', async () => {
    const grpc = await import('@grpc/grpc-js')
    const bare = new grpc.Server()
    const barePort = await new Promise<number>((resolve, reject) =>
      bare.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, p) => (error ? reject(error) : resolve(p))),
    )
    try {
      expect(await probeGrpc('127.0.0.1', barePort, '', 1000, realClock)).toEqual({ok: false, detail: 'grpc health: grpc-status 12 (no health service)'})
    } finally {
      bare.forceShutdown()
    }
    const spare = net.createServer().listen(0, '127.0.0.1')
    await once(spare, 'listening')
    const closed = (spare.address() as AddressInfo).port
    await new Promise((resolve) => spare.close(resolve))
    expect(await probeGrpc('127.0.0.1', closed, '', 1000, realClock)).toEqual({ok: false, detail: 'grpc health: ECONNREFUSED'})
  })

  it("gives up on a server that never answers at its timeout on the mesh's clock", async () => {
    const http2 = await import('node:http2')
    // Takes the call and never answers it.
    const mute = http2.createServer()
    const arrived = once(mute, 'stream')
    mute.listen(0, '127.0.0.1')
    await once(mute, 'listening')
    const clock = new VirtualClock()
    try {
      let result: ProbeResult | undefined
      const probing = probeGrpc('127.0.0.1', (mute.address() as AddressInfo).port, '', 5_000, clock).then((r) => (result = r))
      await arrived
      await clock.advance(4_999)
      expect(result).toBeUndefined()
      await clock.advance(1)
      await probing
      expect(result).toEqual({ok: false, detail: 'grpc health: no answer within 5000ms'})
    } finally {
      mute.close()
    }
  })
})

describe('probeCommand (compose healthcheck test)', () => {
  const where = {cwd: process.cwd(), env: {READY: 'yes'}}

  it('is ok when the command exits 0; runs it with the instance env', async () => {
    expect(await probeCommand('test "$READY" = yes', where, 5_000)).toEqual({ok: true, detail: '`test "$READY" = yes`: exit 0'})
  })

  it('says how it failed: the exit code and the last line it printed, or that it did not exit in time', async () => {
    expect(await probeCommand('echo starting; echo "not ready yet" >&2; exit 3', where, 5_000)).toEqual({
      ok: false,
      detail: '`echo starting; echo "not ready yet" >&2; exit 3`: exit 3 (not ready yet)',
    })
    expect(await probeCommand('sleep 5', where, 200)).toEqual({ok: false, detail: '`sleep 5`: no exit within 200ms'})
  })
})
