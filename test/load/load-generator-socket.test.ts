import {once} from 'node:events'
import http from 'node:http'
import type {AddressInfo} from 'node:net'
import {afterEach, describe, expect, it} from 'vitest'
import {runLoad} from '../../src/sim/load/load-generator.js'

describe('runLoad over a real socket', () => {
  let server: http.Server | undefined
  afterEach(() => server?.close())

  it('sends 50 rps for 1 s with undici and reads the mesh response-flag header', async () => {
    let n = 0
    const paths = new Set<string>()
    const sockets = new Set<unknown>()
    server = http.createServer((req, res) => {
      sockets.add(req.socket)
      paths.add(req.url ?? '')
      if (++n % 10 === 0) {
        res.writeHead(503, {'x-mesh-response-flags': 'UH'})
        res.end('no healthy upstream')
      } else res.end('ok')
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const {port} = server.address() as AddressInfo
    // A cap with room: at 4, a first request slowed by a busy machine (connect, cold JIT) had later ones dropped.
    const result = await runLoad({target: `http://127.0.0.1:${port}`, path: '/items?x=1', rps: 50, durationMs: 1000, concurrency: 16})
    expect(result).toMatchObject({requests: 50, dropped: 0})
    expect(result.statuses).toEqual({'200': 45, '503': 5})
    expect(result.errors).toEqual({UH: 5})
    expect(result.successRate).toBeCloseTo(0.9, 10)
    expect([...paths]).toEqual(['/items?x=1'])
    expect(sockets.size).toBeLessThanOrEqual(16) // keep-alive pool sized to the concurrency
    expect(result.latency.p50).toBeGreaterThan(0)
  })

  it('counts connection failures by their error code', async () => {
    const probe = http.createServer()
    probe.listen(0, '127.0.0.1')
    await once(probe, 'listening')
    const {port} = probe.address() as AddressInfo
    await new Promise((r) => probe.close(r))
    const result = await runLoad({target: `http://127.0.0.1:${port}`, rps: 20, durationMs: 250})
    expect(result.requests).toBe(5)
    expect(result.errors).toEqual({ECONNREFUSED: 5})
    expect(result.successRate).toBe(0)
  })
})
