// PeerAuthentication on published addresses, through a real DataPlane with workload identities
// from a mesh CA: who the instance is told called it (x-forwarded-client-cert) and who
// authorization sees, over a direct mTLS dial and over the in-process hop from a caller's
// outbound listener.
import http from 'node:http'
import {mkdtempSync, rmSync} from 'node:fs'
import net, {type AddressInfo} from 'node:net'
import os from 'node:os'
import path from 'node:path'
import tls from 'node:tls'
import {createHash, X509Certificate} from 'node:crypto'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import {parseConfig} from '../../src/sim/config/load-config.js'
import {versionWeights} from '../../src/sim/config/versions.js'
import {FaultSet} from '../../src/sim/faults/fault-set.js'
import {DataPlane} from '../../src/sim/proxy/data-plane.js'
import {Registry, type Endpoint} from '../../src/sim/proxy/registry.js'
import {peerOfCertificate} from '../../src/sim/security/peer-authentication.js'
import {WorkloadIdentities} from '../../src/sim/security/workload-identity.js'
import {realClock} from '../../src/sim/time/clock.js'
import {eventually} from '../helpers/mesh.js'

const DIR = mkdtempSync(path.join(os.tmpdir(), 'meshsim-peer-authn-'))
let app: http.Server
let appPort = 0
const echoes: net.Server[] = []
const echoPorts: number[] = []
const tcpPorts: Record<string, number> = {}
let identities: WorkloadIdentities
let dataPlane: DataPlane
let inboundPort = 0
let outboundPort = 0

beforeAll(async () => {
  // The instance: answers with the XFCC it was given.
  app = http.createServer((req, res) => {
    res.writeHead(200, {'content-type': 'text/plain'})
    res.end(String(req.headers['x-forwarded-client-cert'] ?? 'none'))
  })
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r))
  appPort = (app.address() as AddressInfo).port
  for (let i = 0; i < 2; i++) {
    const echo = net.createServer((socket) => socket.pipe(socket))
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r))
    echoes.push(echo)
    echoPorts.push((echo.address() as AddressInfo).port)
  }
  const yaml = `name: shop
services:
  frontend:
    simulate: {}
    dependsOn: [catalog]
  catalog:
    address: 127.0.0.1:${appPort}
    policy:
      mtls: STRICT
      authorization:
        allow: [{from: [frontend]}]
  db:
    address: 127.0.0.1:${echoPorts[0]}
    protocol: tcp
    policy:
      mtls: STRICT
      authorization:
        allow: [{from: [frontend]}]
  cache:
    address: 127.0.0.1:${echoPorts[1]}
    protocol: tcp
`
  const {config, issues} = parseConfig(yaml, path.join(DIR, 'mesh.yaml'), {})
  expect(issues.filter((i) => i.severity === 'error')).toEqual([])
  const registry = new Registry(config!.services.map((s) => s.name))
  dataPlane = new DataPlane(registry, config!.services, new Map(config!.services.map((s) => [s.name, versionWeights(s)])), {clock: realClock, faults: new FaultSet(realClock, () => {})})
  identities = await WorkloadIdentities.start({caDir: path.join(DIR, 'ca'), trustDomain: 'cluster.local', mesh: 'shop', certTtlMs: 3600_000, clock: realClock})
  dataPlane.useIdentities(identities, 'PERMISSIVE')
  const inbound = await dataPlane.listen({kind: 'inbound', instance: 'catalog-v1-0', service: 'catalog'})
  inboundPort = inbound.port
  const endpoint: Endpoint = {instance: 'catalog-v1-0', service: 'catalog', version: 'v1', host: '127.0.0.1', port: appPort, inboundPort, origin: `http://127.0.0.1:${appPort}`}
  dataPlane.setInstance(endpoint)
  registry.add(endpoint)
  for (const [i, service] of ['db', 'cache'].entries()) {
    const l = await dataPlane.listenTcp({kind: 'tcp-inbound', instance: `${service}-v1-0`, service})
    tcpPorts[service] = l.port
    const port = echoPorts[i]
    dataPlane.setInstance({instance: `${service}-v1-0`, service, version: 'v1', host: '127.0.0.1', port, inboundPort: l.port, origin: `http://127.0.0.1:${port}`})
  }
  outboundPort = (await dataPlane.listen({kind: 'outbound', source: 'frontend', sourceVersion: 'v1', sourceInstance: 'frontend-v1-0', destination: 'catalog'})).port
})

afterAll(async () => {
  await dataPlane?.drain(0)
  identities?.stop()
  app.close()
  for (const echo of echoes) echo.close()
  rmSync(DIR, {recursive: true, force: true})
})

/** A GET over TLS to the published address with `service`'s mesh certificate (none: no client certificate). */
async function dial(service: string | undefined, headers: Record<string, string> = {}): Promise<{status: number; body: string; error?: string}> {
  const cert = service ? await identities.certificate(service) : undefined
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: inboundPort,
        path: '/items',
        headers,
        createConnection: () =>
          tls.connect({host: '127.0.0.1', port: inboundPort, ca: identities.ca.certPem, ...(cert ? {cert: cert.certPem, key: cert.keyPem} : {}), checkServerIdentity: () => undefined}),
      },
      (res) => {
        let body = ''
        res.on('data', (c) => (body += c))
        res.on('end', () => resolve({status: res.statusCode ?? 0, body}))
      },
    )
    req.on('error', (e) => resolve({status: 0, body: '', error: e.message}))
    req.end()
  })
}

function viaOutbound(headers: Record<string, string> = {}): Promise<{status: number; body: string}> {
  return new Promise((resolve, reject) => {
    http
      .get({host: '127.0.0.1', port: outboundPort, path: '/items', headers}, (res) => {
        let body = ''
        res.on('data', (c) => (body += c))
        res.on('end', () => resolve({status: res.statusCode ?? 0, body}))
      })
      .on('error', reject)
  })
}

