// policy.tls on a real mesh with real TLS: ISTIO_MUTUAL to an app that serves HTTPS with its
// MESH_TLS_* files and requires a mesh certificate, certificate faults on it met with 503 UF and
// the TLS reason, SIMPLE to an https `address:` service with caCertificates and sni, and callers
// that leave during a TLS handshake holding nothing.
import {readFileSync, writeFileSync} from 'node:fs'
import https from 'node:https'
import net from 'node:net'
import path from 'node:path'
import tls, {type TLSSocket} from 'node:tls'
import {request} from 'undici'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import type {MeshStatus} from '../../src/sim/control/status.js'
import {MeshCA} from '../../src/sim/security/mesh-ca.js'
import {downMesh, eventually, get, json, mesh, meshOnFreePort} from '../helpers/mesh.js'

const id = (service: string) => `spiffe://cluster.local/ns/tlsout/sa/${service}`

let dir: string
let ingress: string
let shop: https.Server
const shopSeen: string[] = []
let silent: net.Server
const silentSockets = new Set<net.Socket>()

beforeAll(async () => {
  // An HTTPS server outside the mesh, its certificate for shop.example from a CA of its own.
  const shopCa = await MeshCA.create('example')
  const cert = await shopCa.issue({dnsNames: ['shop.example'], ttlMs: 3600_000, now: new Date(), commonName: 'shop.example'})
  shop = https.createServer({cert: cert.certPem, key: cert.keyPem}, (req, res) => {
    shopSeen.push((req.socket as TLSSocket).servername || '')
    req.resume()
    res.end('shop over https')
  })
  await new Promise<void>((r) => shop.listen(0, '127.0.0.1', r))
  // Takes the TCP connection and never answers the ClientHello: a handshake that hangs.
  silent = net.createServer((s) => {
    silentSockets.add(s)
    s.on('close', () => silentSockets.delete(s))
  })
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
  const shopPort = (shop.address() as net.AddressInfo).port
  const silentPort = (silent.address() as net.AddressInfo).port
  ;({dir, ingress} = await meshOnFreePort(
    (port) => `
name: tlsout
security: {mtls: STRICT}
ingress:
  port: ${port}
  routes: [{prefix: /shop, service: shop}, {prefix: /hang, service: hang}, {prefix: /, service: api}]
services:
  web: {command: node fixtures/echo-server.js, dependsOn: [api]}
  api:
    command: node fixtures/tls-app.js
    # A certificate fault makes the app refuse the probe's certificate too: traffic, not the probe, should say why.
    health: {path: /healthz, unhealthyThreshold: 1000}
    policy: {tls: {mode: ISTIO_MUTUAL}}
  shop:
    address: 127.0.0.1:${shopPort}
    policy: {tls: {mode: SIMPLE, sni: shop.example, caCertificates: shop-ca.pem}}
  hang:
    address: 127.0.0.1:${silentPort}
    policy: {tls: {mode: ISTIO_MUTUAL}}
`,
  ))
  writeFileSync(path.join(dir, 'shop-ca.pem'), shopCa.certPem)
  const up = await mesh(dir, ['up', '-d'])
  expect(up.exitCode, up.stderr + up.stdout).toBe(0)
}, 90_000)

afterAll(async () => {
  await downMesh(dir)
  for (const s of silentSockets) s.destroy()
  shop.closeAllConnections()
  await Promise.all([new Promise((r) => shop.close(r)), new Promise((r) => silent.close(r))])
})

/** What web's own sidecar answers on its $API_URL: a call from web. */
async function fromWeb(pathname: string) {
  const status = json<MeshStatus>(await mesh(dir, ['status', '--json']))
  const apiUrl = status.services.find((s) => s.name === 'web')!.instances[0].outbound!.dependencies.api
  return get(`http://${apiUrl}${pathname}`)
}

/** The serial of the certificate api's app serves now, as a caller holding web's mesh certificate sees it. */
async function servedSerial(): Promise<string> {
  const status = json<MeshStatus>(await mesh(dir, ['status', '--json']))
  const [host, port] = status.services.find((s) => s.name === 'api')!.instances[0].address.split(':')
  const web = path.join(dir, '.mesh', 'certs', 'web')
  return new Promise((resolve, reject) => {
    const socket = tls.connect({host, port: Number(port), cert: readFileSync(path.join(web, 'cert.pem')), key: readFileSync(path.join(web, 'key.pem')), rejectUnauthorized: false}, () => {
      resolve(socket.getPeerCertificate().serialNumber)
      socket.destroy()
    })
    socket.once('error', reject)
  })
}

