// Live push of spans to an OTLP/HTTP collector named in mesh.yaml.
import http from 'node:http'
import type {AddressInfo} from 'node:net'
import {describe, expect, test} from 'vitest'
import {eventually, freePort, get, mesh, meshDir} from '../helpers/mesh.js'

describe('OTLP push', () => {
  test('spans of a request reach the collector as OTLP/JSON', async () => {
    const bodies: Array<{path: string; json: any}> = []
    const collector = http.createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c) => chunks.push(c))
      req.on('end', () => {
        bodies.push({path: req.url ?? '', json: JSON.parse(Buffer.concat(chunks).toString('utf8'))})
        res.writeHead(200, {'content-type': 'application/json'}).end('{}')
      })
    })
    await new Promise<void>((r) => collector.listen(0, '127.0.0.1', () => r()))
    const port = await freePort()
    const dir = meshDir(`
name: otlp
ingress: {port: ${port}, routes: [{prefix: /, service: api}]}
telemetry:
  otlp: {endpoint: http://127.0.0.1:${(collector.address() as AddressInfo).port}}
services:
  api:
    simulate: {latency: 1ms}
`)
    try {
      expect((await mesh(dir, ['up', '-d'])).exitCode).toBe(0)
      const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
      expect((await get(`http://127.0.0.1:${port}/x`, {traceparent: `00-${traceId}-00f067aa0ba902b7-01`})).status).toBe(200)
      const spans = await eventually(() => {
        const all = bodies.flatMap((b) => b.json.resourceSpans.flatMap((r: any) => r.scopeSpans.flatMap((s: any) => s.spans)))
        const ours = all.filter((s: any) => s.traceId === traceId)
        return ours.length >= 2 ? ours : undefined
      }, 15_000)
      expect(bodies.every((b) => b.path === '/v1/traces')).toBe(true)
      expect(spans!.map((s: any) => s.kind).sort()).toEqual([2, 3])
      const services = bodies.flatMap((b) => b.json.resourceSpans.map((r: any) => r.resource.attributes.find((a: any) => a.key === 'service.name')?.value.stringValue))
      expect(services).toEqual(expect.arrayContaining(['ingress', 'api']))
    } finally {
      await mesh(dir, ['down'])
      collector.close()
    }
  })
})
