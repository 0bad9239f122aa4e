// Live push of spans to an OTLP/HTTP collector named in mesh.yaml.
import {writeFileSync} from 'node:fs'
import http from 'node:http'
import type {AddressInfo} from 'node:net'
import path from 'node:path'
import {describe, expect, test} from 'vitest'
import {downMesh, eventually, freePort, get, mesh, meshDir, upMesh} from '../helpers/mesh.js'

/** An OTLP/HTTP collector on an OS-chosen port: the trace ids of every span it received. */
async function collector(): Promise<{url: string; traceIds: () => string[]; close: () => void}> {
  const ids: string[] = []
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c) => chunks.push(c))
    req.on('end', () => {
      const json = JSON.parse(Buffer.concat(chunks).toString('utf8'))
      for (const r of json.resourceSpans) for (const s of r.scopeSpans) for (const span of s.spans) ids.push(span.traceId)
      res.writeHead(200, {'content-type': 'application/json'}).end('{}')
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  return {url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, traceIds: () => ids, close: () => server.close()}
}

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

  test('mesh apply starts, redirects and stops the push live', async () => {
    const [a, b] = [await collector(), await collector()]
    const yaml = (port: number, endpoint?: string) => `
name: otlp-apply
ingress: {port: ${port}, routes: [{prefix: /, service: api}]}
${endpoint ? `telemetry: {otlp: {endpoint: ${endpoint}}}` : ''}
services:
  api:
    simulate: {latency: 1ms}
`
    const {dir, port, ingress} = await upMesh((p) => yaml(p))
    const apply = async (endpoint?: string) => {
      writeFileSync(path.join(dir, 'mesh.yaml'), yaml(port, endpoint))
      const r = await mesh(dir, ['apply'])
      expect(r.exitCode, r.stderr).toBe(0)
      return r.stdout
    }
    let n = 0
    /** One request with a trace id of its own; resolves to that id. */
    const request = async () => {
      const traceId = (++n).toString(16).padStart(32, 'a')
      expect((await get(`${ingress}/x`, {traceparent: `00-${traceId}-00f067aa0ba902b7-01`})).status).toBe(200)
      return traceId
    }
    try {
      expect(await apply(a.url)).toContain(`applied telemetry: OTLP push to ${a.url} started`)
      const first = await request()
      expect(await eventually(() => a.traceIds().includes(first), 15_000)).toBe(true)

      expect(await apply(b.url)).toContain(`applied telemetry: OTLP push ${a.url} → ${b.url}`)
      const second = await request()
      expect(await eventually(() => b.traceIds().includes(second), 15_000)).toBe(true)
      expect(a.traceIds()).not.toContain(second)

      expect(await apply()).toContain(`applied telemetry: OTLP push to ${b.url} stopped`)
      const third = await request()
      // The push batches every 2 s: past one batch, nothing of the third request arrived anywhere.
      await new Promise((r) => setTimeout(r, 3_000))
      expect([...a.traceIds(), ...b.traceIds()]).not.toContain(third)
    } finally {
      await downMesh(dir)
      a.close()
      b.close()
    }
  }, 90_000)
})