describe('ISTIO_MUTUAL to an app that serves TLS', () => {
  test("the app sees the caller's mesh certificate: the ingress's, web's", async () => {
    const viaIngress = await get(`${ingress}/items`)
    expect(viaIngress.status).toBe(200)
    expect(JSON.parse(viaIngress.text)).toMatchObject({caller: id('ingress'), path: '/items'})
    const viaWeb = await fromWeb('/cart')
    expect(viaWeb.status).toBe(200)
    expect(JSON.parse(viaWeb.text)).toMatchObject({caller: id('web'), path: '/cart'})
  })

  test('mesh status names the modes; /metrics labels the hop mutual_tls with both principals', async () => {
    const status = json<MeshStatus>(await mesh(dir, ['status', '--json']))
    expect(status.services.find((s) => s.name === 'api')!.security).toEqual({mtls: 'STRICT', tls: 'ISTIO_MUTUAL'})
    const text = (await mesh(dir, ['status'])).stdout
    expect(text).toContain('api: mTLS STRICT, ISTIO_MUTUAL to its instances')
    expect(text).toContain('web: mTLS STRICT, plaintext to its instances; calls → api mutual_tls')
    await fromWeb('/m')
    const state = JSON.parse(readFileSync(path.join(dir, '.mesh', 'state.json'), 'utf8')) as {controlUrl: string}
    const metrics = (await get(`${state.controlUrl}/metrics`)).text
    const line = metrics.split('\n').find((l) => l.startsWith('istio_requests_total{reporter="source",source_workload="web"') && l.includes('destination_service="api"'))
    expect(line).toContain(`source_principal="${id('web')}"`)
    expect(line).toContain(`destination_principal="${id('api')}"`)
    expect(line).toContain('connection_security_policy="mutual_tls",request_protocol="http",response_code="200"')
  })

  for (const [fault, reason] of [
    ['wrong-identity', new RegExp(`ERR_TLS_SPIFFE_ID_MISMATCH: expected ${id('api').replace(/[/.]/g, '\\$&')}, got spiffe://`)],
    ['expired', /CERT_HAS_EXPIRED: certificate has expired/],
    ['untrusted', /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT/],
  ] as const) {
    test(`--cert ${fault} on the instance: 503 UF with the TLS reason, never the app's answer; cleared, 200 again`, async () => {
      const before = await servedSerial()
      const injected = await mesh(dir, ['inject-fault', 'api', '--cert', fault])
      expect(injected.exitCode, injected.stderr).toBe(0)
      // The app takes its new certificate files from disk on its own (a watch), as a real app
      // would; a connection made before it did would stay up, as any TLS connection does.
      await eventually(async () => (await servedSerial()) !== before)
      const failed = await get(`${ingress}/items`)
      expect(failed.status, failed.text).toBe(503)
      expect(failed.headers['x-mesh-response-flags']).toBe('UF')
      expect(String(failed.headers['x-mesh-reason'])).toMatch(/^upstream connect error: TLS to api-v1-0 at 127\.0\.0\.1:\d+ failed: /)
      expect(String(failed.headers['x-mesh-reason']), String(failed.headers['x-mesh-reason'])).toMatch(reason)
      expect((await mesh(dir, ['clear-faults', 'api'])).exitCode).toBe(0)
      await eventually(async () => (await servedSerial()) === before)
      expect((await get(`${ingress}/items`)).status).toBe(200)
    }, 40_000)
  }
})

describe('SIMPLE to an https address: service', () => {
  test('verified against caCertificates for the sni, which the server receives', async () => {
    const r = await get(`${ingress}/shop`)
    expect([r.status, r.text]).toEqual([200, 'shop over https'])
    expect(shopSeen.at(-1)).toBe('shop.example')
  })
})

describe('callers that leave during a TLS handshake', () => {
  test('hold nothing once the connect gives up: mesh status --json shows 0 everywhere', async () => {
    const calls = Array.from({length: 6}, async () => {
      const controller = new AbortController()
      setTimeout(() => controller.abort(), 200)
      await request(`${ingress}/hang`, {signal: controller.signal}).then(
        (r) => r.body.text(),
        () => undefined,
      )
    })
    await Promise.all(calls)
    const load = await eventually(async () => {
      const status = json<MeshStatus>(await mesh(dir, ['status', '--json']))
      const l = status.services.find((s) => s.name === 'hang')!.load!
      return l.breaker.requests === 0 && Object.values(l.instances).every((n) => n === 0) && (status.requestsInFlight ?? 0) === 0 ? l : undefined
    })
    expect(load.breaker).toEqual({requests: 0, pending: 0, connections: 0, retries: 0})
  }, 40_000)
})
