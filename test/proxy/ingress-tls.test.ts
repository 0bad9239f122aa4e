// ingress.tls through a real DataPlane: the HTTPS ingress with the mesh CA's certificate or the
// user's own, x-forwarded-proto, plaintext on the HTTPS port, and the plain ingress's redirect.
import http from 'node:http'
import https from 'node:https'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import type {AddressInfo} from 'node:net'
import os from 'node:os'
import path from 'node:path'
import {afterEach, beforeAll, afterAll, describe, expect, test} from 'vitest'
import {parseConfig} from '../../src/sim/config/load-config.js'
import type {IngressConfig} from '../../src/sim/config/types.js'
import {versionWeights} from '../../src/sim/config/versions.js'
import {FaultSet} from '../../src/sim/faults/fault-set.js'
import {DataPlane} from '../../src/sim/proxy/data-plane.js'
import {listenIngress} from '../../src/sim/proxy/ingress-listeners.js'
import {Registry} from '../../src/sim/proxy/registry.js'
import {runLoad} from '../../src/sim/load/load-generator.js'
import {caCertPath} from '../../src/sim/security/ca-file.js'
import {MeshCA} from '../../src/sim/security/mesh-ca.js'
import {WorkloadIdentities} from '../../src/sim/security/workload-identity.js'
import {realClock} from '../../src/sim/time/clock.js'

const DIR = mkdtempSync(path.join(os.tmpdir(), 'meshsim-ingress-tls-'))
let app: http.Server
let identities: WorkloadIdentities
let planes: DataPlane[] = []

beforeAll(async () => {
  app = http.createServer((req, res) => res.end(JSON.stringify({proto: req.headers['x-forwarded-proto'], xfcc: req.headers['x-forwarded-client-cert']})))
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r))
  identities = await WorkloadIdentities.start({caDir: path.join(DIR, 'ca'), trustDomain: 'cluster.local', mesh: 'shop', certTtlMs: 3600_000, clock: realClock})
})

afterEach(async () => {
  for (const p of planes) await p.drain(0)
  planes = []
})

afterAll(() => {
  identities.stop()
  app.close()
  rmSync(DIR, {recursive: true, force: true})
})

/** A data plane with one service, `web`, on the test's app, and its ingress as `ingress` says. */
async function edge(ingress: Omit<IngressConfig, 'routes' | 'port'>): Promise<{url: string; httpsUrl?: string}> {
  const appPort = (app.address() as AddressInfo).port
  const {config} = parseConfig(`name: shop\nservices:\n  web:\n    address: 127.0.0.1:${appPort}\n`, path.join(DIR, 'mesh.yaml'), {})
  const registry = new Registry(['web'])
  const plane = new DataPlane(registry, config!.services, new Map(config!.services.map((s) => [s.name, versionWeights(s)])), {clock: realClock, faults: new FaultSet(realClock, () => {})})
  planes.push(plane)
  plane.useIdentities(identities, 'PERMISSIVE')
  registry.add({instance: 'web-v1-0', service: 'web', version: 'v1', host: '127.0.0.1', port: appPort, inboundPort: 0, origin: `http://127.0.0.1:${appPort}`})
  return listenIngress(plane, {port: 0, routes: [{prefix: '/', service: 'web'}], ...ingress})
}

function get(url: string, ca?: string): Promise<{status: number; body: string; location?: string}> {
  return new Promise((resolve, reject) => {
    const client = url.startsWith('https:') ? https : http
    client
      .get(url, {...(ca ? {ca} : {}), agent: false}, (res) => {
        let body = ''
        res.on('data', (c) => (body += c))
        res.on('end', () => resolve({status: res.statusCode ?? 0, body, location: res.headers.location}))
      })
      .on('error', reject)
  })
}

describe('the HTTPS ingress', () => {
  test('serves with a certificate for localhost from the mesh CA; the app sees x-forwarded-proto https and the ingress as caller', async () => {
    const {url, httpsUrl} = await edge({tls: {port: 0}})
    const r = await get(`${httpsUrl}/items`, identities.ca.certPem)
    expect(r.status).toBe(200)
    expect(JSON.parse(r.body)).toEqual({proto: 'https', xfcc: 'By=spiffe://cluster.local/ns/shop/sa/web;URI=spiffe://cluster.local/ns/shop/sa/ingress'})
    // The plain ingress still serves, as http.
    expect(JSON.parse((await get(`${url}/items`)).body).proto).toBe('http')
    // Plain HTTP sent to the HTTPS port is told why.
    const plain = await get(`${httpsUrl!.replace('https://localhost', 'http://127.0.0.1')}/items`)
    expect(plain.status).toBe(400)
    expect(plain.body).toMatch(/speaks TLS only/)
  })

  test('serves the user\'s own certificate and key', async () => {
    const own = await MeshCA.create('example.org')
    const cert = await own.issue({dnsNames: ['localhost'], ttlMs: 3600_000, now: new Date(), commonName: 'site'})
    writeFileSync(path.join(DIR, 'site.crt'), cert.certPem)
    writeFileSync(path.join(DIR, 'site.key'), cert.keyPem)
    const {httpsUrl} = await edge({tls: {port: 0, certFile: path.join(DIR, 'site.crt'), keyFile: path.join(DIR, 'site.key')}})
    expect((await get(`${httpsUrl}/`, own.certPem)).status).toBe(200)
    // The mesh CA did not sign it.
    await expect(get(`${httpsUrl}/`, identities.ca.certPem)).rejects.toThrow(/certificate/)
  })

  test('redirect: the plain ingress answers 308 to the same path on the HTTPS port, and serves nothing itself', async () => {
    const {url, httpsUrl} = await edge({tls: {port: 0, redirect: true}})
    const r = await get(`${url.replace('127.0.0.1', 'localhost')}/items?page=2`)
    expect(r.status).toBe(308)
    expect(r.location).toBe(`${httpsUrl}/items?page=2`)
    expect((await get(r.location!, identities.ca.certPem)).status).toBe(200)
  })

  test('mesh load / canary --load reach the HTTPS port with the mesh CA\'s file: every request 200, no 308', async () => {
    const {httpsUrl} = await edge({tls: {port: 0, redirect: true}})
    const r = await runLoad({target: httpsUrl, caFile: caCertPath(path.join(DIR, 'ca')), path: '/items', rps: 50, durationMs: 200})
    expect(r.statuses).toEqual({200: r.requests})
    expect(r.errors).toEqual({})
    expect(r.requests).toBeGreaterThanOrEqual(5)
  })
})
