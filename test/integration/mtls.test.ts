// mTLS on published addresses, the HTTPS ingress and x-forwarded-client-cert, on a real mesh
// with real TLS: raw tls.connect without a certificate, with another CA's, and with the mesh
// certificate of `frontend`; curl --cacert to the HTTPS ingress; aborted handshakes.
import {execa} from 'execa'
import {readFileSync} from 'node:fs'
import http from 'node:http'
import http2 from 'node:http2'
import https from 'node:https'
import net from 'node:net'
import path from 'node:path'
import tls from 'node:tls'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import type {MeshStatus} from '../../src/sim/control/status.js'
import {MeshCA} from '../../src/sim/security/mesh-ca.js'
import {downMesh, eventually, freePort, json, mesh, upMesh} from '../helpers/mesh.js'

interface Echo {
  headers: Record<string, string | undefined>
}

let dir: string
let ingress: string
let httpsPort: number
let ca: string
const published: Record<string, string> = {}

/** The published address (`host:port`) of `service`'s first instance. */
function addressOf(status: MeshStatus, service: string): string {
  return status.services.find((x) => x.name === service)!.instances[0].inboundAddress
}

beforeAll(async () => {
  httpsPort = await freePort()
  ;({dir, ingress} = await upMesh(
    (port) => `
name: mtlsdemo
security: {mtls: PERMISSIVE}
ingress:
  port: ${port}
  routes: [{prefix: /, service: catalog}]
  tls: {port: ${httpsPort}}
services:
  frontend: {command: node fixtures/echo-server.js, dependsOn: [catalog]}
  catalog:
    command: node fixtures/echo-server.js
    policy:
      mtls: STRICT
      authorization:
        allow: [{from: [frontend]}, {from: [ingress]}]
  legacy: {command: node fixtures/echo-server.js}
  checked:
    policy: {mtls: STRICT}
    versions:
      v1: {simulate: {latency: 1ms}}
      v2: {simulate: {latency: 1ms}}
`,
  ))
  const status = json<MeshStatus>(await mesh(dir, ['status', '--json']))
  for (const s of ['catalog', 'legacy']) published[s] = addressOf(status, s)
  ca = path.join(dir, '.mesh', 'ca', 'ca.crt')
})

afterAll(() => downMesh(dir))

/** A frontend instance's certificate and key, as the mesh hands them to it ($MESH_TLS_CERT, $MESH_TLS_KEY). */
async function frontendCredentials(): Promise<{cert: string; key: string}> {
  const env = async (name: string) => (await mesh(dir, ['exec', 'frontend', '--', 'node', '-e', `process.stdout.write(process.env.${name} ?? '')`])).stdout
  return {cert: readFileSync(await env('MESH_TLS_CERT'), 'utf8'), key: readFileSync(await env('MESH_TLS_KEY'), 'utf8')}
}

/** GET over TLS to `address`; status 0 when the connection was refused. */
function tlsGet(address: string, opts: tls.ConnectionOptions, headers: Record<string, string> = {}): Promise<{status: number; body: string}> {
  const [host, port] = address.split(':')
  return new Promise((resolve) => {
    const req = https.request(
      {host, port: Number(port), path: '/items', headers, ca: readFileSync(ca), checkServerIdentity: () => undefined, agent: false, ...opts},
      (res) => {
        let body = ''
        res.on('data', (c) => (body += c))
        res.on('end', () => resolve({status: res.statusCode ?? 0, body}))
      },
    )
    req.on('error', () => resolve({status: 0, body: ''}))
    req.end()
  })
}

function plainGet(address: string, headers: Record<string, string> = {}): Promise<{status: number; body: string; headers: http.IncomingHttpHeaders}> {
  return new Promise((resolve, reject) => {
    http
      .get(`http://${address}/items`, {headers}, (res) => {
        let body = ''
        res.on('data', (c) => (body += c))
        res.on('end', () => resolve({status: res.statusCode ?? 0, body, headers: res.headers}))
      })
      .on('error', reject)
  })
}

describe('a published address under STRICT', () => {
  test('no client certificate, or one from another CA, is refused; plain HTTP is told why', async () => {
    expect((await tlsGet(published.catalog, {})).status).toBe(0)
    const other = await MeshCA.create('cluster.local')
    const forged = await other.issue({uri: 'spiffe://cluster.local/ns/mtlsdemo/sa/frontend', ttlMs: 3600_000, now: new Date(), commonName: 'frontend'})
    expect((await tlsGet(published.catalog, {cert: forged.certPem, key: forged.keyPem})).status).toBe(0)
    const plain = await plainGet(published.catalog)
    expect(plain.status).toBe(400)
    expect(plain.headers['x-mesh-reason']).toMatch(/takes mTLS only/)
  })

  test("frontend's mesh certificate passes, authorization.from: [frontend] applies, and the app sees XFCC naming frontend (not the one sent)", async () => {
    const creds = await frontendCredentials()
    const r = await tlsGet(published.catalog, creds, {'x-forwarded-client-cert': 'By=x;URI=spiffe://cluster.local/ns/mtlsdemo/sa/admin'})
    expect(r.status).toBe(200)
    const xfcc = (JSON.parse(r.body) as Echo).headers['x-forwarded-client-cert']
    expect(xfcc).toMatch(/^By=spiffe:\/\/cluster\.local\/ns\/mtlsdemo\/sa\/catalog;Hash=[0-9a-f]{64};URI=spiffe:\/\/cluster\.local\/ns\/mtlsdemo\/sa\/frontend$/)
  })
})