describe('a published address under STRICT', () => {
  test('presents the callee\'s workload certificate', async () => {
    const cert = await identities.certificate('frontend')
    const served = await new Promise<X509Certificate>((resolve, reject) => {
      const s = tls.connect({host: '127.0.0.1', port: inboundPort, ca: identities.ca.certPem, cert: cert.certPem, key: cert.keyPem, checkServerIdentity: () => undefined}, () => {
        resolve(s.getPeerX509Certificate()!)
        s.destroy()
      })
      s.on('error', reject)
    })
    expect(peerOfCertificate(served)?.principal).toBe('spiffe://cluster.local/ns/shop/sa/catalog')
  })

  test('frontend\'s certificate names the caller: authorization.from: [frontend] lets it through, and the app gets XFCC with the hash of that certificate', async () => {
    const cert = await identities.certificate('frontend')
    const hash = createHash('sha256').update(new X509Certificate(cert.certPem).raw).digest('hex')
    const r = await dial('frontend', {'x-forwarded-client-cert': 'By=spiffe://evil;URI=spiffe://cluster.local/ns/shop/sa/admin'})
    expect(r.status).toBe(200)
    expect(r.body).toBe(`By=spiffe://cluster.local/ns/shop/sa/catalog;Hash=${hash};URI=spiffe://cluster.local/ns/shop/sa/frontend`)
  })

  test('another service\'s certificate is refused by authorization (403 RBAC), no certificate at all by the handshake', async () => {
    expect((await dial('orders')).status).toBe(403)
    const none = await dial(undefined)
    expect(none.status).toBe(0)
  })
})

describe('the in-process hop from an outbound listener', () => {
  test('the app is told the caller from the listener, and an XFCC the caller sent is replaced', async () => {
    const r = await viaOutbound({'x-forwarded-client-cert': 'By=x;URI=spiffe://cluster.local/ns/shop/sa/admin'})
    expect(r.status).toBe(200)
    expect(r.body).toBe('By=spiffe://cluster.local/ns/shop/sa/catalog;URI=spiffe://cluster.local/ns/shop/sa/frontend')
  })
})

/** Sends `text` on a connection to a TCP published address (TLS with `service`'s certificate, or plaintext); resolves with what came back before it closed or went quiet. */
async function tcpRoundTrip(port: number, service: string | undefined | 'plaintext', text: string, waitMs = 0): Promise<string> {
  const cert = service && service !== 'plaintext' ? await identities.certificate(service) : undefined
  return new Promise((resolve) => {
    const socket =
      service === 'plaintext'
        ? net.connect(port, '127.0.0.1')
        : tls.connect({host: '127.0.0.1', port, ca: identities.ca.certPem, ...(cert ? {cert: cert.certPem, key: cert.keyPem} : {}), checkServerIdentity: () => undefined})
    let got = ''
    const send = () => setTimeout(() => socket.write(text), waitMs)
    socket.once(service === 'plaintext' ? 'connect' : 'secureConnect', send)
    socket.on('data', (d) => {
      got += d.toString()
      if (got.length >= text.length) socket.end()
    })
    socket.on('error', () => undefined)
    socket.on('close', () => resolve(got))
    setTimeout(() => socket.destroy(), 5_000)
  })
}

describe('a protocol: tcp published address', () => {
  test('STRICT: frontend\'s certificate reaches the instance; no certificate, or a caller authorization refuses, does not', async () => {
    expect(await tcpRoundTrip(tcpPorts.db, 'frontend', 'ping')).toBe('ping')
    expect(await tcpRoundTrip(tcpPorts.db, undefined, 'ping')).toBe('')
    expect(await tcpRoundTrip(tcpPorts.db, 'orders', 'ping')).toBe('')
    expect(await tcpRoundTrip(tcpPorts.db, 'plaintext', 'ping')).toBe('')
  })

  test('PERMISSIVE: mTLS and plaintext on one port, and a client that waits for the server first is taken as plaintext', async () => {
    expect(await tcpRoundTrip(tcpPorts.cache, 'frontend', 'ping')).toBe('ping')
    expect(await tcpRoundTrip(tcpPorts.cache, 'plaintext', 'ping')).toBe('ping')
    expect(await tcpRoundTrip(tcpPorts.cache, 'plaintext', 'late', 1_500)).toBe('late')
  })
})

describe('rotation', () => {
  test('the callee\'s certificate rotated twice under load: every request succeeds, and new connections get the new certificate', async () => {
    const before = (await identities.certificate('catalog')).serial
    let stop = false
    const results: number[] = []
    const load = Promise.all(
      Array.from({length: 4}, async () => {
        while (!stop) results.push((await dial('frontend')).status)
      }),
    )
    // Counted in requests, not time: a busy machine slows the load, not what is shown.
    const servedAtLeast = (n: number) => eventually(() => results.length >= n)
    await servedAtLeast(10)
    await identities.rotate('catalog')
    await servedAtLeast(20)
    await identities.rotate('catalog')
    await servedAtLeast(30)
    stop = true
    await load
    expect(results.filter((s) => s !== 200)).toEqual([])
    const after = await identities.certificate('catalog')
    expect(after.serial).not.toBe(before)
    const cert = await identities.certificate('frontend')
    const served = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({host: '127.0.0.1', port: inboundPort, ca: identities.ca.certPem, cert: cert.certPem, key: cert.keyPem, checkServerIdentity: () => undefined}, () => {
        resolve(s.getPeerX509Certificate()!.serialNumber)
        s.destroy()
      })
      s.on('error', reject)
    })
    expect(served.toLowerCase()).toBe(after.serial.toLowerCase())
  })
})
