// The path a new user walks: init the shop template, up -d, send traffic through
// the ingress, check status, down — and nothing of the mesh is left running.
import {readFileSync, writeFileSync, mkdtempSync, existsSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import type {MeshStatus} from '../../src/sim/control/status.js'
import {eventually, freePort, get, mesh, pidAlive} from '../helpers/mesh.js'

describe('shop template end to end', () => {
  let dir: string
  let ingress: string
  let status: MeshStatus

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'meshsim-shop-'))
    const init = await mesh(dir, ['init', '--template', 'shop'])
    expect(init.exitCode, init.stderr).toBe(0)
    const file = path.join(dir, 'mesh.yaml')
    const port = await freePort()
    writeFileSync(file, readFileSync(file, 'utf8').replace(/port: 8000/, `port: ${port}`))
    ingress = `http://127.0.0.1:${port}`
    const up = await mesh(dir, ['up', '-d'], {timeoutMs: 90_000})
    expect(up.exitCode, up.stderr + up.stdout).toBe(0)
    const st = await mesh(dir, ['status', '--json'])
    status = JSON.parse(st.stdout)
  })

  afterAll(async () => {
    await mesh(dir, ['down'])
  })

  test('status lists every instance healthy and registered, with pids and the ingress', () => {
    expect(status.ingress?.url).toBe(ingress)
    expect(status.services.length).toBeGreaterThanOrEqual(5)
    const instances = status.services.flatMap((s) => s.instances)
    for (const i of instances) {
      expect(i.health, i.instance).toBe('healthy')
      expect(i.registered, i.instance).toBe(true)
      expect(i.pid, i.instance).toBeGreaterThan(0)
    }
  })

  test('200 requests through the ingress are all answered 200 by the frontend, which reached catalog and cart', async () => {
    const statuses = new Map<number, number>()
    const servedBy = new Set<string>()
    // Five at a time: the template's payments has a 300 ms per-try timeout on a non-retried
    // POST, and 20 concurrent calls on a 2-core box shared with other test files pushed one
    // past it (504). The test is about every hop working, not about load.
    for (let batch = 0; batch < 40; batch++) {
      const results = await Promise.all(Array.from({length: 5}, () => get(`${ingress}/`)))
      for (const r of results) {
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1)
        expect(r.status, r.text).toBe(200)
        const body = JSON.parse(r.text)
        expect(body.service).toBe('frontend')
        expect(body.catalog.service).toBe('catalog')
        expect(body.cart.service).toBe('cart')
        servedBy.add(body.catalog.instance)
      }
    }
    expect(Object.fromEntries(statuses)).toEqual({200: 200})
    // catalog has more than one replica: round-robin reaches each of them.
    const catalog = status.services.find((s) => s.name === 'catalog')!
    expect(servedBy.size).toBe(catalog.instances.length)
  })

  test('the real frontend reaches a dependency through <DEP>_URL and through HTTP_PROXY with a host-named URL', async () => {
    const direct = await get(`${ingress}/direct/catalog/items`)
    expect(direct.status, direct.text).toBe(200)
    expect(direct.text).toContain('"service":"catalog"')
    const proxied = await get(`${ingress}/proxy/payments/authorize`)
    expect(proxied.status, proxied.text).toBe(200)
    expect(proxied.text).toContain('"service":"payments"')
    expect(proxied.text).toContain('"path":"/authorize"')
  })

  test('mesh init never overwrites an existing mesh.yaml without --force', async () => {
    const again = await mesh(dir, ['init', '--template', 'shop'])
    expect(again.exitCode).not.toBe(0)
    expect(again.stderr).toMatch(/mesh\.yaml.*--force/s)
    expect(readFileSync(path.join(dir, 'mesh.yaml'), 'utf8')).toContain(ingress.split(':').pop()!)
  })

  test('one request produces one trace whose parent/child tree spans every service it touched', async () => {
    const traceId = '0af7651916cd43dd8448eb211c80319c'
    const r = await get(`${ingress}/`, {traceparent: `00-${traceId}-b7ad6b7169203331-01`})
    expect(r.status).toBe(200)
    const body = JSON.parse(r.text)
    // The services this request reached, from what each one answered.
    const touched = new Set(['frontend', 'catalog', 'cart', ...[...body.catalog.calls, ...body.cart.calls].map((c: {service: string}) => c.service)])
    type Span = {spanId: string; parentId?: string; kind: string; service: string; peerService?: string}
    const spans = await eventually(async () => {
      const t = await mesh(dir, ['trace', traceId, '--json'])
      const list = t.exitCode === 0 ? (JSON.parse(t.stdout) as Span[]) : []
      // Two spans per hop: ingress → frontend, frontend → catalog, frontend → cart, and their calls.
      return list.length >= 2 * (touched.size) ? list : undefined
    }, 10_000)
    expect(spans).toBeDefined()
    const ids = new Set(spans!.map((s) => s.spanId))
    const roots = spans!.filter((s) => !ids.has(s.parentId ?? ''))
    // The only span without a parent in the trace is the ingress's, whose parent is the caller's own span.
    expect(roots.map((s) => [s.kind, s.service])).toEqual([['client', 'ingress']])
    expect(roots[0].parentId).toBe('b7ad6b7169203331')
    expect(new Set(spans!.filter((s) => s.kind === 'server').map((s) => s.service))).toEqual(touched)
    // Every server span hangs off the client span of the same hop.
    for (const server of spans!.filter((s) => s.kind === 'server')) {
      const client = spans!.find((s) => s.spanId === server.parentId)!
      expect([client.kind, client.peerService]).toEqual(['client', server.service])
    }
    const waterfall = await mesh(dir, ['trace', traceId.slice(0, 12)])
    for (const service of touched) expect(waterfall.stdout).toContain(service)
  })

  test('mesh down stops every process and removes the state file', async () => {
    const pids = status.services.flatMap((s) => s.instances.map((i) => i.pid!))
    const down = await mesh(dir, ['down'])
    expect(down.exitCode, down.stderr).toBe(0)
    expect(await eventually(() => pids.every((p) => !pidAlive(p)), 10_000)).toBe(true)
    expect(existsSync(path.join(dir, '.mesh/state.json'))).toBe(false)
  })
})