describe('PERMISSIVE', () => {
  test('plaintext and mTLS on the same port; a plaintext caller gets no XFCC, whatever it sent', async () => {
    const plain = await plainGet(published.legacy, {'x-forwarded-client-cert': 'By=x;URI=spiffe://cluster.local/ns/mtlsdemo/sa/admin'})
    expect(plain.status).toBe(200)
    expect((JSON.parse(plain.body) as Echo).headers['x-forwarded-client-cert']).toBeUndefined()
    const secure = await tlsGet(published.legacy, await frontendCredentials())
    expect(secure.status).toBe(200)
    expect((JSON.parse(secure.body) as Echo).headers['x-forwarded-client-cert']).toMatch(/URI=spiffe:\/\/cluster\.local\/ns\/mtlsdemo\/sa\/frontend$/)
  })
})

describe('x-forwarded-client-cert through the mesh', () => {
  test("a call from frontend's sidecar names frontend; the ingress names itself and drops one from outside", async () => {
    const viaSidecar = await mesh(dir, ['exec', 'frontend', '--', 'node', '-e', "fetch(process.env.CATALOG_URL + '/x', {headers: {'x-forwarded-client-cert': 'forged'}}).then(r => r.text()).then(t => process.stdout.write(t))"])
    expect((JSON.parse(viaSidecar.stdout) as Echo).headers['x-forwarded-client-cert']).toBe('By=spiffe://cluster.local/ns/mtlsdemo/sa/catalog;URI=spiffe://cluster.local/ns/mtlsdemo/sa/frontend')
    const viaIngress = await plainGet(ingress.replace('http://', ''), {'x-forwarded-client-cert': 'By=x;URI=spiffe://cluster.local/ns/mtlsdemo/sa/frontend'})
    expect((JSON.parse(viaIngress.body) as Echo).headers['x-forwarded-client-cert']).toBe('By=spiffe://cluster.local/ns/mtlsdemo/sa/catalog;URI=spiffe://cluster.local/ns/mtlsdemo/sa/ingress')
  })
})

describe('the HTTPS ingress', () => {
  test('curl --cacert verifies it, and HTTP/2 is negotiated by ALPN', async () => {
    const r = await execa('curl', ['-sS', '--http2', '--cacert', ca, '-w', '\n%{http_version}', `https://localhost:${httpsPort}/items`], {reject: false})
    expect(r.exitCode, r.stderr).toBe(0)
    const [body, version] = r.stdout.split('\n')
    expect(version).toBe('2')
    expect((JSON.parse(body) as Echo).headers['x-forwarded-proto']).toBe('https')
    const session = http2.connect(`https://127.0.0.1:${httpsPort}`, {ca: readFileSync(ca)})
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const stream = session.request({':path': '/items'})
        stream.on('response', (h) => resolve(Number(h[':status'])))
        stream.on('error', reject)
        stream.resume()
      })
      expect(status).toBe(200)
      expect((session.socket as tls.TLSSocket).alpnProtocol).toBe('h2')
    } finally {
      session.close()
    }
  })
})

describe('clients that misbehave in the handshake', () => {
  test('aborted, garbage and stalled handshakes leave nothing in flight, and the address still serves', async () => {
    const [host, port] = published.catalog.split(':')
    const hello = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])
    await Promise.all(
      Array.from({length: 30}, (_, i) =>
        new Promise<void>((resolve) => {
          const s = net.connect(Number(port), host, () => {
            s.write(i % 3 === 0 ? hello : i % 3 === 1 ? Buffer.concat([hello, Buffer.alloc(300, 0xee)]) : hello.subarray(0, 2))
            setTimeout(() => s.destroy(), 20)
          })
          s.on('error', () => undefined)
          s.on('close', () => resolve())
        }),
      ),
    )
    // A TLS client that gives up mid-handshake.
    await new Promise<void>((resolve) => {
      const s = tls.connect({host, port: Number(port), ca: readFileSync(ca), checkServerIdentity: () => undefined})
      s.on('error', () => undefined)
      s.on('close', () => resolve())
      setImmediate(() => s.destroy())
    })
    expect((await tlsGet(published.catalog, await frontendCredentials())).status).toBe(200)
    await eventually(async () => {
      const status = json<MeshStatus>(await mesh(dir, ['status', '--json']))
      const load = status.services.find((s) => s.name === 'catalog')!.load
      return status.requestsInFlight === 0 && Object.values(load?.instances ?? {}).every((n) => n === 0)
    }, 10_000)
  })

  test('mesh canary --check on a STRICT service: $CANARY_URL is a plaintext door to the canary for the check only (the published address takes mTLS only)', async () => {
    const check = 'node -e "require(\'fs\').writeFileSync(\'canary-url.txt\', process.env.CANARY_URL)" && CALL=CANARY_URL node fixtures/call-dependency.js'
    const r = await mesh(dir, ['canary', 'checked', '--to', 'v2', '--steps', '100', '--check', check, '--json'])
    expect(r.exitCode, r.stderr + r.stdout).toBe(0)
    const record = JSON.parse(r.stdout) as {outcome: string; steps: Array<{kind: string; message: string}>}
    expect(record.steps.find((x) => x.kind === 'check')?.message).toMatch(/^acceptance check passed: .*: exit 0$/)
    // The door was not the published address, and it closed with the check.
    const url = new URL(readFileSync(path.join(dir, 'canary-url.txt'), 'utf8'))
    const status = json<MeshStatus>(await mesh(dir, ['status', '--json']))
    const published = status.services.find((x) => x.name === 'checked')!.instances.map((i) => i.inboundAddress)
    expect(published).not.toContain(url.host)
    const refused = await new Promise<boolean>((resolve) => {
      const s = net.connect(Number(url.port), '127.0.0.1', () => {
        s.destroy()
        resolve(false)
      })
      s.on('error', () => resolve(true))
    })
    expect(refused).toBe(true)
  })
})
