// The shop template's real service, run as the supervisor would run it, against a fake
// catalog (reached via $CATALOG_URL) and a fake forward proxy (reached via $HTTP_PROXY).
import http from 'node:http'
import {spawn, type ChildProcess} from 'node:child_process'
import {once} from 'node:events'
import type {AddressInfo} from 'node:net'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {templatesDir} from '../../src/sim/templates/templates.js'

interface Seen {
  url: string
  headers: http.IncomingHttpHeaders
}

const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
const catalogSeen: Seen[] = []
const proxySeen: Seen[] = []
let catalogStatus = 200
let catalog: http.Server
let proxy: http.Server
let frontend: ChildProcess
let frontendUrl: string

async function listen(handler: http.RequestListener): Promise<http.Server> {
  const server = http.createServer(handler)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return server
}

function portOf(server: http.Server): number {
  return (server.address() as AddressInfo).port
}

beforeAll(async () => {
  catalog = await listen((req, res) => {
    catalogSeen.push({url: req.url!, headers: req.headers})
    res.writeHead(req.url === '/teapot' ? 418 : catalogStatus, {'content-type': 'application/json'})
    res.end(JSON.stringify({service: 'catalog', path: req.url}))
  })
  proxy = await listen((req, res) => {
    proxySeen.push({url: req.url!, headers: req.headers})
    res.writeHead(200, {'content-type': 'application/json'})
    res.end(JSON.stringify({service: 'cart', target: req.url}))
  })
  frontend = spawn(process.execPath, ['server.js'], {
    cwd: path.join(templatesDir(), 'shop', 'frontend'),
    env: {
      PATH: process.env.PATH ?? '',
      PORT: '0',
      MESH_INSTANCE: 'frontend-v1-0',
      CATALOG_URL: `http://127.0.0.1:${portOf(catalog)}`,
      HTTP_PROXY: `http://127.0.0.1:${portOf(proxy)}`,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let out = ''
  while (!out.includes('\n')) out += String((await once(frontend.stdout!, 'data'))[0])
  const match = /listening on 127\.0\.0\.1:(\d+)/.exec(out)
  if (!match) throw new Error(`frontend did not say where it listens: ${out}`)
  frontendUrl = `http://127.0.0.1:${match[1]}`
})

afterAll(async () => {
  if (frontend.exitCode === null) frontend.kill('SIGKILL')
  for (const server of [catalog, proxy]) {
    server.closeAllConnections()
    server.close()
  }
})

describe('shop frontend', () => {
  it('answers /healthz', async () => {
    const res = await fetch(`${frontendUrl}/healthz`)
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({status: 'ok'})
  })

  it('calls catalog via CATALOG_URL and cart via the forward proxy, forwarding the trace', async () => {
    catalogSeen.length = 0
    proxySeen.length = 0
    const res = await fetch(`${frontendUrl}/`, {headers: {traceparent, 'x-request-id': 'r-1', cookie: 'private'}})
    expect(res.status).toBe(200)
    expect(res.headers.get('x-mesh-served-by')).toBe('frontend-v1-0')
    expect(await res.json()).toEqual({
      service: 'frontend',
      instance: 'frontend-v1-0',
      catalog: {service: 'catalog', path: '/items'},
      cart: {service: 'cart', target: 'http://cart/cart'},
    })
    expect(catalogSeen.map((s) => s.url)).toEqual(['/items'])
    expect(catalogSeen[0].headers).toMatchObject({traceparent, 'x-request-id': 'r-1'})
    expect(catalogSeen[0].headers.cookie).toBeUndefined()
    expect(proxySeen.map((s) => s.url)).toEqual(['http://cart/cart'])
    expect(proxySeen[0].headers).toMatchObject({host: 'cart', traceparent, 'x-request-id': 'r-1'})
  })

  it('relays a dependency through /direct and /proxy', async () => {
    const direct = await fetch(`${frontendUrl}/direct/catalog/teapot`)
    expect(direct.status).toBe(418)
    expect(await direct.json()).toEqual({service: 'catalog', path: '/teapot'})

    proxySeen.length = 0
    const viaProxy = await fetch(`${frontendUrl}/proxy/payments/authorize?amount=5`)
    expect(viaProxy.status).toBe(200)
    expect(proxySeen.map((s) => [s.url, s.headers.host])).toEqual([['http://payments/authorize?amount=5', 'payments']])
  })

  it('answers 502 with the reason when a dependency fails or has no URL', async () => {
    catalogStatus = 503
    const failing = await fetch(`${frontendUrl}/`)
    catalogStatus = 200
    expect(failing.status).toBe(502)
    expect((await failing.json()).error).toBe('catalog answered 503')

    const unknown = await fetch(`${frontendUrl}/direct/order-history/x`)
    expect(unknown.status).toBe(502)
    expect((await unknown.json()).error).toMatch(/ORDER_HISTORY_URL is not set/)
  })

  it('exits 0 on SIGTERM', async () => {
    frontend.kill('SIGTERM')
    const [code] = await once(frontend, 'exit')
    expect(code).toBe(0)
  })
})
